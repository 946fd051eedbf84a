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

#define STATUS_OK "{\"source_KME_ID\":\"kme-a\",\"target_KME_ID\":\"kme-b\"," \
	"\"master_SAE_ID\":\"sae-a\",\"slave_SAE_ID\":\"sae-b\",\"key_size\":256," \
	"\"stored_key_count\":25000,\"max_key_count\":100000," \
	"\"max_key_per_request\":128,\"max_key_size\":1024,\"min_key_size\":64," \
	"\"max_SAE_ID_count\":0}"

/* 32 bytes 0x00..0x1f, and 16 bytes of 0xAB */
#define KEY1_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY2_B64 "q6urq6urq6urq6urq6urqw=="
#define KEYS_OK "{\"keys\":[{\"key_ID\":\"bc490419-7d60-487f-adc1-4ddcc177c139\"," \
	"\"key\":\"" KEY1_B64 "\"},{\"key_ID\":\"0a782fb5-3434-48fe-aa4d-14f41d46cf92\"," \
	"\"key\":\"" KEY2_B64 "\",\"key_ID_extension\":{},\"key_extension\":{}}]," \
	"\"key_container_extension\":{}}"

#define KEYIDS_OK "{\"key_IDs\":[{\"key_ID\":\"bc490419-7d60-487f-adc1-4ddcc177c139\"}," \
	"{\"key_ID\":\"0a782fb5-3434-48fe-aa4d-14f41d46cf92\",\"key_ID_extension\":{}}]," \
	"\"key_IDs_extension\":{}}"

#define REQ_OK "{\"number\":3,\"size\":512,\"additional_slave_SAE_IDs\":[\"sae-c\"," \
	"\"sae-d\"],\"extension_mandatory\":[{\"abc_route_type\":\"direct\"}," \
	"{\"abc_transfer_method\":\"qkd\",\"abc_x\":1}],\"extension_optional\":" \
	"[{\"abc_max_age\":30000},{}]}"

struct bad {
	const char	*js;
	const char	*err;	/* substring expected in the error */
};

typedef int (*parse_fn)(const char *, size_t, void *, char *);

static int
p_status(const char *js, size_t len, void *out, char *err)
{
	return etsi_status_parse(js, len, out, err);
}

static int
p_req(const char *js, size_t len, void *out, char *err)
{
	int rc = etsi_key_req_parse(js, len, out, err);

	etsi_key_req_free(out);
	return rc;
}

static int
p_keys(const char *js, size_t len, void *out, char *err)
{
	int rc = etsi_keys_parse(js, len, out, err);

	etsi_keys_free(out);
	return rc;
}

static int
p_ids(const char *js, size_t len, void *out, char *err)
{
	int rc = etsi_key_ids_parse(js, len, out, err);

	etsi_key_ids_free(out);
	return rc;
}

static void
run_bad(parse_fn fn, const struct bad *t, size_t n)
{
	union {
		struct etsi_status	s;
		struct etsi_key_req	r;
		struct etsi_keys	k;
		struct etsi_key_ids	i;
	} out;
	char err[ETSI_ERRLEN];

	for (size_t i = 0; i < n; i++) {
		err[0] = '\0';
		if (fn(t[i].js, t[i].js ? strlen(t[i].js) : 0, &out, err) != -1)
			fail_msg("accepted: %s", t[i].js);
		if (strstr(err, t[i].err) == NULL)
			fail_msg("input %s: error \"%s\" lacks \"%s\"", t[i].js, err,
			    t[i].err);
	}
}

/* Every proper prefix of a valid body fails cleanly, from a heap copy of
 * exactly that length so that ASan sees any over-read. */
