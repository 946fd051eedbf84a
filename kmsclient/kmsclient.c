/*
 * ETSI GS QKD 014 client on one reused curl easy handle (see kmsclient.h).
 * Answers are read into a capped buffer in sec_alloc memory that is wiped
 * after every call, since enc_keys/dec_keys answers carry keys.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "kmsclient/kmsclient.h"

#define KMS_MSGLEN 256

struct kms_client {
	CURL		  *h;
	char		  *base; /* URL without trailing '/' */
	struct curl_slist *hdr_get, *hdr_post;
	char		  *rp; /* answer body, NUL-terminated */
	size_t		   rlen, rcap;
	int		   rover; /* 1: answer over the cap, 2: ENOMEM */
	int		   status;
	char		   msg[KMS_MSGLEN];
	char		   detail[KMS_MSGLEN];
	char		   ebuf[CURL_ERROR_SIZE];
};

static pthread_once_t kms_once = PTHREAD_ONCE_INIT;
static CURLcode	      kms_init_rc;

static void
kms_global_init(void)
{
	kms_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *
kms_strerror(int err)
{
	switch (err) {
	case KMS_OK: return "ok";
	case KMS_E_ARG: return "invalid argument";
	case KMS_E_NOMEM: return "out of memory";
	case KMS_E_CONNECT: return "connection error";
	case KMS_E_TLS: return "TLS error";
	case KMS_E_TIMEOUT: return "timeout";
	case KMS_E_BADREQ: return "bad request";
	case KMS_E_UNAUTH: return "unauthorized";
	case KMS_E_UNAVAIL: return "service unavailable";
	case KMS_E_HTTP: return "HTTP error";
	case KMS_E_PROTO: return "malformed answer";
	default: return "unknown error";
	}
}

void
kms_json_secure(void)
{
	sec_json_init();
}

int
kms_last_status(const struct kms_client *c)
{
	return c ? c->status : 0;
}

const char *
kms_last_message(const struct kms_client *c)
{
	return c ? c->msg : "";
}

const char *
kms_last_detail(const struct kms_client *c)
{
	return c ? c->detail : "";
}

/* Records an error for kms_last_*() and returns it. */
static int kms_fail(struct kms_client *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
kms_fail(struct kms_client *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return rc;
}

static void
resp_wipe(struct kms_client *c)
{
	if (c->rp != NULL)
		explicit_bzero(c->rp,
		    c->rlen + 1 <= c->rcap ? c->rlen + 1 : c->rcap);
	c->rlen = 0;
	c->rover = 0;
}

/* Grows by copying into fresh secret memory, so that no old copy of a key
 * is left in a block realloc() released. */
static size_t
write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	struct kms_client *c = ud;
	size_t		   n = size * nmemb, ncap;
	char		  *np;

	if (n > KMS_MAX_RESPONSE || c->rlen + n + 1 > KMS_MAX_RESPONSE) {
		c->rover = 1;
		return 0;
	}
	if (c->rlen + n + 1 > c->rcap) {
		ncap = c->rcap ? c->rcap : 4096;
		while (ncap < c->rlen + n + 1)
			ncap *= 2;
		if (ncap > KMS_MAX_RESPONSE)
			ncap = KMS_MAX_RESPONSE;
		if ((np = sec_alloc(ncap)) == NULL) {
			c->rover = 2;
			return 0;
		}
		if (c->rp != NULL)
			memcpy(np, c->rp, c->rlen);
		sec_free(c->rp, c->rcap);
		c->rp = np;
		c->rcap = ncap;
	}
	memcpy(c->rp + c->rlen, p, n);
	c->rlen += n;
	c->rp[c->rlen] = '\0';
	return n;
}

static int
readable(const char *what, const char *path, char *err, size_t errlen)
{
	if (path == NULL || access(path, R_OK) == 0)
		return 0;
	snprintf(err, errlen, "cannot read %s \"%s\": %s", what, path,
	    strerror(errno));
	return -1;
}

/* The configuration makes sense and its files can be read. */
static int
kms_cfg_check(const struct kms_client_cfg *cfg, char *err, size_t errlen)
{
	if (cfg == NULL || cfg->url == NULL ||
	    (strncmp(cfg->url, "https://", 8) != 0 &&
		strncmp(cfg->url, "http://", 7) != 0)) {
		snprintf(err, errlen, "URL \"%s\" must start with https://",
		    cfg && cfg->url ? cfg->url : "");
		return -1;
	}
	/* Keys would cross the network in clear, unauthenticated. */
	if (strncmp(cfg->url, "http://", 7) == 0 && !cfg->allow_http) {
		snprintf(err, errlen,
		    "URL \"%s\" is plain HTTP: keys would travel "
		    "in clear; use https:// (or allow it explicitly for a test "
		    "server)",
		    cfg->url);
		return -1;
	}
	if ((cfg->cert == NULL) != (cfg->key == NULL)) {
		snprintf(err, errlen, "client certificate and key go together");
		return -1;
	}
	if (readable("certificate", cfg->cert, err, errlen) == -1 ||
	    readable("key", cfg->key, err, errlen) == -1 ||
	    readable("CA file", cfg->ca, err, errlen) == -1)
		return -1;
	if (cfg->timeout_ms < 0) {
		snprintf(err, errlen, "timeout %ld ms is negative",
		    cfg->timeout_ms);
		return -1;
	}
	return 0;
}

/* The base URL without trailing '/', and the headers of GETs and POSTs. */
static int
kms_base_headers(struct kms_client *c, const char *url)
{
	size_t n;

	if ((c->base = strdup(url)) == NULL)
		return -1;
	for (n = strlen(c->base); n > 0 && c->base[n - 1] == '/'; n--)
		c->base[n - 1] = '\0';
	if ((c->hdr_get = curl_slist_append(NULL,
		 "Accept: application/json")) == NULL ||
	    (c->hdr_post = curl_slist_append(NULL,
		 "Accept: application/json")) == NULL ||
	    (c->hdr_post = curl_slist_append(c->hdr_post,
		 "Content-Type: application/json")) == NULL ||
	    (c->hdr_post = curl_slist_append(c->hdr_post, "Expect:")) == NULL)
		return -1;
	return 0;
}

/* The easy handle's options, set once for every call. */
static int
kms_setopts(struct kms_client *c, const struct kms_client_cfg *cfg)
{
	long tmo;
	bool ok;

	tmo = cfg->timeout_ms ? cfg->timeout_ms : KMS_DEFAULT_TIMEOUT_MS;
	ok = curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION,
		  (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
	ok &= curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR,
		  cfg->allow_http ? "https,http" : "https") == CURLE_OK;
#endif
	/* Keys go straight to the KME, never through an environment proxy. */
	ok &= curl_easy_setopt(c->h, CURLOPT_PROXY, "") == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, tmo) == CURLE_OK;
	ok &=
	    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, tmo) == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
	if (cfg->ca != NULL)
		ok &=
		    curl_easy_setopt(c->h, CURLOPT_CAINFO, cfg->ca) == CURLE_OK;
	if (cfg->cert != NULL) {
		ok &= curl_easy_setopt(c->h, CURLOPT_SSLCERT, cfg->cert) ==
		    CURLE_OK;
		ok &= curl_easy_setopt(c->h, CURLOPT_SSLKEY, cfg->key) ==
		    CURLE_OK;
	}
	ok &=
	    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, write_cb) == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c) == CURLE_OK;
	ok &= curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->ebuf) == CURLE_OK;
	return ok ? 0 : -1;
}

