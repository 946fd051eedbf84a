/*
 * kmsd/pool's leases: the crash case (a real process killed with SIGKILL
 * while holding a lease, and one holding a prefetched standby lease too),
 * batches larger than a lease, concurrent takers (also with a prefetcher
 * and an adder), and background leases.
 */
#include "tests/unit/pool_fx.h"

#include <pthread.h>

static void
test_crash(void **state)
{
	static const size_t never[][2] = { { 21, 31 }, { 34, 47 } };
	struct fx	   *f = *state;
	static int	    served[NKEYS];
	struct pool	   *p = fx_open(f);
	int		    fd, st;
	pid_t		    pid;

	memset(served, 0, sizeof(served));
	add_rows(p, "sae-a", "sae-b", 0, 100, time_real_ms(), 1);
	/* This process holds a lease of 0..15 and has served 0..2. */
	take_served(p, "sae-a", "sae-b", 3, 0, served);

	/* Child 1 leases 16..31, serves 5, and is killed with SIGKILL. */
	crash_kill(f, 5, "kill", served);
	/* Child 2 leases 32..47, serves 2, and _exit()s without closing. */
	pid = crash_child(f, 2, "exit", &fd);
	assert_int_equal(crash_read(fd, served), 2);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* This process goes on serving its own lease... */
	take_served(p, "sae-a", "sae-b", 13, 3, served);
	/* ...and a restart sees exactly the keys nobody ever leased. */
	restart_rest(f, p, 52, 48, served);

	/* No key twice; the dead children's leased-but-unserved keys never. */
	served_check(served, 0, 100, never, 2);
}

/* Batches larger than a lease: leases are rounded up to whole rows, counts
 * stay exact, and a crash loses at most the rows the dead process leased. */
static void
test_batches(void **state)
{
	static const size_t never[][2] = {
		{ 85, 119 },  /* the child's unserved */
		{ 125, 159 }, /* p's memory at close */
	};
	struct fx   *f = *state;
	static int   served[NKEYS];
	struct pool *p = fx_open(f);
	uint64_t     now = time_real_ms();

	memset(served, 0, sizeof(served));
	for (size_t i = 0; i < 200; i += 40)
		add(p, "sae-a", "sae-b", i, 40, now, 0); /* 5 rows */
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 200);
	take_ids(p, 3, served); /* leases row 0..39 */
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 197);
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0); /* 37: none */
	take_ids(p, 6, served);					 /* 31 left */
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0); /* 40..79 */
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 191);
	/* A child leases row 80..119, serves 80..84, is killed. */
	crash_kill(f, 5, "kill", served);
	/* This process: 9..79 from memory, then row 120..159 (120..124). */
	take_served(p, "sae-a", "sae-b", 71, 9, served);
	take_ids(p, 5, served);
	/* A restart sees row 160..199 only. */
	restart_rest(f, p, 40, 160, served);
	served_check(served, 0, 200, never, 2);
}

/* A batch of more than one row's worth (1024 keys) splits in rows. */
static void
test_big_batch(void **state)
{
	struct fx   *f = *state;
	uint64_t     now = time_real_ms();
	struct pool *p;

	f->cfg.lease_size = 1;
	p = fx_open(f);
	add(p, "sae-a", "sae-c", 1000, 1500, now, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 1500);
	take_expect(p, "sae-a", "sae-c", 1, 1000);
	pool_close(p);
	/* The rest of the first row (1001..2023) was put back at close. */
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 1499);
	take_expect(p, "sae-a", "sae-c", 1500 - 1024, 2024);
	take_expect(p, "sae-a", "sae-c", 1023, 1001);
	pool_close(p);
}

/* ---------------------------------------------------------- concurrency */

#define NTHREADS 4
#define NCONC	 2600

struct taker {
	struct pool *p;
	size_t	     n;
	int	     ids[NKEYS];
	int	     bad;
};

static void *
taker_main(void *arg)
{
	struct taker	*t = arg;
	struct etsi_keys out;
	int		 rc;

	while ((rc = pool_take(t->p, "sae-a", "sae-b", 13, &out)) == 0 &&
	    out.n > 0) {
		for (size_t i = 0; i < out.n; i++) {
			size_t k;

			if (sscanf(out.v[i].id, "key-%zu", &k) != 1 ||
			    k >= NKEYS || t->n >= NKEYS ||
			    memcmp(out.v[i].key, key_bytes[k], KB) != 0)
				t->bad++;
			else
				t->ids[t->n++] = (int)k;
		}
		etsi_keys_free(&out);
	}
	if (rc != 0) /* the loop ends on "too few", never on an error */
		t->bad++;
	return NULL;
}