static void
run_prefixes(parse_fn fn, const char *ok, const char *secret)
{
	union {
		struct etsi_status	s;
		struct etsi_key_req	r;
		struct etsi_keys	k;
		struct etsi_key_ids	i;
	} out;
	char	err[ETSI_ERRLEN];
	size_t	n = strlen(ok);

	memset(&out, 0, sizeof(out));
	assert_int_equal(fn(ok, n, &out, err), 0);
	for (size_t i = 0; i < n; i++) {
		char *p = malloc(i ? i : 1);

		assert_non_null(p);
		memcpy(p, ok, i);
		err[0] = '\0';
		if (fn(p, i, &out, err) != -1)
			fail_msg("prefix of %zu bytes accepted", i);
		assert_true(err[0] != '\0');
		/* No piece of key material in the error text. */
		if (secret != NULL)
			for (size_t j = 0; j + 4 <= strlen(secret); j++) {
				char frag[5];

				memcpy(frag, secret + j, 4);
				frag[4] = '\0';
				if (strstr(err, frag) != NULL && strchr(frag, '"') == NULL)
					fail_msg("prefix %zu: error \"%s\" leaks key", i, err);
			}
		free(p);
	}
}

/* Every byte of a valid body replaced by a few troublesome values: the
 * parsers may accept or refuse, but must not crash, leak or over-read. */
static void
run_flips(parse_fn fn, const char *ok)
{
	static const char repl[] = { '\0', '"', '\\', '{', ']', ',', '9', '-',
	    'e', '\x80', '\xff', ' ' };
	union {
		struct etsi_status	s;
		struct etsi_key_req	r;
		struct etsi_keys	k;
		struct etsi_key_ids	i;
	} out;
	char	err[ETSI_ERRLEN];
	size_t	n = strlen(ok);
	char	*p = malloc(n);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < sizeof(repl); j++) {
			memcpy(p, ok, n);
			p[i] = repl[j];
			err[0] = '\0';
			if (fn(p, n, &out, err) == -1)
				assert_true(err[0] != '\0');
		}
	free(p);
}

static void
test_flips(void **state)
{
	run_flips(p_status, STATUS_OK);
	run_flips(p_req, REQ_OK);
	run_flips(p_keys, KEYS_OK);
	run_flips(p_ids, KEYIDS_OK);
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
		{ "{\"source_KME_ID\":1}", "\"source_KME_ID\" must be a string" },
		{ "{\"source_KME_ID\":\"a/b\"}", "not a valid ID: \"a/b\"" },
		{ "{\"source_KME_ID\":\"a\",\"source_KME_ID\":\"b\"}", "invalid JSON" },
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
	char err[ETSI_ERRLEN], *js;

	assert_int_equal(etsi_status_parse(STATUS_OK, strlen(STATUS_OK), &s,
	    err), 0);
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

		snprintf(ext, sizeof(ext), "{\"status_extension\":{\"x\":1},"
		    "\"vendor\":[],%s", STATUS_OK + 1);

		assert_int_equal(etsi_status_parse(ext, strlen(ext), &s, err), 0);
	}

	/* Round trip. */
	assert_non_null(js = etsi_status_dump(&s));
	assert_string_equal(js, STATUS_OK);
	free(js);

	run_bad(p_status, bad, sizeof(bad) / sizeof(bad[0]));
	run_prefixes(p_status, STATUS_OK, NULL);
}