struct kms_client *
kms_client_new(const struct kms_client_cfg *cfg, char *err, size_t errlen)
{
	struct kms_client *c = NULL;

	if (kms_cfg_check(cfg, err, errlen) == -1)
		return NULL;
	pthread_once(&kms_once, kms_global_init);
	if (kms_init_rc != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init: %s",
		    curl_easy_strerror(kms_init_rc));
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->h = curl_easy_init()) == NULL ||
	    kms_base_headers(c, cfg->url) == -1) {
		snprintf(err, errlen, "out of memory");
		kms_client_free(c);
		return NULL;
	}
	if (kms_setopts(c, cfg) == -1) {
		snprintf(err, errlen,
		    "curl_easy_setopt failed (libcurl too old?)");
		kms_client_free(c);
		return NULL;
	}
	return c;
}

void
kms_client_free(struct kms_client *c)
{
	if (c == NULL)
		return;
	if (c->h != NULL)
		curl_easy_cleanup(c->h);
	curl_slist_free_all(c->hdr_get);
	curl_slist_free_all(c->hdr_post);
	sec_free(c->rp, c->rcap);
	free(c->base);
	free(c);
}

static int
map_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT: return KMS_E_TIMEOUT;
	case CURLE_OUT_OF_MEMORY: return KMS_E_NOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL: return KMS_E_ARG;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
