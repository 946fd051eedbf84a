/*
 * IKEv2 payloads: a bounded parser for one payload chain (plain, or the
 * decrypted contents of SK) and builders that append payloads to a
 * struct buf (reserve / fill / back-patch of next-payload and length).
 *
 * Parsing: ike_pld_parse() checks every length, then copies headers and
 * fixed fields into the structs below. Variable-length data is returned
 * as struct ike_bytes pointing INTO the parsed bytes: keep those bytes
 * alive (and unchanged) while using the result.
 *
 * Building:
 *	struct ike_chain c;
 *	ike_chain_init(&c, &b, off);	   off = where the first next-payload
 *					   byte lives, or IKE_CHAIN_DETACHED
 *	ike_pld_add_nonce(&c, n, 32);	   ... one call per payload
 *	(c.first is the type of the first payload added)
 * ike/msg.h wraps this for whole messages.
 *
 * Files: the parser in ike/pld.c, the builders in ike/pld_build.c, SA
 * proposal descriptions and the choosers in ike/pld_sa.c.
 */
#ifndef IKE_PLD_H
#define IKE_PLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "ike/ikev2.h"

#define IKE_PLD_MAX	32 /* payloads in one chain */
#define IKE_PROP_MAX	8  /* proposals in one SA payload */
#define IKE_XF_MAX	64 /* transforms in one proposal (strongSwan sends ~30) */
#define IKE_KE_MAX	4 /* KE methods in a proposal description */
#define IKE_NOTIFY_MAX	16
#define IKE_CERT_MAX	4 /* CERT and CERTREQ payloads each */
#define IKE_CP_ATTR_MAX 16
#define IKE_TS_MAX	8
#define IKE_SPI_MAX	8 /* longest SPI in a proposal/notify */

/* Bytes borrowed from the parsed message (p == NULL when len == 0). */
struct ike_bytes {
	const uint8_t *p;
	size_t	       len;
};

struct ike_xform {
	uint8_t	 type; /* IKE_XF_* */
	uint16_t id;
	uint16_t keylen;   /* Key Length attribute, bits; 0 = absent */
	uint8_t	 bad_attr; /* an attribute we do not know: reject it */
};

struct ike_proposal {
	uint8_t		 num;
	uint8_t		 proto; /* IKE_PROTO_* */
	uint8_t		 spi_len;
	uint8_t		 spi[IKE_SPI_MAX];
	size_t		 nxf;
	struct ike_xform xf[IKE_XF_MAX];
};

struct ike_sa_pld {
	size_t		    nprop;
	struct ike_proposal prop[IKE_PROP_MAX];
};

struct ike_ke_pld {
	uint16_t	 group;
	struct ike_bytes data;
};

struct ike_notify {
	uint8_t		 proto;
	uint8_t		 spi_len;
	uint8_t		 spi[IKE_SPI_MAX];
	uint16_t	 type; /* IKE_N_* */
	struct ike_bytes data;
};

struct ike_id_pld {
	uint8_t		 type; /* IKE_ID_* */
	struct ike_bytes data; /* identification data */
	struct ike_bytes body; /* type..data: the ID' AUTH signs */
};

struct ike_auth_pld {
	uint8_t		 method; /* IKE_AUTH_* */
	struct ike_bytes data;
};

struct ike_cert_pld {
	uint8_t		 enc; /* IKE_CERT_* */
	struct ike_bytes data;
};

struct ike_eap_pld {
	uint8_t		 code; /* IKE_EAP_* (checked: 1..4) */
	uint8_t		 id;
	struct ike_bytes raw; /* the whole EAP packet */
};

struct ike_cp_attr {
	uint16_t	 type; /* IKE_CP_* (R bit cleared) */
	struct ike_bytes val;
};

struct ike_cp_pld {
	uint8_t		   type; /* IKE_CFG_* */
	size_t		   nattr;
	struct ike_cp_attr attr[IKE_CP_ATTR_MAX];
};

struct ike_ts {
	uint8_t	 type;	  /* IKE_TS_IPV4_ADDR_RANGE or _IPV6_ */
	uint8_t	 ipproto; /* 0 = any */
	uint16_t sport, eport;
	uint8_t	 start[16], end[16]; /* 4 or 16 bytes used */
};

