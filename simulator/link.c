/*
 * Emulated QKD link transport: mutual TLS 1.3 over TCP, framed, one I/O
 * thread per link (see link.h).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "simulator/link.h"

#define HDR_LEN		9
#define RBUF_LEN	(LINK_FRAME_MAX + HDR_LEN + 16384)
#define OUTQ_MAX	(64u << 20)
#define HANDSHAKE_MS	5000
#define LINK_PEND_MAX	8	/* concurrent server handshakes */
#define HELLO_MS	5000
#define PING_MS		1000
#define DEAD_MS		5000
#define BACKOFF_MIN_MS	200
#define BACKOFF_MAX_MS	1000

struct link {
	struct link_cfg	 cfg;
	struct link_ops	 ops;
	SSL_CTX		*ctx;
	int		 lfd;
	uint16_t	 port;
	int		 evfd;
	pthread_t	 th;
	int		 th_started;

	/*
	 * Held by the I/O thread except while it sleeps in poll() with a
	 * connection up; a caller thread that gets it there may write queued
	 * frames to the SSL itself (link_call_wait), saving the I/O thread a
	 * wakeup. So the SSL object is never used by two threads at once. It
	 * guards ssl, fd, hello_seen, wbuf, woff, want_out, wfail. Taken
	 * before mu, never the other way round (callers only trylock it).
	 */
	pthread_mutex_t	 ssl_mu;
	int		 direct;	/* SIGPIPE is ignored: callers may write */
	int		 wfail;		/* a caller's write failed: I/O thread closes */
	char		 wfail_why[256];

	pthread_mutex_t	 mu;		/* guards the fields below */
	int		 stop;		/* written under mu, read atomically */
	int		 up;		/* written under mu, read atomically */
	uint64_t	 epoch;		/* written under mu, read atomically */
	uint32_t	 next_reqid;
	struct buf	 outq;
	struct link_wait *waiters;

	/* I/O thread only (or under ssl_mu, see above) */
	int		 fd;
	SSL		*ssl;
	int		 hello_seen;
	uint64_t	 hello_deadline;
	char		 peer_addr[64];
	struct buf	 wbuf;
	size_t		 woff;
	int		 want_out;
	uint8_t		*rb;
	size_t		 rlen;
	uint64_t	 last_rx, next_ping, next_tick;
	unsigned	 backoff_ms;
	char		 last_err[160];
	/* server handshakes in progress, stepped without blocking the link */
	struct link_pend {
		int	 fd;
		SSL	*ssl;
		uint64_t deadline;
		short	 want;
		char	 who[80];
	}		 pend[LINK_PEND_MAX];
	size_t		 npend;
};

/* ------------------------------------------------------------ helpers */

/* The link whose I/O thread this is (NULL in other threads). */
static __thread struct link *io_self;

static void
ssl_errstr(char *out, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(out, cap, "%s", errno ? strerror(errno) : "unknown error");
	else
		ERR_error_string_n(e, out, cap);
	ERR_clear_error();
}

static void
wake(struct link *l)
{
	uint64_t one = 1;
	ssize_t r;

	r = write(l->evfd, &one, sizeof(one));
	(void)r;
}

static void
drain(struct link *l)
{
	uint64_t v;
	ssize_t r;

	r = read(l->evfd, &v, sizeof(v));
	(void)r;
}

/* Wipes only the bytes in use: buf_reset wipes the whole capacity. */
static void
buf_clear(struct buf *b)
{
	if (b->data && b->len)
		OPENSSL_cleanse(b->data, b->len);
	b->len = 0;
}

static int
stopping(struct link *l)
{
	int s;

	s = __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE);
	return s;
}

/* Waits up to ms for fd (or the stop event); 1 ready, 0 timeout, -1 stop. */
static int
wait_fd(struct link *l, int fd, short ev, int ms)
{
	struct pollfd p[2] = {
		{ .fd = l->evfd, .events = POLLIN },
		{ .fd = fd, .events = ev },
	};
	int r;

	r = poll(p, fd >= 0 ? 2 : 1, ms);
	if (r > 0 && (p[0].revents & POLLIN)) {
		drain(l);
		if (stopping(l))
			return -1;
	}
	if (stopping(l))
		return -1;
	if (r > 0 && fd >= 0 && p[1].revents)
		return 1;
	return 0;
}