#if LIBCURL_VERSION_NUM >= 0x074d00
	case CURLE_SSL_CLIENTCERT:
#endif
		return KMS_E_TLS;
	default: return KMS_E_CONNECT;
	}
}

const char *
kms_http_reason(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return NULL;
	}
}

/*
 * A server that refuses our certificate closes the connection: under TLS 1.2
 * during the handshake, under TLS 1.3 after it (the client finishes first),
 * so the first send or receive on a fresh connection fails. Told apart from
 * other transport errors so that the user looks at the right thing.
 */
static bool
cert_refused(struct kms_client *c, CURLcode cc)
{
	curl_off_t tcp = 0, tls = 0;
	long	   nconn = 0, code = 0;

	if (strncmp(c->base, "https:", 6) != 0)
		return false;
	curl_easy_getinfo(c->h, CURLINFO_CONNECT_TIME_T, &tcp);
	curl_easy_getinfo(c->h, CURLINFO_APPCONNECT_TIME_T, &tls);
	curl_easy_getinfo(c->h, CURLINFO_NUM_CONNECTS, &nconn);
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
	if (tcp > 0 && tls == 0)
		return true;
	return nconn > 0 && code == 0 &&
	    (cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
		cc == CURLE_GOT_NOTHING);
}

#ifdef KMS_FUZZ
/* Built into a fuzz target: fuzz/fuzz.c answers in place of the KME, through
 * write_cb, so that everything after the transfer runs as in production. */
CURLcode kms_fuzz_perform(void *ud, curl_write_callback wr, long *code);
#define kms_perform(c, code) kms_fuzz_perform((c), write_cb, (code))
#else
static CURLcode
kms_perform(struct kms_client *c, long *code)
{
	CURLcode cc = curl_easy_perform(c->h);

	if (cc == CURLE_OK)
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, code);
	return cc;
}
#endif

/*
 * One request: GET when body is NULL, else POST. On KMS_OK the answer is in
 * c->rp/c->rlen (the caller parses, then wipes it).
 */
static int
kms_call(struct kms_client *c, const char *url, const char *body)
{
	CURLcode cc;
	long	 code = 0;
	int	 rc;

	resp_wipe(c);
	c->ebuf[0] = '\0';
	cc = curl_easy_setopt(c->h, CURLOPT_URL, url);
	if (cc == CURLE_OK && body == NULL) {
		cc = curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(c->h, CURLOPT_HTTPHEADER,
			    c->hdr_get);
	} else if (cc == CURLE_OK) {
		cc = curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE,
			    (long)strlen(body));
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(c->h, CURLOPT_HTTPHEADER,
			    c->hdr_post);
	}
	if (cc == CURLE_OK)
		cc = kms_perform(c, &code);
	if (cc == CURLE_WRITE_ERROR && c->rover == 2)
		return kms_fail(c, KMS_E_NOMEM, "out of memory");
	if (cc == CURLE_WRITE_ERROR && c->rover)
		return kms_fail(c, KMS_E_PROTO, "body larger than %u bytes",
		    KMS_MAX_RESPONSE);
	if (cc != CURLE_OK) {
		resp_wipe(c);
		rc = map_curl(cc);
		if (rc == KMS_E_CONNECT && cert_refused(c, cc))
			return kms_fail(c, KMS_E_TLS,
			    "connection closed during or "
			    "right after the TLS handshake (client certificate "
			    "refused?): %s",
			    c->ebuf[0] ? c->ebuf : curl_easy_strerror(cc));
		return kms_fail(c, rc, "%s",
		    c->ebuf[0] ? c->ebuf : curl_easy_strerror(cc));
	}
	c->status = (int)code;
	if (code == 200)
		return KMS_OK;

	switch (code) {
	case 400: rc = KMS_E_BADREQ; break;
	case 401: rc = KMS_E_UNAUTH; break;
	case 503: rc = KMS_E_UNAVAIL; break;
	default: rc = KMS_E_HTTP; break;
	}
	/* An Error body if there is one; the bare reason phrase otherwise. */
	if (c->rlen == 0 ||
	    etsi_error_parse(c->rp, c->rlen, c->msg, sizeof(c->msg), c->detail,
		sizeof(c->detail)) == -1 ||
	    c->msg[0] == '\0') {
		c->detail[0] = '\0';
		snprintf(c->msg, sizeof(c->msg), "%s",
		    kms_http_reason((int)code) ? kms_http_reason((int)code) :
						 "HTTP error");
	}
	resp_wipe(c);
	return rc;
}

