/*
 * KEK file and AES-256-GCM sealing (seal.h).
 *
 * One encryption and one decryption context per seal object, keyed once at
 * seal_new: re-keying per call would redo the AES key schedule and allocate.
 * A mutex serialises their use; a call costs well under a microsecond for a
 * 32-byte key, so the lock is never what limits a pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/seal.h"

struct seal {
	pthread_mutex_t mu;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

/* ---------------------------------------------------------------- KEK */

/* All n bytes written (wr: p is only read) or read; EINTR is retried, an
 * error or end of file is -1 with errno as the call left it. */
static int
io_all(int fd, uint8_t *p, size_t n, bool wr)
{
	ssize_t r;

	while (n > 0) {
		r = wr ? write(fd, p, n) : read(fd, p, n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
	return io_all(fd, (uint8_t *)(uintptr_t)p, n, true);
}

static int
read_all(int fd, uint8_t *p, size_t n)
{
	return io_all(fd, p, n, false);
}

/* Makes a new directory entry durable (a created KEK must survive a power cut). */
static void
sync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char	   *dir;
	int	    fd;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

/*
 * Writes 32 fresh random bytes under a temporary name and links it to path:
 * link() fails with EEXIST rather than replacing, so a racing creator's key is
 * never overwritten and a reader never sees a partial file. 0 also when
 * somebody else won the race (the caller then reads their file).
 */
static int
kek_create(const char *path, char *err, size_t errlen)
{
	uint8_t kek[SEAL_KEK_LEN];
	char   *tmp = NULL;
	size_t	tlen = strlen(path) + sizeof(".tmp.XXXXXX");
	int	fd = -1, rc = -1;

	if ((tmp = malloc(tlen)) == NULL) {
		snprintf(err, errlen, "kek_file %s: out of memory", path);
		return -1;
	}
	snprintf(tmp, tlen, "%s.tmp.XXXXXX", path);
	if ((fd = mkstemp(tmp)) == -1) {
		snprintf(err, errlen, "kek_file %s: cannot create: %s", path,
		    strerror(errno));
		goto done;
	}
	if (fchmod(fd, 0600) == -1 || RAND_bytes(kek, sizeof(kek)) != 1 ||
	    write_all(fd, kek, sizeof(kek)) == -1 || fsync(fd) == -1) {
		snprintf(err, errlen, "kek_file %s: cannot write %s: %s", path,
		    tmp, strerror(errno));
		goto done;
	}
	if (link(tmp, path) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "kek_file %s: cannot create: %s", path,
		    strerror(errno));
		goto done;
	}
	sync_dir_of(path);
	log_info("created key-encryption key %s (mode 0600)", path);
	rc = 0;
done:
	OPENSSL_cleanse(kek, sizeof(kek));
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

/*
 * Checks the open file's type, owner, mode and size, then reads the key.
 * Each refusal names the file and the command that fixes it.
 */
static int
kek_read(int fd, const char *path, uint8_t kek[static SEAL_KEK_LEN], char *err,
    size_t errlen)
{
	struct stat st;
	unsigned    mode;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "kek_file %s: not a regular file", path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen,
		    "kek_file %s: owned by uid %u, expected uid "
		    "%u (the daemon's user): run chown %u %s",
		    path, (unsigned)st.st_uid, (unsigned)geteuid(),
		    (unsigned)geteuid(), path);
		return -1;
	}
	mode = (unsigned)(st.st_mode & 07777);
	if (mode != 0600 && mode != 0400) {
		snprintf(err, errlen,
		    "kek_file %s: mode %04o, expected 0600: run "
		    "chmod 600 %s",
		    path, mode, path);
		return -1;
	}
	if (st.st_size != SEAL_KEK_LEN) {
		snprintf(err, errlen,
		    "kek_file %s is %lld bytes: it must hold "
		    "exactly %d bytes",
		    path, (long long)st.st_size, SEAL_KEK_LEN);
		return -1;
	}
	if (read_all(fd, kek, SEAL_KEK_LEN) == -1) {
		snprintf(err, errlen, "kek_file %s: cannot read: %s", path,
		    errno ? strerror(errno) : "short file");
		return -1;
	}
	return 0;
}

int
seal_kek_load(const char *path, uint8_t kek[static SEAL_KEK_LEN], char *err,
    size_t errlen)
{
	int fd, rc = -1;

	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "kek_file is not set");
		goto done;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT) {
		if (kek_create(path, err, errlen) == -1)
			goto done;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd == -1 && errno == ELOOP) {
		/* O_NOFOLLOW: whoever can change a link can swap the key. */
		snprintf(err, errlen,
		    "kek_file %s: is a symbolic link, which is "
		    "refused: set kek_file to the file itself",
		    path);
		goto done;
	}
	if (fd == -1) {
		snprintf(err, errlen, "kek_file %s: %s", path, strerror(errno));
		goto done;
	}
	errno = 0;
	rc = kek_read(fd, path, kek, err, errlen);
	close(fd);
