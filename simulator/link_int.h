/*
 * Inside the emulated QKD link (link.h), shared by its three files:
 *	link.c		start, stop, the I/O thread and the connection state
 *			(connect, adopt, close, timers, the poll loop)
 *	link_tls.c	TLS: the context, the peer check, the handshakes of
 *			both sides (the listening side's stepped without
 *			blocking the link)
 *	link_wire.c	frames in and out of the socket, and the callers'
 *			side: link_send and link_call_*
 */
#ifndef SIM_LINK_INT_H
#define SIM_LINK_INT_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/buf.h"
#include "simulator/link.h"

#define HDR_LEN	       9
#define RBUF_LEN       (LINK_FRAME_MAX + HDR_LEN + 16384)
#define OUTQ_MAX       (64u << 20)
#define HANDSHAKE_MS   5000
#define LINK_PEND_MAX  8 /* concurrent server handshakes */
#define HELLO_MS       5000
#define PING_MS	       1000
#define DEAD_MS	       5000
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 1000

struct link {
	struct link_cfg cfg;
	struct link_ops ops;
	SSL_CTX	       *ctx;
	int		lfd;
	uint16_t	port;
	int		evfd;
	pthread_t	th;
	int		th_started;

	/*
	 * Held by the I/O thread except while it sleeps in poll() with a
	 * connection up; a caller thread that gets it there may write queued
	 * frames to the SSL itself (link_call_wait), saving the I/O thread a
	 * wakeup. So the SSL object is never used by two threads at once. It
	 * guards ssl, fd, hello_seen, wbuf, woff, want_out, wfail. Taken
	 * before mu, never the other way round (callers only trylock it).
	 */
	pthread_mutex_t ssl_mu;
	int		direct; /* SIGPIPE is ignored: callers may write */
	int		wfail;	/* a caller's write failed: I/O thread closes */
	char		wfail_why[256];

	pthread_mutex_t	  mu;	 /* guards the fields below */
	int		  stop;	 /* written under mu, read atomically */
	int		  up;	 /* written under mu, read atomically */
	uint64_t	  epoch; /* written under mu, read atomically */
	uint32_t	  next_reqid;
	struct buf	  outq;
	struct link_wait *waiters;

	/* I/O thread only (or under ssl_mu, see above) */
	int	   fd;
	SSL	  *ssl;
	int	   hello_seen;
	uint64_t   hello_deadline;
	char	   peer_addr[64];
	struct buf wbuf;
	size_t	   woff;
	int	   want_out;
	uint8_t	  *rb;
	size_t	   rlen;
	uint64_t   last_rx, next_ping, next_tick;
	unsigned   backoff_ms;
	char	   last_err[160];
	/* server handshakes in progress, stepped without blocking the link */
	struct link_pend {
		int	 fd;
		SSL	*ssl;
		uint64_t deadline;
		short	 want;
		char	 who[80];
	} pend[LINK_PEND_MAX];
	size_t npend;
};

/* The link whose I/O thread this is (NULL in other threads). */
extern __thread struct link *link_io_self;

/* link.c */
void link_wake(struct link *l);
/*
 * Waits up to ms for ev on fd (fd -1: only the time) or the stop event:
 * 0 with *ready set if fd is ready, -1 if the link is stopping.
 */
int  link_wait_fd(struct link *l, int fd, short ev, int ms, bool *ready);
void link_sock_tune(int fd);
/* Logs a connection problem once per distinct message (retries are quiet). */
void link_note_err(struct link *l, bool warn, const char *msg);
void link_conn_close(struct link *l, const char *why);
/* Adopts a fresh authenticated connection and queues our HELLO first. */
int  link_conn_adopt(struct link *l, int fd, SSL *ssl, const char *who);

/* link_tls.c */
/* OpenSSL's last error (or errno's) as text; clears the error queue. */
void	 link_tls_errstr(char *out, size_t cap);
SSL_CTX *link_tls_ctx(const struct link_cfg *c, char *err, size_t errlen);
/* Client side: runs the TLS handshake on fd; returns SSL or NULL. */
SSL	*link_tls_connect(struct link *l, int fd, const char *who);
/* Server side: accepts a connection and starts its handshake. */
void	 link_pend_accept(struct link *l);
/* Steps the pending handshakes that poll found ready (or that timed out). */
void	 link_pend_run(struct link *l, const struct pollfd *p);
/* Adds the pending handshakes to a poll set; returns how many. */
size_t	 link_pend_pollfds(struct link *l, struct pollfd *p);
void	 link_pend_drop(struct link *l, size_t i);

/* link_wire.c */
/* Appends one frame to b; -1 if it does not fit (b may hold part of it). */
int link_frame_append(struct buf *b, uint8_t type, uint32_t reqid,
    const void *p, size_t n);
/* Reads and handles what the socket has; -1 closes (why set). */
int link_read(struct link *l, char *why, size_t whylen);
/* Writes queued frames; -1 closes (why set). */
int link_write(struct link *l, char *why, size_t whylen);

#endif
