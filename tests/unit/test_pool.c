/*
 * kmsd/pool: round trip, all or nothing, pairs, TTL, restarts, the crash
 * case (a real process killed with SIGKILL while holding a lease, and one
 * holding a prefetched standby lease too), nothing in clear on disk,
 * concurrent takers (also with a prefetcher and an adder), background
 * leases, the key ID set, and the refusals at open.
 *
 * The crash child is this binary re-executed with --crash-child: a fresh
 * process (no SQLite connection carried across fork) that opens the pool,
 * takes keys, prints their IDs and then dies without pool_close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "kmsd/pool.h"

#define KB	32
#define LEASE	16
#define NKEYS	4000	/* key material made once, indexed by key number */

static uint8_t	key_bytes[NKEYS][KB];

struct fx {
	char		dir[64];
	char		db[128];
	char		kek[128];
	struct pool_cfg	cfg;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_pool.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/pool.db", f->dir);
	snprintf(f->kek, sizeof(f->kek), "%s/kek", f->dir);
	f->cfg = (struct pool_cfg){ .db_path = f->db, .kek_file = f->kek,
	    .key_bytes = KB, .lease_size = LEASE, .ttl_s = 3600 };
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct pool *
fx_open(struct fx *f)
{
	char err[256];
	struct pool *p = pool_open(&f->cfg, err, sizeof(err));

	if (p == NULL)
		fprintf(stderr, "pool_open: %s\n", err);
	assert_non_null(p);
	return p;
}

/* Keys number first .. first+n-1: ID "key-NNNN" and key_bytes[NNNN]. */
static void
mk_keys(struct etsi_keys *k, size_t first, size_t n)
{
	assert_true(first + n <= NKEYS);
	assert_int_equal(etsi_keys_alloc(k, n), 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(k->v[i].id, sizeof(k->v[i].id), "key-%04zu", first + i);
		k->v[i].key = sec_alloc(KB);
		assert_non_null(k->v[i].key);
		k->v[i].len = KB;
		memcpy(k->v[i].key, key_bytes[first + i], KB);
	}
}

static void
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
static void
add_rows(struct pool *p, const char *m, const char *s, size_t first,
    size_t n, uint64_t fetched_ms, size_t per)
{
	for (size_t i = 0; i < n; i += per)
		add(p, m, s, first + i, n - i < per ? n - i : per, fetched_ms, 0);
}

static size_t
key_num(const char *id)
{
	size_t n;

	assert_int_equal(sscanf(id, "key-%zu", &n), 1);
	assert_true(n < NKEYS);
	return n;
}

/* Takes n keys and checks they are keys first.. in order, bytes equal. */
static void
take_expect(struct pool *p, const char *m, const char *s, size_t n,
    size_t first)
{
	struct etsi_keys out;

	assert_int_equal(pool_take(p, m, s, n, &out), 0);
	assert_int_equal(out.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(key_num(out.v[i].id), first + i);
		assert_int_equal(out.v[i].len, KB);
		assert_memory_equal(out.v[i].key, key_bytes[first + i], KB);
	}
	etsi_keys_free(&out);
}

static void
take_short(struct pool *p, const char *m, const char *s, size_t n)
{
	struct etsi_keys out;

	assert_int_equal(pool_take(p, m, s, n, &out), 1);
	assert_int_equal(out.n, 0);
	assert_null(out.v);
}

static void
test_round_trip(void **state)
{
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	uint64_t now = time_real_ms();

	add(p, "sae-a", "sae-b", 0, 40, now, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 40);
	take_expect(p, "sae-a", "sae-b", 13, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 27);
	take_expect(p, "sae-a", "sae-b", 13, 13);
	take_expect(p, "sae-a", "sae-b", 13, 26);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 1);
	/* All or nothing: the last key stays. */
	take_short(p, "sae-a", "sae-b", 13);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 1);
	take_expect(p, "sae-a", "sae-b", 1, 39);
	take_short(p, "sae-a", "sae-b", 1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	/* Requests larger than a lease. */
	add(p, "sae-a", "sae-b", 100, 50, now, 0);
	take_expect(p, "sae-a", "sae-b", 45, 100);
	take_short(p, "sae-a", "sae-b", 6);
	take_expect(p, "sae-a", "sae-b", 5, 145);
	pool_close(p);
	pool_close(NULL);
}

static void
test_all_or_nothing(void **state)
{
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	uint64_t now = time_real_ms();

	add(p, "sae-a", "sae-b", 0, 5, now, 0);
	take_short(p, "sae-a", "sae-b", 6);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 5);
	/* More keys arrive: the short lease is still served first. */
	add(p, "sae-a", "sae-b", 5, 30, now, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 35);
	take_expect(p, "sae-a", "sae-b", 6, 0);
	take_expect(p, "sae-a", "sae-b", 29, 6);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	pool_close(p);
}

