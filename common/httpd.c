/* Mutual-TLS HTTPS server on libmicrohttpd; see httpd.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/httpd.h"
#include "common/httpd_admit.h"
#include "common/log.h"
#include "common/tlsid.h"

#define HTTPD_MAX_PEM (256 * 1024)

/* Per connection thread: handlers use little stack, and small stacks stay
 * in glibc's stack cache, so a connection flood does not mmap/munmap 8 MiB
 * per connection. */
#define HTTPD_STACK (512 * 1024)

struct httpd {
	struct MHD_Daemon *d;
	struct httpd_admit adm; /* connection list and limits */
	httpd_handler	   h;
	void		  *ctx;
	char		  *cert_pem;
	char		  *key_pem;
	char		  *ca_pem;
	size_t		   max_body;
	uint16_t	   port;
	bool		   tls;
	char		   name[32];
};

/* Per request: the body being received. */
struct httpd_rq {
	struct buf body;
	bool	   too_big;
};

static char *
httpd_read_file(const char *path, char *err, size_t errlen)
{
	FILE  *f;
	char  *p;
	size_t n;

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
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL)
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
}

static gnutls_session_t
httpd_session(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	return ci ? (gnutls_session_t)ci->tls_session : NULL;
}

/* Subject CN of the client certificate (chain verified in the handshake);
 * "" when it cannot be read. */
static void
httpd_peer_cn(gnutls_session_t s, char *out, size_t outlen)
{
	char why[TLSID_WHYLEN];

	(void)tlsid_gnutls_peer(s, false, out, outlen, why, sizeof(why));
}

/* MHD's messages: handshake noise goes to debug, our closer says why. */
static void
httpd_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("%s: libmicrohttpd: %s", ((struct httpd *)cls)->name, msg);
}

static void
httpd_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	struct httpd	  *d = cls;
	struct httpd_conn *hc = *socket_ctx;
	gnutls_session_t   s;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((hc = httpd_admit_conn_new(&d->adm, c)) == NULL) {
			httpd_conn_fd_shut(c);
			return;
		}
		*socket_ctx = hc;
		if (d->tls && (s = httpd_session(c)) != NULL) {
			/* MHD only requests a certificate: demand and verify one. */
			tlsid_gnutls_require_client(s);
		}
		return;
	}
	if (hc == NULL)
		return;
	httpd_admit_conn_gone(&d->adm, hc);
	if (d->tls && hc->requests == 0 && !hc->shed) {
		char cn[ETSI_ID_MAX + 1], why[TLSID_WHYLEN];

		if (tlsid_refusal(httpd_session(c), why, sizeof(why)) == 0 ||
		    tlsid_gnutls_peer(httpd_session(c), false, cn, sizeof(cn),
			why, sizeof(why)) == -1)
			log_info(
			    "%s: connection from %s closed without a request: "
			    "client certificate refused: %s",
			    d->name, hc->addr, why);
		else
			log_debug("%s: connection from %s (CN \"%s\") closed "
				  "without a request",
			    d->name, hc->addr, cn);
	}
	free(hc);
	*socket_ctx = NULL;
}

static void
httpd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct httpd	*d = cls;
	struct httpd_rq *rq = *con_cls;

	(void)httpd_admit_set_state(&d->adm, c, HC_IDLE);
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
	struct MHD_Response *r;
	enum MHD_Result	     ret;
	size_t		     len;

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
	resp->secret = false;
	resp->body = etsi_error_dump(msg, detail);
	return resp->body ? 0 : -1;
}

/*
 * Checks made before any handler (even one that ignores the body) sees the
 * request: the body's size, then, as every body served here is JSON, its
 * nesting. 0 when it passes (the body NUL-terminated), 1 when resp holds the
 * refusal, -1 when out of memory.
 */
static int
httpd_body_check(struct httpd *d, struct httpd_rq *rq, const char *method,
    const char *url, const char *addr, struct httpd_resp *resp)
{
	char msg[64];

	if (rq->too_big) {
		log_info(
		    "%s: %s %s from %s: body larger than %zu bytes refused",
		    d->name, method, url, addr, d->max_body);
		return httpd_error(resp, 413, "request body too large", NULL) ==
			-1 ?
		    -1 :
		    1;
	}
	if (buf_add(&rq->body, "", 1) == -1) /* NUL terminator */
		return -1;
	if (etsi_json_depth_ok((const char *)rq->body.data, rq->body.len - 1,
		ETSI_JSON_MAX_DEPTH))
		return 0;
	log_info("%s: %s %s from %s: body nested deeper than %d levels "
		 "refused",
	    d->name, method, url, addr, ETSI_JSON_MAX_DEPTH);
	snprintf(msg, sizeof(msg), "JSON nested deeper than %d levels",
	    ETSI_JSON_MAX_DEPTH);
	return httpd_error(resp, 400, msg, NULL) == -1 ? -1 : 1;
}

/* Runs the handler; its failure becomes a 500 with a generic body. */
static int
httpd_handle(struct httpd *d, struct MHD_Connection *c, struct httpd_rq *rq,
    const char *method, const char *url, const struct httpd_conn *hc,
    struct httpd_resp *resp)
{
	struct httpd_req req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.peer_cn = hc ? hc->cn : "";
	req.body_len = rq->body.len - 1;
	req.body = req.body_len ? (const char *)rq->body.data : NULL;
	req.conn = c;
	if (d->h(d->ctx, &req, resp) == 0)
		return 0;
	if (resp->body)
		resp->secret ? sec_free_any(resp->body) : free(resp->body);
	memset(resp, 0, sizeof(*resp));
	return httpd_error(resp, 500, "internal error", NULL);
}

