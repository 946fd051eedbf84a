/*
 * kmsd's calls to the site's KME (see upstream.h).
 *
 * Each local SAE identity owns a few libkmsclient handles (one TLS
 * connection each) on a free list: a call borrows one, blocking while all
 * are busy, and gives it back. A handle that saw a transport error is freed
 * on return and created afresh on next use. Identities are reference
 * counted, so that upstream_reload() can swap the table while calls made
 * with the old certificates finish; the last one out frees the old handles.
 *
 * The KME's Status limits are cached per (identity, peer SAE) for
 * UP_LIMITS_TTL_NS and refreshed when the KME refuses a call with a 400
 * that names a limit. Requests above max_key_per_request are split; the
 * parts are joined into one container or, if any part fails, wiped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "kmsclient/kmsclient.h"
#include "kmsd/metrics.h"
#include "kmsd/upstream.h"

#define UP_LIMITS_TTL_NS (60ull * 1000000000ull)
#define UP_DEFAULT_CONNS 4

struct up_ident {
	char		   *sae, *cert, *key;
	pthread_mutex_t	    mu;
	pthread_cond_t	    cv;
	struct kms_client **idle; /* stack; NULL: create on use */
	size_t		    nidle;
	size_t		    nslots;
	atomic_uint	    refs; /* the table's + one per lease */
};

/* The KME's limits as seen by one identity towards one peer SAE. */
struct up_limits {
	struct up_limits *next;
	char		  me[ETSI_ID_MAX + 1];
	char		  peer[ETSI_ID_MAX + 1];
	unsigned	  max_per_req;
	unsigned	  key_size;
	unsigned	  min_key_size;
	unsigned	  max_key_size;
	uint64_t	  at_ns;
};

struct upstream {
	char		 *url;
	char		 *ca;
	long		  timeout_ms;
	unsigned	  conns;
	pthread_mutex_t	  mu; /* ids, nids, lims */
	struct up_ident **ids;
	size_t		  nids;
	struct up_limits *lims;
	atomic_int	  reach;
	atomic_int	  down_logged; /* outage already warned about */
};

/* One borrowed handle. */
struct up_lease {
	struct upstream	  *u;
	struct up_ident	  *id;
	struct kms_client *c;
	bool		   bad; /* transport error: recreate */
};

static void
up_err_set(struct up_err *e, int status, int kms, const char *msg,
    const char *detail)
{
	e->status = status;
	e->kms = kms;
	snprintf(e->message, sizeof(e->message), "%s", msg ? msg : "");
	snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
}

static bool
up_transport(int rc)
{
	return rc == KMS_E_CONNECT || rc == KMS_E_TLS || rc == KMS_E_TIMEOUT;
}

/* --- identities and their handles --- */

static void
ident_free(struct up_ident *id)
{
	if (id == NULL)
		return;
	for (size_t i = 0; id->idle != NULL && i < id->nidle; i++)
		kms_client_free(id->idle[i]);
	free(id->idle);
	pthread_cond_destroy(&id->cv);
	pthread_mutex_destroy(&id->mu);
	free(id->sae);
	free(id->cert);
	free(id->key);
	free(id);
}

static void
ident_unref(struct up_ident *id)
{
	if (id != NULL && atomic_fetch_sub(&id->refs, 1) == 1)
		ident_free(id);
}

static struct kms_client *
ident_client(const struct upstream *u, const struct up_ident *id, char *err,
    size_t errlen)
{
	struct kms_client_cfg cfg = {
		.url = u->url,
		.cert = id->cert,
		.key = id->key,
		.ca = u->ca,
		.timeout_ms = u->timeout_ms,
	};

	return kms_client_new(&cfg, err, errlen);
}

/* A new identity with its first handle made (which checks the files). */
static struct up_ident *
ident_new(const struct upstream *u, const struct upstream_id *in, char *err,
    size_t errlen)
{
	struct up_ident *id;
	char		 cerr[ETSI_ERRLEN];

	if ((id = calloc(1, sizeof(*id))) == NULL)
		goto nomem;
	atomic_init(&id->refs, 1);
	pthread_mutex_init(&id->mu, NULL);
	pthread_cond_init(&id->cv, NULL);
	id->nslots = u->conns;
	if ((id->sae = strdup(in->sae)) == NULL ||
	    (id->cert = strdup(in->cert)) == NULL ||
	    (id->key = strdup(in->key)) == NULL ||
	    (id->idle = calloc(id->nslots, sizeof(*id->idle))) == NULL)
		goto nomem;
	id->nidle = id->nslots;
	if ((id->idle[0] = ident_client(u, id, cerr, sizeof(cerr))) == NULL) {
		snprintf(err, errlen, "upstream identity \"%s\": %s", in->sae,
		    cerr);
		ident_free(id);
		return NULL;
	}
	return id;
nomem:
	snprintf(err, errlen, "out of memory");
	ident_free(id);
	return NULL;
}

