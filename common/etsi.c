/*
 * ETSI GS QKD 014 V1.1.1 objects (section 6): what the parser (etsi_parse.c)
 * and the dumper (etsi_dump.c) share: ID checks, the Status member table,
 * and the allocation of the containers.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/etsi_int.h"

#define STATUS_ID(m, f)                                                        \
	{                                                                      \
		m, offsetof(struct etsi_status, f), true                       \
	}
#define STATUS_UINT(m, f)                                                      \
	{                                                                      \
		m, offsetof(struct etsi_status, f), false                      \
	}

const struct etsi_field etsi_status_fields[ETSI_STATUS_NFIELDS] = {
	STATUS_ID("source_KME_ID", source_kme_id),
	STATUS_ID("target_KME_ID", target_kme_id),
	STATUS_ID("master_SAE_ID", master_sae_id),
	STATUS_ID("slave_SAE_ID", slave_sae_id),
	STATUS_UINT("key_size", key_size),
	STATUS_UINT("stored_key_count", stored_key_count),
	STATUS_UINT("max_key_count", max_key_count),
	STATUS_UINT("max_key_per_request", max_key_per_request),
	STATUS_UINT("max_key_size", max_key_size),
	STATUS_UINT("min_key_size", min_key_size),
	STATUS_UINT("max_SAE_ID_count", max_sae_id_count),
};

bool
etsi_id_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= ETSI_ID_MAX || c < 0x20 || c > 0x7e || c == '/' ||
		    c == '?' || c == '%' || c == '"')
			return false;
	}
	return i > 0;
}

/* key_ID: 1..ETSI_KEY_ID_MAX visible ASCII (no spaces: IDs are printed as
 * whitespace-separated columns and passed on command lines). */
bool
etsi_key_id_valid(const char *s, size_t len)
{
	if (len == 0 || len > ETSI_KEY_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

bool
etsi_json_depth_ok(const char *js, size_t len, unsigned max)
{
	unsigned depth = 0;
	bool	 instr = false;

	for (size_t i = 0; js != NULL && i < len; i++) {
		char c = js[i];

		if (instr) {
			if (c == '\\')
				i++; /* the escaped character */
			else if (c == '"')
				instr = false;
		} else if (c == '"')
			instr = true;
		else if (c == '[' || c == '{') {
			if (++depth > max)
				return false;
		} else if ((c == ']' || c == '}') && depth > 0)
			depth--;
	}
	return true;
}

int
etsi_keys_alloc(struct etsi_keys *k, size_t n)
{
	memset(k, 0, sizeof(*k));
	if (n != 0 && (k->v = calloc(n, sizeof(*k->v))) == NULL)
		return -1;
	k->n = n;
	return 0;
}

void
etsi_keys_free(struct etsi_keys *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; k->v != NULL && i < k->n; i++)
		sec_free(k->v[i].key, k->v[i].len);
	free(k->v);
	memset(k, 0, sizeof(*k));
}

int
etsi_key_ids_alloc(struct etsi_key_ids *k, size_t n)
{
	memset(k, 0, sizeof(*k));
	if (n != 0 && (k->ids = calloc(n, sizeof(*k->ids))) == NULL)
		return -1;
	k->n = n;
	return 0;
}

void
etsi_key_ids_free(struct etsi_key_ids *k)
{
	if (k == NULL)
		return;
	free(k->ids);
	memset(k, 0, sizeof(*k));
}

void
etsi_key_req_free(struct etsi_key_req *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; r->slaves != NULL && i < r->nslaves; i++)
		free(r->slaves[i]);
	for (size_t i = 0; r->ext_mandatory != NULL && i < r->n_ext_mandatory;
	     i++)
		free(r->ext_mandatory[i]);
	free(r->slaves);
	free(r->ext_mandatory);
	memset(r, 0, sizeof(*r));
}
