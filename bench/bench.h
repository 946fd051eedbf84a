/*
 * kme-bench's shared parts (bench/kme-bench.c has the tool's overview):
 * limits, options, one phase's state, a worker thread, a phase's summary.
 * Files: opts.c parses and checks the command line, worker.c runs one
 * thread's calls and checks each answer, report.c merges and prints the
 * numbers, kme-bench.c runs the phases.
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "common/uuid.h"

#define PROG		   "kme-bench"
#define MAX_CONNS	   256
#define MAX_CONN_RUNS	   16
#define MAX_CALLS_THREAD   5000000u /* per thread and phase */
#define MAX_DURATION_S	   3600u
#define MAX_WARMUP_S	   60u
#define MAX_RESP	   (16u << 20)	       /* response body cap */
#define MAX_SET_BYTES	   ((size_t)256 << 20) /* stored key IDs, all threads */
#define MAX_TRANSPORT_ERRS 50 /* in a row: the thread gives up */
#define CALL_TIMEOUT_MS	   10000L
#define ID_LEN		   UUID_STRLEN /* ETSI 014: key_ID is a UUID */
#define NS_PER_S	   1000000000ull

enum phase_kind { PH_ENC, PH_DEC };

struct opts {
	const char *url_a, *url_b, *ca;
	const char *cert_a, *key_a, *cert_b, *key_b;
	const char *master, *slave;
	const char *prefix;
	unsigned    conns[MAX_CONN_RUNS];
	size_t	    nconns;
	unsigned    duration_s, warmup_s, number, size;
	uint64_t    max_calls; /* per phase, all threads; 0 = none */
	bool	    enc_only;
	bool	    help; /* --help was asked for (and printed) */
};

/* Key ID sets: `n` sets of `number` IDs of ID_LEN chars each, back to back. */
struct sets {
	char  *p;
	size_t n, cap;
};

struct counters {
	uint64_t calls, ok, unavail, http_other, transport, bad_body;
};

struct phase {
	enum phase_kind	     kind;
	const struct opts   *o;
	char		     url[1024];
	const char	    *cert, *key;
	char		     enc_body[64];
	size_t		     set_bytes; /* number * ID_LEN */
	uint64_t	     t_start, t_warm_end, t_end;
	atomic_uint_fast64_t claimed; /* measured calls started */
	/* enc: how many sets may still be stored */
	atomic_size_t	     stored;
	size_t		     max_stored;
	/* dec: sets[0..nwarm) for the warm-up, the rest measured */
	const struct sets   *in;
	size_t		     nwarm;
	atomic_size_t	     next_warm, next;
};

struct worker {
	pthread_t	   th;
	struct phase	  *ph;
	CURL		  *h;
	struct curl_slist *hdrs;
	struct buf	   resp;
	char		  *dec_body;
	size_t		   dec_cap;
	char		  *ids; /* enc: IDs of the last answer */
	uint64_t	  *lat;
	size_t		   nlat, lat_cap;
	struct sets	   warm, meas; /* enc: collected key IDs */
	struct counters	   c, warm_c;  /* measured, warm-up */
	long		   connects;
	uint64_t	   last_end;
	int		   setup_failed;
	char		   first_err[256];
};

struct summary {
	struct counters c, warm_c;
	long		connects;
	double		elapsed_s;
	uint64_t       *lat;
	size_t		nlat;
	char		first_err[256];
};

/* Set by SIGINT/SIGTERM: every phase ends early. */
extern atomic_int bench_stop;

/* opts.c: 0 to run (o->help: --help printed, do not run), -1 on a bad
 * option (logged). */
int bench_opts_parse(struct opts *o, int argc, char **argv);

/* worker.c: one thread of a phase (pthread start routine; arg: its worker). */
void *bench_worker_main(void *arg);
void  bench_sets_free(struct sets *s);

/* report.c */
int bench_summarise(struct worker *ws, unsigned n, const struct phase *ph,
    struct summary *s); /* -1 on ENOMEM */
void
bench_report(const struct phase *ph, unsigned conns, const struct summary *s);
uint64_t bench_errors(const struct counters *c); /* failed calls */

#endif
