/* UDP transport for IKE: ports 500/4500, the non-ESP marker, retransmission timing. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/net.h"

int
ike_addr_parse(const char *host, uint16_t port, struct sockaddr_in *a)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

void
ike_addr_str(const struct sockaddr_in *a, char *out, size_t cap)
{
	char ip[INET_ADDRSTRLEN];

	if (inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)) == NULL)
		snprintf(ip, sizeof(ip), "?");
	snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
}

/*
 * reuseport: the socket that receives ESP too (the N3IWF's NAT-T socket,
 * the UE's one socket) opens an SO_REUSEPORT group that the data plane
 * joins after it (ike/dp.h: member 0 gets IKE, member 1 ESP).
 */
static int
bind_udp(const struct sockaddr_in *a, bool reuseport, struct sockaddr_in *bound,
    char *err, size_t errlen)
{
	socklen_t sl = sizeof(*bound);
	char	  as[64];
	int	  fd, one = 1;

	ike_addr_str(a, as, sizeof(as));
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* The destination address of each datagram (for NAT detection). */
	if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == -1 ||
	    (reuseport &&
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ==
		    -1) ||
	    bind(fd, (const struct sockaddr *)a, sizeof(*a)) == -1 ||
	    getsockname(fd, (struct sockaddr *)bound, &sl) == -1) {
		snprintf(err, errlen, "cannot bind UDP %s: %s", as,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
ike_net_listen(struct ike_net *n, const char *host, uint16_t port,
    uint16_t natt_port, char *err, size_t errlen)
{
	struct sockaddr_in a;

	n->fd = n->fd_natt = -1;
	n->natt_peer_port = 0;
	if (ike_addr_parse(host, port, &a) == -1) {
		snprintf(err, errlen, "listen address \"%s\" is not IPv4",
		    host);
		return -1;
	}
	if ((n->fd = bind_udp(&a, false, &n->ike_addr, err, errlen)) == -1)
		return -1;
	a.sin_port = htons(natt_port);
	if ((n->fd_natt = bind_udp(&a, true, &n->natt_addr, err, errlen)) ==
	    -1) {
		ike_net_close(n);
		return -1;
	}
	return 0;
}

static int
net_client(struct ike_net *n, const char *local, bool reuseport, char *err,
    size_t errlen)
{
	struct sockaddr_in a;

	n->fd = n->fd_natt = -1;
	n->natt_peer_port = 0;
	if (ike_addr_parse(local, 0, &a) == -1) {
		snprintf(err, errlen, "local address \"%s\" is not IPv4",
		    local);
		return -1;
	}
	if ((n->fd = bind_udp(&a, reuseport, &n->ike_addr, err, errlen)) == -1)
		return -1;
	memset(&n->natt_addr, 0, sizeof(n->natt_addr));
	return 0;
}

int
ike_net_client(struct ike_net *n, const char *local, char *err, size_t errlen)
{
	return net_client(n, local, true, err, errlen);
}

int
ike_net_client_own(struct ike_net *n, const char *local, char *err,
    size_t errlen)
{
	return net_client(n, local, false, err, errlen);
}

void
ike_net_close(struct ike_net *n)
{
	if (n->fd != -1)
		close(n->fd);
	if (n->fd_natt != -1)
		close(n->fd_natt);
	n->fd = n->fd_natt = -1;
}

int
ike_net_send(struct ike_net *n, int natt, const struct sockaddr_in *to,
    const uint8_t *msg, size_t len)
{
	static const uint8_t marker[IKE_NONESP_MARKER_LEN];
	struct iovec	     iov[2];
	struct msghdr	     mh;
	int  fd = (natt && n->fd_natt != -1) ? n->fd_natt : n->fd;
	char as[64];

	memset(&mh, 0, sizeof(mh));
	iov[0].iov_base = (void *)(uintptr_t)marker;
	iov[0].iov_len = sizeof(marker);
	iov[1].iov_base = (void *)(uintptr_t)msg;
	iov[1].iov_len = len;
	mh.msg_name = (void *)(uintptr_t)to;
	mh.msg_namelen = sizeof(*to);
	mh.msg_iov = natt ? iov : iov + 1;
	mh.msg_iovlen = natt ? 2 : 1;
	if (sendmsg(fd, &mh, 0) == -1) {
		ike_addr_str(to, as, sizeof(as));
		log_warn("%s: send %zu bytes to %s: %s", __func__, len, as,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
recv_one(int fd, int natt, uint16_t natt_peer_port, struct ike_pkt *p)
{
	uint8_t raw[IKE_MSG_MAX + IKE_NONESP_MARKER_LEN];
	union {
		struct cmsghdr h;
		uint8_t	       b[CMSG_SPACE(sizeof(struct in_pktinfo))];
	} cbuf;
	struct iovec	iov = { raw, sizeof(raw) };
	struct msghdr	mh;
	struct cmsghdr *cm;
	const uint8_t  *m = raw;
	ssize_t		r;
	size_t		len;

	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &p->from;
	mh.msg_namelen = sizeof(p->from);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.b;
	mh.msg_controllen = sizeof(cbuf.b);
	if ((r = recvmsg(fd, &mh, MSG_DONTWAIT)) == -1)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	len = (size_t)r;
	if (mh.msg_flags & MSG_TRUNC)
		return 0; /* larger than any IKE message */
	memset(&p->to, 0, sizeof(p->to));
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == IPPROTO_IP &&
		    cm->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			p->to.sin_family = AF_INET;
			p->to.sin_addr = pi.ipi_addr;
		}
	/* The UE's one socket also talks to the N3IWF's NAT-T port. */
	if (natt_peer_port != 0 && p->from.sin_port == htons(natt_peer_port))
		natt = 1;
	p->natt = natt;
	if (natt) {
		static const uint8_t zero[IKE_NONESP_MARKER_LEN];

		/* 1 byte 0xff: NAT keepalive; non-zero SPI: ESP. */
		if (len < IKE_NONESP_MARKER_LEN ||
		    memcmp(raw, zero, IKE_NONESP_MARKER_LEN) != 0)
			return 0;
		m += IKE_NONESP_MARKER_LEN;
		len -= IKE_NONESP_MARKER_LEN;
	}
	if (len < IKE_HDR_LEN)
		return 0;
	memcpy(p->data, m, len);
	p->len = len;
	p->t_ns = time_mono_ns();
	return 1;
}

int
ike_net_recv(struct ike_net *n, int timeout_ms, struct ike_pkt *p)
{
	return ike_net_poll(n, -1, timeout_ms, p);
}

int
ike_net_poll(struct ike_net *n, int xfd, int timeout_ms, struct ike_pkt *p)
{
	struct pollfd pfd[3];
	nfds_t	      nfd = 1, nsock;
	int	      r;

	pfd[0] = (struct pollfd){ .fd = n->fd, .events = POLLIN };
	if (n->fd_natt != -1) {
		pfd[1] = (struct pollfd){ .fd = n->fd_natt, .events = POLLIN };
		nfd = 2;
	}
	nsock = nfd;
	if (xfd != -1)
		pfd[nfd++] = (struct pollfd){ .fd = xfd, .events = POLLIN };
	if ((r = poll(pfd, nfd, timeout_ms)) == -1)
		return errno == EINTR ? 0 : -1;
	if (r == 0)
		return 0;
	/* Completions first: a flood on the sockets must not starve them. */
	if (nfd > nsock && (pfd[nsock].revents & POLLIN))
		return 2;
	for (nfds_t i = 0; i < nsock; i++) {
		if (!(pfd[i].revents & POLLIN))
			continue;
		r = recv_one(pfd[i].fd, i == 1, n->natt_peer_port, p);
		if (r == 1)
			p->to.sin_port = i == 0 ? n->ike_addr.sin_port :
						  n->natt_addr.sin_port;
		if (r != 0)
			return r;
	}
	return 0;
}

size_t
ike_frame_len(size_t ike_len, int natt)
{
	return ike_len + IKE_FRAME_OVERHEAD +
	    (natt ? IKE_NONESP_MARKER_LEN : 0);
}

void
ike_retx_start(struct ike_retx *r, unsigned base_ms, unsigned tries)
{
	r->base_ms = base_ms;
	r->tries = tries;
	r->sent = 1;
	r->deadline_ns = time_mono_ns() + (uint64_t)base_ms * 1000000u;
}

int
ike_retx_wait_ms(const struct ike_retx *r)
{
	uint64_t now = time_mono_ns();

	if (now >= r->deadline_ns)
		return 0;
	return (int)((r->deadline_ns - now + 999999u) / 1000000u);
}

bool
ike_retx_again(struct ike_retx *r)
{
	uint64_t wait;

	if (r->sent >= r->tries)
		return false;
	wait = (uint64_t)r->base_ms << r->sent; /* 2^sent x base */
	r->sent++;
	r->deadline_ns = time_mono_ns() + wait * 1000000u;
	return true;
}
