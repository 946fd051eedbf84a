/*
 * The data plane's two packet threads (ike/dp.h: threading and locking):
 * outbound TUN -> route -> [GRE] -> ESP -> sendmmsg, inbound recvmmsg ->
 * SPI -> ESP -> selector -> [GRE] -> egress. Each batch is turned into
 * packets under the read lock; waiting and sending happen outside it.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/log.h"
#include "ike/dp_int.h"

/* Waits until fd is readable (true) or the engine stops (false). */
static bool
wait_input(struct dp *dp, int fd)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
		{ .fd = dp->stopfd, .events = POLLIN } };

	for (;;) {
		if (poll(p, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_err("%s: poll: %s", __func__, strerror(errno));
			return false;
		}
		if (p[1].revents != 0)
			return false;
		if (p[0].revents != 0)
			return true;
	}
}

/* ------------------------------------------------------------ outbound */

static size_t
tun_read_batch(struct dp *dp, size_t len[DP_BATCH])
{
	struct dp_obatch *b = dp->ob;
	size_t		  n = 0;
	ssize_t		  r;

	while (n < DP_BATCH) {
		r = read(dp->cfg.tun_fd, b->in[n] + GRE_HDR_LEN, DP_PKT_MAX);
		if (r <= 0) {
			if (r == -1 && errno != EAGAIN && errno != EINTR) {
				DP_ADD(dp->st_out.tun_read_err, 1);
				if (n == 0)
					usleep(1000); /* no busy loop */
			}
			break;
		}
		len[n++] = (size_t)r;
	}
	return n;
}

/* The Child SA for an inner packet (dp.h: Routing); NULL: none. */
static struct dp_rec *
route(struct dp *dp, const uint8_t *ip, size_t len)
{
	struct dp_rec *r;
	uint32_t       src = 0, dst = 0, addr;
	bool	       sig;

	if (len >= 20 && ip[0] >> 4 == 4) {
		memcpy(&src, ip + 12, 4);
		memcpy(&dst, ip + 16, 4);
	} else if (dp->cfg.role == DP_ROLE_N3IWF || len < 40 || ip[0] >> 4 != 6)
		return NULL; /* the N3IWF routes by IPv4 inner addresses */
	if (dp->cfg.role == DP_ROLE_UE) {
		addr = 0;
		sig = dst != 0 && dst == dp->cfg.nas_ip.s_addr;
	} else {
		addr = dst;
		sig = src == dp->cfg.nas_ip.s_addr && src != 0;
	}
	if (sig &&
	    (r = dp_map_get(&dp->by_route,
		 dp_route_key(addr, DP_SIGNALLING))) != NULL)
		return r;
	return dp_map_get(&dp->by_route, dp_route_key(addr, DP_USER));
}

/* Packet i of the batch into ESP in out slot k; false: dropped. */
static bool
out_one(struct dp *dp, size_t i, size_t len, size_t k)
{
	struct dp_obatch *b = dp->ob;
	uint8_t		 *ip = b->in[i] + GRE_HDR_LEN, *inner = ip;
	struct dp_rec	 *r;
	struct gre_qos	  q;
	uint8_t		  nh = ip[0] >> 4 == 4 ? ESP_NH_IPV4 : ESP_NH_IPV6;
	size_t		  olen;
	enum esp_rc	  rc;

	/* plain IP (rfc7296): the Child SA's TS are IPv4 (ours 0.0.0.0/0,
	 * a peer's narrower), so IPv6 has no SA */
	if ((r = route(dp, ip, len)) == NULL ||
	    (!r->gre && nh == ESP_NH_IPV6)) {
		DP_ADD(dp->st_out.no_route, 1);
		return false;
	}
	if (r->gre) {
		q = (struct gre_qos){ r->qfi, false };
		if (gre_encap_hdr(b->in[i], &q, ip, len) == -1) {
			DP_ADD(dp->st_out.no_route, 1);
			return false;
		}
		inner = b->in[i];
		len += GRE_HDR_LEN;
		nh = ESP_NH_GRE;
	}
	rc = esp_encap(r->out, inner, len, nh, b->out[k], DP_OUT_MAX, &olen);
	if (rc != ESP_OK) {
		if (rc == ESP_E_SEQ || rc == ESP_E_HARD)
			DP_ADD(dp->st_out.out_expired, 1);
		else
			DP_ADD(dp->st_out.out_esp_err, 1);
		return false;
	}
	b->iov[k] = (struct iovec){ b->out[k], olen };
	b->to[k] = r->peer; /* copied: r may be gone once we unlock */
	memset(&b->mm[k], 0, sizeof(b->mm[k]));
	b->mm[k].msg_hdr.msg_name = &b->to[k];
	b->mm[k].msg_hdr.msg_namelen = sizeof(b->to[k]);
	b->mm[k].msg_hdr.msg_iov = &b->iov[k];
	b->mm[k].msg_hdr.msg_iovlen = 1;
	return true;
}