static enum MHD_Result
httpd_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **con_cls)
{
	struct httpd	  *d = cls;
	struct httpd_rq	  *rq = *con_cls;
	struct httpd_conn *hc = NULL;
	struct httpd_resp  resp;
	int		   rc;

	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		buf_init(&rq->body, d->max_body + 1);
		*con_cls = rq;
		(void)httpd_admit_set_state(&d->adm, c, HC_BODY);
		return MHD_YES;
	}
	if (*upload_len != 0) {
		/* max_body counts the body; the buffer keeps one more byte for
		 * the NUL that handlers rely on. */
		if (!rq->too_big &&
		    (*upload_len > d->max_body - rq->body.len ||
			buf_add(&rq->body, upload, *upload_len) == -1)) {
			rq->too_big = true;
			buf_free(&rq->body);
		}
		*upload_len = 0;
		return MHD_YES;
	}

	hc = httpd_admit_set_state(&d->adm, c, HC_BUSY);
	if (hc != NULL) {
		hc->requests++;
		if (d->tls && !hc->cn_read) {
			httpd_peer_cn(httpd_session(c), hc->cn, sizeof(hc->cn));
			hc->cn_read = true;
		}
	}
	memset(&resp, 0, sizeof(resp));
	rc = httpd_body_check(d, rq, method, url, hc ? hc->addr : "?", &resp);
	if (rc == 0)
		rc = httpd_handle(d, c, rq, method, url, hc, &resp);
	if (rc == -1)
		return MHD_NO;
	return httpd_send(c, &resp);
}

struct httpd_qscan {
	const char *key;
	const char *val;
	unsigned    seen;
	unsigned    total;
};

static enum MHD_Result
httpd_qiter(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct httpd_qscan *q = cls;

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
	struct httpd_qscan q = { key, NULL, 0, 0 };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, httpd_qiter,
	    &q);
	if (multiple)
		*multiple = q.seen > 1;
	return q.val;
}

unsigned
httpd_query_count(const struct httpd_req *req)
{
	struct httpd_qscan q = { NULL, NULL, 0, 0 };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, httpd_qiter,
	    &q);
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
	httpd_admit_fini(&d->adm);
	free(d);
}

/* The server's certificate, key and the client CA, read into memory. */
static int
httpd_load_pems(struct httpd *d, const struct httpd_cfg *cfg, char *err,
    size_t errlen)
{
	if ((d->cert_pem = httpd_read_file(cfg->cert_file, err, errlen)) ==
		NULL ||
	    (d->key_pem = httpd_read_file(cfg->key_file, err, errlen)) ==
		NULL ||
	    (d->ca_pem = httpd_read_file(cfg->ca_file, err, errlen)) == NULL)
		return -1;
	return 0;
}

/* Starts libmicrohttpd on cfg's address: 0, or -1 with a message in err. */
static int
httpd_mhd_start(struct httpd *d, const struct httpd_cfg *cfg,
    unsigned mhd_limit, char *err, size_t errlen)
{
	struct sockaddr_in	    sin;
	const union MHD_DaemonInfo *di;
	unsigned		    flags;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(cfg->port);
	if (inet_pton(AF_INET, cfg->host ? cfg->host : "127.0.0.1",
		&sin.sin_addr) != 1) {
		snprintf(err, errlen,
		    "listen address \"%s\" is not an IPv4 address", cfg->host);
		return -1;
	}
	flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
	    MHD_USE_ERROR_LOG;
	if (d->tls)
		flags |= MHD_USE_TLS;
	d->d = MHD_start_daemon(flags, 0, httpd_admit_accept, &d->adm,
	    httpd_access, d, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_EXTERNAL_LOGGER, httpd_mhd_log, d,
	    MHD_OPTION_NOTIFY_CONNECTION, httpd_notify, d,
	    MHD_OPTION_NOTIFY_COMPLETED, httpd_completed, d,
	    MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, d->adm.lim.idle_s,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTPD_STACK,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
	    d->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, d->cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, d->key_pem, MHD_OPTION_HTTPS_MEM_TRUST,
	    d->ca_pem, MHD_OPTION_HTTPS_PRIORITIES,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_END);
	if (d->d == NULL) {
		snprintf(err, errlen,
		    "cannot listen on %s:%u (address in use, or "
		    "bad certificate/key)",
		    cfg->host, cfg->port);
		return -1;
	}
	di = MHD_get_daemon_info(d->d, MHD_DAEMON_INFO_BIND_PORT);
	d->port = di ? di->port : cfg->port;
	return 0;
}

struct httpd *
httpd_start(const struct httpd_cfg *cfg, httpd_handler h, void *ctx, char *err,
    size_t errlen)
{
	struct httpd *d;
	unsigned      mhd_limit;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(d->name, sizeof(d->name), "%s",
	    cfg->name ? cfg->name : "httpd");
	if (httpd_admit_init(&d->adm, &cfg->lim, d->name, &mhd_limit, err,
		errlen) == -1)
		goto fail;
	d->h = h;
	d->ctx = ctx;
	d->max_body = cfg->max_body ? cfg->max_body : 64 * 1024;
	d->tls = cfg->cert_file != NULL;
	if (d->tls && httpd_load_pems(d, cfg, err, errlen) == -1)
		goto fail;
	if (httpd_mhd_start(d, cfg, mhd_limit, err, errlen) == -1 ||
	    httpd_admit_start(&d->adm, err, errlen) == -1)
		goto fail;
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
	httpd_admit_stop(&d->adm);
	if (d->d)
		MHD_stop_daemon(d->d);
	httpd_free(d);
}
