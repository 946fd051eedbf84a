/* ETSI 014 JSON parsers and dumpers: tables of valid and invalid bodies,
 * every truncated prefix, round trips. Run under SAN=1 for leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/etsi.h"

#define STATUS_OK                                                                  \
	"{\"source_KME_ID\":\"kme-a\",\"target_KME_ID\":\"kme-b\","                \
	"\"master_SAE_ID\":\"sae-a\",\"slave_SAE_ID\":\"sae-b\",\"key_size\":256," \
	"\"stored_key_count\":25000,\"max_key_count\":100000,"                     \
	"\"max_key_per_request\":128,\"max_key_size\":1024,\"min_key_size\":64,"   \
	"\"max_SAE_ID_count\":0}"

/* 32 bytes 0x00..0x1f, and 16 bytes of 0xAB */
#define KEY1_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY2_B64 "q6urq6urq6urq6urq6urqw=="
#define KEYS_OK                                                                \
	"{\"keys\":[{\"key_ID\":\"bc490419-7d60-487f-adc1-4ddcc177c139\","     \
	"\"key\":\"" KEY1_B64                                                  \
	"\"},{\"key_ID\":\"0a782fb5-3434-48fe-aa4d-14f41d46cf92\","            \
	"\"key\":\"" KEY2_B64                                                  \
	"\",\"key_ID_extension\":{},\"key_extension\":{}}],"                   \
	"\"key_container_extension\":{}}"

#define KEYIDS_OK                                                                         \
	"{\"key_IDs\":[{\"key_ID\":\"bc490419-7d60-487f-adc1-4ddcc177c139\"},"            \
	"{\"key_ID\":\"0a782fb5-3434-48fe-aa4d-14f41d46cf92\",\"key_ID_extension\":{}}]," \
	"\"key_IDs_extension\":{}}"

#define REQ_OK                                                                   \
	"{\"number\":3,\"size\":512,\"additional_slave_SAE_IDs\":[\"sae-c\","    \
	"\"sae-d\"],\"extension_mandatory\":[{\"abc_route_type\":\"direct\"},"   \
	"{\"abc_transfer_method\":\"qkd\",\"abc_x\":1}],\"extension_optional\":" \
	"[{\"abc_max_age\":30000},{}]}"

struct bad {
	const char *js;
	const char *err; /* substring expected in the error */
};

/* The four parsed objects. */
enum obj { O_STATUS, O_REQ, O_KEYS, O_IDS };

/* Parses (js, len) as an object of kind k, frees what it got, and returns
 * the parser's result (err filled on -1). */
static int
parse_as(enum obj k, const char *js, size_t len, char *err)
{
	union {
		struct etsi_status  s;
		struct etsi_key_req r;
		struct etsi_keys    k;
		struct etsi_key_ids i;
	} out;
	int rc;

	memset(&out, 0, sizeof(out));
	switch (k) {
	case O_STATUS: return etsi_status_parse(js, len, &out.s, err);
	case O_REQ:
		rc = etsi_key_req_parse(js, len, &out.r, err);
		etsi_key_req_free(&out.r);
		return rc;
	case O_KEYS:
		rc = etsi_keys_parse(js, len, &out.k, err);
		etsi_keys_free(&out.k);
		return rc;
	default:
		rc = etsi_key_ids_parse(js, len, &out.i, err);
		etsi_key_ids_free(&out.i);
		return rc;
	}
}

static void
run_bad(enum obj k, const struct bad *t, size_t n)
{
	char err[ETSI_ERRLEN];

	for (size_t i = 0; i < n; i++) {
		err[0] = '\0';
		if (parse_as(k, t[i].js, t[i].js ? strlen(t[i].js) : 0, err) !=
		    -1)
			fail_msg("accepted: %s", t[i].js);
		if (strstr(err, t[i].err) == NULL)
			fail_msg("input %s: error \"%s\" lacks \"%s\"", t[i].js,
			    err, t[i].err);
	}
}

/* No 4-character piece of secret (without a quote) in err. */
static void
assert_no_leak(const char *err, const char *secret, size_t prefix)
{
	for (size_t j = 0; secret != NULL && j + 4 <= strlen(secret); j++) {
		char frag[5];

		memcpy(frag, secret + j, 4);
		frag[4] = '\0';
		if (strstr(err, frag) != NULL && strchr(frag, '"') == NULL)
			fail_msg("prefix %zu: error \"%s\" leaks key", prefix,
			    err);
	}
}

