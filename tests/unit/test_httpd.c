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
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "common/buf.h"
#include "common/httpd.h"

static char	pki[64];

/* Echoes what the server saw as JSON-ish text. */
static int
echo(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	const char	*q = httpd_query(req, "x", NULL);
	char		 out[512];

	snprintf(out, sizeof(out), "cn=%s method=%s path=%s x=%s n=%u body=%zu",
	    req->peer_cn, req->method, req->path, q ? q : "-",
	    httpd_query_count(req), req->body_len);
	resp->status = 200;
	resp->content_type = "text/plain";
	resp->body = strdup(out);
	return resp->body ? 0 : -1;
}

struct sink {
	char	buf[1024];
	size_t	len;
};

static size_t
sink_write(char *p, size_t sz, size_t n, void *arg)
{
	struct sink	*s = arg;
	size_t		 k = sz * n;

	if (k > sizeof(s->buf) - 1 - s->len)
		k = sizeof(s->buf) - 1 - s->len;
	memcpy(s->buf + s->len, p, k);
	s->len += k;
	s->buf[s->len] = '\0';
	return sz * n;
}

/* One request; returns the HTTP status or -1 on a transport/TLS failure. */
static long
get(uint16_t port, int tls, const char *who, const char *path,
    const char *body, size_t body_len, struct sink *out)
{
	CURL	*c = curl_easy_init();
	char	 url[256], cert[128], key[128], ca[128];
	long	 code = -1;

	memset(out, 0, sizeof(*out));
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", tls ? "https" : "http",
	    port, path);
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
start(int tls, size_t max_body)
{
	struct httpd_cfg	cfg;
	char			cert[128], key[128], ca[128], err[256];
	struct httpd		*d;

	memset(&cfg, 0, sizeof(cfg));
	cfg.host = "127.0.0.1";
	cfg.max_body = max_body;
	cfg.name = "test";
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
	struct httpd	*d = start(1, 1024);
	struct sink	 s;

	assert_int_equal(get(httpd_port(d), 1, "sae-a", "/p/q?x=1&y=2", NULL, 0,
	    &s), 200);
	assert_string_equal(s.buf, "cn=sae-a method=GET path=/p/q x=1 n=2 body=0");
	assert_int_equal(get(httpd_port(d), 1, "sae-x", "/", "abc", 3, &s), 200);
	assert_string_equal(s.buf, "cn=sae-x method=POST path=/ x=- n=0 body=3");
	httpd_stop(d);
}

static void
test_mtls_refusals(void **state)
{
	struct httpd	*d = start(1, 1024);
	struct sink	 s;

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
	struct httpd	*d = start(1, 16);
	struct sink	 s;
	char		 big[64];

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
	struct httpd	*d = start(1, 64 * 1024);
	struct sink	 s;
	char		*deep = malloc(20001);
	size_t		 n = 0;

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

static void
test_plain(void **state)
{
	struct httpd	*d = start(0, 1024);
	struct sink	 s;

	assert_int_equal(get(httpd_port(d), 0, NULL, "/m?x=%41", NULL, 0, &s), 200);
	assert_string_equal(s.buf, "cn= method=GET path=/m x=A n=1 body=0");
	httpd_stop(d);
	httpd_stop(NULL);
}

static int
setup(void **state)
{
	char	cmd[160];

	snprintf(pki, sizeof(pki), "/tmp/test_httpd.%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "sh certs/mkcerts.sh %s", pki);
	if (system(cmd) != 0)
		return -1;
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	char	cmd[160];

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
		cmocka_unit_test(test_plain),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
