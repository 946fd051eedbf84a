/*
 * One kme-bench thread: its curl handle (one keep-alive mutual-TLS
 * connection), its calls, the check of every answer, its latencies and the
 * key ID sets it keeps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/etsi.h"
#include "common/log.h"
#include "common/timeutil.h"

#include "bench/bench.h"

/* ---- growable arrays --------------------------------------------------- */

static int
lat_push(struct worker *w, uint64_t ns)
{
	if (w->nlat == w->lat_cap) {
		size_t	  ncap = w->lat_cap ? w->lat_cap * 2 : 4096;
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
		size_t ncap = s->cap ? s->cap * 2 : 256;
		char  *n = realloc(s->p, ncap * set_bytes);

		if (n == NULL)
			return NULL;
		s->p = n;
		s->cap = ncap;
	}
	return s->p + s->n++ * set_bytes;
}

void
bench_sets_free(struct sets *s)
{
	free(s->p);
	memset(s, 0, sizeof(*s));
}

/* ---- one call ---------------------------------------------------------- */

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;

	if (buf_add(b, p, size * nmemb) == -1)
		return 0; /* over MAX_RESP: curl aborts */
	return size * nmemb;
}

static void
note_err(struct worker *w, const char *what, long status)
{
	char msg[128] = "", detail[96] = "";

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
	json_t *keys = json_object_get(root, "keys");

	if (!json_is_array(keys) || json_array_size(keys) != n)
		return NULL;
	return keys;
}

/* key_ID of entry i if it is a UUID and the entry has a key, else NULL. */
static const char *
entry_id(json_t *keys, size_t i)
{
	json_t	   *e = json_array_get(keys, i);
	const char *id = json_string_value(json_object_get(e, "key_ID"));
	const char *key = json_string_value(json_object_get(e, "key"));
	uint8_t	    bin[16];

	if (id == NULL || key == NULL || *key == '\0' ||
	    uuid_parse(id, bin) == -1)
		return NULL;
	return id;
}

/* enc answer: copy the key IDs into set (number * ID_LEN chars). */
static int
enc_check(struct worker *w, char *set)
{
	struct phase *ph = w->ph;
	json_t	     *root, *keys;
	const char   *id;
	int	      rc = -1;

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
	size_t	      n = w->ph->o->number;
	unsigned char seen[ETSI_MAX_KEYS] = { 0 };
	json_t	     *root, *keys;
	const char   *id;
	long	      k;
	int	      rc = -1;

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
	static const char head[] = "{\"key_IDs\":[", tail[] = "]}";
	static const char e1[] = "{\"key_ID\":\"", e2[] = "\"}";
	char		 *p = w->dec_body;

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
	memcpy(p, tail, sizeof(tail)); /* with the NUL */
	return w->dec_body;
}

/* Keeps the IDs of an enc answer (in w->ids) for the dec phase. */
static int
enc_keep(struct worker *w, int record)
{
	struct phase *ph = w->ph;
	char	     *slot;

	if (ph->o->enc_only ||
	    atomic_fetch_add(&ph->stored, 1) >= ph->max_stored)
		return 0; /* not needed, or memory cap */
	if ((slot = sets_push(record ? &w->meas : &w->warm, ph->set_bytes)) ==
	    NULL)
		return -1;
	memcpy(slot, w->ids, ph->set_bytes);
	return 0;
}

enum verdict { CALL_OK, CALL_FAILED, CALL_TRANSPORT };

/* Classifies a finished call and counts its error, if any. */
static enum verdict
judge(struct worker *w, CURLcode cc, long status, const char *set, int record)
{
	struct counters *c = record ? &w->c : &w->warm_c;
	char		 what[CURL_ERROR_SIZE];

	if (cc != CURLE_OK) {
		snprintf(what, sizeof(what), "transport: %s",
		    curl_easy_strerror(cc));
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
		note_err(w,
		    "HTTP 200 with a body that is not the keys asked for", 0);
	}
	c->bad_body++;
	return CALL_FAILED;
}

/* One request; set is the dec key ID set (NULL for enc). */
static enum verdict
one_call(struct worker *w, const char *set, int record)
{
	struct phase *ph = w->ph;
	uint64_t      t0, t1;
	CURLcode      cc;
	long	      status = 0, nconn = 0;
	enum verdict  v;

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
	buf_reset(&w->resp); /* wipe the key bytes */
	if (!record)
		return v;
	w->c.calls++;
	w->last_end = t1;
	if (v == CALL_OK) {
		w->c.ok++;
		if (lat_push(w, t1 - t0) == -1) {
			log_err("out of memory for latencies");
			atomic_store(&bench_stop, 1);
		}
	}
	return v;
}

/* ---- workers ----------------------------------------------------------- */

/* "Expect:" stops curl from waiting for 100-continue on large bodies. */
static const char *const req_headers[] = {
	"Content-Type: application/json",
	"Accept: application/json",
	"Expect:",
};

static int
worker_open(struct worker *w)
{
	struct phase *ph = w->ph;
	CURL	     *h;

	buf_init(&w->resp, MAX_RESP);
	w->dec_cap = 32 + (size_t)ph->o->number * (ID_LEN + 16);
	if ((w->dec_body = malloc(w->dec_cap)) == NULL ||
	    (w->ids = malloc(ph->set_bytes)) == NULL ||
	    (w->h = h = curl_easy_init()) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(req_headers) / sizeof(req_headers[0]);
	     i++) {
		struct curl_slist *l =
		    curl_slist_append(w->hdrs, req_headers[i]);

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
	    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
		(long)CURL_HTTP_VERSION_1_1) ||
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
	struct phase *ph = w->ph;
	size_t	      k;

	*record = now >= ph->t_warm_end;
	if (!*record) {
		k = atomic_fetch_add(&ph->next_warm, 1);
		if (k < ph->nwarm)
			return ph->in->p + k * ph->set_bytes;
		time_sleep_ns(ph->t_warm_end - now); /* warm-up sets used up */
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
	struct phase *ph = w->ph;

	if (w->c.calls >= MAX_CALLS_THREAD)
		return 0;
	return ph->o->max_calls == 0 ||
	    atomic_fetch_add(&ph->claimed, 1) < ph->o->max_calls;
}

void *
bench_worker_main(void *arg)
{
	struct worker *w = arg;
	struct phase  *ph = w->ph;
	const char    *set = NULL;
	unsigned       bad_row = 0;
	uint64_t       now;
	int	       record;

	if (worker_open(w) == -1) {
		w->setup_failed = 1;
		worker_close(w);
		return NULL;
	}
	while (
	    !atomic_load(&bench_stop) && (now = time_mono_ns()) < ph->t_end) {
		record = now >= ph->t_warm_end;
		if (ph->kind == PH_DEC &&
		    (set = dec_next(w, now, &record)) == NULL)
			break;
		if (record && !may_record(w))
			break;
		if (one_call(w, set, record) != CALL_TRANSPORT)
			bad_row = 0;
		else if (++bad_row == MAX_TRANSPORT_ERRS) {
			log_err("%s: %u transport errors in a row, thread "
				"stops: %s",
			    ph->url, bad_row, w->first_err);
			break;
		}
	}
	worker_close(w);
	return NULL;
}