/* Every proper prefix of a valid body fails cleanly, from a heap copy of
 * exactly that length so that ASan sees any over-read. */
static void
run_prefixes(enum obj k, const char *ok, const char *secret)
{
	char   err[ETSI_ERRLEN];
	size_t n = strlen(ok);

	assert_int_equal(parse_as(k, ok, n, err), 0);
	for (size_t i = 0; i < n; i++) {
		char *p = malloc(i ? i : 1);

		assert_non_null(p);
		memcpy(p, ok, i);
		err[0] = '\0';
		if (parse_as(k, p, i, err) != -1)
			fail_msg("prefix of %zu bytes accepted", i);
		assert_true(err[0] != '\0');
		assert_no_leak(err, secret, i);
		free(p);
	}
}

/* Every byte of a valid body replaced by a few troublesome values: the
 * parsers may accept or refuse, but must not crash, leak or over-read. */
static void
run_flips(enum obj k, const char *ok)
{
	static const char repl[] = { '\0', '"', '\\', '{', ']', ',', '9', '-',
		'e', '\x80', '\xff', ' ' };
	char		  err[ETSI_ERRLEN];
	size_t		  n = strlen(ok);
	char		 *p = malloc(n);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < sizeof(repl); j++) {
			memcpy(p, ok, n);
			p[i] = repl[j];
			err[0] = '\0';
			if (parse_as(k, p, n, err) == -1)
				assert_true(err[0] != '\0');
		}
	free(p);
}

/* {"member":[ pre0suf, pre1suf, ... ]} with n items, on the heap. */
static char *
big_list(const char *member, const char *pre, const char *suf, int n)
{
	size_t cap = strlen(member) + 16 +
	    (size_t)n * (strlen(pre) + strlen(suf) + 16),
	       off;
	char *big = malloc(cap);

	assert_non_null(big);
	off = (size_t)snprintf(big, cap, "{\"%s\":[", member);
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(big + off, cap - off, "%s%s%d%s",
		    i ? "," : "", pre, i, suf);
	snprintf(big + off, cap - off, "]}");
	return big;
}

static void
test_flips(void **state)
{
	run_flips(O_STATUS, STATUS_OK);
	run_flips(O_REQ, REQ_OK);
	run_flips(O_KEYS, KEYS_OK);
	run_flips(O_IDS, KEYIDS_OK);
}

static void
test_id_valid(void **state)
{
	char long_id[ETSI_ID_MAX + 2];

	assert_true(etsi_id_valid("sae-a"));
	assert_true(etsi_id_valid("SAE 1:x@y.z"));
	assert_false(etsi_id_valid(""));
	assert_false(etsi_id_valid(NULL));
	assert_false(etsi_id_valid("a/b"));
	assert_false(etsi_id_valid("a?b"));
	assert_false(etsi_id_valid("a%b"));
	assert_false(etsi_id_valid("a\"b"));
	assert_false(etsi_id_valid("a\nb"));
	assert_false(etsi_id_valid("a\x7f"));
	assert_false(etsi_id_valid("caf\xc3\xa9"));
	memset(long_id, 'x', sizeof(long_id));
	long_id[ETSI_ID_MAX] = '\0';
	assert_true(etsi_id_valid(long_id));
	long_id[ETSI_ID_MAX] = 'x';
	long_id[ETSI_ID_MAX + 1] = '\0';
	assert_false(etsi_id_valid(long_id));
}

