/* Unit tests for common/httpd: mutual TLS on a real listener (test PKI from
 * certs/mkcerts.sh), identity from the client certificate, query
 * parameters, body limits, and the plain-HTTP mode. Run from the repo root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "common/buf.h"
#include "common/httpd.h"

static char pki[64];

/* Echoes what the server saw as JSON-ish text. */
static int
echo(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	const char *q = httpd_query(req, "x", NULL);
	char	    out[512];

	snprintf(out, sizeof(out), "cn=%s method=%s path=%s x=%s n=%u body=%zu",
	    req->peer_cn, req->method, req->path, q ? q : "-",
	    httpd_query_count(req), req->body_len);
	resp->status = 200;
	resp->content_type = "text/plain";
	resp->body = strdup(out);
	return resp->body ? 0 : -1;
}

struct sink {
	char   buf[1024];
	size_t len;
};

static size_t
sink_write(char *p, size_t sz, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t	     k = sz * n;

	if (k > sizeof(s->buf) - 1 - s->len)
		k = sizeof(s->buf) - 1 - s->len;
	memcpy(s->buf + s->len, p, k);
	s->len += k;
	s->buf[s->len] = '\0';
	return sz * n;
}

/* One request; returns the HTTP status or -1 on a transport/TLS failure. */
static long
get(uint16_t port, int tls, const char *who, const char *path, const char *body,
    size_t body_len, struct sink *out)
{
	CURL *c = curl_easy_init();
	char  url[256], cert[128], key[128], ca[128];
	long  code = -1;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s",
	    tls ? "https" : "http", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (tls) {
		snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
		if (who != NULL) {
			snprintf(cert, sizeof(cert), "%s/%s.crt", pki, who);
			snprintf(key, sizeof(key), "%s/%s.key", pki, who);
			curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
			curl_easy_setopt(c, CURLOPT_SSLKEY, key);
		}
	}
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	return code;
}

static struct httpd *
start_lim(int tls, size_t max_body, const struct httpd_limits *lim);

static struct httpd *
start(int tls, size_t max_body)
{
	return start_lim(tls, max_body, NULL);
}

static struct httpd *
start_lim(int tls, size_t max_body, const struct httpd_limits *lim)
{
	struct httpd_cfg cfg;
	char		 cert[128], key[128], ca[128], err[256];
	struct httpd	*d;

	memset(&cfg, 0, sizeof(cfg));
	cfg.host = "127.0.0.1";
	cfg.max_body = max_body;
	cfg.name = "test";
	if (lim != NULL)
		cfg.lim = *lim;
	if (tls) {
		snprintf(cert, sizeof(cert), "%s/kme-a.crt", pki);
		snprintf(key, sizeof(key), "%s/kme-a.key", pki);
		snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
		cfg.cert_file = cert;
		cfg.key_file = key;
		cfg.ca_file = ca;
	}
	d = httpd_start(&cfg, echo, NULL, err, sizeof(err));
	assert_non_null(d);
	assert_true(httpd_port(d) > 0);
	return d;
}

static void
test_mtls_identity(void **state)
{
	struct httpd *d = start(1, 1024);
	struct sink   s;

	assert_int_equal(get(httpd_port(d), 1, "sae-a", "/p/q?x=1&y=2", NULL, 0,
			     &s),
	    200);
	assert_string_equal(s.buf,
	    "cn=sae-a method=GET path=/p/q x=1 n=2 body=0");
	assert_int_equal(get(httpd_port(d), 1, "sae-x", "/", "abc", 3, &s),
	    200);
	assert_string_equal(s.buf,
	    "cn=sae-x method=POST path=/ x=- n=0 body=3");
	httpd_stop(d);
}

