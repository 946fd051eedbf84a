/* kme-bench's numbers: the workers' counters merged, exact percentiles,
 * the report. */
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

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
int
bench_summarise(struct worker *ws, unsigned n, const struct phase *ph,
    struct summary *s)
{
	uint64_t last = ph->t_warm_end;
	size_t	 total = 0;

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
			memcpy(s->first_err, ws[i].first_err,
			    sizeof(s->first_err));
	}
	qsort(s->lat, s->nlat, sizeof(*s->lat), cmp_u64);
	s->elapsed_s = (double)(last - ph->t_warm_end) / 1e9;
	return 0;
}

/* Nearest-rank percentile (p in 1..100) of sorted v, in ms. */
static double
pct_ms(const uint64_t *v, size_t n, unsigned p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = ((size_t)p * n + 99) / 100; /* ceil(p/100 * n) */
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

uint64_t
bench_errors(const struct counters *c)
{
	return c->unavail + c->http_other + c->transport + c->bad_body;
}

void
bench_report(const struct phase *ph, unsigned conns, const struct summary *s)
{
	const char *name = ph->kind == PH_ENC ? "enc" : "dec";
	double rate = s->elapsed_s > 0 ? (double)s->c.ok / s->elapsed_s : 0;
	double p50 = median_ms(s->lat, s->nlat);
	double p90 = pct_ms(s->lat, s->nlat, 90);
	double p99 = pct_ms(s->lat, s->nlat, 99);
	double max = s->nlat ? (double)s->lat[s->nlat - 1] / 1e6 : 0;

	printf("%s_keys: %u connection%s, %.2f s measured, "
	       "%u keys x %u bits per call\n",
	    name, conns, conns == 1 ? "" : "s", s->elapsed_s, ph->o->number,
	    ph->o->size);
	printf(
	    "  calls %llu  ok %llu  errors %llu (503 no key material %llu, "
	    "other HTTP %llu, transport %llu, bad body %llu)  new connections %ld\n",
	    (unsigned long long)s->c.calls, (unsigned long long)s->c.ok,
	    (unsigned long long)bench_errors(&s->c),
	    (unsigned long long)s->c.unavail,
	    (unsigned long long)s->c.http_other,
	    (unsigned long long)s->c.transport,
	    (unsigned long long)s->c.bad_body, s->connects);
	printf("  %.1f calls/s (%.0f keys/s)  latency ms: p50 %.3f  p90 %.3f  "
	       "p99 %.3f  max %.3f\n",
	    rate, rate * ph->o->number, p50, p90, p99, max);
	if (bench_errors(&s->warm_c) > 0)
		printf("  warm-up errors %llu (not counted above)\n",
		    (unsigned long long)bench_errors(&s->warm_c));
	if (s->first_err[0] != '\0')
		printf("  first error: %s\n", s->first_err);
	printf(
	    "RESULT phase=%s conns=%u calls=%llu ok=%llu errors=%llu "
	    "unavail=%llu connects=%ld seconds=%.3f calls_per_s=%.1f "
	    "keys_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	    "number=%u size=%u\n",
	    name, conns, (unsigned long long)s->c.calls,
	    (unsigned long long)s->c.ok,
	    (unsigned long long)bench_errors(&s->c),
	    (unsigned long long)s->c.unavail, s->connects, s->elapsed_s, rate,
	    rate * ph->o->number, p50, p90, p99, max, ph->o->number,
	    ph->o->size);
	fflush(stdout);
}
