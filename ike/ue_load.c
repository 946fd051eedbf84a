/*
 * ike-ue's load mode (ike/ue_load.h). Two kinds of threads:
 *
 *  - load_conc workers, each with its own endpoint (struct ue: the
 *    certificate, its own kmsd connection) running the existing blocking
 *    flow (ue_conn_up, ike/ue.c) for one UE at a time: it takes the next
 *    UE index, waits for its arrival time (load_rate), derives the UE's
 *    subscriber (ike/subs.h), opens the UE's own UDP socket, brings the
 *    IKE SA up, and hands socket and SA to the holder;
 *  - one holder, an epoll loop over the sockets of every held UE: it
 *    answers what the N3IWF sends them (INFORMATIONAL: liveness checks,
 *    Delete; a CREATE_CHILD_SA gets NO_ADDITIONAL_SAS: held load-mode UEs
 *    do not rekey), makes the oldest UE delete its IKE SA when more than
 *    load_hold are up, and at the end (hold_s, SIGTERM) deletes them all.
 *
 * So thousands of UEs are held with one thread and one socket each, and
 * at most load_conc set-ups are in flight. The holder works the endpoint
 * core on one UE at a time through a scratch endpoint whose socket and
 * one-entry table it points at that UE's.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/ikev2.h"
#include "ike/rekey.h"
#include "ike/subs.h"
#include "ike/ue_int.h"
#include "ike/ue_load.h"
#include "ike/usim.h"

#define LD_TICK_MS    50  /* the holder's retransmission scan */
#define LD_DEL_FLIGHT 256 /* Deletes in flight at the end, at most */
#define LD_EVENTS     256

/* One held UE (the holder's). */
struct lue {
	struct ike_net net;
	struct ike_sa *sa;
	unsigned       idx;
	bool	       deleting;
	struct lue    *prev, *next;
};

struct lq {
	struct lue *head, *tail;
	size_t	    n;
};

struct ld {
	const struct ikecfg   *c;
	volatile sig_atomic_t *stop;
	struct ike_csv	       csv; /* shared by the workers' endpoints */
	struct sockaddr_in     n3iwf;
	pthread_mutex_t	       mu;
	pthread_cond_t	       taken_cv;
	/* under mu */
	uint64_t	       handed, taken; /* UEs to the holder, taken */
	bool		       holder_gone;
	unsigned	       next; /* next UE to start */
	unsigned	       established, failed;
	uint64_t	       first_ns, last_ns; /* first INIT, last up */
	uint64_t	      *setup_ns;	  /* per UE; 0: not up */
	struct lq	       inbox;		  /* workers -> holder */
	bool		       arrivals_done;
	/* the holder's */
	uint64_t	       t0;
	int		       epfd, efd;
	struct ike_ep	      *ep; /* scratch: one UE at a time */
	struct lq	       held, dels;
	size_t		       held_max;
	unsigned long	       peer_deleted, del_unanswered;
	bool		       ending;
	uint64_t	       hold_end, next_tick;
};

/* ---- lists ---- */

static void
lq_push(struct lq *q, struct lue *x)
{
	x->next = NULL;
	x->prev = q->tail;
	if (q->tail != NULL)
		q->tail->next = x;
	else
		q->head = x;
	q->tail = x;
	q->n++;
}

static void
lq_del(struct lq *q, struct lue *x)
{
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		q->head = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	else
		q->tail = x->prev;
	x->prev = x->next = NULL;
	q->n--;
}

/* ---- the holder ---- */

/* The scratch endpoint works on x: its socket and a one-entry table. */
static struct ike_ep *
ld_bind(struct ld *l, struct lue *x)
{
	l->ep->net = x->net;
	(void)ike_ep_add(l->ep, x->sa); /* empty: room */
	return l->ep;
}

