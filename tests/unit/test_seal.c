/*
 * common/seal: AES-256-GCM round trip, every tampered byte refused, AAD
 * bound, and the KEK file's creation and checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/seal.h"
#include "tests/unit/testutil.h"

struct fx {
	char dir[64];
	char kek[128];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL ||
	    testutil_tmpdir(f->dir, sizeof(f->dir), "test_seal") == -1)
		return -1;
	snprintf(f->kek, sizeof(f->kek), "%s/kek", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	if (testutil_rmrf(f->dir) == -1)
		return -1;
	free(f);
	return 0;
}

static struct seal *
mk_seal(void)
{
	uint8_t	     kek[SEAL_KEK_LEN];
	struct seal *s;

	assert_int_equal(RAND_bytes(kek, sizeof(kek)), 1);
	s = seal_new(kek);
	assert_non_null(s);
	return s;
}

static void
test_round_trip(void **state)
{
	static const uint8_t aad[] = "key-id-1";
	struct seal	    *s = mk_seal();
	uint8_t pt[64], out[64 + SEAL_OVERHEAD], out2[64 + SEAL_OVERHEAD];
	uint8_t back[64];

	(void)state;
	assert_int_equal(RAND_bytes(pt, sizeof(pt)), 1);
	for (size_t n = 0; n <= sizeof(pt); n += 16) {
		assert_int_equal(seal_seal(s, aad, sizeof(aad), pt, n, out), 0);
		memset(back, 0, sizeof(back));
		assert_int_equal(seal_open(s, aad, sizeof(aad), out,
				     n + SEAL_OVERHEAD, back),
		    0);
		assert_memory_equal(back, pt, n);
	}
	/* Fresh nonce each time: the same input seals differently. */
	assert_int_equal(seal_seal(s, aad, sizeof(aad), pt, 32, out), 0);
	assert_int_equal(seal_seal(s, aad, sizeof(aad), pt, 32, out2), 0);
	assert_memory_not_equal(out, out2, SEAL_NONCE_LEN);
	assert_memory_not_equal(out + SEAL_NONCE_LEN, out2 + SEAL_NONCE_LEN,
	    32);
	/* No AAD at all works too. */
	assert_int_equal(seal_seal(s, NULL, 0, pt, 32, out), 0);
	assert_int_equal(seal_open(s, NULL, 0, out, 32 + SEAL_OVERHEAD, back),
	    0);
	assert_memory_equal(back, pt, 32);
	seal_free(s);
	seal_free(NULL);
}

static void
test_tamper(void **state)
{
	static const uint8_t aad[] = "key-id-2";
	struct seal	    *s = mk_seal(), *other = mk_seal();
	uint8_t		     pt[32], out[32 + SEAL_OVERHEAD], back[32];
	size_t		     len = sizeof(out);

	(void)state;
	assert_int_equal(RAND_bytes(pt, sizeof(pt)), 1);
	assert_int_equal(seal_seal(s, aad, sizeof(aad), pt, sizeof(pt), out),
	    0);
	for (size_t i = 0; i < len; i++)
		for (unsigned bit = 0; bit < 8; bit++) {
			out[i] ^= (uint8_t)(1u << bit);
			memset(back, 0xaa, sizeof(back));
			assert_int_equal(seal_open(s, aad, sizeof(aad), out,
					     len, back),
			    -1);
			/* Nothing of the plaintext is left behind on failure. */
			assert_memory_not_equal(back, pt, sizeof(back));
			out[i] ^= (uint8_t)(1u << bit);
		}
	/* Every truncation fails cleanly. */
	for (size_t l = 0; l < len; l++)
		assert_int_equal(seal_open(s, aad, sizeof(aad), out, l, back),
		    -1);
	/* Wrong AAD: changed, shorter, longer, absent. */
	assert_int_equal(seal_open(s, (const uint8_t *)"key-id-3", 9, out, len,
			     back),
	    -1);
	assert_int_equal(seal_open(s, aad, sizeof(aad) - 1, out, len, back),
	    -1);
	assert_int_equal(seal_open(s, (const uint8_t *)"key-id-2\0x", 10, out,
			     len, back),
	    -1);
	assert_int_equal(seal_open(s, NULL, 0, out, len, back), -1);
	/* Another KEK. */
	assert_int_equal(seal_open(other, aad, sizeof(aad), out, len, back),
	    -1);
	/* Intact still opens. */
	assert_int_equal(seal_open(s, aad, sizeof(aad), out, len, back), 0);
	assert_memory_equal(back, pt, sizeof(pt));
	seal_free(s);
	seal_free(other);
}