static void
test_pairs(void **state)
{
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	uint64_t now = time_real_ms();

	add(p, "sae-a", "sae-b", 0, 20, now, 0);
	add(p, "sae-a", "sae-c", 20, 20, now, 0);
	add(p, "sae-x", "sae-b", 40, 20, now, 0);
	take_expect(p, "sae-a", "sae-c", 3, 20);
	take_expect(p, "sae-x", "sae-b", 3, 40);
	take_expect(p, "sae-a", "sae-b", 3, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 17);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 17);
	assert_int_equal(pool_count(p, "sae-x", "sae-b"), 17);
	/* Reversed roles and unknown pairs get nothing. */
	assert_int_equal(pool_count(p, "sae-b", "sae-a"), 0);
	take_short(p, "sae-b", "sae-a", 1);
	take_short(p, "sae-q", "sae-r", 1);
	take_expect(p, "sae-a", "sae-c", 17, 23);
	take_short(p, "sae-a", "sae-c", 1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 17);
	pool_close(p);
}

static void
test_ttl(void **state)
{
	struct fx *f = *state;
	struct pool *p;
	uint64_t now = time_real_ms();

	f->cfg.ttl_s = 60;
	p = fx_open(f);
	/* Expired on disk: never counted, never served. */
	add(p, "sae-a", "sae-b", 0, 5, now - 120000, 0);
	add(p, "sae-a", "sae-b", 5, 5, now, 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 5);
	take_short(p, "sae-a", "sae-b", 6);
	take_expect(p, "sae-a", "sae-b", 5, 5);
	/* Expired rows dropped at lease time. */
	add(p, "sae-a", "sae-b", 10, 5, now - 120000, 0);
	add(p, "sae-a", "sae-b", 15, 5, now, 0);
	take_expect(p, "sae-a", "sae-b", 5, 15);
	/* pool_expire counts disk and lease. */
	add(p, "sae-a", "sae-c", 20, 3, now - 120000, 0);
	add(p, "sae-a", "sae-c", 23, 30, now, 0);
	take_expect(p, "sae-a", "sae-c", 1, 23);	/* 15 leased, 14 on disk */
	assert_int_equal(pool_expire(p, now), 0);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 29);
	assert_int_equal(pool_expire(p, now + 61000), 29);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 0);
	take_short(p, "sae-a", "sae-c", 1);
	pool_close(p);

	/* A leased key that expires while in memory is not served. */
	f->cfg.ttl_s = 1;
	p = fx_open(f);
	add(p, "sae-a", "sae-d", 100, 4, time_real_ms() - 700, 0);
	take_expect(p, "sae-a", "sae-d", 1, 100);
	assert_int_equal(pool_count(p, "sae-a", "sae-d"), 3);
	time_sleep_ns(500 * 1000000ull);
	assert_int_equal(pool_count(p, "sae-a", "sae-d"), 0);
	take_short(p, "sae-a", "sae-d", 1);
	pool_close(p);
}

static void
test_add_errors(void **state)
{
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	uint64_t now = time_real_ms();
	struct etsi_keys k;

	add(p, "sae-a", "sae-b", 0, 20, now, 0);
	/* Wrong size: the whole batch is refused. */
	mk_keys(&k, 100, 3);
	k.v[1].len = 16;
	assert_int_equal(pool_add(p, "sae-a", "sae-b", &k, now), -1);
	k.v[1].len = KB;
	/* Repeated in the batch. */
	snprintf(k.v[2].id, sizeof(k.v[2].id), "%s", k.v[0].id);
	assert_int_equal(pool_add(p, "sae-a", "sae-b", &k, now), -1);
	etsi_keys_free(&k);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 20);
	/* Already on disk (even for another pair), and already leased. */
	add(p, "sae-a", "sae-c", 19, 2, now, -1);
	take_expect(p, "sae-a", "sae-b", 1, 0);		/* 1..15 leased */
	add(p, "sae-a", "sae-b", 5, 1, now, -1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 19);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 0);
	/* Bad SAE IDs. */
	add(p, "", "sae-b", 200, 1, now, -1);
	add(p, "sae-a", "sae/b", 200, 1, now, -1);
	/* Nothing of the refused batches is there. */
	take_expect(p, "sae-a", "sae-b", 19, 1);
	take_short(p, "sae-a", "sae-b", 1);
	pool_close(p);
}