done:
	if (rc == -1)
		OPENSSL_cleanse(kek, SEAL_KEK_LEN);
	return rc;
}

/* ------------------------------------------------------------ sealing */

struct seal *
seal_new(const uint8_t kek[static SEAL_KEK_LEN])
{
	struct seal *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return NULL;
	}
	s->enc = EVP_CIPHER_CTX_new();
	s->dec = EVP_CIPHER_CTX_new();
	if (s->enc == NULL || s->dec == NULL ||
	    EVP_EncryptInit_ex(s->enc, EVP_aes_256_gcm(), NULL, kek, NULL) !=
		1 ||
	    EVP_DecryptInit_ex(s->dec, EVP_aes_256_gcm(), NULL, kek, NULL) !=
		1) {
		log_err("%s: AES-256-GCM unavailable", __func__);
		seal_free(s);
		return NULL;
	}
	return s;
}

void
seal_free(struct seal *s)
{
	if (s == NULL)
		return;
	/* EVP_CIPHER_CTX_free cleanses the key schedule. */
	EVP_CIPHER_CTX_free(s->enc);
	EVP_CIPHER_CTX_free(s->dec);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int
seal_seal_iv(struct seal *s, const uint8_t iv[static SEAL_NONCE_LEN],
    const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t n,
    uint8_t *out)
{
	uint8_t *ct = out + SEAL_NONCE_LEN, fin[16];
	int	 l, rc = -1;

	if (n > SEAL_MAX_LEN || aadlen > SEAL_MAX_LEN) {
		log_err("%s: %zu bytes (AAD %zu) is too long", __func__, n,
		    aadlen);
		return -1;
	}
	if (out != iv)
		memcpy(out, iv, SEAL_NONCE_LEN);
	pthread_mutex_lock(&s->mu);
	if (EVP_EncryptInit_ex(s->enc, NULL, NULL, NULL, out) != 1 ||
	    (aadlen > 0 &&
		EVP_EncryptUpdate(s->enc, NULL, &l, aad, (int)aadlen) != 1) ||
	    (n > 0 && EVP_EncryptUpdate(s->enc, ct, &l, pt, (int)n) != 1) ||
	    EVP_EncryptFinal_ex(s->enc, fin, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->enc, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN,
		ct + n) != 1) {
		log_err("%s: AES-256-GCM failed", __func__);
		goto done;
	}
	rc = 0;
done:
	pthread_mutex_unlock(&s->mu);
	if (rc == -1)
		OPENSSL_cleanse(out, n + SEAL_OVERHEAD);
	return rc;
}

int
seal_seal(struct seal *s, const uint8_t *aad, size_t aadlen, const uint8_t *pt,
    size_t n, uint8_t *out)
{
	/* Outside the lock: the DRBG has its own. */
	if (RAND_bytes(out, SEAL_NONCE_LEN) != 1) {
		log_err("%s: RAND_bytes failed", __func__);
		return -1;
	}
	return seal_seal_iv(s, out, aad, aadlen, pt, n, out);
}

int
seal_subkey(const uint8_t kek[static SEAL_KEK_LEN], const uint8_t *salt,
    size_t saltlen, const char *info, uint8_t out[static SEAL_KEK_LEN])
{
	EVP_KDF	    *kdf;
	EVP_KDF_CTX *kc = NULL;
	OSSL_PARAM   p[5], *q = p;
	int	     rc = -1;

	if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
	    (kc = EVP_KDF_CTX_new(kdf)) == NULL) {
		log_err("%s: HKDF unavailable", __func__);
		goto done;
	}
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)(uintptr_t) "SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)(uintptr_t)kek, SEAL_KEK_LEN);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)(uintptr_t)salt, saltlen);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (void *)(uintptr_t)info, strlen(info));
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kc, out, SEAL_KEK_LEN, p) != 1) {
		log_err("%s: HKDF failed", __func__);
		OPENSSL_cleanse(out, SEAL_KEK_LEN);
		goto done;
	}
	rc = 0;
done:
	EVP_KDF_CTX_free(kc); /* cleanses its copy of the key */
	EVP_KDF_free(kdf);
	return rc;
}