struct ike_ts_pld {
	size_t	      nts;
	struct ike_ts ts[IKE_TS_MAX];
};

struct ike_delete_pld {
	uint8_t		 proto;
	uint8_t		 spi_len; /* 0 (IKE) or 4 (ESP/AH) */
	uint16_t	 nspi;
	struct ike_bytes spis; /* nspi * spi_len bytes */
};

struct ike_sk_pld {
	uint8_t		 first; /* first inner payload type */
	size_t		 off;	/* offset of SK body in the chain */
	struct ike_bytes body;	/* IV | ciphertext | ICV */
};

/* One payload of the chain, in order. */
struct ike_pld_ent {
	uint8_t		 type;
	uint8_t		 critical;
	struct ike_bytes body; /* after the generic header */
};

/*
 * Everything found in one chain. Payloads that may repeat (Notify, CERT,
 * CERTREQ, Vendor ID) are listed; a second copy of any other known
 * payload is INVALID_SYNTAX. Test presence with IKE_PLD_HAS(p, type).
 */
struct ike_pld {
	uint64_t	   seen; /* bit (type - 32) per payload type */
	size_t		   n;
	struct ike_pld_ent list[IKE_PLD_MAX];

	struct ike_sa_pld     sa;
	struct ike_ke_pld     ke;
	struct ike_bytes      nonce;
	struct ike_id_pld     idi, idr;
	struct ike_auth_pld   auth;
	struct ike_eap_pld    eap;
	struct ike_cp_pld     cp;
	struct ike_ts_pld     tsi, tsr;
	struct ike_delete_pld del;
	struct ike_sk_pld     sk;
	size_t		      ncert, ncertreq, nnotify;
	struct ike_cert_pld   cert[IKE_CERT_MAX];
	struct ike_cert_pld   certreq[IKE_CERT_MAX];
	struct ike_notify     notify[IKE_NOTIFY_MAX];

	/* On failure: the error notify to send (0 = drop silently). */
	uint16_t err;
	uint8_t	 err_type; /* UNSUPPORTED_CRITICAL_PAYLOAD data */
};

#define IKE_PLD_BIT(type)                                                      \
	((type) >= 32 && (type) < 96 ? (uint64_t)1 << ((type)-32) : 0)
#define IKE_PLD_HAS(p, type) (((p)->seen & IKE_PLD_BIT(type)) != 0)

/*
 * Parses the chain p[0..len) whose first payload is `first`. The SK
 * payload, if present, must be the last one; its body is not decrypted
 * here (ike/msg.h does that). Unknown non-critical payloads are listed
 * and skipped; an unknown critical one fails with out->err =
 * UNSUPPORTED_CRITICAL_PAYLOAD and out->err_type = its type. Any other
 * malformation fails with out->err = INVALID_SYNTAX. Returns 0 or -1.
 */
int
ike_pld_parse(uint8_t first, const uint8_t *p, size_t len, struct ike_pld *out);
/* The first Notify of `type`, or NULL. */
const struct ike_notify *ike_pld_notify(const struct ike_pld *p, uint16_t type);

/* ---- building ---- */

#define IKE_CHAIN_DETACHED ((size_t)-1)

struct ike_chain {
	struct buf *b;
	size_t	    np_off; /* next-payload byte to patch, or DETACHED */
	uint8_t	    first;  /* type of the first payload (0 = none) */
};

/* np_off: offset in b of the byte that names the first payload. */
void ike_chain_init(struct ike_chain *c, struct buf *b, size_t np_off);
/*
 * Low level: ike_pld_begin() reserves a generic header, back-patches the
 * previous next-payload byte and returns the header's offset in *start;
 * fill the body with buf_add*(); ike_pld_end() back-patches the length.
 */
int
ike_pld_begin(struct ike_chain *c, uint8_t type, bool critical, size_t *start);
int ike_pld_end(struct ike_chain *c, size_t start);

int ike_pld_add_ke(struct ike_chain *c, uint16_t group, const uint8_t *data,
    size_t len);
