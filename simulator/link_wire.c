/*
 * Frames of the emulated QKD link (link_int.h):
 *
 *	u32 len (of what follows) | u8 type | u32 request id | payload
 *
 * Reading (parse, HELLO, replies to waiters, the rest to ops->frame),
 * writing the queue, and the callers' side: link_send and link_call_*.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "simulator/link_int.h"

/* Wipes only the bytes in use: buf_reset wipes the whole capacity. */
static void
buf_clear(struct buf *b)
{
	if (b->data && b->len)
		OPENSSL_cleanse(b->data, b->len);
	b->len = 0;
}

int
link_frame_append(struct buf *b, uint8_t type, uint32_t reqid, const void *p,
    size_t n)
{
	if (n > LINK_FRAME_MAX)
		return -1;
	if (buf_add_u32(b, (uint32_t)(n + 5)) == -1 ||
	    buf_add_u8(b, type) == -1 || buf_add_u32(b, reqid) == -1 ||
	    (n > 0 && buf_add(b, p, n) == -1))
		return -1;
	return 0;
}

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
	size_t	       off = 0, flen;
	struct rd      r;
	uint32_t       len, reqid;
	uint8_t	       type;
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
int
link_read(struct link *l, char *why, size_t whylen)
{
	int r, k, e, got = 0;

	for (k = 0; k < 256; k++) {
		if (l->rlen == RBUF_LEN) {
			snprintf(why, whylen, "read buffer overflow");
			return -1;
		}
		ERR_clear_error();
		r = SSL_read(l->ssl, l->rb + l->rlen,
		    (int)(RBUF_LEN - l->rlen));
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
			link_tls_errstr(why, whylen);
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
int
link_write(struct link *l, char *why, size_t whylen)
{
	struct buf tmp;
	int	   r, e;

	l->want_out = 0;
	for (;;) {
		if (l->woff == l->wbuf.len) {
			buf_clear(&l->wbuf);
			l->woff = 0;
			if (!l->hello_seen)
				return 0; /* only HELLO before the peer's */
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
		    (int)(l->wbuf.len - l->woff > (1u << 30) ?
			    (1u << 30) :
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
			link_tls_errstr(why, whylen);
		return -1;
	}
}

static int
send_locked(struct link *l, uint8_t type, uint32_t reqid, const void *p,
    size_t n, int *wakeup)
{
	size_t before = l->outq.len;

	if (!l->up || l->stop)
		return -1;
	if (link_frame_append(&l->outq, type, reqid, p, n) == -1) {
		/* Drop a partial frame: the stream must stay parseable. */
		if (l->outq.len > before) {
			OPENSSL_cleanse(l->outq.data + before,
			    l->outq.len - before);
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
	if (wk && link_io_self != l)
		link_wake(l);
	return rc;
}

int
link_call_begin(struct link *l, struct link_wait *w, uint8_t type,
    const void *p, size_t n)
{
	pthread_condattr_t ca;
	int		   rc, wk = 0;

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
	/* The write (or the link_wake) is left to link_call_wait. */
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
	int  need;

	if (link_io_self == l)
		return;
	if (!l->direct || pthread_mutex_trylock(&l->ssl_mu) != 0) {
		if (wk)
			link_wake(l);
		return;
	}
	need = wk;
	if (l->ssl != NULL && l->hello_seen && !l->wfail) {
		why[0] = '\0';
		if (link_write(l, why, sizeof(why)) == -1) {
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
		link_wake(l);
}

int
link_call_wait(struct link *l, struct link_wait *w, unsigned timeout_ms)
{
	struct timespec ts;
	int		rc = 0;

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
