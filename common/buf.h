/* Bounded byte buffers and a bounded reader; secret memory that is wiped. */
#ifndef COMMON_BUF_H
#define COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

/* A growable buffer that never grows past `max` and wipes itself on free. */
struct buf {
	uint8_t *data;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
};

void	 buf_init(struct buf *b, size_t max);
int	 buf_add(struct buf *b, const void *p,
	 size_t n);			       /* 0 or -1 (over max / ENOMEM) */
uint8_t *buf_reserve(struct buf *b, size_t n); /* n bytes appended, or NULL */
int	 buf_add_u8(struct buf *b, uint8_t v);
int	 buf_add_u16(struct buf *b, uint16_t v); /* network order */
int	 buf_add_u32(struct buf *b, uint32_t v);
int	 buf_add_u64(struct buf *b, uint64_t v);
void	 buf_reset(struct buf *b); /* wipes, keeps memory */
void	 buf_free(struct buf *b);  /* wipes and frees; NULL ok */

/* Reads a byte string front to back; every read is length-checked. */
struct rd {
	const uint8_t *p;
	size_t	       len;
	size_t	       off;
};

void   rd_init(struct rd *r, const void *p, size_t len);
size_t rd_left(const struct rd *r);
int    rd_u8(struct rd *r, uint8_t *v);
int    rd_u16(struct rd *r, uint16_t *v);
int    rd_u32(struct rd *r, uint32_t *v);
int    rd_u64(struct rd *r, uint64_t *v);
int    rd_bytes(struct rd *r, void *out, size_t n);
int    rd_ptr(struct rd *r, const uint8_t **p, size_t n); /* borrow n bytes */

#define SEC_HEAP_MAX (4u << 20) /* secure arena, bytes (power of 2) */
#define SEC_HEAP_MIN (64u << 10)

/* Secret memory: zeroed on allocation, wiped before release; in the locked,
 * undumpable secure heap after sec_harden() (see buf.c). */
void *sec_alloc(size_t n);
void  sec_free(void *p, size_t n);
/* Wipe any block from sec_alloc or malloc (malloc_usable_size) and free it. */
void  sec_free_any(void *p);
/* Make Jansson wipe every block it frees (key material passes through it). */
void  sec_json_init(void);
/*
 * Once at the start of every daemon and tool, before threads: no core files
 * (RLIMIT_CORE 0, PR_SET_DUMPABLE 0) and the secure heap for key buffers
 * (mlock'ed where RLIMIT_MEMLOCK allows, MADV_DONTDUMP).
 */
void  sec_harden(void);

#endif
