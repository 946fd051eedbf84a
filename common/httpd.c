/* Mutual-TLS HTTPS server on libmicrohttpd; see httpd.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/etsi.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/tlsid.h"

#define HTTPD_MAX_PEM	(256 * 1024)

#define HTTPD_FD_RESERVE	128	/* fds kept for the rest of the process */
#define HTTPD_REAP_MS		250	/* deadline check period */
#define HTTPD_REPORT_S		10	/* shedding summary period */
#define HTTPD_STALE_MS		1000	/* see httpd_swap_ok */
/* Per connection thread: handlers use little stack, and small stacks stay
 * in glibc's stack cache, so a connection flood does not mmap/munmap 8 MiB
 * per connection. */
#define HTTPD_STACK		(512 * 1024)

/* Where a connection is; decides what is shed first and its deadline. */
enum httpd_cstate {
	HC_NEW,		/* TLS handshake or first request headers */
	HC_IDLE,	/* between requests (or slowly sending headers) */
	HC_BODY,	/* headers in, body arriving */
	HC_BUSY,	/* handler running or answer being sent: never shed */
};

/* Per TCP connection: the verified peer identity, read once, and where it
 * stands for the limits (state fields under httpd.mu). */
struct httpd_conn {
	char			 cn[ETSI_ID_MAX + 1];
	int			 cn_read;
	unsigned		 requests;
	char			 addr[64];
	struct httpd_conn	*prev, *next;	/* httpd.conns */
	uint32_t		 ip;		/* IPv4, network order */
	int			 fd;
	enum httpd_cstate	 state;
	uint64_t		 since_ns;	/* state entered, monotonic */
	int			 shed;		/* shut down by us, closing */
};

struct httpd_counts {
	unsigned long	 shed_ip, shed_total, refused, handshake, slow;
};

struct httpd {
	struct MHD_Daemon	*d;
	httpd_handler		 h;
	void			*ctx;
	char			*cert_pem;
	char			*key_pem;
	char			*ca_pem;
	size_t			 max_body;
	uint16_t		 port;
	int			 tls;
	char			 name[32];
	struct httpd_limits	 lim;
	pthread_mutex_t		 mu;		/* conns, nconns, counts, stop */
	pthread_cond_t		 cv;
	struct httpd_conn	*conns;
	unsigned		 nconns;	/* in conns and not shed */
	struct httpd_counts	 cnt, reported;
	int			 reserved;	/* nconns holds an accepted one */
	int			 stop;
	int			 reaper_on;
	pthread_t		 reaper;
};

/* Per request: the body being received. */
struct httpd_rq {
	struct buf	body;
	int		too_big;
};