static void
test_reopen(void **state)
{
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	uint64_t now = time_real_ms();

	add_rows(p, "sae-a", "sae-b", 0, 50, now, 1);
	add_rows(p, "sae-a", "sae-c", 50, 10, now, 1);
	take_expect(p, "sae-a", "sae-b", 5, 0);		/* leases 0..15 */
	pool_close(p);
	/* A graceful close puts the unserved rest of the lease back on disk,
	 * after the rows already there; nothing served comes back. */
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 45);
	assert_int_equal(pool_count(p, "sae-a", "sae-c"), 10);
	take_expect(p, "sae-a", "sae-b", 34, 16);
	take_expect(p, "sae-a", "sae-b", 11, 5);
	take_short(p, "sae-a", "sae-b", 1);
	take_expect(p, "sae-a", "sae-c", 10, 50);
	pool_close(p);
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	pool_close(p);
}

/* ---------------------------------------------------------- crash case */

/* Runs this binary as --crash-child; returns its pid, IDs on *rfd. */
static pid_t
crash_child(struct fx *f, size_t n, const char *how, int *rfd)
{
	char num[16];
	int fds[2];
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
static size_t
crash_read(int fd, int *served)
{
	FILE *in = fdopen(fd, "r");
	char line[128];
	size_t n = 0;
	int end = 0;

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

static int
crash_child_main(char **argv)
{
	struct pool_cfg cfg = { .db_path = argv[2], .kek_file = argv[3],
	    .key_bytes = KB, .lease_size = LEASE, .ttl_s = 3600 };
	struct etsi_keys out;
	char err[256];
	struct pool *p = pool_open(&cfg, err, sizeof(err));
	size_t n = strtoul(argv[4], NULL, 10);

	if (p == NULL || pool_take(p, "sae-a", "sae-b", n, &out) != 0) {
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
			pause();	/* the parent sends SIGKILL */
	_exit(0);			/* no pool_close, no atexit */
}

static void
test_crash(void **state)
{
	struct fx *f = *state;
	static int served[NKEYS];
	struct etsi_keys out;
	struct pool *p = fx_open(f), *p2;
	int fd, st;
	pid_t pid;
	size_t i;

	memset(served, 0, sizeof(served));
	add_rows(p, "sae-a", "sae-b", 0, 100, time_real_ms(), 1);
	/* This process holds a lease of 0..15 and has served 0..2. */
	assert_int_equal(pool_take(p, "sae-a", "sae-b", 3, &out), 0);
	for (i = 0; i < out.n; i++)
		served[key_num(out.v[i].id)]++;
	etsi_keys_free(&out);

	/* Child 1 leases 16..31, serves 5, and is killed with SIGKILL. */
	pid = crash_child(f, 5, "kill", &fd);
	assert_int_equal(crash_read(fd, served), 5);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* Child 2 leases 32..47, serves 2, and _exit()s without closing. */
	pid = crash_child(f, 2, "exit", &fd);
	assert_int_equal(crash_read(fd, served), 2);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* This process goes on serving its own lease... */
	assert_int_equal(pool_take(p, "sae-a", "sae-b", 13, &out), 0);
	for (i = 0; i < out.n; i++)
		served[key_num(out.v[i].id)]++;
	etsi_keys_free(&out);
	/* ...and a restart sees exactly the keys nobody ever leased. */
	p2 = fx_open(f);
	assert_int_equal(pool_count(p2, "sae-a", "sae-b"), 52);
	assert_int_equal(pool_take(p2, "sae-a", "sae-b", 52, &out), 0);
	for (i = 0; i < out.n; i++) {
		assert_int_equal(key_num(out.v[i].id), 48 + i);
		assert_memory_equal(out.v[i].key, key_bytes[48 + i], KB);
		served[key_num(out.v[i].id)]++;
	}
	etsi_keys_free(&out);
	take_short(p2, "sae-a", "sae-b", 1);
	pool_close(p2);
	pool_close(p);

	/* No key twice; the dead children's leased-but-unserved keys never. */
	for (i = 0; i < 100; i++) {
		int leased_unserved = (i >= 21 && i <= 31) ||
		    (i >= 34 && i <= 47);

		assert_true(served[i] <= 1);
		assert_int_equal(served[i], leased_unserved ? 0 : 1);
	}
}

/* ------------------------------------------------------------- on disk */

static int
file_contains(const char *path, const uint8_t *needle, size_t n)
{
	FILE *in = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t len = 0, cap = 0, r;
	int found = 0;

	if (in == NULL)
		return 0;		/* no -wal file: nothing in it */
	do {
		if (len + 65536 > cap) {
			cap = (len + 65536) * 2;
			data = realloc(data, cap);
			assert_non_null(data);
		}
		r = fread(data + len, 1, 65536, in);
		len += r;
	} while (r > 0);
	fclose(in);
	found = len >= n && memmem(data, len, needle, n) != NULL;
	free(data);
	return found;
}

static void
check_no_clear(struct fx *f, size_t nkeys)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char path[160];

	for (size_t s = 0; s < 3; s++) {
		snprintf(path, sizeof(path), "%s%s", f->db, suffix[s]);
		for (size_t i = 0; i < nkeys; i++)
			assert_false(file_contains(path, key_bytes[i], KB));
		/* Also no 8-byte prefix of any key (partial leaks). */
		for (size_t i = 0; i < nkeys; i++)
			assert_false(file_contains(path, key_bytes[i], 8));
	}
}

static void
test_no_clear_bytes(void **state)
{
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	struct stat st;

	add(p, "sae-a", "sae-b", 0, 200, time_real_ms(), 0);
	take_expect(p, "sae-a", "sae-b", 20, 0);
	check_no_clear(f, 200);		/* WAL live */
	pool_close(p);
	check_no_clear(f, 200);		/* checkpointed */
	/* Files are private. */
	assert_int_equal(stat(f->db, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
}

static int
count_cb(void *arg, int ncol, char **v, char **names)
{
	(void)ncol;
	(void)names;
	*(long *)arg = strtol(v[0], NULL, 10);
	return 0;
}

/* A row edited on disk (moved to another pair, made younger, its blob, key
 * IDs or key count changed) is dropped whole, never served. */
static void
test_tampered_row(void **state)
{
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	uint64_t now = time_real_ms();
	sqlite3 *db;
	long n = -1;

	add_rows(p, "sae-a", "sae-b", 0, 5, now - 5000, 1);
	add(p, "sae-a", "sae-b", 5, 3, now - 5000, 0);	/* one row: 5..7 */
	add(p, "sae-a", "sae-b", 8, 3, now - 4000, 0);	/* one row: 8..10 */
	pool_close(p);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	/* The view lists every key ID. */
	assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM keys", count_cb,
	    &n, NULL), SQLITE_OK);
	assert_int_equal(n, 11);
	assert_int_equal(sqlite3_exec(db, "UPDATE batches SET slave = 'sae-evil' "
	    "WHERE ids = '[\"key-0000\"]';"
	    "UPDATE batches SET fetched_ms = fetched_ms + 1000 "
	    "WHERE ids = '[\"key-0001\"]';"
	    "UPDATE batches SET blob = x'00' WHERE ids = '[\"key-0002\"]';"
	    "UPDATE batches SET ids = '[\"key-0009\"]' "
	    "WHERE ids = '[\"key-0003\"]';"
	    "UPDATE batches SET n = 2, ids = '[\"key-0005\",\"key-0006\"]' "
	    "WHERE n = 3 AND ids LIKE '%key-0005%';",
	    NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	p = fx_open(f);
	take_short(p, "sae-a", "sae-evil", 1);
	take_short(p, "sae-a", "sae-b", 5);
	take_expect(p, "sae-a", "sae-b", 1, 4);
	take_expect(p, "sae-a", "sae-b", 3, 8);
	take_short(p, "sae-a", "sae-b", 1);
	pool_close(p);
}

static size_t	take_ids(struct pool *, size_t, int *);

/* Batches larger than a lease: leases are rounded up to whole rows, counts
 * stay exact, and a crash loses at most the rows the dead process leased. */
static void
test_batches(void **state)
{
	struct fx *f = *state;
	static int served[NKEYS];
	struct etsi_keys out;
	struct pool *p = fx_open(f), *p2;
	uint64_t now = time_real_ms();
	int fd, st;
	pid_t pid;
	size_t i;

	memset(served, 0, sizeof(served));
	for (i = 0; i < 200; i += 40)
		add(p, "sae-a", "sae-b", i, 40, now, 0);	/* 5 rows */
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 200);
	take_ids(p, 3, served);		/* leases row 0..39 */
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 197);
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);   /* 37: none */
	take_ids(p, 6, served);		/* 31 left */
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);   /* 40..79 */
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 191);
	/* A child leases row 80..119, serves 80..84, is killed. */
	pid = crash_child(f, 5, "kill", &fd);
	assert_int_equal(crash_read(fd, served), 5);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	/* This process: 9..79 from memory, then row 120..159 (120..124). */
	assert_int_equal(pool_take(p, "sae-a", "sae-b", 71, &out), 0);
	for (i = 0; i < out.n; i++) {
		assert_int_equal(key_num(out.v[i].id), 9 + i);
		assert_memory_equal(out.v[i].key, key_bytes[9 + i], KB);
		served[key_num(out.v[i].id)]++;
	}
	etsi_keys_free(&out);
	take_ids(p, 5, served);
	/* A restart sees row 160..199 only. */
	p2 = fx_open(f);
	assert_int_equal(pool_count(p2, "sae-a", "sae-b"), 40);
	take_expect(p2, "sae-a", "sae-b", 40, 160);
	for (i = 160; i < 200; i++)
		served[i]++;
	take_short(p2, "sae-a", "sae-b", 1);
	pool_close(p2);
	pool_close(p);
	for (i = 0; i < 200; i++) {
		int dead = i >= 85 && i <= 119;		/* the child's unserved */
		int held = i >= 125 && i <= 159;	/* p's memory at close */

		assert_true(served[i] <= 1);
		assert_int_equal(served[i], dead || held ? 0 : 1);
	}
	/* A batch of more than one row's worth (1024 keys) splits in rows. */
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