static void
test_status(void **state)
{
	static const struct bad bad[] = {
		{ NULL, "empty body" },
		{ "", "empty body" },
		{ " \n", "empty body" },
		{ "[]", "must be a JSON object" },
		{ "\"x\"", "must be a JSON object" },
		{ "{}", "missing \"source_KME_ID\"" },
		{ "{\"source_KME_ID\":\"a\"} x", "invalid JSON" },
		{ "{\"source_KME_ID\":1}",
		    "\"source_KME_ID\" must be a string" },
		{ "{\"source_KME_ID\":\"a/b\"}", "not a valid ID: \"a/b\"" },
		{ "{\"source_KME_ID\":\"a\",\"source_KME_ID\":\"b\"}",
		    "invalid JSON" },
		{ "{\"source_KME_ID\":\"a\",\"target_KME_ID\":\"b\",\"master_SAE_ID\":"
		  "\"c\",\"slave_SAE_ID\":\"d\",\"key_size\":\"256\"}",
		    "\"key_size\" must be an integer" },
		{ "{\"source_KME_ID\":\"a\",\"target_KME_ID\":\"b\",\"master_SAE_ID\":"
		  "\"c\",\"slave_SAE_ID\":\"d\",\"key_size\":256.0}",
		    "\"key_size\" must be an integer" },
		{ "{\"source_KME_ID\":\"a\",\"target_KME_ID\":\"b\",\"master_SAE_ID\":"
		  "\"c\",\"slave_SAE_ID\":\"d\",\"key_size\":-8}",
		    "\"key_size\" must be >= 0 (got -8)" },
		{ "{\"source_KME_ID\":\"a\",\"target_KME_ID\":\"b\",\"master_SAE_ID\":"
		  "\"c\",\"slave_SAE_ID\":\"d\",\"key_size\":4294967296}",
		    "\"key_size\" must be <= 4294967295" },
		{ "{\"source_KME_ID\":\"a\",\"target_KME_ID\":\"b\",\"master_SAE_ID\":"
		  "\"c\",\"slave_SAE_ID\":\"d\",\"key_size\":256}",
		    "missing \"stored_key_count\"" },
	};
	struct etsi_status s;
	char		   err[ETSI_ERRLEN], *js;

	assert_int_equal(etsi_status_parse(STATUS_OK, strlen(STATUS_OK), &s,
			     err),
	    0);
	assert_string_equal(s.source_kme_id, "kme-a");
	assert_string_equal(s.target_kme_id, "kme-b");
	assert_string_equal(s.master_sae_id, "sae-a");
	assert_string_equal(s.slave_sae_id, "sae-b");
	assert_int_equal(s.key_size, 256);
	assert_int_equal(s.stored_key_count, 25000);
	assert_int_equal(s.max_key_count, 100000);
	assert_int_equal(s.max_key_per_request, 128);
	assert_int_equal(s.max_key_size, 1024);
	assert_int_equal(s.min_key_size, 64);
	assert_int_equal(s.max_sae_id_count, 0);

	/* An answer: status_extension and vendor members are ignored. */
	{
		char ext[1024];

		snprintf(ext, sizeof(ext),
		    "{\"status_extension\":{\"x\":1},"
		    "\"vendor\":[],%s",
		    STATUS_OK + 1);

		assert_int_equal(etsi_status_parse(ext, strlen(ext), &s, err),
		    0);
	}

	/* Round trip. */
	assert_non_null(js = etsi_status_dump(&s));
	assert_string_equal(js, STATUS_OK);
	free(js);

	run_bad(O_STATUS, bad, sizeof(bad) / sizeof(bad[0]));
	run_prefixes(O_STATUS, STATUS_OK, NULL);
}

static const struct bad req_bad[] = {
	{ "", "empty body" },
	{ "[1]", "must be a JSON object" },
	{ "null", "must be a JSON object" },
	{ "{\"number\":\"2\"}", "\"number\" must be an integer" },
	{ "{\"number\":2.0}", "\"number\" must be an integer" },
	{ "{\"number\":1e3}", "\"number\" must be an integer" },
	{ "{\"number\":true}", "\"number\" must be an integer" },
	{ "{\"number\":null}", "\"number\" must be an integer" },
	{ "{\"number\":0}", "\"number\" must be >= 1 (got 0)" },
	{ "{\"number\":-1}", "\"number\" must be >= 1 (got -1)" },
	{ "{\"number\":99999999999}",
	    "\"number\" must be <= 4294967295 "
	    "(got 99999999999)" },
	{ "{\"number\":99999999999999999999999}", "invalid JSON" },
	{ "{\"size\":0}", "\"size\" must be >= 1 (got 0)" },
	{ "{\"size\":\"256\"}", "\"size\" must be an integer" },
	{ "{\"sizes\":256}", "unknown member \"sizes\"" },
	{ "{\"number\":1,\"number\":2}", "invalid JSON" },
	{ "{\"additional_slave_SAE_IDs\":\"sae-c\"}",
	    "\"additional_slave_SAE_IDs\" must be an array" },
	{ "{\"additional_slave_SAE_IDs\":[1]}", "entry 0 must be a string" },
	{ "{\"additional_slave_SAE_IDs\":[\"ok\",\"a/b\"]}",
	    "entry 1 is not a valid ID: \"a/b\"" },
	{ "{\"additional_slave_SAE_IDs\":[\"\"]}",
	    "entry 0 is not a valid ID" },
	{ "{\"extension_mandatory\":{}}",
	    "\"extension_mandatory\" must be an array" },
	{ "{\"extension_mandatory\":[1]}",
	    "\"extension_mandatory\" entry 0 must be an object" },
	{ "{\"extension_optional\":[{},\"x\"]}",
	    "\"extension_optional\" entry 1 must be an object" },
	{ "{\"number\":1", "invalid JSON" },
	{ "{\"number\":1}}", "invalid JSON" },
};