static void
test_kek_create(void **state)
{
	struct fx *f = *state;
	uint8_t k1[SEAL_KEK_LEN], k2[SEAL_KEK_LEN], zero[SEAL_KEK_LEN] = { 0 };
	char	err[256];
	struct stat st;
	char	    tmpname[160];

	assert_int_equal(seal_kek_load(f->kek, k1, err, sizeof(err)), 0);
	assert_int_equal(stat(f->kek, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, SEAL_KEK_LEN);
	assert_memory_not_equal(k1, zero, sizeof(k1));
	/* Loading again gives the same key. */
	assert_int_equal(seal_kek_load(f->kek, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, sizeof(k1));
	/* No temporary file left behind. */
	snprintf(tmpname, sizeof(tmpname), "ls %s | grep -q tmp", f->dir);
	assert_int_not_equal(system(tmpname), 0);
	/* A directory that does not exist is named in the error. */
	snprintf(tmpname, sizeof(tmpname), "%s/no/such/kek", f->dir);
	assert_int_equal(seal_kek_load(tmpname, k2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, tmpname));
	assert_int_equal(seal_kek_load(NULL, k2, err, sizeof(err)), -1);
}

static void
test_kek_modes(void **state)
{
	static const mode_t bad[] = { 0640, 0604, 0644, 0660, 0606, 0610,
		0601 };
	struct fx	   *f = *state;
	uint8_t		    k[SEAL_KEK_LEN];
	char		    err[256], want[16];

	assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(f->kek, bad[i]), 0);
		err[0] = '\0';
		assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)),
		    -1);
		snprintf(want, sizeof(want), "%04o", (unsigned)bad[i]);
		assert_non_null(strstr(err, f->kek));
		assert_non_null(strstr(err, want));
	}
	/* Owner bits other than rw are refused too; the message says how
	 * to fix it. */
	assert_int_equal(chmod(f->kek, 0700), 0);
	assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)), -1);
	assert_non_null(
	    strstr(err, "mode 0700, expected 0600: run chmod 600 "));
	assert_int_equal(chmod(f->kek, 0400), 0);
	assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)), 0);
}

/* A KEK owned by another user is refused, naming both uids and the fix. */
static void
test_kek_owner(void **state)
{
	struct fx *f = *state;
	uint8_t	   k[SEAL_KEK_LEN];
	char	   err[256], want[64];
	uid_t	   other = 65534;

	assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)), 0);
	/* Giving a file away needs root: the test runs as root (make test). */
	assert_int_equal(geteuid(), 0);
	assert_int_equal(chown(f->kek, other, (gid_t)-1), 0);
	assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "owned by uid %u, expected uid %u",
	    (unsigned)other, (unsigned)geteuid());
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "run chown "));
	assert_non_null(strstr(err, f->kek));
	assert_int_equal(chown(f->kek, geteuid(), (gid_t)-1), 0);
	assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)), 0);
}