#define NTHREADS	4
#define NCONC		2600

struct taker {
	struct pool	*p;
	size_t		 n;
	int		 ids[NKEYS];
	int		 bad;
};

static void *
taker_main(void *arg)
{
	struct taker *t = arg;
	struct etsi_keys out;
	int rc;

	while ((rc = pool_take(t->p, "sae-a", "sae-b", 13, &out)) == 0) {
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
	if (rc != 1)
		t->bad++;
	return NULL;
}

static void
test_threads(void **state)
{
	struct fx *f = *state;
	static struct taker t[NTHREADS];
	static int seen[NKEYS];
	pthread_t th[NTHREADS];
	struct pool *p = fx_open(f);
	size_t total = 0;

	memset(seen, 0, sizeof(seen));
	for (size_t b = 0; b < NCONC; b += 500)
		add(p, "sae-a", "sae-b", b, NCONC - b < 500 ? NCONC - b : 500,
		    time_real_ms(), 0);
	for (int i = 0; i < NTHREADS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].p = p;
		assert_int_equal(pthread_create(&th[i], NULL, taker_main, &t[i]),
		    0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
		for (size_t j = 0; j < t[i].n; j++)
			seen[t[i].ids[j]]++;
		total += t[i].n;
	}
	for (size_t k = 0; k < NKEYS; k++)
		assert_true(seen[k] <= 1);
	assert_int_equal(total + pool_count(p, "sae-a", "sae-b"), NCONC);
	assert_true(pool_count(p, "sae-a", "sae-b") < 13);
	pool_close(p);
}

/* ------------------------------------------------------------ prefetch */

static size_t
take_ids(struct pool *p, size_t n, int *served)
{
	struct etsi_keys out;
	size_t i;

	assert_int_equal(pool_take(p, "sae-a", "sae-b", n, &out), 0);
	for (i = 0; i < out.n; i++) {
		size_t k = key_num(out.v[i].id);

		assert_memory_equal(out.v[i].key, key_bytes[k], KB);
		served[k]++;
	}
	etsi_keys_free(&out);
	return n;
}

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
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	uint64_t now = time_real_ms();
	int kicks = 0;

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
	take_expect(p, "sae-a", "sae-b", 7, 10);	/* 31 left: one kick */
	assert_int_equal(kicks, 1);
	take_expect(p, "sae-a", "sae-b", 1, 17);
	assert_int_equal(kicks, 1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 182);
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	take_expect(p, "sae-a", "sae-b", 1, 18);	/* 18..65: 47 left */
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
	struct fx *f = *state;
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

/* The ID set across growth, retirement and reopen: every ID still in the
 * pool (on disk, prefetched, or in the current lease) is refused again. */
static void
test_id_set(void **state)
{
	struct fx *f = *state;
	static int served[NKEYS];
	struct pool *p = fx_open(f);
	uint64_t now = time_real_ms();
	size_t i, left;

	memset(served, 0, sizeof(served));
	for (i = 0; i < 3000; i += 500)
		add_rows(p, "sae-a", "sae-b", i, 500, now, 1);
	for (left = 1700; left > 0; left -= 17) {
		take_ids(p, 17, served);
		assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	}
	for (i = 0; i < 3000; i++)
		add(p, "sae-a", "sae-b", i, 1, now, i < 1700 ? 0 : -1);
	/* The served IDs came back as new keys (a KME may reuse them once
	 * they left the pool); the others were refused. */
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 3000);
	pool_close(p);
	/* After a restart: every key, also the leases in memory that the
	 * close put back, is still refused again. */
	p = fx_open(f);
	for (i = 0; i < 3000; i += 97)
		add(p, "sae-a", "sae-b", i, 1, now, -1);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 3000);
	pool_close(p);
}