static char *
httpd_read_file(const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	*p;
	size_t	 n;

	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "cannot open \"%s\": %m", path);
		return NULL;
	}
	if ((p = malloc(HTTPD_MAX_PEM + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(p, 1, HTTPD_MAX_PEM + 1, f);
	fclose(f);
	if (n == 0 || n > HTTPD_MAX_PEM) {
		snprintf(err, errlen, "\"%s\" is empty or larger than %d bytes",
		    path, HTTPD_MAX_PEM);
		sec_free(p, HTTPD_MAX_PEM + 1);
		return NULL;
	}
	p[n] = '\0';
	return p;
}

/* Shuts a connection's socket down (MHD then drops it). */
static void
httpd_conn_fd_shut(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
}

/* Peer address ("ip:port" for logs, the IPv4 for the limits) and socket. */
static void
httpd_peer_addr(struct MHD_Connection *c, struct httpd_conn *hc, size_t outlen)
{
	const union MHD_ConnectionInfo	*ci;
	const struct sockaddr_in	*sin;
	char				 ip[INET_ADDRSTRLEN] = "?";

	hc->fd = -1;
	hc->state = HC_NEW;
	hc->since_ns = time_mono_ns();
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		hc->fd = ci->connect_fd;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL ||
	    ci->client_addr->sa_family != AF_INET) {
		snprintf(hc->addr, outlen, "?");
		return;
	}
	sin = (const struct sockaddr_in *)(const void *)ci->client_addr;
	hc->ip = sin->sin_addr.s_addr;
	inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	snprintf(hc->addr, outlen, "%s:%u", ip, ntohs(sin->sin_port));
}

static gnutls_session_t
httpd_session(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	return ci ? (gnutls_session_t)ci->tls_session : NULL;
}

/* Subject CN of the client certificate (chain verified in the handshake). */
static int
httpd_peer_cn(gnutls_session_t s, char *out, size_t outlen)
{
	char	why[TLSID_WHYLEN];

	return tlsid_gnutls_peer(s, 0, out, outlen, why, sizeof(why));
}

/* ------------------------------------------------ connection limits */

int
httpd_limits_set(struct httpd_limits *l, const char *name, const char *value,
    char *err, size_t errlen)
{
	if (strcmp(name, "max_conns") == 0)
		return cfg_uint(&l->max_conns, name, value, 1, 100000, err, errlen);
	if (strcmp(name, "max_conns_per_ip") == 0)
		return cfg_uint(&l->max_conns_per_ip, name, value, 1, 100000, err,
		    errlen);
	if (strcmp(name, "handshake_timeout_s") == 0)
		return cfg_uint(&l->handshake_s, name, value, 1, 60, err, errlen);
	if (strcmp(name, "idle_timeout_s") == 0)
		return cfg_uint(&l->idle_s, name, value, 1, 86400, err, errlen);
	return 1;
}

/* Closes c's socket under MHD: its thread sees EOF and closes the
 * connection. The fd stays valid until NOTIFY_CLOSED, which takes d->mu
 * before MHD closes it, so it is never somebody else's fd here. */
static void
httpd_shed(struct httpd *d, struct httpd_conn *c, const char *why)
{
	if (c->shed)
		return;
	c->shed = 1;
	d->nconns--;
	(void)shutdown(c->fd, SHUT_RDWR);
	log_debug("%s: connection from %s closed: %s", d->name, c->addr, why);
}

/* Shed order: NEW before IDLE before BODY, oldest first; BUSY never. */
static int
httpd_worse(const struct httpd_conn *a, const struct httpd_conn *b)
{
	if (b == NULL)
		return 1;
	if (a->state != b->state)
		return a->state < b->state;
	return a->since_ns < b->since_ns;
}

/* Least useful sheddable connection, of address ip (0: any); NULL if all
 * are busy. */
static struct httpd_conn *
httpd_victim(struct httpd *d, uint32_t ip)
{
	struct httpd_conn	*c, *v = NULL;

	for (c = d->conns; c != NULL; c = c->next)
		if (!c->shed && c->state != HC_BUSY && (ip == 0 || c->ip == ip) &&
		    httpd_worse(c, v))
			v = c;
	return v;
}

static unsigned
httpd_count_ip(struct httpd *d, uint32_t ip)
{
	struct httpd_conn	*c;
	unsigned		 n = 0;

	for (c = d->conns; c != NULL; c = c->next)
		n += !c->shed && c->ip == ip;
	return n;
}

static int
httpd_ip_cmp(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The address holding the most sheddable connections: sorted, then the
 * longest run; n log n, as this runs for every connection over the limit. */
static uint32_t
httpd_top_ip(struct httpd *d, unsigned *count)
{
	struct httpd_conn	*c;
	uint32_t		*ips, top = 0;
	size_t			 n = 0, i, run, best = 0;

	*count = 0;
	if ((ips = malloc((d->nconns + 1) * sizeof(*ips))) == NULL)
		return 0;
	for (c = d->conns; c != NULL && n <= d->nconns; c = c->next)
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
static int
httpd_swap_ok(const struct httpd_conn *v)
{
	return v != NULL && v->state != HC_NEW &&
	    time_mono_ns() - v->since_ns > HTTPD_STALE_MS * 1000000ull;
}

/*
 * Makes room for a new connection from ip, or says no (d->mu held). Over
 * the total limit the victim comes from the address holding the most (when
 * it holds more than the newcomer's address will), so that a flood from a
 * few addresses does not push out everybody else.
 */
static int
httpd_admit(struct httpd *d, uint32_t ip)
{
	struct httpd_conn	*v;
	unsigned		 n_ip = httpd_count_ip(d, ip), n_top;
	uint32_t		 top;

	if (n_ip >= d->lim.max_conns_per_ip) {
		if (!httpd_swap_ok(v = httpd_victim(d, ip)))
			goto refuse;
		d->cnt.shed_ip++;
		httpd_shed(d, v, "per-address connection limit");
		n_ip--;
	}
	if (d->nconns >= d->lim.max_conns) {
		top = httpd_top_ip(d, &n_top);
		/* A clear lead (not the +-1 of a balanced flood, whose swaps
		 * would each cost a thread and a TLS setup). */
		if (top != ip && n_top > n_ip + 1 + n_ip / 4)
			v = httpd_victim(d, top);
		else if (!httpd_swap_ok(v = httpd_victim(d, ip)))
			goto refuse;
		if (v == NULL)
			goto refuse;
		d->cnt.shed_total++;
		httpd_shed(d, v, "connection limit");
	}
	return 0;
refuse:
	d->cnt.refused++;
	return -1;
}

/* MHD's accept policy: runs before any thread or TLS state exists. The
 * admitted connection is counted from here; NOTIFY_STARTED lists it. */
static enum MHD_Result
httpd_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct httpd	*d = cls;
	uint32_t	 ip = 0;
	int		 rc;

	if (sa != NULL && sa->sa_family == AF_INET &&
	    len >= (socklen_t)sizeof(struct sockaddr_in))
		ip = ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr;
	pthread_mutex_lock(&d->mu);
	if (d->reserved)		/* MHD dropped the last one after accept */
		d->nconns--;
	rc = httpd_admit(d, ip);
	if (rc == 0)
		d->nconns++;	/* reserved until NOTIFY_STARTED or the next accept */
	d->reserved = rc == 0;
	pthread_mutex_unlock(&d->mu);
	return rc == 0 ? MHD_YES : MHD_NO;
}

/* A new connection joins the list, in the slot its accept reserved. */
static void
httpd_track(struct httpd *d, struct httpd_conn *hc)
{
	hc->next = d->conns;
	if (d->conns)
		d->conns->prev = hc;
	d->conns = hc;
	if (d->reserved)
		d->reserved = 0;
	else
		d->nconns++;
}

static void
httpd_untrack(struct httpd *d, struct httpd_conn *hc)
{
	pthread_mutex_lock(&d->mu);
	if (hc->prev)
		hc->prev->next = hc->next;
	else if (d->conns == hc)
		d->conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	if (!hc->shed)
		d->nconns--;
	pthread_mutex_unlock(&d->mu);
}

/* Moves the connection of MHD connection c to state st. */
static struct httpd_conn *
httpd_set_state(struct httpd *d, struct MHD_Connection *c, enum httpd_cstate st)
{
	const union MHD_ConnectionInfo	*ci;
	struct httpd_conn		*hc;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (hc = ci->socket_context) == NULL)
		return NULL;
	pthread_mutex_lock(&d->mu);
	hc->state = st;
	hc->since_ns = time_mono_ns();
	pthread_mutex_unlock(&d->mu);
	return hc;
}

/* Deadlines that no trickle of bytes extends (d->mu held). */
static void
httpd_reap(struct httpd *d)
{
	struct httpd_conn	*c;
	uint64_t		 now = time_mono_ns(), age;

	for (c = d->conns; c != NULL; c = c->next) {
		if (c->shed || c->state == HC_BUSY)
			continue;
		age = now - c->since_ns;
		if (c->state == HC_NEW &&
		    age > (uint64_t)d->lim.handshake_s * 1000000000ull) {
			d->cnt.handshake++;
			httpd_shed(d, c, "TLS handshake and first request not "
			    "done in time");
		} else if (c->state != HC_NEW &&
		    age > (uint64_t)d->lim.idle_s * 1000000000ull) {
			d->cnt.slow++;
			httpd_shed(d, c, c->state == HC_IDLE ? "idle" :
			    "request body not received in time");
		}
	}
}

/* One line per period in which something was shed (d->mu held). */
static void
httpd_report(struct httpd *d)
{
	struct httpd_counts	*n = &d->cnt, *o = &d->reported;

	if (memcmp(n, o, sizeof(*n)) == 0)
		return;
	log_info("%s: last %d s: shed %lu connection(s) over the per-address "
	    "limit %u and %lu over the limit %u, refused %lu new one(s) at "
	    "accept, closed %lu slow handshake(s) and %lu idle or slow "
	    "request(s); %u open", d->name, HTTPD_REPORT_S,
	    n->shed_ip - o->shed_ip, d->lim.max_conns_per_ip,
	    n->shed_total - o->shed_total, d->lim.max_conns,
	    n->refused - o->refused, n->handshake - o->handshake,
	    n->slow - o->slow, d->nconns);
	*o = *n;
}

static void *
httpd_reaper(void *arg)
{
	struct httpd	*d = arg;
	struct timespec	 ts;
	unsigned	 ticks = 0;

	pthread_mutex_lock(&d->mu);
	while (!d->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += HTTPD_REAP_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&d->cv, &d->mu, &ts);
		if (d->stop)
			break;
		httpd_reap(d);
		if (++ticks % (HTTPD_REPORT_S * 1000 / HTTPD_REAP_MS) == 0)
			httpd_report(d);
	}
	pthread_mutex_unlock(&d->mu);
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
	struct rlimit	rl;
	rlim_t		need = (rlim_t)mhd_limit + HTTPD_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need &&
	    rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		snprintf(err, errlen, "max_conns needs about %llu file descriptors "
		    "but RLIMIT_NOFILE is %llu (hard %llu): lower max_conns or "
		    "raise the limit (ulimit -n)", (unsigned long long)need,
		    (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max);
		return -1;
	}
	return 0;
}

