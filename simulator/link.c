/*
 * Emulated QKD link (link.h): start and stop, and the I/O thread that owns
 * the connection: connect or accept, adopt, serve (poll, read, write,
 * timers), close. TLS is link_tls.c, frames link_wire.c (see link_int.h).
 */
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "simulator/link_int.h"

__thread struct link *link_io_self;

void
link_wake(struct link *l)
{
	uint64_t one = 1;
	ssize_t	 r;

	r = write(l->evfd, &one, sizeof(one));
	(void)r;
}

static void
drain(struct link *l)
{
	uint64_t v;
	ssize_t	 r;

	r = read(l->evfd, &v, sizeof(v));
	(void)r;
}

static bool
stopping(struct link *l)
{
	return __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE) != 0;
}

int
link_wait_fd(struct link *l, int fd, short ev, int ms, bool *ready)
{
	struct pollfd p[2] = {
		{ .fd = l->evfd, .events = POLLIN },
		{ .fd = fd, .events = ev },
	};
	int r;

	*ready = false;
	r = poll(p, fd >= 0 ? 2 : 1, ms);
	if (r > 0 && (p[0].revents & POLLIN))
		drain(l);
	if (stopping(l))
		return -1;
	*ready = r > 0 && fd >= 0 && p[1].revents;
	return 0;
}

