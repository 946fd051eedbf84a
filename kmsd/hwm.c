/*
 * The pool's high-water mark file (hwm.h).
 *
 * Plaintext, sealed whole with AAD hwm_aad: the pool ID (16 bytes), the
 * number of pairs (4 bytes, big-endian), then per pair: master length (1
 * byte), master, slave length (1 byte), slave, mark (8 bytes, big-endian).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "kmsd/hwm.h"

static const char hwm_aad[] = "kmsd pool high-water marks v1";

#define HWM_ENT_MAX   (2 + 2 * ETSI_ID_MAX + 8)
#define HWM_PAIRS_MAX ((SEAL_FILE_MAX - HWM_ID_LEN - 4) / HWM_ENT_MAX)

static struct hwm_ent *
hwm_find(const struct hwm *h, const char *master, const char *slave)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].master, master) == 0 &&
		    strcmp(h->v[i].slave, slave) == 0)
			return &h->v[i];
	return NULL;
}

/* Raises the pair's mark to at least mark, adding the pair if new. */
static int
hwm_put(struct hwm *h, const char *master, const char *slave, uint64_t mark)
{
	struct hwm_ent *e;
	size_t		cap;

	if ((e = hwm_find(h, master, slave)) != NULL) {
		if (mark > e->mark)
			e->mark = mark;
		return 0;
	}
	if (!etsi_id_valid(master) || !etsi_id_valid(slave) ||
	    h->n >= HWM_PAIRS_MAX)
		return -1;
	if (h->n == h->cap) {
		cap = h->cap ? 2 * h->cap : 8;
		if ((e = realloc(h->v, cap * sizeof(*e))) == NULL)
			return -1;
		h->v = e;
		h->cap = cap;
	}
	e = &h->v[h->n++];
	snprintf(e->master, sizeof(e->master), "%s", master);
	snprintf(e->slave, sizeof(e->slave), "%s", slave);
	e->mark = mark;
	return 0;
}

static uint64_t
get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void
put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* One length-prefixed ID at *o; -1 if short or not a valid ID. */
static int
get_id(const uint8_t *p, size_t len, size_t *o, char out[ETSI_ID_MAX + 1])
{
	size_t l;

	if (*o >= len || (l = p[*o]) == 0 || l > ETSI_ID_MAX ||
	    len - *o - 1 < l)
		return -1;
	memcpy(out, p + *o + 1, l);
	out[l] = '\0';
	*o += 1 + l;
	return etsi_id_valid(out) ? 0 : -1;
}

/* Parses a file's plaintext; the pool ID into id, the marks merged into h. */
static int
hwm_parse(struct hwm *h, const uint8_t *p, size_t len, uint8_t *id)
{
	char   m[ETSI_ID_MAX + 1], s[ETSI_ID_MAX + 1];
	size_t o = HWM_ID_LEN + 4, n, i;

	if (len < o)
		return -1;
	memcpy(id, p, HWM_ID_LEN);
	n = (size_t)get_be(p + HWM_ID_LEN, 4);
	for (i = 0; i < n; i++) {
		if (get_id(p, len, &o, m) == -1 ||
		    get_id(p, len, &o, s) == -1 || len - o < 8 ||
		    hwm_put(h, m, s, get_be(p + o, 8)) == -1)
			return -1;
		o += 8;
	}
	return o == len ? 0 : -1;
}

/* Reads the file and merges it into h, its pool ID into id: 0 (*absent
 * if there is no file: h and id untouched), or -1 with err. */
static int
hwm_read(struct hwm *h, struct seal *s, uint8_t *id, bool *absent, char *err,
    size_t errlen)
{
	uint8_t *p;
	size_t	 n;
	int	 rc = 0;

	if (seal_file_read(s, h->path, (const uint8_t *)hwm_aad,
		sizeof(hwm_aad), &p, &n, err, errlen) == -1)
		return -1;
	if ((*absent = p == NULL))
		return 0;
	if (hwm_parse(h, p, n, id) == -1) {
		snprintf(err, errlen,
		    "%s: authenticates but does not parse "
		    "(written by another version?)",
		    h->path);
		rc = -1;
	}
	OPENSSL_cleanse(p, n);
	free(p);
	return rc;
}

int
hwm_load(struct hwm *h, struct seal *s, const char *path, bool *fresh,
    char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	*fresh = false;
	if ((h->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	if (hwm_read(h, s, h->id, fresh, err, errlen) == -1)
		return -1;
	if (*fresh && RAND_bytes(h->id, sizeof(h->id)) != 1) {
		snprintf(err, errlen, "%s: RAND_bytes failed", path);
		return -1;
	}
	return 0;
}

int
hwm_save(struct hwm *h, struct seal *s, char *err, size_t errlen)
{
	uint8_t *p;
	size_t	 o = HWM_ID_LEN + 4, l;
	int	 rc;

	if ((p = malloc(o + h->n * HWM_ENT_MAX)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", h->path);
		return -1;
	}
	memcpy(p, h->id, HWM_ID_LEN);
	put_be(p + HWM_ID_LEN, h->n, 4);
	for (size_t i = 0; i < h->n; i++) {
		l = strlen(h->v[i].master);
		p[o] = (uint8_t)l;
		memcpy(p + o + 1, h->v[i].master, l);
		o += 1 + l;
		l = strlen(h->v[i].slave);
		p[o] = (uint8_t)l;
		memcpy(p + o + 1, h->v[i].slave, l);
		o += 1 + l;
		put_be(p + o, h->v[i].mark, 8);
		o += 8;
	}
	rc = seal_file_write(s, h->path, (const uint8_t *)hwm_aad,
	    sizeof(hwm_aad), p, o, err, errlen);
	free(p);
	return rc;
}

int
hwm_raise(struct hwm *h, struct seal *s, const char *master, const char *slave,
    uint64_t seq)
{
	uint8_t id[HWM_ID_LEN];
	char	err[512];
	bool	absent;

	/* Another process sharing the pool may have raised other marks. A
	 * file gone missing is rewritten from memory. */
	if (hwm_read(h, s, id, &absent, err, sizeof(err)) == -1) {
		log_err("pool: high-water marks: %s", err);
		return -1;
	}
	if (!absent && CRYPTO_memcmp(id, h->id, HWM_ID_LEN) != 0) {
		log_err("pool: high-water marks: %s now belongs to another "
			"pool (replaced while running)",
		    h->path);
		return -1;
	}
	if (hwm_put(h, master, slave, seq) == -1) {
		log_err("pool: high-water marks: cannot add (%s, %s)", master,
		    slave);
		return -1;
	}
	if (hwm_save(h, s, err, sizeof(err)) == -1) {
		log_err("pool: high-water marks: %s", err);
		return -1;
	}
	return 0;
}

uint64_t
hwm_get(const struct hwm *h, const char *master, const char *slave)
{
	const struct hwm_ent *e = hwm_find(h, master, slave);

	return e ? e->mark : 0;
}

uint64_t
hwm_max(const struct hwm *h)
{
	uint64_t m = 0;

	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].mark > m)
			m = h->v[i].mark;
	return m;
}

void
hwm_free(struct hwm *h)
{
	if (h == NULL)
		return;
	free(h->path);
	free(h->v);
	memset(h, 0, sizeof(*h));
}
