/* Helpers shared by the fuzz targets (see fuzz.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "common/log.h"
#include "fuzz/fuzz.h"
#include "kmsclient/kmsclient.h"

CURLcode kms_fuzz_perform(void *ud, curl_write_callback wr, long *code);

void
fuzz_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	log_init("fuzz", LOG_ERR);
	sec_json_init();
}

const uint8_t *
fuzz_next(const uint8_t **p, size_t *n, size_t *len)
{
	const uint8_t *r = *p, *sep;

	if (r == NULL)
		return NULL;
	sep = memmem(r, *n, FUZZ_SEP, strlen(FUZZ_SEP));
	if (sep == NULL) {
		*len = *n;
		*p = NULL;
		*n = 0;
	} else {
		*len = (size_t)(sep - r);
		*n -= *len + strlen(FUZZ_SEP);
		*p = sep + strlen(FUZZ_SEP);
	}
	return r;
}

int
fuzz_cfg(const uint8_t *data, size_t size, const struct cfg_table *t, void *cfg)
{
	char  err[512], *copy;
	FILE *f;
	int   rc = -1;

	fuzz_init();
	if (cfg_defaults(t, cfg, err, sizeof(err)) == -1)
		return -1;
	/* fmemopen wants a writable buffer and at least one byte. */
	if ((copy = malloc(size + 1)) == NULL)
		return -1;
	memcpy(copy, data, size);
	copy[size] = '\n';
	if ((f = fmemopen(copy, size ? size : 1, "r")) != NULL) {
		rc = cfg_tab_load_file(t, cfg, f, "fuzz.ini", err, sizeof(err));
		fclose(f);
	}
	free(copy);
	if (rc == 0 && t->finish)
		rc = t->finish(cfg, err, sizeof(err));
	return rc;
}

/* --- the fake KME behind kmsclient (built with -DKMS_FUZZ) --- */

static const uint8_t *ans_p;
static size_t	      ans_n;

void
fuzz_answers(const uint8_t *p, size_t n)
{
	ans_p = p;
	ans_n = n;
}

CURLcode
kms_fuzz_perform(void *ud, curl_write_callback wr, long *code)
{
	static const long codes[16] = { 200, 200, 200, 200, 200, 200, 400, 400,
		401, 404, 405, 500, 503, 0, 0, 0 };
	static char	  one, buf[16384]; /* curl's is not const */
	const uint8_t	 *r;
	size_t		  len, chunk, k;
	unsigned	  h;

	if ((r = fuzz_next(&ans_p, &ans_n, &len)) == NULL)
		return CURLE_COULDNT_CONNECT;
	h = len ? r[0] : 0x30;
	r += len != 0;
	len -= len != 0;
	if ((h & 15) == 15) /* curl hands over what it has: too much */
		return wr(&one, 1, KMS_MAX_RESPONSE + 1, ud) ==
			KMS_MAX_RESPONSE + 1 ?
		    CURLE_OK :
		    CURLE_WRITE_ERROR;
	chunk = (h >> 4) == 3 ? len : (h >> 4) * 13 + 1;
	for (; len > 0; r += k, len -= k) {
		k = len < chunk ? len : chunk;
		if (k > sizeof(buf))
			k = sizeof(buf);
		memcpy(buf, r, k);
		if (wr(buf, 1, k, ud) != k)
			return CURLE_WRITE_ERROR;
	}
	if ((h & 15) == 13)
		return CURLE_RECV_ERROR;
	if ((h & 15) == 14)
		return CURLE_OPERATION_TIMEDOUT;
	*code = codes[h & 15];
	return CURLE_OK;
}
