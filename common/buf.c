/* Bounded buffers, bounded reader, wiping allocators. */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/buf.h"
#include "common/log.h"

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

/* Grow by moving into fresh memory so that no stale copy is left unwiped. */
static int
buf_grow(struct buf *b, size_t need)
{
	size_t	 ncap;
	uint8_t *n;

	if (need <= b->cap)
		return 0;
	if (need > b->max)
		return -1;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > b->max / 2 ? b->max : ncap * 2;
	if ((n = malloc(ncap)) == NULL)
		return -1;
	if (b->len)
		memcpy(n, b->data, b->len);
	if (b->data) {
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	b->data = n;
	b->cap = ncap;
	return 0;
}

uint8_t *
buf_reserve(struct buf *b, size_t n)
{
	uint8_t *p;

	if (n > b->max - b->len || buf_grow(b, b->len + n) == -1)
		return NULL;
	p = b->data + b->len;
	b->len += n;
	return p;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	uint8_t *d;

	if (n == 0)
		return 0;
	if ((d = buf_reserve(b, n)) == NULL)
		return -1;
	memcpy(d, p, n);
	return 0;
}

int
buf_add_u8(struct buf *b, uint8_t v)
{
	return buf_add(b, &v, 1);
}

int
buf_add_u16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	return buf_add(b, x, sizeof(x));
}

int
buf_add_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
		(uint8_t)(v >> 8), (uint8_t)v };

	return buf_add(b, x, sizeof(x));
}

int
buf_add_u64(struct buf *b, uint64_t v)
{
	if (buf_add_u32(b, (uint32_t)(v >> 32)) == -1)
		return -1;
	return buf_add_u32(b, (uint32_t)v);
}

void
buf_reset(struct buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->cap);
	b->len = 0;
}

void
buf_free(struct buf *b)
{
	if (b == NULL)
		return;
	if (b->data) {
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

void
rd_init(struct rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
}

size_t
rd_left(const struct rd *r)
{
	return r->len - r->off;
}

int
rd_ptr(struct rd *r, const uint8_t **p, size_t n)
{
	if (n > rd_left(r))
		return -1;
	*p = r->p + r->off;
	r->off += n;
	return 0;
}

int
rd_bytes(struct rd *r, void *out, size_t n)
{
	const uint8_t *p;

	if (rd_ptr(r, &p, n) == -1)
		return -1;
	if (n)
		memcpy(out, p, n);
	return 0;
}

int
rd_u8(struct rd *r, uint8_t *v)
{
	return rd_bytes(r, v, 1);
}

int
rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;

	if (rd_ptr(r, &p, 2) == -1)
		return -1;
	*v = (uint16_t)((unsigned)p[0] << 8 | p[1]);
	return 0;
}

int
rd_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (rd_ptr(r, &p, 4) == -1)
		return -1;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    p[3];
	return 0;
}

int
rd_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;

	if (rd_u32(r, &hi) == -1 || rd_u32(r, &lo) == -1)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

/*
 * Secret memory lives in OpenSSL's secure heap once sec_harden() has made
 * one: a single mmap'd arena, mlock'ed where RLIMIT_MEMLOCK allows, marked
 * MADV_DONTDUMP, with guard pages; one lock per call, no syscall. When the
 * arena is full (or was never made: unit tests, libraries), blocks come
 * from the ordinary heap and are still wiped on free. Both free functions
 * tell the two apart, so any block may go to either.
 */
static size_t sec_heap_size; /* the arena sec_harden() made, or 0 */

/*
 * Our key buffers leave a quarter of the arena to OpenSSL: it allocates
 * DH and EC private keys there while it generates them, and fails the
 * key generation when the arena is full (thousands of held IKE SAs).
 */
static bool
sec_room(size_t n)
{
	return sec_heap_size == 0 ||
	    CRYPTO_secure_used() + n <= sec_heap_size - sec_heap_size / 4;
}

void *
sec_alloc(size_t n)
{
	static atomic_int warned;
	void		 *p;

	if (n == 0)
		n = 1;
	if (sec_room(n) && (p = OPENSSL_secure_zalloc(n)) != NULL)
		return p;
	if (CRYPTO_secure_malloc_initialized() &&
	    atomic_exchange(&warned, 1) == 0)
		log_warn(
		    "secure heap full (the last quarter is left to OpenSSL): "
		    "further key buffers are in ordinary (wiped, not locked) "
		    "memory");
	ERR_clear_error();
	return calloc(1, n);
}

void
sec_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	/* Cleanses the whole secure block, or n bytes of a malloc'd one. */
	OPENSSL_secure_clear_free(p, n);
}

void
sec_free_any(void *p)
{
	if (p == NULL)
		return;
	if (CRYPTO_secure_allocated(p)) {
		OPENSSL_secure_clear_free(p, 0);
		return;
	}
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

void
sec_json_init(void)
{
	json_set_alloc_funcs(malloc, sec_free_any);
}

/* Largest power of two <= n (n > 0). */
static size_t
pow2_floor(size_t n)
{
	size_t p = 1;

	while (p <= n / 2)
		p *= 2;
	return p;
}

void
sec_harden(void)
{
	struct rlimit rl = { 0, 0 };
	size_t	      size = SEC_HEAP_MAX;
	int	      rc;

	(void)setrlimit(RLIMIT_CORE, &rl);
	/* No core file even if a limit is raised later, no ptrace by other
	 * users, /proc/PID/mem unreadable to them. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	if (CRYPTO_secure_malloc_initialized())
		return;
	/* Lock as much of the arena as the limit allows: raise the soft limit
	 * to the hard one, then size the arena to fit. */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		if (rl.rlim_cur < SEC_HEAP_MAX && rl.rlim_max > rl.rlim_cur) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_MEMLOCK, &rl);
			(void)getrlimit(RLIMIT_MEMLOCK, &rl);
		}
		/* Half the limit: OpenSSL and the rest of the process may lock too. */
		if (rl.rlim_cur / 2 >= SEC_HEAP_MIN && rl.rlim_cur / 2 < size)
			size = pow2_floor(rl.rlim_cur / 2);
	}
	rc = CRYPTO_secure_malloc_init(size, 16);
	if (rc != 0)
		sec_heap_size = size;
	if (rc == 0)
		log_warn(
		    "no secure heap (mmap failed): key buffers are in ordinary "
		    "(wiped) memory");
	else
		log_debug("secure heap: %zu KiB, %s, excluded from core dumps",
		    size / 1024,
		    rc == 1 ? "locked in RAM" :
			      "not locked (RLIMIT_MEMLOCK too low)");
}