/* MHD's messages: handshake noise goes to debug, our closer says why. */
static void
httpd_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char	msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("%s: libmicrohttpd: %s", ((struct httpd *)cls)->name, msg);
}

static void
httpd_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	struct httpd		*d = cls;
	struct httpd_conn	*hc = *socket_ctx;
	gnutls_session_t	 s;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((hc = calloc(1, sizeof(*hc))) == NULL) {
			httpd_conn_fd_shut(c);
			return;
		}
		httpd_peer_addr(c, hc, sizeof(hc->addr));
		*socket_ctx = hc;
		pthread_mutex_lock(&d->mu);
		httpd_track(d, hc);
		pthread_mutex_unlock(&d->mu);
		if (d->tls && (s = httpd_session(c)) != NULL) {
			/* MHD only requests a certificate: demand and verify one. */
			tlsid_gnutls_require_client(s);
		}
		return;
	}
	if (hc == NULL)
		return;
	httpd_untrack(d, hc);
	if (d->tls && hc->requests == 0 && !hc->shed) {
		char	cn[ETSI_ID_MAX + 1], why[TLSID_WHYLEN];

		if (tlsid_refusal(httpd_session(c), why, sizeof(why)) == 0 ||
		    tlsid_gnutls_peer(httpd_session(c), 0, cn, sizeof(cn), why,
		    sizeof(why)) == -1)
			log_info("%s: connection from %s closed without a request: "
			    "client certificate refused: %s", d->name, hc->addr, why);
		else
			log_debug("%s: connection from %s (CN \"%s\") closed "
			    "without a request", d->name, hc->addr, cn);
	}
	free(hc);
	*socket_ctx = NULL;
}

