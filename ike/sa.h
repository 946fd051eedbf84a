/*
 * IKE SA state shared by the initiator (ike/ue.c) and the responder
 * (ike/n3iwf.c): SPIs, nonces, the IKE_SA_INIT messages AUTH signs, the
 * negotiated transforms, the SK_* keys (from DH, from QKD, or DH + PPK),
 * message IDs (window 1 each way), the outstanding request (retransmitted
 * with backoff) and the cached last response (sent again for a duplicate
 * request), the Child SAs, and the measurements of one connection.
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

#include <signal.h>

#define IKE_NONCE_LEN	32	/* the nonces we send */
#define IKE_SA_CHILD_MAX 2

enum ike_sa_state {
	SA_INIT = 0,		/* IKE_SA_INIT in progress */
	SA_AUTH,		/* keys made, IKE_AUTH in progress */
	SA_CHILD,		/* IKE_AUTH done; NWu: waiting for the UP Child SA */
	SA_ESTABLISHED,
	SA_DELETING,
	SA_DEAD,
};

struct ike_child {
	uint32_t		 spi_i;		/* ESP SPI the UE receives on */
	uint32_t		 spi_r;		/* ESP SPI the N3IWF receives on */
	struct ike_prop_desc	 prop;
	struct ike_child_keys	*keys;		/* i = UE -> N3IWF */
	int			 up;		/* 0: signalling, 1: user plane */
};

struct ike_sa {
	const struct ikecfg	*cfg;
	int			 initiator;	/* we are the UE */
	enum ike_sa_state	 state;
	uint8_t			 spi_i[IKE_SPI_LEN], spi_r[IKE_SPI_LEN];
	struct sockaddr_in	 peer;
	struct sockaddr_in	 local;
	int			 natt;		/* use port 4500 + marker */

	struct ike_prop_desc	 prop;		/* chosen IKE SA transforms */
	uint8_t			 ni[IKE_NONCE_MAX], nr[IKE_NONCE_MAX];
	size_t			 ni_len, nr_len;
	struct buf		 init_req, init_resp;	/* for AUTH */
	struct buf		 my_id, peer_id;	/* ID' bodies AUTH covers */
	struct ike_dh		*dh;
	struct ike_sa_keys	*keys;
	struct ike_sa_keys	*keys_noppk;	/* qkd+dh: unmixed SK_pi/SK_pr */
	struct ike_qkd_keys	*qk;		/* qkd: 13 keys; qkd+dh: 1 (PPK) */
	int			 ppk_used;
	int			 ppk_wait;	/* N3IWF: IKE_AUTH parked for the PPK */

	/* window 1 each way */
	uint32_t		 my_mid;	/* next request we send */
	uint32_t		 peer_mid;	/* next request we expect */
	struct buf		 req;		/* our outstanding request */
	uint8_t			 req_exchange;
	uint32_t		 req_mid;
	int			 req_pending;
	struct ike_retx		 retx;
	struct buf		 resp;		/* our last response */
	uint32_t		 resp_mid;
	int			 have_resp;

	/* 5G and IKE_AUTH progress */
	struct amf		*amf;		/* N3IWF */
	struct usim		*usim;		/* UE */
	uint8_t			 kn3iwf[32];
	int			 have_kn3iwf;
	uint8_t			 eap_id;
	int			 auth_started;	/* an IKE_AUTH request was seen */
	int			 eap_done;	/* EAP-Success sent / received */
	int			 peer_sig;	/* peer signs (RFC 7427) */
	struct ike_prop_desc	 esp_offer;	/* N3IWF: chosen from SAi2 */
	uint8_t			 peer_sae[ETSI_ID_MAX + 1];

	struct ike_child	 child[IKE_SA_CHILD_MAX];
	size_t			 nchild;
	struct ike_child	 pending_child;	/* CREATE_CHILD_SA in flight */
	uint8_t			 cc_nonce[IKE_NONCE_LEN];

	struct ike_conn_stat	 st;
	uint64_t		 t_start, t_mark;
	uint64_t		 t_created;
};

struct amf;
struct usim;

struct ike_sa	*ike_sa_new(const struct ikecfg *cfg, int initiator);
void		 ike_sa_free(struct ike_sa *sa);	/* wipes; NULL ok */

/* Proposals of our policy: IKE SA (KE = group or QKD) and ESP. */
size_t	ike_sa_policy_ike(const struct ikecfg *c, struct ike_prop_desc *d);
size_t	ike_sa_policy_esp(const struct ikecfg *c, struct ike_prop_desc *d);

/* The SK context for what we send (out = 1) or receive. */
void	ike_sa_sk(const struct ike_sa *sa, int out, struct ike_sk_ctx *k);

/* Key derivation after IKE_SA_INIT. g^ir from sa->dh and the peer's KE. */
int	ike_sa_keys_dh(struct ike_sa *sa, const uint8_t *peer_ke, size_t len);
int	ike_sa_keys_qkd(struct ike_sa *sa);
/* qkd+dh: mixes sa->qk->key[0] as the PPK (keeps the unmixed copy). */
int	ike_sa_keys_ppk(struct ike_sa *sa);

