/* Client certificate identity checks for the mutual-TLS servers; see tlsid.h. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "common/etsi.h"
#include "common/tlsid.h"

#define TLSID_NAME_MAX 256 /* longest CN read; longer ones are refused */

void
tlsid_escape(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0, i;

	if (outlen == 0)
		return;
	for (i = 0; i < len && i < TLSID_LOG_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		char	      tmp[5];
		size_t	      n;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			tmp[0] = (char)c;
			n = 1;
		} else
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		/* room for the NUL, and for "..." if more input follows */
		if (o + n + (i + 1 < len ? 3 : 0) + 1 > outlen)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	if (i < len && o + 4 <= outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* extendedKeyUsage absent, or present with clientAuth. */
static int
tlsid_eku_client(gnutls_x509_crt_t crt, char *why, size_t whylen)
{
	char	 oid[128];
	size_t	 len;
	unsigned i;
	int	 rc;

	for (i = 0;; i++) {
		len = sizeof(oid);
		rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &len,
		    NULL);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc < 0) {
			snprintf(why, whylen, "extendedKeyUsage unreadable: %s",
			    gnutls_strerror(rc));
			return -1;
		}
		if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0)
			return 0;
	}
	if (i == 0)
		return 0;
	snprintf(why, whylen,
	    "its extendedKeyUsage does not allow clientAuth "
	    "(a server-only certificate)");
	return -1;
}

/* Exactly one subject CN, and it is a valid ID: copied to cn. */
static int
tlsid_one_cn(gnutls_x509_crt_t crt, char *cn, size_t cnlen, char *why,
    size_t whylen)
{
	char name[TLSID_NAME_MAX + 1], first[TLSID_NAME_MAX + 1],
	    esc[TLSID_LOG_MAX * 4 + 8];
	size_t len, firstlen = 0;
	int    rc, n;

	for (n = 0;; n++) {
		len = sizeof(name);
		rc = gnutls_x509_crt_get_dn_by_oid(crt,
		    GNUTLS_OID_X520_COMMON_NAME, (unsigned)n, 0, name, &len);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER) {
			snprintf(why, whylen, "its CN is longer than %d bytes",
			    TLSID_NAME_MAX);
			return -1;
		}
		if (rc < 0) {
			snprintf(why, whylen, "its subject is unreadable: %s",
			    gnutls_strerror(rc));
			return -1;
		}
		if (n == 0) {
			memcpy(first, name, len);
			firstlen = len;
			first[len] = '\0';
		}
	}
	if (n == 0) {
		snprintf(why, whylen, "its subject has no CN");
		return -1;
	}
	tlsid_escape(first, firstlen, esc, sizeof(esc));
	if (n > 1) {
		snprintf(why, whylen,
		    "its subject has %d CNs (first \"%s\"); "
		    "exactly one is allowed",
		    n, esc);
		return -1;
	}
	if (strlen(first) != firstlen || !etsi_id_valid(first) ||
	    firstlen >= cnlen) {
		snprintf(why, whylen,
		    "its CN \"%s\" (%zu bytes) is not a valid "
		    "ID (1-%d printable ASCII, no / ? %% \")",
		    esc, firstlen, ETSI_ID_MAX);
		return -1;
	}
	memcpy(cn, first, firstlen + 1);
	return 0;
}

/* The chain to the trust list, for the clientAuth purpose. */
static int
tlsid_chain(gnutls_session_t s, char *why, size_t whylen)
{
	gnutls_typed_vdata_st vd = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
	};
	gnutls_datum_t txt = { NULL, 0 };
	unsigned       status = 0;
	int	       rc;

	if ((rc = gnutls_certificate_verify_peers(s, &vd, 1, &status)) < 0) {
		snprintf(why, whylen, "it could not be verified: %s",
		    gnutls_strerror(rc));
		return -1;
	}
	if (status == 0)
		return 0;
	if (gnutls_certificate_verification_status_print(status,
		GNUTLS_CRT_X509, &txt, 0) == 0) {
		snprintf(why, whylen, "it was not accepted: %s", txt.data);
		why[strcspn(why, "\n")] = '\0';
		for (size_t n = strlen(why); n > 0 && why[n - 1] == ' '; n--)
			why[n - 1] = '\0';
		gnutls_free(txt.data);
	} else
		snprintf(why, whylen, "it was not accepted (status 0x%x)",
		    status);
	return -1;
}