/* A child holding a prefetched standby lease is killed: none of it is ever
 * served, by anyone. */
static void
test_crash_standby(void **state)
{
	struct fx *f = *state;
	static int served[NKEYS];
	struct etsi_keys out;
	struct pool *p = fx_open(f), *p2;
	int fd, st;
	pid_t pid;
	size_t i;

	memset(served, 0, sizeof(served));
	add_rows(p, "sae-a", "sae-b", 0, 200, time_real_ms(), 1);
	/* This process prefetches 0..47 (3 leases' worth), serves 0..2. */
	assert_int_equal(pool_prefetch(p, "sae-a", "sae-b"), 0);
	take_ids(p, 3, served);
	/* The child: leases 48..63, serves 48..52, tops its memory up with
	 * 64..100 (to 48 keys), and is killed with SIGKILL. */
	pid = crash_child(f, 5, "pf-kill", &fd);
	assert_int_equal(crash_read(fd, served), 5);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* This process serves its memory (3..47) and a new lease 101..116
	 * (101..105 served, 106..116 kept). */
	take_ids(p, 50, served);
	/* A restart sees only keys nobody leased: 117..199. */
	p2 = fx_open(f);
	assert_int_equal(pool_count(p2, "sae-a", "sae-b"), 83);
	assert_int_equal(pool_take(p2, "sae-a", "sae-b", 83, &out), 0);
	for (i = 0; i < out.n; i++) {
		assert_int_equal(key_num(out.v[i].id), 117 + i);
		served[key_num(out.v[i].id)]++;
	}
	etsi_keys_free(&out);
	take_short(p2, "sae-a", "sae-b", 1);
	pool_close(p2);
	pool_close(p);
	for (i = 0; i < 200; i++) {
		int dead = i >= 53 && i <= 100;	/* the child's unserved keys */
		int held = i >= 106 && i <= 116;	/* still in p's memory */

		assert_true(served[i] <= 1);
		assert_int_equal(served[i], dead || held ? 0 : 1);
	}
}

