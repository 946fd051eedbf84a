/* What the data-plane files share (dp.c: setup, SA API, counters;
 * dp_io.c: the two packet threads; dp_map.c: the lookup tables). */
#ifndef IKE_DP_INT_H
#define IKE_DP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sys/socket.h>

#include "ike/dp.h"
#include "ike/gre.h"

/*
 * A u64 -> pointer table of fixed capacity (a power of two, at least
 * twice the entries), open addressing with linear probing and deletion
 * by backward shift (no tombstones, so lookups stay short however many
 * SAs come and go). Written under the engine's write lock only.
 */
struct dp_map {
	uint64_t *keys;
	void	**vals; /* NULL: empty slot */
	size_t	  mask;
};

int   dp_map_init(struct dp_map *m, size_t max_entries);
void  dp_map_free(struct dp_map *m);
void *dp_map_get(const struct dp_map *m, uint64_t key);
/* Inserts or replaces; returns the value replaced (NULL: none). */
void *dp_map_put(struct dp_map *m, uint64_t key, void *val);
void *dp_map_del(struct dp_map *m, uint64_t key);

/* One installed Child SA pair. */
struct dp_rec {
	struct esp_sa	  *in, *out;
	uint32_t	   in_spi;
	struct sockaddr_in peer;
	enum dp_kind	   kind;
	bool		   gre;
	uint8_t		   qfi;
	struct in_addr	   inner;
	bool		   used;
	bool hard_told; /* dp_expired() reported it (IKE thread) */
};

#define DP_OUT_MAX (GRE_HDR_LEN + DP_PKT_MAX + ESP_MAX_OVERHEAD)

/* The outbound thread's batch: inner packets read with GRE headroom. */
struct dp_obatch {
	uint8_t		   in[DP_BATCH][GRE_HDR_LEN + DP_PKT_MAX];
	uint8_t		   out[DP_BATCH][DP_OUT_MAX];
	struct mmsghdr	   mm[DP_BATCH];
	struct iovec	   iov[DP_BATCH];
	struct sockaddr_in to[DP_BATCH];
};

/* The inbound thread's batch: datagrams, decrypted in place. */
struct dp_ibatch {
	uint8_t		   buf[DP_BATCH][DP_OUT_MAX + 1];
	struct mmsghdr	   mm[DP_BATCH];
	struct iovec	   iov[DP_BATCH];
	struct sockaddr_in from[DP_BATCH];
	size_t		   off[DP_BATCH], len[DP_BATCH]; /* 0: dropped */
	struct dp_meta	   meta[DP_BATCH];
};

struct dp {
	struct dp_cfg	  cfg;
	int		  sock, stopfd;
	pthread_rwlock_t  lock;
	struct dp_rec	 *recs;	    /* cfg.max_children slots */
	struct dp_map	  by_spi;   /* inbound SPI -> rec */
	struct dp_map	  by_route; /* dp_route_key() -> rec (its out SA) */
	pthread_t	  th_out, th_in;
	bool		  started, lock_init;
	int		  stopping; /* atomic: set before stopfd */
	/* A direction's batch, its SAs' state and its counters belong to
	 * the thread holding its lock (dp_io.c: dir_run): its own thread,
	 * or the other one while it spins (cfg.spin_us). */
	pthread_mutex_t	  mu_out, mu_in;
	/* Each written under its direction's lock (relaxed atomics), summed
	 * by dp_stats(); apart so that the two threads share no cache
	 * line. */
	struct dp_stats	  st_out __attribute__((aligned(64)));
	struct dp_stats	  st_in __attribute__((aligned(64)));
	struct dp_obatch *ob;
	struct dp_ibatch *ib;
};

/* Relaxed increment of a counter only the calling thread writes. */
#define DP_ADD(field, n)                                                       \
	__atomic_store_n(&(field),                                             \
	    __atomic_load_n(&(field), __ATOMIC_RELAXED) + (uint64_t)(n),       \
	    __ATOMIC_RELAXED)

static inline uint64_t
dp_route_key(uint32_t inner_be, enum dp_kind kind)
{
	return ((uint64_t)inner_be << 8) | (uint64_t)kind;
}

/* Under the lock (read or write): the counters of one pair. */
void  dp_rec_stats(const struct dp *dp, const struct dp_rec *r,
     struct dp_child_stats *st);
void *dp_out_main(void *arg);
void *dp_in_main(void *arg);

#endif