int ike_pld_add_nonce(struct ike_chain *c, const uint8_t *n, size_t len);
int ike_pld_add_notify(struct ike_chain *c, uint8_t proto, const uint8_t *spi,
    size_t spi_len, uint16_t type, const uint8_t *data, size_t len);
/* pltype: IKE_PL_IDI or IKE_PL_IDR. */
int ike_pld_add_id(struct ike_chain *c, uint8_t pltype, uint8_t idtype,
    const uint8_t *data, size_t len);
int ike_pld_add_auth(struct ike_chain *c, uint8_t method, const uint8_t *data,
    size_t len);
/* pltype: IKE_PL_CERT or IKE_PL_CERTREQ. */
int ike_pld_add_cert(struct ike_chain *c, uint8_t pltype, uint8_t enc,
    const uint8_t *data, size_t len);
/* A whole EAP packet (its own length field must match len). */
int ike_pld_add_eap(struct ike_chain *c, const uint8_t *eap, size_t len);
int ike_pld_add_cp(struct ike_chain *c, const struct ike_cp_pld *cp);
/* pltype: IKE_PL_TSI or IKE_PL_TSR. */
int ike_pld_add_ts(struct ike_chain *c, uint8_t pltype,
    const struct ike_ts_pld *ts);
int ike_pld_add_delete(struct ike_chain *c, uint8_t proto, uint8_t spi_len,
    const uint8_t *spis, uint16_t nspi);
/* SA payload from decoded proposals (as parsed; numbers taken as given). */
int ike_pld_add_sa_raw(struct ike_chain *c, const struct ike_sa_pld *sa);

/* ---- SA proposals: description <-> payload, and the chooser ---- */

/*
 * One proposal as policy sees it. encr_bits is the Key Length attribute
 * (256 for AES-256). prf is 0 for Child SAs; integ is 0 with AEAD (GCM);
 * ke lists acceptable KE methods in preference order (nke 0 = none, as
 * for a Child SA without PFS; IKE_KE_QKD_ETSI014 for qkd mode). esn
 * lists the ESN values of an ESP proposal in preference order (nesn 0 =
 * NO_ESN only); chosen: the one value. num: proposal number (0 = its
 * position, 1-based, when building).
 */
struct ike_prop_desc {
	uint8_t	 num;
	uint8_t	 proto;	  /* IKE_PROTO_IKE or IKE_PROTO_ESP */
	uint8_t	 spi_len; /* 0, 4 (ESP) or 8 (IKE rekey) */
	uint8_t	 spi[IKE_SPI_MAX];
	uint16_t encr;
	uint16_t encr_bits;
	uint16_t prf;
	uint16_t integ;
	size_t	 nke;
	uint16_t ke[IKE_KE_MAX];
	size_t	 nesn;
	uint8_t	 esn[2]; /* IKE_ESN_YES, IKE_ESN_NONE */
};

/* A chosen ESP proposal with 64-bit extended sequence numbers. */
bool ike_prop_uses_esn(const struct ike_prop_desc *d);

int ike_prop_to_proposal(const struct ike_prop_desc *d, uint8_t num,
    struct ike_proposal *out);
/* SA payload with proposals d[0..n), numbered d[i].num or i+1. */
int
ike_pld_add_sa(struct ike_chain *c, const struct ike_prop_desc *d, size_t n);
/*
 * Responder: picks the first of the peer's proposals (peer preference)
 * that the local policy pol[0..npol) accepts, and fills *chosen with one
 * transform per type (the KE method in policy order), the peer's proposal
 * number and SPI. Proposals with unknown transform types or attributes
 * are skipped. Returns 0, or -1 (logged) = send NO_PROPOSAL_CHOSEN.
 */
int ike_sa_choose(const struct ike_sa_pld *offer,
    const struct ike_prop_desc *pol, size_t npol, struct ike_prop_desc *chosen);
/*
 * Initiator: checks the responder's SA payload: exactly one proposal with
 * one transform of each type, acceptable under what we offered. Fills
 * *chosen. Returns 0 or -1 (logged).
 */
int ike_sa_check_reply(const struct ike_sa_pld *reply,
    const struct ike_prop_desc *offered, size_t noffered,
    struct ike_prop_desc *chosen);

#endif
