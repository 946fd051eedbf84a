/*
 * The N3IWF: IKEv2 responder with an AMF emulator inside. One event loop
 * over the endpoint core (ike/endpoint.h: sockets, the SA table,
 * retransmission), the timers of the table (half-open expiry), and
 * IKE_SA_INIT: DH, or the 13 QKD keys in ONE enc_keys call. COOKIEs when
 * half-open SAs reach the threshold, and always before QKD keys are drawn
 * (qkd modes); QKD key budgets per source, per claimed SAE and in total;
 * enc_keys and the PPK's dec_keys (ike/kmsq.h), the DH and the signatures
 * (ike/cpuq.h, ike/n3iwf_cpu.c) in worker threads (ike/workq.h), so the
 * loop never waits for kmsd and uses every core; counters on SIGUSR1;
 * Delete of every IKE SA on SIGTERM. The exchanges after IKE_SA_INIT are
 * in ike/n3iwf_auth.c.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/etsi.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "ike/crypto.h"
#include "ike/endpoint.h"
#include "ike/ikev2.h"
#include "ike/kmsq.h"
#include "ike/msg.h"
#include "ike/n3iwf.h"
#include "ike/n3iwf_int.h"
#include "ike/net.h"
#include "ike/pld.h"
#include "ike/proposal.h"
#include "ike/qkd.h"
#include "ike/ratelimit.h"
#include "ike/rekey.h"
#include "ike/sa.h"

#define N3_COOKIE_LEN IKE_PRF_LEN
#define N3_RL_SLOTS   4096 /* buckets per table (sources, SAE IDs) */

static volatile sig_atomic_t n3_usr1;

/* ---- IKE_SA_INIT ---- */

/* An unprotected IKE_SA_INIT answer with one notify (error or COOKIE). */
static void
n3_init_notify(struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *rq,
    uint16_t type, const uint8_t *data, size_t len)
{
	ike_ep_init_notify(&n->ep, p->natt, &p->from, rq->spi_i, type, data,
	    len);
}

/* COOKIE = prf(secret, Ni | IPi | SPIi) (RFC 7296 2.6). */
static int
n3_cookie(const struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *h,
    const struct ike_pld *pl, uint8_t out[static N3_COOKIE_LEN])
{
	uint8_t in[IKE_NONCE_MAX + 4 + IKE_SPI_LEN];
	size_t	len = pl->nonce.len;

	if (len > IKE_NONCE_MAX)
		return -1;
	memcpy(in, pl->nonce.p, len);
	memcpy(in + len, &p->from.sin_addr, 4);
	memcpy(in + len + 4, h->spi_i, IKE_SPI_LEN);
	return ike_prf(n->cookie_secret, sizeof(n->cookie_secret), in,
	    len + 4 + IKE_SPI_LEN, out);
}

/* true: go on; false: a COOKIE was demanded (or the one given is wrong). */
static bool
n3_cookie_ok(struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *h,
    const struct ike_pld *pl)
{
	const struct ikecfg	*cf = n->ep.cfg;
	uint8_t			 want[N3_COOKIE_LEN];
	const struct ike_notify *c;
	int always = cf->qkd_cookie && ike_mode_has_qkd(cf->mode);

	if (!always && ike_ep_half_open(&n->ep) < cf->cookie_threshold)
		return true;
	if (n3_cookie(n, p, h, pl, want) == -1)
		return false;
	c = ike_pld_notify(pl, IKE_N_COOKIE);
	if (c != NULL && pl->n > 0 && pl->list[0].type == IKE_PL_NOTIFY &&
	    c->data.len == sizeof(want) &&
	    CRYPTO_memcmp(c->data.p, want, sizeof(want)) == 0) {
		n->stats.cookie_ok++;
		return true;
	}
	log_debug("%s: asking for a COOKIE",
	    always ? "QKD keys" : "half-open SAs");
	n->stats.cookie_sent++;
	n3_init_notify(n, p, h, IKE_N_COOKIE, want, sizeof(want));
	return false;
}