static void
send_batch(struct dp *dp, size_t k)
{
	struct dp_obatch *b = dp->ob;
	size_t		  sent = 0;
	int		  r;

	while (sent < k) {
		r = sendmmsg(dp->sock, b->mm + sent, (unsigned)(k - sent), 0);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			DP_ADD(dp->st_out.sock_send_err, 1);
			sent++; /* that datagram is lost; go on */
			continue;
		}
		for (size_t j = sent; j < sent + (size_t)r; j++)
			DP_ADD(dp->st_out.out_bytes, b->mm[j].msg_len);
		DP_ADD(dp->st_out.out_packets, r);
		sent += (size_t)r;
	}
}

/* One outbound batch, if the TUN has packets (false: none). Under
 * mu_out. */
static bool
out_batch(struct dp *dp)
{
	size_t len[DP_BATCH], n, k = 0;

	if ((n = tun_read_batch(dp, len)) == 0)
		return false;
	pthread_rwlock_rdlock(&dp->lock);
	for (size_t i = 0; i < n; i++)
		if (out_one(dp, i, len[i], k))
			k++;
	pthread_rwlock_unlock(&dp->lock);
	send_batch(dp, k);
	return true;
}

/* ------------------------------------------------------------- inbound */

static void
count_decap(struct dp *dp, enum esp_rc rc)
{
	switch (rc) {
	case ESP_E_REPLAY: DP_ADD(dp->st_in.in_replay, 1); break;
	case ESP_E_ICV: DP_ADD(dp->st_in.in_icv, 1); break;
	case ESP_E_PAD: DP_ADD(dp->st_in.in_pad, 1); break;
	case ESP_E_SHORT: DP_ADD(dp->st_in.in_short, 1); break;
	default: DP_ADD(dp->st_in.in_other, 1); break;
	}
}

/* The inner packet against the SA: next header, GRE and QFI, selector.
 * *off, *len: the inner packet, GRE stripped. false: dropped, counted. */
static bool
in_check(struct dp *dp, const struct dp_rec *r, const uint8_t *p, size_t *off,
    size_t *len, uint8_t nh)
{
	struct gre_qos q;
	const uint8_t *ip;
	uint32_t       a;
	bool	       v4;

	if (r->gre) {
		if (nh != ESP_NH_GRE || gre_decap(p + *off, *len, &q) == -1) {
			if (nh != ESP_NH_GRE)
				DP_ADD(dp->st_in.bad_nh, 1);
			else
				DP_ADD(dp->st_in.gre_bad, 1);
			return false;
		}
		if (q.qfi != r->qfi) {
			DP_ADD(dp->st_in.qfi_bad, 1);
			return false;
		}
		*off += GRE_HDR_LEN;
		*len -= GRE_HDR_LEN;
	}
	ip = p + *off;
	v4 = *len >= 20 && ip[0] >> 4 == 4;
	if (!v4 && !(*len >= 40 && ip[0] >> 4 == 6)) {
		DP_ADD(dp->st_in.bad_nh, 1);
		return false;
	}
	if (!r->gre && nh != (v4 ? ESP_NH_IPV4 : ESP_NH_IPV6)) {
		DP_ADD(dp->st_in.bad_nh, 1);
		return false;
	}
	if (!r->gre && !v4) { /* plain IP: outside the IPv4 TS */
		DP_ADD(dp->st_in.selector, 1);
		return false;
	}
	/* N3IWF: the source is the UE's inner address; UE: the
	 * destination is ours (IPv4; the UE takes IPv6 as it comes). */
	if (dp->cfg.role == DP_ROLE_N3IWF)
		memcpy(&a, ip + 12, 4);
	else if (v4 && r->inner.s_addr != 0)
		memcpy(&a, ip + 16, 4);
	else
		return true;
	if (!v4 || a != r->inner.s_addr) {
		DP_ADD(dp->st_in.selector, 1);
		return false;
	}
	return true;
}

/* Datagram i of the batch (mlen bytes): decapsulated in place, or
 * dropped (len[i] = 0). Under the read lock. */
static void
in_one(struct dp *dp, size_t i, size_t mlen, int flags)
{
	struct dp_ibatch *b = dp->ib;
	uint8_t		 *p = b->buf[i];
	struct dp_rec	 *r;
	uint32_t	  spi;
	size_t		  off, len;
	uint8_t		  nh;
	enum esp_rc	  rc;

	b->len[i] = 0;
	if (flags & MSG_TRUNC) {
		DP_ADD(dp->st_in.truncated, 1);
		return;
	}
	if (mlen < 4) {
		if (mlen == 1 && p[0] == 0xff)
			DP_ADD(dp->st_in.keepalive, 1);
		else
			DP_ADD(dp->st_in.in_short, 1);
		return;
	}
	memcpy(&spi, p, 4);
	if (spi == 0) { /* IKE: the demux sends it elsewhere */
		DP_ADD(dp->st_in.nonesp, 1);
		return;
	}
	if ((r = dp_map_get(&dp->by_spi, spi)) == NULL) {
		DP_ADD(dp->st_in.no_sa, 1);
		return;
	}
	if ((rc = esp_decap(r->in, p, mlen, &off, &len, &nh)) != ESP_OK) {
		count_decap(dp, rc);
		return;
	}
	if (!in_check(dp, r, p, &off, &len, nh))
		return;
	b->off[i] = off;
	b->len[i] = len;
	b->meta[i] = (struct dp_meta){ r->inner, r->kind, r->qfi };
}

static void
egress(struct dp *dp, size_t n)
{
	struct dp_ibatch       *b = dp->ib;
	const struct dp_egress *e = dp->cfg.egress;
	int			rc;

	for (size_t i = 0; i < n; i++) {
		if (b->len[i] == 0)
			continue;
		if (e != NULL)
			rc = e->send(e->ctx, b->buf[i] + b->off[i], b->len[i],
			    &b->meta[i]);
		else
			rc = write(dp->cfg.tun_fd, b->buf[i] + b->off[i],
				 b->len[i]) == (ssize_t)b->len[i] ?
			    0 :
			    -1;
		if (rc == 0) {
			DP_ADD(dp->st_in.in_packets, 1);
			DP_ADD(dp->st_in.in_bytes, b->len[i]);
		} else
			DP_ADD(dp->st_in.egress_err, 1);
	}
}

static int
recv_batch(struct dp *dp)
{
	struct dp_ibatch *b = dp->ib;
	int		  n;

	for (size_t i = 0; i < DP_BATCH; i++) {
		b->iov[i] = (struct iovec){ b->buf[i], sizeof(b->buf[i]) };
		memset(&b->mm[i], 0, sizeof(b->mm[i]));
		b->mm[i].msg_hdr.msg_name = &b->from[i];
		b->mm[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
		b->mm[i].msg_hdr.msg_iov = &b->iov[i];
		b->mm[i].msg_hdr.msg_iovlen = 1;
	}
	n = recvmmsg(dp->sock, b->mm, DP_BATCH, MSG_DONTWAIT, NULL);
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		DP_ADD(dp->st_in.sock_recv_err, 1);
	return n < 0 ? 0 : n;
}

/* One inbound batch, if the socket has datagrams (false: none). Under
 * mu_in. */
static bool
in_batch(struct dp *dp)
{
	struct dp_ibatch *b = dp->ib;
	size_t		  n;

	if ((n = (size_t)recv_batch(dp)) == 0)
		return false;
	pthread_rwlock_rdlock(&dp->lock);
	for (size_t i = 0; i < n; i++)
		in_one(dp, i, b->mm[i].msg_len, b->mm[i].msg_hdr.msg_flags);
	pthread_rwlock_unlock(&dp->lock);
	egress(dp, n);
	return true;
}

/* ------------------------------------------------------------- threads */

/* A batch of direction out (else in) if one is waiting. wait: for the
 * direction's lock; else only if no other thread holds it (that one is
 * serving the direction then). */
static bool
dir_run(struct dp *dp, bool out, bool wait)
{
	pthread_mutex_t *mu = out ? &dp->mu_out : &dp->mu_in;
	bool		 did;

	if (wait)
		pthread_mutex_lock(mu);
	else if (pthread_mutex_trylock(mu) != 0)
		return false;
	did = out ? out_batch(dp) : in_batch(dp);
	pthread_mutex_unlock(mu);

	return did;
}

static uint64_t
now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/*
 * After a batch (cfg.spin_us, dp.h: Threads): both directions polled
 * without sleeping until spin_us pass with nothing to do. The reply to a
 * packet just sent is then taken by a thread already running instead of
 * one woken up (a wake-up across cores costs ~50 us on a VM).
 */
static void
spin(struct dp *dp, bool out)
{
	uint64_t span = (uint64_t)dp->cfg.spin_us * 1000u;
	uint64_t until = now_ns() + span, t;
	bool	 did;

	while (!__atomic_load_n(&dp->stopping, __ATOMIC_RELAXED)) {
		did = dir_run(dp, out, false);
		did = dir_run(dp, !out, false) || did;
		t = now_ns();
		if (did)
			until = t + span;
		else if (t >= until)
			return;
		else
			sched_yield(); /* others on this core go first */
	}
}

/* The thread of one direction: sleeps in poll for its input, runs its
 * batch, then spins (if configured). */
static void
dir_main(struct dp *dp, bool out)
{
	int fd = out ? dp->cfg.tun_fd : dp->sock;

	while (wait_input(dp, fd))
		if (dir_run(dp, out, true) && dp->cfg.spin_us > 0)
			spin(dp, out);
}

void *
dp_out_main(void *arg)
{
	dir_main(arg, true);
	return NULL;
}

void *
dp_in_main(void *arg)
{
	dir_main(arg, false);
	return NULL;
}
