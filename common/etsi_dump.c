/*
 * ETSI GS QKD 014 V1.1.1 JSON objects (section 6) written as compact JSON;
 * etsi_parse.c reads them. The Key container is written by hand so that
 * its keys have exactly one copy, the returned string.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/etsi.h"
#include "common/etsi_int.h"

/* Dumps o compactly and drops it. */
static char *
dump_drop(json_t *o, int ok)
{
	char *s = NULL;

	if (o != NULL && ok)
		s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

char *
etsi_status_dump(const struct etsi_status *s)
{
	const struct etsi_field *f;
	json_t			*o = json_object(), *v;
	const char		*p;
	int			 ok = o != NULL;

	for (f = etsi_status_fields;
	     ok && f < etsi_status_fields + ETSI_STATUS_NFIELDS; f++) {
		p = (const char *)s + f->off;
		v = f->is_id ? json_string(p) :
			       json_integer(*(const unsigned *)(const void *)p);
		ok = json_object_set_new(o, f->name, v) == 0;
	}
	return dump_drop(o, ok);
}

/* Mandatory extensions are dumped as {"name": true} each (only the names are
 * kept), optional ones as n empty objects (only the count is kept). */
char *
etsi_key_req_dump(const struct etsi_key_req *r)
{
	json_t *o = json_object(), *a;
	int	ok = o != NULL;

	ok = ok &&
	    json_object_set_new(o, "number",
		json_integer(r->number ? r->number : 1)) == 0;
	if (r->size)
		ok = ok &&
		    json_object_set_new(o, "size", json_integer(r->size)) == 0;
	if (ok && r->nslaves) {
		ok = (a = json_array()) != NULL &&
		    json_object_set_new(o, "additional_slave_SAE_IDs", a) == 0;
		for (size_t i = 0; ok && i < r->nslaves; i++)
			ok = json_array_append_new(a,
				 json_string(r->slaves[i])) == 0;
	}
	if (ok && r->n_ext_mandatory) {
		ok = (a = json_array()) != NULL &&
		    json_object_set_new(o, "extension_mandatory", a) == 0;
		for (size_t i = 0; ok && i < r->n_ext_mandatory; i++)
			ok = json_array_append_new(a,
				 json_pack("{s:b}", r->ext_mandatory[i], 1)) ==
			    0;
	}
	if (ok && r->n_ext_optional) {
		ok = (a = json_array()) != NULL &&
		    json_object_set_new(o, "extension_optional", a) == 0;
		for (size_t i = 0; ok && i < r->n_ext_optional; i++)
			ok = json_array_append_new(a, json_object()) == 0;
	}
	return dump_drop(o, ok);
}

/* Writes s as a JSON string body (no quotes) into out, or only counts when
 * out is NULL; returns the length. */
static size_t
json_esc(char *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t		  n = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			if (out)
				out[n] = '\\', out[n + 1] = (char)c;
			n += 2;
		} else if (c < 0x20) {
			if (out)
				memcpy(out + n, "\\u00", 4),
				    out[n + 4] = hex[c >> 4],
					    out[n + 5] = hex[c & 15];
			n += 6;
		} else {
			if (out)
				out[n] = (char)c;
			n++;
		}
	}
	return n;
}

/*
 * Built by hand in one exactly sized allocation, not through Jansson, so
 * that no partial copy of the keys is left in freed memory whatever the
 * Jansson allocator: the only copy is the returned string.
 */
char *
etsi_keys_dump(const struct etsi_keys *k)
{
	static const char head[] = "{\"keys\":[", tail[] = "]}",
			  e1[] = "{\"key_ID\":\"", e2[] = "\",\"key\":\"",
			  e3[] = "\"}";
	size_t total = sizeof(head) - 1 + sizeof(tail) - 1, off;
	char  *s;

	for (size_t i = 0; i < k->n; i++) {
		if (k->v[i].len > ETSI_MAX_KEY_BYTES)
			return NULL;
		total += (i ? 1 : 0) + sizeof(e1) - 1 +
		    json_esc(NULL, k->v[i].id) + sizeof(e2) - 1 +
		    B64_ENCLEN(k->v[i].len) + sizeof(e3) - 1;
	}
	if ((s = malloc(total + 1)) == NULL)
		return NULL;
	memcpy(s, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	for (size_t i = 0; i < k->n; i++) {
		if (i)
			s[off++] = ',';
		memcpy(s + off, e1, sizeof(e1) - 1);
		off += sizeof(e1) - 1;
		off += json_esc(s + off, k->v[i].id);
		memcpy(s + off, e2, sizeof(e2) - 1);
		off += sizeof(e2) - 1;
		/* b64_encode NUL-terminates: room is there (tail follows). */
		if (b64_encode(k->v[i].key, k->v[i].len, s + off,
			total + 1 - off) == -1) {
			sec_free_any(s);
			return NULL;
		}
		off += B64_ENCLEN(k->v[i].len);
		memcpy(s + off, e3, sizeof(e3) - 1);
		off += sizeof(e3) - 1;
	}
	memcpy(s + off, tail, sizeof(tail)); /* with the NUL */
	return s;
}

char *
etsi_key_ids_dump(const struct etsi_key_ids *k)
{
	json_t *o = json_object(), *a;
	int	ok = o != NULL;

	ok = ok && (a = json_array()) != NULL &&
	    json_object_set_new(o, "key_IDs", a) == 0;
	for (size_t i = 0; ok && i < k->n; i++)
		ok = json_array_append_new(a,
			 json_pack("{s:s}", "key_ID", k->ids[i])) == 0;
	return dump_drop(o, ok);
}

char *
etsi_error_dump(const char *msg, const char *detail)
{
	json_t *o = json_object();
	int	ok = o != NULL;

	ok = ok &&
	    json_object_set_new(o, "message", json_string(msg ? msg : "")) == 0;
	if (ok && detail != NULL)
		ok = json_object_set_new(o, "details",
			 json_pack("[{s:s}]", "detail", detail)) == 0;
	return dump_drop(o, ok);
}