static int
kms_check_sae(struct kms_client *c, const char *sae)
{
	if (etsi_id_valid(sae))
		return KMS_OK;
	return kms_fail(c, KMS_E_ARG, "invalid SAE ID \"%.64s\"",
	    sae ? sae : "(null)");
}

/* base/api/v1/keys/{escaped sae}/{what}{query}; NULL on bad ID or ENOMEM. */
static char *
kms_url(struct kms_client *c, const char *sae, const char *what,
    const char *query, int *rc)
{
	char *esc, *url = NULL;

	if ((*rc = kms_check_sae(c, sae)) != KMS_OK)
		return NULL;
	if ((esc = curl_easy_escape(c->h, sae, 0)) == NULL ||
	    asprintf(&url, "%s/api/v1/keys/%s/%s%s", c->base, esc, what,
		query ? query : "") == -1) {
		url = NULL;
		*rc = kms_fail(c, KMS_E_NOMEM, "out of memory");
	}
	curl_free(esc);
	return url;
}

/* Starts a call: out zeroed, the last call forgotten; false without c. */
static bool
kms_begin(struct kms_client *c, void *out, size_t outlen)
{
	memset(out, 0, outlen);
	if (c == NULL)
		return false;
	c->status = 0;
	c->msg[0] = '\0';
	c->detail[0] = '\0';
	return true;
}

/* One call to sae/what{query}: GET when body is NULL, else POST. On KMS_OK
 * the answer is in c->rp/c->rlen (the caller parses, then wipes it). */
static int
kms_request(struct kms_client *c, const char *sae, const char *what,
    const char *query, const char *body)
{
	char *url;
	int   rc;

	if ((url = kms_url(c, sae, what, query, &rc)) == NULL)
		return rc;
	rc = kms_call(c, url, body);
	free(url);
	return rc;
}

int
kms_status(struct kms_client *c, const char *slave_sae, struct etsi_status *out)
{
	char err[ETSI_ERRLEN];
	int  rc;

	if (!kms_begin(c, out, sizeof(*out)))
		return KMS_E_ARG;
	rc = kms_request(c, slave_sae, "status", NULL, NULL);
	if (rc == KMS_OK && etsi_status_parse(c->rp, c->rlen, out, err) == -1)
		rc = kms_fail(c, KMS_E_PROTO, "%s", err);
	resp_wipe(c);
	return rc;
}

/* What a key container must hold: number keys (0: any) of size bits (0:
 * any), and exactly the key IDs ids (NULL: any). */
struct kms_want {
	unsigned		   number;
	unsigned		   size;
	const struct etsi_key_ids *ids;
};

/* Every asked ID came back exactly once (the KME may reorder). */
static int
kms_check_ids(struct kms_client *c, const struct etsi_key_ids *ids,
    const struct etsi_keys *out)
{
	if (out->n != ids->n)
		return kms_fail(c, KMS_E_PROTO, "asked for %zu keys, got %zu",
		    ids->n, out->n);
	for (size_t i = 0; i < ids->n; i++) {
		size_t found = 0;

		for (size_t j = 0; j < out->n; j++)
			found += strcmp(ids->ids[i], out->v[j].id) == 0;
		if (found != 1)
			return kms_fail(c, KMS_E_PROTO,
			    "key %s came back %zu "
			    "times",
			    ids->ids[i], found);
	}
	return KMS_OK;
}

/* Parses a key container and checks it against w. */
static int
kms_take_keys(struct kms_client *c, const struct kms_want *w,
    struct etsi_keys *out)
{
	char err[ETSI_ERRLEN];

	if (etsi_keys_parse(c->rp, c->rlen, out, err) == -1)
		return kms_fail(c, KMS_E_PROTO, "%s", err);
	if (w->number && out->n != w->number)
		return kms_fail(c, KMS_E_PROTO, "asked for %u keys, got %zu",
		    w->number, out->n);
	for (size_t i = 0; w->size && i < out->n; i++)
		if (out->v[i].len * 8 != w->size)
			return kms_fail(c, KMS_E_PROTO,
			    "asked for %u-bit keys, "
			    "key %s has %zu bits",
			    w->size, out->v[i].id, out->v[i].len * 8);
	return w->ids ? kms_check_ids(c, w->ids, out) : KMS_OK;
}

