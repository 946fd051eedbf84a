/*
 * The fixture of kmsd/pool's unit tests (test_pool*.c): a private
 * directory per test, key material made once from a fixed seed (key number
 * k: ID "key-kkkk", bytes key_bytes[k]), adding and taking with checks, and
 * the crash child.
 *
 * The crash child is the test binary re-executed with --crash-child: a fresh
 * process (no SQLite connection carried across fork) that opens the pool,
 * takes keys, prints their IDs and then dies without pool_close.
 *
 * Header only (each test is one file, linked alone): every function is
 * static and marked unused, as no test file needs all of them.
 */
#ifndef TESTS_POOL_FX_H
#define TESTS_POOL_FX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "kmsd/pool.h"
#include "tests/unit/testutil.h"

#define FX static __attribute__((unused))

#define KB    32
#define LEASE 16
#define NKEYS 4000 /* key material made once, indexed by key number */

static uint8_t key_bytes[NKEYS][KB];

struct fx {
	char		dir[64];
	char		db[128];
	char		kek[128];
	struct pool_cfg cfg;
};

FX int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL ||
	    testutil_tmpdir(f->dir, sizeof(f->dir), "test_pool") == -1)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/pool.db", f->dir);
	snprintf(f->kek, sizeof(f->kek), "%s/kek", f->dir);
	f->cfg = (struct pool_cfg){ .db_path = f->db,
		.kek_file = f->kek,
		.key_bytes = KB,
		.lease_size = LEASE,
		.ttl_s = 3600 };
	*state = f;
	return 0;
}

FX int
teardown(void **state)
{
	struct fx *f = *state;
	int	   rc = testutil_rmrf(f->dir);

	free(f);
	return rc;
}

FX struct pool *
fx_open(struct fx *f)
{
	char	     err[256];
	struct pool *p = pool_open(&f->cfg, err, sizeof(err));

	if (p == NULL)
		fprintf(stderr, "pool_open: %s\n", err);
	assert_non_null(p);
	return p;
}

/* Keys number first .. first+n-1: ID "key-NNNN" and key_bytes[NNNN]. */
FX void
mk_keys(struct etsi_keys *k, size_t first, size_t n)
{
	assert_true(first + n <= NKEYS);
	assert_int_equal(etsi_keys_alloc(k, n), 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(k->v[i].id, sizeof(k->v[i].id), "key-%04zu",
		    first + i);
		k->v[i].key = sec_alloc(KB);
		assert_non_null(k->v[i].key);
		k->v[i].len = KB;
		memcpy(k->v[i].key, key_bytes[first + i], KB);
	}
}

FX void
add(struct pool *p, const char *m, const char *s, size_t first, size_t n,
    uint64_t fetched_ms, int expect)
{
	struct etsi_keys k;

	mk_keys(&k, first, n);
	assert_int_equal(pool_add(p, m, s, &k, fetched_ms), expect);
	etsi_keys_free(&k);
}

/* As add, in batches of `per` keys: each pool_add batch is one row on disk,
 * and a lease takes whole rows; per = 1 makes lease boundaries exact. */
FX void
add_rows(struct pool *p, const char *m, const char *s, size_t first, size_t n,
    uint64_t fetched_ms, size_t per)
{
	for (size_t i = 0; i < n; i += per)
		add(p, m, s, first + i, n - i < per ? n - i : per, fetched_ms,
		    0);
}

FX size_t
key_num(const char *id)
{
	size_t n;

	assert_int_equal(sscanf(id, "key-%zu", &n), 1);
	assert_true(n < NKEYS);
	return n;
}

/* Takes n keys and checks they are keys first.. in order, bytes equal;
 * counts them in served[] if not NULL. */
FX void
take_served(struct pool *p, const char *m, const char *s, size_t n,
    size_t first, int *served)
{
	struct etsi_keys out;

	assert_int_equal(pool_take(p, m, s, n, &out), 0);
	assert_int_equal(out.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(key_num(out.v[i].id), first + i);
		assert_int_equal(out.v[i].len, KB);
		assert_memory_equal(out.v[i].key, key_bytes[first + i], KB);
		if (served != NULL)
			served[first + i]++;
	}
	etsi_keys_free(&out);
}

FX void
take_expect(struct pool *p, const char *m, const char *s, size_t n,
    size_t first)
{
	take_served(p, m, s, n, first, NULL);
}

FX void
take_short(struct pool *p, const char *m, const char *s, size_t n)
{
	struct etsi_keys out;

	assert_int_equal(pool_take(p, m, s, n, &out), 0);
	assert_int_equal(out.n, 0);
	assert_null(out.v);
}

