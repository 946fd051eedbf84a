/*
 * One IKE SA, shared by the initiator (ike/ue.c) and the responder
 * (ike/n3iwf.c): SPIs, nonces, the IKE_SA_INIT messages AUTH signs, the
 * negotiated transforms, the SK_* keys (from DH, from QKD, or DH + PPK),
 * AUTH (PSK-style or RFC 7427 signatures), the Child SAs and their keys,
 * and the measurements of one connection. The exchange state (message
 * IDs, the outstanding request, the cached response) is in `xc`, which
 * ike/endpoint.c keeps; this module never sends or receives.
 */
#ifndef IKE_SA_H
#define IKE_SA_H

#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "common/buf.h"
#include "ike/crypto.h"
#include "ike/csv.h"
#include "ike/ikecfg.h"
#include "ike/msg.h"
#include "ike/net.h"
#include "ike/pld.h"
#include "ike/qkd.h"
#include "ike/satab.h"

struct amf;
struct usim;
struct ike_rk;

#define IKE_NONCE_LEN	 32 /* the nonces we send */
#define IKE_SA_CHILD_MAX 2

enum ike_sa_state {
	SA_INIT = 0, /* IKE_SA_INIT in progress */
	SA_AUTH,     /* keys made, IKE_AUTH in progress */
	SA_CHILD,    /* IKE_AUTH done; NWu: waiting for the UP Child SA */
	SA_ESTABLISHED,
	SA_DELETING,
	SA_DEAD,
};

struct ike_child {
	uint32_t	       spi_i; /* ESP SPI the UE receives on */
	uint32_t	       spi_r; /* ESP SPI the N3IWF receives on */
	struct ike_prop_desc   prop;
	struct ike_child_keys *keys; /* i = UE -> N3IWF */
	int		       up;   /* 0: signalling, 1: user plane */
	/* its traffic selectors, the UE's side and the N3IWF's, as
	 * negotiated; a rekey proposes them again (RFC 7296 2.8) */
	struct ike_ts_pld      ts_ue, ts_n3;
};

/*
 * Exchanges of one IKE SA, window 1 each way (RFC 7296 2.3): our
 * outstanding request (retransmitted with backoff) and the cached last
 * response (sent again for a duplicate request). ike/endpoint.c owns it.
 */
struct ike_xchg {
	uint32_t	my_mid;	  /* next request we send */
	uint32_t	peer_mid; /* next request we expect */
	struct buf	req;	  /* our outstanding request */
	uint8_t		req_exchange;
	uint32_t	req_mid;
	int		req_pending;
	struct ike_retx retx;
	struct buf	resp; /* our last response */
	uint32_t	resp_mid;
	int		have_resp;
	int		parked; /* a request waits for keys: absorb
						 * the peer's requests meanwhile */
};

struct ike_sa {
	const struct ikecfg *cfg;
	int		     initiator; /* we are the UE */
	enum ike_sa_state    state;
	uint8_t		     spi_i[IKE_SPI_LEN], spi_r[IKE_SPI_LEN];
	struct sockaddr_in   peer;
	struct sockaddr_in   local;
	int		     natt; /* use port 4500 + marker */

	struct ike_prop_desc prop; /* chosen IKE SA transforms */
	uint8_t		     ni[IKE_NONCE_MAX], nr[IKE_NONCE_MAX];
	size_t		     ni_len, nr_len;
	struct buf	     init_req, init_resp; /* for AUTH */
	struct buf	     my_id, peer_id;	  /* ID' bodies AUTH covers */
	struct ike_dh	    *dh;
	struct ike_sa_keys  *keys;
	struct ike_sa_keys  *keys_noppk; /* qkd+dh: unmixed SK_pi/SK_pr */
	struct ike_qkd_keys
	    *qk; /* qkd: 13 keys (paper), 1 (prf); qkd+dh: PPK */
	int  ppk_used;

	struct ike_xchg xc;
	struct ike_rk  *rk; /* lifetimes and rekeys (ike/rekey.c) */

	/* 5G and IKE_AUTH progress */
	struct amf	    *amf;  /* N3IWF */
	struct usim	    *usim; /* UE */
	uint8_t		     kn3iwf[32];
	int		     have_kn3iwf;
	uint8_t		     eap_id;
	int		     auth_started; /* an IKE_AUTH request was seen */
	int		     eap_done;	   /* EAP-Success sent / received */
	struct ike_prop_desc esp_offer;	   /* N3IWF: chosen from SAi2 */
	uint8_t		     pdu_psi; /* N3IWF tunnel: PDU session waiting */
	struct in_addr	     cp_addr; /* N3IWF: the UE's inner address (CP) */
	uint8_t		     peer_sae[ETSI_ID_MAX + 1];

