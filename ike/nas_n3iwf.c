/* The N3IWF's NAS/TCP server: connections mapped to UEs by source address
 * (a hash of the UEs by inner address, one by handle: O(1) per UE),
 * NAS relayed to each UE's AMF emulator (flow in nas_n3iwf.h). */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "ike/nas_n3iwf.h"
#include "ike/nas_tcp.h"

#define MAX_EVENTS 32

struct n3ue {
	struct n3ue	    *a_next, *u_next; /* chains by address, by ue */
	struct nas_n3iwf    *srv;
	uint8_t		     inner[4];
	struct amf	    *amf;
	void		    *ue;
	struct buf	     pend; /* NAS messages waiting for the connection */
	struct nas_tcp_conn *conn; /* NULL until the UE connects */
	bool		     closing;
};

struct nas_n3iwf {
	struct nas_n3iwf_cfg   cfg;
	int		       ep, lfd;
	uint16_t	       port;
	/* the UEs, hashed by inner address and by handle (nb buckets
	 * each, a power of two, doubled when there are more UEs) */
	struct n3ue	     **by_addr, **by_ue;
	size_t		       nb, nue;
	struct nas_n3iwf_stats st;
};

/* ---- life cycle -------------------------------------------------------- */

static int
listen_on(struct nas_n3iwf *n, char *err, size_t errlen)
{
	struct sockaddr_in sin;
	socklen_t	   sl = sizeof(sin);
	int		   one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(n->cfg.port);
	if (n->cfg.ip == NULL ||
	    inet_pton(AF_INET, n->cfg.ip, &sin.sin_addr) != 1) {
		snprintf(err, errlen, "nas_ip \"%s\" is not an IPv4 address",
		    n->cfg.ip != NULL ? n->cfg.ip : "");
		return -1;
	}
	if ((n->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1 ||
	    setsockopt(n->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ==
		-1 ||
	    bind(n->lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(n->lfd, 64) == -1 ||
	    getsockname(n->lfd, (struct sockaddr *)&sin, &sl) == -1) {
		snprintf(err, errlen, "NAS/TCP listen on %s:%u: %s", n->cfg.ip,
		    n->cfg.port, strerror(errno));
		return -1;
	}
	n->port = ntohs(sin.sin_port);
	return 0;
}

struct nas_n3iwf *
nas_n3iwf_open(const struct nas_n3iwf_cfg *c, char *err, size_t errlen)
{
	struct nas_n3iwf  *n;
	struct epoll_event ev = { .events = EPOLLIN };

	if (c->qfi == 0 || c->qfi > 63) {
		snprintf(err, errlen, "QFI %u is not 1..63", c->qfi);
		return NULL;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n->cfg = *c;
	n->lfd = -1;
	if ((n->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		free(n);
		return NULL;
	}
	ev.data.ptr = NULL; /* the listener */
	if (listen_on(n, err, errlen) == -1 ||
	    epoll_ctl(n->ep, EPOLL_CTL_ADD, n->lfd, &ev) == -1) {
		if (n->lfd != -1 && err[0] == '\0')
			snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		nas_n3iwf_close(n);
		return NULL;
	}
	return n;
}

static void
drop_conn(struct n3ue *u)
{
	if (u->conn == NULL)
		return;
	(void)epoll_ctl(u->srv->ep, EPOLL_CTL_DEL, u->conn->fd, NULL);
	nas_tcp_conn_close(u->conn);
	free(u->conn);
	u->conn = NULL;
}

static void
ue_free(struct n3ue *u)
{
	drop_conn(u);
	buf_free(&u->pend);
	free(u);
}

void
nas_n3iwf_close(struct nas_n3iwf *n)
{
	struct n3ue *u;

	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nb; i++)
		while ((u = n->by_addr[i]) != NULL) {
			n->by_addr[i] = u->a_next;
			ue_free(u);
		}
	free(n->by_addr);
	free(n->by_ue);
	if (n->lfd != -1)
		close(n->lfd);
	close(n->ep);
	free(n);
}

int
nas_n3iwf_fd(const struct nas_n3iwf *n)
{
	return n->ep;
}

uint16_t
nas_n3iwf_port(const struct nas_n3iwf *n)
{
	return n->port;
}

void
nas_n3iwf_get_stats(const struct nas_n3iwf *n, struct nas_n3iwf_stats *s)
{
	*s = n->st;
}

/* ---- UEs --------------------------------------------------------------- */

static size_t
bucket_of(const struct nas_n3iwf *n, uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k & (n->nb - 1);
}

static uint64_t
addr_key(const uint8_t a[static 4])
{
	uint32_t v;

	memcpy(&v, a, 4);
	return v;
}

static void
link_ue(struct nas_n3iwf *n, struct n3ue *u)
{
	size_t a = bucket_of(n, addr_key(u->inner));
	size_t h = bucket_of(n, (uint64_t)(uintptr_t)u->ue);

	u->a_next = n->by_addr[a];
	n->by_addr[a] = u;
	u->u_next = n->by_ue[h];
	n->by_ue[h] = u;
}

static void
unlink_ue(struct nas_n3iwf *n, struct n3ue *u)
{
	struct n3ue **pp = &n->by_addr[bucket_of(n, addr_key(u->inner))];

	for (; *pp != NULL; pp = &(*pp)->a_next)
		if (*pp == u) {
			*pp = u->a_next;
			break;
		}
	pp = &n->by_ue[bucket_of(n, (uint64_t)(uintptr_t)u->ue)];
	for (; *pp != NULL; pp = &(*pp)->u_next)
		if (*pp == u) {
			*pp = u->u_next;
			break;
		}
}

/* Room for one more UE: both tables doubled past one UE per bucket. */
static int
grow(struct nas_n3iwf *n)
{
	struct n3ue **oa = n->by_addr, **ou = n->by_ue, *u;
	size_t	      onb = n->nb, nb = onb > 0 ? 2 * onb : 64;

	if (n->nue < onb)
		return 0;
	n->by_addr = calloc(nb, sizeof(*n->by_addr));
	n->by_ue = calloc(nb, sizeof(*n->by_ue));
	if (n->by_addr == NULL || n->by_ue == NULL) {
		free(n->by_addr);
		free(n->by_ue);
		n->by_addr = oa;
		n->by_ue = ou;
		return -1;
	}
	n->nb = nb;
	for (size_t i = 0; i < onb; i++)
		while ((u = oa[i]) != NULL) {
			oa[i] = u->a_next;
			link_ue(n, u);
		}
	free(oa);
	free(ou);
	return 0;
}

static struct n3ue *
find_addr(struct nas_n3iwf *n, const uint8_t a[static 4])
{
	if (n->nb == 0)
		return NULL;
	for (struct n3ue *u = n->by_addr[bucket_of(n, addr_key(a))]; u != NULL;
	     u = u->a_next)
		if (memcmp(u->inner, a, 4) == 0)
			return u;
	return NULL;
}

static struct n3ue *
find_ue(struct nas_n3iwf *n, const void *ue)
{
	if (n->nb == 0)
		return NULL;
	for (struct n3ue *u = n->by_ue[bucket_of(n, (uint64_t)(uintptr_t)ue)];
	     u != NULL; u = u->u_next)
		if (u->ue == ue)
			return u;
	return NULL;
}

/* Sends msg to the UE, or keeps it until the UE connects. */
static int
to_ue(struct n3ue *u, const uint8_t *msg, size_t n)
{
	if (u->conn == NULL)
		return nas_tcp_frame(&u->pend, msg, n);
	u->srv->st.msgs_out++;
	return nas_tcp_send(u->conn, msg, n);
}

/* The AMF's N2 PDU session resource setup: ask for the Child SA. */
static void
on_pdu(void *arg, const struct amf_pdu_setup *s)
{
	struct n3ue *u = arg;

	log_info("nas-n3iwf: PDU session %u: user-plane Child SA with QFI %u "
		 "asked for",
	    s->psi, s->qfi);
	if (u->srv->cfg.child != NULL)
		u->srv->cfg.child(u->srv->cfg.arg, u->ue, s);
}

int
nas_n3iwf_ue_add(struct nas_n3iwf *n, const uint8_t inner[static 4],
    struct amf *amf, void *ue)
{
	struct n3ue   *u;
	const uint8_t *acc;
	size_t	       len = 0;

	if (find_addr(n, inner) != NULL || find_ue(n, ue) != NULL) {
		log_err("nas-n3iwf: UE %u.%u.%u.%u already known", inner[0],
		    inner[1], inner[2], inner[3]);
		return -1;
	}
	if (grow(n) == -1 || (u = calloc(1, sizeof(*u))) == NULL)
		return -1;
	u->srv = n;
	memcpy(u->inner, inner, 4);
	u->amf = amf;
	u->ue = ue;
	buf_init(&u->pend, NAS_TCP_TXMAX);
	if ((acc = amf_reg_accept(amf, &len)) != NULL &&
	    nas_tcp_frame(&u->pend, acc, len) == -1) {
		ue_free(u);
		return -1;
	}
	amf_set_session(amf, inner, n->cfg.qfi, on_pdu, u);
	link_ue(n, u);
	n->nue++;
	return 0;
}

void
nas_n3iwf_ue_del(struct nas_n3iwf *n, void *ue)
{
	struct n3ue *u = find_ue(n, ue);

	if (u == NULL)
		return;
	unlink_ue(n, u);
	n->nue--;
	ue_free(u);
}

int
nas_n3iwf_ue_move(struct nas_n3iwf *n, void *old_ue, void *new_ue,
    struct amf *amf)
{
	struct n3ue *u = find_ue(n, old_ue);

	if (u == NULL || find_ue(n, new_ue) != NULL)
		return -1;
	unlink_ue(n, u);
	u->ue = new_ue;
	u->amf = amf;
	link_ue(n, u);
	return 0;
}

int
nas_n3iwf_child_done(struct nas_n3iwf *n, void *ue, uint8_t psi, bool up)
{
	struct n3ue *u = find_ue(n, ue);
	struct buf   out;
	int	     rc = -1;

	if (u == NULL)
		return -1;
	buf_init(&out, NAS_TCP_MAX);
	if (amf_pdu_done(u->amf, psi, up, &out) == 0 &&
	    to_ue(u, out.data, out.len) == 0) {
		rc = 0;
		if (up)
			n->st.sessions++;
	}
	buf_free(&out);
	return rc;
}

/* ---- connections ------------------------------------------------------- */

static void
on_accept(struct nas_n3iwf *n)
{
	struct sockaddr_in sin;
	socklen_t	   sl = sizeof(sin);
	struct epoll_event ev = { .events = EPOLLIN };
	struct n3ue	  *u;
	char		   a[INET_ADDRSTRLEN];
	int		   fd;

	if ((fd = accept4(n->lfd, (struct sockaddr *)&sin, &sl,
		 SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
		return;
	inet_ntop(AF_INET, &sin.sin_addr, a, sizeof(a));
	if ((u = find_addr(n, (const uint8_t *)&sin.sin_addr)) == NULL) {
		log_warn("nas-n3iwf: NAS/TCP from %s, no UE has that inner "
			 "address: closed",
		    a);
		n->st.unknown_src++;
		close(fd);
		return;
	}
	drop_conn(u); /* a new connection replaces the old one */
	if ((u->conn = calloc(1, sizeof(*u->conn))) == NULL) {
		close(fd);
		return;
	}
	nas_tcp_conn_init(u->conn, fd, n->cfg.max_msg);
	ev.data.ptr = u;
	if (epoll_ctl(n->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		drop_conn(u);
		return;
	}
	n->st.conns++;
	log_info("nas-n3iwf: NAS/TCP connection from UE %s", a);
	if (u->pend.len > 0 &&
	    buf_add(&u->conn->tx, u->pend.data, u->pend.len) == 0) {
		n->st.msgs_out++;
		buf_reset(&u->pend);
		(void)nas_tcp_flush(u->conn);
	}
}

/* Every whole NAS message goes to the AMF; its answers back. -1 when the
 * connection must close (counted). */
static int
relay(struct n3ue *u)
{
	struct nas_n3iwf *n = u->srv;
	const uint8_t	 *msg;
	size_t		  len;
	struct buf	  out;
	int		  rc = 0;

	buf_init(&out, NAS_TCP_MAX);
	while (rc == 0 && u->conn != NULL &&
	    nas_tcp_next(&u->conn->rx, &msg, &len)) {
		n->st.msgs_in++;
		buf_reset(&out);
		if (amf_handle(u->amf, msg, len, &out) == -1) {
			n->st.bad_nas++;
			rc = -1;
		} else if (out.len > 0 && to_ue(u, out.data, out.len) == -1)
			rc = -1;
	}
	buf_free(&out);
	if (rc == 0 && u->conn != NULL && nas_tcp_broken(&u->conn->rx)) {
		n->st.bad_frame++;
		rc = -1;
	}
	return rc;
}

static void
on_conn(struct n3ue *u, uint32_t events)
{
	struct nas_n3iwf  *n = u->srv;
	struct epoll_event ev = { .events = EPOLLIN };
	int		   r = 0;

	if (events & EPOLLOUT)
		r = nas_tcp_flush(u->conn);
	if (r == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		r = nas_tcp_read(u->conn);
		if (relay(u) == -1)
			r = -1;
		else if (r == -1 && u->conn != NULL &&
		    nas_tcp_partial(&u->conn->rx))
			n->st.truncated++;
	}
	if (r == -1 || u->conn == NULL || u->conn->eof) {
		log_info("nas-n3iwf: NAS/TCP connection of UE %u.%u.%u.%u "
			 "closed",
		    u->inner[0], u->inner[1], u->inner[2], u->inner[3]);
		drop_conn(u);
		return;
	}
	ev.events |= nas_tcp_pending(u->conn) ? EPOLLOUT : 0;
	ev.data.ptr = u;
	(void)epoll_ctl(n->ep, EPOLL_CTL_MOD, u->conn->fd, &ev);
}

void
nas_n3iwf_step(struct nas_n3iwf *n)
{
	struct epoll_event ev[MAX_EVENTS];
	int		   k;

	k = epoll_wait(n->ep, ev, MAX_EVENTS, 0);
	for (int i = 0; i < k; i++) {
		if (ev[i].data.ptr == NULL)
			on_accept(n);
		else
			on_conn(ev[i].data.ptr, ev[i].events);
	}
}
