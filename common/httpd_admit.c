/* Connection admission and shedding for common/httpd.c; see httpd_admit.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/cfg.h"
#include "common/httpd_admit.h"
#include "common/log.h"
#include "common/timeutil.h"

#define HTTPD_FD_RESERVE 128  /* fds kept for the rest of the process */
#define HTTPD_REAP_MS	 250  /* deadline check period */
#define HTTPD_REPORT_S	 10   /* shedding summary period */
#define HTTPD_STALE_MS	 1000 /* see httpd_swap_ok */

/* The daemons' config rows are the one source of the limits' keys and
 * ranges: httpd_limits_set reads the same rows, over a struct httpd_limits. */
struct lim_cfg {
	struct httpd_limits l;
};
static const struct cfg_opt lim_opts[] = {
	CFG_HTTPD_LIMITS("", struct lim_cfg, l),
};

int
httpd_limits_set(struct httpd_limits *l, const char *name, const char *value,
    char *err, size_t errlen)
{
	const struct cfg_opt *o;
	unsigned	      v;

	for (o = lim_opts; o < lim_opts + sizeof(lim_opts) / sizeof(*o); o++) {
		if (strcmp(o->key, name) != 0)
			continue;
		if (cfg_uint(&v, name, value, (unsigned)o->min,
			(unsigned)o->max, err, errlen) == -1)
			return -1;
		memcpy((char *)l + o->off, &v, sizeof(v));
		return 0;
	}
	snprintf(err, errlen, "\"%s\" is not a connection limit", name);
	return -1;
}

static void
httpd_limits_default(struct httpd_limits *l, const struct httpd_limits *in)
{
	*l = *in;
	if (l->max_conns == 0)
		l->max_conns = HTTPD_MAX_CONNS_DEFAULT;
	if (l->max_conns_per_ip == 0)
		l->max_conns_per_ip = HTTPD_MAX_CONNS_PER_IP_DEFAULT;
	if (l->max_conns_per_ip > l->max_conns)
		l->max_conns_per_ip = l->max_conns;
	if (l->handshake_s == 0)
		l->handshake_s = HTTPD_HANDSHAKE_S_DEFAULT;
	if (l->idle_s == 0)
		l->idle_s = HTTPD_IDLE_S_DEFAULT;
}

/* Closes c's socket under MHD: its thread sees EOF and closes the
 * connection. The fd stays valid until NOTIFY_CLOSED, which takes a->mu
 * before MHD closes it, so it is never somebody else's fd here. */
static void
httpd_shed(struct httpd_admit *a, struct httpd_conn *c, const char *why)
{
	if (c->shed)
		return;
	c->shed = true;
	a->nconns--;
	(void)shutdown(c->fd, SHUT_RDWR);
	log_debug("%s: connection from %s closed: %s", a->name, c->addr, why);
}

/* Shed order: NEW before IDLE before BODY, oldest first; BUSY never. */
static bool
httpd_worse(const struct httpd_conn *x, const struct httpd_conn *y)
{
	if (y == NULL)
		return true;
	if (x->state != y->state)
		return x->state < y->state;
	return x->since_ns < y->since_ns;
}

/* Least useful sheddable connection, of address ip (0: any); NULL if all
 * are busy. */
static struct httpd_conn *
httpd_victim(struct httpd_admit *a, uint32_t ip)
{
	struct httpd_conn *c, *v = NULL;

	for (c = a->conns; c != NULL; c = c->next)
		if (!c->shed && c->state != HC_BUSY &&
		    (ip == 0 || c->ip == ip) && httpd_worse(c, v))
			v = c;
	return v;
}

static unsigned
httpd_count_ip(struct httpd_admit *a, uint32_t ip)
{
	struct httpd_conn *c;
	unsigned	   n = 0;

	for (c = a->conns; c != NULL; c = c->next)
		n += !c->shed && c->ip == ip;
	return n;
}

static int
httpd_ip_cmp(const void *x, const void *y)
{
	uint32_t u = *(const uint32_t *)x, v = *(const uint32_t *)y;

	return u < v ? -1 : u > v;
}

/* The address holding the most sheddable connections: sorted, then the
 * longest run; n log n, as this runs for every connection over the limit. */
static uint32_t
httpd_top_ip(struct httpd_admit *a, unsigned *count)
{
	struct httpd_conn *c;
	uint32_t	  *ips, top = 0;
	size_t		   n = 0, i, run, best = 0;

	*count = 0;
	if ((ips = malloc((a->nconns + 1) * sizeof(*ips))) == NULL)
		return 0;
	for (c = a->conns; c != NULL && n <= a->nconns; c = c->next)
		if (!c->shed && c->state != HC_BUSY)
			ips[n++] = c->ip;
	qsort(ips, n, sizeof(*ips), httpd_ip_cmp);
	for (i = 0; i < n; i += run) {
		for (run = 1; i + run < n && ips[i + run] == ips[i]; run++)
			;
		if (run > best) {
			best = run;
			top = ips[i];
		}
	}
	free(ips);
	*count = (unsigned)best;
	return top;
}