/* Keys 0..NCONC-1 in batches of 500. */
static void
add_conc(struct pool *p)
{
	for (size_t b = 0; b < NCONC; b += 500)
		add(p, "sae-a", "sae-b", b, NCONC - b < 500 ? NCONC - b : 500,
		    time_real_ms(), 0);
}

static void
takers_start(struct pool *p, struct taker *t, pthread_t *th)
{
	for (int i = 0; i < NTHREADS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].p = p;
		assert_int_equal(pthread_create(&th[i], NULL, taker_main,
				     &t[i]),
		    0);
	}
}

/* Joins the takers; no key twice; how many they took. */
static size_t
takers_total(struct taker *t, pthread_t *th)
{
	static int seen[NKEYS];
	size_t	   total = 0;

	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
		for (size_t j = 0; j < t[i].n; j++)
			seen[t[i].ids[j]]++;
		total += t[i].n;
	}
	for (size_t k = 0; k < NKEYS; k++)
		assert_true(seen[k] <= 1);
	return total;
}

static void
test_threads(void **state)
{
	struct fx	   *f = *state;
	static struct taker t[NTHREADS];
	pthread_t	    th[NTHREADS];
	struct pool	   *p = fx_open(f);
	size_t		    total;

	add_conc(p);
	takers_start(p, t, th);
	total = takers_total(t, th);
	assert_int_equal(total + pool_count(p, "sae-a", "sae-b"), NCONC);
	assert_true(pool_count(p, "sae-a", "sae-b") < 13);
	pool_close(p);
}

/* ------------------------------------------------------------ prefetch */

/* Called from the taker threads in test_threads_prefetch. */
static void
count_notify(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_RELAXED);
}

/* Background leases: same order, exact counts, the notify hint, restarts. */
static void
test_prefetch(void **state)
{
	struct fx   *f = *state;
	struct pool *p = fx_open(f);
	uint64_t     now = time_real_ms();
	int	     kicks = 0;

	/* Nothing to do: unknown pair, empty pair. */
	assert_int_equal(pool_prefetch(p, "sae-q", "sae-r"), 0);
	add_rows(p, "sae-a", "sae-b", 0, 200, now, 1);
	pool_set_notify(p, count_notify, &kicks);
	/* Memory tops up to 3 leases (48 keys); the count does not move. */
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 200);
	/* At or above 2 leases in memory: no lease, no kick. */
	take_expect(p, "sae-a", "sae-b", 10, 0);
	assert_int_equal(kicks, 0);
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	take_expect(p, "sae-a", "sae-b", 7, 10); /* 31 left: one kick */
	assert_int_equal(kicks, 1);
	take_expect(p, "sae-a", "sae-b", 1, 17);
	assert_int_equal(kicks, 1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 182);
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	take_expect(p, "sae-a", "sae-b", 1, 18); /* 18..65: 47 left */
	assert_int_equal(kicks, 1);
	/* Served in order across prefetched leases and a synchronous one
	 * (66..81), which leaves 3 in memory: it asks again. */
	take_expect(p, "sae-a", "sae-b", 60, 19);
	assert_int_equal(kicks, 2);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 121);
	/* 79..81 in memory, 82..199 on disk; the close puts 79..81 back. */
	pool_close(p);
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 121);
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	take_expect(p, "sae-a", "sae-b", 118, 82);
	take_expect(p, "sae-a", "sae-b", 3, 79);
	take_short(p, "sae-a", "sae-b", 1);
	/* An empty disk asks no more until keys are added. */
	kicks = 0;
	pool_set_notify(p, count_notify, &kicks);
	add_rows(p, "sae-a", "sae-b", 300, 20, now, 1);
	take_expect(p, "sae-a", "sae-b", 1, 300);
	assert_int_equal(kicks, 1);
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	take_expect(p, "sae-a", "sae-b", 1, 301);
	take_expect(p, "sae-a", "sae-b", 1, 302);
	assert_int_equal(kicks, 1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 17);
	pool_set_notify(p, NULL, NULL);
	pool_close(p);
}

