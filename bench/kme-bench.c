/*
 * kme-bench: load client for ETSI GS QKD 014 key managers (qkd-sim, kmsd or
 * a hardware KME) over mutual TLS with keep-alive.
 *
 * For each connection count C it runs two phases, each with C threads and one
 * libcurl easy handle (= one persistent connection) per thread:
 *   enc: POST {url_a}{prefix}/{slave}/enc_keys as the master SAE; the key IDs
 *        of every answer are kept (the key bytes are not: the response buffer
 *        and Jansson's copies are wiped);
 *   dec: POST {url_b}{prefix}/{master}/dec_keys as the slave SAE, each set of
 *        key IDs from the enc phase used once; every answer must be 200 with
 *        exactly the keys asked for.
 * A warm-up (not recorded) precedes each phase. Latency is measured around
 * curl_easy_perform with CLOCK_MONOTONIC; percentiles come from the sorted
 * array of every successful call.
 *
 * Only loopback URLs are accepted: this tool must never load another host.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/num.h"
#include "common/timeutil.h"
#include "common/uuid.h"

#define PROG			"kme-bench"
#define MAX_CONNS		256
#define MAX_CONN_RUNS		16
#define MAX_CALLS_THREAD	5000000u	/* per thread and phase */
#define MAX_DURATION_S		3600u
#define MAX_WARMUP_S		60u
#define MAX_RESP		(16u << 20)	/* response body cap */
#define MAX_SET_BYTES		((size_t)256 << 20)	/* stored key IDs, all threads */
#define MAX_TRANSPORT_ERRS	50		/* in a row: the thread gives up */
#define CALL_TIMEOUT_MS		10000L
#define ID_LEN			UUID_STRLEN	/* ETSI 014: key_ID is a UUID */
#define NS_PER_S		1000000000ull

enum phase_kind { PH_ENC, PH_DEC };

struct opts {
	const char	*url_a, *url_b, *ca;
	const char	*cert_a, *key_a, *cert_b, *key_b;
	const char	*master, *slave;
	const char	*prefix;
	unsigned	 conns[MAX_CONN_RUNS];
	size_t		 nconns;
	unsigned	 duration_s, warmup_s, number, size;
	uint64_t	 max_calls;		/* per phase, all threads; 0 = none */
	int		 enc_only;
};

/* Key ID sets: `n` sets of `number` IDs of ID_LEN chars each, back to back. */
struct sets {
	char	*p;
	size_t	 n, cap;
};

struct counters {
	uint64_t	calls, ok, unavail, http_other, transport, bad_body;
};

struct phase {
	enum phase_kind	 kind;
	const struct opts *o;
	char		 url[1024];
	const char	*cert, *key;
	char		 enc_body[64];
	size_t		 set_bytes;		/* number * ID_LEN */
	uint64_t	 t_start, t_warm_end, t_end;
	atomic_uint_fast64_t claimed;		/* measured calls started */
	/* enc: how many sets may still be stored */
	atomic_size_t	 stored;
	size_t		 max_stored;
	/* dec: sets[0..nwarm) for the warm-up, the rest measured */
	const struct sets *in;
	size_t		 nwarm;
	atomic_size_t	 next_warm, next;
};

struct worker {
	pthread_t	 th;
	struct phase	*ph;
	CURL		*h;
	struct curl_slist *hdrs;
	struct buf	 resp;
	char		*dec_body;
	size_t		 dec_cap;
	char		*ids;			/* enc: IDs of the last answer */
	uint64_t	*lat;
	size_t		 nlat, lat_cap;
	struct sets	 warm, meas;		/* enc: collected key IDs */
	struct counters	 c, warm_c;		/* measured, warm-up */
	long		 connects;
	uint64_t	 last_end;
	int		 setup_failed;
	char		 first_err[256];
};

struct summary {
	struct counters	 c, warm_c;
	long		 connects;
	double		 elapsed_s;
	uint64_t	*lat;
	size_t		 nlat;
	char		 first_err[256];
};

static atomic_int	g_stop;

