/*
 * libFuzzer target: an ETSI 014 request as qkd-sim and kmsd receive it, after
 * libmicrohttpd: routing of the path, the caller's identity, and the enc_keys
 * and dec_keys checks on the GET query or the POST body (common/etsiapi.c,
 * common/etsi_parse.c), then the Error body a refusal gets (common/httpd.c).
 *
 * Input: "METHOD TARGET [CN]\n" then the body, e.g.
 *   POST /api/v1/keys/sae-b/enc_keys sae-a
 *   {"number":2,"size":256}
 * TARGET's query (after '?') is split on '&' and '=' as libmicrohttpd
 * would, and handed to httpd_query() through MHD_get_connection_values,
 * which this file replaces.
 */
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "common/buf.h"
#include "common/etsiapi.h"
#include "fuzz/fuzz.h"

#define QMAX 16

/* The query of one request, as libmicrohttpd would hold it. */
struct fake_conn {
	const char *key[QMAX];
	const char *val[QMAX]; /* NULL: "key" without '=' */
	unsigned    n;
};

int
MHD_get_connection_values(struct MHD_Connection *connection,
    enum MHD_ValueKind kind, MHD_KeyValueIterator it, void *cls)
{
	struct fake_conn *q = (struct fake_conn *)connection;
	unsigned	  i;

	if (kind != MHD_GET_ARGUMENT_KIND)
		return 0;
	for (i = 0; i < q->n; i++)
		if (it != NULL &&
		    it(cls, kind, q->key[i], q->val[i]) != MHD_YES)
			return (int)i + 1;
	return (int)i;
}

/* Splits "a=1&b&c=" in place. */
static void
query_split(char *s, struct fake_conn *q)
{
	char *tok, *save = NULL, *eq;

	q->n = 0;
	for (tok = strtok_r(s, "&", &save); tok != NULL && q->n < QMAX;
	     tok = strtok_r(NULL, "&", &save)) {
		if ((eq = strchr(tok, '=')) != NULL)
			*eq++ = '\0';
		q->key[q->n] = tok;
		q->val[q->n++] = eq;
	}
}

static void
resp_free(struct httpd_resp *r)
{
	if (r->body != NULL)
		r->secret ? sec_free_any(r->body) : free(r->body);
	memset(r, 0, sizeof(*r));
}

/* What qkd-sim's and kmsd's handlers do before they touch keys. */
static void
handle(const struct httpd_req *req)
{
	static const struct etsiapi_map map[] = {
		{ "sae-a.example", "sae-a" },
		{ "kmsd-b", "sae-b" },
	};
	static const struct etsiapi_limits lim = { 256, 64, 1024, 128, 4 };
	struct httpd_resp		   resp;
	struct etsi_key_req		   kr;
	struct etsi_key_ids		   ids;
	enum etsiapi_op			   op;
	const char			  *caller;
	char				   sae[ETSI_ID_MAX + 1];

	memset(&resp, 0, sizeof(resp));
	if (etsiapi_route(req, sae, &op, &resp) == -1)
		goto done;
	caller = etsiapi_identity(map, 2, req->peer_cn);
	if (op == ETSIAPI_ENC) {
		if (etsiapi_enc_request(req, &lim, caller, sae, &kr, &resp) ==
			0 &&
		    (kr.number == 0 || kr.number > lim.max_key_per_request ||
			kr.size % 8 != 0 || kr.size < lim.min_key_size ||
			kr.size > lim.max_key_size))
			abort(); /* a request past the checks breaks a limit */
		etsi_key_req_free(&kr);
	} else if (op == ETSIAPI_DEC) {
		if (etsiapi_dec_request(req, &lim, &ids, &resp) == 0) {
			if (ids.n == 0 || ids.n > lim.max_key_per_request)
				abort();
			for (size_t i = 0; i < ids.n; i++)
				if (strlen(ids.ids[i]) == 0)
					abort();
		}
		etsi_key_ids_free(&ids);
	}
done:
	resp_free(&resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake_conn q;
	struct httpd_req req;
	const uint8_t	*nl;
	char  *line, *body = NULL, *method, *target, *cn, *qs, *save = NULL;
	size_t llen;

	fuzz_init();
	nl = memchr(data, '\n', size);
	llen = nl ? (size_t)(nl - data) : size;
	if ((line = strndup((const char *)data, llen)) == NULL)
		return 0;
	memset(&req, 0, sizeof(req));
	memset(&q, 0, sizeof(q));
	if ((method = strtok_r(line, " ", &save)) == NULL ||
	    (target = strtok_r(NULL, " ", &save)) == NULL)
		goto done;
	cn = strtok_r(NULL, " ", &save);
	if ((qs = strchr(target, '?')) != NULL) {
		*qs++ = '\0';
		query_split(qs, &q);
	}
	req.method = method;
	req.path = target;
	req.peer_cn = cn ? cn : "sae-a";
	req.conn = &q;
	if (nl != NULL && size - llen - 1 > 0) {
		/* httpd.c hands over the bytes with a NUL after them. */
		req.body_len = size - llen - 1;
		if ((body = malloc(req.body_len + 1)) == NULL)
			goto done;
		memcpy(body, nl + 1, req.body_len);
		body[req.body_len] = '\0';
		req.body = body;
	}
	handle(&req);
done:
	free(body);
	free(line);
	return 0;
}