/*
 * May v, of the newcomer's own address, make room for it? Only an idle
 * (or slow-body) connection that has been so for a while: swapping one
 * half-open connection of an address for another gains nothing and costs a
 * thread and a TLS setup per attempt, which is what lets a flood clog the
 * accept queue; half-open ones end at their deadline instead.
 */
static bool
httpd_swap_ok(const struct httpd_conn *v)
{
	return v != NULL && v->state != HC_NEW &&
	    time_mono_ns() - v->since_ns > HTTPD_STALE_MS * 1000000ull;
}

/*
 * Makes room for a new connection from ip, or says no (a->mu held). Over
 * the total limit the victim comes from the address holding the most (when
 * it holds more than the newcomer's address will), so that a flood from a
 * few addresses does not push out everybody else.
 */
static int
httpd_admit(struct httpd_admit *a, uint32_t ip)
{
	struct httpd_conn *v;
	unsigned	   n_ip = httpd_count_ip(a, ip), n_top;
	uint32_t	   top;

	if (n_ip >= a->lim.max_conns_per_ip) {
		if (!httpd_swap_ok(v = httpd_victim(a, ip)))
			goto refuse;
		a->cnt.shed_ip++;
		httpd_shed(a, v, "per-address connection limit");
		n_ip--;
	}
	if (a->nconns >= a->lim.max_conns) {
		top = httpd_top_ip(a, &n_top);
		/* A clear lead (not the +-1 of a balanced flood, whose swaps
		 * would each cost a thread and a TLS setup). */
		if (top != ip && n_top > n_ip + 1 + n_ip / 4)
			v = httpd_victim(a, top);
		else if (!httpd_swap_ok(v = httpd_victim(a, ip)))
			goto refuse;
		if (v == NULL)
			goto refuse;
		a->cnt.shed_total++;
		httpd_shed(a, v, "connection limit");
	}
	return 0;
refuse:
	a->cnt.refused++;
	return -1;
}

/* MHD's accept policy: runs before any thread or TLS state exists. The
 * admitted connection is counted from here; NOTIFY_STARTED lists it. */
enum MHD_Result
httpd_admit_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct httpd_admit *a = cls;
	uint32_t	    ip = 0;
	int		    rc;

	if (sa != NULL && sa->sa_family == AF_INET &&
	    len >= (socklen_t)sizeof(struct sockaddr_in))
		ip = ((const struct sockaddr_in *)(const void *)sa)
			 ->sin_addr.s_addr;
	pthread_mutex_lock(&a->mu);
	if (a->reserved) /* MHD dropped the last one after accept */
		a->nconns--;
	rc = httpd_admit(a, ip);
	if (rc == 0)
		a->nconns++; /* reserved until NOTIFY_STARTED or the next accept */
	a->reserved = rc == 0;
	pthread_mutex_unlock(&a->mu);
	return rc == 0 ? MHD_YES : MHD_NO;
}

/* Peer address ("ip:port" for logs, the IPv4 for the limits) and socket. */
static void
httpd_peer_addr(struct MHD_Connection *c, struct httpd_conn *hc)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr_in       *sin;
	char				ip[INET_ADDRSTRLEN] = "?";

	hc->fd = -1;
	hc->state = HC_NEW;
	hc->since_ns = time_mono_ns();
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		hc->fd = ci->connect_fd;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL ||
	    ci->client_addr->sa_family != AF_INET) {
		snprintf(hc->addr, sizeof(hc->addr), "?");
		return;
	}
	sin = (const struct sockaddr_in *)(const void *)ci->client_addr;
	hc->ip = sin->sin_addr.s_addr;
	inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	snprintf(hc->addr, sizeof(hc->addr), "%s:%u", ip, ntohs(sin->sin_port));
}

/* A new connection joins the list, in the slot its accept reserved. */
struct httpd_conn *
httpd_admit_conn_new(struct httpd_admit *a, struct MHD_Connection *c)
{
	struct httpd_conn *hc;

	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;
	httpd_peer_addr(c, hc);
	pthread_mutex_lock(&a->mu);
	hc->next = a->conns;
	if (a->conns)
		a->conns->prev = hc;
	a->conns = hc;
	if (a->reserved)
		a->reserved = false;
	else
		a->nconns++;
	pthread_mutex_unlock(&a->mu);
	return hc;
}

