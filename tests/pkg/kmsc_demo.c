/*
 * A program of someone else's, built against the INSTALLED libkmsclient
 * (tests/integ/test_install.sh: `pkg-config --cflags --libs kmsclient`):
 * only <kmsclient/kmsclient.h> and the shared library. Asks the KME at URL
 * for the status with SLAVE and for two 256-bit keys, and prints
 *   status stored=N key_size=N
 *   key ID HEX
 * so the test can fetch the same keys at the slave's KME and compare.
 * Test tool only: it prints key bytes.
 */
#include <stdio.h>
#include <stdlib.h>

#include <kmsclient/kmsclient.h>

int
main(int argc, char **argv)
{
	struct kms_client_cfg cfg = { 0 };
	struct etsi_key_req   req = { .number = 2, .size = 256 };
	struct etsi_status    st;
	struct etsi_keys      keys = { 0 };
	struct kms_client    *c;
	char		      err[256];
	int		      rc;

	if (argc != 6) {
		fprintf(stderr, "usage: kmsc_demo URL CERT KEY CA SLAVE\n");
		return 2;
	}
	kms_json_secure();
	cfg.url = argv[1];
	cfg.cert = argv[2];
	cfg.key = argv[3];
	cfg.ca = argv[4];
	if ((c = kms_client_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "kmsc_demo: %s\n", err);
		return 1;
	}
	if ((rc = kms_status(c, argv[5], &st)) != KMS_OK ||
	    (rc = kms_enc_keys(c, argv[5], &req, &keys)) != KMS_OK) {
		fprintf(stderr, "kmsc_demo: %s: %s\n", kms_strerror(rc),
		    kms_last_message(c));
		kms_client_free(c);
		return 1;
	}
	printf("status stored=%u key_size=%u\n", st.stored_key_count,
	    st.key_size);
	for (size_t i = 0; i < keys.n; i++) {
		printf("key %s ", keys.v[i].id);
		for (size_t j = 0; j < keys.v[i].len; j++)
			printf("%02x", keys.v[i].key[j]);
		putchar('\n');
	}
	etsi_keys_free(&keys);
	kms_client_free(c);
	return 0;
}