/* The initiator's SAE ID from QKD_REQUEST, or cfg->peer_sae. */
static int
n3_peer_sae(struct n3 *n, struct ike_sa *sa, const struct ike_pld *pl)
{
	const struct ike_notify *q = ike_pld_notify(pl, IKE_N_QKD_REQUEST);

	if (q != NULL && q->data.len > 0 && q->data.len <= ETSI_ID_MAX) {
		memcpy(sa->peer_sae, q->data.p, q->data.len);
		sa->peer_sae[q->data.len] = '\0';
		if (etsi_id_valid((const char *)sa->peer_sae))
			return 0;
		log_warn("QKD_REQUEST carries an invalid SAE ID");
		return -1;
	}
	if (n->ep.cfg->peer_sae != NULL) {
		snprintf((char *)sa->peer_sae, sizeof(sa->peer_sae), "%s",
		    n->ep.cfg->peer_sae);
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
int
n3iwf_budget(struct n3 *n, const struct sockaddr_in *from, const char *sae,
    unsigned keys, const char **which)
{
	uint64_t      now = time_mono_ns();
	char	      src[INET_ADDRSTRLEN];
	unsigned long held;

	inet_ntop(AF_INET, &from->sin_addr, src, sizeof(src));
	*which = NULL;
	if (ike_rl_level(&n->rl_src, src, now) < keys) {
		*which = "source address";
		n->stats.over_src++;
	} else if (ike_rl_level(&n->rl_sae, sae, now) < keys) {
		*which = "SAE ID";
		n->stats.over_sae++;
	} else if (ike_tb_level(&n->tb_all, &n->ep.cfg->budget_all, now) <
	    keys) {
		*which = "global";
		n->stats.over_all++;
	}
	if (*which == NULL) {
		(void)ike_rl_take(&n->rl_src, src, keys, now);
		(void)ike_rl_take(&n->rl_sae, sae, keys, now);
		(void)ike_tb_take(&n->tb_all, &n->ep.cfg->budget_all, keys,
		    now);
		return 0;
	}
	if (ike_loglim_ok(&n->refuse_log, now, &held))
		log_warn(
		    "QKD key budget (%s) spent: %u keys for SAE %s from %s "
		    "refused with TEMPORARY_FAILURE (%lu more refusals not logged)",
		    *which, keys, sae, src, held);
	return -1;
}

/*
 * qkd: queue ONE enc_keys {13 or 1, 256} for the UE's SAE (ike/kmsq.h); the SA
 * waits in SA_INIT in the table. 0: queued (the table owns sa); -1: refused
 * (answered) or failed, the caller frees sa.
 */
static int
n3_qkd_submit(struct n3 *n, struct ike_sa *sa, const struct ike_pkt *p,
    const struct ike_hdr *h)
{
	struct ike_kmsq_job *j;
	const char	    *which;
	unsigned long	     held;

	if (ike_kmsq_full(n->wq) || ike_ep_full(&n->ep)) {
		n->stats.queue_full++;
		if (ike_loglim_ok(&n->refuse_log, time_mono_ns(), &held))
			log_warn(
			    "%zu IKE SAs, kmsd queue %s: IKE_SA_INIT answered "
			    "TEMPORARY_FAILURE (%lu more refusals not logged)",
			    n->ep.nsa,
			    ike_kmsq_full(n->wq) ? "full" : "not full", held);
		n3_init_notify(n, p, h, IKE_N_TEMPORARY_FAILURE, NULL, 0);
		return -1;
	}
	if (n3iwf_budget(n, &p->from, (const char *)sa->peer_sae,
		ike_qkd_sched_nkeys(n->ep.cfg->qkd_schedule), &which) == -1) {
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
	j->n = ike_qkd_sched_nkeys(n->ep.cfg->qkd_schedule);
	if (ike_kmsq_submit(n->wq, j) == -1) { /* checked above */
		ike_kmsq_job_free(j);
		return -1;
	}
	sa->state = SA_INIT;
	(void)ike_ep_add(&n->ep, sa); /* room checked above */
	return 0;
}

static int
n3_build_init_resp(struct n3 *n, struct ike_sa *sa, const struct ike_pld *rq,
    const struct buf *ke)
{
	struct ike_chain c;
	struct ike_hdr	 h;
	uint8_t		 ids[1 + 16 * IKE_QKD_NKEYS];
	size_t		 start, idlen;
	int		 ok;

	ike_ep_hdr(sa, &h, IKE_SA_INIT, 1, 0);
	ok = ike_msg_begin(&sa->init_resp, &h, &c, &start) == 0 &&
	    ike_pld_add_sa(&c, &sa->prop, 1) == 0;
	if (ok && ke->len > 0)
		ok = ike_pld_add_ke(&c, sa->prop.ke[0], ke->data, ke->len) == 0;
	ok = ok && ike_pld_add_nonce(&c, sa->nr, sa->nr_len) == 0;
	ok = ok &&
	    ike_ep_add_natd(&c, sa->spi_i, sa->spi_r, &sa->local, &sa->peer) ==
		0;
	if (ok && n->ep.cfg->mode == IKE_MODE_QKD)
		ok =
		    ike_qkd_ids_encode(sa->qk, ids, sizeof(ids), &idlen) == 0 &&
		    ike_pld_add_notify(&c, 0, NULL, 0, IKE_N_QKD_KEY_IDS, ids,
			idlen) == 0;
	ok = ok && ike_prop_add_init_notifies(n->ep.cfg, &c, rq) == 0;
	return ok && ike_msg_end(&sa->init_resp, start) == 0 ? 0 : -1;
}

static void
n3_nat_check(struct ike_sa *sa, const struct ike_pld *pl)
{
	static const uint8_t zero[IKE_SPI_LEN];

	if (ike_ep_natd_check(pl, sa->spi_i, zero, &sa->peer, &sa->local) != 0)
		log_info("NAT detected between the UE and us: NAT-T expected");
}

/* The IKE_SA_INIT response, once the keys exist. */
static int
n3_init_respond(struct n3 *n, struct ike_sa *sa, const struct ike_pld *rq,
    const struct buf *ke)
{
	if (n3_build_init_resp(n, sa, rq, ke) == -1)
		return -1;
	n3_nat_check(sa, rq);
	sa->st.conn = n->conn_seq++;
	ike_stat_msg(&sa->st, IKE_SA_INIT, 0, 1, 0, sa->init_req.len, sa->natt);
	(void)ike_ep_init_respond(&n->ep, sa);
	sa->state = SA_AUTH;
	sa->xc.peer_mid = 1;
	sa->st.init_ns = time_mono_ns() - sa->t_start;
	sa->t_mark = time_mono_ns();
	ike_sa_log_fp(sa, "IKE SA", NULL);
	return 0;
}

int
n3iwf_init_resume(struct n3 *n, struct ike_sa *sa, const uint8_t *ke,
    size_t kelen)
{
	struct ike_msg m;
	struct buf     kb;
	int	       ret = -1;

	memset(&m, 0, sizeof(m));
	buf_init(&kb, 1024);
	if (buf_add(&kb, ke, kelen) == 0 &&
	    ike_msg_parse(sa->init_req.data, sa->init_req.len, NULL, &m) == 0)
		ret = n3_init_respond(n, sa, &m.pld, &kb);
	ike_msg_free(&m);
	buf_free(&kb);
	return ret;
}

/* A finished enc_keys: answer the waiting IKE_SA_INIT, or wipe the keys. */
static void
n3_kms_done(struct n3 *n, struct ike_kmsq_job *j)
{
	static const char msg[] = "kmsd unavailable";
	struct ike_sa	 *sa = ike_ep_find(&n->ep, j->spi_i, j->spi_r);

	if (sa == NULL || sa->state != SA_INIT || sa->qk != NULL) {
		if (j->rc == 0) {
			n->stats.keys_wiped += j->n;
			log_info(
			    "%u QKD keys for SAE %s came after their IKE SA was "
			    "gone: wiped unused",
			    j->n, j->sae);
		}
		return; /* the caller frees j, which wipes the keys */
	}
	sa->st.init_kmsd_ns += j->ns;
	if (j->rc == -1) {
		n->stats.draw_fail++;
		log_warn(
		    "QKD keys for SAE %s unavailable: kmsd %s: %s; answering "
		    "QKD_UNAVAILABLE",
		    j->sae, n->ep.cfg->kmsd_url, j->why);
		ike_ep_init_notify(&n->ep, sa->natt, &sa->peer, sa->spi_i,
		    IKE_N_QKD_UNAVAILABLE, (const uint8_t *)msg,
		    sizeof(msg) - 1);
		sa->state = SA_DEAD;
		return;
	}
	log_debug("kmsd: enc_keys %u keys for %s in %.3f ms", j->n, j->sae,
	    (double)j->ns / 1e6);
	sa->qk = j->keys; /* the SA owns (and wipes) them now */
	j->keys = NULL;
	if (ike_sa_keys_qkd(sa) == -1 ||
	    n3iwf_init_resume(n, sa, NULL, 0) == -1)
		sa->state = SA_DEAD;
}

static void
n3_kms_one(struct n3 *n, struct ike_kmsq_job *j)
{
	if (j->rc == 0) { /* drawn at kmsd, whatever comes of them */
		n->stats.draws++;
		n->stats.keys_drawn += j->n;
	}
	if (j->rekey)
		n3iwf_rekey_done(n, j);
	else if (j->dec)
		n3iwf_ppk_done(n, j);
	else
		n3_kms_done(n, j);
}

/* Every finished job of the worker pool: kmsd calls, DH, signatures. */
static void
n3_wq_drain(struct n3 *n)
{
	struct ike_wq_job *j;

	while ((j = ike_wq_done(n->wq)) != NULL) {
		if (j->kind == IKE_KMSQ_JOB)
			n3_kms_one(n, (struct ike_kmsq_job *)j);
		else
			n3iwf_cpu_done(n, (struct ike_cpuq_job *)j);
		j->free(j); /* wipes what the SA did not take */
	}
}

/*
 * A new IKE SA for the IKE_SA_INIT request in pl: the proposal we choose,
 * the KE check, SPIs, nonces, addresses. NULL when refused (the notify
 * is sent) or out of memory.
 */
static struct ike_sa *
n3_init_sa(struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *h,
    const struct ike_pld *pl)
{
	const struct ikecfg *c = n->ep.cfg;
	struct ike_sa	    *sa;
	uint8_t		     grp[2];
	uint16_t	     nt;

	if ((sa = ike_sa_new(c, 0)) == NULL)
		return NULL;
	sa->t_start = p->t_ns;
	if ((nt = ike_prop_choose_ike(c, pl, &sa->prop)) != 0) {
		log_info("IKE_SA_INIT from the UE: no acceptable proposal; "
			 "answering NO_PROPOSAL_CHOSEN");
		n3_init_notify(n, p, h, nt, NULL, 0);
		goto fail;
	}
	if ((nt = ike_prop_check_ke(c, &sa->prop, pl, grp)) != 0) {
		n3_init_notify(n, p, h, nt, grp, sizeof(grp));
		goto fail;
	}
	memcpy(sa->spi_i, h->spi_i, IKE_SPI_LEN);
	memcpy(sa->ni, pl->nonce.p, pl->nonce.len);
	sa->ni_len = pl->nonce.len;
	sa->peer = p->from;
	sa->local = p->to;
	sa->natt = p->natt;
	if (ike_random(sa->spi_r, IKE_SPI_LEN) == -1 ||
	    ike_random(sa->nr, IKE_NONCE_LEN) == -1)
		goto fail;
	sa->nr_len = IKE_NONCE_LEN;
	return sa;
fail:
	ike_sa_free(sa);
	return NULL;
}

static void
n3_init(struct n3 *n, const struct ike_pkt *p, const struct ike_hdr *h)
{
	const struct ikecfg *c = n->ep.cfg;
	struct ike_msg	     m;
	struct ike_sa	    *sa = NULL;

	memset(&m, 0, sizeof(m));
	n->stats.init_rx++;
	if (ike_ep_init_dup(&n->ep, p, h))
		goto done;
	if (ike_msg_parse(p->data, p->len, NULL, &m) == -1) {
		log_debug("malformed IKE_SA_INIT dropped");
		goto done;
	}
	if (!IKE_PLD_HAS(&m.pld, IKE_PL_SA) ||
	    !IKE_PLD_HAS(&m.pld, IKE_PL_NONCE) ||
	    m.pld.nonce.len < IKE_NONCE_MIN ||
	    m.pld.nonce.len > IKE_NONCE_MAX) {
		n3_init_notify(n, p, h, IKE_N_INVALID_SYNTAX, NULL, 0);
		goto done;
	}
	if (!n3_cookie_ok(n, p, h, &m.pld) ||
	    (sa = n3_init_sa(n, p, h, &m.pld)) == NULL)
		goto done;
	if (ike_mode_has_qkd(c->mode) && n3_peer_sae(n, sa, &m.pld) == -1 &&
	    c->mode == IKE_MODE_QKD) {
		n3_init_notify(n, p, h, IKE_N_QKD_UNAVAILABLE, NULL, 0);
		goto done;
	}
	if ((c->mode == IKE_MODE_QKD ? n3_qkd_submit(n, sa, p, h) :
				       n3iwf_cpu_init(n, sa, p, &m.pld)) == 0)
		sa = NULL; /* in the table, waiting for kmsd or its DH */
done:
	ike_sa_free(sa);
	ike_msg_free(&m);
}

/* One event of the endpoint's loop. */
static void
n3_event(struct n3 *n, struct ike_ep_ev *ev)
{
	switch (ev->type) {
	case IKE_EP_INIT: n3_init(n, ev->p, &ev->h); break;
	case IKE_EP_REQUEST:
		if (ev->h.exchange == IKE_AUTH && !ev->sa->auth_started)
			ev->sa->t_mark =
			    ev->p->t_ns; /* AUTH phase: from MID 1 on */
		n3iwf_request(n, ev->sa, &ev->m);
		break;
	case IKE_EP_RESPONSE: n3iwf_response(n, ev->sa, &ev->m); break;
	case IKE_EP_XFD:
		n3_wq_drain(n);
		n3iwf_tun_step(n); /* NAS over TCP */
		break;
	default: break;
	}
	ike_msg_free(&ev->m);
}

/* One SA's timers: retransmission, lifetimes and rekeys, half-open expiry.
 * The ms until it wants to run again (INT_MAX: nothing scheduled). */
static int
n3_sa_tick(void *ctx, struct ike_sa *sa, uint64_t now)
{
	struct n3 *n = ctx;
	uint64_t   end =
	    sa->t_created + (uint64_t)n->ep.cfg->half_open_ms * 1000000u;
	int wait, w;

	if ((wait = ike_ep_retx_tick(&n->ep, sa)) == -1) {
		log_warn("the UE does not answer %s MID %u: IKE SA dropped",
		    ike_exchange_name(sa->xc.req_exchange), sa->xc.req_mid);
		sa->state = SA_DEAD;
		return INT_MAX;
	}
	if ((w = ike_rekey_tick(&n->ep, sa)) < wait)
		wait = w;
	if (sa->state < SA_ESTABLISHED && now >= end) {
		log_info("IKE SA not established within %u ms: dropped",
		    n->ep.cfg->half_open_ms);
		sa->state = SA_DEAD;
	} else if (sa->state < SA_ESTABLISHED &&
	    (end - now) / 1000000u + 1 < (uint64_t)wait)
		wait = (int)((end - now) / 1000000u + 1);
	return wait;
}

/* Due and touched SAs only (ike_ep_timers), the tunnel's second tick. */
static int
n3_timers(struct n3 *n)
{
	int wait = ike_ep_timers(&n->ep, n3_sa_tick, n, 1000);

	tnl_tick(&n->tnl);
	return wait;
}

/* SIGTERM: INFORMATIONAL Delete to every IKE SA with keys, bounded wait. */
static void
n3_shutdown(struct n3 *n)
{
	struct ike_ep_ev ev;
	uint64_t	 end;
	size_t		 left = 0;

	for (size_t i = 0; i < n->ep.nsa; i++) {
		struct ike_sa *sa = n->ep.sa[i];

		if (sa->state == SA_DEAD || sa->state == SA_INIT)
			continue;
		if (ike_ep_delete(&n->ep, sa) == 0) {
			sa->state = SA_DELETING;
			left++;
		}
	}
	if (left)
		log_info("deleting %zu IKE SA(s)", left);
	end = time_mono_ns() + 1000000000u;
	while (left > 0 && time_mono_ns() < end) {
		(void)ike_ep_next(&n->ep, -1, 100, &ev);
		n3_event(n, &ev);
		left = 0;
		for (size_t i = 0; i < n->ep.nsa; i++)
			left += n->ep.sa[i]->state == SA_DELETING;
	}
}

/*
 * The worker pool: the kmsd lane in qkd modes, the CPU lane always
 * (crypto_workers 0: one thread per online CPU), with the stock of key
 * pairs in the DH modes.
 */
static int
n3_workers(struct n3 *n, const struct ikecfg *c, char *err, size_t errlen)
{
	long	 cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned w = c->crypto_workers;

	if (w == 0)
		w = cpus < 1		      ? 1 :
		    cpus > IKE_WQ_MAX_WORKERS ? IKE_WQ_MAX_WORKERS :
						(unsigned)cpus;
	if ((n->wq = ike_wq_new(err, errlen)) == NULL)
		return -1;
	if (ike_mode_has_qkd(c->mode) &&
	    ike_kmsq_open(n->wq, c, c->kmsd_workers, c->kmsd_queue, err,
		errlen) == -1)
		return -1;
	if (ike_cpuq_open(n->wq, w, c->crypto_queue,
		ike_mode_has_dh(c->mode) ? (uint16_t)c->dh_group : 0,
		c->crypto_stock, err, errlen) == -1)
		return -1;
	log_info("%u crypto worker thread(s)%s", w,
	    ike_mode_has_qkd(c->mode) ? ", kmsd workers too" : "");
	return 0;
}

static int
n3_setup(struct n3 *n, const struct ikecfg *c, volatile sig_atomic_t *stop,
    char *err, size_t errlen)
{
	if (ike_ep_open(&n->ep, c, stop, true, err, errlen) == -1)
		return -1;
	if (ike_random(n->cookie_secret, sizeof(n->cookie_secret)) == -1) {
		snprintf(err, errlen, "no randomness");
		return -1;
	}
	if (n3_workers(n, c, err, errlen) == -1)
		return -1;
	if (ike_rl_init(&n->rl_src, &c->budget_src, N3_RL_SLOTS) == -1 ||
	    ike_rl_init(&n->rl_sae, &c->budget_sae, N3_RL_SLOTS) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ike_tb_init(&n->tb_all, &c->budget_all, time_mono_ns());
	n->refuse_log.interval_ns = 1000000000u;
	n3iwf_rekey_setup(n);
	if (ike_ep_bind(&n->ep, err, errlen) == -1)
		return -1;
	return n3iwf_tun_open(n, err, errlen);
}

static int
n3_ready(const struct n3 *n, const char *path)
{
	char  tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "port=%u\nnatt_port=%u\npid=%ld\n",
	    ntohs(n->ep.net.ike_addr.sin_port),
	    ntohs(n->ep.net.natt_addr.sin_port), (long)getpid());
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
n3_stats_log(struct n3 *n)
{
	const struct n3_stats *s = &n->stats;

	log_info(
	    "stats: init=%lu cookie_sent=%lu cookie_ok=%lu dup_absorbed=%lu "
	    "over_src=%lu over_sae=%lu over_all=%lu queue_full=%lu "
	    "cpu_busy=%lu draws=%lu keys_drawn=%lu draw_fail=%lu "
	    "keys_wiped=%lu half_open=%zu sas=%zu",
	    s->init_rx, s->cookie_sent, s->cookie_ok, n->ep.absorbed,
	    s->over_src, s->over_sae, s->over_all, s->queue_full, s->cpu_busy,
	    s->draws, s->keys_drawn, s->draw_fail, s->keys_wiped,
	    ike_ep_half_open(&n->ep), n->ep.nsa);
	ike_rekey_stats_log(&n->ep);
}

/* The loop: timers, one event, counters on SIGUSR1; Delete all at the end. */
static void
n3_loop(struct n3 *n)
{
	const struct ikecfg *c = n->ep.cfg;
	struct ike_ep_ev     ev;
	int		     wait;

	while (!*n->ep.stop) {
		if (c->max_conns && n->ep.done >= c->max_conns &&
		    n->ep.nsa == 0)
			break;
		wait = n3_timers(n);
		(void)ike_ep_next(&n->ep, n3iwf_tun_xfd(n), wait, &ev);
		n3_event(n, &ev);
		if (n3_usr1) {
			n3_usr1 = 0;
			n3_stats_log(n);
		}
	}
	n3_shutdown(n);
	n3_stats_log(n);
	log_info("%u connection(s) completed; exiting", n->ep.done);
}

int
ike_n3iwf_run(const struct ikecfg *c, volatile sig_atomic_t *stop)
{
	struct n3	*n;
	struct sigaction usr1;
	char		 err[IKECFG_ERRLEN];
	int		 ret = -1;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return -1;
	n->ep.net.fd = n->ep.net.fd_natt = -1;
	n->xfd = n->tnl.tun_fd = -1;
	memset(&usr1, 0, sizeof(usr1));
	usr1.sa_handler = n3_on_usr1; /* no SA_RESTART: poll() returns */
	sigaction(SIGUSR1, &usr1, NULL);
	if (n3_setup(n, c, stop, err, sizeof(err)) == -1) {
		log_err("%s", err);
		goto done;
	}
	log_info("listening on %s:%u and NAT-T %u (%s, %s)", c->host,
	    ntohs(n->ep.net.ike_addr.sin_port),
	    ntohs(n->ep.net.natt_addr.sin_port), ike_mode_name(c->mode),
	    ike_profile_name(c->profile));
	if (c->ready_file && n3_ready(n, c->ready_file) == -1) {
		log_err("cannot write ready file \"%s\"", c->ready_file);
		goto done;
	}
	n3_loop(n);
	ret = 0;
done:
	n3iwf_tun_close(n);
	ike_wq_close(n->wq); /* joins the workers; wipes pending keys */
	ike_rl_free(&n->rl_src);
	ike_rl_free(&n->rl_sae);
	ike_ep_close(&n->ep);
	OPENSSL_cleanse(n->cookie_secret, sizeof(n->cookie_secret));
	free(n);
	return ret;
}