static void
test_kek_size(void **state)
{
	struct fx	   *f = *state;
	static const size_t sizes[] = { 0, 16, 31, 33, 64 };
	uint8_t		    k[SEAL_KEK_LEN], buf[64];
	char		    err[256];
	int		    fd;

	memset(buf, 7, sizeof(buf));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unlink(f->kek);
		fd = open(f->kek, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, buf, sizes[i]), (ssize_t)sizes[i]);
		close(fd);
		err[0] = '\0';
		assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)),
		    -1);
		assert_non_null(strstr(err, f->kek));
		assert_non_null(strstr(err, "32"));
	}
	/* Not a regular file (a directory), and a symlink, are refused. */
	unlink(f->kek);
	assert_int_equal(mkdir(f->kek, 0700), 0);
	assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)), -1);
	assert_int_equal(rmdir(f->kek), 0);
	{
		char target[160];

		snprintf(target, sizeof(target), "%s/real", f->dir);
		fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, buf, SEAL_KEK_LEN), SEAL_KEK_LEN);
		close(fd);
		assert_int_equal(symlink(target, f->kek), 0);
		assert_int_equal(seal_kek_load(f->kek, k, err, sizeof(err)),
		    -1);
		assert_non_null(strstr(err, "is a symbolic link"));
		assert_non_null(strstr(err, f->kek));
		/* ... and is not replaced by a fresh key either. */
		assert_int_equal(seal_kek_load(target, k, err, sizeof(err)), 0);
	}
}

/* Two threads creating the same KEK at once end up with one key. */
struct race {
	const char *path;
	uint8_t	    k[SEAL_KEK_LEN];
	int	    rc;
};

static void *
race_main(void *arg)
{
	struct race *r = arg;
	char	     err[256];

	r->rc = seal_kek_load(r->path, r->k, err, sizeof(err));
	return NULL;
}

static void
test_kek_race(void **state)
{
	struct fx  *f = *state;
	struct race r[4];
	pthread_t   t[4];

	for (int round = 0; round < 20; round++) {
		unlink(f->kek);
		for (int i = 0; i < 4; i++) {
			r[i].path = f->kek;
			assert_int_equal(pthread_create(&t[i], NULL, race_main,
					     &r[i]),
			    0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(r[i].rc, 0);
			assert_memory_equal(r[i].k, r[0].k, SEAL_KEK_LEN);
		}
	}
}

/* Many threads sealing and opening on one object. */
static struct seal *mt_seal;

static void *
mt_main(void *arg)
{
	uint8_t pt[32], out[32 + SEAL_OVERHEAD], back[32];
	uint8_t aad[8];
	long   *fails = arg;

	for (int i = 0; i < 20000; i++) {
		memcpy(aad, &i, sizeof(i));
		memset(pt, i & 0xff, sizeof(pt));
		if (seal_seal(mt_seal, aad, sizeof(aad), pt, sizeof(pt), out) ||
		    seal_open(mt_seal, aad, sizeof(aad), out, sizeof(out),
			back) ||
		    memcmp(back, pt, sizeof(pt)) != 0)
			(*fails)++;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t t[4];
	long	  fails[4] = { 0 };

	(void)state;
	mt_seal = mk_seal();
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, mt_main,
				     &fails[i]),
		    0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(fails[i], 0);
	}
	seal_free(mt_seal);
}

/*
 * seal_subkey is HKDF-SHA256 (RFC 5869), checked against the two HMACs of
 * its definition computed here with HMAC(); seal_seal_iv uses the nonce it
 * is given, and seal_open opens its blobs.
 */