static void
httpd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct httpd_rq	*rq = *con_cls;

	(void)httpd_set_state(cls, c, HC_IDLE);
	if (rq == NULL)
		return;
	buf_free(&rq->body);
	free(rq);
	*con_cls = NULL;
}

static void
httpd_free_secret(void *p)
{
	sec_free_any(p);
}

static enum MHD_Result
httpd_send(struct MHD_Connection *c, struct httpd_resp *rs)
{
	struct MHD_Response	*r;
	enum MHD_Result		 ret;
	size_t			 len;

	if (rs->body == NULL)
		rs->body = strdup("{}");
	if (rs->body == NULL)
		return MHD_NO;
	len = strlen(rs->body);
	if (rs->secret)
		r = MHD_create_response_from_buffer_with_free_callback(len,
		    rs->body, httpd_free_secret);
	else
		r = MHD_create_response_from_buffer(len, rs->body,
		    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		rs->secret ? sec_free_any(rs->body) : free(rs->body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    rs->content_type ? rs->content_type : "application/json");
	ret = MHD_queue_response(c, (unsigned)rs->status, r);
	MHD_destroy_response(r);
	return ret;
}

int
httpd_error(struct httpd_resp *resp, int status, const char *msg,
    const char *detail)
{
	resp->status = status;
	resp->secret = 0;
	resp->body = etsi_error_dump(msg, detail);
	return resp->body ? 0 : -1;
}

static enum MHD_Result
httpd_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **con_cls)
{
	struct httpd		*d = cls;
	struct httpd_rq		*rq = *con_cls;
	struct httpd_conn	*hc = NULL;
	struct httpd_req	 req;
	struct httpd_resp	 resp;

	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		buf_init(&rq->body, d->max_body + 1);
		*con_cls = rq;
		(void)httpd_set_state(d, c, HC_BODY);
		return MHD_YES;
	}
	if (*upload_len != 0) {
		/* max_body counts the body; the buffer keeps one more byte for
		 * the NUL that handlers rely on. */
		if (!rq->too_big && (*upload_len > d->max_body - rq->body.len ||
		    buf_add(&rq->body, upload, *upload_len) == -1)) {
			rq->too_big = 1;
			buf_free(&rq->body);
		}
		*upload_len = 0;
		return MHD_YES;
	}

	hc = httpd_set_state(d, c, HC_BUSY);
	if (hc != NULL) {
		hc->requests++;
		if (d->tls && !hc->cn_read) {
			httpd_peer_cn(httpd_session(c), hc->cn, sizeof(hc->cn));
			hc->cn_read = 1;
		}
	}
	memset(&resp, 0, sizeof(resp));
	if (rq->too_big) {
		log_info("%s: %s %s from %s: body larger than %zu bytes refused",
		    d->name, method, url, hc ? hc->addr : "?", d->max_body);
		if (httpd_error(&resp, 413, "request body too large", NULL) == -1)
			return MHD_NO;
		return httpd_send(c, &resp);
	}
	if (buf_add(&rq->body, "", 1) == -1)	/* NUL terminator */
		return MHD_NO;
	/* Every body served here is JSON: refuse deep nesting before any
	 * handler (even one that ignores the body) sees it. */
	if (!etsi_json_depth_ok((const char *)rq->body.data, rq->body.len - 1,
	    ETSI_JSON_MAX_DEPTH)) {
		char	msg[64];

		log_info("%s: %s %s from %s: body nested deeper than %d levels "
		    "refused", d->name, method, url, hc ? hc->addr : "?",
		    ETSI_JSON_MAX_DEPTH);
		snprintf(msg, sizeof(msg), "JSON nested deeper than %d levels",
		    ETSI_JSON_MAX_DEPTH);
		if (httpd_error(&resp, 400, msg, NULL) == -1)
			return MHD_NO;
		return httpd_send(c, &resp);
	}
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.peer_cn = hc ? hc->cn : "";
	req.body_len = rq->body.len - 1;
	req.body = req.body_len ? (const char *)rq->body.data : NULL;
	req.conn = c;
	if (d->h(d->ctx, &req, &resp) == -1) {
		if (resp.body)
			resp.secret ? sec_free_any(resp.body) : free(resp.body);
		memset(&resp, 0, sizeof(resp));
		if (httpd_error(&resp, 500, "internal error", NULL) == -1)
			return MHD_NO;
	}
	return httpd_send(c, &resp);
}

