/*
 * ETSI GS QKD 014 V1.1.1 JSON objects (section 6) parsed with Jansson;
 * etsi_dump.c writes them.
 *
 * Requests (Key request, Key IDs) are parsed strictly: unknown members are
 * errors, so a caller's typo is reported rather than silently ignored.
 * Answers (Status, Key container, Error) ignore unknown members, so that a
 * KME that adds vendor fields still interoperates; the fields we use are
 * checked as strictly as in requests.
 *
 * Error strings never carry key material: Jansson's own parse messages end
 * in "near '<token>'", which can be a piece of a key, and that part is cut.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/etsi.h"
#include "common/etsi_int.h"

#define ETSI_MAX_EXT 64 /* extension member names we record */
#define QUOTE_MAX    40 /* bad values quoted in errors up to this length */

/* Copies s into a short, printable form for error messages. */
static const char *
quote(char out[static QUOTE_MAX + 4], const char *s)
{
	size_t i;

	for (i = 0; i < QUOTE_MAX && s[i] != '\0'; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] != '\0')
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
	return out;
}

/* Loads one JSON object from (js, len); -1 with err set otherwise. */
static json_t *
load_object(const char *js, size_t len, char *err)
{
	json_error_t jerr;
	json_t	    *o;
	size_t	     i;
	char	    *near;

	if (js == NULL)
		len = 0;
	for (i = 0; i < len; i++)
		if (js[i] != ' ' && js[i] != '\t' && js[i] != '\r' &&
		    js[i] != '\n')
			break;
	if (i == len) {
		snprintf(err, ETSI_ERRLEN, "empty body");
		return NULL;
	}
	if (!etsi_json_depth_ok(js, len, ETSI_JSON_MAX_DEPTH)) {
		snprintf(err, ETSI_ERRLEN, "JSON nested deeper than %d levels",
		    ETSI_JSON_MAX_DEPTH);
		return NULL;
	}
	if ((o = json_loadb(js, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
		 &jerr)) == NULL) {
		if ((near = strstr(jerr.text, " near ")) != NULL)
			*near = '\0';
		snprintf(err, ETSI_ERRLEN,
		    "invalid JSON at line %d column %d: %s", jerr.line,
		    jerr.column, jerr.text);
		explicit_bzero(&jerr, sizeof(jerr));
		return NULL;
	}
	if (!json_is_object(o)) {
		snprintf(err, ETSI_ERRLEN, "body must be a JSON object");
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Fails on the first member of o not in the NULL-terminated list. */
static int
check_members(json_t *o, const char *const *known, const char *what, char *err)
{
	const char *k;
	json_t	   *v;
	char	    q[QUOTE_MAX + 4];

	json_object_foreach(o, k, v) {
		size_t i;

		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL) {
			snprintf(err, ETSI_ERRLEN, "unknown member \"%s\"%s%s",
			    quote(q, k), what ? " in " : "", what ? what : "");
			return -1;
		}
	}
	return 0;
}

/* Integer member in [min, max]; absent is an error if required, else *out
 * is left alone. */
static int
get_uint(json_t *o, const char *name, bool required, unsigned min, unsigned max,
    unsigned *out, char *err)
{
	json_t	  *v = json_object_get(o, name);
	json_int_t n;

	if (v == NULL) {
		if (!required)
			return 0;
		snprintf(err, ETSI_ERRLEN, "missing \"%s\"", name);
		return -1;
	}
	if (!json_is_integer(v)) {
		snprintf(err, ETSI_ERRLEN, "\"%s\" must be an integer", name);
		return -1;
	}
	n = json_integer_value(v);
	if (n < (json_int_t)min) {
		snprintf(err, ETSI_ERRLEN, "\"%s\" must be >= %u (got %lld)",
		    name, min, (long long)n);
		return -1;
	}
	if (n > (json_int_t)max) {
		snprintf(err, ETSI_ERRLEN, "\"%s\" must be <= %u (got %lld)",
		    name, max, (long long)n);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* Required SAE/KME ID member copied into out[ETSI_ID_MAX + 1]. */
static int
get_id(json_t *o, const char *name, char *out, char *err)
{
	json_t	   *v = json_object_get(o, name);
	const char *s;
	char	    q[QUOTE_MAX + 4];

	if (v == NULL) {
		snprintf(err, ETSI_ERRLEN, "missing \"%s\"", name);
		return -1;
	}
	if (!json_is_string(v)) {
		snprintf(err, ETSI_ERRLEN, "\"%s\" must be a string", name);
		return -1;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v) || !etsi_id_valid(s)) {
		snprintf(err, ETSI_ERRLEN, "\"%s\" is not a valid ID: \"%s\"",
		    name, quote(q, s));
		return -1;
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* Array member name of o with 1..ETSI_MAX_KEYS entries. */
static json_t *
get_array(json_t *o, const char *name, char *err)
{
	json_t *a;

	if ((a = json_object_get(o, name)) == NULL) {
		snprintf(err, ETSI_ERRLEN, "missing \"%s\"", name);
		return NULL;
	}
	if (!json_is_array(a)) {
		snprintf(err, ETSI_ERRLEN, "\"%s\" must be an array", name);
		return NULL;
	}
	if (json_array_size(a) == 0 || json_array_size(a) > ETSI_MAX_KEYS) {
		snprintf(err, ETSI_ERRLEN,
		    "\"%s\" has %zu entries, 1 to %d "
		    "allowed",
		    name, json_array_size(a), ETSI_MAX_KEYS);
		return NULL;
	}
	return a;
}

/* A "key_ID" string (of entry what) copied into out[ETSI_KEY_ID_MAX + 1]. */
static int
get_key_id(json_t *id, const char *what, char *out, char *err)
{
	char q[QUOTE_MAX + 4];

	if (!etsi_key_id_valid(json_string_value(id), json_string_length(id)) ||
	    strlen(json_string_value(id)) != json_string_length(id)) {
		snprintf(err, ETSI_ERRLEN,
		    "%s: \"key_ID\" is not a valid "
		    "key ID: \"%s\"",
		    what, quote(q, json_string_value(id)));
		return -1;
	}
	memcpy(out, json_string_value(id), json_string_length(id) + 1);
	return 0;
}

int
etsi_status_parse(const char *js, size_t len, struct etsi_status *out,
    char err[static ETSI_ERRLEN])
{
	const struct etsi_field *f;
	json_t			*o;
	char			*p;
	int			 rc = -1;

	memset(out, 0, sizeof(*out));
	if ((o = load_object(js, len, err)) == NULL)
		return -1;
	for (f = etsi_status_fields;
	     f < etsi_status_fields + ETSI_STATUS_NFIELDS; f++) {
		p = (char *)out + f->off;
		if ((f->is_id ? get_id(o, f->name, p, err) :
				get_uint(o, f->name, true, 0, UINT_MAX,
				    (unsigned *)(void *)p, err)) == -1)
			goto done;
	}
	rc = 0;
done:
	json_decref(o);
	if (rc == -1)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* additional_slave_SAE_IDs */
static int
req_slaves(json_t *a, struct etsi_key_req *r, char *err)
{
	size_t	i;
	json_t *v;
	char	q[QUOTE_MAX + 4];

	if (!json_is_array(a)) {
		snprintf(err, ETSI_ERRLEN,
		    "\"additional_slave_SAE_IDs\" must be an array");
		return -1;
	}
	if (json_array_size(a) > ETSI_MAX_SLAVES) {
		snprintf(err, ETSI_ERRLEN,
		    "\"additional_slave_SAE_IDs\" has %zu "
		    "entries, at most %d allowed",
		    json_array_size(a), ETSI_MAX_SLAVES);
		return -1;
	}
	if (json_array_size(a) == 0)
		return 0;
	if ((r->slaves = calloc(json_array_size(a), sizeof(char *))) == NULL)
		goto nomem;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);

		if (s == NULL) {
			snprintf(err, ETSI_ERRLEN,
			    "\"additional_slave_SAE_IDs\" "
			    "entry %zu must be a string",
			    i);
			return -1;
		}
		if (strlen(s) != json_string_length(v) || !etsi_id_valid(s)) {
			snprintf(err, ETSI_ERRLEN,
			    "\"additional_slave_SAE_IDs\" "
			    "entry %zu is not a valid ID: \"%s\"",
			    i, quote(q, s));
			return -1;
		}
		if ((r->slaves[i] = strdup(s)) == NULL)
			goto nomem;
		r->nslaves++;
	}
	return 0;
nomem:
	snprintf(err, ETSI_ERRLEN, "out of memory");
	return -1;
}

/* extension_mandatory / extension_optional: arrays of objects. Mandatory
 * member names are recorded so that the KME can refuse what it lacks. */
static int
req_ext(json_t *a, const char *name, struct etsi_key_req *r, bool mandatory,
    char *err)
{
	size_t	    i;
	json_t	   *v, *mv;
	const char *k;

	if (!json_is_array(a)) {
		snprintf(err, ETSI_ERRLEN, "\"%s\" must be an array", name);
		return -1;
	}
	json_array_foreach(a, i, v) {
		if (!json_is_object(v)) {
			snprintf(err, ETSI_ERRLEN,
			    "\"%s\" entry %zu must be an "
			    "object",
			    name, i);
			return -1;
		}
		if (!mandatory) {
			r->n_ext_optional++;
			continue;
		}
		json_object_foreach(v, k, mv) {
			char **nv;

			if (r->n_ext_mandatory >= ETSI_MAX_EXT) {
				snprintf(err, ETSI_ERRLEN,
				    "\"%s\" has more than "
				    "%d members",
				    name, ETSI_MAX_EXT);
				return -1;
			}
			nv = realloc(r->ext_mandatory,
			    (r->n_ext_mandatory + 1) * sizeof(char *));
			if (nv == NULL)
				goto nomem;
			r->ext_mandatory = nv;
			if ((nv[r->n_ext_mandatory] = strdup(k)) == NULL)
				goto nomem;
			r->n_ext_mandatory++;
		}
	}
	return 0;
nomem:
	snprintf(err, ETSI_ERRLEN, "out of memory");
	return -1;
}

int
etsi_key_req_parse(const char *js, size_t len, struct etsi_key_req *out,
    char err[static ETSI_ERRLEN])
{
	static const char *const known[] = { "number", "size",
		"additional_slave_SAE_IDs", "extension_mandatory",
		"extension_optional", NULL };
	json_t			*o, *v;
	int			 rc = -1;

	memset(out, 0, sizeof(*out));
	out->number = 1;
	if ((o = load_object(js, len, err)) == NULL)
		return -1;
	if (check_members(o, known, NULL, err) == -1 ||
	    get_uint(o, "number", false, 1, UINT_MAX, &out->number, err) ==
		-1 ||
	    get_uint(o, "size", false, 1, UINT_MAX, &out->size, err) == -1)
		goto done;
	if ((v = json_object_get(o, "additional_slave_SAE_IDs")) != NULL &&
	    req_slaves(v, out, err) == -1)
		goto done;
	if ((v = json_object_get(o, "extension_mandatory")) != NULL &&
	    req_ext(v, "extension_mandatory", out, true, err) == -1)
		goto done;
	if ((v = json_object_get(o, "extension_optional")) != NULL &&
	    req_ext(v, "extension_optional", out, false, err) == -1)
		goto done;
	rc = 0;
done:
	json_decref(o);
	if (rc == -1)
		etsi_key_req_free(out);
	return rc;
}

/* One {"key_ID": ..., "key": ...} of a Key container. */
static int
key_entry(json_t *e, size_t i, struct etsi_key *k, char *err)
{
	json_t	   *id, *key;
	const char *s;
	size_t	    n, pad, want, got;
	char	    what[32];

	if (!json_is_object(e)) {
		snprintf(err, ETSI_ERRLEN, "keys[%zu] must be an object", i);
		return -1;
	}
	id = json_object_get(e, "key_ID");
	key = json_object_get(e, "key");
	if (id == NULL || key == NULL) {
		snprintf(err, ETSI_ERRLEN, "keys[%zu]: missing \"%s\"", i,
		    id == NULL ? "key_ID" : "key");
		return -1;
	}
	if (!json_is_string(id) || !json_is_string(key)) {
		snprintf(err, ETSI_ERRLEN, "keys[%zu]: \"%s\" must be a string",
		    i, !json_is_string(id) ? "key_ID" : "key");
		return -1;
	}
	snprintf(what, sizeof(what), "keys[%zu]", i);
	if (get_key_id(id, what, k->id, err) == -1)
		return -1;

	/* Exact decoded size from the padded length; the value is never
	 * quoted in errors. */
	s = json_string_value(key);
	n = json_string_length(key);
	if (n == 0) {
		snprintf(err, ETSI_ERRLEN, "keys[%zu]: \"key\" is empty", i);
		return -1;
	}
	if (n > B64_ENCLEN(ETSI_MAX_KEY_BYTES)) {
		snprintf(err, ETSI_ERRLEN,
		    "keys[%zu]: \"key\" is longer than "
		    "%d bytes",
		    i, ETSI_MAX_KEY_BYTES);
		return -1;
	}
	if (n % 4 != 0) {
		snprintf(err, ETSI_ERRLEN,
		    "keys[%zu]: \"key\" is not valid base64", i);
		return -1;
	}
	pad = (s[n - 1] == '=') + (s[n - 1] == '=' && s[n - 2] == '=');
	want = n / 4 * 3 - pad;
	if ((k->key = sec_alloc(want)) == NULL) {
		snprintf(err, ETSI_ERRLEN, "out of memory");
		return -1;
	}
	k->len = want;
	if (b64_decode(s, n, k->key, want, &got) == -1 || got != want) {
		snprintf(err, ETSI_ERRLEN,
		    "keys[%zu]: \"key\" is not valid base64", i);
		return -1;
	}
	return 0;
}

int
etsi_keys_parse(const char *js, size_t len, struct etsi_keys *out,
    char err[static ETSI_ERRLEN])
{
	json_t *o, *a, *e;
	size_t	i;
	int	rc = -1;

	memset(out, 0, sizeof(*out));
	if ((o = load_object(js, len, err)) == NULL)
		return -1;
	if ((a = get_array(o, "keys", err)) == NULL)
		goto done;
	if (etsi_keys_alloc(out, json_array_size(a)) == -1) {
		snprintf(err, ETSI_ERRLEN, "out of memory");
		goto done;
	}
	json_array_foreach(a, i, e) {
		if (key_entry(e, i, &out->v[i], err) == -1)
			goto done;
	}
	rc = 0;
done:
	json_decref(o);
	if (rc == -1)
		etsi_keys_free(out);
	return rc;
}

/* One {"key_ID": ...} of a Key IDs object. */
static int
key_ids_entry(json_t *e, size_t i, char *out, char *err)
{
	static const char *const known_e[] = { "key_ID", "key_ID_extension",
		NULL };
	json_t			*id;
	char			 what[32];

	snprintf(what, sizeof(what), "key_IDs[%zu]", i);
	if (!json_is_object(e)) {
		snprintf(err, ETSI_ERRLEN, "%s must be an object", what);
		return -1;
	}
	if (check_members(e, known_e, what, err) == -1)
		return -1;
	if ((id = json_object_get(e, "key_ID")) == NULL) {
		snprintf(err, ETSI_ERRLEN, "%s: missing \"key_ID\"", what);
		return -1;
	}
	if (!json_is_string(id)) {
		snprintf(err, ETSI_ERRLEN, "%s: \"key_ID\" must be a string",
		    what);
		return -1;
	}
	return get_key_id(id, what, out, err);
}

int
etsi_key_ids_parse(const char *js, size_t len, struct etsi_key_ids *out,
    char err[static ETSI_ERRLEN])
{
	static const char *const known[] = { "key_IDs", "key_IDs_extension",
		NULL };
	json_t			*o, *a, *e;
	size_t			 i;
	int			 rc = -1;

	memset(out, 0, sizeof(*out));
	if ((o = load_object(js, len, err)) == NULL)
		return -1;
	if (check_members(o, known, NULL, err) == -1 ||
	    (a = get_array(o, "key_IDs", err)) == NULL)
		goto done;
	if (etsi_key_ids_alloc(out, json_array_size(a)) == -1) {
		snprintf(err, ETSI_ERRLEN, "out of memory");
		goto done;
	}
	json_array_foreach(a, i, e) {
		if (key_ids_entry(e, i, out->ids[i], err) == -1)
			goto done;
	}
	rc = 0;
done:
	json_decref(o);
	if (rc == -1)
		etsi_key_ids_free(out);
	return rc;
}

/* Copies s into dst[cap], truncated, always NUL-terminated. */
static void
copy_out(char *dst, size_t cap, const char *s)
{
	size_t n;

	if (dst == NULL || cap == 0)
		return;
	n = strlen(s);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

int
etsi_error_parse(const char *js, size_t len, char *msg, size_t msgcap,
    char *detail, size_t detailcap)
{
	char	err[ETSI_ERRLEN];
	json_t *o, *m, *d, *d0;
	char   *txt;
	int	rc = -1;

	copy_out(msg, msgcap, "");
	copy_out(detail, detailcap, "");
	if ((o = load_object(js, len, err)) == NULL)
		return -1;
	if ((m = json_object_get(o, "message")) == NULL || !json_is_string(m))
		goto done;
	copy_out(msg, msgcap, json_string_value(m));
	rc = 0;
	d = json_object_get(o, "details");
	if (!json_is_array(d) || (d0 = json_array_get(d, 0)) == NULL)
		goto done;
	/* {"detail": "text"} -> text; anything else -> its compact JSON. */
	if (json_is_object(d0) && json_object_size(d0) == 1) {
		json_t *v = json_object_iter_value(json_object_iter(d0));

		if (json_is_string(v)) {
			copy_out(detail, detailcap, json_string_value(v));
			goto done;
		}
	}
	if (json_is_string(d0)) {
		copy_out(detail, detailcap, json_string_value(d0));
		goto done;
	}
	if ((txt = json_dumps(d0, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		copy_out(detail, detailcap, txt);
		free(txt);
	}
done:
	json_decref(o);
	return rc;
}