static void
test_subkey_iv(void **state)
{
	uint8_t kek[SEAL_KEK_LEN], salt[32], prk[32], okm[32], k1[32], k2[32];
	uint8_t iv[SEAL_NONCE_LEN] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7 };
	uint8_t pt[24], blob[24 + SEAL_OVERHEAD], back[24], in[64];
	const char  *info = "test label";
	unsigned     l = 0;
	struct seal *sl;

	(void)state;
	assert_int_equal(RAND_bytes(kek, sizeof(kek)), 1);
	assert_int_equal(RAND_bytes(salt, sizeof(salt)), 1);
	assert_int_equal(RAND_bytes(pt, sizeof(pt)), 1);
	/* PRK = HMAC(salt, IKM); OKM = T(1) = HMAC(PRK, info || 0x01). */
	assert_non_null(
	    HMAC(EVP_sha256(), salt, sizeof(salt), kek, sizeof(kek), prk, &l));
	memcpy(in, info, strlen(info));
	in[strlen(info)] = 1;
	assert_non_null(HMAC(EVP_sha256(), prk, sizeof(prk), in,
	    strlen(info) + 1, okm, &l));
	assert_int_equal(seal_subkey(kek, salt, sizeof(salt), info, k1), 0);
	assert_memory_equal(k1, okm, 32);
	/* Another salt or another label: another key. */
	salt[0] ^= 1;
	assert_int_equal(seal_subkey(kek, salt, sizeof(salt), info, k2), 0);
	assert_memory_not_equal(k1, k2, 32);
	assert_int_equal(seal_subkey(kek, salt, sizeof(salt), "other", k1), 0);
	assert_memory_not_equal(k1, k2, 32);

	assert_non_null(sl = seal_new(k1));
	assert_int_equal(seal_seal_iv(sl, iv, (const uint8_t *)"a", 1, pt,
			     sizeof(pt), blob),
	    0);
	assert_memory_equal(blob, iv, sizeof(iv));
	assert_int_equal(seal_open(sl, (const uint8_t *)"a", 1, blob,
			     sizeof(blob), back),
	    0);
	assert_memory_equal(back, pt, sizeof(pt));
	assert_int_equal(seal_open(sl, (const uint8_t *)"b", 1, blob,
			     sizeof(blob), back),
	    -1);
	seal_free(sl);
}

/* VmFlags of the mapping that holds p, from /proc/self/smaps. */
static void
vmflags_of(const void *p, char *out, size_t outlen)
{
	FILE	     *f = fopen("/proc/self/smaps", "r");
	char	      line[512];
	unsigned long lo, hi;
	int	      in = 0;

	out[0] = '\0';
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			size_t n = strlen(line + 8);

			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, line + 8, n);
			out[n] = '\0';
			break;
		}
	}
	fclose(f);
}

/*
 * sec_harden: no core files, not dumpable, and key buffers in a locked,
 * undumpable arena (checked in the kernel's own view, /proc/self/smaps);
 * blocks past the arena still come back, and either free takes either kind.
 */
static void
test_harden(void **state)
{
	struct rlimit rl;
	char	      flags[256];
	uint8_t	     *a, *b, *big[SEC_HEAP_MAX / (256 << 10) + 2];
	size_t	      i;

	(void)state;
	sec_harden();
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
	assert_true(CRYPTO_secure_malloc_initialized());

	assert_non_null(a = sec_alloc(32));
	assert_true(CRYPTO_secure_allocated(a));
	for (i = 0; i < 32; i++)
		assert_int_equal(a[i], 0);
	vmflags_of(a, flags, sizeof(flags));
	assert_non_null(strstr(flags, " dd")); /* MADV_DONTDUMP */
	/* RLIMIT_MEMLOCK here is 8 MiB (or root): the arena is locked. */
	assert_non_null(strstr(flags, " lo"));
	sec_free(a, 32);

	/* Fill the arena with 256 KiB blocks: the ones past it come from
	 * malloc; sec_free_any and sec_free release both kinds. */
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		assert_non_null(big[i] = sec_alloc(256 << 10));
	assert_false(CRYPTO_secure_allocated(big[i - 1]));
	assert_true(CRYPTO_secure_allocated(big[0]));
	/* ... and a quarter of the arena is left to OpenSSL's own secure
	 * allocations (a DH or ECDSA private BIGNUM), which have no fallback. */
	assert_non_null(b = OPENSSL_secure_malloc(64 << 10));
	assert_true(CRYPTO_secure_allocated(b));
	OPENSSL_secure_clear_free(b, 64 << 10);
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		i % 2 ? sec_free_any(big[i]) : sec_free(big[i], 256 << 10);
	assert_non_null(b = malloc(10));
	sec_free_any(b);
	assert_non_null(b = sec_alloc(10));
	assert_true(CRYPTO_secure_allocated(b));
	sec_free_any(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test_setup_teardown(test_kek_create, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kek_modes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kek_owner, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kek_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kek_race, setup, teardown),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_subkey_iv),
		cmocka_unit_test(test_harden),
	};

	log_init("test_seal", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
