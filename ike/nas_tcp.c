/* NAS message envelopes over TCP (TS 24.502 9.4): framing, reassembly. */
#include <string.h>

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