static void
test_mtls_refusals(void **state)
{
	struct httpd *d = start(1, 1024);
	struct sink   s;

	/* No client certificate, and one from another CA: no HTTP at all. */
	assert_int_equal(get(httpd_port(d), 1, NULL, "/", NULL, 0, &s), -1);
	assert_int_equal(get(httpd_port(d), 1, "rogue", "/", NULL, 0, &s), -1);
	/* Plain HTTP on the TLS port is not served either. */
	assert_true(get(httpd_port(d), 0, NULL, "/", NULL, 0, &s) != 200);
	/* ... and the listener still serves the right client afterwards. */
	assert_int_equal(get(httpd_port(d), 1, "sae-b", "/", NULL, 0, &s), 200);
	assert_non_null(strstr(s.buf, "cn=sae-b"));
	httpd_stop(d);
}

static void
test_body_limit(void **state)
{
	struct httpd *d = start(1, 16);
	struct sink   s;
	char	      big[64];

	memset(big, 'a', sizeof(big));
	assert_int_equal(get(httpd_port(d), 1, "sae-a", "/", big, 16, &s), 200);
	assert_int_equal(get(httpd_port(d), 1, "sae-a", "/", big, 17, &s), 413);
	assert_non_null(strstr(s.buf, "\"message\""));
	httpd_stop(d);
}

/* Nesting past ETSI_JSON_MAX_DEPTH is a 400 with an ETSI Error body, for
 * any request (the echo handler ignores bodies, as GET handlers do). */
static void
test_json_depth(void **state)
{
	struct httpd *d = start(1, 64 * 1024);
	struct sink   s;
	char	     *deep = malloc(20001);
	size_t	      n = 0;

	assert_non_null(deep);
	for (int i = 0; i < 10000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 10000; i++)
		deep[n++] = ']';
	assert_int_equal(get(httpd_port(d), 1, "sae-a", "/", deep, n, &s), 400);
	assert_non_null(strstr(s.buf, "\"message\":\"JSON nested deeper than"));
	/* 33 levels refused, 32 served; brackets inside strings do not count. */
	n = 0;
	for (int i = 0; i < 32; i++)
		deep[n++] = '[';
	memcpy(deep + n, "\"[[[[[[[[\"", 10);
	n += 10;
	for (int i = 0; i < 32; i++)
		deep[n++] = ']';
	assert_int_equal(get(httpd_port(d), 1, "sae-a", "/", deep, n, &s), 200);
	deep[0] = '{';
	memmove(deep + 1, deep, n++);
	deep[0] = '[';
	assert_int_equal(get(httpd_port(d), 1, "sae-a", "/", deep, n, &s), 400);
	free(deep);
	httpd_stop(d);
}