void
httpd_admit_conn_gone(struct httpd_admit *a, struct httpd_conn *hc)
{
	pthread_mutex_lock(&a->mu);
	if (hc->prev)
		hc->prev->next = hc->next;
	else if (a->conns == hc)
		a->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	if (!hc->shed)
		a->nconns--;
	pthread_mutex_unlock(&a->mu);
}

struct httpd_conn *
httpd_admit_set_state(struct httpd_admit *a, struct MHD_Connection *c,
    enum httpd_cstate st)
{
	const union MHD_ConnectionInfo *ci;
	struct httpd_conn	       *hc;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (hc = ci->socket_context) == NULL)
		return NULL;
	pthread_mutex_lock(&a->mu);
	hc->state = st;
	hc->since_ns = time_mono_ns();
	pthread_mutex_unlock(&a->mu);
	return hc;
}

/* Deadlines that no trickle of bytes extends (a->mu held). */
static void
httpd_reap(struct httpd_admit *a)
{
	struct httpd_conn *c;
	uint64_t	   now = time_mono_ns(), age;

	for (c = a->conns; c != NULL; c = c->next) {
		if (c->shed || c->state == HC_BUSY)
			continue;
		age = now - c->since_ns;
		if (c->state == HC_NEW &&
		    age > (uint64_t)a->lim.handshake_s * 1000000000ull) {
			a->cnt.handshake++;
			httpd_shed(a, c,
			    "TLS handshake and first request not "
			    "done in time");
		} else if (c->state != HC_NEW &&
		    age > (uint64_t)a->lim.idle_s * 1000000000ull) {
			a->cnt.slow++;
			httpd_shed(a, c,
			    c->state == HC_IDLE ?
				"idle" :
				"request body not received in time");
		}
	}
}

/* One line per period in which something was shed (a->mu held). */
static void
httpd_report(struct httpd_admit *a)
{
	struct httpd_counts *n = &a->cnt, *o = &a->reported;

	if (memcmp(n, o, sizeof(*n)) == 0)
		return;
	log_info(
	    "%s: last %d s: shed %lu connection(s) over the per-address "
	    "limit %u and %lu over the limit %u, refused %lu new one(s) at "
	    "accept, closed %lu slow handshake(s) and %lu idle or slow "
	    "request(s); %u open",
	    a->name, HTTPD_REPORT_S, n->shed_ip - o->shed_ip,
	    a->lim.max_conns_per_ip, n->shed_total - o->shed_total,
	    a->lim.max_conns, n->refused - o->refused,
	    n->handshake - o->handshake, n->slow - o->slow, a->nconns);
	*o = *n;
}

static void *
httpd_reaper(void *arg)
{
	struct httpd_admit *a = arg;
	struct timespec	    ts;
	unsigned	    ticks = 0;

	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += HTTPD_REAP_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&a->cv, &a->mu, &ts);
		if (a->stop)
			break;
		httpd_reap(a);
		if (++ticks % (HTTPD_REPORT_S * 1000 / HTTPD_REAP_MS) == 0)
			httpd_report(a);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/*
 * Every connection holds a descriptor (and a thread): raise the soft
 * RLIMIT_NOFILE to the hard one if the limit needs more, and refuse a
 * limit that still does not fit.
 */
static int
httpd_fd_budget(unsigned mhd_limit, char *err, size_t errlen)
{
	struct rlimit rl;
	rlim_t	      need = (rlim_t)mhd_limit + HTTPD_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need &&
	    rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		snprintf(err, errlen,
		    "max_conns needs about %llu file descriptors "
		    "but RLIMIT_NOFILE is %llu (hard %llu): lower max_conns or "
		    "raise the limit (ulimit -n)",
		    (unsigned long long)need, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max);
		return -1;
	}
	return 0;
}

int
httpd_admit_init(struct httpd_admit *a, const struct httpd_limits *lim,
    const char *name, unsigned *mhd_limit, char *err, size_t errlen)
{
	pthread_condattr_t ca;

	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* see httpd_reaper */
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	httpd_limits_default(&a->lim, lim);
	/* MHD's own hard limit leaves room for shed connections that are
	 * still closing, so that it keeps accepting and we keep choosing. */
	*mhd_limit = a->lim.max_conns + a->lim.max_conns / 4 + 16;
	return httpd_fd_budget(*mhd_limit, err, errlen);
}

int
httpd_admit_start(struct httpd_admit *a, char *err, size_t errlen)
{
	if (pthread_create(&a->reaper, NULL, httpd_reaper, a) != 0) {
		snprintf(err, errlen,
		    "cannot start the connection reaper thread");
		return -1;
	}
	a->reaper_on = true;
	return 0;
}

void
httpd_admit_stop(struct httpd_admit *a)
{
	if (!a->reaper_on)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->reaper, NULL);
	a->reaper_on = false;
}

void
httpd_admit_fini(struct httpd_admit *a)
{
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
}