static void
on_signal(int sig)
{
	(void)sig;
	atomic_store(&g_stop, 1);
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [options]\n"
"Load client for ETSI GS QKD 014 KMEs: enc_keys as the master SAE at URL A,\n"
"then dec_keys of the same key IDs as the slave SAE at URL B. One thread and\n"
"one persistent mutual-TLS connection per connection counted by -c.\n"
"\n"
"  --url-a URL        KME of the master SAE        (env KME_A_URL)\n"
"  --url-b URL        KME of the slave SAE         (env KME_B_URL)\n"
"  --ca FILE          CA of the KME server certs   (env CA)\n"
"  --cert-a FILE      master SAE client cert       (env SAE_A_CERT)\n"
"  --key-a FILE       master SAE client key        (env SAE_A_KEY)\n"
"  --cert-b FILE      slave SAE client cert        (env SAE_B_CERT)\n"
"  --key-b FILE       slave SAE client key         (env SAE_B_KEY)\n"
"  --master ID        master SAE ID                (env SAE_A_ID)\n"
"  --slave ID         slave SAE ID                 (env SAE_B_ID)\n"
"  -c, --conns LIST   connections, e.g. 4 or 1,4; repeatable; each count is\n"
"                     run in turn (default 1, max %d)\n"
"  -d, --duration S   measured seconds per phase (default 5, max %u)\n"
"  --calls N          also stop a phase after N measured calls\n"
"  -n, --number N     keys per call (default 13, max %d)\n"
"  -s, --size BITS    key size in bits, multiple of 8 (default 256)\n"
"  --warmup S         unrecorded seconds before each phase (default 1)\n"
"  --enc-only         skip the dec_keys phase\n"
"  --path-prefix P    API path prefix (default /api/v1/keys)\n"
"  -h, --help         this text\n"
"\n"
"URLs must be https on 127.0.0.1, localhost or [::1].\n"
"Output: a readable block and one `RESULT phase=...` line per phase.\n"
"Exit status: 0 all calls succeeded, 1 usage or setup error,\n"
"2 some calls failed or a phase had nothing to do.\n",
	    MAX_CONNS, MAX_DURATION_S, ETSI_MAX_KEYS);
}

/* ---- options ----------------------------------------------------------- */

static int
parse_uint_opt(const char *name, const char *s, unsigned min, unsigned max,
    unsigned *out)
{
	if (num_uint(s, min, max, out) == 0)
		return 0;
	log_err("%s \"%s\" is not a whole number in %u..%u", name, s, min, max);
	return -1;
}