/* Takers, a prefetcher and an adder at once: no key twice, exact count. */
struct prefetcher {
	struct pool	*p;
	int		 stop;		/* __atomic */
	int		 bad;
	size_t		 added;
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
	struct etsi_keys k;

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
	struct fx *f = *state;
	static struct taker t[NTHREADS];
	static int seen[NKEYS];
	struct prefetcher pf;
	pthread_t th[NTHREADS], pth, ath;
	struct pool *p;
	size_t total = 0, added = 0;
	int kicks = 0;

	f->cfg.lease_size = 64;
	p = fx_open(f);
	pool_set_notify(p, count_notify, &kicks);
	memset(seen, 0, sizeof(seen));
	memset(&pf, 0, sizeof(pf));
	pf.p = p;
	for (size_t b = 0; b < NCONC; b += 500)
		add(p, "sae-a", "sae-b", b, NCONC - b < 500 ? NCONC - b : 500,
		    time_real_ms(), 0);
	added = NCONC;
	assert_int_equal(pthread_create(&pth, NULL, prefetcher_main, &pf), 0);
	assert_int_equal(pthread_create(&ath, NULL, adder_main, &pf), 0);
	for (int i = 0; i < NTHREADS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].p = p;
		assert_int_equal(pthread_create(&th[i], NULL, taker_main, &t[i]),
		    0);
	}
	pthread_join(ath, NULL);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&pf.stop, 1, __ATOMIC_RELAXED);
	pthread_join(pth, NULL);
	assert_int_equal(pf.bad, 0);
	added += pf.added;
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(t[i].bad, 0);
		for (size_t j = 0; j < t[i].n; j++)
			seen[t[i].ids[j]]++;
		total += t[i].n;
	}
	for (size_t k = 0; k < NKEYS; k++)
		assert_true(seen[k] <= 1);
	/* Takers stop at their first short answer; what is left is exact. */
	assert_int_equal(total + pool_count(p, "sae-a", "sae-b"), added);
	pool_set_notify(p, NULL, NULL);
	pool_close(p);
}

/* -------------------------------------------------------------- refusals */

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	struct pool *p = fx_open(f);
	uint8_t other[32];
	char err[256];
	int fd;

	add(p, "sae-a", "sae-b", 0, 5, time_real_ms(), 0);
	pool_close(p);
	/* Another key size. */
	f->cfg.key_bytes = 16;
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, f->db));
	assert_non_null(strstr(err, "32-byte"));
	assert_non_null(strstr(err, "16"));
	f->cfg.key_bytes = KB;
	/* Bad config values. */
	f->cfg.ttl_s = 0;
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	f->cfg.ttl_s = 3600;
	f->cfg.lease_size = 0;
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	f->cfg.lease_size = LEASE;
	/* A KEK readable by others. */
	assert_int_equal(chmod(f->kek, 0644), 0);
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, f->kek));
	assert_non_null(strstr(err, "0644"));
	assert_int_equal(chmod(f->kek, 0600), 0);
	/* Another KEK. */
	assert_int_equal(unlink(f->kek), 0);
	assert_int_equal(RAND_bytes(other, sizeof(other)), 1);
	fd = open(f->kek, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, other, sizeof(other)), (ssize_t)sizeof(other));
	close(fd);
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "does not match"));
	/* A schema 1 database (one row per key), or one without a schema
	 * version: refused, telling the operator to delete it. */
	for (int i = 0; i < 2; i++) {
		struct pool_cfg c = f->cfg;
		char path[160];
		sqlite3 *db;

		snprintf(path, sizeof(path), "%s/old%d.db", f->dir, i);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, "CREATE TABLE meta(k TEXT "
		    "PRIMARY KEY, v BLOB); INSERT INTO meta VALUES('key_bytes', "
		    "32);", NULL, NULL, NULL), SQLITE_OK);
		if (i == 0)
			assert_int_equal(sqlite3_exec(db, "CREATE TABLE keys(id "
			    "INTEGER PRIMARY KEY, master TEXT, slave TEXT, key_id "
			    "TEXT, fetched_ms INTEGER, blob BLOB);", NULL, NULL,
			    NULL), SQLITE_OK);
		sqlite3_close(db);
		c.db_path = path;
		assert_null(pool_open(&c, err, sizeof(err)));
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, "delete"));
	}
}