static void
test_key_req(void **state)
{
	static const struct bad bad[] = {
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
		{ "{\"number\":99999999999}", "\"number\" must be <= 4294967295 "
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
		{ "{\"additional_slave_SAE_IDs\":[\"\"]}", "entry 0 is not a valid ID" },
		{ "{\"extension_mandatory\":{}}",
		  "\"extension_mandatory\" must be an array" },
		{ "{\"extension_mandatory\":[1]}",
		  "\"extension_mandatory\" entry 0 must be an object" },
		{ "{\"extension_optional\":[{},\"x\"]}",
		  "\"extension_optional\" entry 1 must be an object" },
		{ "{\"number\":1", "invalid JSON" },
		{ "{\"number\":1}}", "invalid JSON" },
	};
	static const struct {
		const char	*js;
		unsigned	 number, size;
		size_t		 nslaves, nmand, nopt;
	} good[] = {
		{ "{}", 1, 0, 0, 0, 0 },
		{ " {\"number\": 13, \"size\": 256}\n", 13, 256, 0, 0, 0 },
		{ "{\"size\":250}", 1, 250, 0, 0, 0 },	/* multiple of 8: KME's job */
		{ "{\"additional_slave_SAE_IDs\":[]}", 1, 0, 0, 0, 0 },
		{ REQ_OK, 3, 512, 2, 3, 2 },
	};
	struct etsi_key_req r, r2;
	char err[ETSI_ERRLEN], *js;
	char big[64 * (ETSI_MAX_SLAVES + 2)];
	size_t off;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (etsi_key_req_parse(good[i].js, strlen(good[i].js), &r, err))
			fail_msg("%s: %s", good[i].js, err);
		assert_int_equal(r.number, good[i].number);
		assert_int_equal(r.size, good[i].size);
		assert_int_equal(r.nslaves, good[i].nslaves);
		assert_int_equal(r.n_ext_mandatory, good[i].nmand);
		assert_int_equal(r.n_ext_optional, good[i].nopt);
		/* Round trip keeps everything we record. */
		assert_non_null(js = etsi_key_req_dump(&r));
		if (etsi_key_req_parse(js, strlen(js), &r2, err))
			fail_msg("%s: %s", js, err);
		assert_int_equal(r2.number, r.number);
		assert_int_equal(r2.size, r.size);
		assert_int_equal(r2.nslaves, r.nslaves);
		for (size_t j = 0; j < r.nslaves; j++)
			assert_string_equal(r2.slaves[j], r.slaves[j]);
		assert_int_equal(r2.n_ext_mandatory, r.n_ext_mandatory);
		for (size_t j = 0; j < r.n_ext_mandatory; j++)
			assert_string_equal(r2.ext_mandatory[j], r.ext_mandatory[j]);
		assert_int_equal(r2.n_ext_optional, r.n_ext_optional);
		free(js);
		etsi_key_req_free(&r2);
		etsi_key_req_free(&r);
	}
	assert_int_equal(etsi_key_req_parse(REQ_OK, strlen(REQ_OK), &r, err), 0);
	assert_string_equal(r.slaves[0], "sae-c");
	assert_string_equal(r.slaves[1], "sae-d");
	assert_string_equal(r.ext_mandatory[0], "abc_route_type");
	assert_string_equal(r.ext_mandatory[1], "abc_transfer_method");
	assert_string_equal(r.ext_mandatory[2], "abc_x");
	etsi_key_req_free(&r);
	etsi_key_req_free(&r);	/* idempotent */
	etsi_key_req_free(NULL);

	/* ETSI_MAX_SLAVES is allowed, one more is not. */
	for (int extra = 0; extra < 2; extra++) {
		off = (size_t)snprintf(big, sizeof(big),
		    "{\"additional_slave_SAE_IDs\":[");
		for (int i = 0; i < ETSI_MAX_SLAVES + extra; i++)
			off += (size_t)snprintf(big + off, sizeof(big) - off,
			    "%s\"sae-%d\"", i ? "," : "", i);
		snprintf(big + off, sizeof(big) - off, "]}");
		if (!extra) {
			assert_int_equal(etsi_key_req_parse(big, strlen(big), &r,
			    err), 0);
			assert_int_equal(r.nslaves, ETSI_MAX_SLAVES);
			etsi_key_req_free(&r);
		} else {
			assert_int_equal(etsi_key_req_parse(big, strlen(big), &r,
			    err), -1);
			assert_non_null(strstr(err, "at most 64"));
			assert_null(r.slaves);
		}
	}

	run_bad(p_req, bad, sizeof(bad) / sizeof(bad[0]));
	run_prefixes(p_req, REQ_OK, NULL);
}