static int
parse_conns(struct opts *o, const char *arg)
{
	char	 tmp[256], *save = NULL, *tok;

	if (strlen(arg) >= sizeof(tmp)) {
		log_err("-c \"%.40s...\" is too long", arg);
		return -1;
	}
	strcpy(tmp, arg);
	if (tmp[0] == '\0' || tmp[0] == ',' || tmp[strlen(tmp) - 1] == ',' ||
	    strstr(tmp, ",,") != NULL) {
		log_err("-c \"%s\" is not a comma list of counts", arg);
		return -1;
	}
	for (tok = strtok_r(tmp, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (o->nconns == MAX_CONN_RUNS) {
			log_err("-c: more than %d connection counts", MAX_CONN_RUNS);
			return -1;
		}
		if (parse_uint_opt("-c", tok, 1, MAX_CONNS,
		    &o->conns[o->nconns]) == -1)
			return -1;
		o->nconns++;
	}
	return 0;
}

static int
check_prefix(const char *p)
{
	size_t	len = strlen(p);

	if (len == 0 || len > 200 || p[0] != '/' || p[len - 1] == '/' ||
	    strpbrk(p, "?#% \"\t\r\n") != NULL) {
		log_err("--path-prefix \"%s\" must start with '/', not end with "
		    "'/', and hold no '?', '#', '%%', quotes or spaces", p);
		return -1;
	}
	return 0;
}

/* https on 127.0.0.1, localhost or [::1]; nothing else is ever loaded. */
static int
check_url(const char *opt, const char *url)
{
	CURLU	*u;
	char	*scheme = NULL, *host = NULL, *query = NULL;
	int	 rc = -1;

	if ((u = curl_url()) == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		log_err("%s \"%s\" is not a URL", opt, url);
		goto done;
	}
	if (strcmp(scheme, "https") != 0) {
		log_err("%s \"%s\": scheme must be https (mutual TLS)", opt, url);
		goto done;
	}
	if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0 &&
	    strcmp(host, "[::1]") != 0) {
		log_err("%s \"%s\": host \"%s\" refused: only 127.0.0.1, "
		    "localhost or [::1] may be loaded from this machine",
		    opt, url, host);
		goto done;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
		log_err("%s \"%s\": no query string allowed", opt, url);
		goto done;
	}
	rc = 0;
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

static int
need(const char *val, const char *opt, const char *env)
{
	if (val != NULL && *val != '\0')
		return 0;
	log_err("%s not given (option %s or environment %s)", opt + 2, opt, env);
	return -1;
}

static int
check_opts(struct opts *o)
{
	if (need(o->url_a, "--url-a", "KME_A_URL") || need(o->ca, "--ca", "CA") ||
	    need(o->cert_a, "--cert-a", "SAE_A_CERT") ||
	    need(o->key_a, "--key-a", "SAE_A_KEY") ||
	    need(o->master, "--master", "SAE_A_ID") ||
	    need(o->slave, "--slave", "SAE_B_ID"))
		return -1;
	if (!o->enc_only && (need(o->url_b, "--url-b", "KME_B_URL") ||
	    need(o->cert_b, "--cert-b", "SAE_B_CERT") ||
	    need(o->key_b, "--key-b", "SAE_B_KEY")))
		return -1;
	if (!etsi_id_valid(o->master) || !etsi_id_valid(o->slave)) {
		log_err("SAE ID \"%s\" or \"%s\" is not a valid ETSI 014 ID",
		    o->master, o->slave);
		return -1;
	}
	if (o->size % 8 != 0) {
		log_err("-s \"%u\" is not a multiple of 8", o->size);
		return -1;
	}
	if (check_prefix(o->prefix) || check_url("--url-a", o->url_a) ||
	    (!o->enc_only && check_url("--url-b", o->url_b)))
		return -1;
	if (o->nconns == 0)
		o->conns[o->nconns++] = 1;
	return 0;
}

static void
opts_defaults(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->url_a = getenv("KME_A_URL");
	o->url_b = getenv("KME_B_URL");
	o->ca = getenv("CA");
	o->master = getenv("SAE_A_ID");
	o->cert_a = getenv("SAE_A_CERT");
	o->key_a = getenv("SAE_A_KEY");
	o->slave = getenv("SAE_B_ID");
	o->cert_b = getenv("SAE_B_CERT");
	o->key_b = getenv("SAE_B_KEY");
	o->prefix = "/api/v1/keys";
	o->duration_s = 5;
	o->warmup_s = 1;
	o->number = 13;
	o->size = 256;
}

enum { O_URL_A = 256, O_URL_B, O_CA, O_CERT_A, O_KEY_A, O_CERT_B, O_KEY_B,
	O_MASTER, O_SLAVE, O_CALLS, O_WARMUP, O_ENC_ONLY, O_PREFIX };

static const struct option long_opts[] = {
	{ "url-a", required_argument, NULL, O_URL_A },
	{ "url-b", required_argument, NULL, O_URL_B },
	{ "ca", required_argument, NULL, O_CA },
	{ "cert-a", required_argument, NULL, O_CERT_A },
	{ "key-a", required_argument, NULL, O_KEY_A },
	{ "cert-b", required_argument, NULL, O_CERT_B },
	{ "key-b", required_argument, NULL, O_KEY_B },
	{ "master", required_argument, NULL, O_MASTER },
	{ "slave", required_argument, NULL, O_SLAVE },
	{ "conns", required_argument, NULL, 'c' },
	{ "duration", required_argument, NULL, 'd' },
	{ "calls", required_argument, NULL, O_CALLS },
	{ "number", required_argument, NULL, 'n' },
	{ "size", required_argument, NULL, 's' },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "enc-only", no_argument, NULL, O_ENC_ONLY },
	{ "path-prefix", required_argument, NULL, O_PREFIX },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Options that take a number; 0 done, -1 bad value, 1 not one of these. */
static int
parse_num_opt(struct opts *o, int ch, const char *arg)
{
	switch (ch) {
	case 'c':
		return parse_conns(o, arg);
	case 'd':
		return parse_uint_opt("-d", arg, 1, MAX_DURATION_S, &o->duration_s);
	case 'n':
		return parse_uint_opt("-n", arg, 1, ETSI_MAX_KEYS, &o->number);
	case 's':
		return parse_uint_opt("-s", arg, 8, ETSI_MAX_KEY_BYTES * 8, &o->size);
	case O_WARMUP:
		return parse_uint_opt("--warmup", arg, 0, MAX_WARMUP_S, &o->warmup_s);
	case O_CALLS:
		if (num_u64(arg, 1, UINT64_C(1000000000), &o->max_calls) == 0)
			return 0;
		log_err("--calls \"%s\" is not a whole number in 1..1000000000", arg);
		return -1;
	}
	return 1;
}

/* 0: run, 1: help shown, -1: error. */
static int
parse_opts(struct opts *o, int argc, char **argv)
{
	int	ch, rc;

	opts_defaults(o);
	while ((ch = getopt_long(argc, argv, "c:d:n:s:h", long_opts, NULL)) != -1) {
		if ((rc = parse_num_opt(o, ch, optarg)) <= 0) {
			if (rc == -1)
				return -1;
			continue;
		}
		switch (ch) {
		case O_URL_A:	o->url_a = optarg; break;
		case O_URL_B:	o->url_b = optarg; break;
		case O_CA:	o->ca = optarg; break;
		case O_CERT_A:	o->cert_a = optarg; break;
		case O_KEY_A:	o->key_a = optarg; break;
		case O_CERT_B:	o->cert_b = optarg; break;
		case O_KEY_B:	o->key_b = optarg; break;
		case O_MASTER:	o->master = optarg; break;
		case O_SLAVE:	o->slave = optarg; break;
		case O_ENC_ONLY: o->enc_only = 1; break;
		case O_PREFIX:	o->prefix = optarg; break;
		case 'h':	usage(stdout); return 1;
		default:	usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		log_err("unexpected argument \"%s\"", argv[optind]);
		return -1;
	}
	return check_opts(o);
}

/* ---- growable arrays --------------------------------------------------- */

static int
lat_push(struct worker *w, uint64_t ns)
{
	if (w->nlat == w->lat_cap) {
		size_t	 ncap = w->lat_cap ? w->lat_cap * 2 : 4096;
		uint64_t *n = realloc(w->lat, ncap * sizeof(*n));

		if (n == NULL)
			return -1;
		w->lat = n;
		w->lat_cap = ncap;
	}
	w->lat[w->nlat++] = ns;
	return 0;
}

/* Room for one more set of set_bytes; NULL on ENOMEM. */
static char *
sets_push(struct sets *s, size_t set_bytes)
{
	if (s->n == s->cap) {
		size_t	 ncap = s->cap ? s->cap * 2 : 256;
		char	*n = realloc(s->p, ncap * set_bytes);

		if (n == NULL)
			return NULL;
		s->p = n;
		s->cap = ncap;
	}
	return s->p + s->n++ * set_bytes;
}

static void
sets_free(struct sets *s)
{
	free(s->p);
	memset(s, 0, sizeof(*s));
}

/* ---- one call ---------------------------------------------------------- */

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct buf	*b = arg;

	if (buf_add(b, p, size * nmemb) == -1)
		return 0;			/* over MAX_RESP: curl aborts */
	return size * nmemb;
}

static void
note_err(struct worker *w, const char *what, long status)
{
	char	msg[128] = "", detail[96] = "";

	if (w->first_err[0] != '\0')
		return;
	if (status > 0 && w->resp.len > 0)
		(void)etsi_error_parse((const char *)w->resp.data, w->resp.len,
		    msg, sizeof(msg), detail, sizeof(detail));
	snprintf(w->first_err, sizeof(w->first_err), "%s%s%s%s%s", what,
	    msg[0] ? ": " : "", msg, detail[0] ? ": " : "", detail);
}

/* The "keys" array of a Key container with exactly `n` entries, or NULL. */
static json_t *
keys_array(json_t *root, size_t n)
{
	json_t	*keys = json_object_get(root, "keys");

	if (!json_is_array(keys) || json_array_size(keys) != n)
		return NULL;
	return keys;
}

/* key_ID of entry i if it is a UUID and the entry has a key, else NULL. */
static const char *
entry_id(json_t *keys, size_t i)
{
	json_t		*e = json_array_get(keys, i);
	const char	*id = json_string_value(json_object_get(e, "key_ID"));
	const char	*key = json_string_value(json_object_get(e, "key"));
	uint8_t		 bin[16];

	if (id == NULL || key == NULL || *key == '\0' || uuid_parse(id, bin) == -1)
		return NULL;
	return id;
}

/* enc answer: copy the key IDs into set (number * ID_LEN chars). */
static int
enc_check(struct worker *w, char *set)
{
	struct phase	*ph = w->ph;
	json_t		*root, *keys;
	const char	*id;
	int		 rc = -1;

	root = json_loadb((const char *)w->resp.data, w->resp.len, 0, NULL);
	if (root == NULL || (keys = keys_array(root, ph->o->number)) == NULL)
		goto done;
	for (size_t i = 0; i < ph->o->number; i++) {
		if ((id = entry_id(keys, i)) == NULL)
			goto done;
		memcpy(set + i * ID_LEN, id, ID_LEN);
	}
	rc = 0;
done:
	json_decref(root);
	return rc;
}

/* Index of id in set, or -1. */
static long
set_find(const char *set, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(set + i * ID_LEN, id, ID_LEN) == 0)
			return (long)i;
	return -1;
}