/* A silent TCP connection from src; -1 if it cannot connect. */
static int
raw_conn(const char *src, uint16_t port)
{
	struct sockaddr_in a;
	int		   fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	inet_pton(AF_INET, src, &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	a.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 1 if the server closed fd within ms milliseconds. */
static int
closed_within(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char	      c;

	if (poll(&p, 1, ms) != 1)
		return 0;
	return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

static void
settle(void)
{
	struct timespec ts = { 0, 200 * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Limits: a third silent connection from one address (limit 2) is refused
 * while the first two are fresh; the total limit (4) makes room for another
 * address by shedding from the one holding the most; silent connections
 * end at the handshake deadline (1 s), not at the idle timeout (60 s).
 */
static void
test_conn_limits(void **state)
{
	struct httpd_limits lim = { 4, 2, 1, 60 };
	struct httpd	   *d = start_lim(1, 1024, &lim);
	struct sink	    s;
	int		    a[3], b[2], c;

	for (int i = 0; i < 2; i++) {
		assert_true((a[i] = raw_conn("127.0.0.2", httpd_port(d))) >= 0);
		settle();
	}
	assert_true((a[2] = raw_conn("127.0.0.2", httpd_port(d))) >= 0);
	assert_true(closed_within(a[2], 500)); /* refused */
	assert_false(closed_within(a[0], 0));
	assert_false(closed_within(a[1], 0));
	for (int i = 0; i < 2; i++)
		assert_true((b[i] = raw_conn("127.0.0.3", httpd_port(d))) >= 0);
	settle();
	/* 4 held: a fifth address is served; one of 127.0.0.2/.3 goes, and
	 * the oldest silent one (a[0]) is the first choice. */
	assert_int_equal(get(httpd_port(d), 1, "sae-a", "/", NULL, 0, &s), 200);
	assert_true(closed_within(a[0], 500));
	assert_false(closed_within(b[0], 0));
	/* A new one from an address already holding 2 fresh ones: refused. */
	assert_true((c = raw_conn("127.0.0.3", httpd_port(d))) >= 0);
	assert_true(closed_within(c, 500));
	close(c);
	/* The handshake deadline: everything silent is gone within ~1.5 s. */
	assert_true(closed_within(a[1], 1600));
	assert_true(closed_within(b[0], 600));
	assert_true(closed_within(b[1], 600));
	for (int i = 0; i < 3; i++)
		close(a[i]);
	for (int i = 0; i < 2; i++)
		close(b[i]);
	httpd_stop(d);
}

static void
test_limits_set(void **state)
{
	struct httpd_limits l;
	char		    err[128];

	memset(&l, 0, sizeof(l));
	assert_int_equal(httpd_limits_set(&l, "max_conns", "100", err,
			     sizeof(err)),
	    0);
	assert_int_equal(httpd_limits_set(&l, "max_conns_per_ip", "10", err,
			     sizeof(err)),
	    0);
	assert_int_equal(httpd_limits_set(&l, "handshake_timeout_s", "5", err,
			     sizeof(err)),
	    0);
	assert_int_equal(httpd_limits_set(&l, "idle_timeout_s", "30", err,
			     sizeof(err)),
	    0);
	assert_int_equal(l.max_conns, 100);
	assert_int_equal(l.max_conns_per_ip, 10);
	assert_int_equal(l.handshake_s, 5);
	assert_int_equal(l.idle_s, 30);
	assert_int_equal(httpd_limits_set(&l, "handshake_timeout_s", "0", err,
			     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "handshake_timeout_s"));
	assert_int_equal(httpd_limits_set(&l, "max_conns", "x", err,
			     sizeof(err)),
	    -1);
	assert_int_equal(httpd_limits_set(&l, "listen", "x", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "listen"));
	assert_int_equal(l.max_conns, 100); /* the refused ones changed none */
}

/* A limit that cannot fit the descriptor limit is refused at start. */
static void
test_fd_budget(void **state)
{
	struct httpd_limits lim = { 100000, 64, 3, 60 };
	struct httpd_cfg    cfg;
	struct rlimit	    old, rl;
	char		    err[256];

	/* 100,000 connections need more than this machine's hard limit. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	assert_true(old.rlim_max < 100000);
	memset(&cfg, 0, sizeof(cfg));
	cfg.host = "127.0.0.1";
	cfg.lim = lim;
	assert_null(httpd_start(&cfg, echo, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "RLIMIT_NOFILE is"));
	assert_non_null(strstr(err, "lower max_conns"));
	/* Soft below what 256 connections need, hard above: raised to hard
	 * (the hard limit is left alone: lowering it is for good). */
	rl = old;
	rl.rlim_cur = 100;
	lim.max_conns = 256;
	cfg.lim = lim;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	httpd_stop(httpd_start(&cfg, echo, NULL, err, sizeof(err)));
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(rl.rlim_cur, old.rlim_max);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

static void
test_plain(void **state)
{
	struct httpd *d = start(0, 1024);
	struct sink   s;

	assert_int_equal(get(httpd_port(d), 0, NULL, "/m?x=%41", NULL, 0, &s),
	    200);
	assert_string_equal(s.buf, "cn= method=GET path=/m x=A n=1 body=0");
	httpd_stop(d);
	httpd_stop(NULL);
}

static int
setup(void **state)
{
	char cmd[160];

	snprintf(pki, sizeof(pki), "/tmp/test_httpd.%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "sh certs/mkcerts.sh %s", pki);
	if (system(cmd) != 0)
		return -1;
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[160];

	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mtls_identity),
		cmocka_unit_test(test_mtls_refusals),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_conn_limits),
		cmocka_unit_test(test_limits_set),
		cmocka_unit_test(test_fd_budget),
		cmocka_unit_test(test_plain),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
