/*
 * HTTPS server with mandatory mutual TLS on libmicrohttpd (GnuTLS), shared by
 * qkd-sim and kmsd. Clients without a certificate from the configured CA, or
 * whose certificate fails common/tlsid.h's checks (EKU, one valid CN), are
 * refused during the handshake; the client certificate's subject CN is read
 * once per connection and handed to every request as the caller's identity.
 * Thread per connection: handlers may block (the simulator waits for its peer).
 * Every request body must be JSON nested at most ETSI_JSON_MAX_DEPTH deep.
 */
#ifndef COMMON_HTTPD_H
#define COMMON_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct httpd;

struct httpd_req {
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* without the query string */
	const char
	    *peer_cn;	  /* client certificate CN; "" if none (plain mode) */
	const char *body; /* NUL-terminated; NULL if empty */
	size_t	    body_len;
	void	   *conn; /* for httpd_query() */
};

struct httpd_resp {
	int	    status;
	char	   *body;	  /* JSON text, owned by httpd after return */
	bool	    secret;	  /* body carries keys: wiped when sent */
	const char *content_type; /* default application/json */
};

/* Returns 0 after filling resp, or -1 for a 500 with a generic body. */
typedef int (*httpd_handler)(void *ctx, const struct httpd_req *req,
    struct httpd_resp *resp);

/*
 * Connection limits. A new connection over a limit sheds the least useful
 * connection (of its own address when the per-address limit is hit, else
 * of the address holding the most): one still in its TLS handshake or
 * before its first request (oldest first), then an idle keep-alive one
 * (longest idle first), then one still sending its request body. A
 * connection whose handler runs is never shed; when all are, the new one
 * is closed. Absolute deadlines, whatever trickle of bytes arrives: the
 * handshake and first request headers within handshake_s, a request body
 * and the wait between requests within idle_s. 0 fields take the defaults.
 */
struct httpd_limits {
	unsigned max_conns;	   /* default 256 */
	unsigned max_conns_per_ip; /* default 128 */
	unsigned handshake_s;	   /* default 3 */
	unsigned idle_s;	   /* default 60 */
};

#define HTTPD_MAX_CONNS_DEFAULT	       256
#define HTTPD_MAX_CONNS_PER_IP_DEFAULT 128
#define HTTPD_HANDSHAKE_S_DEFAULT      3
#define HTTPD_IDLE_S_DEFAULT	       60

/*
 * Config setter for the limits, shared by the daemons' config files:
 * max_conns, max_conns_per_ip, handshake_timeout_s, idle_timeout_s, with
 * the ranges of CFG_HTTPD_LIMITS (common/cfg.h). 0 when set, -1 with a
 * message in err (a bad value, or a name that is none of these).
 */
int httpd_limits_set(struct httpd_limits *l, const char *name,
    const char *value, char *err, size_t errlen);

struct httpd_cfg {
	const char *host;      /* IPv4 literal, e.g. 127.0.0.1 */
	uint16_t    port;      /* 0: pick a free one, see httpd_port() */
	const char *cert_file; /* server certificate (PEM); NULL = plain HTTP */
	const char *key_file;
	const char *ca_file;  /* CA that client certificates must chain to */
	size_t	    max_body; /* larger bodies get 413 with a JSON error */
	struct httpd_limits lim;
	const char	   *name; /* for logs, e.g. "api" */
};

/* Value of a query parameter, or NULL; multiple==1 if it appears twice. */
const char *
httpd_query(const struct httpd_req *req, const char *key, int *multiple);
/* Number of query parameters in the request. */
unsigned httpd_query_count(const struct httpd_req *req);

/*
 * Starts the listener. Raises the soft RLIMIT_NOFILE to the hard limit when
 * the connection limit needs it, and refuses limits that do not fit.
 */
struct httpd *httpd_start(const struct httpd_cfg *cfg, httpd_handler h,
    void *ctx, char *err, size_t errlen);
uint16_t      httpd_port(const struct httpd *d);
void	      httpd_stop(struct httpd *d); /* NULL ok */

/* Helpers for handlers: set an ETSI Error response (status 400/401/404/...). */
int httpd_error(struct httpd_resp *resp, int status, const char *msg,
    const char *detail);

#endif