/* dec answer: exactly the keys of set, each once. */
static int
dec_check(struct worker *w, const char *set)
{
	size_t		 n = w->ph->o->number;
	unsigned char	 seen[ETSI_MAX_KEYS] = { 0 };
	json_t		*root, *keys;
	const char	*id;
	long		 k;
	int		 rc = -1;

	root = json_loadb((const char *)w->resp.data, w->resp.len, 0, NULL);
	if (root == NULL || (keys = keys_array(root, n)) == NULL)
		goto done;
	for (size_t i = 0; i < n; i++) {
		if ((id = entry_id(keys, i)) == NULL ||
		    (k = set_find(set, n, id)) == -1 || seen[k]++)
			goto done;
	}
	rc = 0;
done:
	json_decref(root);
	return rc;
}

/* {"key_IDs":[{"key_ID":"..."},...]} for one set. */
static const char *
dec_body(struct worker *w, const char *set)
{
	static const char	 head[] = "{\"key_IDs\":[", tail[] = "]}";
	static const char	 e1[] = "{\"key_ID\":\"", e2[] = "\"}";
	char			*p = w->dec_body;

	memcpy(p, head, sizeof(head) - 1);
	p += sizeof(head) - 1;
	for (size_t i = 0; i < w->ph->o->number; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, e1, sizeof(e1) - 1);
		p += sizeof(e1) - 1;
		memcpy(p, set + i * ID_LEN, ID_LEN);
		p += ID_LEN;
		memcpy(p, e2, sizeof(e2) - 1);
		p += sizeof(e2) - 1;
	}
	memcpy(p, tail, sizeof(tail));		/* with the NUL */
	return w->dec_body;
}

