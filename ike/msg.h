/*
 * IKEv2 messages: the header, whole-message assembly, and the SK payload
 * (RFC 7296 3.14): AES-CBC + HMAC-SHA2-256-128, or AES-GCM-16 (RFC 5282).
 *
 * Sending, plain (IKE_SA_INIT):
 *	struct buf out; struct ike_chain c; size_t start;
 *	buf_init(&out, IKE_MSG_MAX);
 *	ike_msg_begin(&out, &hdr, &c, &start);	header (next/length patched)
 *	ike_pld_add_sa(&c, ...); ike_pld_add_ke(&c, ...); ...
 *	ike_msg_end(&out, start);		back-patches the length
 *
 * Sending, protected (everything else):
 *	struct buf in; struct ike_chain ic;
 *	buf_init(&in, IKE_MSG_MAX);
 *	ike_chain_init(&ic, &in, IKE_CHAIN_DETACHED);
 *	ike_pld_add_id(&ic, ...); ...		inner payloads
 *	ike_msg_seal(&out, &hdr, ic.first, in.data, in.len, &sk_out);
 *
 * Receiving:
 *	ike_msg_strip_marker(&p, &len);		port 4500 only
 *	ike_hdr_decode(p, len, &hdr);		find the SA, check the MID
 *	ike_msg_parse(p, len, &sk_in or NULL, &m); use m.pld; ike_msg_free(&m);
 *
 * The message may start at a non-zero offset of `out` (e.g. after a
 * non-ESP marker added with ike_msg_add_marker()); all offsets, the ICV
 * and the AAD are relative to the IKE header.
 */
#ifndef IKE_MSG_H
#define IKE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"
#include "ike/pld.h"

struct ike_hdr {
	uint8_t	 spi_i[IKE_SPI_LEN];
	uint8_t	 spi_r[IKE_SPI_LEN];
	uint8_t	 next;	   /* first payload type */
	uint8_t	 version;  /* IKE_VERSION */
	uint8_t	 exchange; /* IKE_SA_INIT ... */
	uint8_t	 flags;	   /* IKE_FLAG_* */
	uint32_t msgid;
	uint32_t length; /* whole message, header included */
};

/*
 * Decodes the header of the datagram p[0..len): len >= 28, major version
 * 2 (minor ignored, per RFC 7296), length field == len. 0 or -1 (logged).
 */
int  ike_hdr_decode(const uint8_t *p, size_t len, struct ike_hdr *h);
void ike_hdr_encode(const struct ike_hdr *h, uint8_t out[static IKE_HDR_LEN]);

/*
 * Port 4500: an IKE message follows 4 zero bytes. Returns 0 and advances
 * *p / *len past the marker; -1 when this is not IKE (ESP, NAT keepalive
 * 0xff, too short). ike_msg_add_marker() appends the 4 zero bytes.
 */
int ike_msg_strip_marker(const uint8_t **p, size_t *len);
int ike_msg_add_marker(struct buf *out);

/*
 * The keys that protect one direction. ekey: AES-CBC: 16/24/32 bytes;
 * AES-GCM-16: key + 4-byte salt (20/28/36). akey: the HMAC-SHA2-256-128
 * key (CBC only; ignored with GCM). The pointers are borrowed.
 */
struct ike_sk_ctx {
	uint16_t	      encr; /* IKE_ENCR_AES_CBC / _AES_GCM_16 */
	const struct ike_key *ekey;
	uint16_t	      integ; /* IKE_INTEG_HMAC_SHA2_256_128 / NONE */
	const struct ike_key *akey;
};

/* Plain message: writes the header at out->len; *start is its offset. */
int ike_msg_begin(struct buf *out, const struct ike_hdr *h, struct ike_chain *c,
    size_t *start);
/* Back-patches the length field of the message that starts at `start`. */
int ike_msg_end(struct buf *out, size_t start);

/*
 * Protected message: appends header (next = SK, length set) | SK header
 * (next = first) | IV | E(inner | padding | pad length) | ICV to out.
 * CBC: random 16-byte IV, padding to the block size, HMAC-SHA2-256-128
 * over header..ciphertext. GCM: random 8-byte IV, nonce = salt | IV,
 * AAD = IKE header | SK header, 16-byte tag. h->next and h->length are
 * ignored (computed).
 */
int ike_msg_seal(struct buf *out, const struct ike_hdr *h, uint8_t first,
    const uint8_t *inner, size_t inner_len, const struct ike_sk_ctx *k);

/*
 * Decrypts the SK payload of the message msg[0..len) whose outer chain
 * was parsed into *outer (SK at outer->sk): verifies the ICV in constant
 * time, then the padding, and appends the inner chain to `plain`.
 * Returns 0 or -1 (logged; the caller drops the message silently).
 */
int ike_msg_open(const uint8_t *msg, size_t len, const struct ike_pld *outer,
    const struct ike_sk_ctx *k, struct buf *plain);

/* A received message, parsed (and decrypted when it carries SK). */
struct ike_msg {
	struct ike_hdr hdr;
	struct ike_pld pld;   /* plain payloads, or the SK contents */
	struct buf     plain; /* decrypted inner chain: pld borrows it */
	bool protected;	      /* pld came from an SK payload */
	uint16_t err;	      /* on failure: error notify to send, 0 = drop */
	uint8_t	 err_type;    /* UNSUPPORTED_CRITICAL_PAYLOAD data */
};

/*
 * Decodes header and payloads of msg[0..len). With k == NULL the message
 * must be plain (an SK payload is then reported as found but not opened:
 * IKE_PLD_HAS(&m->pld, IKE_PL_SK)). With k, a message that is not SK
 * protected is refused, and m->pld holds the decrypted payloads. pld
 * borrows from msg (plain) or m->plain (protected). Always call
 * ike_msg_free() afterwards. Returns 0 or -1 (logged; see m->err).
 */
int  ike_msg_parse(const uint8_t *msg, size_t len, const struct ike_sk_ctx *k,
     struct ike_msg *m);
void ike_msg_free(struct ike_msg *m); /* wipes plain; NULL ok */

#endif
