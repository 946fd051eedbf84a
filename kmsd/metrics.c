/*
 * kmsd's counters (see metrics.h): C11 atomics, relaxed ordering, rendered
 * in Prometheus text format 0.0.4. Histogram buckets are kept per bucket and
 * summed into cumulative counts when rendered; the latency sum is kept in
 * nanoseconds so that it can be an integer atomic.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kmsd/metrics.h"

typedef atomic_uint_fast64_t metrics_ctr;

static const int metrics_codes[] = { 200, 400, 401, 404, 405, 413, 500, 503 };
#define M_NCODE	     (sizeof(metrics_codes) / sizeof(metrics_codes[0]))
#define M_CODE_OTHER M_NCODE

static const char *const metrics_ep_name[M_NEP] = { "status", "enc_keys",
	"dec_keys", "other" };

static const double metrics_le[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define M_NLE (sizeof(metrics_le) / sizeof(metrics_le[0]))

static metrics_ctr m_requests[M_NEP][M_NCODE + 1];
static metrics_ctr m_keys[M_NEP];
static metrics_ctr m_pool[2];	   /* miss, hit */
static metrics_ctr m_up[M_NEP][2]; /* error, ok */
static metrics_ctr m_up_err[M_NEP];
static metrics_ctr m_hist[M_NLE + 1]; /* last: +Inf */
static metrics_ctr m_hist_sum_ns;
static metrics_ctr m_rolled_back, m_corrupt; /* copies of pool_stats */
static metrics_ctr m_ks_mismatch, m_ks_kme;  /* gauges */