struct httpd_qscan {
	const char	*key;
	const char	*val;
	unsigned	 seen;
	unsigned	 total;
};

static enum MHD_Result
httpd_qiter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct httpd_qscan	*q = cls;

	q->total++;
	if (q->key && strcmp(key, q->key) == 0) {
		if (q->seen++ == 0)
			q->val = value ? value : "";
	}
	return MHD_YES;
}

const char *
httpd_query(const struct httpd_req *req, const char *key, int *multiple)
{
	struct httpd_qscan	q = { key, NULL, 0, 0 };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, httpd_qiter, &q);
	if (multiple)
		*multiple = q.seen > 1;
	return q.val;
}

unsigned
httpd_query_count(const struct httpd_req *req)
{
	struct httpd_qscan	q = { NULL, NULL, 0, 0 };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, httpd_qiter, &q);
	return q.total;
}

static void
httpd_free(struct httpd *d)
{
	if (d == NULL)
		return;
	free(d->cert_pem);
	if (d->key_pem)
		sec_free(d->key_pem, HTTPD_MAX_PEM + 1);
	free(d->ca_pem);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
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

struct httpd *
httpd_start(const struct httpd_cfg *cfg, httpd_handler h, void *ctx,
    char *err, size_t errlen)
{
	struct httpd			*d;
	struct sockaddr_in		 sin;
	const union MHD_DaemonInfo	*di;
	pthread_condattr_t		 ca;
	unsigned			 flags, mhd_limit;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* see httpd_reaper */
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	httpd_limits_default(&d->lim, &cfg->lim);
	/* MHD's own hard limit leaves room for shed connections that are
	 * still closing, so that it keeps accepting and we keep choosing. */
	mhd_limit = d->lim.max_conns + d->lim.max_conns / 4 + 16;
	if (httpd_fd_budget(mhd_limit, err, errlen) == -1)
		goto fail;
	d->h = h;
	d->ctx = ctx;
	d->max_body = cfg->max_body ? cfg->max_body : 64 * 1024;
	d->tls = cfg->cert_file != NULL;
	snprintf(d->name, sizeof(d->name), "%s", cfg->name ? cfg->name : "httpd");
	if (d->tls) {
		if ((d->cert_pem = httpd_read_file(cfg->cert_file, err, errlen)) == NULL ||
		    (d->key_pem = httpd_read_file(cfg->key_file, err, errlen)) == NULL ||
		    (d->ca_pem = httpd_read_file(cfg->ca_file, err, errlen)) == NULL)
			goto fail;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(cfg->port);
	if (inet_pton(AF_INET, cfg->host ? cfg->host : "127.0.0.1",
	    &sin.sin_addr) != 1) {
		snprintf(err, errlen, "listen address \"%s\" is not an IPv4 address",
		    cfg->host);
		goto fail;
	}
	flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
	    MHD_USE_ERROR_LOG;
	if (d->tls)
		flags |= MHD_USE_TLS;
	d->d = MHD_start_daemon(flags, 0, httpd_accept, d, httpd_access, d,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_EXTERNAL_LOGGER, httpd_mhd_log, d,
	    MHD_OPTION_NOTIFY_CONNECTION, httpd_notify, d,
	    MHD_OPTION_NOTIFY_COMPLETED, httpd_completed, d,
	    MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, d->lim.idle_s,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTPD_STACK,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
	    d->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, d->cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, d->key_pem,
	    MHD_OPTION_HTTPS_MEM_TRUST, d->ca_pem,
	    MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
	    MHD_OPTION_END);
	if (d->d == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%u (address in use, or "
		    "bad certificate/key)", cfg->host, cfg->port);
		goto fail;
	}
	di = MHD_get_daemon_info(d->d, MHD_DAEMON_INFO_BIND_PORT);
	d->port = di ? di->port : cfg->port;
	if (pthread_create(&d->reaper, NULL, httpd_reaper, d) != 0) {
		snprintf(err, errlen, "cannot start the connection reaper thread");
		goto fail;
	}
	d->reaper_on = 1;
	return d;
fail:
	if (d->d)
		MHD_stop_daemon(d->d);
	httpd_free(d);
	return NULL;
}

uint16_t
httpd_port(const struct httpd *d)
{
	return d->port;
}

void
httpd_stop(struct httpd *d)
{
	if (d == NULL)
		return;
	if (d->reaper_on) {
		pthread_mutex_lock(&d->mu);
		d->stop = 1;
		pthread_cond_signal(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->reaper, NULL);
	}
	if (d->d)
		MHD_stop_daemon(d->d);
	httpd_free(d);
}