/* Valid requests and what is recorded of them. */
static const struct {
	const char *js;
	unsigned    number, size;
	size_t	    nslaves, nmand, nopt;
} req_good[] = {
	{ "{}", 1, 0, 0, 0, 0 },
	{ " {\"number\": 13, \"size\": 256}\n", 13, 256, 0, 0, 0 },
	{ "{\"size\":250}", 1, 250, 0, 0, 0 }, /* multiple of 8: KME's job */
	{ "{\"additional_slave_SAE_IDs\":[]}", 1, 0, 0, 0, 0 },
	{ REQ_OK, 3, 512, 2, 3, 2 },
};

/* A round trip through the dumper keeps everything r records. */
static void
key_req_round_trip(const struct etsi_key_req *r)
{
	struct etsi_key_req r2;
	char		    err[ETSI_ERRLEN], *js;

	assert_non_null(js = etsi_key_req_dump(r));
	if (etsi_key_req_parse(js, strlen(js), &r2, err))
		fail_msg("%s: %s", js, err);
	assert_int_equal(r2.number, r->number);
	assert_int_equal(r2.size, r->size);
	assert_int_equal(r2.nslaves, r->nslaves);
	for (size_t j = 0; j < r->nslaves; j++)
		assert_string_equal(r2.slaves[j], r->slaves[j]);
	assert_int_equal(r2.n_ext_mandatory, r->n_ext_mandatory);
	for (size_t j = 0; j < r->n_ext_mandatory; j++)
		assert_string_equal(r2.ext_mandatory[j], r->ext_mandatory[j]);
	assert_int_equal(r2.n_ext_optional, r->n_ext_optional);
	free(js);
	etsi_key_req_free(&r2);
}

static void
test_key_req(void **state)
{
	struct etsi_key_req r;
	char		    err[ETSI_ERRLEN];

	for (size_t i = 0; i < sizeof(req_good) / sizeof(req_good[0]); i++) {
		if (etsi_key_req_parse(req_good[i].js, strlen(req_good[i].js),
			&r, err))
			fail_msg("%s: %s", req_good[i].js, err);
		assert_int_equal(r.number, req_good[i].number);
		assert_int_equal(r.size, req_good[i].size);
		assert_int_equal(r.nslaves, req_good[i].nslaves);
		assert_int_equal(r.n_ext_mandatory, req_good[i].nmand);
		assert_int_equal(r.n_ext_optional, req_good[i].nopt);
		key_req_round_trip(&r);
		etsi_key_req_free(&r);
	}
	assert_int_equal(etsi_key_req_parse(REQ_OK, strlen(REQ_OK), &r, err),
	    0);
	assert_string_equal(r.slaves[0], "sae-c");
	assert_string_equal(r.slaves[1], "sae-d");
	assert_string_equal(r.ext_mandatory[0], "abc_route_type");
	assert_string_equal(r.ext_mandatory[1], "abc_transfer_method");
	assert_string_equal(r.ext_mandatory[2], "abc_x");
	etsi_key_req_free(&r);
	etsi_key_req_free(&r); /* idempotent */
	etsi_key_req_free(NULL);

	run_bad(O_REQ, req_bad, sizeof(req_bad) / sizeof(req_bad[0]));
	run_prefixes(O_REQ, REQ_OK, NULL);
}