/* Keeps the IDs of an enc answer (in w->ids) for the dec phase. */
static int
enc_keep(struct worker *w, int record)
{
	struct phase	*ph = w->ph;
	char		*slot;

	if (ph->o->enc_only || atomic_fetch_add(&ph->stored, 1) >= ph->max_stored)
		return 0;			/* not needed, or memory cap */
	if ((slot = sets_push(record ? &w->meas : &w->warm, ph->set_bytes)) == NULL)
		return -1;
	memcpy(slot, w->ids, ph->set_bytes);
	return 0;
}

enum verdict { CALL_OK, CALL_FAILED, CALL_TRANSPORT };

/* Classifies a finished call and counts its error, if any. */
static enum verdict
judge(struct worker *w, CURLcode cc, long status, const char *set, int record)
{
	struct counters	*c = record ? &w->c : &w->warm_c;
	char		 what[CURL_ERROR_SIZE];

	if (cc != CURLE_OK) {
		snprintf(what, sizeof(what), "transport: %s", curl_easy_strerror(cc));
		note_err(w, what, 0);
		c->transport++;
		return CALL_TRANSPORT;
	}
	if (status != 200) {
		snprintf(what, sizeof(what), "HTTP %ld", status);
		note_err(w, what, status);
		if (status == 503)
			c->unavail++;
		else
			c->http_other++;
		return CALL_FAILED;
	}
	if (w->ph->kind == PH_DEC ? dec_check(w, set) == 0 :
	    enc_check(w, w->ids) == 0) {
		if (w->ph->kind == PH_DEC || enc_keep(w, record) == 0)
			return CALL_OK;
		note_err(w, "out of memory for key IDs", 0);
	} else {
		note_err(w, "HTTP 200 with a body that is not the keys asked for", 0);
	}
	c->bad_body++;
	return CALL_FAILED;
}

/* One request; set is the dec key ID set (NULL for enc). */
static enum verdict
one_call(struct worker *w, const char *set, int record)
{
	struct phase	*ph = w->ph;
	uint64_t	 t0, t1;
	CURLcode	 cc;
	long		 status = 0, nconn = 0;
	enum verdict	 v;

	buf_reset(&w->resp);
	curl_easy_setopt(w->h, CURLOPT_POSTFIELDS,
	    set ? dec_body(w, set) : ph->enc_body);
	t0 = time_mono_ns();
	cc = curl_easy_perform(w->h);
	t1 = time_mono_ns();
	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(w->h, CURLINFO_NUM_CONNECTS, &nconn);
	w->connects += nconn;
	v = judge(w, cc, status, set, record);
	buf_reset(&w->resp);			/* wipe the key bytes */
	if (!record)
		return v;
	w->c.calls++;
	w->last_end = t1;
	if (v == CALL_OK) {
		w->c.ok++;
		if (lat_push(w, t1 - t0) == -1) {
			log_err("out of memory for latencies");
			atomic_store(&g_stop, 1);
		}
	}
	return v;
}

/* ---- workers ----------------------------------------------------------- */

/* "Expect:" stops curl from waiting for 100-continue on large bodies. */
static const char *const req_headers[] = {
	"Content-Type: application/json", "Accept: application/json", "Expect:",
};