static void
ld_unbind(struct ld *l, struct lue *x)
{
	x->net = l->ep->net; /* NAT-T float */
	l->ep->net.fd = -1;
	ike_ep_detach(l->ep, x->sa);
}

/* x is gone: its SA freed, its socket closed. */
static void
ld_drop(struct ld *l, struct lue *x)
{
	struct ike_ep *ep = ld_bind(l, x);

	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, x->net.fd, NULL);
	lq_del(x->deleting ? &l->dels : &l->held, x);
	x->sa->state = SA_DEAD;
	ike_ep_sweep(ep); /* frees the SA */
	ike_net_close(&ep->net);
	ep->net.fd = -1;
	free(x);
}

/* x sends its Delete (IKE SA); the answer or the last send ends it. */
static void
ld_delete(struct ld *l, struct lue *x)
{
	struct ike_ep *ep = ld_bind(l, x);
	int	       r = ike_ep_delete(ep, x->sa);

	ld_unbind(l, x);
	lq_del(&l->held, x);
	x->deleting = true;
	lq_push(&l->dels, x);
	if (r == -1) {
		ld_drop(l, x);
		return;
	}
	x->sa->state = SA_DELETING;
}

/* A request of the N3IWF to a held UE. */
static bool
ld_request(struct ld *l, struct lue *x, struct ike_ep *ep,
    const struct ike_msg *m)
{
	if (m->hdr.exchange == IKE_INFORMATIONAL) {
		if (!ike_ep_informational(ep, x->sa, m))
			return false; /* a liveness check: answered */
		log_info("UE %u: the N3IWF deleted its IKE SA", x->idx);
		l->peer_deleted++;
		return true;
	}
	log_debug("UE %u: %s request refused (load-mode UEs do not rekey)",
	    x->idx, ike_exchange_name(m->hdr.exchange));
	(void)ike_ep_respond_notify(ep, x->sa, m, IKE_N_NO_ADDITIONAL_SAS);
	return false;
}

/* One datagram on x's socket. */
static void
ld_rx(struct ld *l, struct lue *x)
{
	struct ike_ep	*ep = ld_bind(l, x);
	struct ike_ep_ev ev;
	bool		 gone = false;

	switch (ike_ep_next(ep, -1, 0, &ev)) {
	case IKE_EP_ERROR:
		log_debug("UE %u: socket error", x->idx);
		gone = true;
		break;
	case IKE_EP_REQUEST: gone = ld_request(l, x, ep, &ev.m); break;
	case IKE_EP_RESPONSE: gone = x->deleting; break;
	default: break;
	}
	ike_msg_free(&ev.m);
	ld_unbind(l, x);
	if (gone)
		ld_drop(l, x);
}

/* Retransmits the Deletes; the ms until the next scan. */
static int
ld_timers(struct ld *l)
{
	uint64_t    now = time_mono_ns();
	struct lue *x, *nx;

	if (now < l->next_tick)
		return (int)((l->next_tick - now) / 1000000u) + 1;
	l->next_tick = now + LD_TICK_MS * 1000000ull;
	for (x = l->dels.head; x != NULL; x = nx) {
		int w;

		nx = x->next;
		w = ike_ep_retx_tick(ld_bind(l, x), x->sa);
		ld_unbind(l, x);
		if (w == -1) {
			log_debug("UE %u: Delete not answered", x->idx);
			l->del_unanswered++;
			ld_drop(l, x);
		}
	}
	return LD_TICK_MS;
}

/* The UEs the workers brought up: held, the oldest deleted past H. */
static void
ld_take(struct ld *l, struct lue *in)
{
	unsigned h = l->c->load_hold;

	for (struct lue *x = in, *nx; x != NULL; x = nx) {
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = x };

		nx = x->next;
		lq_push(&l->held, x);
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, x->net.fd, &e) == -1) {
			log_warn("UE %u: epoll: %s", x->idx, strerror(errno));
			ld_delete(l, x);
		}
	}
	while (l->held.n > 0 && h > 0 && l->held.n > h)
		ld_delete(l, l->held.head);
	if (l->held.n > l->held_max)
		l->held_max = l->held.n;
}