static int
resolve(const char *host, uint16_t port, int passive,
    struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints, *ai = NULL;
	char		ps[8];
	int		rc;

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

void
link_sock_tune(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void
link_note_err(struct link *l, bool warn, const char *msg)
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

void
link_conn_close(struct link *l, const char *why)
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

int
link_conn_adopt(struct link *l, int fd, SSL *ssl, const char *who)
{
	struct buf h;
	uint64_t   now = time_mono_ns();
	int	   rc;

	l->fd = fd;
	l->ssl = ssl;
	snprintf(l->peer_addr, sizeof(l->peer_addr), "%s", who);
	buf_init(&h, LINK_FRAME_MAX);
	rc = l->ops.hello(l->ops.arg, &h);
	if (rc == 0)
		rc =
		    link_frame_append(&l->wbuf, LINK_T_HELLO, 0, h.data, h.len);
	buf_free(&h);
	if (rc == -1) {
		link_conn_close(l, "cannot build HELLO");
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
	socklen_t		sl;
	char			who[80], msg[300];
	int			fd, r, soerr = 0;
	socklen_t		el = sizeof(soerr);
	bool			ready;
	SSL		       *ssl;

	snprintf(who, sizeof(who), "%s:%u", l->cfg.peer_host,
	    (unsigned)l->cfg.peer_port);
	if (resolve(l->cfg.peer_host, l->cfg.peer_port, 0, &ss, &sl) == -1) {
		snprintf(msg, sizeof(msg), "cannot resolve peer %s", who);
		link_note_err(l, true, msg);
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	link_sock_tune(fd);
	r = connect(fd, (struct sockaddr *)&ss, sl);
	if (r == -1 && errno == EINPROGRESS) {
		if (link_wait_fd(l, fd, POLLOUT, 2000, &ready) == 0 && ready &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) == 0 &&
		    soerr == 0)
			r = 0;
		else {
			errno = soerr ? soerr : ETIMEDOUT;
			r = -1;
		}
	}
	if (r == -1) {
		snprintf(msg, sizeof(msg),
		    "cannot connect to peer KME %s at %s: %s "
		    "(retrying)",
		    l->cfg.peer_id, who, strerror(errno));
		link_note_err(l, false, msg);
		close(fd);
		return;
	}
	ssl = link_tls_connect(l, fd, who);
	if (ssl == NULL) {
		close(fd);
		return;
	}
	(void)link_conn_adopt(l, fd, ssl, who);
}

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
	uint64_t      now, next;
	char	      why[256];
	int	      n, ms, lsn = -1, npend, r;

	now = time_mono_ns();
	if (l->wfail) {
		link_conn_close(l, l->wfail_why);
		return;
	}
	if (!l->hello_seen && now > l->hello_deadline) {
		link_conn_close(l, "no HELLO from the peer");
		return;
	}
	if (l->hello_seen && now - l->last_rx > (uint64_t)DEAD_MS * 1000000) {
		link_conn_close(l, "peer silent for 5 s");
		return;
	}
	why[0] = '\0';
	if (link_write(l, why, sizeof(why)) == -1) {
		link_conn_close(l, why);
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
	npend = (int)link_pend_pollfds(l, p + n);
	if (npend > 0 && ms > 100)
		ms = 100; /* handshake deadlines */
	/* Callers may write to the SSL while this thread sleeps here. */
	pthread_mutex_unlock(&l->ssl_mu);
	r = poll(p, (nfds_t)(n + npend), ms);
	pthread_mutex_lock(&l->ssl_mu);
	if (r < 0 && errno != EINTR)
		return;
	if (l->wfail) {
		link_conn_close(l, l->wfail_why);
		return;
	}
	if (p[0].revents & POLLIN)
		drain(l);
	if (npend > 0) {
		SSL *before = l->ssl;

		link_pend_run(l, p + n);
		if (l->ssl != before)
			return; /* replaced by a new peer: start over */
	}
	if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) ||
	    SSL_has_pending(l->ssl)) {
		if (link_read(l, why, sizeof(why)) == -1) {
			link_conn_close(l, why);
			return;
		}
	}
	timers(l);
	if (link_write(l, why, sizeof(why)) == -1) {
		link_conn_close(l, why);
		return;
	}
	if (lsn >= 0 && (p[lsn].revents & POLLIN))
		link_pend_accept(l);
}

/* No peer yet: wait for connections and step their handshakes. */
static void
listen_idle(struct link *l)
{
	struct pollfd p[2 + LINK_PEND_MAX];
	size_t	      np;

	p[0] = (struct pollfd){ .fd = l->evfd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = l->lfd, .events = POLLIN };
	np = link_pend_pollfds(l, p + 2);
	if (poll(p, (nfds_t)(2 + np), np ? 100 : 1000) < 0 && errno != EINTR)
		return;
	if (p[0].revents & POLLIN)
		drain(l);
	if (stopping(l))
		return;
	if (np > 0)
		link_pend_run(l, p + 2);
	if (p[1].revents & POLLIN)
		link_pend_accept(l);
}

static void *
io_main(void *arg)
{
	struct link *l = arg;
	sigset_t     ss;
	bool	     ready;

	/* A write to a dead peer must give EPIPE, not kill the process. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGPIPE);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	link_io_self = l;
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
			if (link_wait_fd(l, -1, 0, (int)l->backoff_ms,
				&ready) == -1)
				break;
			l->backoff_ms *= 2;
			if (l->backoff_ms > BACKOFF_MAX_MS)
				l->backoff_ms = BACKOFF_MAX_MS;
		}
	}
	while (l->npend > 0)
		link_pend_drop(l, 0);
	link_conn_close(l, "KME stopping");
	pthread_mutex_unlock(&l->ssl_mu);
	return NULL;
}

static int
listen_open(struct link *l, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t		sl;
	int			one = 1;

	if (resolve(l->cfg.listen_host, l->cfg.listen_port, 1, &ss, &sl) ==
	    -1) {
		snprintf(err, errlen, "link: cannot resolve listen address %s",
		    l->cfg.listen_host);
		return -1;
	}
	l->lfd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->lfd == -1) {
		snprintf(err, errlen, "link: socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->lfd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(l->lfd, 8) == -1) {
		snprintf(err, errlen, "link: cannot listen on %s:%u: %s",
		    l->cfg.listen_host, (unsigned)l->cfg.listen_port,
		    strerror(errno));
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
	if ((l->ctx = link_tls_ctx(cfg, err, errlen)) == NULL)
		goto fail;
	if (cfg->listen_host != NULL && listen_open(l, err, errlen) == -1)
		goto fail;
	if (pthread_create(&l->th, NULL, io_main, l) != 0) {
		snprintf(err, errlen, "link: cannot start thread");
		goto fail;
	}
	l->th_started = 1;
	if (cfg->listen_host != NULL)
		log_info("link: %s listening for peer KME %s on %s:%u",
		    cfg->self_id, cfg->peer_id, cfg->listen_host,
		    (unsigned)l->port);
	else
		log_info("link: %s connecting to peer KME %s at %s:%u",
		    cfg->self_id, cfg->peer_id, cfg->peer_host,
		    (unsigned)cfg->peer_port);
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
		link_wake(l);
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
