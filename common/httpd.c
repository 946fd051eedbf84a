/* Mutual-TLS HTTPS server on libmicrohttpd; see httpd.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/httpd.h"
#include "common/log.h"

#define HTTPD_MAX_PEM	(256 * 1024)

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
};

/* Per TCP connection: the verified peer identity, read once. */
struct httpd_conn {
	char		cn[ETSI_ID_MAX + 1];
	int		cn_read;
	unsigned	requests;
	char		addr[64];
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

static void
httpd_peer_addr(struct MHD_Connection *c, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo	*ci;
	const struct sockaddr_in	*sin;
	char				 ip[INET_ADDRSTRLEN] = "?";

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL ||
	    ci->client_addr->sa_family != AF_INET) {
		snprintf(out, outlen, "?");
		return;
	}
	sin = (const struct sockaddr_in *)(const void *)ci->client_addr;
	inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	snprintf(out, outlen, "%s:%u", ip, ntohs(sin->sin_port));
}

static gnutls_session_t
httpd_session(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo	*ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	return ci ? (gnutls_session_t)ci->tls_session : NULL;
}

/* Subject CN of the (already verified) client certificate. */
static int
httpd_peer_cn(gnutls_session_t s, char *out, size_t outlen)
{
	const gnutls_datum_t	*certs;
	gnutls_x509_crt_t	 crt;
	unsigned		 n = 0;
	size_t			 len = outlen;
	int			 rc = -1;

	out[0] = '\0';
	if (s == NULL || (certs = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0)
		return -1;
	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
	    out, &len) >= 0)
		rc = 0;
	gnutls_x509_crt_deinit(crt);
	if (rc == -1)
		out[0] = '\0';
	return rc;
}

/* MHD's own messages: handshake noise goes to debug, our closer says why. */
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
		if ((hc = calloc(1, sizeof(*hc))) == NULL)
			return;
		httpd_peer_addr(c, hc->addr, sizeof(hc->addr));
		*socket_ctx = hc;
		if (d->tls && (s = httpd_session(c)) != NULL) {
			/* MHD only requests a certificate: demand and verify one. */
			gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
			gnutls_session_set_verify_cert(s, NULL, 0);
		}
		return;
	}
	if (hc == NULL)
		return;
	if (d->tls && hc->requests == 0) {
		char	cn[ETSI_ID_MAX + 1];

		if (httpd_peer_cn(httpd_session(c), cn, sizeof(cn)) == -1)
			log_info("%s: connection from %s closed without a request: "
			    "no client certificate, or the TLS handshake failed",
			    d->name, hc->addr);
		else
			log_info("%s: connection from %s closed without a request: "
			    "client certificate CN \"%s\" refused (not issued by "
			    "the trusted CA?)", d->name, hc->addr, cn);
	}
	free(hc);
	*socket_ctx = NULL;
}

static void
httpd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct httpd_rq	*rq = *con_cls;

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
	const union MHD_ConnectionInfo *ci;
	struct httpd_req	 req;
	struct httpd_resp	 resp;

	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		buf_init(&rq->body, d->max_body + 1);
		*con_cls = rq;
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

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL)
		hc = ci->socket_context;
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
	free(d);
}

struct httpd *
httpd_start(const struct httpd_cfg *cfg, httpd_handler h, void *ctx,
    char *err, size_t errlen)
{
	struct httpd			*d;
	struct sockaddr_in		 sin;
	const union MHD_DaemonInfo	*di;
	unsigned			 flags;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
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
	d->d = MHD_start_daemon(flags, 0, NULL, NULL, httpd_access, d,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_EXTERNAL_LOGGER, httpd_mhd_log, d,
	    MHD_OPTION_NOTIFY_CONNECTION, httpd_notify, d,
	    MHD_OPTION_NOTIFY_COMPLETED, httpd_completed, d,
	    MHD_OPTION_CONNECTION_LIMIT, cfg->max_conns ? cfg->max_conns : 512,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    cfg->max_conns_per_ip ? cfg->max_conns_per_ip : 128,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 60,
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
	return d;
fail:
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
	if (d->d)
		MHD_stop_daemon(d->d);
	httpd_free(d);
}