/* ETSI_MAX_SLAVES is allowed, one more is not. */
static void
test_key_req_limits(void **state)
{
	struct etsi_key_req r;
	char		    err[ETSI_ERRLEN], *big;

	big = big_list("additional_slave_SAE_IDs", "\"sae-", "\"",
	    ETSI_MAX_SLAVES);
	assert_int_equal(etsi_key_req_parse(big, strlen(big), &r, err), 0);
	assert_int_equal(r.nslaves, ETSI_MAX_SLAVES);
	etsi_key_req_free(&r);
	free(big);
	big = big_list("additional_slave_SAE_IDs", "\"sae-", "\"",
	    ETSI_MAX_SLAVES + 1);
	assert_int_equal(etsi_key_req_parse(big, strlen(big), &r, err), -1);
	assert_non_null(strstr(err, "at most 64"));
	assert_null(r.slaves);
	free(big);
}

static const struct bad keys_bad[] = {
	{ "", "empty body" },
	{ "[]", "must be a JSON object" },
	{ "{}", "missing \"keys\"" },
	{ "{\"keys\":{}}", "\"keys\" must be an array" },
	{ "{\"keys\":[]}", "\"keys\" has 0 entries" },
	{ "{\"keys\":[1]}", "keys[0] must be an object" },
	{ "{\"keys\":[{\"key\":\"AAAA\"}]}", "keys[0]: missing \"key_ID\"" },
	{ "{\"keys\":[{\"key_ID\":\"a\"}]}", "keys[0]: missing \"key\"" },
	{ "{\"keys\":[{\"key_ID\":1,\"key\":\"AAAA\"}]}",
	    "keys[0]: \"key_ID\" must be a string" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":[]}]}",
	    "keys[0]: \"key\" must be a string" },
	{ "{\"keys\":[{\"key_ID\":\"\",\"key\":\"AAAA\"}]}",
	    "\"key_ID\" is not a valid key ID: \"\"" },
	{ "{\"keys\":[{\"key_ID\":\"a b\",\"key\":\"AAAA\"}]}",
	    "\"key_ID\" is not a valid key ID: \"a b\"" },
	{ "{\"keys\":[{\"key_ID\":\"a\\u0001\",\"key\":\"AAAA\"}]}",
	    "\"key_ID\" is not a valid key ID: \"a?\"" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"\"}]}",
	    "keys[0]: \"key\" is empty" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"AAA\"}]}",
	    "keys[0]: \"key\" is not valid base64" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"AA=A\"}]}",
	    "keys[0]: \"key\" is not valid base64" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"A===\"}]}",
	    "keys[0]: \"key\" is not valid base64" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"AA*A\"}]}",
	    "keys[0]: \"key\" is not valid base64" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"AAAA AAAA\"}]}",
	    "keys[0]: \"key\" is not valid base64" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"AAAA\"},"
	  "{\"key_ID\":\"b\",\"key\":\"AAA\\n\"}]}",
	    "keys[1]: \"key\" is not valid base64" },
	{ "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"AAAA\",\"key\":\"AAAA\"}]}",
	    "invalid JSON" },
};