/* The end of the run: after the arrivals, the hold, or SIGTERM. */
static bool
ld_phase(struct ld *l, bool done, int *wait)
{
	uint64_t now = time_mono_ns();

	if (!l->ending && done && l->hold_end == 0) {
		const struct ikecfg *c = l->c;

		l->hold_end = !c->hold_set ? now :
		    c->hold_s > 0 ? now + (uint64_t)c->hold_s * 1000000000ull :
				    UINT64_MAX;
		if (c->hold_set && c->hold_s > 0)
			log_info("load: %zu UE(s) held, for %u s", l->held.n,
			    c->hold_s);
		else if (c->hold_set)
			log_info("load: %zu UE(s) held, until SIGTERM",
			    l->held.n);
	}
	if (!l->ending && (*l->stop || (done && now >= l->hold_end))) {
		l->ending = true;
		log_info("load: deleting %zu held UE(s)", l->held.n);
	}
	/* a few hundred at a time: a burst of thousands overflows the
	 * N3IWF's socket buffer */
	while (l->ending && l->held.n > 0 && l->dels.n < LD_DEL_FLIGHT)
		ld_delete(l, l->held.head);
	if (l->ending && l->held.n > 0 && *wait > 5)
		*wait = 5;
	if (l->hold_end != 0 && l->hold_end != UINT64_MAX && !l->ending &&
	    (l->hold_end - now) / 1000000u < (uint64_t)*wait)
		*wait = (int)((l->hold_end - now) / 1000000u) + 1;
	if (*l->stop && *wait > 100)
		*wait = 100;
	return l->ending && done && l->held.n == 0 && l->dels.n == 0;
}

