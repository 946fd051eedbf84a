/* NAS message envelopes over TCP (TS 24.502 9.4): framing, reassembly. */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "ike/nas_tcp.h"

void
nas_tcp_rx_init(struct nas_tcp_rx *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max == 0 || max > NAS_TCP_MAX ? NAS_TCP_MAX : max;
}

/* Drops the envelopes already returned: the rest moves to the front. */
static void
compact(struct nas_tcp_rx *r)
{
	if (r->used == 0)
		return;
	memmove(r->buf, r->buf + r->used, r->len - r->used);
	r->len -= r->used;
	r->used = 0;
}

uint8_t *
nas_tcp_space(struct nas_tcp_rx *r, size_t *room)
{
	compact(r);
	*room = r->bad ? 0 : sizeof(r->buf) - r->len;
	return r->buf + r->len;
}

void
nas_tcp_fed(struct nas_tcp_rx *r, size_t n)
{
	if (n <= sizeof(r->buf) - r->len)
		r->len += n;
}

int
nas_tcp_feed(struct nas_tcp_rx *r, const uint8_t *p, size_t n)
{
	uint8_t *dst;
	size_t	 room;

	dst = nas_tcp_space(r, &room);
	if (r->bad || n > room)
		return -1;
	memcpy(dst, p, n);
	r->len += n;
	return 0;
}

bool
nas_tcp_next(struct nas_tcp_rx *r, const uint8_t **msg, size_t *len)
{
	size_t have = r->len - r->used, n;

	if (r->bad || have < NAS_TCP_HDR)
		return false;
	n = (size_t)r->buf[r->used] << 8 | r->buf[r->used + 1];
	if (n == 0 || n > r->max) {
		log_warn("nas-tcp: NAS message length %zu (1..%zu)", n, r->max);
		r->bad = true;
		return false;
	}
	if (have < NAS_TCP_HDR + n)
		return false;
	*msg = r->buf + r->used + NAS_TCP_HDR;
	*len = n;
	r->used += NAS_TCP_HDR + n;
	return true;
}

bool
nas_tcp_broken(const struct nas_tcp_rx *r)
{
	return r->bad;
}

bool
nas_tcp_partial(const struct nas_tcp_rx *r)
{
	return r->len > r->used;
}

int
nas_tcp_frame(struct buf *out, const uint8_t *msg, size_t n)
{
	if (n == 0 || n > NAS_TCP_MAX) {
		log_err("%s: NAS message of %zu bytes", __func__, n);
		return -1;
	}
	if (buf_add_u16(out, (uint16_t)n) == -1 || buf_add(out, msg, n) == -1)
		return -1;
	return 0;
}

/* ---- one connection ---------------------------------------------------- */

void
nas_tcp_conn_init(struct nas_tcp_conn *c, int fd, size_t max)
{
	int fl;

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	nas_tcp_rx_init(&c->rx, max);
	buf_init(&c->tx, NAS_TCP_TXMAX);
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void
nas_tcp_conn_close(struct nas_tcp_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->tx);
	OPENSSL_cleanse(&c->rx, sizeof(c->rx));
}

int
nas_tcp_read(struct nas_tcp_conn *c)
{
	uint8_t *p;
	size_t	 room;
	ssize_t	 n;

	p = nas_tcp_space(&c->rx, &room);
	if (room == 0)
		return 0;
	n = read(c->fd, p, room);
	if (n > 0) {
		nas_tcp_fed(&c->rx, (size_t)n);
		return 1;
	}
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	c->eof = true;
	return -1;
}

int
nas_tcp_flush(struct nas_tcp_conn *c)
{
	ssize_t n;

	while (c->tx_off < c->tx.len) {
		n = send(c->fd, c->tx.data + c->tx_off, c->tx.len - c->tx_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("nas-tcp: send: %s", strerror(errno));
			c->eof = true;
			return -1;
		}
		c->tx_off += (size_t)n;
	}
	buf_reset(&c->tx);
	c->tx_off = 0;
	return 0;
}

int
nas_tcp_send(struct nas_tcp_conn *c, const uint8_t *msg, size_t n)
{
	if (nas_tcp_frame(&c->tx, msg, n) == -1) {
		log_warn("nas-tcp: send queue full (%zu bytes)", c->tx.len);
		return -1;
	}
	return nas_tcp_flush(c);
}

bool
nas_tcp_pending(const struct nas_tcp_conn *c)
{
	return c->tx_off < c->tx.len;
}