static int
ids_check(const struct upstream_id *ids, size_t nids, char *err, size_t errlen)
{
	for (size_t i = 0; i < nids; i++) {
		if (ids[i].sae == NULL || !etsi_id_valid(ids[i].sae)) {
			snprintf(err, errlen,
			    "upstream identity %zu: invalid SAE "
			    "ID \"%s\"",
			    i + 1, ids[i].sae ? ids[i].sae : "");
			return -1;
		}
		if (ids[i].cert == NULL || ids[i].key == NULL) {
			snprintf(err, errlen,
			    "upstream identity \"%s\": needs a "
			    "certificate and a key",
			    ids[i].sae);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(ids[i].sae, ids[j].sae) == 0) {
				snprintf(err, errlen,
				    "upstream identity \"%s\" is "
				    "listed twice",
				    ids[i].sae);
				return -1;
			}
	}
	return 0;
}

static void
table_drop(struct up_ident **t, size_t n)
{
	for (size_t i = 0; t != NULL && i < n; i++)
		ident_unref(t[i]);
	free(t);
}

static struct up_ident **
table_new(const struct upstream *u, const struct upstream_id *ids, size_t nids,
    char *err, size_t errlen)
{
	struct up_ident **t;
	size_t		  i;

	if (ids_check(ids, nids, err, errlen) == -1)
		return NULL;
	if ((t = calloc(nids ? nids : 1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < nids; i++)
		if ((t[i] = ident_new(u, &ids[i], err, errlen)) == NULL) {
			table_drop(t, i);
			return NULL;
		}
	return t;
}

/* Borrows a handle of sae's identity, waiting while all are busy. */
static int
lease_get(struct upstream *u, const char *sae, struct up_lease *l,
    struct up_err *e)
{
	char err[ETSI_ERRLEN];

	memset(l, 0, sizeof(*l));
	l->u = u;
	pthread_mutex_lock(&u->mu);
	for (size_t i = 0; sae != NULL && i < u->nids && l->id == NULL; i++)
		if (strcmp(u->ids[i]->sae, sae) == 0) {
			l->id = u->ids[i];
			atomic_fetch_add(&l->id->refs, 1);
		}
	pthread_mutex_unlock(&u->mu);
	if (l->id == NULL) {
		snprintf(err, sizeof(err),
		    "no upstream identity for SAE \"%.128s\"",
		    sae ? sae : "(null)");
		up_err_set(e, 0, KMS_E_ARG, err, NULL);
		return -1;
	}
	pthread_mutex_lock(&l->id->mu);
	while (l->id->nidle == 0)
		pthread_cond_wait(&l->id->cv, &l->id->mu);
	l->c = l->id->idle[--l->id->nidle];
	pthread_mutex_unlock(&l->id->mu);
	if (l->c == NULL &&
	    (l->c = ident_client(u, l->id, err, sizeof(err))) == NULL) {
		up_err_set(e, 0, KMS_E_ARG, err, NULL);
		return -1;
	}
	return 0;
}

static void
lease_put(struct up_lease *l)
{
	if (l->id == NULL)
		return;
	if (l->bad) {
		kms_client_free(l->c);
		l->c = NULL;
	}
	pthread_mutex_lock(&l->id->mu);
	l->id->idle[l->id->nidle++] = l->c;
	pthread_cond_signal(&l->id->cv);
	pthread_mutex_unlock(&l->id->mu);
	ident_unref(l->id);
	l->id = NULL;
	l->c = NULL;
}

/* --- one upstream call: metrics, reachability, error --- */

static int
call_end(struct up_lease *l, enum metrics_ep ep, int rc, uint64_t t0,
    struct up_err *e)
{
	int status = kms_last_status(l->c);

	metrics_upstream(ep, rc == KMS_OK, (double)(time_mono_ns() - t0) / 1e9);
	if (rc == KMS_OK || status != 0) {
		atomic_store(&l->u->reach, 1);
		if (atomic_exchange(&l->u->down_logged, 0))
			log_info("upstream KME %s answers again", l->u->url);
	} else if (up_transport(rc)) {
		atomic_store(&l->u->reach, 0);
		l->bad = true;
	}
	if (rc == KMS_OK)
		return 0;
	metrics_upstream_error(ep);
	up_err_set(e, status, rc, kms_last_message(l->c),
	    kms_last_detail(l->c));
	return -1;
}

/* --- the KME's limits --- */

static struct up_limits *
lim_find(struct upstream *u, const char *me, const char *peer)
{
	for (struct up_limits *p = u->lims; p != NULL; p = p->next)
		if (strcmp(p->me, me) == 0 && strcmp(p->peer, peer) == 0)
			return p;
	return NULL;
}

/* The Status limits kmsd obeys. */
static void
lim_from_status(struct up_limits *l, const struct etsi_status *st)
{
	l->max_per_req = st->max_key_per_request;
	l->key_size = st->key_size;
	l->min_key_size = st->min_key_size;
	l->max_key_size = st->max_key_size;
}

static void
lim_store(struct upstream *u, const char *me, const char *peer,
    const struct etsi_status *st)
{
	struct up_limits *p;

	pthread_mutex_lock(&u->mu);
	if ((p = lim_find(u, me, peer)) == NULL &&
	    (p = calloc(1, sizeof(*p))) != NULL) {
		snprintf(p->me, sizeof(p->me), "%s", me);
		snprintf(p->peer, sizeof(p->peer), "%s", peer);
		p->next = u->lims;
		u->lims = p;
	}
	if (p != NULL) {
		lim_from_status(p, st);
		p->at_ns = time_mono_ns();
	}
	pthread_mutex_unlock(&u->mu);
}

static bool
lim_cached(struct upstream *u, const char *me, const char *peer,
    struct up_limits *out)
{
	struct up_limits *p;
	bool		  found = false;

	pthread_mutex_lock(&u->mu);
	if ((p = lim_find(u, me, peer)) != NULL && p->at_ns != 0 &&
	    time_mono_ns() - p->at_ns < UP_LIMITS_TTL_NS) {
		*out = *p;
		found = true;
	}
	pthread_mutex_unlock(&u->mu);
	return found;
}

static int
status_call(struct up_lease *l, const char *peer, struct etsi_status *st,
    struct up_err *e)
{
	uint64_t t0 = time_mono_ns();
	int	 rc;

	rc = kms_status(l->c, peer, st);
	if (call_end(l, M_STATUS, rc, t0, e) == -1)
		return -1;
	lim_store(l->u, l->id->sae, peer, st);
	return 0;
}

/*
 * A KME whose Status we cannot use (no such endpoint, or an answer our
 * strict parser refuses) can still serve keys: we just do not split.
 */
static bool
lim_optional(const struct up_err *e)
{
	return e->kms == KMS_E_PROTO || e->status == 404 || e->status == 405 ||
	    e->status == 501;
}

/* Limits for (lease identity, peer): cached, or asked when stale or forced. */
static int
lim_get(struct up_lease *l, const char *peer, bool force, struct up_limits *out,
    struct up_err *e)
{
	struct etsi_status st;

	if (!force && lim_cached(l->u, l->id->sae, peer, out))
		return 0;
	if (status_call(l, peer, &st, e) == -1) {
		if (!lim_optional(e))
			return -1;
		log_warn(
		    "upstream status %s/%s: %s (KME answered %d); requests "
		    "go unsplit",
		    l->id->sae, peer, e->message, e->status);
		memset(&st, 0, sizeof(st));
		memset(e, 0, sizeof(*e));
		lim_store(l->u, l->id->sae, peer, &st);
	}
	memset(out, 0, sizeof(*out));
	lim_from_status(out, &st);
	return 0;
}

/* A 400 that names one of the Status limits: they may have changed. */
static bool
lim_refused(const struct up_err *e)
{
	return e->status == 400 &&
	    (strstr(e->message, "max_key_per_request") ||
		strstr(e->message, "key_size") ||
		strstr(e->message, "max_SAE_ID"));
}

/* --- splitting --- */

struct up_split {
	size_t total; /* keys asked */
	size_t per;   /* keys per call */
	size_t nparts;
	size_t failed; /* index of the part that failed */
};

static void
split_init(struct up_split *s, size_t total, unsigned max_per_req)
{
	s->total = total;
	s->per = max_per_req && max_per_req < total ? max_per_req : total;
	s->nparts = (total + s->per - 1) / s->per;
	s->failed = 0;
}

/* Says which part failed, unless there was only one or it was the first. */
static void
split_blame(const struct up_split *s, size_t k, struct up_err *e)
{
	char msg[sizeof(e->message)];
	int  n;

	if (s->nparts < 2 || k == 0)
		return;
	n = snprintf(msg, sizeof(msg), "%s part %zu of %zu: %s",
	    e->status ? "KME refused" : "KME call failed for", k + 1, s->nparts,
	    e->message);
	if (n > 0)
		memcpy(e->message, msg, sizeof(e->message));
}

/*
 * After a refusal that named a limit: asks the Status again and, if the
 * split changes, re-plans it (true: worth a retry). The refusal stays in e.
 */
static bool
lim_changed(struct up_lease *l, const char *peer, struct up_split *s)
{
	struct up_limits lim;
	struct up_err	 e2;
	size_t		 per = s->per;

	if (lim_get(l, peer, true, &lim, &e2) == -1)
		return false;
	split_init(s, s->total, lim.max_per_req);
	return s->per != per;
}

/* Moves the keys of one part into out at off; frees part. */
static void
keys_move(struct etsi_keys *out, size_t off, struct etsi_keys *part)
{
	for (size_t i = 0; i < part->n; i++) {
		out->v[off + i] = part->v[i];
		part->v[i].key = NULL;
		part->v[i].len = 0;
	}
	etsi_keys_free(part);
}

/* One upstream call for keys [off, off + n) of the request. */
typedef int (*up_part_fn)(struct up_lease *l, const void *arg, size_t off,
    size_t n, struct etsi_keys *out, struct up_err *e);

struct enc_arg {
	const char		  *slave;
	const struct etsi_key_req *req;
};

struct dec_arg {
	const char		  *master;
	const struct etsi_key_ids *ids;
};

static int
enc_part(struct up_lease *l, const void *arg, size_t off, size_t n,
    struct etsi_keys *out, struct up_err *e)
{
	const struct enc_arg *a = arg;
	struct etsi_key_req   part = *a->req;
	uint64_t	      t0 = time_mono_ns();
	int		      rc;

	(void)off;
	part.number = (unsigned)n;
	rc = kms_enc_keys(l->c, a->slave, &part, out);
	return call_end(l, M_ENC, rc, t0, e);
}

static int
dec_part(struct up_lease *l, const void *arg, size_t off, size_t n,
    struct etsi_keys *out, struct up_err *e)
{
	const struct dec_arg *a = arg;
	struct etsi_key_ids   part = { a->ids->ids + off, n };
	uint64_t	      t0 = time_mono_ns();
	int		      rc;

	rc = kms_dec_keys(l->c, a->master, &part, out);
	return call_end(l, M_DEC, rc, t0, e);
}

/*
 * The request in s->nparts calls of at most s->per keys, gathered into one
 * container; if a part fails, what earlier parts fetched is wiped and lost.
 */
static int
split_run(struct up_lease *l, up_part_fn part_fn, const void *arg,
    struct up_split *s, struct etsi_keys *out, struct up_err *e)
{
	struct etsi_keys part;
	size_t		 off = 0;

	if (s->nparts == 1)
		return part_fn(l, arg, 0, s->total, out, e);
	if (etsi_keys_alloc(out, s->total) == -1) {
		up_err_set(e, 0, KMS_E_NOMEM, "out of memory", NULL);
		return -1;
	}
	for (size_t k = 0, n; k < s->nparts; k++, off += n) {
		n = s->total - off < s->per ? s->total - off : s->per;

		if (part_fn(l, arg, off, n, &part, e) == -1) {
			s->failed = k;
			split_blame(s, k, e);
			etsi_keys_free(out);
			return -1;
		}
		keys_move(out, off, &part);
	}
	return 0;
}

/* Refusals are warned about each time; an outage once, until it ends. */
static void
up_log_fail(struct upstream *u, const char *op, const char *me,
    const char *peer, size_t n, const struct up_err *e)
{
	if (e->status == 0 && up_transport(e->kms) &&
	    atomic_exchange(&u->down_logged, 1))
		log_debug("upstream %s %s/%s (%zu keys): %s: %s", op, me, peer,
		    n, kms_strerror(e->kms), e->message);
	else if (e->status != 0)
		log_warn(
		    "upstream %s %s/%s (%zu keys): KME answered %d: %s%s%s", op,
		    me, peer, n, e->status, e->message,
		    e->detail[0] ? ": " : "", e->detail);
	else
		log_warn("upstream %s %s/%s (%zu keys): %s: %s", op, me, peer,
		    n, kms_strerror(e->kms), e->message);
}

static int
count_check(size_t n, struct up_err *e)
{
	char msg[96];

	if (n >= 1 && n <= ETSI_MAX_KEYS)
		return 0;
	snprintf(msg, sizeof(msg), "number %zu is outside 1..%d", n,
	    ETSI_MAX_KEYS);
	up_err_set(e, 0, KMS_E_ARG, msg, NULL);
	return -1;
}

/* --- the API --- */

struct upstream *
upstream_new(const struct upstream_cfg *cfg, char *err, size_t errlen)
{
	struct upstream *u;

	if (cfg == NULL || cfg->url == NULL) {
		snprintf(err, errlen, "upstream URL missing");
		return NULL;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&u->mu, NULL);
	if ((u->url = strdup(cfg->url)) == NULL ||
	    (cfg->ca != NULL && (u->ca = strdup(cfg->ca)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	u->timeout_ms = cfg->timeout_ms;
	u->conns = cfg->conns_per_id ? cfg->conns_per_id : UP_DEFAULT_CONNS;
	atomic_init(&u->reach, 0);
	atomic_init(&u->down_logged, 0);
	if ((u->ids = table_new(u, cfg->ids, cfg->nids, err, errlen)) == NULL)
		goto fail;
	u->nids = cfg->nids;
	return u;
fail:
	upstream_free(u);
	return NULL;
}

void
upstream_free(struct upstream *u)
{
	struct up_limits *p, *next;

	if (u == NULL)
		return;
	table_drop(u->ids, u->nids);
	for (p = u->lims; p != NULL; p = next) {
		next = p->next;
		free(p);
	}
	pthread_mutex_destroy(&u->mu);
	free(u->url);
	free(u->ca);
	free(u);
}

int
upstream_reload(struct upstream *u, const struct upstream_id *ids, size_t nids,
    char *err, size_t errlen)
{
	struct up_ident **t, **old;
	size_t		  nold;

	if ((t = table_new(u, ids, nids, err, errlen)) == NULL)
		return -1;
	pthread_mutex_lock(&u->mu);
	old = u->ids;
	nold = u->nids;
	u->ids = t;
	u->nids = nids;
	pthread_mutex_unlock(&u->mu);
	table_drop(old, nold); /* leased handles go when returned */
	return 0;
}

int
upstream_status(struct upstream *u, const char *master, const char *slave,
    struct etsi_status *out, struct up_err *e)
{
	struct up_lease l;
	int		rc = -1;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	if (lease_get(u, master, &l, e) == -1)
		goto done;
	rc = status_call(&l, slave, out, e);
done:
	lease_put(&l);
	if (rc == -1)
		up_log_fail(u, "status", master ? master : "",
		    slave ? slave : "", 0, e);
	return rc;
}

/*
 * One split request as "me" (the local SAE whose certificate is used) about
 * peer: the KME's limits, the parts, and one retry if the KME refused the
 * first part over a limit that has changed since we read it.
 */
static int
up_run(struct upstream *u, const char *op, const char *me, const char *peer,
    size_t count, up_part_fn part_fn, const void *arg, struct etsi_keys *out,
    struct up_err *e)
{
	struct up_lease	 l;
	struct up_limits lim;
	struct up_split	 s;
	int		 rc = -1;

	memset(out, 0, sizeof(*out));
	memset(e, 0, sizeof(*e));
	memset(&l, 0, sizeof(l));
	if (count_check(count, e) == -1 || lease_get(u, me, &l, e) == -1 ||
	    lim_get(&l, peer, false, &lim, e) == -1)
		goto done;
	split_init(&s, count, lim.max_per_req);
	if ((rc = split_run(&l, part_fn, arg, &s, out, e)) == 0 ||
	    !lim_refused(e) || s.failed != 0)
		goto done;
	/* Refused for a limit before any key was taken: look again, retry. */
	if (lim_changed(&l, peer, &s))
		rc = split_run(&l, part_fn, arg, &s, out, e);
done:
	lease_put(&l);
	if (rc == -1)
		up_log_fail(u, op, me ? me : "", peer ? peer : "", count, e);
	return rc;
}

int
upstream_enc(struct upstream *u, const char *master, const char *slave,
    const struct etsi_key_req *req, struct etsi_keys *out, struct up_err *e)
{
	static const struct etsi_key_req dflt = { .number = 1 };
	struct enc_arg			 a;

	a.slave = slave;
	a.req = req != NULL ? req : &dflt;
	return up_run(u, "enc_keys", master, slave,
	    a.req->number ? a.req->number : 1, enc_part, &a, out, e);
}

int
upstream_dec(struct upstream *u, const char *caller, const char *master,
    const struct etsi_key_ids *ids, struct etsi_keys *out, struct up_err *e)
{
	struct dec_arg a = { master, ids };

	return up_run(u, "dec_keys", caller, master, ids ? ids->n : 0, dec_part,
	    &a, out, e);
}

bool
upstream_reachable(struct upstream *u)
{
	return u != NULL && atomic_load(&u->reach);
}