/* A call that answers with keys: request, parse, check; out is empty on
 * failure. */
static int
kms_keys_call(struct kms_client *c, const char *sae, const char *what,
    const char *query, const char *body, const struct kms_want *w,
    struct etsi_keys *out)
{
	int rc;

	rc = kms_request(c, sae, what, query, body);
	if (rc == KMS_OK && (rc = kms_take_keys(c, w, out)) != KMS_OK)
		etsi_keys_free(out);
	resp_wipe(c);
	return rc;
}

/* A POST of body (freed here; NULL when it could not be made) that answers
 * with keys, after sae was checked: no request goes out for a bad ID. */
static int
kms_post_keys(struct kms_client *c, const char *sae, const char *what,
    char *body, const struct kms_want *w, struct etsi_keys *out)
{
	int rc;

	if (body == NULL)
		return kms_fail(c, KMS_E_NOMEM, "out of memory");
	rc = kms_keys_call(c, sae, what, NULL, body, w, out);
	free(body);
	return rc;
}

int
kms_enc_keys(struct kms_client *c, const char *slave_sae,
    const struct etsi_key_req *req, struct etsi_keys *out)
{
	struct kms_want w = { 1, 0, NULL };
	int		rc;

	if (!kms_begin(c, out, sizeof(*out)))
		return KMS_E_ARG;
	if ((rc = kms_check_sae(c, slave_sae)) != KMS_OK)
		return rc;
	if (req != NULL) {
		w.number = req->number ? req->number : 1;
		w.size = req->size;
	}
	return kms_post_keys(c, slave_sae, "enc_keys",
	    req ? etsi_key_req_dump(req) : strdup("{}"), &w, out);
}

int
kms_enc_keys_get(struct kms_client *c, const char *slave_sae, unsigned number,
    unsigned size, struct etsi_keys *out)
{
	struct kms_want w = { number ? number : 1, size, NULL };
	char		q[64];
	int		n = 0;

	if (!kms_begin(c, out, sizeof(*out)))
		return KMS_E_ARG;
	q[0] = '\0';
	if (number)
		n = snprintf(q, sizeof(q), "?number=%u", number);
	if (size)
		snprintf(q + n, sizeof(q) - (size_t)n, "%csize=%u",
		    number ? '&' : '?', size);
	return kms_keys_call(c, slave_sae, "enc_keys", q, NULL, &w, out);
}

int
kms_dec_keys(struct kms_client *c, const char *master_sae,
    const struct etsi_key_ids *ids, struct etsi_keys *out)
{
	struct kms_want w = { 0, 0, ids };
	int		rc;

	if (!kms_begin(c, out, sizeof(*out)))
		return KMS_E_ARG;
	if (ids == NULL || ids->n == 0 || ids->n > ETSI_MAX_KEYS)
		return kms_fail(c, KMS_E_ARG, "1 to %d key IDs needed",
		    ETSI_MAX_KEYS);
	if ((rc = kms_check_sae(c, master_sae)) != KMS_OK)
		return rc;
	return kms_post_keys(c, master_sae, "dec_keys", etsi_key_ids_dump(ids),
	    &w, out);
}

int
kms_dec_keys_get(struct kms_client *c, const char *master_sae,
    const char *key_id, struct etsi_keys *out)
{
	struct etsi_key_ids one = { NULL, 0 };
	struct kms_want	    w = { 0, 0, &one };
	char		   *esc = NULL, q[16 + 3 * ETSI_KEY_ID_MAX];
	size_t		    n;
	int		    rc;

	if (!kms_begin(c, out, sizeof(*out)))
		return KMS_E_ARG;
	n = key_id ? strlen(key_id) : 0;
	if (n == 0 || n > ETSI_KEY_ID_MAX)
		return kms_fail(c, KMS_E_ARG,
		    "key ID must have 1 to %d "
		    "characters",
		    ETSI_KEY_ID_MAX);
	if ((esc = curl_easy_escape(c->h, key_id, (int)n)) == NULL ||
	    etsi_key_ids_alloc(&one, 1) == -1) {
		rc = kms_fail(c, KMS_E_NOMEM, "out of memory");
		goto done;
	}
	snprintf(q, sizeof(q), "?key_ID=%s", esc);
	memcpy(one.ids[0], key_id, n + 1);
	rc = kms_keys_call(c, master_sae, "dec_keys", q, NULL, &w, out);
done:
	etsi_key_ids_free(&one);
	curl_free(esc);
	return rc;
}