/* ------------------------------------------------------------ rollback */

static void
copy_file(const char *from, const char *to)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cp -p %s %s", from, to);
	assert_int_equal(system(cmd), 0);
}

static struct pool_stats
stats_of(struct pool *p)
{
	struct pool_stats st;

	pool_stats(p, &st);
	return st;
}

/* An older copy of the database restored over the pool: the rows leased
 * since are refused (wiped, counted), the others served once; a lost or
 * edited mark file; a row whose sequence number was edited. */
static void
test_rollback(void **state)
{
	struct fx *f = *state;
	static int served[NKEYS];
	char copy[160], hwm[160], wal[160];
	struct pool *p;
	struct stat st;
	sqlite3 *db;
	char err[256];
	uint8_t b;
	FILE *fp;

	memset(served, 0, sizeof(served));
	snprintf(copy, sizeof(copy), "%s/copy.db", f->dir);
	snprintf(hwm, sizeof(hwm), "%s.hwm", f->db);
	snprintf(wal, sizeof(wal), "%s-wal", f->db);
	p = fx_open(f);
	add_rows(p, "sae-a", "sae-b", 0, 50, time_real_ms(), 1);
	pool_close(p);			/* checkpointed: one file */
	copy_file(f->db, copy);
	/* The mark file is private. */
	assert_int_equal(stat(hwm, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);

	/* Serve 0..19 (one lease of 20 rows), then lease 20..35 and serve
	 * 20..21; the close puts 22..35 back as new rows. */
	p = fx_open(f);
	take_ids(p, 20, served);
	take_ids(p, 2, served);
	pool_close(p);
	/* Restore the old copy (no -wal): 0..35 are back, below the mark. */
	copy_file(copy, f->db);
	unlink(wal);
	p = fx_open(f);
	assert_int_equal(stats_of(p).rolled_back_keys, 36);
	assert_int_equal(stats_of(p).rolled_back_rows, 36);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 14);
	take_ids(p, 14, served);
	take_short(p, "sae-a", "sae-b", 1);
	/* New keys after the restore get sequences above the mark: they
	 * survive a restart. */
	add_rows(p, "sae-a", "sae-b", 100, 5, time_real_ms(), 1);
	pool_close(p);
	p = fx_open(f);
	assert_int_equal(stats_of(p).rolled_back_keys, 0);
	take_expect(p, "sae-a", "sae-b", 5, 100);
	pool_close(p);
	for (size_t i = 0; i < 50; i++)
		assert_true(served[i] <= 1);

	/* The same copy again, once more: nothing comes back. */
	copy_file(copy, f->db);
	unlink(wal);
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	assert_int_equal(stats_of(p).rolled_back_keys, 50);
	pool_close(p);

	/* The mark file lost: every row of the database is refused. */
	copy_file(copy, f->db);
	unlink(wal);
	assert_int_equal(unlink(hwm), 0);
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 0);
	assert_int_equal(stats_of(p).rolled_back_keys, 50);
	add_rows(p, "sae-a", "sae-b", 200, 3, time_real_ms(), 1);
	pool_close(p);

	/* A process that served keys and was killed (SIGKILL), then the copy
	 * restored: its keys are refused, as its mark was durable before it
	 * served them. */
	{
		int fd, wst;
		pid_t pid;
		struct etsi_keys out;

		memset(served, 0, sizeof(served));
		p = fx_open(f);
		take_expect(p, "sae-a", "sae-b", 3, 200);	/* empty it */
		add_rows(p, "sae-a", "sae-b", 300, 40, time_real_ms(), 1);
		pool_close(p);
		copy_file(f->db, copy);
		pid = crash_child(f, 5, "kill", &fd);
		assert_int_equal(crash_read(fd, served), 5);
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &wst, 0), pid);
		copy_file(copy, f->db);
		unlink(wal);
		p = fx_open(f);
		assert_int_equal(stats_of(p).rolled_back_keys, LEASE);
		assert_int_equal(pool_take(p, "sae-a", "sae-b", 40 - LEASE, &out),
		    0);
		for (size_t i = 0; i < out.n; i++)
			served[key_num(out.v[i].id)]++;
		etsi_keys_free(&out);
		take_short(p, "sae-a", "sae-b", 1);
		pool_close(p);
		for (size_t i = 300; i < 340; i++)
			assert_int_equal(served[i], i < 300 + 5 ||
			    i >= 300 + LEASE ? 1 : 0);
	}

	/* A mark file readable by others: refused, naming the mode. */
	assert_int_equal(chmod(hwm, 0644), 0);
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, hwm));
	assert_non_null(strstr(err, "0644"));
	assert_int_equal(chmod(hwm, 0600), 0);
	p = fx_open(f);
	add_rows(p, "sae-a", "sae-b", 200, 3, time_real_ms(), 1);
	pool_close(p);

	/* The mark file edited: refused at open, naming it. */
	fp = fopen(hwm, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 20, SEEK_SET), 0);
	assert_int_equal(fread(&b, 1, 1, fp), 1);
	b ^= 1;
	assert_int_equal(fseek(fp, 20, SEEK_SET), 0);
	assert_int_equal(fwrite(&b, 1, 1, fp), 1);
	fclose(fp);
	assert_null(pool_open(&f->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, hwm));
	assert_non_null(strstr(err, "authenticate"));
	fp = fopen(hwm, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 20, SEEK_SET), 0);
	b ^= 1;
	assert_int_equal(fwrite(&b, 1, 1, fp), 1);
	fclose(fp);

	/* A row's sequence moved above the mark: does not authenticate. */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE batches SET id = id + 1000 "
	    "WHERE ids = '[\"key-0200\"]'", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	p = fx_open(f);
	assert_int_equal(pool_count(p, "sae-a", "sae-b"), 3);
	take_expect(p, "sae-a", "sae-b", 2, 201);
	take_short(p, "sae-a", "sae-b", 1);
	assert_int_equal(stats_of(p).corrupt_keys, 1);
	pool_close(p);
}

