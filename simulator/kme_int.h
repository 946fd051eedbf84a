/*
 * Inside one simulated KME (kme.h), shared by its three files:
 *	kme.c		start, stop, the SAE lists, info, the expiry sweep
 *	kme_link.c	the link callbacks: HELLO, key generation (KEYS,
 *			KEYS_ACK), the peer side of an assignment (ASSIGN)
 *	kme_etsi.c	the ETSI operations: enc_keys (master side of an
 *			assignment) and dec_keys
 * The frames are described in simulator/README.md, "Protocol".
 */
#ifndef SIM_KME_INT_H
#define SIM_KME_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "simulator/kme.h"
#include "simulator/link.h"
#include "simulator/store.h"

#define KME_PROTO_VERSION 1
#define KT_KEYS		  0x10 /* transmitter -> receiver: a batch of chunks */
#define KT_KEYS_ACK	  0x11 /* receiver -> transmitter: batch stored */
#define KT_ASSIGN	  0x20 /* master's KME -> peer: commit an assignment */
#define KT_ASSIGN_ACK	  (LINK_T_REPLY | 0x20)
#define KT_ASSIGN_NACK	  (LINK_T_REPLY | 0x21)
#define NACK_MISSING	  1 /* chunks missing at the peer (listed) */
#define NACK_BADREQ	  2 /* a slave not attached there, bad sizes */
#define NACK_STORE	  3 /* store failure at the peer: nothing committed */
#define NACK_FULL	  4 /* a pair has max_keys_per_pair keys waiting (text) */

/* A KEYS batch the transmitter sent and the receiver has not acknowledged. */
struct kme_batch {
	struct kme_batch *next;
	uint64_t	  seq;
	size_t		  n;
	uint8_t		 *ids;	/* n * 16 */
	uint8_t		 *keys; /* n * kb, sec_alloc */
};

/* An ASSIGN received from the peer, committed at the next flush. */
struct kme_passign {
	uint32_t reqid;
	int	 bad;
	char	 why[ETSI_ERRLEN];
	char	 master[ETSI_ID_MAX + 1];
	char	*slaves[ETSI_MAX_SLAVES + 1];
	size_t	 nslaves;
	uint8_t (*ids)[16];
	uint8_t (*chunks)[16];
	uint64_t *ords;
	uint8_t (*missing)[16];
	struct store_assign a;
};

struct kme {
	/* configuration, owned copies */
	char	       *id;
	char	       *peer_id;
	char	      **sae;
	size_t		nsae;
	unsigned	key_size, max_key_count;
	int		transmitter;
	uint64_t	key_rate;
	unsigned	timeout_ms;
	int		listen_side;
	size_t		kb;
	unsigned	key_ttl_s, max_pair;
	uint64_t	last_sweep; /* ms; under sweep_mu */
	pthread_mutex_t sweep_mu;

	struct store *st;
	struct link  *link;

	/* Orders chunk arrival (store + KEYS_ACK) against reservation (+ ASSIGN). */
	pthread_mutex_t order_mu;

	pthread_mutex_t mu; /* remote SAE list */
	char	      **rsae;
	size_t		nrsae;

	/* I/O thread only */
	uint64_t next_seq;
	uint64_t gen_last_ns;
	uint64_t gen_acc; /* bit-nanoseconds not yet turned into keys */
	struct kme_batch    *bhead, *btail;
	size_t		     nbatch, bkeys;
	struct kme_passign **pa;
	size_t		     npa, capa;
};

/* kme.c */
/* A length-prefixed string (at most 255 bytes) appended to b. */
int  kme_put_str(struct buf *b, const char *s);
/* A length-prefixed ID string; -1 if truncated or not a valid ETSI ID. */
int  kme_get_str(struct rd *r, char *out, size_t cap);
void kme_strv_free(char **v, size_t n);
/* n random version 4 UUIDs into ids (n * 16 bytes). */
int  kme_uuid_bulk(uint8_t *ids, size_t n);
/* Wipes expired assigned keys, at most once a second (any thread). */
void kme_sweep(struct kme *k);

/* kme_link.c: the link callbacks, arg k. */
void kme_link_ops(struct kme *k, struct link_ops *ops);
/* Frees the batches in flight and the pending ASSIGNs (link down, stop). */
void kme_link_reset(struct kme *k);

#endif