static int
worker_open(struct worker *w)
{
	struct phase	*ph = w->ph;
	CURL		*h;

	buf_init(&w->resp, MAX_RESP);
	w->dec_cap = 32 + (size_t)ph->o->number * (ID_LEN + 16);
	if ((w->dec_body = malloc(w->dec_cap)) == NULL ||
	    (w->ids = malloc(ph->set_bytes)) == NULL ||
	    (w->h = h = curl_easy_init()) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(req_headers) / sizeof(req_headers[0]); i++) {
		struct curl_slist *l = curl_slist_append(w->hdrs, req_headers[i]);

		if (l == NULL)
			return -1;
		w->hdrs = l;
	}
	if (curl_easy_setopt(h, CURLOPT_URL, ph->url) ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, w->hdrs) ||
	    curl_easy_setopt(h, CURLOPT_POST, 1L) ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, -1L) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w->resp) ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) ||
	    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L) ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, CALL_TIMEOUT_MS) ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CALL_TIMEOUT_MS) ||
	    curl_easy_setopt(h, CURLOPT_CAINFO, ph->o->ca) ||
	    curl_easy_setopt(h, CURLOPT_SSLCERT, ph->cert) ||
	    curl_easy_setopt(h, CURLOPT_SSLKEY, ph->key) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L))
		return -1;
	return 0;
}

static void
worker_close(struct worker *w)
{
	if (w->h != NULL)
		curl_easy_cleanup(w->h);
	curl_slist_free_all(w->hdrs);
	buf_free(&w->resp);
	free(w->dec_body);
	free(w->ids);
	w->ids = NULL;
	w->h = NULL;
	w->hdrs = NULL;
	w->dec_body = NULL;
}

/* Next dec set: warm-up sets before t_warm_end, then measured ones. */
static const char *
dec_next(struct worker *w, uint64_t now, int *record)
{
	struct phase	*ph = w->ph;
	size_t		 k;

	*record = now >= ph->t_warm_end;
	if (!*record) {
		k = atomic_fetch_add(&ph->next_warm, 1);
		if (k < ph->nwarm)
			return ph->in->p + k * ph->set_bytes;
		time_sleep_ns(ph->t_warm_end - now);	/* warm-up sets used up */
		*record = 1;
	}
	k = ph->nwarm + atomic_fetch_add(&ph->next, 1);
	if (k >= ph->in->n)
		return NULL;
	return ph->in->p + k * ph->set_bytes;
}

/* Measured calls left (the --calls cap and the per-thread cap)? */
static int
may_record(struct worker *w)
{
	struct phase	*ph = w->ph;

	if (w->c.calls >= MAX_CALLS_THREAD)
		return 0;
	return ph->o->max_calls == 0 ||
	    atomic_fetch_add(&ph->claimed, 1) < ph->o->max_calls;
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	struct phase	*ph = w->ph;
	const char	*set = NULL;
	unsigned	 bad_row = 0;
	uint64_t	 now;
	int		 record;

	if (worker_open(w) == -1) {
		w->setup_failed = 1;
		worker_close(w);
		return NULL;
	}
	while (!atomic_load(&g_stop) && (now = time_mono_ns()) < ph->t_end) {
		record = now >= ph->t_warm_end;
		if (ph->kind == PH_DEC && (set = dec_next(w, now, &record)) == NULL)
			break;
		if (record && !may_record(w))
			break;
		if (one_call(w, set, record) != CALL_TRANSPORT)
			bad_row = 0;
		else if (++bad_row == MAX_TRANSPORT_ERRS) {
			log_err("%s: %u transport errors in a row, thread "
			    "stops: %s", ph->url, bad_row, w->first_err);
			break;
		}
	}
	worker_close(w);
	return NULL;
}

/* ---- phases ------------------------------------------------------------ */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void
counters_add(struct counters *t, const struct counters *c)
{
	t->calls += c->calls;
	t->ok += c->ok;
	t->unavail += c->unavail;
	t->http_other += c->http_other;
	t->transport += c->transport;
	t->bad_body += c->bad_body;
}

/* Merges the workers' numbers; latencies sorted. -1 on ENOMEM. */
static int
summarise(struct worker *ws, unsigned n, const struct phase *ph,
    struct summary *s)
{
	uint64_t	last = ph->t_warm_end;
	size_t		total = 0;

	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < n; i++)
		total += ws[i].nlat;
	if ((s->lat = malloc((total ? total : 1) * sizeof(*s->lat))) == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		counters_add(&s->c, &ws[i].c);
		counters_add(&s->warm_c, &ws[i].warm_c);
		s->connects += ws[i].connects;
		if (ws[i].nlat > 0)
			memcpy(s->lat + s->nlat, ws[i].lat,
			    ws[i].nlat * sizeof(*s->lat));
		s->nlat += ws[i].nlat;
		if (ws[i].last_end > last)
			last = ws[i].last_end;
		if (s->first_err[0] == '\0' && ws[i].first_err[0] != '\0')
			memcpy(s->first_err, ws[i].first_err, sizeof(s->first_err));
	}
	qsort(s->lat, s->nlat, sizeof(*s->lat), cmp_u64);
	s->elapsed_s = (double)(last - ph->t_warm_end) / 1e9;
	return 0;
}