static void
test_keys(void **state)
{
	struct etsi_keys k, k2;
	char		 err[ETSI_ERRLEN], *js;

	assert_int_equal(etsi_keys_parse(KEYS_OK, strlen(KEYS_OK), &k, err), 0);
	assert_int_equal(k.n, 2);
	assert_string_equal(k.v[0].id, "bc490419-7d60-487f-adc1-4ddcc177c139");
	assert_int_equal(k.v[0].len, 32);
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(k.v[0].key[i], i);
	assert_string_equal(k.v[1].id, "0a782fb5-3434-48fe-aa4d-14f41d46cf92");
	assert_int_equal(k.v[1].len, 16);
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(k.v[1].key[i], 0xab);

	/* Round trip through the hand-built dumper. */
	assert_non_null(js = etsi_keys_dump(&k));
	assert_string_equal(js,
	    "{\"keys\":[{\"key_ID\":\"bc490419-7d60-487f-adc1-"
	    "4ddcc177c139\",\"key\":\"" KEY1_B64
	    "\"},{\"key_ID\":\"0a782fb5-3434-"
	    "48fe-aa4d-14f41d46cf92\",\"key\":\"" KEY2_B64 "\"}]}");
	assert_int_equal(etsi_keys_parse(js, strlen(js), &k2, err), 0);
	assert_int_equal(k2.n, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(k2.v[i].id, k.v[i].id);
		assert_int_equal(k2.v[i].len, k.v[i].len);
		assert_memory_equal(k2.v[i].key, k.v[i].key, k.v[i].len);
	}
	sec_free_any(js);
	etsi_keys_free(&k2);
	etsi_keys_free(&k);
	etsi_keys_free(&k);
	etsi_keys_free(NULL);

	/* Dumper escapes odd IDs correctly (IDs made by hand, not parsed). */
	assert_int_equal(etsi_keys_alloc(&k, 1), 0);
	strcpy(k.v[0].id, "a\"b\\c");
	assert_non_null(k.v[0].key = sec_alloc(1));
	k.v[0].len = 1;
	assert_non_null(js = etsi_keys_dump(&k));
	assert_string_equal(js,
	    "{\"keys\":[{\"key_ID\":\"a\\\"b\\\\c\",\"key\":"
	    "\"AA==\"}]}");
	sec_free_any(js);
	etsi_keys_free(&k);

	run_bad(O_KEYS, keys_bad, sizeof(keys_bad) / sizeof(keys_bad[0]));
	run_prefixes(O_KEYS, KEYS_OK, KEY1_B64);
	run_prefixes(O_KEYS, KEYS_OK, KEY2_B64);
}

/* A Key container of one key of nbytes bytes (all zero), on the heap. */
static char *
keys_one_of(size_t nbytes, int pad)
{
	size_t nb64 = B64_ENCLEN(nbytes), cap = nb64 + 64, off;
	char  *big = malloc(cap);

	assert_non_null(big);
	off = (size_t)snprintf(big, cap,
	    "{\"keys\":[{\"key_ID\":\"k\","
	    "\"key\":\"");
	memset(big + off, 'A', nb64);
	off += nb64;
	if (pad)
		big[off - 1] = '=';
	snprintf(big + off, cap - off, "\"}]}");
	return big;
}

/* Limits: ETSI_MAX_KEYS keys of ETSI_MAX_KEY_BYTES are fine; one key more,
 * or one key 3 bytes larger, is refused. */
static void
test_keys_limits(void **state)
{
	static const struct {
		int	    nkeys;  /* keys of 3 bytes, or */
		size_t	    nbytes; /* one key of this size */
		int	    rc;
		const char *err;
	} t[] = {
		{ ETSI_MAX_KEYS, 0, 0, NULL },
		{ ETSI_MAX_KEYS + 1, 0, -1, "has 1025 entries" },
		{ 0, ETSI_MAX_KEY_BYTES, 0, NULL }, /* 3 * 2730 + 2: one pad */
		{ 0, ETSI_MAX_KEY_BYTES + 3, -1, "longer than 8192 bytes" },
	};
	struct etsi_keys k;
	char		 err[ETSI_ERRLEN], *big;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		big = t[i].nkeys ? big_list("keys", "{\"key_ID\":\"k",
				       "\",\"key\":\"AAAA\"}", t[i].nkeys) :
				   keys_one_of(t[i].nbytes, t[i].rc == 0);
		assert_int_equal(etsi_keys_parse(big, strlen(big), &k, err),
		    t[i].rc);
		if (t[i].err != NULL)
			assert_non_null(strstr(err, t[i].err));
		else if (t[i].nkeys)
			assert_int_equal(k.n, ETSI_MAX_KEYS);
		else
			assert_int_equal(k.v[0].len, ETSI_MAX_KEY_BYTES);
		etsi_keys_free(&k);
		free(big);
	}
}