static void *
ld_holder(void *arg)
{
	struct ld	  *l = arg;
	struct epoll_event ev[LD_EVENTS];

	for (;;) {
		struct lue *in;
		bool	    done;
		uint64_t    v;
		int	    wait = ld_timers(l), n;

		pthread_mutex_lock(&l->mu);
		in = l->inbox.head;
		l->inbox.head = l->inbox.tail = NULL;
		l->inbox.n = 0;
		done = l->arrivals_done;
		v = l->handed;
		pthread_mutex_unlock(&l->mu);
		ld_take(l, in);
		pthread_mutex_lock(&l->mu);
		l->taken = v; /* the oldest already told to delete */
		pthread_cond_broadcast(&l->taken_cv);
		pthread_mutex_unlock(&l->mu);
		if (ld_phase(l, done, &wait))
			break;
		if ((n = epoll_wait(l->epfd, ev, LD_EVENTS, wait)) == -1 &&
		    errno != EINTR) {
			log_err("load: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == NULL) {
				if (read(l->efd, &v, sizeof(v)) == -1 &&
				    errno != EAGAIN)
					log_warn("load: eventfd: %s",
					    strerror(errno));
			} else
				ld_rx(l, ev[i].data.ptr);
		}
	}
	pthread_mutex_lock(&l->mu);
	l->holder_gone = true;
	pthread_cond_broadcast(&l->taken_cv);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* ---- the workers ---- */

/* Wakes the holder (eventfd). */
static void
ld_wake(struct ld *l)
{
	uint64_t one = 1;

	if (write(l->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("load: eventfd: %s", strerror(errno));
}

/* Waits for UE i's arrival time; false when stopped meanwhile. */
static bool
ld_arrive(struct ld *l, unsigned i)
{
	uint64_t due, now;

	if (l->c->load_rate <= 0)
		return !*l->stop;
	due = l->t0 + (uint64_t)((double)i * 1e9 / l->c->load_rate);
	while (!*l->stop && (now = time_mono_ns()) < due) {
		uint64_t d = due - now < 100000000u ? due - now : 100000000u;
		struct timespec ts = { 0, (long)d };

		nanosleep(&ts, NULL);
	}
	return !*l->stop;
}

/*
 * The worker's UE i is up (sa): to the holder, with its socket. The
 * worker waits until the holder has taken it (and told the oldest to
 * delete past load_hold), so the N3IWF holds at most load_hold plus the
 * set-ups in flight.
 */
static void
ld_hand(struct ld *l, struct ue *u, unsigned i, struct ike_sa *sa)
{
	struct lue *x = calloc(1, sizeof(*x));
	uint64_t    t1 = sa->t_start + sa->st.total_ns, seq = 0;

	/* what the set-up needed and a held UE does not: its DH key (in
	 * the secure heap) and its USIM */
	ike_dh_free(sa->dh);
	sa->dh = NULL;
	usim_free(sa->usim);
	sa->usim = NULL;
	ike_ep_detach(&u->ep, sa);
	pthread_mutex_lock(&l->mu);
	l->established++;
	l->setup_ns[i] = sa->st.total_ns > 0 ? sa->st.total_ns : 1;
	if (l->first_ns == 0 || sa->t_start < l->first_ns)
		l->first_ns = sa->t_start;
	if (t1 > l->last_ns)
		l->last_ns = t1;
	if (x != NULL) {
		x->net = u->ep.net;
		x->sa = sa;
		x->idx = i;
		lq_push(&l->inbox, x);
		seq = ++l->handed;
	}
	pthread_mutex_unlock(&l->mu);
	if (x == NULL) { /* counted up; cannot be held */
		ike_sa_free(sa);
		ike_net_close(&u->ep.net);
	}
	u->ep.net.fd = -1;
	ld_wake(l);
	pthread_mutex_lock(&l->mu);
	while (l->taken < seq && !l->holder_gone)
		pthread_cond_wait(&l->taken_cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
}

/* UE i: its subscriber, its socket, the connection. */
static void
ld_one(struct ld *l, struct ue *u, unsigned i)
{
	char	       err[IKECFG_ERRLEN];
	struct ike_sa *sa;
	int	       r = -1;

	if (u->ep.subs != NULL && subs_derive(u->ep.subs, i, &u->ep.sub) == -1)
		log_err("UE %u: cannot derive its subscriber", i);
	else if (ike_net_client_own(&u->ep.net, l->c->local, err,
		     sizeof(err)) == -1)
		log_err("UE %u: %s", i, err);
	else
		r = ue_conn_up(u, i, &sa);
	if (u->ep.subs != NULL)
		amf_sub_wipe(&u->ep.sub);
	if (r == 0) {
		ld_hand(l, u, i, sa);
		return;
	}
	ike_net_close(&u->ep.net);
	pthread_mutex_lock(&l->mu);
	l->failed++;
	pthread_mutex_unlock(&l->mu);
}

static void *
ld_worker(void *arg)
{
	struct ue *u = arg;
	struct ld *l = u->load;

	for (;;) {
		unsigned i;

		pthread_mutex_lock(&l->mu);
		i = l->next < l->c->load && !*l->stop ? l->next++ : UINT32_MAX;
		pthread_mutex_unlock(&l->mu);
		if (i == UINT32_MAX || !ld_arrive(l, i))
			break;
		ld_one(l, u, i);
	}
	return NULL;
}

/* A worker's endpoint: certificate and CA, subscriber range, kmsd. */
static struct ue *
ld_ue_new(struct ld *l, char *err, size_t errlen)
{
	const struct ikecfg *c = l->c;
	struct ue	    *u;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->ep.net.fd = u->ep.net.fd_natt = -1;
	u->xfd = u->tnl.tun_fd = -1;
	u->n3iwf = l->n3iwf;
	u->load = l;
	if (ike_ep_open(&u->ep, c, l->stop, c->mode == IKE_MODE_CERT, err,
		errlen) == -1 ||
	    (ike_mode_has_qkd(c->mode) &&
		(u->qkd = ike_qkd_open(c, err, errlen)) == NULL)) {
		ike_ep_close(&u->ep);
		free(u);
		return NULL;
	}
	u->ep.csv = l->csv;
	return u;
}

static void
ld_ue_free(struct ue *u)
{
	if (u == NULL)
		return;
	memset(&u->ep.csv, 0, sizeof(u->ep.csv)); /* the shared one */
	ike_ep_close(&u->ep);
	ike_qkd_close(u->qkd);
	free(u);
}

/* ---- the run ---- */

/*
 * One descriptor per held UE and per worker (socket, kmsd), and some: the
 * soft limit raised to that (the hard one too if it is below and we may).
 * 0, or -1 with err when the limit stays too low for the run.
 */
static int
ld_nofile(const struct ikecfg *c, char *err, size_t errlen)
{
	rlim_t need = (rlim_t)(c->load_hold ? c->load_hold : c->load) +
	    2 * (rlim_t)c->load_conc + 64;
	struct rlimit r;
	rlim_t	      old;

	if (getrlimit(RLIMIT_NOFILE, &r) == -1 || r.rlim_cur >= need)
		return 0;
	old = r.rlim_cur;
	r.rlim_cur = need;
	if (r.rlim_max < need)
		r.rlim_max = need;
	if (setrlimit(RLIMIT_NOFILE, &r) == -1) {
		snprintf(err, errlen,
		    "RLIMIT_NOFILE is %llu and cannot be raised to the %llu "
		    "descriptors %u UEs need (one socket each): %s",
		    (unsigned long long)old, (unsigned long long)need,
		    c->load_hold ? c->load_hold : c->load, strerror(errno));
		return -1;
	}
	log_info("load: RLIMIT_NOFILE raised from %llu to %llu (one socket "
		 "per UE)",
	    (unsigned long long)old, (unsigned long long)need);
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with p percent at or below it. */
static double
pct_ms(const uint64_t *v, size_t n, unsigned p)
{
	size_t k = (n * p + 99) / 100;

	return n == 0 ? 0 : (double)v[k > 0 ? k - 1 : 0] / 1e6;
}

/* The summary line on stdout (ike/README.md). */
static void
ld_summary(struct ld *l)
{
	const struct ikecfg *c = l->c;
	uint64_t	    *v = l->setup_ns;
	size_t		     n = 0;
	double		     el = l->last_ns > l->first_ns ?
			  (double)(l->last_ns - l->first_ns) / 1e9 :
			  0;

	for (unsigned i = 0; i < c->load; i++)
		if (v[i] != 0)
			v[n++] = v[i];
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("load: ues=%u established=%u failed=%u elapsed_s=%.3f "
	       "rate=%.1f/s setup_ms p50=%.2f p90=%.2f p99=%.2f max=%.2f "
	       "held_max=%zu\n",
	    c->load, l->established, c->load - l->established, el,
	    el > 0 ? l->established / el : 0, pct_ms(v, n, 50),
	    pct_ms(v, n, 90), pct_ms(v, n, 99), pct_ms(v, n, 100), l->held_max);
	fflush(stdout);
	log_info("load: %u of %u UEs established, %u failed; the N3IWF "
		 "deleted %lu held; %lu Delete(s) unanswered",
	    l->established, c->load, l->failed, l->peer_deleted,
	    l->del_unanswered);
}

/* Everything the run needs before the threads; 0 or -1 (err). */
static int
ld_open(struct ld *l, const struct ikecfg *c, volatile sig_atomic_t *stop,
    char *err, size_t errlen)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };

	l->c = c;
	l->stop = stop;
	l->epfd = l->efd = -1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->taken_cv, NULL);
	if (ike_addr_parse(c->host, c->port, &l->n3iwf) == -1) {
		snprintf(err, errlen, "peer \"%s\" is not IPv4", c->host);
		return -1;
	}
	if ((l->setup_ns = calloc(c->load, sizeof(*l->setup_ns))) == NULL ||
	    (l->ep = calloc(1, sizeof(*l->ep))) == NULL) {
		snprintf(err, errlen, "out of memory for %u UEs", c->load);
		return -1;
	}
	l->ep->cfg = c;
	l->ep->stop = stop;
	l->ep->net.fd = l->ep->net.fd_natt = -1;
	if (ike_ep_table_init(l->ep, 16) == -1) { /* one SA at a time */
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->efd, &e) == -1) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		return -1;
	}
	return ike_csv_open(&l->csv, c->csv, c->csv_msgs, "ue",
	    ike_mode_name(c->mode), ike_profile_name(c->profile),
	    ike_qkd_sched_label(c), err, errlen);
}