/* ------------------------------------------------------------- timings */

/* Not a pass/fail test: prints the costs the design depends on. */
static void
test_timing(void **state)
{
	struct fx *f = *state;
	struct etsi_keys out;
	struct pool *p;
	uint64_t t0, t_lease = 0, t_refill = 0;
	size_t n_lease = 0, n_refill = 0, i, left = 0;

	f->cfg.lease_size = 256;
	p = fx_open(f);
	for (size_t b = 0; b < NKEYS; b += 1000)
		add(p, "sae-a", "sae-b", b, 1000, time_real_ms(), 0);
	for (i = 0; i < NKEYS / 13; i++) {
		/* Mirrors the pool: a take refills when the lease is short. */
		int refill = left < 13;

		if (refill)
			left += 256;
		left -= 13;

		t0 = time_mono_ns();
		assert_int_equal(pool_take(p, "sae-a", "sae-b", 13, &out), 0);
		t0 = time_mono_ns() - t0;
		if (refill) {
			t_refill += t0;
			n_refill++;
		} else {
			t_lease += t0;
			n_lease++;
		}
		etsi_keys_free(&out);
	}
	print_message("# pool_take(13) from the lease: %.2f us avg over %zu; "
	    "with a 256-key refill: %.1f us avg over %zu\n",
	    (double)t_lease / (double)n_lease / 1e3, n_lease,
	    (double)t_refill / (double)n_refill / 1e3, n_refill);
	pool_close(p);

	/* With the leases taken by pool_prefetch, as kmsd's refill thread
	 * (a new database: the close put the first one's leases back). */
	snprintf(f->db, sizeof(f->db), "%s/pool2.db", f->dir);
	p = fx_open(f);
	for (size_t b = 0; b < NKEYS; b += 1000)
		add(p, "sae-a", "sae-c", b, 1000, time_real_ms(), 0);
	t_lease = t_refill = 0;
	n_lease = n_refill = 0;
	for (i = 0; i < NKEYS / 13 - 60; i++) {
		t0 = time_mono_ns();
		assert_int_equal(pool_prefetch(p, "sae-a", "sae-c"), 0);
		t_refill += time_mono_ns() - t0;
		t0 = time_mono_ns();
		assert_int_equal(pool_take(p, "sae-a", "sae-c", 13, &out), 0);
		t_lease += time_mono_ns() - t0;
		etsi_keys_free(&out);
	}
	print_message("# pool_take(13) with background leases: %.2f us avg; "
	    "pool_prefetch: %.1f us avg per take\n",
	    (double)t_lease / (double)i / 1e3,
	    (double)t_refill / (double)i / 1e3);
	pool_close(p);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_or_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_clear_bytes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tampered_row, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_ttl, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_id_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_standby, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_threads_prefetch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timing, setup, teardown),
	};

	/* Random-looking key material from a fixed seed (splitmix64). */
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
	if (argc == 6 && strcmp(argv[1], "--crash-child") == 0)
		return crash_child_main(argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