static const struct bad ids_bad[] = {
	{ "", "empty body" },
	{ "[]", "must be a JSON object" },
	{ "{}", "missing \"key_IDs\"" },
	{ "{\"key_IDs\":[],\"x\":1}", "unknown member \"x\"" },
	{ "{\"key_IDs\":\"a\"}", "\"key_IDs\" must be an array" },
	{ "{\"key_IDs\":[]}", "\"key_IDs\" has 0 entries" },
	{ "{\"key_IDs\":[\"a\"]}", "key_IDs[0] must be an object" },
	{ "{\"key_IDs\":[{}]}", "key_IDs[0]: missing \"key_ID\"" },
	{ "{\"key_IDs\":[{\"key_ID\":\"a\"},{\"key_ID\":2}]}",
	    "key_IDs[1]: \"key_ID\" must be a string" },
	{ "{\"key_IDs\":[{\"key_ID\":\"a\",\"key\":\"AAAA\"}]}",
	    "unknown member \"key\" in key_IDs[0]" },
	{ "{\"key_IDs\":[{\"key_ID\":\"0123456789012345678901234567890123"
	  "456789012345678901234567890123456789\"}]}",
	    "\"key_ID\" is not a valid key ID: \"0123456789012345678901234567"
	    "890123456789...\"" },
};

static void
test_key_ids(void **state)
{
	const char *js64 =
	    "{\"key_IDs\":[{\"key_ID\":\"012345678901234567"
	    "8901234567890123456789012345678901234567890123\"}]}";
	struct etsi_key_ids ids, ids2;
	char		    err[ETSI_ERRLEN], *js, *big;

	assert_int_equal(etsi_key_ids_parse(KEYIDS_OK, strlen(KEYIDS_OK), &ids,
			     err),
	    0);
	assert_int_equal(ids.n, 2);
	assert_string_equal(ids.ids[0], "bc490419-7d60-487f-adc1-4ddcc177c139");
	assert_string_equal(ids.ids[1], "0a782fb5-3434-48fe-aa4d-14f41d46cf92");
	assert_non_null(js = etsi_key_ids_dump(&ids));
	assert_string_equal(js,
	    "{\"key_IDs\":[{\"key_ID\":\"bc490419-7d60-487f-"
	    "adc1-4ddcc177c139\"},{\"key_ID\":\"0a782fb5-3434-48fe-aa4d-"
	    "14f41d46cf92\"}]}");
	assert_int_equal(etsi_key_ids_parse(js, strlen(js), &ids2, err), 0);
	assert_int_equal(ids2.n, 2);
	assert_string_equal(ids2.ids[1], ids.ids[1]);
	free(js);
	etsi_key_ids_free(&ids2);
	etsi_key_ids_free(&ids);
	etsi_key_ids_free(NULL);

	/* 64-char IDs are the limit. */
	assert_int_equal(etsi_key_ids_parse(js64, strlen(js64), &ids, err), 0);
	assert_int_equal(strlen(ids.ids[0]), ETSI_KEY_ID_MAX);
	etsi_key_ids_free(&ids);
	big = big_list("key_IDs", "{\"key_ID\":\"", "\"}", ETSI_MAX_KEYS + 1);
	assert_int_equal(etsi_key_ids_parse(big, strlen(big), &ids, err), -1);
	assert_non_null(strstr(err, "has 1025 entries"));
	free(big);

	run_bad(O_IDS, ids_bad, sizeof(ids_bad) / sizeof(ids_bad[0]));
	run_prefixes(O_IDS, KEYIDS_OK, NULL);
}