/* Nearest-rank percentile (p in 1..100) of sorted v, in ms. */
static double
pct_ms(const uint64_t *v, size_t n, unsigned p)
{
	size_t	rank;

	if (n == 0)
		return 0;
	rank = ((size_t)p * n + 99) / 100;		/* ceil(p/100 * n) */
	return (double)v[(rank ? rank : 1) - 1] / 1e6;
}

/* Exact median of sorted v, in ms. */
static double
median_ms(const uint64_t *v, size_t n)
{
	if (n == 0)
		return 0;
	if (n % 2)
		return (double)v[n / 2] / 1e6;
	return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2e6;
}

static uint64_t
errors_of(const struct counters *c)
{
	return c->unavail + c->http_other + c->transport + c->bad_body;
}

static void
report(const struct phase *ph, unsigned conns, const struct summary *s)
{
	const char	*name = ph->kind == PH_ENC ? "enc" : "dec";
	double		 rate = s->elapsed_s > 0 ? (double)s->c.ok / s->elapsed_s : 0;
	double		 p50 = median_ms(s->lat, s->nlat);
	double		 p90 = pct_ms(s->lat, s->nlat, 90);
	double		 p99 = pct_ms(s->lat, s->nlat, 99);
	double		 max = s->nlat ? (double)s->lat[s->nlat - 1] / 1e6 : 0;

	printf("%s_keys: %u connection%s, %.2f s measured, "
	    "%u keys x %u bits per call\n", name, conns, conns == 1 ? "" : "s", s->elapsed_s, ph->o->number,
	    ph->o->size);
	printf("  calls %llu  ok %llu  errors %llu (503 no key material %llu, "
	    "other HTTP %llu, transport %llu, bad body %llu)  new connections %ld\n",
	    (unsigned long long)s->c.calls, (unsigned long long)s->c.ok,
	    (unsigned long long)errors_of(&s->c), (unsigned long long)s->c.unavail,
	    (unsigned long long)s->c.http_other, (unsigned long long)s->c.transport,
	    (unsigned long long)s->c.bad_body, s->connects);
	printf("  %.1f calls/s (%.0f keys/s)  latency ms: p50 %.3f  p90 %.3f  "
	    "p99 %.3f  max %.3f\n", rate, rate * ph->o->number, p50, p90, p99, max);
	if (errors_of(&s->warm_c) > 0)
		printf("  warm-up errors %llu (not counted above)\n",
		    (unsigned long long)errors_of(&s->warm_c));
	if (s->first_err[0] != '\0')
		printf("  first error: %s\n", s->first_err);
	printf("RESULT phase=%s conns=%u calls=%llu ok=%llu errors=%llu "
	    "unavail=%llu connects=%ld seconds=%.3f calls_per_s=%.1f "
	    "keys_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	    "number=%u size=%u\n", name, conns, (unsigned long long)s->c.calls,
	    (unsigned long long)s->c.ok, (unsigned long long)errors_of(&s->c),
	    (unsigned long long)s->c.unavail, s->connects, s->elapsed_s, rate,
	    rate * ph->o->number, p50, p90, p99, max, ph->o->number, ph->o->size);
	fflush(stdout);
}

static int
phase_init(struct phase *ph, const struct opts *o, enum phase_kind kind,
    const struct sets *in)
{
	const char	*base = kind == PH_ENC ? o->url_a : o->url_b;
	size_t		 blen = strlen(base);
	int		 n;

	memset(ph, 0, sizeof(*ph));
	ph->kind = kind;
	ph->o = o;
	ph->in = in;
	ph->cert = kind == PH_ENC ? o->cert_a : o->cert_b;
	ph->key = kind == PH_ENC ? o->key_a : o->key_b;
	ph->set_bytes = (size_t)o->number * ID_LEN;
	ph->max_stored = MAX_SET_BYTES / ph->set_bytes;
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	n = snprintf(ph->url, sizeof(ph->url), "%.*s%s/%s/%s", (int)blen, base,
	    o->prefix, kind == PH_ENC ? o->slave : o->master,
	    kind == PH_ENC ? "enc_keys" : "dec_keys");
	if (n < 0 || (size_t)n >= sizeof(ph->url)) {
		log_err("URL \"%s\" is too long", base);
		return -1;
	}
	snprintf(ph->enc_body, sizeof(ph->enc_body),
	    "{\"number\":%u,\"size\":%u}", o->number, o->size);
	ph->t_start = time_mono_ns();
	ph->t_warm_end = ph->t_start + o->warmup_s * NS_PER_S;
	ph->t_end = ph->t_warm_end + o->duration_s * NS_PER_S;
	return 0;
}