int
seal_open(struct seal *s, const uint8_t *aad, size_t aadlen,
    const uint8_t *blob, size_t bloblen, uint8_t *pt)
{
	const uint8_t *ct = blob + SEAL_NONCE_LEN;
	uint8_t	       fin[16]; /* GCM's Final writes nothing */
	size_t	       n;
	int	       l, rc = -1;

	if (bloblen < SEAL_OVERHEAD || bloblen - SEAL_OVERHEAD > SEAL_MAX_LEN ||
	    aadlen > SEAL_MAX_LEN)
		return -1;
	n = bloblen - SEAL_OVERHEAD;
	pthread_mutex_lock(&s->mu);
	/* The tag is set before Final; OpenSSL wants a non-const pointer. */
	if (EVP_DecryptInit_ex(s->dec, NULL, NULL, NULL, blob) != 1 ||
	    (aadlen > 0 &&
		EVP_DecryptUpdate(s->dec, NULL, &l, aad, (int)aadlen) != 1) ||
	    (n > 0 && EVP_DecryptUpdate(s->dec, pt, &l, ct, (int)n) != 1) ||
	    EVP_CIPHER_CTX_ctrl(s->dec, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN,
		(void *)(uintptr_t)(ct + n)) != 1 ||
	    EVP_DecryptFinal_ex(s->dec, fin, &l) != 1)
		goto done;
	rc = 0;
done:
	pthread_mutex_unlock(&s->mu);
	if (rc == -1 && n > 0)
		OPENSSL_cleanse(pt, n);
	return rc;
}

/* ------------------------------------------------------- sealed files */

int
seal_file_write(struct seal *s, const char *path, const uint8_t *aad,
    size_t aadlen, const uint8_t *pt, size_t n, char *err, size_t errlen)
{
	uint8_t *blob = NULL;
	char	*tmp = NULL;
	size_t	 tlen = strlen(path) + sizeof(".tmp.XXXXXX");
	int	 fd = -1, rc = -1;

	if (n > SEAL_FILE_MAX || (blob = malloc(n + SEAL_OVERHEAD)) == NULL ||
	    (tmp = malloc(tlen)) == NULL) {
		snprintf(err, errlen,
		    "%s: %zu bytes: too large or out of "
		    "memory",
		    path, n);
		goto done;
	}
	if (seal_seal(s, aad, aadlen, pt, n, blob) == -1) {
		snprintf(err, errlen, "%s: cannot seal", path);
		goto done;
	}
	snprintf(tmp, tlen, "%s.tmp.XXXXXX", path);
	if ((fd = mkstemp(tmp)) == -1) {
		snprintf(err, errlen, "%s: cannot create a temporary file: %s",
		    path, strerror(errno));
		goto done;
	}
	if (fchmod(fd, 0600) == -1 ||
	    write_all(fd, blob, n + SEAL_OVERHEAD) == -1 || fsync(fd) == -1 ||
	    rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: cannot write: %s", path,
		    strerror(errno));
		unlink(tmp);
		goto done;
	}
	sync_dir_of(path);
	rc = 0;
done:
	if (fd != -1)
		close(fd);
	free(tmp);
	free(blob);
	return rc;
}

int
seal_file_read(struct seal *s, const char *path, const uint8_t *aad,
    size_t aadlen, uint8_t **pt, size_t *n, char *err, size_t errlen)
{
	struct stat st;
	uint8_t	   *blob = NULL, *out = NULL;
	size_t	    len;
	int	    fd, rc = -1;

	*pt = NULL;
	*n = 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto done;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		    "%s has mode %04o: group/other access is "
		    "not allowed (chmod 600 %s)",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto done;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen,
		    "%s is owned by uid %u, not by this "
		    "process's uid %u (chown it)",
		    path, (unsigned)st.st_uid, (unsigned)geteuid());
		goto done;
	}
	if (st.st_size < SEAL_OVERHEAD ||
	    st.st_size > (off_t)SEAL_FILE_MAX + SEAL_OVERHEAD) {
		snprintf(err, errlen, "%s is %lld bytes: not a sealed file",
		    path, (long long)st.st_size);
		goto done;
	}
	len = (size_t)st.st_size;
	if ((blob = malloc(len)) == NULL ||
	    (out = malloc(len - SEAL_OVERHEAD + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto done;
	}
	errno = 0;
	if (read_all(fd, blob, len) == -1) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    errno ? strerror(errno) : "short file");
		goto done;
	}
	if (seal_open(s, aad, aadlen, blob, len, out) == -1) {
		snprintf(err, errlen,
		    "%s does not authenticate under the "
		    "key-encryption key (edited, truncated, or another KEK's)",
		    path);
		goto done;
	}
	*pt = out;
	*n = len - SEAL_OVERHEAD;
	out = NULL;
	rc = 0;
done:
	close(fd);
	free(blob);
	free(out);
	return rc;
}
