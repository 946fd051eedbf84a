/*
 * The endpoints' kmsd client: one ETSI GS QKD 014 connection (mutual TLS,
 * kept alive) opened at start-up, and the calls the IKE modes need:
 *
 *   qkd     N3IWF: ONE enc_keys {number 13, size 256} for slave = the UE's
 *           SAE ID; UE: ONE dec_keys with the 13 key IDs (master = the
 *           N3IWF's SAE ID).
 *   qkd+dh  UE (initiator, master SAE): enc_keys {number 1, size 256} for
 *           slave = the N3IWF's SAE ID; N3IWF: dec_keys with that one ID.
 *
 * Keys come back in struct ike_qkd_keys (sec_alloc memory, wiped on free).
 * Errors say what failed (HTTP status, kmsd's message) in `why`, never
 * key bytes.
 */
#ifndef IKE_QKD_H
#define IKE_QKD_H

#include <stddef.h>
#include <stdint.h>

#include "common/etsi.h"

#define IKE_QKD_NKEYS  13 /* keys for one NWu connection */
#define IKE_QKD_KEYLEN 32 /* 256-bit keys */
#define IKE_QKD_WHYLEN 256

/* Key index -> use (ike/README.md). */
enum {
	QK_SK_EI = 0,
	QK_SK_ER,
	QK_SK_AI,
	QK_SK_AR, /* IKE SA */
	QK_C1_EI = 4,
	QK_C1_ER,
	QK_C1_AI,
	QK_C1_AR, /* Child SA 1 (NAS signalling) */
	QK_C2_EI = 8,
	QK_C2_ER,
	QK_C2_AI,
	QK_C2_AR,     /* Child SA 2 (user plane) */
	QK_AUTH = 12, /* PSK / AUTH key */
};

struct ike_qkd_keys {
	size_t	n;
	uint8_t uuid[IKE_QKD_NKEYS][16]; /* key IDs, binary */
	char	id[IKE_QKD_NKEYS]
	       [ETSI_KEY_ID_MAX + 1]; /* key IDs as kmsd gave them */
	uint8_t key[IKE_QKD_NKEYS][IKE_QKD_KEYLEN];
};

struct ike_qkd;
struct ikecfg;

/* Makes the client and warms the connection up (a failed warm-up only
 * warns: kmsd may come later). NULL with a reason in err. */
struct ike_qkd *ike_qkd_open(const struct ikecfg *c, char *err, size_t errlen);
void		ike_qkd_close(struct ike_qkd *q); /* NULL ok */
/* Our SAE ID (--sae-id, else the CN of the kmsd client certificate). */
const char     *ike_qkd_sae(const struct ike_qkd *q);

struct ike_qkd_keys *ike_qkd_keys_new(void);	/* sec_alloc, zeroed */
void ike_qkd_keys_free(struct ike_qkd_keys *k); /* wipes; NULL ok */

/*
 * enc_keys {number n, size 256} for `slave`; n <= IKE_QKD_NKEYS. Key IDs
 * must be UUIDs (they go on the wire as 16 bytes). 0 or -1 with `why`.
 */
int ike_qkd_enc(struct ike_qkd *q, const char *slave, unsigned n,
    struct ike_qkd_keys *out, char why[static IKE_QKD_WHYLEN]);
/* dec_keys for ids (n strings) from `master`; out in the order of ids. */
int ike_qkd_dec(struct ike_qkd *q, const char	    *master,
    const char (*ids)[ETSI_KEY_ID_MAX + 1], unsigned n,
    struct ike_qkd_keys *out, char why[static IKE_QKD_WHYLEN]);

/* QKD_KEY_IDS notify data: count(1) | count x 16-byte UUID. 0 or -1
 * (logged). */
int ike_qkd_ids_encode(const struct ike_qkd_keys *k, uint8_t *out, size_t cap,
    size_t *len);
/* Parses it into k->uuid / k->id (strings); exactly `want` IDs. 0 or -1
 * (logged). */
int ike_qkd_ids_decode(const uint8_t *p, size_t len, unsigned want,
    struct ike_qkd_keys *k);

#endif
