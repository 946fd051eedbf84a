/*
 * ETSI GS QKD 014 V1.1.1 data formats (section 6): Status, Key request, Key
 * container, Key IDs and Error, parsed strictly from JSON and dumped to JSON.
 * Shared by the client library, the simulator and kmsd. etsi_parse.c
 * parses, etsi_dump.c dumps, etsi.c holds what both use.
 *
 * Key bytes live in sec_alloc memory; dumped JSON that carries keys must be
 * released with sec_free_any(). Call sec_json_init() once per process so that
 * Jansson's own copies are wiped too.
 */
#ifndef COMMON_ETSI_H
#define COMMON_ETSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETSI_ID_MAX	    128	 /* SAE / KME ID length we accept */
#define ETSI_KEY_ID_MAX	    64	 /* key_ID length we accept */
#define ETSI_MAX_KEYS	    1024 /* keys in one container / key IDs list */
#define ETSI_MAX_SLAVES	    64	 /* additional_slave_SAE_IDs */
#define ETSI_MAX_KEY_BYTES  8192 /* 65536 bits */
#define ETSI_ERRLEN	    256
#define ETSI_JSON_MAX_DEPTH 32 /* nesting of [ and {; ETSI objects use 4 */

/* The spec's own wording for its error cases. */
#define ETSI_MSG_SIZE_MULT8 "size shall be a multiple of 8"
#define ETSI_MSG_EXT_MAND   "not all extension_mandatory parameters are supported"
#define ETSI_MSG_EXT_MAND_OPT                                                  \
	"not all extension_mandatory request options could be met"
#define ETSI_MSG_EXT_OPT       "not all extension_optional request options handled"
#define ETSI_MSG_KEYS_NOTFOUND "one or more keys specified are not found on KME"

struct etsi_status {
	char	 source_kme_id[ETSI_ID_MAX + 1];
	char	 target_kme_id[ETSI_ID_MAX + 1];
	char	 master_sae_id[ETSI_ID_MAX + 1];
	char	 slave_sae_id[ETSI_ID_MAX + 1];
	unsigned key_size;
	unsigned stored_key_count;
	unsigned max_key_count;
	unsigned max_key_per_request;
	unsigned max_key_size;
	unsigned min_key_size;
	unsigned max_sae_id_count;
};

struct etsi_key_req {
	unsigned number; /* 1 when absent */
	unsigned size;	 /* 0 when absent: KME default */
	char   **slaves; /* additional_slave_SAE_IDs */
	size_t	 nslaves;
	char   **ext_mandatory; /* names of the mandatory extensions asked */
	size_t	 n_ext_mandatory;
	size_t	 n_ext_optional;
};

struct etsi_key {
	char	 id[ETSI_KEY_ID_MAX + 1];
	uint8_t *key; /* sec_alloc */
	size_t	 len; /* bytes */
};

struct etsi_keys {
	struct etsi_key *v;
	size_t		 n;
};

struct etsi_key_ids {
	char (*ids)[ETSI_KEY_ID_MAX + 1];
	size_t n;
};

/* Parsers: 0 on success, -1 with a message fit for an Error body in err. */
int etsi_status_parse(const char *js, size_t len, struct etsi_status *out,
    char err[static ETSI_ERRLEN]);
int etsi_key_req_parse(const char *js, size_t len, struct etsi_key_req *out,
    char err[static ETSI_ERRLEN]);
int etsi_keys_parse(const char *js, size_t len, struct etsi_keys *out,
    char err[static ETSI_ERRLEN]);
int etsi_key_ids_parse(const char *js, size_t len, struct etsi_key_ids *out,
    char err[static ETSI_ERRLEN]);
/* Error body: message (and first detail, if any) copied out; -1 if not one. */
int etsi_error_parse(const char *js, size_t len, char *msg, size_t msgcap,
    char *detail, size_t detailcap);

/* Dumpers: compact JSON, NUL-terminated, or NULL on ENOMEM. */
char *etsi_status_dump(const struct etsi_status *s);   /* free() */
char *etsi_key_req_dump(const struct etsi_key_req *r); /* free() */
char *etsi_keys_dump(const struct etsi_keys *k);       /* sec_free_any() */
char *etsi_key_ids_dump(const struct etsi_key_ids *k); /* free() */
/* {"message": msg, "details": [{"detail": detail}]}; detail may be NULL. */
char *etsi_error_dump(const char *msg, const char *detail); /* free() */

/*
 * Whether the JSON text (js, len) nests [ and { at most max deep (brackets
 * in strings do not count). A linear pre-scan: Jansson's own limit
 * (2048) is a recursion bound, not a policy.
 */
bool etsi_json_depth_ok(const char *js, size_t len, unsigned max);

/* SAE/KME ID check: 1..ETSI_ID_MAX printable ASCII, no '/', '?', '%', '"'. */
bool etsi_id_valid(const char *s);

void etsi_key_req_free(struct etsi_key_req *r);
int  etsi_keys_alloc(struct etsi_keys *k, size_t n); /* zeroed entries */
void etsi_keys_free(struct etsi_keys *k);	     /* wipes */
int  etsi_key_ids_alloc(struct etsi_key_ids *k, size_t n);
void etsi_key_ids_free(struct etsi_key_ids *k);

#endif
