/*
 * delayrelay: a userspace delay relay for UDP and TCP (issue 11), for
 * emulating network round-trip times where the kernel has no netem.
 *
 *   delayrelay [-d MS] [-j MS] [--seed N] [--udp-idle S] [--ready FILE]
 *	-u LISTEN=TARGET | -t LISTEN=TARGET ...
 *
 * Each -u rule relays UDP datagrams arriving at LISTEN to TARGET, one
 * upstream socket per client address (per-flow association: TARGET's
 * answers on that socket go back to that client, and TARGET sees each
 * client as a distinct source port: a NAT). Each -t rule accepts TCP
 * connections at LISTEN and opens one to TARGET for each, relaying the
 * byte stream both ways. Every datagram or chunk read (up to 64 KiB) is
 * released after the one-way delay D (-d) plus a jitter drawn uniformly
 * from [-J, +J] (-j, J <= D) in each direction, so a round trip through
 * the relay adds 2 D on average. TCP never reorders: a chunk is released
 * no earlier than the one before it in the same direction (the jitter
 * then only stretches gaps). UDP datagrams are independent, as on a real
 * path: with J > 0, two datagrams less than 2 J apart may swap order.
 *
 * Timers: CLOCK_MONOTONIC, one binary min-heap of release times (ties in
 * arrival order) and one timerfd armed at the heap's top; one thread,
 * epoll. LISTEN must be a 127.0.0.0/8 address unless the relay runs in a
 * network namespace other than PID 1's (then any local address).
 * SIGTERM/SIGINT end it and print counters on stderr.
 *
 * Exit status 0 after a signal, 1 on a usage or setup error (message on
 * stderr naming the bad value).
 */
#include "tests/tools/delayrelay.h"

struct rly_state rly;

static volatile sig_atomic_t rly_stop;