static void
ld_close(struct ld *l)
{
	ike_csv_close(&l->csv);
	if (l->ep != NULL)
		ike_ep_close(l->ep);
	free(l->ep);
	free(l->setup_ns);
	if (l->epfd != -1)
		close(l->epfd);
	if (l->efd != -1)
		close(l->efd);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->taken_cv);
}

/* Starts the workers (their endpoints first); how many run. */
static unsigned
ld_start(struct ld *l, struct ue **w, pthread_t *tid, unsigned nw)
{
	char	 err[IKECFG_ERRLEN];
	unsigned k;

	for (k = 0; k < nw; k++) {
		if ((w[k] = ld_ue_new(l, err, sizeof(err))) == NULL) {
			log_err("%s", err);
			break;
		}
		if (pthread_create(&tid[k], NULL, ld_worker, w[k]) != 0) {
			log_err("load: cannot start worker %u", k);
			ld_ue_free(w[k]);
			break;
		}
	}
	if (k < nw)
		log_warn("load: %u of %u workers started (qkd modes: one kmsd "
			 "connection each, within kmsd's max_conns_per_ip?)",
		    k, nw);
	return k;
}

int
ike_ue_load_run(const struct ikecfg *c, volatile sig_atomic_t *stop)
{
	struct ld   l;
	char	    err[IKECFG_ERRLEN];
	unsigned    nw = c->load_conc < c->load ? c->load_conc : c->load, k = 0;
	struct ue **w = calloc(nw, sizeof(*w));
	pthread_t  *tid = calloc(nw, sizeof(*tid)), holder;
	int	    ret = -1;

	memset(&l, 0, sizeof(l));
	if (ld_open(&l, c, stop, err, sizeof(err)) == -1 ||
	    ld_nofile(c, err, sizeof(err)) == -1 || w == NULL || tid == NULL) {
		log_err("%s", w == NULL || tid == NULL ? "out of memory" : err);
		goto done;
	}
	ike_rekey_signal_setup(); /* SIGUSR2 must not kill us: no rekeys here */
	log_info("load: %u UEs, %g/s, %u in flight at most, %u held at most",
	    c->load, c->load_rate, nw, c->load_hold ? c->load_hold : c->load);
	if (pthread_create(&holder, NULL, ld_holder, &l) != 0) {
		log_err("load: cannot start the holder thread");
		goto done;
	}
	l.t0 = time_mono_ns();
	k = ld_start(&l, w, tid, nw);
	for (unsigned i = 0; i < k; i++) {
		pthread_join(tid[i], NULL);
		ld_ue_free(w[i]);
	}
	pthread_mutex_lock(&l.mu);
	l.arrivals_done = true;
	pthread_mutex_unlock(&l.mu);
	ld_wake(&l);
	pthread_join(holder, NULL);
	ld_summary(&l);
	ret = k > 0 && l.established == c->load ? 0 : -1;
done:
	ld_close(&l);
	free(w);
	free(tid);
	return ret;
}