static void
test_keys(void **state)
{
	static const struct bad bad[] = {
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
	struct etsi_keys k, k2;
	char err[ETSI_ERRLEN], *js, *big;
	size_t off, cap;

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
	assert_string_equal(js, "{\"keys\":[{\"key_ID\":\"bc490419-7d60-487f-adc1-"
	    "4ddcc177c139\",\"key\":\"" KEY1_B64 "\"},{\"key_ID\":\"0a782fb5-3434-"
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
	assert_string_equal(js, "{\"keys\":[{\"key_ID\":\"a\\\"b\\\\c\",\"key\":"
	    "\"AA==\"}]}");
	sec_free_any(js);
	etsi_keys_free(&k);

	/* Limits: ETSI_MAX_KEYS keys of ETSI_MAX_KEY_BYTES are fine; one key
	 * more, or one key 3 bytes larger, is refused. */
	cap = (size_t)(ETSI_MAX_KEYS + 1) * 64 + 2 * (ETSI_MAX_KEY_BYTES * 2) + 64;
	assert_non_null(big = malloc(cap));
	for (int extra = 0; extra < 2; extra++) {
		off = (size_t)snprintf(big, cap, "{\"keys\":[");
		for (int i = 0; i < ETSI_MAX_KEYS + extra; i++)
			off += (size_t)snprintf(big + off, cap - off,
			    "%s{\"key_ID\":\"k%d\",\"key\":\"AAAA\"}", i ? "," : "", i);
		snprintf(big + off, cap - off, "]}");
		assert_int_equal(etsi_keys_parse(big, strlen(big), &k, err),
		    extra ? -1 : 0);
		if (extra)
			assert_non_null(strstr(err, "has 1025 entries"));
		else
			assert_int_equal(k.n, ETSI_MAX_KEYS);
		etsi_keys_free(&k);
	}
	for (int extra = 0; extra < 2; extra++) {
		size_t nb64 = B64_ENCLEN(ETSI_MAX_KEY_BYTES + 3 * extra);

		off = (size_t)snprintf(big, cap, "{\"keys\":[{\"key_ID\":\"k\","
		    "\"key\":\"");
		memset(big + off, 'A', nb64);
		off += nb64;
		if (!extra)	/* 8192 = 3 * 2730 + 2: one pad char */
			big[off - 1] = '=';
		snprintf(big + off, cap - off, "\"}]}");
		assert_int_equal(etsi_keys_parse(big, strlen(big), &k, err),
		    extra ? -1 : 0);
		if (extra)
			assert_non_null(strstr(err, "longer than 8192 bytes"));
		else
			assert_int_equal(k.v[0].len, ETSI_MAX_KEY_BYTES);
		etsi_keys_free(&k);
	}
	free(big);

	run_bad(p_keys, bad, sizeof(bad) / sizeof(bad[0]));
	run_prefixes(p_keys, KEYS_OK, KEY1_B64);
	run_prefixes(p_keys, KEYS_OK, KEY2_B64);
}

static void
test_key_ids(void **state)
{
	static const struct bad bad[] = {
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
	struct etsi_key_ids ids, ids2;
	char err[ETSI_ERRLEN], *js, *big;
	size_t off, cap;

	assert_int_equal(etsi_key_ids_parse(KEYIDS_OK, strlen(KEYIDS_OK), &ids,
	    err), 0);
	assert_int_equal(ids.n, 2);
	assert_string_equal(ids.ids[0], "bc490419-7d60-487f-adc1-4ddcc177c139");
	assert_string_equal(ids.ids[1], "0a782fb5-3434-48fe-aa4d-14f41d46cf92");
	assert_non_null(js = etsi_key_ids_dump(&ids));
	assert_string_equal(js, "{\"key_IDs\":[{\"key_ID\":\"bc490419-7d60-487f-"
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
	{
		const char *js64 = "{\"key_IDs\":[{\"key_ID\":\"012345678901234567"
		    "8901234567890123456789012345678901234567890123\"}]}";

		assert_int_equal(etsi_key_ids_parse(js64, strlen(js64), &ids, err),
		    0);
		assert_int_equal(strlen(ids.ids[0]), ETSI_KEY_ID_MAX);
		etsi_key_ids_free(&ids);
	}
	cap = (size_t)(ETSI_MAX_KEYS + 1) * 32 + 32;
	assert_non_null(big = malloc(cap));
	off = (size_t)snprintf(big, cap, "{\"key_IDs\":[");
	for (int i = 0; i < ETSI_MAX_KEYS + 1; i++)
		off += (size_t)snprintf(big + off, cap - off, "%s{\"key_ID\":\"%d\"}",
		    i ? "," : "", i);
	snprintf(big + off, cap - off, "]}");
	assert_int_equal(etsi_key_ids_parse(big, strlen(big), &ids, err), -1);
	assert_non_null(strstr(err, "has 1025 entries"));
	free(big);

	run_bad(p_ids, bad, sizeof(bad) / sizeof(bad[0]));
	run_prefixes(p_ids, KEYIDS_OK, NULL);
}

static void
test_error(void **state)
{
	static const struct {
		const char	*js;
		int		 rc;
		const char	*msg, *detail;
	} t[] = {
		{ "{\"message\":\"size shall be a multiple of 8\"}", 0,
		  "size shall be a multiple of 8", "" },
		{ "{\"message\":\"m\",\"details\":[{\"detail\":\"d1\"},{\"x\":2}]}",
		  0, "m", "d1" },
		{ "{\"message\":\"m\",\"details\":[{\"a\":1,\"b\":\"c\"}]}", 0, "m",
		  "{\"a\":1,\"b\":\"c\"}" },
		{ "{\"message\":\"m\",\"details\":[{\"a\":[1]}]}", 0, "m",
		  "{\"a\":[1]}" },
		{ "{\"message\":\"m\",\"details\":[\"plain\"]}", 0, "m", "plain" },
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
		    sizeof(msg), detail, sizeof(detail)), t[i].rc);
		assert_string_equal(msg, t[i].msg);
		assert_string_equal(detail, t[i].detail);
	}
	/* Truncation to the caller's buffers; NULL detail buffer. */
	assert_int_equal(etsi_error_parse(t[0].js, strlen(t[0].js), small,
	    sizeof(small), NULL, 0), 0);
	assert_string_equal(small, "siz");

	assert_non_null(js = etsi_error_dump(ETSI_MSG_SIZE_MULT8, "size 250"));
	assert_string_equal(js, "{\"message\":\"size shall be a multiple of 8\","
	    "\"details\":[{\"detail\":\"size 250\"}]}");
	assert_int_equal(etsi_error_parse(js, strlen(js), msg, sizeof(msg),
	    detail, sizeof(detail)), 0);
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
		const char	*js;
		unsigned	 max;
		int		 ok;
	} t[] = {
		{ "{}", 1, 1 },
		{ "{\"a\":[]}", 1, 0 },
		{ "{\"a\":[]}", 2, 1 },
		{ "[[]][[]]", 2, 1 },			/* depth, not count */
		{ "{\"[[[[\":\"{{{{\"}", 1, 1 },	/* inside strings */
		{ "{\"a\\\"[[\":1}", 1, 1 },		/* escaped quote */
		{ "{\"a\\\\\":[[1]]}", 2, 0 },	/* escaped backslash */
		{ "]]]]{", 1, 1 },			/* no underflow */
		{ "", 0, 1 },
	};
	struct etsi_key_req	 kr;
	struct etsi_keys	 keys;
	struct etsi_status	 st;
	char			 err[ETSI_ERRLEN], *deep, msg[64];
	size_t			 n = 0;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(etsi_json_depth_ok(t[i].js, strlen(t[i].js),
		    t[i].max), t[i].ok);
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
	assert_int_equal(etsi_error_parse(deep, n, msg, sizeof(msg), NULL, 0), -1);
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
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_key_ids),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_flips),
		cmocka_unit_test(test_json_depth),
	};

	sec_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