int
tlsid_gnutls_peer(gnutls_session_t s, bool verify_chain, char *cn, size_t cnlen,
    char *why, size_t whylen)
{
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t     crt;
	unsigned	      n = 0;
	int		      rc = -1;

	cn[0] = '\0';
	if (s == NULL ||
	    (certs = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0) {
		snprintf(why, whylen,
		    "no client certificate, or the TLS "
		    "handshake failed before one was sent");
		return -1;
	}
	if (gnutls_x509_crt_init(&crt) < 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0)
		snprintf(why, whylen, "it is not a DER X.509 certificate");
	else if (tlsid_one_cn(crt, cn, cnlen, why, whylen) == 0 &&
	    tlsid_eku_client(crt, why, whylen) == 0 &&
	    (!verify_chain || tlsid_chain(s, why, whylen) == 0))
		rc = 0;
	gnutls_x509_crt_deinit(crt);
	if (rc == -1)
		cn[0] = '\0';
	return rc;
}

/*
 * Why recent handshakes were refused, by session. After a failed handshake
 * GnuTLS no longer hands out the peer's certificate, and libmicrohttpd
 * reports the close on another thread, so the reason waits here for the
 * log line at close. A small ring: under a flood of refusals the oldest
 * reasons are dropped and those closes log a generic line.
 */
#define TLSID_RING 64

static struct {
	gnutls_session_t s;
	char		 why[TLSID_WHYLEN];
} tlsid_ring[TLSID_RING];
static unsigned	       tlsid_next;
static pthread_mutex_t tlsid_mu = PTHREAD_MUTEX_INITIALIZER;

/* GnuTLS verify callback: non-zero ends the handshake. */
static int
tlsid_verify_client(gnutls_session_t s)
{
	char cn[ETSI_ID_MAX + 1], why[TLSID_WHYLEN];

	if (tlsid_gnutls_peer(s, true, cn, sizeof(cn), why, sizeof(why)) == 0)
		return 0;
	pthread_mutex_lock(&tlsid_mu);
	tlsid_ring[tlsid_next].s = s;
	memcpy(tlsid_ring[tlsid_next].why, why, sizeof(why));
	tlsid_next = (tlsid_next + 1) % TLSID_RING;
	pthread_mutex_unlock(&tlsid_mu);
	return GNUTLS_E_CERTIFICATE_ERROR;
}

int
tlsid_refusal(gnutls_session_t s, char *why, size_t whylen)
{
	int rc = -1;

	if (s == NULL)
		return -1;
	pthread_mutex_lock(&tlsid_mu);
	for (unsigned i = 0; i < TLSID_RING && rc == -1; i++)
		if (tlsid_ring[i].s == s) {
			snprintf(why, whylen, "%s", tlsid_ring[i].why);
			tlsid_ring[i].s = NULL;
			rc = 0;
		}
	pthread_mutex_unlock(&tlsid_mu);
	return rc;
}

void
tlsid_gnutls_require_client(gnutls_session_t s)
{
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_function(s, tlsid_verify_client);
}

bool
tlsid_cert_is(const char *cert_file, const char *ca_file, const char *cn,
    char *why, size_t whylen)
{
	X509	       *x = NULL;
	X509_STORE     *st = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_NAME      *nm;
	FILE	       *f;
	char		name[TLSID_NAME_MAX + 1];
	bool		same = false;
	int		n, idx;

	if ((f = fopen(cert_file, "r")) == NULL) {
		snprintf(why, whylen, "cannot open \"%s\": %m", cert_file);
		goto done;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL || (st = X509_STORE_new()) == NULL ||
	    X509_STORE_load_file(st, ca_file) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, st, x, NULL) != 1) {
		snprintf(why, whylen, "cannot read \"%s\" or \"%s\"", cert_file,
		    ca_file);
		goto done;
	}
	nm = X509_get_subject_name(x);
	idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
	if (idx < 0 || X509_NAME_get_index_by_NID(nm, NID_commonName, idx) >= 0)
		goto done; /* no CN, or several */
	n = X509_NAME_get_text_by_NID(nm, NID_commonName, name, sizeof(name));
	if (n < 0 || (size_t)n != strlen(cn) || strcmp(name, cn) != 0)
		goto done;
	same = X509_verify_cert(ctx) == 1;
done:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(x);
	ERR_clear_error();
	return same;
}