static void
ctr_add(metrics_ctr *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t
ctr_get(metrics_ctr *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static enum metrics_ep
ep_ok(enum metrics_ep ep)
{
	return (unsigned)ep < M_NEP ? ep : M_OTHER;
}

void
metrics_request(enum metrics_ep ep, int http_status)
{
	size_t i;

	for (i = 0; i < M_NCODE; i++)
		if (metrics_codes[i] == http_status)
			break;
	ctr_add(&m_requests[ep_ok(ep)][i], 1);
}

void
metrics_keys_served(enum metrics_ep ep, size_t n)
{
	ctr_add(&m_keys[ep_ok(ep)], n);
}

void
metrics_pool_hit(bool hit)
{
	ctr_add(&m_pool[hit], 1);
}

void
metrics_upstream(enum metrics_ep ep, bool ok, double seconds)
{
	size_t i;

	ctr_add(&m_up[ep_ok(ep)][ok], 1);
	if (!(seconds >= 0)) /* negative or NaN */
		seconds = 0;
	for (i = 0; i < M_NLE; i++)
		if (seconds <= metrics_le[i])
			break;
	ctr_add(&m_hist[i], 1);
	if (seconds > 1e6)
		seconds = 1e6;
	ctr_add(&m_hist_sum_ns, (uint64_t)(seconds * 1e9 + 0.5));
}

void
metrics_upstream_error(enum metrics_ep ep)
{
	ctr_add(&m_up_err[ep_ok(ep)], 1);
}

void
metrics_pool_drops(uint64_t rolled_back_keys, uint64_t corrupt_keys)
{
	atomic_store_explicit(&m_rolled_back, rolled_back_keys,
	    memory_order_relaxed);
	atomic_store_explicit(&m_corrupt, corrupt_keys, memory_order_relaxed);
}

void
metrics_key_size_mismatch(unsigned pairs, unsigned kme_bits)
{
	atomic_store_explicit(&m_ks_mismatch, pairs, memory_order_relaxed);
	atomic_store_explicit(&m_ks_kme, kme_bits, memory_order_relaxed);
}

/* Appends formatted text; -1 if out's bound is reached. */
static int put(struct buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
put(struct buf *out, const char *fmt, ...)
{
	va_list ap;
	char   *p;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (p = (char *)buf_reserve(out, (size_t)n + 1)) == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	out->len--; /* drop the NUL */
	return 0;
}

/* A label value with \, " and newline escaped. */
static int
put_esc(struct buf *out, const char *s)
{
	int rc = 0;

	for (; s != NULL && *s != '\0' && rc == 0; s++) {
		if (*s == '\\')
			rc = buf_add(out, "\\\\", 2);
		else if (*s == '"')
			rc = buf_add(out, "\\\"", 2);
		else if (*s == '\n')
			rc = buf_add(out, "\\n", 2);
		else
			rc = buf_add(out, s, 1);
	}
	return rc;
}

static int
put_head(struct buf *out, const char *name, const char *type, const char *help)
{
	return put(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
render_requests(struct buf *out)
{
	char code[8];
	int  rc;

	rc = put_head(out, "kmsd_requests_total", "counter",
	    "ETSI 014 requests answered, by endpoint and HTTP status.");
	for (size_t ep = 0; rc == 0 && ep < M_NEP; ep++)
		for (size_t i = 0; rc == 0 && i <= M_NCODE; i++) {
			if (i < M_NCODE)
				snprintf(code, sizeof(code), "%d",
				    metrics_codes[i]);
			else
				snprintf(code, sizeof(code), "other");
			rc = put(out,
			    "kmsd_requests_total{endpoint=\"%s\",code=\"%s\"}"
			    " %llu\n",
			    metrics_ep_name[ep], code,
			    (unsigned long long)ctr_get(&m_requests[ep][i]));
		}
	if (rc == 0)
		rc = put_head(out, "kmsd_keys_served_total", "counter",
		    "Keys handed to local SAEs, by endpoint.");
	for (size_t ep = M_ENC; rc == 0 && ep <= M_DEC; ep++)
		rc = put(out, "kmsd_keys_served_total{endpoint=\"%s\"} %llu\n",
		    metrics_ep_name[ep],
		    (unsigned long long)ctr_get(&m_keys[ep]));
	return rc;
}

static int
render_pool_line(struct buf *out, const char *name,
    const struct metrics_pool_gauge *g, size_t v)
{
	int rc;

	rc = put(out, "%s{master=\"", name);
	if (rc == 0)
		rc = put_esc(out, g->master);
	if (rc == 0)
		rc = put(out, "\",slave=\"");
	if (rc == 0)
		rc = put_esc(out, g->slave);
	if (rc == 0)
		rc = put(out, "\"} %zu\n", v);
	return rc;
}

/* Keys the pool refused, and the key size check against the KME. */
/* The pool's integrity checks: one unlabelled sample each. */
static const struct {
	const char  *name, *type, *help;
	metrics_ctr *ctr;
} pool_checks[] = {
	{ "kmsd_pool_rolled_back_keys_total", "counter",
	    "Pooled keys refused at start: leased before, brought back by an "
	    "older copy of the pool database (or not of this pool).",
	    &m_rolled_back },
	{ "kmsd_pool_corrupt_keys_total", "counter",
	    "Pooled keys dropped because their row did not authenticate.",
	    &m_corrupt },
	{ "kmsd_pool_key_size_mismatch", "gauge",
	    "Pooled SAE pairs whose KME default key_size differs from "
	    "the pool's key size.",
	    &m_ks_mismatch },
	{ "kmsd_kme_key_size_bits", "gauge",
	    "The KME's default key_size (bits) as last read from its "
	    "Status for a pooled pair; 0 before the first read.",
	    &m_ks_kme },
};

static int
render_pool_checks(struct buf *out)
{
	size_t i;
	int    rc = 0;

	for (i = 0; rc == 0 && i < sizeof(pool_checks) / sizeof(pool_checks[0]);
	     i++) {
		rc = put_head(out, pool_checks[i].name, pool_checks[i].type,
		    pool_checks[i].help);
		if (rc == 0)
			rc = put(out, "%s %llu\n", pool_checks[i].name,
			    (unsigned long long)ctr_get(pool_checks[i].ctr));
	}
	return rc;
}

static int
render_pool(struct buf *out, const struct metrics_pool_gauge *g, size_t ng)
{
	static const struct {
		const char *name;
		const char *help;
		size_t	    off; /* size_t in struct metrics_pool_gauge */
	} gauges[] = {
		{ "kmsd_pool_keys", "Keys in the pool, by SAE pair.",
		    offsetof(struct metrics_pool_gauge, keys) },
		{ "kmsd_pool_low_watermark",
		    "Pool level below which a refill "
		    "starts, by SAE pair.",
		    offsetof(struct metrics_pool_gauge, low) },
		{ "kmsd_pool_high_watermark",
		    "Pool level a refill stops at, by "
		    "SAE pair.",
		    offsetof(struct metrics_pool_gauge, high) },
	};
	int rc = 0;

	for (size_t j = 0; rc == 0 && j < sizeof(gauges) / sizeof(gauges[0]);
	     j++) {
		rc = put_head(out, gauges[j].name, "gauge", gauges[j].help);
		for (size_t i = 0; rc == 0 && i < ng; i++)
			rc = render_pool_line(out, gauges[j].name, &g[i],
			    *(const size_t *)(const void
				    *)((const char *)&g[i] + gauges[j].off));
	}
	if (rc == 0)
		rc = put_head(out, "kmsd_pool_requests_total", "counter",
		    "enc_keys requests answered from the pool (hit) or not (miss).");
	if (rc == 0)
		rc = put(out,
		    "kmsd_pool_requests_total{result=\"hit\"} %llu\n"
		    "kmsd_pool_requests_total{result=\"miss\"} %llu\n",
		    (unsigned long long)ctr_get(&m_pool[1]),
		    (unsigned long long)ctr_get(&m_pool[0]));
	if (rc == 0)
		rc = render_pool_checks(out);
	return rc;
}

static int
render_upstream(struct buf *out, bool upstream_up)
{
	int rc;

	rc = put_head(out, "kmsd_upstream_requests_total", "counter",
	    "Calls to the KME, by endpoint and result.");
	for (size_t ep = 0; rc == 0 && ep < M_NEP; ep++)
		rc = put(out,
		    "kmsd_upstream_requests_total{endpoint=\"%s\","
		    "result=\"ok\"} %llu\nkmsd_upstream_requests_total{endpoint="
		    "\"%s\",result=\"error\"} %llu\n",
		    metrics_ep_name[ep],
		    (unsigned long long)ctr_get(&m_up[ep][1]),
		    metrics_ep_name[ep],
		    (unsigned long long)ctr_get(&m_up[ep][0]));
	if (rc == 0)
		rc = put_head(out, "kmsd_upstream_errors_total", "counter",
		    "Failed calls to the KME (refusals and transport errors), "
		    "by endpoint.");
	for (size_t ep = 0; rc == 0 && ep < M_NEP; ep++)
		rc = put(out,
		    "kmsd_upstream_errors_total{endpoint=\"%s\"} %llu\n",
		    metrics_ep_name[ep],
		    (unsigned long long)ctr_get(&m_up_err[ep]));
	if (rc == 0)
		rc = put_head(out, "kmsd_upstream_up", "gauge",
		    "1 if the last call to the KME got an HTTP answer.");
	if (rc == 0)
		rc = put(out, "kmsd_upstream_up %d\n", upstream_up ? 1 : 0);
	return rc;
}

static int
render_hist(struct buf *out)
{
	const char *name = "kmsd_upstream_request_duration_seconds";
	uint64_t    cum = 0;
	int	    rc;

	rc = put_head(out, name, "histogram", "Latency of calls to the KME.");
	for (size_t i = 0; rc == 0 && i <= M_NLE; i++) {
		cum += ctr_get(&m_hist[i]);
		if (i < M_NLE)
			rc = put(out, "%s_bucket{le=\"%g\"} %llu\n", name,
			    metrics_le[i], (unsigned long long)cum);
		else
			rc = put(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)cum);
	}
	if (rc == 0)
		rc = put(out, "%s_sum %.9f\n%s_count %llu\n", name,
		    (double)ctr_get(&m_hist_sum_ns) / 1e9, name,
		    (unsigned long long)cum);
	return rc;
}

int
metrics_render(struct buf *out, const struct metrics_pool_gauge *g, size_t ng,
    bool upstream_up)
{
	size_t start = out->len;
	int    rc;

	rc = render_requests(out);
	if (rc == 0)
		rc = render_pool(out, g, ng);
	if (rc == 0)
		rc = render_upstream(out, upstream_up);
	if (rc == 0)
		rc = render_hist(out);
	if (rc == -1)
		out->len = start; /* nothing half-written */
	return rc;
}