/*
 * AUTH. `ours`: the AUTH we send (initiator: over init_req | Nr |
 * prf(SK_pi, IDi')). noppk: use the unmixed keys (NO_PPK_AUTH).
 */
int	ike_sa_octets(const struct ike_sa *sa, int of_initiator, int noppk,
	    const struct ike_bytes *id_body, struct buf *out);
/* The shared secret for PSK-style AUTH in this mode/profile; caller wipes. */
int	ike_sa_auth_secret(const struct ike_sa *sa, uint8_t *out, size_t cap,
	    size_t *len);

/*
 * Identity and AUTH payloads. With a certificate the ID is its subject
 * (ID_DER_ASN1_DN), else the FQDN cfg->id. The ID' body (what AUTH
 * covers) is left in *id_body (an initialised buf; reset first).
 */
int	ike_sa_add_id(struct ike_chain *c, uint8_t pltype, const char *fqdn,
	    X509 *cert, struct buf *id_body);
/* Our AUTH: a signature with key (RFC 7427), or PSK-style (key NULL). */
int	ike_sa_add_auth(struct ike_sa *sa, struct ike_chain *c, EVP_PKEY *key,
	    const struct buf *id_body, int noppk);
/*
 * Checks the peer's AUTH in m (IDi/IDr, AUTH, CERT) with method `method`
 * (IKE_AUTH_DIGITAL_SIG: certificate chained to ca and matching the ID;
 * IKE_AUTH_PSK: the mode's shared secret). id: the peer's ID' body when
 * m has no ID payload (final EAP AUTH), else NULL: m's ID is used and
 * kept in sa->peer_id. auth/alen: AUTH data to check instead of m's AUTH
 * payload (NO_PPK_AUTH), with noppk = 1. 0 or -1 (logged).
 */
int	ike_sa_check_auth(struct ike_sa *sa, const struct ike_pld *m,
	    uint8_t method, X509_STORE *ca, const struct buf *id,
	    const uint8_t *auth, size_t alen, int noppk);

/* Child SA keys: qkd mode from the QKD keys, else KEYMAT from SK_d. */
int	ike_sa_child_keys(struct ike_sa *sa, struct ike_child *ch,
	    const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len);
/* Debug log: SHA-256 fingerprints of the IKE SA / Child SA keys. */
void	ike_sa_log_fp(const struct ike_sa *sa, const char *what,
	    const struct ike_child *ch);

/* NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | port). */
int	ike_nat_hash(const uint8_t spi_i[static 8], const uint8_t spi_r[static 8],
	    const struct sockaddr_in *a, uint8_t out[static 20]);

/*
 * Sending. Requests get the next MID of our direction, are kept for
 * retransmission and start the backoff; responses are cached for
 * duplicates. Both are counted in the connection's message sizes.
 * inner: the inner payload chain (first payload `first`).
 */
int	ike_sa_request(struct ike_sa *sa, struct ike_net *n, uint8_t exchange,
	    uint8_t first, const struct buf *inner);
int	ike_sa_respond(struct ike_sa *sa, struct ike_net *n, uint8_t exchange,
	    uint32_t mid, uint8_t first, const struct buf *inner);
/* Plain IKE_SA_INIT: sa->init_req / init_resp already hold it. */
int	ike_sa_send_plain(struct ike_sa *sa, struct ike_net *n, const struct buf *m,
	    int response, uint32_t mid);
/* Resends the outstanding request (retransmission). */
int	ike_sa_resend(struct ike_sa *sa, struct ike_net *n);

/*
 * Classifies a protected message for this SA (header already decoded):
 *  IKE_RX_RESPONSE  the response to our outstanding request, parsed in *m
 *  IKE_RX_REQUEST   the next request from the peer, parsed in *m
 *  IKE_RX_DONE      handled here (duplicate request: cached response sent)
 *  IKE_RX_DROP      anything else (bad ICV, old MID, ...): dropped, logged
 * *m must be ike_msg_free()d for RESPONSE and REQUEST.
 */
enum { IKE_RX_DROP = 0, IKE_RX_DONE, IKE_RX_RESPONSE, IKE_RX_REQUEST };
int	ike_sa_rx(struct ike_sa *sa, struct ike_net *n, const struct ike_pkt *p,
	    const struct ike_hdr *h, struct ike_msg *m);

/* Inner chain builder helpers. */
void	ike_inner_init(struct buf *b, struct ike_chain *c);
int	ike_add_ts_any(struct ike_chain *c, uint8_t pltype);
int	ike_add_ts_host(struct ike_chain *c, uint8_t pltype, const char *ip);

/* The two endpoints (ike/ue.c, ike/n3iwf.c); 0 when all went well. */
int	ike_ue_run(const struct ikecfg *c, volatile sig_atomic_t *stop);
int	ike_n3iwf_run(const struct ikecfg *c, volatile sig_atomic_t *stop);
/* main() of both binaries: flags and config, signals, then the run above;
 * exit status 0 ok, 1 failed, 2 usage. */
int	ike_cli_main(const char *prog, enum ike_role role, int argc, char **argv);

/* Sets sa->t_mark to now and returns the ns since the previous mark. */
uint64_t ike_sa_lap(struct ike_sa *sa);

#endif