static int
resolve(const char *host, uint16_t port, int passive, struct sockaddr_storage *ss,
    socklen_t *sl)
{
	struct addrinfo hints, *ai = NULL;
	char ps[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	if ((rc = getaddrinfo(host, ps, &hints, &ai)) != 0 || ai == NULL)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void
addr_str(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char h[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
		port = ntohs(a->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
		port = ntohs(a->sin6_port);
	}
	snprintf(out, cap, "%s:%u", h, port);
}

static void
sock_tune(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Logs a connection problem once per distinct message (retries are quiet). */
static void
note_err(struct link *l, int warn, const char *msg)
{
	if (strcmp(l->last_err, msg) == 0) {
		log_debug("link: %s", msg);
		return;
	}
	snprintf(l->last_err, sizeof(l->last_err), "%s", msg);
	if (warn)
		log_warn("link: %s", msg);
	else
		log_info("link: %s", msg);
}

/* ------------------------------------------------------------ TLS setup */

static SSL_CTX *
ctx_new(const struct link_cfg *c, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char e[200];

	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "link: cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_num_tickets(ctx, 0);
	/* One read() per burst instead of two per record (header, body). */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
		ssl_errstr(e, sizeof(e));
		snprintf(err, errlen, "link: certificate %s: %s", c->cert, e);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_errstr(e, sizeof(e));
		snprintf(err, errlen, "link: private key %s: %s", c->key, e);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
		ssl_errstr(e, sizeof(e));
		snprintf(err, errlen, "link: ca_file %s: %s", c->ca_file, e);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
	    NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The peer certificate's subject CN must be exactly the expected peer ID. */
static int
peer_cn_ok(struct link *l, SSL *ssl, char *cn, size_t cncap)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	X509_NAME *nm;
	X509_NAME_ENTRY *e;
	unsigned char *u = NULL;
	int idx, n, ok = 0;
	size_t i;

	snprintf(cn, cncap, "(none)");
	if (cert == NULL || (nm = X509_get_subject_name(cert)) == NULL)
		return 0;
	idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
	if (idx < 0 || (e = X509_NAME_get_entry(nm, idx)) == NULL)
		return 0;
	n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
	if (n < 0)
		return 0;
	ok = (size_t)n == strlen(l->cfg.peer_id) &&
	    memcmp(u, l->cfg.peer_id, (size_t)n) == 0 &&
	    X509_NAME_get_index_by_NID(nm, NID_commonName, idx) < 0;
	for (i = 0; i < (size_t)n && i + 1 < cncap; i++)
		cn[i] = (u[i] >= 0x20 && u[i] < 0x7f) ? (char)u[i] : '?';
	cn[i] = '\0';
	OPENSSL_free(u);
	return ok;
}

/* Why a handshake failed, for the log. */
static void
handshake_fail(struct link *l, SSL *ssl, const char *who)
{
	char	e[200], msg[400];
	long	vr;

	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK)
		snprintf(e, sizeof(e), "peer certificate not accepted: %s",
		    X509_verify_cert_error_string(vr));
	else
		ssl_errstr(e, sizeof(e));
	snprintf(msg, sizeof(msg), "TLS handshake with %s failed: %s", who, e);
	note_err(l, 1, msg);
}

/* After the handshake: the peer must be the KME we pair with. */
static int
handshake_peer_ok(struct link *l, SSL *ssl, const char *who)
{
	char	msg[400], cn[160];

	if (peer_cn_ok(l, ssl, cn, sizeof(cn)))
		return 1;
	snprintf(msg, sizeof(msg), "refusing peer %s: certificate CN \"%s\" "
	    "is not the expected peer KME \"%s\"", who, cn, l->cfg.peer_id);
	note_err(l, 1, msg);
	return 0;
}

/* One non-blocking handshake step: 1 done, 0 wants *want, -1 failed. */
static int
handshake_step(struct link *l, SSL *ssl, const char *who, short *want)
{
	int	r;

	ERR_clear_error();
	if ((r = SSL_do_handshake(ssl)) == 1)
		return handshake_peer_ok(l, ssl, who) ? 1 : -1;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*want = POLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want = POLLOUT;
		return 0;
	default:
		handshake_fail(l, ssl, who);
		return -1;
	}
}

/* Client side: runs the TLS handshake on fd; returns SSL or NULL. */
static SSL *
handshake(struct link *l, int fd, const char *who)
{
	SSL		*ssl;
	uint64_t	 deadline = time_mono_ns() + (uint64_t)HANDSHAKE_MS * 1000000;
	char		 msg[200];
	short		 w = 0;
	int		 r;

	ssl = SSL_new(l->ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	while ((r = handshake_step(l, ssl, who, &w)) == 0) {
		if (time_mono_ns() > deadline) {
			snprintf(msg, sizeof(msg), "TLS handshake with %s timed out",
			    who);
			note_err(l, 1, msg);
			r = -1;
			break;
		}
		if (wait_fd(l, fd, w, 100) == -1) {
			r = -1;
			break;
		}
	}
	if (r == -1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* ----------------------------------------------------- connection state */

static void
fail_waiters_locked(struct link *l)
{
	struct link_wait *w;

	for (w = l->waiters; w != NULL; w = w->next)
		if (w->done == 0) {
			w->done = -1;
			pthread_cond_signal(&w->cv);
		}
}

static void
conn_close(struct link *l, const char *why)
{
	int was_up;

	if (l->ssl == NULL && l->fd < 0)
		return;
	pthread_mutex_lock(&l->mu);
	was_up = l->up;
	__atomic_store_n(&l->up, 0, __ATOMIC_RELEASE);
	if (was_up)
		__atomic_store_n(&l->epoch, l->epoch + 1, __ATOMIC_RELEASE);
	buf_reset(&l->outq);
	fail_waiters_locked(l);
	pthread_mutex_unlock(&l->mu);
	if (was_up) {
		log_info("link: QKD link to %s (%s) down: %s", l->cfg.peer_id,
		    l->peer_addr, why);
		if (l->ops.down)
			l->ops.down(l->ops.arg);
	} else {
		log_debug("link: connection to %s closed before HELLO: %s",
		    l->peer_addr, why);
	}
	if (l->ssl) {
		(void)SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
		l->ssl = NULL;
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	buf_reset(&l->wbuf);
	l->woff = 0;
	l->want_out = 0;
	OPENSSL_cleanse(l->rb, l->rlen);
	l->rlen = 0;
	l->hello_seen = 0;
	l->wfail = 0;
	ERR_clear_error();
}

static int
frame_append(struct buf *b, uint8_t type, uint32_t reqid, const void *p,
    size_t n)
{
	if (n > LINK_FRAME_MAX)
		return -1;
	if (buf_add_u32(b, (uint32_t)(n + 5)) == -1 || buf_add_u8(b, type) == -1 ||
	    buf_add_u32(b, reqid) == -1 || (n > 0 && buf_add(b, p, n) == -1))
		return -1;
	return 0;
}

/* Adopts a fresh authenticated connection and queues our HELLO first. */
static int
conn_adopt(struct link *l, int fd, SSL *ssl, const char *who)
{
	struct buf h;
	uint64_t now = time_mono_ns();
	int rc;

	l->fd = fd;
	l->ssl = ssl;
	snprintf(l->peer_addr, sizeof(l->peer_addr), "%s", who);
	buf_init(&h, LINK_FRAME_MAX);
	rc = l->ops.hello(l->ops.arg, &h);
	if (rc == 0)
		rc = frame_append(&l->wbuf, LINK_T_HELLO, 0, h.data, h.len);
	buf_free(&h);
	if (rc == -1) {
		conn_close(l, "cannot build HELLO");
		return -1;
	}
	l->woff = 0;
	l->hello_seen = 0;
	l->hello_deadline = now + (uint64_t)HELLO_MS * 1000000;
	l->last_rx = now;
	l->next_ping = now + (uint64_t)PING_MS * 1000000;
	l->next_tick = now;
	return 0;
}

static void
try_connect(struct link *l)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char who[80], msg[300];
	int fd, r, soerr = 0;
	socklen_t el = sizeof(soerr);
	SSL *ssl;

	snprintf(who, sizeof(who), "%s:%u", l->cfg.peer_host,
	    (unsigned)l->cfg.peer_port);
	if (resolve(l->cfg.peer_host, l->cfg.peer_port, 0, &ss, &sl) == -1) {
		snprintf(msg, sizeof(msg), "cannot resolve peer %s", who);
		note_err(l, 1, msg);
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	sock_tune(fd);
	r = connect(fd, (struct sockaddr *)&ss, sl);
	if (r == -1 && errno == EINPROGRESS) {
		r = wait_fd(l, fd, POLLOUT, 2000);
		if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) == 0 &&
		    soerr == 0)
			r = 0;
		else {
			errno = soerr ? soerr : ETIMEDOUT;
			r = -1;
		}
	}
	if (r == -1) {
		snprintf(msg, sizeof(msg), "cannot connect to peer KME %s at %s: %s "
		    "(retrying)", l->cfg.peer_id, who, strerror(errno));
		note_err(l, 0, msg);
		close(fd);
		return;
	}
	ssl = handshake(l, fd, who);
	if (ssl == NULL) {
		close(fd);
		return;
	}
	(void)conn_adopt(l, fd, ssl, who);
}

static void
pend_drop(struct link *l, size_t i)
{
	SSL_free(l->pend[i].ssl);
	close(l->pend[i].fd);
	l->pend[i] = l->pend[--l->npend];
}

/*
 * Accept a connection and start its handshake. Handshakes are stepped from
 * the I/O loop, so a client that connects and stays silent holds neither the
 * link nor the next real peer; when too many are pending the oldest goes.
 */
static void
try_accept(struct link *l)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sl = sizeof(ss);
	struct link_pend	*pd;
	SSL			*ssl;
	int			 fd;

	fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd == -1)
		return;
	sock_tune(fd);
	if ((ssl = SSL_new(l->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		close(fd);
		return;
	}
	SSL_set_accept_state(ssl);
	if (l->npend == LINK_PEND_MAX) {
		log_info("link: too many pending handshakes; dropping the one "
		    "from %s", l->pend[0].who);
		pend_drop(l, 0);
	}
	pd = &l->pend[l->npend++];
	pd->fd = fd;
	pd->ssl = ssl;
	pd->want = POLLIN;
	pd->deadline = time_mono_ns() + (uint64_t)HANDSHAKE_MS * 1000000;
	addr_str(&ss, pd->who, sizeof(pd->who));
}

/* Step the pending handshakes that poll found ready (or that timed out). */
static void
pend_run(struct link *l, const struct pollfd *p)
{
	uint64_t	now = time_mono_ns();
	char		msg[200];
	size_t		i = l->npend;

	while (i-- > 0) {
		struct link_pend	*pd = &l->pend[i];
		int			 r;

		if (p != NULL && p[i].revents == 0) {
			if (now > pd->deadline) {
				snprintf(msg, sizeof(msg), "TLS handshake with %s "
				    "timed out", pd->who);
				note_err(l, 0, msg);
				pend_drop(l, i);
			}
			continue;
		}
		if ((r = handshake_step(l, pd->ssl, pd->who, &pd->want)) == 0)
			continue;
		if (r == -1) {
			pend_drop(l, i);
			continue;
		}
		if (l->ssl != NULL)
			conn_close(l, "replaced by a new connection from the peer");
		(void)conn_adopt(l, pd->fd, pd->ssl, pd->who);
		l->pend[i] = l->pend[--l->npend];
	}
}

/* Add the listener and the pending handshakes to a poll set. */
static size_t
pend_pollfds(struct link *l, struct pollfd *p)
{
	size_t	n = 0;

	for (size_t i = 0; i < l->npend; i++)
		p[n++] = (struct pollfd){ .fd = l->pend[i].fd, .events = l->pend[i].want };
	return n;
}

/* ------------------------------------------------------------- frames */

static void
deliver_reply(struct link *l, uint8_t type, uint32_t reqid, const uint8_t *p,
    size_t n)
{
	struct link_wait *w;

	pthread_mutex_lock(&l->mu);
	for (w = l->waiters; w != NULL; w = w->next)
		if (w->reqid == reqid && w->done == 0)
			break;
	if (w != NULL) {
		w->type = type;
		if (buf_add(&w->reply, p, n) == -1)
			w->done = -1;
		else
			w->done = 1;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (w == NULL)
		log_debug("link: late answer to request %u dropped", reqid);
}

/* Returns -1 when the connection must be closed (why set). */
static int
on_frame(struct link *l, uint8_t type, uint32_t reqid, const uint8_t *p,
    size_t n, char *why, size_t whylen)
{
	char r[200];

	if (!l->hello_seen) {
		if (type != LINK_T_HELLO) {
			snprintf(why, whylen, "first frame is not HELLO");
			return -1;
		}
		r[0] = '\0';
		if (l->ops.up(l->ops.arg, p, n, r, sizeof(r)) == -1) {
			snprintf(why, whylen, "peer refused: %s", r);
			log_warn("link: refusing peer KME %s at %s: %s",
			    l->cfg.peer_id, l->peer_addr, r);
			return -1;
		}
		l->hello_seen = 1;
		pthread_mutex_lock(&l->mu);
		__atomic_store_n(&l->up, 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&l->mu);
		l->last_err[0] = '\0';
		log_info("link: QKD link to %s (%s) up", l->cfg.peer_id,
		    l->peer_addr);
		return 0;
	}
	if (type == LINK_T_PING)
		return 0;
	if (type == LINK_T_HELLO) {
		snprintf(why, whylen, "second HELLO");
		return -1;
	}
	if (type & LINK_T_REPLY)
		deliver_reply(l, type, reqid, p, n);
	else if (l->ops.frame)
		l->ops.frame(l->ops.arg, type, reqid, p, n);
	return 0;
}

/* Parses the complete frames in rb; -1 on a protocol error. */
static int
parse_frames(struct link *l, char *why, size_t whylen)
{
	size_t off = 0, flen;
	struct rd r;
	uint32_t len, reqid;
	uint8_t type;
	const uint8_t *p;

	for (;;) {
		rd_init(&r, l->rb + off, l->rlen - off);
		if (rd_u32(&r, &len) == -1)
			break;
		if (len < 5 || len - 5 > LINK_FRAME_MAX) {
			snprintf(why, whylen, "bad frame length %u", len);
			return -1;
		}
		if (rd_left(&r) < len)
			break;
		(void)rd_u8(&r, &type);
		(void)rd_u32(&r, &reqid);
		(void)rd_ptr(&r, &p, len - 5);
		flen = 4 + (size_t)len;
		if (on_frame(l, type, reqid, p, len - 5, why, whylen) == -1)
			return -1;
		off += flen;
		if (l->ssl == NULL)
			return -1;
	}
	if (off > 0) {
		memmove(l->rb, l->rb + off, l->rlen - off);
		OPENSSL_cleanse(l->rb + (l->rlen - off), off);
		l->rlen -= off;
	}
	return 0;
}

/* Reads what the socket has; -1 closes. */
static int
do_read(struct link *l, char *why, size_t whylen)
{
	int r, k, e, got = 0;

	for (k = 0; k < 256; k++) {
		if (l->rlen == RBUF_LEN) {
			snprintf(why, whylen, "read buffer overflow");
			return -1;
		}
		ERR_clear_error();
		r = SSL_read(l->ssl, l->rb + l->rlen, (int)(RBUF_LEN - l->rlen));
		if (r > 0) {
			l->rlen += (size_t)r;
			got = 1;
			if (parse_frames(l, why, whylen) == -1)
				return -1;
			/*
			 * Nothing buffered in OpenSSL: poll tells when more
			 * comes, which spares a read() that would say EAGAIN.
			 */
			if (!SSL_has_pending(l->ssl))
				break;
			continue;
		}
		e = SSL_get_error(l->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (e == SSL_ERROR_ZERO_RETURN)
			snprintf(why, whylen, "peer closed the connection");
		else if (e == SSL_ERROR_SYSCALL)
			snprintf(why, whylen, "connection lost (%s)",
			    errno ? strerror(errno) : "EOF");
		else
			ssl_errstr(why, whylen);
		return -1;
	}
	if (got) {
		l->last_rx = time_mono_ns();
		if (l->hello_seen && l->ops.flush)
			l->ops.flush(l->ops.arg);
	}
	return 0;
}

/* Writes queued frames; -1 closes. */
static int
do_write(struct link *l, char *why, size_t whylen)
{
	struct buf tmp;
	int r, e;

	l->want_out = 0;
	for (;;) {
		if (l->woff == l->wbuf.len) {
			buf_clear(&l->wbuf);
			l->woff = 0;
			if (!l->hello_seen)
				return 0;	/* only HELLO before the peer's */
			pthread_mutex_lock(&l->mu);
			tmp = l->wbuf;
			l->wbuf = l->outq;
			l->outq = tmp;
			pthread_mutex_unlock(&l->mu);
			if (l->wbuf.len == 0)
				return 0;
		}
		ERR_clear_error();
		r = SSL_write(l->ssl, l->wbuf.data + l->woff,
		    (int)(l->wbuf.len - l->woff > (1u << 30) ? (1u << 30) :
		    l->wbuf.len - l->woff));
		if (r > 0) {
			l->woff += (size_t)r;
			continue;
		}
		e = SSL_get_error(l->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE) {
			l->want_out = 1;
			return 0;
		}
		if (e == SSL_ERROR_WANT_READ)
			return 0;
		if (e == SSL_ERROR_SYSCALL)
			snprintf(why, whylen, "connection lost (%s)",
			    errno ? strerror(errno) : "EOF");
		else
			ssl_errstr(why, whylen);
		return -1;
	}
}

/* ------------------------------------------------------------- thread */

static void
timers(struct link *l)
{
	uint64_t now = time_mono_ns();
	uint64_t tick = (uint64_t)l->cfg.tick_ms * 1000000;

	if (!l->hello_seen)
		return;
	if (now >= l->next_tick) {
		l->next_tick = now + tick;
		if (l->ops.tick)
			l->ops.tick(l->ops.arg);
	}
	if (now >= l->next_ping) {
		l->next_ping = now + (uint64_t)PING_MS * 1000000;
		(void)link_send(l, LINK_T_PING, 0, NULL, 0);
	}
}

static void
serve(struct link *l)
{
	struct pollfd p[3 + LINK_PEND_MAX];
	uint64_t now, next;
	char why[256];
	int n, ms, lsn = -1, npend, r;

	now = time_mono_ns();
	if (l->wfail) {
		conn_close(l, l->wfail_why);
		return;
	}
	if (!l->hello_seen && now > l->hello_deadline) {
		conn_close(l, "no HELLO from the peer");
		return;
	}
	if (l->hello_seen && now - l->last_rx > (uint64_t)DEAD_MS * 1000000) {
		conn_close(l, "peer silent for 5 s");
		return;
	}
	why[0] = '\0';
	if (do_write(l, why, sizeof(why)) == -1) {
		conn_close(l, why);
		return;
	}
	next = l->hello_seen ? l->next_tick : l->hello_deadline;
	if (l->hello_seen && l->next_ping < next)
		next = l->next_ping;
	ms = next > now ? (int)((next - now) / 1000000) + 1 : 0;
	if (SSL_has_pending(l->ssl))
		ms = 0;
	p[0] = (struct pollfd){ .fd = l->evfd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = l->fd,
	    .events = (short)(POLLIN | (l->want_out ? POLLOUT : 0)) };
	n = 2;
	if (l->lfd >= 0) {
		lsn = n;
		p[n++] = (struct pollfd){ .fd = l->lfd, .events = POLLIN };
	}
	npend = (int)pend_pollfds(l, p + n);
	if (npend > 0 && ms > 100)
		ms = 100;		/* handshake deadlines */
	/* Callers may write to the SSL while this thread sleeps here. */
	pthread_mutex_unlock(&l->ssl_mu);
	r = poll(p, (nfds_t)(n + npend), ms);
	pthread_mutex_lock(&l->ssl_mu);
	if (r < 0 && errno != EINTR)
		return;
	if (l->wfail) {
		conn_close(l, l->wfail_why);
		return;
	}
	if (p[0].revents & POLLIN)
		drain(l);
	if (npend > 0) {
		SSL	*before = l->ssl;

		pend_run(l, p + n);
		if (l->ssl != before)
			return;		/* replaced by a new peer: start over */
	}
	if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) || SSL_has_pending(l->ssl)) {
		if (do_read(l, why, sizeof(why)) == -1) {
			conn_close(l, why);
			return;
		}
	}
	timers(l);
	if (do_write(l, why, sizeof(why)) == -1) {
		conn_close(l, why);
		return;
	}
	if (lsn >= 0 && (p[lsn].revents & POLLIN))
		try_accept(l);
}

/* No peer yet: wait for connections and step their handshakes. */
static void
listen_idle(struct link *l)
{
	struct pollfd	p[2 + LINK_PEND_MAX];
	size_t		np;

	p[0] = (struct pollfd){ .fd = l->evfd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = l->lfd, .events = POLLIN };
	np = pend_pollfds(l, p + 2);
	if (poll(p, (nfds_t)(2 + np), np ? 100 : 1000) < 0 && errno != EINTR)
		return;
	if (p[0].revents & POLLIN)
		drain(l);
	if (stopping(l))
		return;
	if (np > 0)
		pend_run(l, p + 2);
	if (p[1].revents & POLLIN)
		try_accept(l);
}

static void *
io_main(void *arg)
{
	struct link *l = arg;
	sigset_t ss;

	/* A write to a dead peer must give EPIPE, not kill the process. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGPIPE);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	io_self = l;
	pthread_mutex_lock(&l->ssl_mu);
	l->backoff_ms = BACKOFF_MIN_MS;
	while (!stopping(l)) {
		if (l->ssl != NULL) {
			serve(l);
			if (l->ssl != NULL)
				l->backoff_ms = BACKOFF_MIN_MS;
			continue;
		}
		if (l->lfd >= 0) {
			listen_idle(l);
			continue;
		}
		try_connect(l);
		if (l->ssl == NULL) {
			if (wait_fd(l, -1, 0, (int)l->backoff_ms) == -1)
				break;
			l->backoff_ms *= 2;
			if (l->backoff_ms > BACKOFF_MAX_MS)
				l->backoff_ms = BACKOFF_MAX_MS;
		}
	}
	while (l->npend > 0)
		pend_drop(l, 0);
	conn_close(l, "KME stopping");
	pthread_mutex_unlock(&l->ssl_mu);
	return NULL;
}

/* ------------------------------------------------------------- public */

static int
listen_open(struct link *l, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	if (resolve(l->cfg.listen_host, l->cfg.listen_port, 1, &ss, &sl) == -1) {
		snprintf(err, errlen, "link: cannot resolve listen address %s",
		    l->cfg.listen_host);
		return -1;
	}
	l->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->lfd == -1) {
		snprintf(err, errlen, "link: socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->lfd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(l->lfd, 8) == -1) {
		snprintf(err, errlen, "link: cannot listen on %s:%u: %s",
		    l->cfg.listen_host, (unsigned)l->cfg.listen_port, strerror(errno));
		return -1;
	}
	sl = sizeof(ss);
	if (getsockname(l->lfd, (struct sockaddr *)&ss, &sl) == 0)
		l->port = ntohs(ss.ss_family == AF_INET ?
		    ((struct sockaddr_in *)&ss)->sin_port :
		    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

struct link *
link_start(const struct link_cfg *cfg, const struct link_ops *ops, char *err,
    size_t errlen)
{
	struct link *l;

	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(err, errlen, "link: out of memory");
		return NULL;
	}
	l->cfg = *cfg;
	if (l->cfg.tick_ms == 0)
		l->cfg.tick_ms = 10;
	l->ops = *ops;
	l->lfd = l->fd = l->evfd = -1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->ssl_mu, NULL);
	{
		struct sigaction sa;

		l->direct = sigaction(SIGPIPE, NULL, &sa) == 0 &&
		    sa.sa_handler == SIG_IGN;
	}
	buf_init(&l->outq, OUTQ_MAX);
	buf_init(&l->wbuf, OUTQ_MAX);
	l->next_reqid = 1;
	l->rb = sec_alloc(RBUF_LEN);
	l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->rb == NULL || l->evfd == -1) {
		snprintf(err, errlen, "link: out of resources");
		goto fail;
	}
	if ((l->ctx = ctx_new(cfg, err, errlen)) == NULL)
		goto fail;
	if (cfg->listen_host != NULL && listen_open(l, err, errlen) == -1)
		goto fail;
	if (pthread_create(&l->th, NULL, io_main, l) != 0) {
		snprintf(err, errlen, "link: cannot start thread");
		goto fail;
	}
	l->th_started = 1;
	if (cfg->listen_host != NULL)
		log_info("link: %s listening for peer KME %s on %s:%u", cfg->self_id,
		    cfg->peer_id, cfg->listen_host, (unsigned)l->port);
	else
		log_info("link: %s connecting to peer KME %s at %s:%u", cfg->self_id,
		    cfg->peer_id, cfg->peer_host, (unsigned)cfg->peer_port);
	return l;
fail:
	link_stop(l);
	return NULL;
}

void
link_stop(struct link *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&l->mu);
	if (l->th_started) {
		wake(l);
		pthread_join(l->th, NULL);
	}
	pthread_mutex_lock(&l->mu);
	fail_waiters_locked(l);
	pthread_mutex_unlock(&l->mu);
	if (l->lfd >= 0)
		close(l->lfd);
	if (l->evfd >= 0)
		close(l->evfd);
	SSL_CTX_free(l->ctx);
	buf_free(&l->outq);
	buf_free(&l->wbuf);
	sec_free(l->rb, RBUF_LEN);
	pthread_mutex_destroy(&l->mu);
	pthread_mutex_destroy(&l->ssl_mu);
	free(l);
}

uint16_t
link_port(const struct link *l)
{
	return l ? l->port : 0;
}

bool
link_is_up(struct link *l)
{
	return __atomic_load_n(&l->up, __ATOMIC_ACQUIRE);
}

uint64_t
link_epoch(struct link *l)
{
	return __atomic_load_n(&l->epoch, __ATOMIC_ACQUIRE);
}

static int
send_locked(struct link *l, uint8_t type, uint32_t reqid, const void *p,
    size_t n, int *wakeup)
{
	size_t before = l->outq.len;

	if (!l->up || l->stop)
		return -1;
	if (frame_append(&l->outq, type, reqid, p, n) == -1) {
		/* Drop a partial frame: the stream must stay parseable. */
		if (l->outq.len > before) {
			OPENSSL_cleanse(l->outq.data + before, l->outq.len - before);
			l->outq.len = before;
		}
		log_warn("link: send queue to %s full", l->cfg.peer_id);
		return -1;
	}
	*wakeup = before == 0;
	return 0;
}

int
link_send(struct link *l, uint8_t type, uint32_t reqid, const void *p, size_t n)
{
	int rc, wk = 0;

	pthread_mutex_lock(&l->mu);
	rc = send_locked(l, type, reqid, p, n, &wk);
	pthread_mutex_unlock(&l->mu);
	/* The I/O thread writes its queue before it sleeps again. */
	if (wk && io_self != l)
		wake(l);
	return rc;
}

int
link_call_begin(struct link *l, struct link_wait *w, uint8_t type,
    const void *p, size_t n)
{
	pthread_condattr_t ca;
	int rc, wk = 0;

	memset(w, 0, sizeof(*w));
	buf_init(&w->reply, LINK_FRAME_MAX);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&l->mu);
	w->reqid = l->next_reqid++;
	if (l->next_reqid == 0)
		l->next_reqid = 1;
	rc = send_locked(l, type, w->reqid, p, n, &wk);
	if (rc == 0) {
		w->next = l->waiters;
		l->waiters = w;
	} else {
		w->done = -1;
	}
	pthread_mutex_unlock(&l->mu);
	/* The write (or the wake) is left to link_call_wait. */
	w->kick = rc == 0 ? 1 + wk : 0;
	return rc;
}

/*
 * A caller's frames are queued: write them from this thread if the I/O
 * thread sleeps in poll() (it then holds no SSL state), else wake it if the
 * queue was empty (wk), as link_send does. Whoever takes the queue writes
 * every frame in it, in order.
 */
static void
kick(struct link *l, int wk)
{
	char why[256];
	int need;

	if (io_self == l)
		return;
	if (!l->direct || pthread_mutex_trylock(&l->ssl_mu) != 0) {
		if (wk)
			wake(l);
		return;
	}
	need = wk;
	if (l->ssl != NULL && l->hello_seen && !l->wfail) {
		why[0] = '\0';
		if (do_write(l, why, sizeof(why)) == -1) {
			/* The I/O thread closes the connection and tells all. */
			snprintf(l->wfail_why, sizeof(l->wfail_why), "%s", why);
			l->wfail = 1;
			need = 1;
		} else {
			/* A short write: the I/O thread waits for POLLOUT. */
			need = l->want_out || l->woff != l->wbuf.len;
		}
	}
	pthread_mutex_unlock(&l->ssl_mu);
	if (need)
		wake(l);
}

int
link_call_wait(struct link *l, struct link_wait *w, unsigned timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	if (w->kick) {
		kick(l, w->kick == 2);
		w->kick = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->mu);
	while (w->done == 0 && rc == 0)
		rc = pthread_cond_timedwait(&w->cv, &l->mu, &ts);
	w->timed_out = w->done == 0;
	rc = w->done == 1 ? 0 : -1;
	pthread_mutex_unlock(&l->mu);
	return rc;
}

void
link_call_end(struct link *l, struct link_wait *w)
{
	struct link_wait **pp;

	if (w->kick) {
		kick(l, w->kick == 2);
		w->kick = 0;
	}
	pthread_mutex_lock(&l->mu);
	for (pp = &l->waiters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	pthread_mutex_unlock(&l->mu);
	pthread_cond_destroy(&w->cv);
	buf_free(&w->reply);
}
