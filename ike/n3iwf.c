/*
 * The N3IWF: IKEv2 responder with an AMF emulator inside. One event loop
 * over the IKE and NAT-T sockets; per IKE SA: IKE_SA_INIT (DH, or the 13
 * QKD keys in ONE enc_keys call), IKE_AUTH (NWu: certificate AUTH, EAP-5G
 * rounds with the AMF emulator, AUTH keyed by KN3IWF, CP, NAS_IP4_ADDRESS,
 * NAS_TCP_PORT and the signalling Child SA; rfc7296: PSK/signature AUTH and
 * one Child SA), then (NWu) the CREATE_CHILD_SA it starts itself for the
 * user plane. COOKIEs when half-open SAs reach the threshold, and always
 * before QKD keys are drawn (qkd modes); QKD key budgets per source, per
 * claimed SAE and in total; enc_keys and the PPK's dec_keys in worker
 * threads (ike/kmsq.h) so the loop never waits for kmsd; Delete of every
 * IKE SA on SIGTERM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/amf.h"
#include "ike/eap5g.h"
#include "ike/kmsq.h"
#include "ike/ratelimit.h"
#include "ike/sa.h"

#define N3_MAX_SA	1024
#define N3_COOKIE_LEN	IKE_PRF_LEN
#define N3_RL_SLOTS	4096		/* buckets per table (sources, SAE IDs) */

/* Counters, logged on SIGUSR1 and at exit (ike/README.md). */
struct n3_stats {
	unsigned long	init_rx;	/* IKE_SA_INIT requests */
	unsigned long	cookie_sent, cookie_ok;
	unsigned long	dup_absorbed;	/* retransmits while kmsd is called */
	unsigned long	over_src, over_sae, over_all, queue_full;
	unsigned long	draws, keys_drawn, draw_fail;
	unsigned long	keys_wiped;	/* drawn for an SA that died first */
};

static volatile sig_atomic_t	n3_usr1;

struct n3 {
	const struct ikecfg	*cfg;
	volatile sig_atomic_t	*stop;
	struct ike_net		 net;
	struct ike_csv		 csv;
	X509			*cert;
	EVP_PKEY		*key;
	X509_STORE		*ca;
	struct buf		 cert_der;
	struct amf_sub		 sub;
	uint8_t			 cookie_secret[32];
	struct ike_kmsq		*kmsq;		/* qkd modes: async kmsd calls */
	struct ike_kmsq_job	*ppk_done;	/* the PPK job IKE_AUTH resumes with */
	struct ike_rl		 rl_src, rl_sae;
	struct ike_tb		 tb_all;
	struct ike_loglim	 refuse_log;
	struct n3_stats		 stats;
	struct ike_sa		*sa[N3_MAX_SA];
	size_t			 nsa;
	unsigned		 done;		/* connections completed */
	unsigned		 conn_seq;
	struct ike_pkt		 pkt;
};

static int	n3_create_child(struct n3 *n, struct ike_sa *sa);
static void	n3_ppk_done(struct n3 *n, struct ike_kmsq_job *j);

static int
n3_sig(const struct n3 *n)
{
	return n->cfg->mode == IKE_MODE_CERT || n->cfg->profile == IKE_PROFILE_NWU;
}

/* ---- IKE_SA_INIT ---- */

/* An unprotected IKE_SA_INIT answer with one notify (error or COOKIE). */
static void
n3_notify_to(struct n3 *n, int natt, const struct sockaddr_in *to,
    const uint8_t spi_i[static IKE_SPI_LEN], uint16_t type, const uint8_t *data,
    size_t len)
{
	struct ike_chain	c;
	struct ike_hdr		h;
	struct buf		out;
	size_t			start;

	memset(&h, 0, sizeof(h));
	memcpy(h.spi_i, spi_i, IKE_SPI_LEN);
	h.version = IKE_VERSION;
	h.exchange = IKE_SA_INIT;
	h.flags = IKE_FLAG_R;
	buf_init(&out, 1024);
	if (ike_msg_begin(&out, &h, &c, &start) == 0 &&
	    ike_pld_add_notify(&c, 0, NULL, 0, type, data, len) == 0 &&
	    ike_msg_end(&out, start) == 0)
		(void)ike_net_send(&n->net, natt, to, out.data, out.len);
	buf_free(&out);
}

static void
n3_init_notify(struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *rq,
    uint16_t type, const uint8_t *data, size_t len)
{
	n3_notify_to(n, p->natt, &p->from, rq->spi_i, type, data, len);
}

static size_t
n3_half_open(const struct n3 *n)
{
	size_t	k = 0;

	for (size_t i = 0; i < n->nsa; i++)
		if (n->sa[i]->state == SA_INIT ||
		    (n->sa[i]->state == SA_AUTH && !n->sa[i]->auth_started))
			k++;
	return k;
}

/* COOKIE = prf(secret, Ni | IPi | SPIi) (RFC 7296 2.6). */
static int
n3_cookie(const struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *h,
    const struct ike_pld *pl, uint8_t out[static N3_COOKIE_LEN])
{
	uint8_t	in[IKE_NONCE_MAX + 4 + IKE_SPI_LEN];
	size_t	len = pl->nonce.len;

	if (len > IKE_NONCE_MAX)
		return -1;
	memcpy(in, pl->nonce.p, len);
	memcpy(in + len, &p->from.sin_addr, 4);
	memcpy(in + len + 4, h->spi_i, IKE_SPI_LEN);
	return ike_prf(n->cookie_secret, sizeof(n->cookie_secret), in,
	    len + 4 + IKE_SPI_LEN, out);
}

/* 1: go on; 0: a COOKIE was demanded (or the one given is wrong). */
static int
n3_cookie_ok(struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *h,
    const struct ike_pld *pl)
{
	uint8_t			 want[N3_COOKIE_LEN];
	const struct ike_notify	*c;

	const struct ikecfg	*cf = n->cfg;
	int			 always = cf->qkd_cookie && ike_mode_has_qkd(cf->mode);

	if (!always && n3_half_open(n) < cf->cookie_threshold)
		return 1;
	if (n3_cookie(n, p, h, pl, want) == -1)
		return 0;
	c = ike_pld_notify(pl, IKE_N_COOKIE);
	if (c != NULL && pl->n > 0 && pl->list[0].type == IKE_PL_NOTIFY &&
	    c->data.len == sizeof(want) &&
	    CRYPTO_memcmp(c->data.p, want, sizeof(want)) == 0) {
		n->stats.cookie_ok++;
		return 1;
	}
	log_debug("%s: asking for a COOKIE", always ? "QKD keys" : "half-open SAs");
	n->stats.cookie_sent++;
	n3_init_notify(n, p, h, IKE_N_COOKIE, want, sizeof(want));
	return 0;
}

/* A retransmitted IKE_SA_INIT request: the same answer again. */
static int
n3_init_dup(struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *h)
{
	for (size_t i = 0; i < n->nsa; i++) {
		struct ike_sa	*sa = n->sa[i];

		if (memcmp(sa->spi_i, h->spi_i, IKE_SPI_LEN) != 0 ||
		    sa->peer.sin_addr.s_addr != p->from.sin_addr.s_addr)
			continue;
		if (sa->init_req.len == p->len &&
		    memcmp(sa->init_req.data, p->data, p->len) == 0 &&
		    sa->state == SA_INIT) {
			/* enc_keys still running: the answer comes when it ends. */
			log_debug("duplicate IKE_SA_INIT while kmsd works: absorbed");
			n->stats.dup_absorbed++;
		} else if (sa->init_req.len == p->len &&
		    memcmp(sa->init_req.data, p->data, p->len) == 0 &&
		    !sa->auth_started) {
			log_debug("duplicate IKE_SA_INIT: response sent again");
			(void)ike_net_send(&n->net, p->natt, &p->from,
			    sa->init_resp.data, sa->init_resp.len);
		}
		return 1;
	}
	return 0;
}

/* The initiator's SAE ID from QKD_REQUEST, or cfg->peer_sae. */
static int
n3_peer_sae(struct n3 *n, struct ike_sa *sa, const struct ike_pld *pl)
{
	const struct ike_notify	*q = ike_pld_notify(pl, IKE_N_QKD_REQUEST);

	if (q != NULL && q->data.len > 0 && q->data.len <= ETSI_ID_MAX) {
		memcpy(sa->peer_sae, q->data.p, q->data.len);
		sa->peer_sae[q->data.len] = '\0';
		if (etsi_id_valid((const char *)sa->peer_sae))
			return 0;
		log_warn("QKD_REQUEST carries an invalid SAE ID");
		return -1;
	}
	if (n->cfg->peer_sae != NULL) {
		snprintf((char *)sa->peer_sae, sizeof(sa->peer_sae), "%s",
		    n->cfg->peer_sae);
		return 0;
	}
	log_warn("no QKD_REQUEST with the UE's SAE ID (and no --peer-sae)");
	return -1;
}

/*
 * The QKD key budgets: n keys from the source address's, the claimed SAE
 * ID's and the global bucket, all three or none. 0: taken; -1: over budget
 * (logged, rate-limited; counted), with `which` naming the bucket.
 */
static int
n3_budget(struct n3 *n, const struct sockaddr_in *from, const char *sae,
    unsigned keys, const char **which)
{
	uint64_t	now = time_mono_ns();
	char		src[INET_ADDRSTRLEN];
	unsigned long	held;

	inet_ntop(AF_INET, &from->sin_addr, src, sizeof(src));
	*which = NULL;
	if (ike_rl_level(&n->rl_src, src, now) < keys) {
		*which = "source address";
		n->stats.over_src++;
	} else if (ike_rl_level(&n->rl_sae, sae, now) < keys) {
		*which = "SAE ID";
		n->stats.over_sae++;
	} else if (ike_tb_level(&n->tb_all, &n->cfg->budget_all, now) < keys) {
		*which = "global";
		n->stats.over_all++;
	}
	if (*which == NULL) {
		(void)ike_rl_take(&n->rl_src, src, keys, now);
		(void)ike_rl_take(&n->rl_sae, sae, keys, now);
		(void)ike_tb_take(&n->tb_all, &n->cfg->budget_all, keys, now);
		return 0;
	}
	if (ike_loglim_ok(&n->refuse_log, now, &held))
		log_warn("QKD key budget (%s) spent: %u keys for SAE %s from %s "
		    "refused with TEMPORARY_FAILURE (%lu more refusals not logged)",
		    *which, keys, sae, src, held);
	return -1;
}

/*
 * qkd: queue ONE enc_keys {13, 256} for the UE's SAE (ike/kmsq.h); the SA
 * waits in SA_INIT in the table. 0: queued (the table owns sa); -1: refused
 * (answered) or failed, the caller frees sa.
 */
static int
n3_qkd_submit(struct n3 *n, struct ike_sa *sa, const struct ike_pkt *p,
    const struct ike_hdr *h)
{
	struct ike_kmsq_job	*j;
	const char		*which;
	unsigned long		 held;

	if (ike_kmsq_full(n->kmsq) || n->nsa >= N3_MAX_SA) {
		n->stats.queue_full++;
		if (ike_loglim_ok(&n->refuse_log, time_mono_ns(), &held))
			log_warn("%zu IKE SAs, kmsd queue %s: IKE_SA_INIT answered "
			    "TEMPORARY_FAILURE (%lu more refusals not logged)", n->nsa,
			    ike_kmsq_full(n->kmsq) ? "full" : "not full", held);
		n3_init_notify(n, p, h, IKE_N_TEMPORARY_FAILURE, NULL, 0);
		return -1;
	}
	if (n3_budget(n, &p->from, (const char *)sa->peer_sae, IKE_QKD_NKEYS,
	    &which) == -1) {
		n3_init_notify(n, p, h, IKE_N_TEMPORARY_FAILURE, NULL, 0);
		return -1;
	}
	if ((j = ike_kmsq_job_new()) == NULL)
		return -1;
	if (buf_add(&sa->init_req, p->data, p->len) == -1) {
		ike_kmsq_job_free(j);
		return -1;
	}
	memcpy(j->spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(j->spi_r, sa->spi_r, IKE_SPI_LEN);
	snprintf(j->sae, sizeof(j->sae), "%s", (const char *)sa->peer_sae);
	j->n = IKE_QKD_NKEYS;
	if (ike_kmsq_submit(n->kmsq, j) == -1) {	/* checked above */
		ike_kmsq_job_free(j);
		return -1;
	}
	sa->state = SA_INIT;
	n->sa[n->nsa++] = sa;
	return 0;
}

static int
n3_build_init_resp(struct n3 *n, struct ike_sa *sa, const struct ike_pld *rq,
    const struct buf *ke)
{
	static const uint8_t	 sha256[2] = { 0, IKE_HASH_SHA2_256 };
	struct ike_chain	 c;
	struct ike_hdr		 h;
	struct sockaddr_in	 local = sa->local;
	uint8_t			 nat[20], ids[1 + 16 * IKE_QKD_NKEYS];
	size_t			 start, idlen;
	int			 ok;

	memset(&h, 0, sizeof(h));
	memcpy(h.spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(h.spi_r, sa->spi_r, IKE_SPI_LEN);
	h.version = IKE_VERSION;
	h.exchange = IKE_SA_INIT;
	h.flags = IKE_FLAG_R;
	ok = ike_msg_begin(&sa->init_resp, &h, &c, &start) == 0 &&
	    ike_pld_add_sa(&c, &sa->prop, 1) == 0;
	if (ok && ke->len > 0)
		ok = ike_pld_add_ke(&c, sa->prop.ke[0], ke->data, ke->len) == 0;
	ok = ok && ike_pld_add_nonce(&c, sa->nr, sa->nr_len) == 0;
	ok = ok && ike_nat_hash(sa->spi_i, sa->spi_r, &local, nat) == 0 &&
	    ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_NAT_DETECTION_SOURCE_IP, nat,
	    sizeof(nat)) == 0;
	ok = ok && ike_nat_hash(sa->spi_i, sa->spi_r, &sa->peer, nat) == 0 &&
	    ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_NAT_DETECTION_DESTINATION_IP,
	    nat, sizeof(nat)) == 0;
	if (ok && n->cfg->mode == IKE_MODE_QKD)
		ok = ike_qkd_ids_encode(sa->qk, ids, sizeof(ids), &idlen) == 0 &&
		    ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_QKD_KEY_IDS, ids,
		    idlen) == 0;
	if (ok && n->cfg->mode == IKE_MODE_QKD_DH &&
	    ike_pld_notify(rq, IKE_N_USE_PPK) != NULL)
		ok = ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_USE_PPK, NULL, 0) == 0;
	if (ok && n3_sig(n) &&
	    ike_pld_notify(rq, IKE_N_SIGNATURE_HASH_ALGORITHMS) != NULL)
		ok = ike_pld_add_notify(&c, 0, NULL, 0,
		    IKE_N_SIGNATURE_HASH_ALGORITHMS, sha256, sizeof(sha256)) == 0;
	return ok && ike_msg_end(&sa->init_resp, start) == 0 ? 0 : -1;
}

static void
n3_nat_check(struct ike_sa *sa, const struct ike_pld *pl)
{
	static const uint8_t	 zero[IKE_SPI_LEN];
	const struct ike_notify	*src, *dst;
	struct sockaddr_in	 local = sa->local;
	uint8_t			 nat[20];

	src = ike_pld_notify(pl, IKE_N_NAT_DETECTION_SOURCE_IP);
	dst = ike_pld_notify(pl, IKE_N_NAT_DETECTION_DESTINATION_IP);
	if (src == NULL || dst == NULL)
		return;
	if ((ike_nat_hash(sa->spi_i, zero, &sa->peer, nat) == 0 &&
	    (src->data.len != 20 || memcmp(nat, src->data.p, 20) != 0)) ||
	    (ike_nat_hash(sa->spi_i, zero, &local, nat) == 0 &&
	    (dst->data.len != 20 || memcmp(nat, dst->data.p, 20) != 0)))
		log_info("NAT detected between the UE and us: NAT-T expected");
}

static int
n3_add_sa(struct n3 *n, struct ike_sa *sa)
{
	if (n->nsa >= N3_MAX_SA) {
		log_warn("%zu IKE SAs: dropping a new IKE_SA_INIT", n->nsa);
		return -1;
	}
	n->sa[n->nsa++] = sa;
	return 0;
}

/* The IKE_SA_INIT response, once the keys exist (DH now, QKD later). */
static int
n3_init_respond(struct n3 *n, struct ike_sa *sa, const struct ike_pld *rq,
    const struct buf *ke)
{
	if (n3_build_init_resp(n, sa, rq, ke) == -1)
		return -1;
	n3_nat_check(sa, rq);
	sa->st.conn = n->conn_seq++;
	ike_stat_msg(&sa->st, IKE_SA_INIT, 0, 1, 0, sa->init_req.len, sa->natt);
	(void)ike_sa_send_plain(sa, &n->net, &sa->init_resp, 1, 0);
	sa->state = SA_AUTH;
	sa->peer_mid = 1;
	sa->st.init_ns = time_mono_ns() - sa->t_start;
	sa->t_mark = time_mono_ns();
	ike_sa_log_fp(sa, "IKE SA", NULL);
	return 0;
}

static struct ike_sa *
n3_find_spi(struct n3 *n, const uint8_t spi_i[static IKE_SPI_LEN],
    const uint8_t spi_r[static IKE_SPI_LEN])
{
	for (size_t i = 0; i < n->nsa; i++)
		if (memcmp(n->sa[i]->spi_r, spi_r, IKE_SPI_LEN) == 0 &&
		    memcmp(n->sa[i]->spi_i, spi_i, IKE_SPI_LEN) == 0)
			return n->sa[i];
	return NULL;
}

/* A finished enc_keys: answer the waiting IKE_SA_INIT, or wipe the keys. */
static void
n3_kms_done(struct n3 *n, struct ike_kmsq_job *j)
{
	static const char	 msg[] = "kmsd unavailable";
	struct ike_sa		*sa = n3_find_spi(n, j->spi_i, j->spi_r);
	struct ike_msg		 m;
	struct buf		 ke;

	if (sa == NULL || sa->state != SA_INIT || sa->qk != NULL) {
		if (j->rc == 0) {
			n->stats.keys_wiped += j->n;
			log_info("%u QKD keys for SAE %s came after their IKE SA was "
			    "gone: wiped unused", j->n, j->sae);
		}
		return;		/* the caller frees j, which wipes the keys */
	}
	sa->st.init_kmsd_ns += j->ns;
	if (j->rc == -1) {
		n->stats.draw_fail++;
		log_warn("QKD keys for SAE %s unavailable: kmsd %s: %s; answering "
		    "QKD_UNAVAILABLE", j->sae, n->cfg->kmsd_url, j->why);
		n3_notify_to(n, sa->natt, &sa->peer, sa->spi_i, IKE_N_QKD_UNAVAILABLE,
		    (const uint8_t *)msg, sizeof(msg) - 1);
		sa->state = SA_DEAD;
		return;
	}
	log_debug("kmsd: enc_keys %u keys for %s in %.3f ms", j->n, j->sae,
	    (double)j->ns / 1e6);
	sa->qk = j->keys;		/* the SA owns (and wipes) them now */
	j->keys = NULL;
	memset(&m, 0, sizeof(m));
	buf_init(&ke, 16);
	if (ike_sa_keys_qkd(sa) == -1 ||
	    ike_msg_parse(sa->init_req.data, sa->init_req.len, NULL, &m) == -1 ||
	    n3_init_respond(n, sa, &m.pld, &ke) == -1)
		sa->state = SA_DEAD;
	ike_msg_free(&m);
	buf_free(&ke);
}

static void
n3_kms_drain(struct n3 *n)
{
	struct ike_kmsq_job	*j;

	while ((j = ike_kmsq_done(n->kmsq)) != NULL) {
		if (j->rc == 0) {	/* drawn at kmsd, whatever comes of them */
			n->stats.draws++;
			n->stats.keys_drawn += j->n;
		}
		if (j->dec)
			n3_ppk_done(n, j);
		else
			n3_kms_done(n, j);
		ike_kmsq_job_free(j);
	}
}

static void
n3_init(struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *h)
{
	const struct ikecfg	*c = n->cfg;
	struct ike_prop_desc	 pol;
	struct ike_msg		 m;
	struct ike_sa		*sa = NULL;
	struct buf		 ke;
	uint64_t		 t0;
	uint16_t		 grp;

	memset(&m, 0, sizeof(m));
	buf_init(&ke, 1024);
	n->stats.init_rx++;
	if (n3_init_dup(n, p, h))
		goto done;
	if (ike_msg_parse(p->data, p->len, NULL, &m) == -1) {
		log_debug("malformed IKE_SA_INIT dropped");
		goto done;
	}
	if (!IKE_PLD_HAS(&m.pld, IKE_PL_SA) || !IKE_PLD_HAS(&m.pld, IKE_PL_NONCE) ||
	    m.pld.nonce.len < IKE_NONCE_MIN || m.pld.nonce.len > IKE_NONCE_MAX) {
		n3_init_notify(n, p, h, IKE_N_INVALID_SYNTAX, NULL, 0);
		goto done;
	}
	if (!n3_cookie_ok(n, p, h, &m.pld))
		goto done;
	if ((sa = ike_sa_new(c, 0)) == NULL)
		goto done;
	sa->t_start = p->t_ns;
	ike_sa_policy_ike(c, &pol);
	if (ike_sa_choose(&m.pld.sa, &pol, 1, &sa->prop) == -1) {
		log_info("IKE_SA_INIT from the UE: no acceptable proposal; "
		    "answering NO_PROPOSAL_CHOSEN");
		n3_init_notify(n, p, h, IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
		goto done;
	}
	if (ike_mode_has_dh(c->mode) && (!IKE_PLD_HAS(&m.pld, IKE_PL_KE) ||
	    m.pld.ke.group != sa->prop.ke[0])) {
		uint8_t	g[2] = { (uint8_t)(sa->prop.ke[0] >> 8), (uint8_t)sa->prop.ke[0] };

		grp = IKE_PLD_HAS(&m.pld, IKE_PL_KE) ? m.pld.ke.group : 0;
		log_info("KE of group %u, want %u: INVALID_KE_PAYLOAD", grp,
		    sa->prop.ke[0]);
		n3_init_notify(n, p, h, IKE_N_INVALID_KE_PAYLOAD, g, sizeof(g));
		goto done;
	}
	memcpy(sa->spi_i, h->spi_i, IKE_SPI_LEN);
	memcpy(sa->ni, m.pld.nonce.p, m.pld.nonce.len);
	sa->ni_len = m.pld.nonce.len;
	sa->peer = p->from;
	sa->local = p->to;
	sa->natt = p->natt;
	if (ike_random(sa->spi_r, IKE_SPI_LEN) == -1 ||
	    ike_random(sa->nr, IKE_NONCE_LEN) == -1)
		goto done;
	sa->nr_len = IKE_NONCE_LEN;
	if (ike_mode_has_qkd(c->mode) && n3_peer_sae(n, sa, &m.pld) == -1 &&
	    c->mode == IKE_MODE_QKD) {
		n3_init_notify(n, p, h, IKE_N_QKD_UNAVAILABLE, NULL, 0);
		goto done;
	}
	if (c->mode == IKE_MODE_QKD) {
		if (n3_qkd_submit(n, sa, p, h) == 0)
			sa = NULL;	/* in the table, waiting for kmsd */
		goto done;
	}
	t0 = time_mono_ns();
	if ((sa->dh = ike_dh_new(sa->prop.ke[0])) == NULL ||
	    ike_dh_public(sa->dh, &ke) == -1)
		goto done;
	sa->st.init_dh_ns += time_mono_ns() - t0;
	if (ike_sa_keys_dh(sa, m.pld.ke.data.p, m.pld.ke.data.len) == -1) {
		n3_init_notify(n, p, h, IKE_N_INVALID_SYNTAX, NULL, 0);
		goto done;
	}
	if (buf_add(&sa->init_req, p->data, p->len) == -1 || n3_add_sa(n, sa) == -1)
		goto done;
	if (n3_init_respond(n, sa, &m.pld, &ke) == -1)
		sa->state = SA_DEAD;	/* the table frees it */
	sa = NULL;
done:
	ike_sa_free(sa);
	ike_msg_free(&m);
	buf_free(&ke);
}

/* ---- IKE_AUTH ---- */

static int
n3_respond_notify(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m,
    uint16_t type)
{
	struct ike_chain	c;
	struct buf		in;
	int			r;

	ike_inner_init(&in, &c);
	r = ike_pld_add_notify(&c, 0, NULL, 0, type, NULL, 0) == 0 ?
	    ike_sa_respond(sa, &n->net, m->hdr.exchange, m->hdr.msgid, c.first, &in) :
	    -1;
	buf_free(&in);
	return r;
}

static void
n3_fail(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m,
    uint16_t type, const char *why)
{
	log_warn("IKE_AUTH from the UE refused (%s): %s", ike_notify_name(type), why);
	(void)n3_respond_notify(n, sa, m, type);
	sa->state = SA_DEAD;
}

/* n3_ppk() said no: over budget or queue full (-2) is temporary, the rest is not. */
static void
n3_fail_ppk(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m, int r)
{
	if (r == -2)
		n3_fail(n, sa, m, IKE_N_TEMPORARY_FAILURE,
		    "QKD key budget spent or kmsd queue full");
	else
		n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
		    "PPK required but not available");
}

/* The PPK's dec_keys came back (n->ppk_done): mix it in, or do without. */
static int
n3_ppk_use(struct n3 *n, struct ike_sa *sa)
{
	struct ike_kmsq_job	*j = n->ppk_done;

	sa->st.init_kmsd_ns += j->ns;
	if (j->rc == -1) {
		log_warn("PPK %s from %s unavailable: %s", j->ids[0], j->sae, j->why);
		return n->cfg->ppk_required ? -1 : 0;
	}
	ike_qkd_keys_free(sa->qk);
	sa->qk = j->keys;		/* the SA owns (and wipes) it now */
	j->keys = NULL;
	return ike_sa_keys_ppk(sa);
}

/*
 * qkd+dh: RFC 8784. PPK_IDENTITY (opaque, the ETSI key ID) -> ONE
 * dec_keys at kmsd, within the key budgets, in a kmsq worker: the request
 * (n->pkt, as received) is parked in the job and processed again when
 * the key comes (n3_ppk_done). -1: refuse the IKE SA (ppk_required), -2:
 * refuse it, temporarily (ppk_required), 1: parked, 0: go on (with
 * sa->ppk_used telling whether the PPK is in).
 */
static int
n3_ppk(struct n3 *n, struct ike_sa *sa, const struct ike_pld *pl)
{
	const struct ike_notify	*pid = ike_pld_notify(pl, IKE_N_PPK_IDENTITY);
	struct ike_kmsq_job	*j;
	const char		*which;
	unsigned long		 held;

	if (n->cfg->mode != IKE_MODE_QKD_DH)
		return 0;
	if (n->ppk_done != NULL)	/* resumed: checks and budget were done */
		return n3_ppk_use(n, sa);
	if (pid == NULL || pid->data.len < 2 || pid->data.len > ETSI_KEY_ID_MAX + 1 ||
	    (pid->data.p[0] != IKE_PPK_ID_OPAQUE && pid->data.p[0] != IKE_PPK_ID_FIXED)) {
		log_warn("no usable PPK_IDENTITY from the UE");
		return n->cfg->ppk_required ? -1 : 0;
	}
	if (sa->peer_sae[0] == '\0') {
		log_warn("PPK %.*s: the UE's SAE ID is unknown (no QKD_REQUEST, no "
		    "--peer-sae)", (int)pid->data.len - 1, (const char *)pid->data.p + 1);
		return n->cfg->ppk_required ? -1 : 0;
	}
	if (ike_kmsq_full(n->kmsq)) {
		n->stats.queue_full++;
		if (ike_loglim_ok(&n->refuse_log, time_mono_ns(), &held))
			log_warn("kmsd queue full: PPK of SAE %s not fetched (%lu more "
			    "refusals not logged)", sa->peer_sae, held);
		return n->cfg->ppk_required ? -2 : 0;
	}
	if (n3_budget(n, &sa->peer, (const char *)sa->peer_sae, 1, &which) == -1)
		return n->cfg->ppk_required ? -2 : 0;
	if ((j = ike_kmsq_job_new()) == NULL ||
	    (j->req = malloc(n->pkt.len)) == NULL) {
		ike_kmsq_job_free(j);
		return -1;
	}
	memcpy(j->req, n->pkt.data, n->pkt.len);
	j->req_len = n->pkt.len;
	memcpy(j->spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(j->spi_r, sa->spi_r, IKE_SPI_LEN);
	snprintf(j->sae, sizeof(j->sae), "%s", (const char *)sa->peer_sae);
	memcpy(j->ids[0], pid->data.p + 1, pid->data.len - 1);
	j->ids[0][pid->data.len - 1] = '\0';
	j->dec = 1;
	j->n = 1;
	if (ike_kmsq_submit(n->kmsq, j) == -1) {	/* checked above */
		ike_kmsq_job_free(j);
		return -1;
	}
	sa->ppk_wait = 1;
	return 1;
}

static int
n3_add_idr(struct n3 *n, struct ike_sa *sa, struct ike_chain *c, int with_cert)
{
	X509	*cert = with_cert ? n->cert : NULL;

	if (ike_sa_add_id(c, IKE_PL_IDR, n->cfg->id, cert, &sa->my_id) == -1)
		return -1;
	if (cert != NULL && ike_pld_add_cert(c, IKE_PL_CERT, IKE_CERT_X509_SIG,
	    n->cert_der.data, n->cert_der.len) == -1)
		return -1;
	return ike_sa_add_auth(sa, c, cert ? n->key : NULL, &sa->my_id, 0);
}

/* SAi2 of the first IKE_AUTH: choose, keep the UE's SPI. */
static int
n3_choose_esp(struct n3 *n, struct ike_sa *sa, const struct ike_pld *pl)
{
	struct ike_prop_desc	pol;

	ike_sa_policy_esp(n->cfg, &pol);
	if (!IKE_PLD_HAS(pl, IKE_PL_SA) || !IKE_PLD_HAS(pl, IKE_PL_TSI) ||
	    !IKE_PLD_HAS(pl, IKE_PL_TSR) ||
	    ike_sa_choose(&pl->sa, &pol, 1, &sa->esp_offer) == -1 ||
	    sa->esp_offer.spi_len != 4)
		return -1;
	memcpy(&sa->child[0].spi_i, sa->esp_offer.spi, 4);
	return 0;
}

/* Child SA 1 (signalling): our SPI, keys, SA + TS payloads. */
static int
n3_child1(struct n3 *n, struct ike_sa *sa, struct ike_chain *c)
{
	struct ike_child	*ch = &sa->child[0];

	ch->prop = sa->esp_offer;
	if (ike_random((uint8_t *)&ch->spi_r, 4) == -1)
		return -1;
	memcpy(ch->prop.spi, &ch->spi_r, 4);
	if (ike_sa_child_keys(sa, ch, sa->ni, sa->ni_len, sa->nr, sa->nr_len) == -1)
		return -1;
	sa->nchild = 1;
	ike_sa_log_fp(sa, "Child SA 1 (signalling)", ch);
	if (ike_pld_add_sa(c, &ch->prop, 1) == -1)
		return -1;
	if (n->cfg->profile == IKE_PROFILE_NWU)
		return ike_add_ts_host(c, IKE_PL_TSI, n->cfg->inner_ip) == -1 ||
		    ike_add_ts_host(c, IKE_PL_TSR, n->cfg->nas_ip) == -1 ? -1 : 0;
	return ike_add_ts_any(c, IKE_PL_TSI) == -1 ||
	    ike_add_ts_any(c, IKE_PL_TSR) == -1 ? -1 : 0;
}

static void
spi_hex(const uint8_t spi[static 8], char out[static 17])
{
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", spi[i]);
}

static void
n3_established(struct n3 *n, struct ike_sa *sa)
{
	const struct ikecfg	*c = n->cfg;
	char			 si[17], sr[17];

	sa->state = SA_ESTABLISHED;
	sa->st.ok = 1;
	sa->st.total_ns = time_mono_ns() - sa->t_start;
	spi_hex(sa->spi_i, si);
	spi_hex(sa->spi_r, sr);
	log_info("IKE SA established (%s, %s) %s_i %s_r with %zu Child SA(s) "
	    "in %.2f ms (init %.2f, auth %.2f, child %.2f)%s", ike_mode_name(c->mode),
	    ike_profile_name(c->profile), si, sr, sa->nchild,
	    (double)sa->st.total_ns / 1e6, (double)sa->st.init_ns / 1e6,
	    (double)sa->st.auth_ns / 1e6, (double)sa->st.child_ns / 1e6,
	    sa->ppk_used ? ", PPK used" : "");
	ike_csv_write(&n->csv, &sa->st);
	n->done++;
}

static void
n3_auth_rfc(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	const struct ike_pld	*pl = &m->pld;
	const struct ike_notify	*np;
	struct ike_chain	 c;
	struct buf		 in;
	uint8_t			 method = n->cfg->mode == IKE_MODE_CERT ?
	    IKE_AUTH_DIGITAL_SIG : IKE_AUTH_PSK;
	int			 ok, r;

	sa->auth_started = 1;
	if ((r = n3_ppk(n, sa, pl)) < 0) {
		n3_fail_ppk(n, sa, m, r);
		return;
	}
	if (r == 1)
		return;		/* parked until the PPK comes */
	np = ike_pld_notify(pl, IKE_N_NO_PPK_AUTH);
	if (n->cfg->mode == IKE_MODE_QKD_DH && !sa->ppk_used) {
		/* RFC 8784: without the PPK only NO_PPK_AUTH can authenticate. */
		if (np == NULL || np->data.len < 5 || np->data.p[0] != method ||
		    ike_sa_check_auth(sa, pl, method, n->ca, NULL, np->data.p + 4,
		    np->data.len - 4, 1) == -1) {
			n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
			    "no PPK and no valid NO_PPK_AUTH");
			return;
		}
	} else if (ike_sa_check_auth(sa, pl, method, n->ca, NULL, NULL, 0, 0) == -1) {
		n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED, "AUTH does not verify");
		return;
	}
	if (n3_choose_esp(n, sa, pl) == -1) {
		n3_fail(n, sa, m, IKE_N_NO_PROPOSAL_CHOSEN, "no acceptable ESP proposal");
		return;
	}
	ike_inner_init(&in, &c);
	ok = n3_add_idr(n, sa, &c, n->cfg->mode == IKE_MODE_CERT) == 0 &&
	    n3_child1(n, sa, &c) == 0;
	if (ok && sa->ppk_used)
		ok = ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_PPK_IDENTITY, NULL, 0) == 0;
	if (ok && ike_sa_respond(sa, &n->net, IKE_AUTH, m->hdr.msgid, c.first,
	    &in) == 0) {
		sa->st.auth_ns = ike_sa_lap(sa);
		n3_established(n, sa);
	} else
		sa->state = SA_DEAD;
	buf_free(&in);
}

/* MID 1 of NWu: IDi, SAi2, TS, CP (and CERT + AUTH in cert mode). */
static void
n3_auth_nwu1(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	const struct ike_pld	*pl = &m->pld;
	struct eap5g_msg	 e;
	struct ike_chain	 c;
	struct buf		 in, eap;
	int			 ok, r;

	sa->auth_started = 1;
	if (!IKE_PLD_HAS(pl, IKE_PL_IDI)) {
		n3_fail(n, sa, m, IKE_N_INVALID_SYNTAX, "no IDi");
		return;
	}
	if (n->cfg->mode == IKE_MODE_CERT) {
		if (ike_sa_check_auth(sa, pl, IKE_AUTH_DIGITAL_SIG, n->ca, NULL, NULL,
		    0, 0) == -1) {
			n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
			    "UE certificate AUTH does not verify");
			return;
		}
	} else {
		buf_reset(&sa->peer_id);	/* a resumed request adds it again */
		if (buf_add(&sa->peer_id, pl->idi.body.p, pl->idi.body.len) == -1)
			return;
	}
	if ((r = n3_ppk(n, sa, pl)) < 0) {
		n3_fail_ppk(n, sa, m, r);
		return;
	}
	if (r == 1)
		return;		/* parked until the PPK comes */
	if (n3_choose_esp(n, sa, pl) == -1) {
		n3_fail(n, sa, m, IKE_N_NO_PROPOSAL_CHOSEN, "no acceptable ESP proposal");
		return;
	}
	if ((sa->amf = amf_new(&n->sub)) == NULL)
		return;
	buf_init(&eap, 256);
	memset(&e, 0, sizeof(e));
	e.code = EAP_CODE_REQUEST;
	e.id = ++sa->eap_id;
	e.msg_id = EAP5G_START;
	ike_inner_init(&in, &c);
	ok = n3_add_idr(n, sa, &c, 1) == 0 && eap5g_encode(&e, &eap) == 0 &&
	    ike_pld_add_eap(&c, eap.data, eap.len) == 0;
	if (ok && sa->ppk_used)
		ok = ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_PPK_IDENTITY, NULL, 0) == 0;
	if (!ok || ike_sa_respond(sa, &n->net, IKE_AUTH, m->hdr.msgid, c.first,
	    &in) == -1)
		sa->state = SA_DEAD;
	buf_free(&in);
	buf_free(&eap);
}

/* MID 2..: one EAP-5G round with the AMF emulator. */
static void
n3_auth_eap(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	const struct ike_pld	*pl = &m->pld;
	struct eap5g_msg	 rs, rq;
	struct ike_chain	 c;
	struct buf		 in, eap, nas;
	int			 done = 0, r;

	if (!IKE_PLD_HAS(pl, IKE_PL_EAP) ||
	    eap5g_decode(pl->eap.raw.p, pl->eap.raw.len, &rs) == -1 ||
	    rs.code != EAP_CODE_RESPONSE || rs.msg_id != EAP5G_NAS ||
	    rs.id != sa->eap_id) {
		n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED, "bad EAP-5G response");
		return;
	}
	buf_init(&nas, IKE_MSG_MAX);
	buf_init(&eap, IKE_MSG_MAX);
	r = amf_handle(sa->amf, rs.nas, rs.nas_len, &nas, &done);
	memset(&rq, 0, sizeof(rq));
	if (r == -1 || done == -1) {
		log_warn("5G registration of the UE refused by the AMF emulator");
		rq.code = EAP_CODE_FAILURE;
		rq.id = rs.id;
		sa->state = SA_DEAD;
	} else if (done == 1) {
		if (amf_kn3iwf(sa->amf, sa->kn3iwf) == -1)
			goto out;
		sa->have_kn3iwf = 1;
		sa->eap_done = 1;
		n->sub.sqn = amf_sqn(sa->amf);
		rq.code = EAP_CODE_SUCCESS;
		rq.id = rs.id;
	} else {
		rq.code = EAP_CODE_REQUEST;
		rq.id = ++sa->eap_id;
		rq.msg_id = EAP5G_NAS;
		rq.nas = nas.data;
		rq.nas_len = nas.len;
	}
	ike_inner_init(&in, &c);
	if (eap5g_encode(&rq, &eap) == 0 && ike_pld_add_eap(&c, eap.data, eap.len) == 0)
		(void)ike_sa_respond(sa, &n->net, IKE_AUTH, m->hdr.msgid, c.first, &in);
	buf_free(&in);
out:
	buf_free(&nas);
	buf_free(&eap);
}

static int
n3_add_nwu_cfg(struct n3 *n, struct ike_chain *c)
{
	struct ike_cp_pld	cp;
	struct in_addr		a, nas;
	uint8_t			port[2] = { (uint8_t)(n->cfg->nas_port >> 8),
	    (uint8_t)n->cfg->nas_port };
	static const uint8_t	mask[4] = { 255, 255, 255, 255 };

	if (inet_pton(AF_INET, n->cfg->inner_ip, &a) != 1 ||
	    inet_pton(AF_INET, n->cfg->nas_ip, &nas) != 1)
		return -1;
	memset(&cp, 0, sizeof(cp));
	cp.type = IKE_CFG_REPLY;
	cp.nattr = 2;
	cp.attr[0].type = IKE_CP_INTERNAL_IP4_ADDRESS;
	cp.attr[0].val.p = (const uint8_t *)&a;
	cp.attr[0].val.len = 4;
	cp.attr[1].type = IKE_CP_INTERNAL_IP4_NETMASK;
	cp.attr[1].val.p = mask;
	cp.attr[1].val.len = 4;
	if (ike_pld_add_cp(c, &cp) == -1)
		return -1;
	return ike_pld_add_notify(c, 0, NULL, 0, IKE_N_NAS_IP4_ADDRESS,
	    (const uint8_t *)&nas, 4) == -1 ||
	    ike_pld_add_notify(c, 0, NULL, 0, IKE_N_NAS_TCP_PORT, port, 2) == -1 ?
	    -1 : 0;
}

/* The last IKE_AUTH: AUTH keyed by KN3IWF, CP, signalling Child SA. */
static void
n3_auth_final(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike_chain	c;
	struct buf		in;
	int			ok;

	if (ike_sa_check_auth(sa, &m->pld, IKE_AUTH_PSK, NULL, &sa->peer_id, NULL,
	    0, 0) == -1) {
		n3_fail(n, sa, m, IKE_N_AUTHENTICATION_FAILED,
		    "AUTH keyed by KN3IWF does not verify");
		return;
	}
	ike_inner_init(&in, &c);
	ok = ike_sa_add_auth(sa, &c, NULL, &sa->my_id, 0) == 0 &&
	    n3_add_nwu_cfg(n, &c) == 0 && n3_child1(n, sa, &c) == 0;
	if (!ok || ike_sa_respond(sa, &n->net, IKE_AUTH, m->hdr.msgid, c.first,
	    &in) == -1) {
		sa->state = SA_DEAD;
		buf_free(&in);
		return;
	}
	buf_free(&in);
	sa->st.auth_ns = ike_sa_lap(sa);
	sa->state = SA_CHILD;
	if (n3_create_child(n, sa) == -1)
		sa->state = SA_DEAD;
}

/* ---- the user-plane Child SA (N3IWF -> UE CREATE_CHILD_SA) ---- */

static int
n3_create_child(struct n3 *n, struct ike_sa *sa)
{
	struct ike_child	*ch = &sa->child[1];
	struct ike_chain	 c;
	struct buf		 in;
	struct in_addr		 up;
	/* TS 24.502 9.3.1.2.2: length, PDU session ID 1, 1 QFI (1), default CSA. */
	static const uint8_t	 qos[] = { 4, 1, 1, 1, 0x01 };
	int			 ok;

	memset(ch, 0, sizeof(*ch));
	ike_sa_policy_esp(n->cfg, &ch->prop);
	ch->up = 1;
	if (ike_random((uint8_t *)&ch->spi_r, 4) == -1 ||
	    ike_random(sa->cc_nonce, sizeof(sa->cc_nonce)) == -1 ||
	    inet_pton(AF_INET, n->cfg->up_ip, &up) != 1)
		return -1;
	memcpy(ch->prop.spi, &ch->spi_r, 4);
	ike_inner_init(&in, &c);
	ok = ike_pld_add_sa(&c, &ch->prop, 1) == 0 &&
	    ike_pld_add_nonce(&c, sa->cc_nonce, sizeof(sa->cc_nonce)) == 0 &&
	    ike_add_ts_any(&c, IKE_PL_TSI) == 0 && ike_add_ts_any(&c, IKE_PL_TSR) == 0 &&
	    ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_5G_QOS_INFO, qos, sizeof(qos)) == 0 &&
	    ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_UP_IP4_ADDRESS,
	    (const uint8_t *)&up, 4) == 0;
	ok = ok && ike_sa_request(sa, &n->net, IKE_CREATE_CHILD_SA, c.first, &in) == 0;
	buf_free(&in);
	return ok ? 0 : -1;
}

static void
n3_child_done(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike_child	*ch = &sa->child[1];
	struct ike_prop_desc	 offer = ch->prop, got;
	const struct ike_pld	*pl = &m->pld;

	if (!IKE_PLD_HAS(pl, IKE_PL_SA) || !IKE_PLD_HAS(pl, IKE_PL_NONCE) ||
	    ike_sa_check_reply(&pl->sa, &offer, 1, &got) == -1 || got.spi_len != 4) {
		log_warn("the UE refused the user-plane Child SA");
		sa->state = SA_DEAD;
		return;
	}
	memcpy(&ch->spi_i, got.spi, 4);
	if (ike_sa_child_keys(sa, ch, sa->cc_nonce, sizeof(sa->cc_nonce),
	    pl->nonce.p, pl->nonce.len) == -1) {
		sa->state = SA_DEAD;
		return;
	}
	sa->nchild = 2;
	ike_sa_log_fp(sa, "Child SA 2 (user plane)", ch);
	sa->st.child_ns = ike_sa_lap(sa);
	n3_established(n, sa);
}

/*
 * A finished PPK dec_keys: process the parked IKE_AUTH again, as received,
 * now with the key (n3_ppk sees n->ppk_done); or wipe it, the SA is gone.
 */
static void
n3_ppk_done(struct n3 *n, struct ike_kmsq_job *j)
{
	struct ike_sa		*sa = n3_find_spi(n, j->spi_i, j->spi_r);
	struct ike_sk_ctx	 k;
	struct ike_msg		 m;

	if (sa == NULL || !sa->ppk_wait || sa->state != SA_AUTH) {
		if (j->rc == 0) {
			n->stats.keys_wiped += j->n;
			log_info("PPK %s for SAE %s came after its IKE SA was gone: "
			    "wiped unused", j->ids[0], j->sae);
		}
		return;		/* the caller frees j, which wipes the key */
	}
	if (j->rc == -1)
		n->stats.draw_fail++;
	sa->ppk_wait = 0;
	ike_sa_sk(sa, 0, &k);
	memset(&m, 0, sizeof(m));
	if (ike_msg_parse(j->req, j->req_len, &k, &m) == -1) {
		sa->state = SA_DEAD;	/* it parsed before: cannot happen */
		ike_msg_free(&m);
		return;
	}
	n->ppk_done = j;
	if (n->cfg->profile == IKE_PROFILE_RFC7296)
		n3_auth_rfc(n, sa, &m);
	else
		n3_auth_nwu1(n, sa, &m);
	n->ppk_done = NULL;
	ike_msg_free(&m);
}

/* ---- dispatch ---- */

static void
n3_request(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	struct ike_chain	c;
	struct buf		in;

	switch (m->hdr.exchange) {
	case IKE_AUTH:
		if (sa->state != SA_AUTH) {
			(void)n3_respond_notify(n, sa, m, IKE_N_INVALID_SYNTAX);
			return;
		}
		if (n->cfg->profile == IKE_PROFILE_RFC7296)
			n3_auth_rfc(n, sa, m);
		else if (!sa->auth_started)
			n3_auth_nwu1(n, sa, m);
		else if (!sa->eap_done)
			n3_auth_eap(n, sa, m);
		else
			n3_auth_final(n, sa, m);
		return;
	case IKE_INFORMATIONAL:
		ike_inner_init(&in, &c);
		(void)ike_sa_respond(sa, &n->net, IKE_INFORMATIONAL, m->hdr.msgid,
		    c.first, &in);
		buf_free(&in);
		if (IKE_PLD_HAS(&m->pld, IKE_PL_DELETE) &&
		    m->pld.del.proto == IKE_PROTO_IKE) {
			log_debug("IKE SA deleted by the UE");
			if (sa->state != SA_ESTABLISHED) {
				sa->st.total_ns = time_mono_ns() - sa->t_start;
				ike_csv_write(&n->csv, &sa->st);
			}
			sa->state = SA_DEAD;
		}
		return;
	default:
		(void)n3_respond_notify(n, sa, m, IKE_N_NO_ADDITIONAL_SAS);
		return;
	}
}

static void
n3_response(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m)
{
	if (sa->req_exchange == IKE_CREATE_CHILD_SA && sa->state == SA_CHILD)
		n3_child_done(n, sa, m);
	else if (sa->req_exchange == IKE_INFORMATIONAL && sa->state == SA_DELETING)
		sa->state = SA_DEAD;
}

static struct ike_sa *
n3_find(struct n3 *n, const struct ike_hdr *h)
{
	return n3_find_spi(n, h->spi_i, h->spi_r);
}

static void
n3_dispatch(struct n3 *n, const struct ike_pkt *p)
{
	static const uint8_t	 zero[IKE_SPI_LEN];
	struct ike_hdr		 h;
	struct ike_msg		 m;
	struct ike_sa		*sa;

	if (ike_hdr_decode(p->data, p->len, &h) == -1)
		return;
	if (h.exchange == IKE_SA_INIT && !(h.flags & IKE_FLAG_R) &&
	    memcmp(h.spi_r, zero, IKE_SPI_LEN) == 0) {
		n3_init(n, p, &h);
		return;
	}
	if ((sa = n3_find(n, &h)) == NULL || sa->state == SA_DEAD ||
	    sa->state == SA_INIT) {
		log_debug("%s for an unknown IKE SA dropped", ike_exchange_name(h.exchange));
		return;
	}
	if (sa->ppk_wait && !(h.flags & IKE_FLAG_R)) {
		/* IKE_AUTH parked for its PPK: answered once it comes. */
		n->stats.dup_absorbed++;
		log_debug("%s MID %u while the PPK is fetched: dropped",
		    ike_exchange_name(h.exchange), h.msgid);
		return;
	}
	switch (ike_sa_rx(sa, &n->net, p, &h, &m)) {
	case IKE_RX_REQUEST:
		if (p->natt && !sa->natt) {	/* the UE floated to NAT-T */
			sa->natt = 1;
			sa->peer = p->from;
		}
		if (h.exchange == IKE_AUTH && !sa->auth_started)
			sa->t_mark = p->t_ns;	/* AUTH phase: from MID 1 on */
		n3_request(n, sa, &m);
		ike_msg_free(&m);
		break;
	case IKE_RX_RESPONSE:
		n3_response(n, sa, &m);
		ike_msg_free(&m);
		break;
	default:
		break;
	}
}

/* Retransmissions, half-open expiry, and removal of dead SAs. */
static int
n3_timers(struct n3 *n)
{
	uint64_t	now = time_mono_ns();
	int		wait = 1000;
	size_t		j = 0;

	for (size_t i = 0; i < n->nsa; i++) {
		struct ike_sa	*sa = n->sa[i];

		if (sa->req_pending && sa->state != SA_DEAD) {
			int	w = ike_retx_wait_ms(&sa->retx);

			if (w == 0) {
				if (ike_retx_again(&sa->retx)) {
					(void)ike_sa_resend(sa, &n->net);
					w = ike_retx_wait_ms(&sa->retx);
				} else {
					log_warn("the UE does not answer %s MID %u: IKE SA "
					    "dropped", ike_exchange_name(sa->req_exchange),
					    sa->req_mid);
					sa->state = SA_DEAD;
				}
			}
			if (w < wait)
				wait = w;
		}
		if (sa->state < SA_ESTABLISHED &&
		    now - sa->t_created > (uint64_t)n->cfg->half_open_ms * 1000000u) {
			log_info("IKE SA not established within %u ms: dropped",
			    n->cfg->half_open_ms);
			sa->state = SA_DEAD;
		}
		if (sa->state == SA_DEAD)
			ike_sa_free(sa);
		else
			n->sa[j++] = sa;
	}
	n->nsa = j;
	return wait;
}

/* SIGTERM: INFORMATIONAL Delete to every IKE SA with keys, bounded wait. */
static void
n3_shutdown(struct n3 *n)
{
	struct ike_chain	c;
	struct buf		in;
	uint64_t		end;
	size_t			left = 0;

	for (size_t i = 0; i < n->nsa; i++) {
		struct ike_sa	*sa = n->sa[i];

		if (sa->state == SA_DEAD || sa->state == SA_INIT)
			continue;
		ike_inner_init(&in, &c);
		sa->req_pending = 0;
		if (ike_pld_add_delete(&c, IKE_PROTO_IKE, 0, NULL, 0) == 0 &&
		    ike_sa_request(sa, &n->net, IKE_INFORMATIONAL, c.first, &in) == 0) {
			sa->state = SA_DELETING;
			left++;
		}
		buf_free(&in);
	}
	if (left)
		log_info("deleting %zu IKE SA(s)", left);
	end = time_mono_ns() + 1000000000u;
	while (left > 0 && time_mono_ns() < end) {
		if (ike_net_recv(&n->net, 100, &n->pkt) == 1)
			n3_dispatch(n, &n->pkt);
		left = 0;
		for (size_t i = 0; i < n->nsa; i++)
			left += n->sa[i]->state == SA_DELETING;
	}
}

static int
n3_setup(struct n3 *n, const struct ikecfg *c, char *err, size_t errlen)
{
	amf_sub_default(&n->sub);
	if (amf_sub_set(&n->sub, c->supi, c->k_hex, c->opc_hex, NULL, err,
	    errlen) == -1)
		return -1;
	buf_init(&n->cert_der, IKE_MSG_MAX);
	if (c->cert != NULL) {
		if ((n->cert = ike_cert_load(c->cert)) == NULL ||
		    (n->key = ike_key_load(c->key)) == NULL ||
		    ike_cert_der(n->cert, &n->cert_der) == -1) {
			snprintf(err, errlen, "cannot load cert \"%s\" / key \"%s\"",
			    c->cert, c->key);
			return -1;
		}
	}
	if (c->ca != NULL && (n->ca = ike_ca_load(c->ca)) == NULL) {
		snprintf(err, errlen, "cannot load CA \"%s\"", c->ca);
		return -1;
	}
	if (ike_random(n->cookie_secret, sizeof(n->cookie_secret)) == -1) {
		snprintf(err, errlen, "no randomness");
		return -1;
	}
	if (ike_mode_has_qkd(c->mode) && (n->kmsq = ike_kmsq_open(c,
	    c->kmsd_workers, c->kmsd_queue, err, errlen)) == NULL)
		return -1;
	if (ike_rl_init(&n->rl_src, &c->budget_src, N3_RL_SLOTS) == -1 ||
	    ike_rl_init(&n->rl_sae, &c->budget_sae, N3_RL_SLOTS) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ike_tb_init(&n->tb_all, &c->budget_all, time_mono_ns());
	n->refuse_log.interval_ns = 1000000000u;
	if (ike_csv_open(&n->csv, c->csv, c->csv_msgs, "n3iwf",
	    ike_mode_name(c->mode), ike_profile_name(c->profile), err, errlen) == -1)
		return -1;
	return ike_net_listen(&n->net, c->host, c->port, c->natt_port, err, errlen);
}

static int
n3_ready(const struct n3 *n, const char *path)
{
	char	tmp[4096];
	FILE	*f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "port=%u\nnatt_port=%u\npid=%ld\n",
	    ntohs(n->net.ike_addr.sin_port), ntohs(n->net.natt_addr.sin_port),
	    (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

static void
n3_on_usr1(int sig)
{
	(void)sig;
	n3_usr1 = 1;
}

/* One line of counters (SIGUSR1, exit): what the budgets did. */
static void
n3_stats_log(const struct n3 *n)
{
	const struct n3_stats	*s = &n->stats;

	log_info("stats: init=%lu cookie_sent=%lu cookie_ok=%lu dup_absorbed=%lu "
	    "over_src=%lu over_sae=%lu over_all=%lu queue_full=%lu draws=%lu "
	    "keys_drawn=%lu draw_fail=%lu keys_wiped=%lu half_open=%zu sas=%zu",
	    s->init_rx, s->cookie_sent, s->cookie_ok, s->dup_absorbed, s->over_src,
	    s->over_sae, s->over_all, s->queue_full, s->draws, s->keys_drawn,
	    s->draw_fail, s->keys_wiped, n3_half_open(n), n->nsa);
}

int
ike_n3iwf_run(const struct ikecfg *c, volatile sig_atomic_t *stop)
{
	struct n3		*n;
	struct sigaction	 usr1;
	char			 err[IKECFG_ERRLEN];
	int			 ret = -1, wait, r;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return -1;
	n->cfg = c;
	n->stop = stop;
	n->net.fd = n->net.fd_natt = -1;
	memset(&usr1, 0, sizeof(usr1));
	usr1.sa_handler = n3_on_usr1;	/* no SA_RESTART: poll() returns */
	sigaction(SIGUSR1, &usr1, NULL);
	if (n3_setup(n, c, err, sizeof(err)) == -1) {
		log_err("%s", err);
		goto done;
	}
	log_info("listening on %s:%u and NAT-T %u (%s, %s)", c->host,
	    ntohs(n->net.ike_addr.sin_port), ntohs(n->net.natt_addr.sin_port),
	    ike_mode_name(c->mode), ike_profile_name(c->profile));
	if (c->ready_file && n3_ready(n, c->ready_file) == -1) {
		log_err("cannot write ready file \"%s\"", c->ready_file);
		goto done;
	}
	while (!*stop) {
		if (c->max_conns && n->done >= c->max_conns && n->nsa == 0)
			break;
		wait = n3_timers(n);
		r = ike_net_poll(&n->net, n->kmsq ? ike_kmsq_fd(n->kmsq) : -1, wait,
		    &n->pkt);
		if (r == 1)
			n3_dispatch(n, &n->pkt);
		else if (r == 2)
			n3_kms_drain(n);
		if (n3_usr1) {
			n3_usr1 = 0;
			n3_stats_log(n);
		}
	}
	n3_shutdown(n);
	n3_stats_log(n);
	log_info("%u connection(s) completed; exiting", n->done);
	ret = 0;
done:
	ike_kmsq_close(n->kmsq);	/* joins the workers; wipes pending keys */
	for (size_t i = 0; i < n->nsa; i++)
		ike_sa_free(n->sa[i]);
	ike_rl_free(&n->rl_src);
	ike_rl_free(&n->rl_sae);
	ike_net_close(&n->net);
	ike_csv_close(&n->csv);
	X509_free(n->cert);
	EVP_PKEY_free(n->key);
	X509_STORE_free(n->ca);
	buf_free(&n->cert_der);
	amf_sub_wipe(&n->sub);
	OPENSSL_cleanse(n->cookie_secret, sizeof(n->cookie_secret));
	free(n);
	return ret;
}