/* Takes n keys of (sae-a, sae-b), whichever, and counts them in served[]. */
FX size_t
take_ids(struct pool *p, size_t n, int *served)
{
	struct etsi_keys out;
	size_t		 i;

	assert_int_equal(pool_take(p, "sae-a", "sae-b", n, &out), 0);
	assert_int_equal(out.n, n);
	for (i = 0; i < out.n; i++) {
		size_t k = key_num(out.v[i].id);

		assert_memory_equal(out.v[i].key, key_bytes[k], KB);
		served[k]++;
	}
	etsi_keys_free(&out);
	return n;
}

/*
 * No key served twice, and keys lo..hi-1 served once each except those in
 * the ranges never[0..nnever) (inclusive bounds), served never.
 */
FX void
served_check(const int *served, size_t lo, size_t hi, const size_t never[][2],
    size_t nnever)
{
	for (size_t i = lo; i < hi; i++) {
		int gone = 0;

		for (size_t r = 0; r < nnever; r++)
			gone |= i >= never[r][0] && i <= never[r][1];
		assert_true(served[i] <= 1);
		assert_int_equal(served[i], gone ? 0 : 1);
	}
}

/* A restart (p still open) sees exactly n keys, first.. in order, which
 * it serves into served[]; then both close. */
FX void
restart_rest(struct fx *f, struct pool *p, size_t n, size_t first, int *served)
{
	struct pool *p2 = fx_open(f);

	assert_int_equal(pool_count(p2, "sae-a", "sae-b"), n);
	take_served(p2, "sae-a", "sae-b", n, first, served);
	take_short(p2, "sae-a", "sae-b", 1);
	pool_close(p2);
	pool_close(p);
}

/* ---------------------------------------------------------- crash child */

/* Runs this binary as --crash-child; returns its pid, IDs on *rfd. */
FX pid_t
crash_child(struct fx *f, size_t n, const char *how, int *rfd)
{
	char  num[16];
	int   fds[2];
	pid_t pid;

	snprintf(num, sizeof(num), "%zu", n);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/proc/self/exe", "test_pool", "--crash-child", f->db,
		    f->kek, num, how, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*rfd = fds[0];
	return pid;
}

/* Reads the child's served IDs into served[] until "END". */
FX size_t
crash_read(int fd, int *served)
{
	FILE  *in = fdopen(fd, "r");
	char   line[128];
	size_t n = 0;
	int    end = 0;

	assert_non_null(in);
	while (fgets(line, sizeof(line), in) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "END") == 0) {
			end = 1;
			break;
		}
		served[key_num(line)]++;
		n++;
	}
	assert_true(end);
	fclose(in);
	return n;
}

/* A child takes n keys (how "kill": and holds its lease; "pf-kill": also a
 * prefetched standby lease), serves them into served[], and is killed
 * with SIGKILL. */
FX void
crash_kill(struct fx *f, size_t n, const char *how, int *served)
{
	int   fd, st;
	pid_t pid = crash_child(f, n, how, &fd);

	assert_int_equal(crash_read(fd, served), n);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

FX int
crash_child_main(char **argv)
{
	struct pool_cfg	 cfg = { .db_path = argv[2],
		 .kek_file = argv[3],
		 .key_bytes = KB,
		 .lease_size = LEASE,
		 .ttl_s = 3600 };
	struct etsi_keys out;
	char		 err[256];
	struct pool	*p = pool_open(&cfg, err, sizeof(err));
	size_t		 n = strtoul(argv[4], NULL, 10);

	if (p == NULL || pool_take(p, "sae-a", "sae-b", n, &out) != 0 ||
	    out.n != n) {
		fprintf(stderr, "crash child: %s\n", p ? "take failed" : err);
		_exit(1);
	}
	/* "pf-kill": also hold a standby lease from pool_prefetch. */
	if (strncmp(argv[5], "pf-", 3) == 0 &&
	    pool_prefetch(p, "sae-a", "sae-b") != 0) {
		fprintf(stderr, "crash child: prefetch failed\n");
		_exit(1);
	}
	for (size_t i = 0; i < out.n; i++)
		printf("%s\n", out.v[i].id);
	printf("END\n");
	fflush(stdout);
	if (strcmp(argv[5], "kill") == 0 || strcmp(argv[5], "pf-kill") == 0)
		for (;;)
			pause(); /* the parent sends SIGKILL */
	_exit(0);		 /* no pool_close, no atexit */
}

/*
 * Before cmocka in every main: the key material (random-looking, from a
 * fixed seed: splitmix64) and the log; true if this process is a crash
 * child (main returns crash_child_main(argv) then).
 */
FX int
fx_init(int argc, char **argv)
{
	uint64_t x = 1;

	for (size_t i = 0; i < NKEYS; i++)
		for (size_t j = 0; j < KB; j += 8) {
			uint64_t z = (x += 0x9e3779b97f4a7c15ull);

			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
			z ^= z >> 31;
			memcpy(&key_bytes[i][j], &z, 8);
		}
	log_init("test_pool", LOG_ERR);
	return argc == 6 && strcmp(argv[1], "--crash-child") == 0;
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif
