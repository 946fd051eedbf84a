/*
 * The data-plane engine: its ESP socket in the NAT-T port's SO_REUSEPORT
 * group, the threads' lifecycle, the Child SA tables the IKE side
 * changes, the counters. The packet loops are in dp_io.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "common/log.h"
#include "ike/dp_int.h"
#include "ike/net.h"

#define DP_SOCKBUF  (4 << 20) /* socket buffers, bytes (as root) */
#define DP_PROBE_MS 500

/*
 * The group's classic BPF program (it sees the UDP payload): the first
 * 32-bit word zero (non-ESP marker) -> member 0, the IKE socket; any
 * other word -> member 1, us. A datagram shorter than 4 bytes (NAT
 * keepalive) fails the load, which returns 0: the IKE socket.
 */
static int
attach_demux(int fd)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 1),
	};
	struct sock_fprog p = { sizeof(f) / sizeof(f[0]), f };

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &p,
	    sizeof(p));
}

/*
 * Sends an ESP-shaped datagram (reserved SPI 1) to our own address and
 * requires it on our socket: the IKE socket is member 0 of the group.
 */
static int
probe_demux(int fd, const struct sockaddr_in *local, char *err, size_t errlen)
{
	uint8_t		   m[8] = { 0, 0, 0, DP_ESP_SPI_PROBE, 0x70, 0x72 };
	uint8_t		   r[16];
	struct sockaddr_in to = *local;
	struct pollfd	   pfd = { .fd = fd, .events = POLLIN };
	ssize_t		   n;

	if (to.sin_addr.s_addr == htonl(INADDR_ANY))
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (sendto(fd, m, sizeof(m), 0, (struct sockaddr *)&to, sizeof(to)) !=
	    (ssize_t)sizeof(m)) {
		snprintf(err, errlen, "ESP demux probe: send: %s",
		    strerror(errno));
		return -1;
	}
	while (poll(&pfd, 1, DP_PROBE_MS) == 1) {
		n = recv(fd, r, sizeof(r), MSG_DONTWAIT);
		if (n == (ssize_t)sizeof(m) && memcmp(r, m, sizeof(m)) == 0)
			return 0;
	}
	snprintf(err, errlen,
	    "ESP demux probe did not reach the data-plane socket: the IKE "
	    "NAT-T socket must be bound first, with SO_REUSEPORT");
	return -1;
}

static int
open_sock(const struct dp_cfg *c, char *err, size_t errlen)
{
	int  fd, one = 1, sz = DP_SOCKBUF, pmtu = IP_PMTUDISC_DONT;
	char as[64];

	ike_addr_str(&c->local, as, sizeof(as));
	if (c->local.sin_port == 0) {
		snprintf(err, errlen,
		    "ESP socket: local address %s has no "
		    "port",
		    as);
		return -1;
	}
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Bigger buffers where root may (the FORCE variants); an outer
	 * datagram may be fragmented by the kernel (no DF). */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	(void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    bind(fd, (const struct sockaddr *)&c->local, sizeof(c->local)) ==
		-1) {
		snprintf(err, errlen, "ESP socket: cannot bind UDP %s: %s", as,
		    strerror(errno));
		goto fail;
	}
	if (attach_demux(fd) == -1) {
		snprintf(err, errlen,
		    "ESP socket %s: SO_ATTACH_REUSEPORT_CBPF: %s", as,
		    strerror(errno));
		goto fail;
	}
	if (!c->no_demux_check && probe_demux(fd, &c->local, err, errlen) == -1)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static int
tables_init(struct dp *dp, char *err, size_t errlen)
{
	pthread_rwlockattr_t a;
	size_t		     n = dp->cfg.max_children;

	dp->recs = calloc(n, sizeof(*dp->recs));
	dp->ob = calloc(1, sizeof(*dp->ob));
	dp->ib = calloc(1, sizeof(*dp->ib));
	if (dp->recs == NULL || dp->ob == NULL || dp->ib == NULL ||
	    dp_map_init(&dp->by_spi, n) == -1 ||
	    dp_map_init(&dp->by_route, n) == -1) {
		snprintf(err, errlen, "data plane: out of memory for %zu SAs",
		    n);
		return -1;
	}
	/* Writer first: the IKE thread is never starved by the two
	 * packet threads' back-to-back read locks. */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&dp->lock, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&dp->mu_out, NULL);
	pthread_mutex_init(&dp->mu_in, NULL);
	dp->lock_init = true;
	return 0;
}

struct dp *
dp_new(const struct dp_cfg *c, char *err, size_t errlen)
{
	struct dp *dp;
	int	   fl;

	if ((dp = calloc(1, sizeof(*dp))) == NULL) {
		snprintf(err, errlen, "data plane: out of memory");
		return NULL;
	}
	dp->cfg = *c;
	if (dp->cfg.max_children == 0)
		dp->cfg.max_children = DP_MAX_CHILDREN_DEF;
	dp->sock = dp->stopfd = -1;
	if (tables_init(dp, err, errlen) == -1)
		goto fail;
	if ((dp->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	/* The outbound thread reads a batch without blocking after poll. */
	if ((fl = fcntl(c->tun_fd, F_GETFL)) == -1 ||
	    fcntl(c->tun_fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "TUN descriptor %d: %s", c->tun_fd,
		    strerror(errno));
		goto fail;
	}
	if ((dp->sock = open_sock(&dp->cfg, err, errlen)) == -1)
		goto fail;
	return dp;
fail:
	dp_free(dp);
	return NULL;
}

int
dp_start(struct dp *dp, char *err, size_t errlen)
{
	int e;

	if ((e = pthread_create(&dp->th_out, NULL, dp_out_main, dp)) != 0) {
		snprintf(err, errlen, "data plane thread: %s", strerror(e));
		return -1;
	}
	if ((e = pthread_create(&dp->th_in, NULL, dp_in_main, dp)) != 0) {
		snprintf(err, errlen, "data plane thread: %s", strerror(e));
		__atomic_store_n(&dp->stopping, 1, __ATOMIC_RELAXED);
		(void)eventfd_write(dp->stopfd, 1);
		pthread_join(dp->th_out, NULL);
		return -1;
	}
	dp->started = true;
	return 0;
}

static void
rec_clear(struct dp_rec *r)
{
	esp_sa_free(r->in);
	esp_sa_free(r->out);
	memset(r, 0, sizeof(*r));
}

void
dp_free(struct dp *dp)
{
	if (dp == NULL)
		return;
	if (dp->started) {
		__atomic_store_n(&dp->stopping, 1, __ATOMIC_RELAXED);
		(void)eventfd_write(dp->stopfd, 1);
		pthread_join(dp->th_out, NULL);
		pthread_join(dp->th_in, NULL);
	}
	if (dp->lock_init) {
		pthread_rwlock_destroy(&dp->lock);
		pthread_mutex_destroy(&dp->mu_out);
		pthread_mutex_destroy(&dp->mu_in);
	}
	for (size_t i = 0; dp->recs != NULL && i < dp->cfg.max_children; i++)
		if (dp->recs[i].used)
			rec_clear(&dp->recs[i]);
	dp_map_free(&dp->by_spi);
	dp_map_free(&dp->by_route);
	if (dp->sock != -1)
		close(dp->sock);
	if (dp->stopfd != -1)
		close(dp->stopfd);
	free(dp->recs);
	free(dp->ob);
	free(dp->ib);
	free(dp);
}

static uint64_t
rec_route_key(const struct dp *dp, const struct dp_rec *r)
{
	uint32_t a = dp->cfg.role == DP_ROLE_UE ? 0 : r->inner.s_addr;

	return dp_route_key(a, r->kind);
}

/* Under the write lock: a free slot filled from c, in by_spi. */
static struct dp_rec *
rec_install(struct dp *dp, const struct dp_child *c, char *err, size_t errlen)
{
	struct dp_rec *r = NULL;
	uint32_t       spi;

	if (c->in == NULL || c->out == NULL) {
		snprintf(err, errlen,
		    "Child SA without its inbound or "
		    "outbound SA");
		return NULL;
	}
	spi = esp_sa_spi(c->in);
	if (c->kind == DP_USER && c->gre && c->qfi > GRE_QFI_MAX) {
		snprintf(err, errlen, "QFI %u is over %d", c->qfi, GRE_QFI_MAX);
		return NULL;
	}
	if (dp->cfg.role == DP_ROLE_N3IWF && c->inner.s_addr == 0) {
		snprintf(err, errlen,
		    "N3IWF Child SA without the UE's "
		    "inner address");
		return NULL;
	}
	if (dp_map_get(&dp->by_spi, spi) != NULL) {
		snprintf(err, errlen, "inbound SPI 0x%08x already installed",
		    ntohl(spi));
		return NULL;
	}
	for (size_t i = 0; i < dp->cfg.max_children && r == NULL; i++)
		if (!dp->recs[i].used)
			r = &dp->recs[i];
	if (r == NULL) {
		snprintf(err, errlen, "all %u Child SA slots are in use",
		    dp->cfg.max_children);
		return NULL;
	}
	*r = (struct dp_rec){ c->in, c->out, spi, c->peer, c->kind,
		c->kind == DP_USER && c->gre, c->qfi, c->inner, true, false };
	dp_map_put(&dp->by_spi, spi, r);
	return r;
}

static int
child_install(struct dp *dp, uint32_t old_in_spi, bool rekey, bool route,
    const struct dp_child *c, char *err, size_t errlen)
{
	struct dp_rec *old = NULL, *r = NULL;

	pthread_rwlock_wrlock(&dp->lock);
	if (rekey && (old = dp_map_get(&dp->by_spi, old_in_spi)) == NULL)
		snprintf(err, errlen,
		    "rekey: no Child SA with inbound SPI "
		    "0x%08x",
		    ntohl(old_in_spi));
	else if (rekey &&
	    (old->kind != c->kind || old->inner.s_addr != c->inner.s_addr))
		snprintf(err, errlen,
		    "rekey of 0x%08x: the new SA serves "
		    "other packets",
		    ntohl(old_in_spi));
	else if ((r = rec_install(dp, c, err, errlen)) != NULL && route)
		dp_map_put(&dp->by_route, rec_route_key(dp, r), r);
	pthread_rwlock_unlock(&dp->lock);
	if (r == NULL) {
		esp_sa_free(c->in);
		esp_sa_free(c->out);
		return -1;
	}
	return 0;
}

int
dp_child_add(struct dp *dp, const struct dp_child *c, char *err, size_t errlen)
{
	return child_install(dp, 0, false, true, c, err, errlen);
}

int
dp_child_rekey(struct dp *dp, uint32_t old_in_spi, const struct dp_child *c,
    char *err, size_t errlen)
{
	return child_install(dp, old_in_spi, true, true, c, err, errlen);
}

int
dp_child_rekey_later(struct dp *dp, uint32_t old_in_spi,
    const struct dp_child *c, char *err, size_t errlen)
{
	return child_install(dp, old_in_spi, true, false, c, err, errlen);
}

int
dp_child_route(struct dp *dp, uint32_t in_spi)
{
	struct dp_rec *r;

	pthread_rwlock_wrlock(&dp->lock);
	if ((r = dp_map_get(&dp->by_spi, in_spi)) != NULL)
		dp_map_put(&dp->by_route, rec_route_key(dp, r), r);
	pthread_rwlock_unlock(&dp->lock);
	return r != NULL ? 0 : -1;
}

int
dp_child_unroute(struct dp *dp, uint32_t in_spi)
{
	struct dp_rec *r;
	uint64_t       k = 0;

	pthread_rwlock_wrlock(&dp->lock);
	if ((r = dp_map_get(&dp->by_spi, in_spi)) != NULL &&
	    dp_map_get(&dp->by_route, k = rec_route_key(dp, r)) == r)
		dp_map_del(&dp->by_route, k);
	pthread_rwlock_unlock(&dp->lock);
	return r != NULL ? 0 : -1;
}

int
dp_child_del(struct dp *dp, uint32_t in_spi)
{
	struct dp_rec *r;
	struct dp_rec  gone;
	uint64_t       k;

	pthread_rwlock_wrlock(&dp->lock);
	if ((r = dp_map_del(&dp->by_spi, in_spi)) != NULL) {
		k = rec_route_key(dp, r);
		if (dp_map_get(&dp->by_route, k) == r)
			dp_map_del(&dp->by_route, k);
		gone = *r;
		memset(r, 0, sizeof(*r));
	}
	pthread_rwlock_unlock(&dp->lock);
	if (r == NULL)
		return -1;
	/* No packet thread can reach it now: free outside the lock. */
	rec_clear(&gone);
	return 0;
}

void
dp_rec_stats(const struct dp *dp, const struct dp_rec *r,
    struct dp_child_stats *st)
{
	esp_sa_stats(r->in, &st->in);
	esp_sa_stats(r->out, &st->out);
	st->soft = esp_sa_soft(r->in) || esp_sa_soft(r->out);
	st->hard = esp_sa_hard(r->in) || esp_sa_hard(r->out);
	st->routed = dp_map_get(&dp->by_route, rec_route_key(dp, r)) == r;
}

int
dp_child_stats(struct dp *dp, uint32_t in_spi, struct dp_child_stats *st)
{
	struct dp_rec *r;

	pthread_rwlock_rdlock(&dp->lock);
	if ((r = dp_map_get(&dp->by_spi, in_spi)) != NULL)
		dp_rec_stats(dp, r, st);
	pthread_rwlock_unlock(&dp->lock);
	return r != NULL ? 0 : -1;
}