	struct ike_child child[IKE_SA_CHILD_MAX];
	size_t		 nchild;
	uint8_t		 cc_nonce[IKE_NONCE_LEN];

	struct ike_conn_stat st;
	uint64_t	     t_start, t_mark;
	uint64_t	     t_created;

	struct ike_satab_link tab; /* the endpoint's table (ike/satab.h) */
};

struct ike_sa *ike_sa_new(const struct ikecfg *cfg, int initiator);
void	       ike_sa_free(struct ike_sa *sa); /* wipes; NULL ok */
/*
 * Once established: what only IKE_SA_INIT and IKE_AUTH needed goes (the
 * messages AUTH signs, the ID bodies, the DH, the unmixed keys, the QKD
 * keys now in the Child SAs'), wiped.
 */
void	       ike_sa_trim(struct ike_sa *sa);

/* The SK context for what we send (out = 1) or receive. */
void ike_sa_sk(const struct ike_sa *sa, int out, struct ike_sk_ctx *k);

/* Key derivation after IKE_SA_INIT. g^ir from sa->dh and the peer's KE. */
int ike_sa_keys_dh(struct ike_sa *sa, const uint8_t *peer_ke, size_t len);
/*
 * qkd mode, by cfg->qkd_schedule: paper (13 keys in sa->qk used raw) or
 * prf (sa->qk's one key as the shared secret, then RFC 7296 2.14; the
 * key bytes are wiped once the SK_* exist).
 */
int ike_sa_keys_qkd(struct ike_sa *sa);
/* qkd+dh: mixes sa->qk->key[0] as the PPK (keeps the unmixed copy). */
int ike_sa_keys_ppk(struct ike_sa *sa);

/*
 * AUTH. `ours`: the AUTH we send (initiator: over init_req | Nr |
 * prf(SK_pi, IDi')). noppk: use the unmixed keys (NO_PPK_AUTH).
 */
int ike_sa_octets(const struct ike_sa *sa, int of_initiator, int noppk,
    const struct ike_bytes *id_body, struct buf *out);
/*
 * The shared secret for the PSK-style AUTH of the initiator (of_initiator
 * = 1) or the responder in this mode/profile; caller wipes.
 */
int ike_sa_auth_secret(const struct ike_sa *sa, int of_initiator, uint8_t *out,
    size_t cap, size_t *len);

/*
 * Identity and AUTH payloads. With a certificate the ID is its subject
 * (ID_DER_ASN1_DN), else the FQDN cfg->id. The ID' body (what AUTH
 * covers) is left in *id_body (an initialised buf; reset first).
 */
int ike_sa_add_id(struct ike_chain *c, uint8_t pltype, const char *fqdn,
    X509 *cert, struct buf *id_body);
/* Our AUTH: a signature with key (RFC 7427), or PSK-style (key NULL). */
int ike_sa_add_auth(struct ike_sa *sa, struct ike_chain *c, EVP_PKEY *key,
    const struct buf *id_body, int noppk);
/*
 * Checks the peer's AUTH in m (IDi/IDr, AUTH, CERT) with method `method`
 * (IKE_AUTH_DIGITAL_SIG: certificate chained to ca and matching the ID;
 * IKE_AUTH_PSK: the mode's shared secret). id: the peer's ID' body when
 * m has no ID payload (final EAP AUTH), else NULL: m's ID is used and
 * kept in sa->peer_id. auth/alen: AUTH data to check instead of m's AUTH
 * payload (NO_PPK_AUTH), with noppk = 1. 0 or -1 (logged).
 */
int ike_sa_check_auth(struct ike_sa *sa, const struct ike_pld *m,
    uint8_t method, X509_STORE *ca, const struct buf *id, const uint8_t *auth,
    size_t alen, int noppk);

/* Child SA keys: the paper's qkd schedule from the QKD keys, else KEYMAT
 * from SK_d. */
int  ike_sa_child_keys(struct ike_sa *sa, struct ike_child *ch,
     const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len);
/* Debug log: SHA-256 fingerprints of the IKE SA / Child SA keys. */
void ike_sa_log_fp(const struct ike_sa *sa, const char *what,
    const struct ike_child *ch);

/* Sets sa->t_mark to now and returns the ns since the previous mark. */
uint64_t ike_sa_lap(struct ike_sa *sa);

#endif
