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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"

#include "bench/bench.h"

atomic_int bench_stop;

static void
on_signal(int sig)
{
	(void)sig;
	atomic_store(&bench_stop, 1);
}

static int
phase_init(struct phase *ph, const struct opts *o, enum phase_kind kind,
    const struct sets *in)
{
	const char *base = kind == PH_ENC ? o->url_a : o->url_b;
	size_t	    blen = strlen(base);
	int	    n;

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
	size_t nwarm = 0, total = 0;
	char  *p;

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
		bench_sets_free(&ws[i].warm);
		bench_sets_free(&ws[i].meas);
	}
	free(ws);
}

static int
workers_run(struct worker *ws, unsigned n, struct phase *ph)
{
	unsigned started = 0;
	int	 rc = 0;

	for (; started < n; started++) {
		ws[started].ph = ph;
		errno = pthread_create(&ws[started].th, NULL, bench_worker_main,
		    &ws[started]);
		if (errno != 0) {
			log_err("pthread_create: %s", strerror(errno));
			atomic_store(&bench_stop, 1);
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
	struct phase   ph;
	struct worker *ws;
	struct summary s;
	int	       rc;

	if (phase_init(&ph, o, kind, sets) == -1)
		return -1;
	ph.nwarm = kind == PH_DEC ? *nwarm : 0;
	if ((ws = calloc(conns, sizeof(*ws))) == NULL)
		return -1;
	rc = workers_run(ws, conns, &ph);
	if (rc == 0 && bench_summarise(ws, conns, &ph, &s) == 0) {
		bench_report(&ph, conns, &s);
		rc = s.c.ok == 0 || bench_errors(&s.c) > 0 ||
			bench_errors(&s.warm_c) > 0 ?
		    2 :
		    0;
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
	struct sets sets = { NULL, 0, 0 };
	size_t	    nwarm = 0;
	int	    rc, rc2;

	rc = run_phase(o, PH_ENC, conns, &sets, &nwarm);
	if (rc == -1 || o->enc_only || atomic_load(&bench_stop))
		goto done;
	if (sets.n <= nwarm) {
		log_err("dec phase with %u connections skipped: enc_keys gave "
			"no key IDs to use",
		    conns);
		rc = 2;
		goto done;
	}
	rc2 = run_phase(o, PH_DEC, conns, &sets, &nwarm);
	rc = rc2 == -1 ? -1 : (rc > rc2 ? rc : rc2);
done:
	bench_sets_free(&sets);
	return rc;
}

static void
signals_init(void)
{
	struct sigaction sa;

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
	struct opts o;
	int	    rc, worst = 0;

	log_init(PROG, LOG_INFO);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("curl_global_init failed");
		return 1;
	}
	if ((rc = bench_opts_parse(&o, argc, argv)) == -1 || o.help) {
		curl_global_cleanup();
		return rc == -1 ? 1 : 0;
	}
	sec_json_init();
	signals_init();
	for (size_t i = 0; i < o.nconns && !atomic_load(&bench_stop); i++) {
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