/*
 * Moves the enc workers' key ID sets into out: warm-up sets first (the dec
 * warm-up uses them), then the measured ones. Returns the warm-up count.
 */
static size_t
collect_sets(struct worker *ws, unsigned n, size_t set_bytes, struct sets *out)
{
	size_t	nwarm = 0, total = 0;
	char	*p;

	for (unsigned i = 0; i < n; i++) {
		nwarm += ws[i].warm.n;
		total += ws[i].warm.n + ws[i].meas.n;
	}
	if (total == 0)
		return 0;
	if ((out->p = malloc(total * set_bytes)) == NULL) {
		log_err("out of memory for %zu key ID sets", total);
		return 0;
	}
	p = out->p;
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < n; i++) {
			struct sets *s = pass == 0 ? &ws[i].warm : &ws[i].meas;

			if (s->n == 0)
				continue;
			memcpy(p, s->p, s->n * set_bytes);
			p += s->n * set_bytes;
		}
	}
	out->n = out->cap = total;
	return nwarm;
}

static void
workers_free(struct worker *ws, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(ws[i].lat);
		sets_free(&ws[i].warm);
		sets_free(&ws[i].meas);
	}
	free(ws);
}

static int
workers_run(struct worker *ws, unsigned n, struct phase *ph)
{
	unsigned	started = 0;
	int		rc = 0;

	for (; started < n; started++) {
		ws[started].ph = ph;
		errno = pthread_create(&ws[started].th, NULL, worker_main,
		    &ws[started]);
		if (errno != 0) {
			log_err("pthread_create: %s", strerror(errno));
			atomic_store(&g_stop, 1);
			rc = -1;
			break;
		}
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(ws[i].th, NULL);
		if (ws[i].setup_failed) {
			log_err("thread %u: cannot set up its curl handle", i);
			rc = -1;
		}
	}
	return rc;
}

/*
 * Runs one phase with `conns` threads. 0: ran without errors, 2: ran with
 * errors, -1: could not run. For enc (unless --enc-only) the key ID sets are
 * left in *sets with *nwarm of them meant for the dec warm-up.
 */
static int
run_phase(const struct opts *o, enum phase_kind kind, unsigned conns,
    struct sets *sets, size_t *nwarm)
{
	struct phase	 ph;
	struct worker	*ws;
	struct summary	 s;
	int		 rc;

	if (phase_init(&ph, o, kind, sets) == -1)
		return -1;
	ph.nwarm = kind == PH_DEC ? *nwarm : 0;
	if ((ws = calloc(conns, sizeof(*ws))) == NULL)
		return -1;
	rc = workers_run(ws, conns, &ph);
	if (rc == 0 && summarise(ws, conns, &ph, &s) == 0) {
		report(&ph, conns, &s);
		rc = s.c.ok == 0 || errors_of(&s.c) > 0 ||
		    errors_of(&s.warm_c) > 0 ? 2 : 0;
		free(s.lat);
	} else {
		rc = -1;
	}
	if (rc != -1 && kind == PH_ENC && !o->enc_only)
		*nwarm = collect_sets(ws, conns, ph.set_bytes, sets);
	workers_free(ws, conns);
	return rc;
}

/* enc then dec with `conns` connections; 0, 2 (errors) or -1. */
static int
run_conns(const struct opts *o, unsigned conns)
{
	struct sets	sets = { NULL, 0, 0 };
	size_t		nwarm = 0;
	int		rc, rc2;

	rc = run_phase(o, PH_ENC, conns, &sets, &nwarm);
	if (rc == -1 || o->enc_only || atomic_load(&g_stop))
		goto done;
	if (sets.n <= nwarm) {
		log_err("dec phase with %u connections skipped: enc_keys gave "
		    "no key IDs to use", conns);
		rc = 2;
		goto done;
	}
	rc2 = run_phase(o, PH_DEC, conns, &sets, &nwarm);
	rc = rc2 == -1 ? -1 : (rc > rc2 ? rc : rc2);
done:
	sets_free(&sets);
	return rc;
}

static void
signals_init(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int
main(int argc, char **argv)
{
	struct opts	o;
	int		rc, worst = 0;

	log_init(PROG, LOG_INFO);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("curl_global_init failed");
		return 1;
	}
	if ((rc = parse_opts(&o, argc, argv)) != 0) {
		curl_global_cleanup();
		return rc == 1 ? 0 : 1;
	}
	sec_json_init();
	signals_init();
	for (size_t i = 0; i < o.nconns && !atomic_load(&g_stop); i++) {
		if ((rc = run_conns(&o, o.conns[i])) == -1) {
			worst = 1;
			break;
		}
		if (rc > worst)
			worst = rc;
	}
	curl_global_cleanup();
	return worst;
}