/* Prefetched keys expire in memory like any leased key. */
static void
test_prefetch_ttl(void **state)
{
	struct fx   *f = *state;
	struct pool *p;

	f->cfg.ttl_s = 1;
	p = fx_open(f);
	add(p, "sae-a", "sae-b", 0, 10, time_real_ms() - 700, 0);
	add(p, "sae-a", "sae-b", 10, 10, time_real_ms() + 5000, 0);
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 20);
	take_expect(p, "sae-a", "sae-b", 2, 0);
	time_sleep_ns(500 * 1000000ull);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 10);
	take_expect(p, "sae-a", "sae-b", 10, 10);
	take_short(p, "sae-a", "sae-b", 1);
	pool_close(p);
}

/* A child holding a prefetched standby lease is killed: none of it is ever
 * served, by anyone. */
static void
test_crash_standby(void **state)
{
	static const size_t never[][2] = {
		{ 53, 100 },  /* the child's unserved keys */
		{ 106, 116 }, /* still in p's memory */
	};
	struct fx   *f = *state;
	static int   served[NKEYS];
	struct pool *p = fx_open(f);

	memset(served, 0, sizeof(served));
	add_rows(p, "sae-a", "sae-b", 0, 200, time_real_ms(), 1);
	/* This process prefetches 0..47 (3 leases' worth), serves 0..2. */
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	take_ids(p, 3, served);
	/* The child: leases 48..63, serves 48..52, tops its memory up with
	 * 64..100 (to 48 keys), and is killed with SIGKILL. */
	crash_kill(f, 5, "pf-kill", served);
	/* This process serves its memory (3..47) and a new lease 101..116
	 * (101..105 served, 106..116 kept). */
	take_ids(p, 50, served);
	/* A restart sees only keys nobody leased: 117..199. */
	restart_rest(f, p, 83, 117, served);
	served_check(served, 0, 200, never, 2);
}

/* Takers, a prefetcher and an adder at once: no key twice, exact count. */
struct prefetcher {
	struct pool *p;
	int	     stop; /* __atomic */
	int	     bad;
	size_t	     added;
};

static void *
prefetcher_main(void *arg)
{
	struct prefetcher *pf = arg;

	while (!__atomic_load_n(&pf->stop, __ATOMIC_RELAXED))
		if (pool_prefetch(pf->p, "sae-a", "sae-b") != 0)
			pf->bad++;
	return NULL;
}

static void *
adder_main(void *arg)
{
	struct prefetcher *pf = arg;
	struct etsi_keys   k;

	/* Keys NCONC.. in batches of 50, while the takers run. */
	for (size_t b = NCONC; b + 50 <= NKEYS; b += 50) {
		mk_keys(&k, b, 50);
		if (pool_add(pf->p, "sae-a", "sae-b", &k, time_real_ms()) != 0)
			pf->bad++;
		else
			pf->added += 50;
		etsi_keys_free(&k);
	}
	return NULL;
}

static void
test_threads_prefetch(void **state)
{
	struct fx	   *f = *state;
	static struct taker t[NTHREADS];
	struct prefetcher   pf;
	pthread_t	    th[NTHREADS], pth, ath;
	struct pool	   *p;
	size_t		    total;
	int		    kicks = 0;

	f->cfg.lease_size = 64;
	p = fx_open(f);
	pool_set_notify(p, count_notify, &kicks);
	memset(&pf, 0, sizeof(pf));
	pf.p = p;
	add_conc(p);
	assert_int_equal(pthread_create(&pth, NULL, prefetcher_main, &pf), 0);
	assert_int_equal(pthread_create(&ath, NULL, adder_main, &pf), 0);
	takers_start(p, t, th);
	pthread_join(ath, NULL);
	total = takers_total(t, th);
	__atomic_store_n(&pf.stop, 1, __ATOMIC_RELAXED);
	pthread_join(pth, NULL);
	assert_int_equal(pf.bad, 0);
	/* Takers stop at their first short answer; what is left is exact. */
	assert_int_equal(total + pool_count(p, "sae-a", "sae-b"),
	    NCONC + pf.added);
	pool_set_notify(p, NULL, NULL);
	pool_close(p);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_crash),
		FX_TEST(test_batches),
		FX_TEST(test_big_batch),
		FX_TEST(test_threads),
		FX_TEST(test_prefetch),
		FX_TEST(test_prefetch_ttl),
		FX_TEST(test_crash_standby),
		FX_TEST(test_threads_prefetch),
	};

	if (fx_init(argc, argv))
		return crash_child_main(argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