static void
test_error(void **state)
{
	static const struct {
		const char *js;
		int	    rc;
		const char *msg, *detail;
	} t[] = {
		{ "{\"message\":\"size shall be a multiple of 8\"}", 0,
		    "size shall be a multiple of 8", "" },
		{ "{\"message\":\"m\",\"details\":[{\"detail\":\"d1\"},{\"x\":2}]}",
		    0, "m", "d1" },
		{ "{\"message\":\"m\",\"details\":[{\"a\":1,\"b\":\"c\"}]}", 0,
		    "m", "{\"a\":1,\"b\":\"c\"}" },
		{ "{\"message\":\"m\",\"details\":[{\"a\":[1]}]}", 0, "m",
		    "{\"a\":[1]}" },
		{ "{\"message\":\"m\",\"details\":[\"plain\"]}", 0, "m",
		    "plain" },
		{ "{\"message\":\"m\",\"details\":[]}", 0, "m", "" },
		{ "{\"message\":\"m\",\"details\":{}}", 0, "m", "" },
		{ "{\"message\":\"m\",\"extra\":1}", 0, "m", "" },
		{ "{\"message\":1}", -1, "", "" },
		{ "{}", -1, "", "" },
		{ "[]", -1, "", "" },
		{ "<html>", -1, "", "" },
		{ "", -1, "", "" },
	};
	char msg[64], detail[64], small[4], *js;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(etsi_error_parse(t[i].js, strlen(t[i].js), msg,
				     sizeof(msg), detail, sizeof(detail)),
		    t[i].rc);
		assert_string_equal(msg, t[i].msg);
		assert_string_equal(detail, t[i].detail);
	}
	/* Truncation to the caller's buffers; NULL detail buffer. */
	assert_int_equal(etsi_error_parse(t[0].js, strlen(t[0].js), small,
			     sizeof(small), NULL, 0),
	    0);
	assert_string_equal(small, "siz");

	assert_non_null(js = etsi_error_dump(ETSI_MSG_SIZE_MULT8, "size 250"));
	assert_string_equal(js,
	    "{\"message\":\"size shall be a multiple of 8\","
	    "\"details\":[{\"detail\":\"size 250\"}]}");
	assert_int_equal(etsi_error_parse(js, strlen(js), msg, sizeof(msg),
			     detail, sizeof(detail)),
	    0);
	assert_string_equal(msg, ETSI_MSG_SIZE_MULT8);
	assert_string_equal(detail, "size 250");
	free(js);
	assert_non_null(js = etsi_error_dump("a \"quoted\" msg", NULL));
	assert_string_equal(js, "{\"message\":\"a \\\"quoted\\\" msg\"}");
	free(js);
}

/* Nesting bound: the scanner, then every parser (requests and answers). */
static void
test_json_depth(void **state)
{
	static const struct {
		const char *js;
		unsigned    max;
		int	    ok;
	} t[] = {
		{ "{}", 1, 1 },
		{ "{\"a\":[]}", 1, 0 },
		{ "{\"a\":[]}", 2, 1 },
		{ "[[]][[]]", 2, 1 },		 /* depth, not count */
		{ "{\"[[[[\":\"{{{{\"}", 1, 1 }, /* inside strings */
		{ "{\"a\\\"[[\":1}", 1, 1 },	 /* escaped quote */
		{ "{\"a\\\\\":[[1]]}", 2, 0 },	 /* escaped backslash */
		{ "]]]]{", 1, 1 },		 /* no underflow */
		{ "", 0, 1 },
	};
	struct etsi_key_req kr;
	struct etsi_keys    keys;
	struct etsi_status  st;
	char		    err[ETSI_ERRLEN], *deep, msg[64];
	size_t		    n = 0;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(etsi_json_depth_ok(t[i].js, strlen(t[i].js),
				     t[i].max),
		    t[i].ok);
	assert_int_equal(etsi_json_depth_ok(NULL, 5, 1), 1);

	/* 10,000 levels inside an otherwise valid object, for each parser. */
	assert_non_null(deep = malloc(20100));
	n = (size_t)sprintf(deep, "{\"number\":1,\"extension_optional\":");
	for (int i = 0; i < 10000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 10000; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	assert_int_equal(etsi_key_req_parse(deep, n, &kr, err), -1);
	assert_string_equal(err, "JSON nested deeper than 32 levels");
	assert_int_equal(etsi_keys_parse(deep, n, &keys, err), -1);
	assert_string_equal(err, "JSON nested deeper than 32 levels");
	assert_int_equal(etsi_status_parse(deep, n, &st, err), -1);
	assert_int_equal(etsi_error_parse(deep, n, msg, sizeof(msg), NULL, 0),
	    -1);
	/* 32 levels are still fine for the scanner. */
	n = 0;
	for (int i = 0; i < ETSI_JSON_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < ETSI_JSON_MAX_DEPTH; i++)
		deep[n++] = ']';
	assert_int_equal(etsi_json_depth_ok(deep, n, ETSI_JSON_MAX_DEPTH), 1);
	free(deep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_key_req),
		cmocka_unit_test(test_key_req_limits),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_keys_limits),
		cmocka_unit_test(test_key_ids),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_flips),
		cmocka_unit_test(test_json_depth),
	};

	sec_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
