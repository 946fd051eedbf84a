/* The UE's NAS/TCP client: registration complete, PDU session (flow in
 * nas_ue.h). */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "ike/nas_tcp.h"
#include "ike/nas_ue.h"

enum ue_state {
	NUE_CONNECTING = 0,
	NUE_WAIT_ACCEPT, /* Registration Accept */
	NUE_WAIT_SESSION,
	NUE_UP,
	NUE_FAILED,
};

struct nas_ue {
	struct nas_ue_cfg   cfg;
	struct usim	   *usim;
	int		    ep;
	enum ue_state	    state;
	struct nas_tcp_conn conn;
	struct nas_sm	    acc;
};

static int
parse_ip(const char *s, struct sockaddr_in *sin, uint16_t port, char *err,
    size_t errlen, const char *what)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	if (s == NULL)
		return 0;
	if (inet_pton(AF_INET, s, &sin->sin_addr) != 1) {
		snprintf(err, errlen, "%s \"%s\" is not an IPv4 address", what,
		    s);
		return -1;
	}
	return 0;
}

static int
start_connect(struct nas_ue *x, char *err, size_t errlen)
{
	struct sockaddr_in src, dst;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
	int		   fd;

	if (parse_ip(x->cfg.inner_ip, &src, 0, err, errlen, "inner_ip") == -1 ||
	    parse_ip(x->cfg.nas_ip, &dst, x->cfg.nas_port, err, errlen,
		"nas_ip") == -1)
		return -1;
	if (x->cfg.nas_ip == NULL || x->cfg.nas_port == 0) {
		snprintf(err, errlen, "no NAS_IP4_ADDRESS / NAS_TCP_PORT");
		return -1;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	nas_tcp_conn_init(&x->conn, fd, x->cfg.max_msg);
	if ((x->cfg.inner_ip != NULL &&
		bind(fd, (struct sockaddr *)&src, sizeof(src)) == -1) ||
	    (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == -1 &&
		errno != EINPROGRESS)) {
		snprintf(err, errlen, "NAS/TCP connect from %s to %s:%u: %s",
		    x->cfg.inner_ip != NULL ? x->cfg.inner_ip : "any",
		    x->cfg.nas_ip, x->cfg.nas_port, strerror(errno));
		return -1;
	}
	ev.data.fd = fd;
	if (epoll_ctl(x->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct nas_ue *
nas_ue_open(const struct nas_ue_cfg *c, struct usim *u, char *err,
    size_t errlen)
{
	struct nas_ue *x;

	if (c->psi == 0 || c->psi > 15) {
		snprintf(err, errlen, "PDU session ID %u is not 1..15", c->psi);
		return NULL;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	x->cfg = *c;
	x->usim = u;
	x->conn.fd = -1;
	if ((x->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		free(x);
		return NULL;
	}
	if (start_connect(x, err, errlen) == -1) {
		nas_ue_close(x);
		return NULL;
	}
	return x;
}

void
nas_ue_close(struct nas_ue *x)
{
	if (x == NULL)
		return;
	if (x->conn.fd != -1)
		nas_tcp_conn_close(&x->conn);
	close(x->ep);
	free(x);
}

int
nas_ue_fd(const struct nas_ue *x)
{
	return x->ep;
}

bool
nas_ue_session(const struct nas_ue *x, struct nas_sm *acc)
{
	if (x->state != NUE_UP)
		return false;
	if (acc != NULL)
		*acc = x->acc;
	return true;
}

bool
nas_ue_failed(const struct nas_ue *x)
{
	return x->state == NUE_FAILED;
}

static void
fail(struct nas_ue *x, const char *why)
{
	if (x->state == NUE_FAILED)
		return;
	log_warn("nas-ue: %s", why);
	x->state = NUE_FAILED;
	if (x->cfg.up != NULL)
		x->cfg.up(x->cfg.arg, NULL);
}

/* Registration Accept -> Registration Complete, then the PDU session
 * request; the DL NAS TRANSPORT -> the session. -1 ends the connection. */
static int
on_msg(struct nas_ue *x, const uint8_t *msg, size_t len)
{
	struct buf out;
	char	   a[INET_ADDRSTRLEN];
	int	   rc = -1;

	buf_init(&out, NAS_TCP_MAX);
	if (usim_handle(x->usim, msg, len, &out) == -1)
		goto done;
	if (out.len > 0 && nas_tcp_send(&x->conn, out.data, out.len) == -1)
		goto done;
	if (x->state == NUE_WAIT_ACCEPT && usim_registered(x->usim)) {
		buf_reset(&out);
		if (usim_pdu_request(x->usim, x->cfg.psi, x->cfg.dnn, &out) ==
			-1 ||
		    nas_tcp_send(&x->conn, out.data, out.len) == -1)
			goto done;
		x->state = NUE_WAIT_SESSION;
	} else if (x->state == NUE_WAIT_SESSION &&
	    usim_pdu_session(x->usim, &x->acc)) {
		inet_ntop(AF_INET, x->acc.addr, a, sizeof(a));
		log_info("nas-ue: PDU session up: PSI %u, QFI %u, address %s",
		    x->acc.psi, x->acc.qfi, a);
		x->state = NUE_UP;
		if (x->cfg.up != NULL)
			x->cfg.up(x->cfg.arg, &x->acc);
	} else if (x->state == NUE_WAIT_SESSION && usim_pdu_rejected(x->usim))
		goto done;
	rc = 0;
done:
	buf_free(&out);
	return rc;
}

static int
on_readable(struct nas_ue *x)
{
	const uint8_t *msg;
	size_t	       len;
	int	       r;

	r = nas_tcp_read(&x->conn);
	while (nas_tcp_next(&x->conn.rx, &msg, &len))
		if (on_msg(x, msg, len) == -1) {
			fail(x, "NAS message refused");
			return -1;
		}
	if (nas_tcp_broken(&x->conn.rx)) {
		fail(x, "NAS/TCP framing error");
		return -1;
	}
	if (r == -1) {
		fail(x, "NAS/TCP connection closed by the N3IWF");
		return -1;
	}
	return 0;
}

void
nas_ue_step(struct nas_ue *x)
{
	struct epoll_event ev;
	int		   err = 0;
	socklen_t	   sl = sizeof(err);

	if (x->conn.fd == -1 || epoll_wait(x->ep, &ev, 1, 0) != 1)
		return;
	if (x->state == NUE_CONNECTING) {
		if (getsockopt(x->conn.fd, SOL_SOCKET, SO_ERROR, &err, &sl) ==
			-1 ||
		    err != 0) {
			fail(x, "NAS/TCP connect failed");
			goto close;
		}
		log_info("nas-ue: NAS/TCP connected to %s:%u", x->cfg.nas_ip,
		    x->cfg.nas_port);
		x->state = NUE_WAIT_ACCEPT;
	}
	if ((ev.events & EPOLLOUT) && nas_tcp_flush(&x->conn) == -1) {
		fail(x, "NAS/TCP send failed");
		goto close;
	}
	if ((ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    on_readable(x) == -1)
		goto close;
	ev.events = EPOLLIN | (nas_tcp_pending(&x->conn) ? EPOLLOUT : 0);
	ev.data.fd = x->conn.fd;
	(void)epoll_ctl(x->ep, EPOLL_CTL_MOD, x->conn.fd, &ev);
	return;
close:
	(void)epoll_ctl(x->ep, EPOLL_CTL_DEL, x->conn.fd, NULL);
	nas_tcp_conn_close(&x->conn);
}