uint64_t
rly_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
rly_rand(void)
{
	uint64_t z = (rly.rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Release time of something read now: D + U[-J, J], in ns. */
static uint64_t
rly_release_at(uint64_t now)
{
	double ms = rly.delay_ms;

	if (rly.jitter_ms > 0) {
		double u = (double)(rly_rand() >> 11) / 9007199254740992.0;
		ms += (2 * u - 1) * rly.jitter_ms;
	}
	if (ms < 0)
		ms = 0;
	return now + (uint64_t)(ms * 1e6 + 0.5);
}

/* ---- the priority queue ---- */

static bool
hent_less(const struct rly_hent *a, const struct rly_hent *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int
heap_push(uint64_t t, struct rly_pkt *p)
{
	size_t i;

	if (rly.nheap == rly.capheap) {
		size_t		 n = rly.capheap ? 2 * rly.capheap : 256;
		struct rly_hent *h = realloc(rly.heap, n * sizeof(*h));
		if (h == NULL)
			return -1;
		rly.heap = h;
		rly.capheap = n;
	}
	i = rly.nheap++;
	rly.heap[i] = (struct rly_hent){ t, rly.seq++, p };
	while (i > 0 && hent_less(&rly.heap[i], &rly.heap[(i - 1) / 2])) {
		struct rly_hent x = rly.heap[i];
		rly.heap[i] = rly.heap[(i - 1) / 2];
		rly.heap[(i - 1) / 2] = x;
		i = (i - 1) / 2;
	}
	return 0;
}

static struct rly_pkt *
heap_pop(void)
{
	struct rly_pkt *p = rly.heap[0].p;
	size_t		i = 0;

	rly.heap[0] = rly.heap[--rly.nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < rly.nheap && hent_less(&rly.heap[l], &rly.heap[m]))
			m = l;
		if (r < rly.nheap && hent_less(&rly.heap[r], &rly.heap[m]))
			m = r;
		if (m == i)
			break;
		struct rly_hent x = rly.heap[i];
		rly.heap[i] = rly.heap[m];
		rly.heap[m] = x;
		i = m;
	}
	return p;
}

static void
timer_arm(void)
{
	struct itimerspec its = { 0 };

	if (rly.nheap > 0) {
		uint64_t t = rly.heap[0].t;
		its.it_value.tv_sec = (time_t)(t / 1000000000ull);
		its.it_value.tv_nsec = (long)(t % 1000000000ull);
		if (t == 0)
			its.it_value.tv_nsec = 1;
	}
	(void)timerfd_settime(rly.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- sockets and epoll ---- */

int
rly_ep_set(int op, int fd, uint32_t events, struct rly_ev_tag *tag)
{
	struct epoll_event ev = { .events = events, .data.ptr = tag };

	return epoll_ctl(rly.ep, op, fd, &ev);
}

/* ---- UDP ---- */

static void
flow_unref(struct rly_flow *f)
{
	if (--f->refs == 0 && f->dead)
		free(f);
}

static void
flow_kill(struct rly_flow *f)
{
	struct rly_flow **pp = &f->rule->flows;

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	f->rule->nflows--;
	close(f->fd);
	f->dead = true;
	if (f->refs == 0)
		free(f);
}

static struct rly_flow *
flow_get(struct rly_rule *r, const struct sockaddr_in *from, uint64_t now)
{
	struct rly_flow *f;

	for (f = r->flows; f != NULL; f = f->next)
		if (f->client.sin_addr.s_addr == from->sin_addr.s_addr &&
		    f->client.sin_port == from->sin_port)
			return f;
	if (r->nflows >= RLY_MAX_FLOWS || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->fd == -1 ||
	    connect(f->fd, (struct sockaddr *)&r->target, sizeof(r->target)) ==
		-1) {
		fprintf(stderr, "delayrelay: udp flow to %s: %s\n", r->spec,
		    strerror(errno));
		if (f->fd != -1)
			close(f->fd);
		free(f);
		return NULL;
	}
	f->rule = r;
	f->client = *from;
	f->last_ns = now;
	f->tag = (struct rly_ev_tag){ EV_FLOW, f, 0 };
	(void)rly_ep_set(EPOLL_CTL_ADD, f->fd, EPOLLIN, &f->tag);
	f->next = r->flows;
	r->flows = f;
	r->nflows++;
	return f;
}

static struct rly_pkt *
pkt_new(enum rly_kind kind, void *owner, int dir, size_t len)
{
	struct rly_pkt *p;

	if (rly.queued + len > RLY_QUEUE_CAP ||
	    (p = malloc(sizeof(*p) + len)) == NULL)
		return NULL;
	*p = (struct rly_pkt){ .kind = kind,
		.owner = owner,
		.dir = dir,
		.len = len };
	rly.queued += len;
	return p;
}

static void
pkt_free(struct rly_pkt *p)
{
	rly.queued -= p->len;
	free(p);
}

/* One datagram from fd queued towards the other end of flow f. */
static void
udp_take(int fd, struct rly_rule *r, struct rly_flow *f, uint64_t now)
{
	unsigned char	   buf[65536];
	struct sockaddr_in from;
	socklen_t	   fl = sizeof(from);
	ssize_t		   n;
	struct rly_pkt	  *p;
	int		   up = f == NULL;

	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	if (n < 0)
		return;
	if (up && (f = flow_get(r, &from, now)) == NULL) {
		rly.drops++;
		return;
	}
	f->last_ns = now;
	p = pkt_new(up ? PK_UDP_UP : PK_UDP_DOWN, f, up ? 0 : 1, (size_t)n);
	if (p == NULL || heap_push(rly_release_at(now), p) == -1) {
		if (p != NULL)
			pkt_free(p);
		rly.drops++;
		return;
	}
	memcpy(p->data, buf, (size_t)n);
	f->refs++;
}

static void
udp_release(struct rly_pkt *p)
{
	struct rly_flow *f = p->owner;
	ssize_t		 n = -1;

	if (!f->dead && p->kind == PK_UDP_UP)
		n = send(f->fd, p->data, p->len, 0);
	else if (!f->dead)
		n = sendto(f->rule->fd, p->data, p->len, 0,
		    (struct sockaddr *)&f->client, sizeof(f->client));
	if (n == (ssize_t)p->len) {
		rly.pk[p->dir]++;
		rly.by[p->dir] += p->len;
	} else {
		rly.drops++;
	}
	flow_unref(f);
}

static void
udp_expire(uint64_t now)
{
	for (unsigned i = 0; i < rly.nrules; i++) {
		struct rly_flow *f = rly.rules[i].flows, *nx;
		for (; f != NULL; f = nx) {
			nx = f->next;
			if (now - f->last_ns >
			    (uint64_t)rly.udp_idle_s * 1000000000ull)
				flow_kill(f);
		}
	}
}

/* ---- TCP ---- */

static void
side_events(struct rly_conn *c, int i)
{
	struct rly_side *s = &c->s[i];
	uint32_t	 ev = 0;

	if (s->fd == -1)
		return;
	if (!s->rd_eof && c->connected && c->queued[i] < RLY_TCP_WINDOW)
		ev |= EPOLLIN;
	if (s->out != NULL || (i == 1 && !c->connected))
		ev |= EPOLLOUT;
	if (ev != s->events) {
		(void)rly_ep_set(EPOLL_CTL_MOD, s->fd, ev, &s->tag);
		s->events = ev;
	}
}

static void
conn_unref(struct rly_conn *c)
{
	if (--c->refs == 0 && c->dead)
		free(c);
}

static void
conn_kill(struct rly_conn *c)
{
	if (c->dead)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		rly.live = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	for (int i = 0; i < 2; i++) {
		struct rly_pkt *p = c->s[i].out, *nx;
		for (; p != NULL; p = nx) {
			nx = p->next;
			pkt_free(p);
		}
		if (c->s[i].fd != -1)
			close(c->s[i].fd);
		c->s[i].fd = -1;
	}
	c->dead = true;
	conn_unref(c); /* the sockets' reference */
}

/* Writes what side i has released; shuts it when the peer's EOF is due. */
static void
side_flush(struct rly_conn *c, int i)
{
	struct rly_side *s = &c->s[i];

	while (c->connected && s->out != NULL) {
		struct rly_pkt *p = s->out;
		ssize_t		n = 0;
		if (p->len > p->off)
			n = send(s->fd, p->data + p->off, p->len - p->off,
			    MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n < 0) {
			conn_kill(c);
			return;
		}
		p->off += (size_t)n;
		rly.by[1 - i] += (size_t)n;
		if (p->off < p->len)
			continue;
		if (p->eof && shutdown(s->fd, SHUT_WR) == 0)
			s->shut = true;
		s->out = p->next;
		c->queued[1 - i] -= p->len;
		pkt_free(p);
	}
	if (c->s[0].shut && c->s[1].shut) {
		conn_kill(c);
		return;
	}
	side_events(c, i);
	side_events(c, 1 - i);
}

static void
tcp_release(struct rly_pkt *p)
{
	struct rly_conn *c = p->owner;
	struct rly_side *s = &c->s[1 - p->dir];

	if (c->dead) {
		pkt_free(p);
	} else {
		rly.pk[p->dir]++;
		if (s->out_tail != NULL && s->out != NULL)
			s->out_tail->next = p;
		else
			s->out = p;
		s->out_tail = p;
		side_flush(c, 1 - p->dir);
	}
	conn_unref(c);
}

/* Reads one chunk from side i (or its EOF) into the queue. */
static void
tcp_take(struct rly_conn *c, int i, uint64_t now)
{
	unsigned char	buf[RLY_CHUNK];
	ssize_t		n = recv(c->s[i].fd, buf, sizeof(buf), 0);
	struct rly_pkt *p;
	uint64_t	t;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 || (p = pkt_new(PK_TCP, c, i, (size_t)n)) == NULL) {
		conn_kill(c);
		return;
	}
	memcpy(p->data, buf, (size_t)n);
	p->eof = n == 0;
	t = rly_release_at(now);
	if (t < c->last_t[i]) /* never reorder a stream */
		t = c->last_t[i];
	c->last_t[i] = t;
	if (heap_push(t, p) == -1) {
		pkt_free(p);
		conn_kill(c);
		return;
	}
	c->refs++;
	c->queued[i] += (size_t)n;
	if (n == 0)
		c->s[i].rd_eof = true;
	side_events(c, i);
}

static void
tcp_accept(struct rly_rule *r)
{
	struct rly_conn *c;
	int		 fd, one = 1;

	fd = accept4(r->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->next = rly.live;
	if (rly.live != NULL)
		rly.live->prev = c;
	rly.live = c;
	c->s[0].fd = fd;
	c->s[1].fd =
	    socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->s[1].fd == -1 ||
	    (connect(c->s[1].fd, (struct sockaddr *)&r->target,
		 sizeof(r->target)) == -1 &&
		errno != EINPROGRESS)) {
		fprintf(stderr, "delayrelay: tcp connect for %s: %s\n", r->spec,
		    strerror(errno));
		c->refs = 1;
		conn_kill(c);
		return;
	}
	rly.conns++;
	for (int i = 0; i < 2; i++) {
		(void)setsockopt(c->s[i].fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		c->s[i].tag = (struct rly_ev_tag){ EV_CONN, c, i };
		(void)rly_ep_set(EPOLL_CTL_ADD, c->s[i].fd, 0, &c->s[i].tag);
	}
	c->refs = 1; /* the sockets' own reference, dropped by conn_kill */
	side_events(c, 0);
	side_events(c, 1);
}

static void
tcp_event(struct rly_conn *c, int i, uint32_t ev, uint64_t now)
{
	c->refs++;
	if (i == 1 && !c->connected &&
	    (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int	  e = 0;
		socklen_t el = sizeof(e);
		getsockopt(c->s[1].fd, SOL_SOCKET, SO_ERROR, &e, &el);
		if (e != 0) {
			conn_kill(c);
		} else {
			c->connected = true;
			side_flush(c, 0);
			side_flush(c, 1);
		}
	} else {
		if (!c->dead && (ev & EPOLLOUT))
			side_flush(c, i);
		if (!c->dead && !c->s[i].rd_eof &&
		    (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			tcp_take(c, i, now);
		else if (!c->dead && (ev & EPOLLHUP) && c->s[i].out == NULL)
			/* read and write ends done: stop the level-triggered
			 * HUP until the other side's EOF is due */
			(void)epoll_ctl(rly.ep, EPOLL_CTL_DEL, c->s[i].fd,
			    NULL);
	}
	conn_unref(c);
}

/* ---- the loop ---- */

static void
release_due(uint64_t now)
{
	while (rly.nheap > 0 && rly.heap[0].t <= now) {
		struct rly_pkt *p = heap_pop();
		if (p->kind == PK_TCP) {
			tcp_release(p);
		} else {
			udp_release(p);
			pkt_free(p);
		}
	}
}

static void
dispatch(const struct epoll_event *e, uint64_t now)
{
	struct rly_ev_tag *t = e->data.ptr;
	uint64_t	   x;

	switch (t->type) {
	case EV_TIMER:
		if (read(rly.tfd, &x, sizeof(x)) < 0)
			break; /* EAGAIN: woken early, nothing to clear */
		break;
	case EV_LISTEN: {
		struct rly_rule *r = t->obj;
		if (r->tcp)
			tcp_accept(r);
		else
			udp_take(r->fd, r, NULL, now);
		break;
	}
	case EV_FLOW: {
		struct rly_flow *f = t->obj;
		udp_take(f->fd, f->rule, f, now);
		break;
	}
	case EV_CONN: tcp_event(t->obj, t->side, e->events, now); break;
	}
}

/* At exit: drops what is queued and frees every flow and connection. */
static void
rly_shutdown(void)
{
	while (rly.nheap > 0) {
		struct rly_pkt *p = heap_pop();
		if (p->kind == PK_TCP) {
			conn_unref(p->owner);
		} else {
			flow_unref(p->owner);
		}
		pkt_free(p);
	}
	while (rly.live != NULL)
		conn_kill(rly.live);
	for (unsigned i = 0; i < rly.nrules; i++) {
		while (rly.rules[i].flows != NULL)
			flow_kill(rly.rules[i].flows);
		close(rly.rules[i].fd);
	}
	free(rly.heap);
	close(rly.tfd);
	close(rly.ep);
}

static void
on_signal(int sig)
{
	(void)sig;
	rly_stop = 1;
}

int
main(int argc, char **argv)
{
	char		   err[512];
	struct sigaction   sa = { .sa_handler = on_signal };
	struct epoll_event ev[64];
	uint64_t	   last_expire = rly_now();

	if (rly_setup(argc, argv, err, sizeof(err)) == -1) {
		fprintf(stderr, "delayrelay: %s\n", err);
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!rly_stop) {
		int	 n = epoll_wait(rly.ep, ev, 64, 1000);
		/* one clock read per wake: arrival time of everything read */
		uint64_t now = rly_now();
		for (int i = 0; i < n; i++)
			dispatch(&ev[i], now);
		release_due(rly_now());
		if (now - last_expire > 1000000000ull) {
			udp_expire(now);
			last_expire = now;
		}
		timer_arm();
	}
	fprintf(stderr,
	    "delayrelay: forward %llu pkts %llu bytes, back %llu pkts %llu "
	    "bytes, tcp connections %llu, udp drops %llu\n",
	    rly.pk[0], rly.by[0], rly.pk[1], rly.by[1], rly.conns, rly.drops);
	rly_shutdown();
	return 0;
}
