/*
 * The emulated QKD link between two simulated KMEs: one TCP connection with
 * mutual TLS 1.3 (each side presents its KME certificate, the peer's must
 * chain to ca_file and carry the expected subject CN), carrying
 * length-prefixed frames:
 *
 *	u32 len (of what follows) | u8 type | u32 request id | payload
 *
 * One I/O thread per link owns the socket and the SSL object. Other threads
 * queue frames (link_send) or make a request and wait for the answer with
 * the same request id (link_call_*). While the I/O thread sleeps in poll()
 * it holds no SSL state, and link_call_wait then writes the queue to the
 * SSL itself under a mutex (saving a wakeup); otherwise it wakes the I/O
 * thread. Either way no OpenSSL object is used by two threads at once.
 * The listening side accepts one peer at a time (a newer authenticated
 * connection replaces the old one); the connecting side reconnects with a
 * backoff capped at 1 s.
 *
 * After the handshake both sides send a HELLO frame built by ops->hello and
 * the link is up once ops->up has accepted the peer's. Callbacks run on the
 * I/O thread, never with a link lock held; they may call link_send.
 */
#ifndef SIM_LINK_H
#define SIM_LINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define LINK_FRAME_MAX (4u << 20) /* payload bytes */
#define LINK_T_HELLO   0x01	  /* reserved frame types */
#define LINK_T_PING    0x02
#define LINK_T_REPLY   0x80 /* bit set: answers a link_call */

struct link;

struct link_ops {
	void *arg;
	/* Our HELLO payload. */
	int (*hello)(void *arg, struct buf *out);
	/* The peer's HELLO: 0 accepts, -1 refuses (why is logged). */
	int (*up)(void *arg, const uint8_t *p, size_t n, char *why,
	    size_t whylen);
	/* The link went down (after being up). */
	void (*down)(void *arg);
	/* A frame that is neither HELLO, PING nor a reply. */
	void (*frame)(void *arg, uint8_t type, uint32_t reqid, const uint8_t *p,
	    size_t n);
	/* After each burst of frames: a chance to answer them in one go. */
	void (*flush)(void *arg);
	/* Every tick_ms while up. */
	void (*tick)(void *arg);
};

struct link_cfg {
	const char *self_id;	 /* for logs */
	const char *peer_id;	 /* required CN of the peer certificate */
	const char *listen_host; /* either this ... */
	uint16_t    listen_port;
	const char *peer_host; /* ... or this */
	uint16_t    peer_port;
	const char *cert;
	const char *key;
	const char *ca_file;
	unsigned    tick_ms;
};

/* A request in flight; lives on the caller's stack. */
struct link_wait {
	struct link_wait *next;
	pthread_cond_t	  cv;
	uint32_t	  reqid;
	int		  done;	     /* 1 answered, -1 link down */
	bool		  timed_out; /* link_call_wait ran out of time */
	int		  kick;	     /* queued, not yet written or woken */
	uint8_t		  type;	     /* answer's frame type */
	struct buf	  reply;     /* answer's payload (wiped) */
};

struct link *link_start(const struct link_cfg *cfg, const struct link_ops *ops,
    char *err, size_t errlen);
void	     link_stop(struct link *l);	      /* NULL ok */
uint16_t     link_port(const struct link *l); /* listen port or 0 */
bool	     link_is_up(struct link *l);
/* Increments each time a connection that was up goes down. */
uint64_t     link_epoch(struct link *l);

/* Queues a frame (any thread). -1 if the link is down or the queue full. */
int link_send(struct link *l, uint8_t type, uint32_t reqid, const void *p,
    size_t n);

/* Sends a request with a fresh request id; -1 if the link is down. */
int  link_call_begin(struct link *l, struct link_wait *w, uint8_t type,
     const void *p, size_t n);
/*
 * 0: answered (w->type, w->reply); -1: not answered, because the link went
 * down or (w->timed_out) timeout_ms passed.
 */
int  link_call_wait(struct link *l, struct link_wait *w, unsigned timeout_ms);
void link_call_end(struct link *l, struct link_wait *w);

#endif
