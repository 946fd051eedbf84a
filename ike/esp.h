/*
 * ESP (RFC 4303) for the userspace data plane: one SA in one direction,
 * tunnel mode, for UDP encapsulation on the NAT-T port (RFC 3948; the
 * caller adds and strips the UDP header, this module sees the ESP
 * packet from the SPI on). Transforms: AES-GCM-16 with a 256-bit key
 * and 4-byte salt (RFC 4106, 8-byte IV = the sequence number) and
 * AES-CBC-256 with HMAC-SHA2-256-128 (RFC 3602, RFC 4868, random IV).
 * 64-bit extended sequence numbers (RFC 4303 2.2.1, appendix A) when
 * negotiated, 32-bit otherwise; an anti-replay window of
 * ESP_REPLAY_WINDOW packets (section 3.4.3); padding checked on input
 * (monotonic 1, 2, 3 ... as section 2.4 writes it).
 *
 * One esp_sa has one cipher context, made once; encap/decap allocate
 * nothing. An outbound SA is used by one thread at a time, an inbound
 * SA too (the data plane gives each direction its own thread); the
 * counters are written by that thread and may be read by any other
 * (relaxed atomics: lifetimes are checked by the IKE thread).
 *
 * The sequence number never wraps: when it would, esp_encap() refuses
 * (ESP_E_SEQ) and the SA must be rekeyed; esp_sa_soft() tells the IKE
 * side to start the rekey long before, by packets or bytes.
 */
#ifndef IKE_ESP_H
#define IKE_ESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ESP_REPLAY_WINDOW 2048 /* packets, a multiple of 64 */
#define ESP_HDR_LEN	  8    /* SPI, sequence number */
#define ESP_MAX_IV	  16
#define ESP_MAX_ICV	  16
/* Bytes esp_encap() adds at most to an inner packet of any length. */
#define ESP_MAX_OVERHEAD (ESP_HDR_LEN + ESP_MAX_IV + 15 + 2 + ESP_MAX_ICV)

/* Next header values of the inner packet (RFC 4303 2.6). */
#define ESP_NH_IPV4 4
#define ESP_NH_IPV6 41
#define ESP_NH_GRE  47

enum esp_alg {
	ESP_AES_GCM_256 = 0,	/* key 32 + salt 4, no integ key */
	ESP_AES_CBC_256_SHA256, /* key 32, integ key 32, ICV 16 */
};

/*
 * Outcomes of esp_encap / esp_decap: they become different counters
 * (and the caller must tell "drop, count" from "rekey now").
 */
enum esp_rc {
	ESP_OK = 0,
	ESP_E_SHORT,  /* truncated, or no room in the output */
	ESP_E_REPLAY, /* seen, or left of the window */
	ESP_E_ICV,    /* integrity check failed */
	ESP_E_PAD,    /* bad padding or pad length after a good ICV */
	ESP_E_SEQ,    /* outbound: sequence number space used up */
	ESP_E_HARD,   /* hard lifetime (packets or bytes) reached */
	ESP_E_CRYPTO, /* the cipher failed (logged) */
};

struct esp_lifetime {
	uint64_t soft_packets, hard_packets; /* 0: none */
	uint64_t soft_bytes, hard_bytes;     /* inner bytes; 0: none */
};

struct esp_sa_cfg {
	uint32_t	    spi; /* network byte order, as on the wire */
	enum esp_alg	    alg;
	bool		    esn;
	bool		    outbound;
	const uint8_t	   *enc_key; /* GCM: 36 bytes (key | salt); CBC: 32 */
	size_t		    enc_len;
	const uint8_t	   *integ_key; /* CBC: 32 bytes; GCM: NULL */
	size_t		    integ_len;
	struct esp_lifetime life;
};

/* Counters (relaxed atomic reads from other threads: esp_sa_stats()). */
struct esp_stats {
	uint64_t packets, bytes; /* good ones; bytes of inner packets */
	uint64_t replay, icv, pad, shortp, other;
	uint64_t seq; /* outbound: last sequence number sent;
				    inbound: highest accepted */
};

struct esp_sa;

/* A new SA with copies of the keys (secure heap); NULL, err written. */
struct esp_sa *esp_sa_new(const struct esp_sa_cfg *c, char *err, size_t errlen);
/* Wipes the keys and the cipher context; NULL ok. */
void	       esp_sa_free(struct esp_sa *sa);
uint32_t       esp_sa_spi(const struct esp_sa *sa);
bool	       esp_sa_esn(const struct esp_sa *sa); /* 64-bit numbers */
void	       esp_sa_stats(const struct esp_sa *sa, struct esp_stats *st);
/* True once a soft lifetime (packets, bytes, or 2^31 / 2^63 sequence
 * numbers used) is past: time to rekey. */
bool	       esp_sa_soft(const struct esp_sa *sa);
/* True once a hard lifetime (packets or bytes) is reached or, outbound,
 * the sequence number space is used up: the SA refuses every packet
 * (ESP_E_HARD, ESP_E_SEQ) and must be deleted. */
bool	       esp_sa_hard(const struct esp_sa *sa);

/*
 * Outbound: the inner packet in[0..inlen) with next header nh becomes
 * the ESP packet in out (cap bytes, at least inlen + ESP_MAX_OVERHEAD),
 * its length in *outlen.
 */
enum esp_rc esp_encap(struct esp_sa *sa, const uint8_t *in, size_t inlen,
    uint8_t nh, uint8_t *out, size_t cap, size_t *outlen);
/*
 * Inbound: pkt[0..len) (starting at the SPI, which the caller used to
 * find sa) is checked against the window and the ICV, decrypted in
 * place; the inner packet is pkt[*off .. *off + *inlen) with next
 * header *nh. The window moves only for a packet whose ICV verified.
 * With ESN, a packet from left of the window is read as 2^32 ahead (RFC
 * 4303 A2.1) and so ends as ESP_E_ICV, not ESP_E_REPLAY. A hard lifetime
 * is checked before each packet: the one that crosses hard_bytes passes.
 */
enum esp_rc esp_decap(struct esp_sa *sa, uint8_t *pkt, size_t len, size_t *off,
    size_t *inlen, uint8_t *nh);

const char *esp_rc_name(enum esp_rc rc);

/*
 * For tests only. esp_sa_test_set_seq: outbound, the last sequence number
 * sent becomes seq (to reach the end of the space); inbound, the highest
 * accepted becomes seq, with only seq itself seen in the window.
 * esp_test_wipe_hook: when set, esp_sa_free() calls it with the SA's
 * secret block (keys, HMAC states) after wiping it, before freeing it.
 */
void esp_sa_test_set_seq(struct esp_sa *sa, uint64_t seq);
extern void (*esp_test_wipe_hook)(const void *secret, size_t len);

/*
 * Inbound SAs by SPI, O(1): an open-addressing hash table of fixed
 * capacity (a power of two, twice the SAs it may hold). Changed by one
 * thread (the IKE side, under the data plane's lock), read by the
 * inbound thread.
 */
struct esp_spi_table;

struct esp_spi_table *esp_spi_table_new(size_t max_sas);
void		      esp_spi_table_free(struct esp_spi_table *t);
/* -1 when full or the SPI is already there. */
int		      esp_spi_add(struct esp_spi_table *t, struct esp_sa *sa);
/* Removes (does not free) the SA of that SPI; NULL when absent. */
struct esp_sa	     *esp_spi_del(struct esp_spi_table *t, uint32_t spi);
struct esp_sa	     *esp_spi_find(const struct esp_spi_table *t, uint32_t spi);

#endif
