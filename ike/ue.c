/*
 * The UE: IKEv2 initiator. One connection = IKE_SA_INIT, IKE_AUTH (NWu:
 * EAP-5G rounds against the N3IWF's AMF emulator, then AUTH keyed by
 * KN3IWF; rfc7296: one PSK/signature exchange), the user-plane Child SA
 * the N3IWF creates (NWu), and an INFORMATIONAL Delete at the end.
 * Blocking and sequential on the endpoint core (ike/endpoint.h): each
 * request waits for its response, with retransmission, and requests from
 * the N3IWF are answered meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "ike/amf.h"
#include "ike/crypto.h"
#include "ike/eap5g.h"
#include "ike/endpoint.h"
#include "ike/ikev2.h"
#include "ike/msg.h"
#include "ike/net.h"
#include "ike/pld.h"
#include "ike/proposal.h"
#include "ike/qkd.h"
#include "ike/sa.h"
#include "ike/ue.h"
#include "ike/ue_int.h"
#include "ike/ue_load.h"
#include "ike/usim.h"

static int ue_answer(struct ue *u, struct ike_sa *sa, struct ike_msg *m);

/* ---- waiting for packets ---- */

/*
 * How long the next wait may last: until sa's request is due again
 * (ike_ep_retx_tick resends it), or until `end` when we wait for a
 * request. -1 (and u->fail) when there is nothing more to wait for.
 */
static int
ue_wait_ms(struct ue *u, struct ike_sa *sa, int want_req, uint64_t end,
    unsigned timeout_ms)
{
	const struct ike_xchg *x = &sa->xc;
	uint64_t	       now = time_mono_ns();
	int		       w;

	if (want_req) {
		if (now < end)
			return (int)((end - now) / 1000000u) + 1;
		FAIL(u,
		    "no CREATE_CHILD_SA request from the N3IWF within %u ms",
		    timeout_ms);
		return -1;
	}
	if ((w = ike_ep_retx_tick(&u->ep, sa)) != -1)
		return w;
	if (x->req_exchange == IKE_SA_INIT)
		FAIL(u, "no IKE_SA_INIT response from the N3IWF after %u sends",
		    x->retx.sent);
	else
		FAIL(u, "no answer from the N3IWF to %s MID %u after %u sends",
		    ike_exchange_name(x->req_exchange), x->req_mid,
		    x->retx.sent);
	return -1;
}

/*
 * Runs the endpoint until the response to sa's outstanding request
 * (want_req 0; retransmitted meanwhile) or, within timeout_ms, the next
 * request of the N3IWF (want_req 1), in *m (ike_msg_free it). Requests
 * that come while we wait for a response are answered (ue_answer).
 */
static int
ue_wait(struct ue *u, struct ike_sa *sa, int want_req, unsigned timeout_ms,
    struct ike_msg *m)
{
	struct ike_ep_ev ev;
	uint64_t	 end = time_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	int		 wait, r = 0;

	for (;;) {
		if (*u->ep.stop) {
			FAIL(u, "stopped");
			return -1;
		}
		if ((wait = ue_wait_ms(u, sa, want_req, end, timeout_ms)) == -1)
			return -1;
		switch (ike_ep_next(&u->ep, u->xfd, wait, &ev)) {
		case IKE_EP_ERROR: FAIL(u, "socket error"); return -1;
		case IKE_EP_XFD: ue_tun_step(u); break; /* NAS over TCP */
		case IKE_EP_RESPONSE:
		case IKE_EP_REQUEST:
			if ((ev.type == IKE_EP_REQUEST) == want_req) {
				*m = ev.m; /* the caller frees it */
				return 0;
			}
			if (ev.type == IKE_EP_REQUEST)
				r = ue_answer(u, sa, &ev.m);
			ike_msg_free(&ev.m);
			if (r == -1)
				return -1;
			break;
		default: break;
		}
	}
}

/* Waits for the response to the request just sent (at most `tries` sends). */
static int
ue_sent(struct ue *u, struct ike_sa *sa, unsigned tries, struct ike_msg *m)
{
	if (tries != 0 && tries < sa->xc.retx.tries)
		sa->xc.retx.tries = tries;
	return ue_wait(u, sa, 0, 0, m);
}

int
ue_exchange(struct ue *u, struct ike_sa *sa, uint8_t exchange, uint8_t first,
    const struct buf *inner, struct ike_msg *m)
{
	if (ike_ep_request(&u->ep, sa, exchange, first, inner) == -1) {
		FAIL(u, "cannot build the %s request",
		    ike_exchange_name(exchange));
		return -1;
	}
	return ue_sent(u, sa, 0, m);
}

/* Requests from the N3IWF outside the NWu script: Delete, liveness. */
static int
ue_answer(struct ue *u, struct ike_sa *sa, struct ike_msg *m)
{
	if (m->hdr.exchange != IKE_INFORMATIONAL) {
		log_warn("unexpected %s request from the N3IWF",
		    ike_exchange_name(m->hdr.exchange));
		return 0;
	}
	if (ike_ep_informational(&u->ep, sa, m)) {
		FAIL(u, "the N3IWF deleted the IKE SA");
		sa->state = SA_DEAD;
		return -1;
	}
	return 0;
}

const char *
ue_error_notify(const struct ike_pld *p, uint16_t *type)
{
	for (size_t i = 0; i < p->nnotify; i++)
		if (p->notify[i].type <= IKE_N_ERROR_MAX ||
		    p->notify[i].type == IKE_N_QKD_UNAVAILABLE) {
			*type = p->notify[i].type;
			return ike_notify_name(p->notify[i].type);
		}
	return NULL;
}

/* ---- IKE_SA_INIT ---- */

static int
ue_build_init(struct ue *u, struct ike_sa *sa, const struct buf *ke,
    const struct ike_bytes *cookie)
{
	const struct ikecfg *c = u->ep.cfg;
	struct ike_prop_desc prop;
	struct ike_chain     ch;
	struct ike_hdr	     h;
	static const uint8_t zero[IKE_SPI_LEN];
	size_t		     start;
	int		     ok;

	ike_ep_hdr(sa, &h, IKE_SA_INIT, 0, 0);
	buf_reset(&sa->init_req);
	ike_prop_ike(c, &prop);
	ok = ike_msg_begin(&sa->init_req, &h, &ch, &start) == 0;
	if (ok && cookie != NULL)
		ok = ike_pld_add_notify(&ch, 0, NULL, 0, IKE_N_COOKIE,
			 cookie->p, cookie->len) == 0;
	ok = ok && ike_pld_add_sa(&ch, &prop, 1) == 0;
	if (ok && ke->len > 0)
		ok = ike_pld_add_ke(&ch, prop.ke[0], ke->data, ke->len) == 0;
	ok = ok && ike_pld_add_nonce(&ch, sa->ni, sa->ni_len) == 0;
	ok = ok &&
	    ike_ep_add_natd(&ch, sa->spi_i, zero, &u->ep.net.ike_addr,
		&u->n3iwf) == 0;
	if (ok && ike_mode_has_qkd(c->mode)) {
		const char *sae = ike_qkd_sae(u->qkd);

		ok = ike_pld_add_notify(&ch, 0, NULL, 0, IKE_N_QKD_REQUEST,
			 (const uint8_t *)sae, strlen(sae)) == 0;
	}
	ok = ok && ike_prop_add_init_notifies(c, &ch, NULL) == 0;
	return ok && ike_msg_end(&sa->init_req, start) == 0 ? 0 : -1;
}

/* NAT detection: a NAT between us if the N3IWF saw other addresses. */
static void
ue_nat_check(struct ue *u, struct ike_sa *sa, const struct ike_pld *pl)
{
	int nat = ike_ep_natd_check(pl, sa->spi_i, sa->spi_r, &u->n3iwf,
	    &u->ep.net.ike_addr);

	if (nat & IKE_NAT_PEER)
		log_info("NAT detected in front of the N3IWF");
	if (nat & IKE_NAT_US)
		log_info("NAT detected in front of us");
	if (nat)
		sa->natt = 1;
}

/*
 * qkd: ONE dec_keys for the 13 IDs (paper schedule) or the one ID (prf);
 * qkd+dh: ONE enc_keys for the PPK.
 */
static int
ue_qkd(struct ue *u, struct ike_sa *sa, const struct ike_pld *pl)
{
	unsigned nkeys = ike_qkd_sched_nkeys(u->ep.cfg->qkd_schedule);
	const struct ike_notify *n;
	char			 why[IKE_QKD_WHYLEN];
	uint64_t		 t0;
	int			 r;

	if ((sa->qk = ike_qkd_keys_new()) == NULL)
		return -1;
	t0 = time_mono_ns();
	if (u->ep.cfg->mode == IKE_MODE_QKD) {
		if ((n = ike_pld_notify(pl, IKE_N_QKD_KEY_IDS)) == NULL ||
		    ike_qkd_ids_decode(n->data.p, n->data.len, nkeys, sa->qk) ==
			-1) {
			FAIL(u,
			    "IKE_SA_INIT response without valid QKD_KEY_IDS");
			return -1;
		}
		r = ike_qkd_dec(u->qkd, u->ep.cfg->peer_sae,
		    (const char(*)[ETSI_KEY_ID_MAX + 1]) sa->qk->id, nkeys,
		    sa->qk, why);
	} else if (u->ep.cfg->ppk_key_id != NULL) {
		snprintf(sa->qk->id[0], sizeof(sa->qk->id[0]), "%s",
		    u->ep.cfg->ppk_key_id);
		r = ike_qkd_dec(u->qkd, u->ep.cfg->peer_sae,
		    (const char(*)[ETSI_KEY_ID_MAX + 1]) sa->qk->id, 1, sa->qk,
		    why);
	} else
		r = ike_qkd_enc(u->qkd, u->ep.cfg->peer_sae, 1, sa->qk, why);
	sa->st.init_kmsd_ns += time_mono_ns() - t0;
	if (r == -1) {
		FAIL(u, "kmsd %s: %s", u->ep.cfg->kmsd_url, why);
		return -1;
	}
	log_debug("kmsd: %s %zu key(s) in %.3f ms",
	    u->ep.cfg->mode == IKE_MODE_QKD ? "dec_keys" : "enc_keys",
	    sa->qk->n, (double)(time_mono_ns() - t0) / 1e6);
	return 0;
}

static int
ue_init_keys(struct ue *u, struct ike_sa *sa, const struct ike_pld *pl)
{
	const struct ikecfg *c = u->ep.cfg;

	if (!IKE_PLD_HAS(pl, IKE_PL_SA) || !IKE_PLD_HAS(pl, IKE_PL_NONCE) ||
	    ike_prop_reply_ike(c, &pl->sa, &sa->prop) == -1) {
		FAIL(u, "IKE_SA_INIT response: no acceptable SA or nonce");
		return -1;
	}
	if (pl->nonce.len < IKE_NONCE_MIN || pl->nonce.len > IKE_NONCE_MAX) {
		FAIL(u, "IKE_SA_INIT response: nonce of %zu bytes",
		    pl->nonce.len);
		return -1;
	}
	memcpy(sa->nr, pl->nonce.p, pl->nonce.len);
	sa->nr_len = pl->nonce.len;
	if (c->mode == IKE_MODE_QKD)
		return ue_qkd(u, sa, pl) == -1 || ike_sa_keys_qkd(sa) == -1 ?
		    -1 :
		    0;
	if (!IKE_PLD_HAS(pl, IKE_PL_KE) || pl->ke.group != sa->prop.ke[0]) {
		FAIL(u, "IKE_SA_INIT response: no KE payload of group %u",
		    sa->prop.ke[0]);
		return -1;
	}
	if (ike_sa_keys_dh(sa, pl->ke.data.p, pl->ke.data.len) == -1) {
		FAIL(u, "DH with the N3IWF's KE failed");
		return -1;
	}
	if (c->mode == IKE_MODE_QKD_DH) {
		if (ike_pld_notify(pl, IKE_N_USE_PPK) == NULL) {
			if (c->ppk_required) {
				FAIL(u,
				    "the N3IWF does not support PPKs (no USE_PPK)");
				return -1;
			}
			log_warn(
			    "the N3IWF sent no USE_PPK: no PPK for this IKE SA");
			return 0;
		}
		if (ue_qkd(u, sa, pl) == -1 || ike_sa_keys_ppk(sa) == -1)
			return -1;
	}
	return 0;
}

/* Our KE (DH modes), then IKE_SA_INIT until an answer without COOKIE. */
static int
ue_init_xchg(struct ue *u, struct ike_sa *sa, struct ike_msg *m)
{
	const struct ike_notify *n;
	struct buf		 ke, cookie;
	struct ike_bytes	 cb;
	uint64_t		 t0;
	int			 ret = -1, tries = 0;

	buf_init(&ke, 1024);
	buf_init(&cookie, 256);
	if (ike_mode_has_dh(u->ep.cfg->mode)) {
		t0 = time_mono_ns();
		if ((sa->dh = ike_dh_new((uint16_t)u->ep.cfg->dh_group)) ==
			NULL ||
		    ike_dh_public(sa->dh, &ke) == -1)
			goto done;
		sa->st.init_dh_ns += time_mono_ns() - t0;
	}
	if (ue_build_init(u, sa, &ke, NULL) == -1)
		goto done;
	for (;;) {
		if (ike_ep_init_request(&u->ep, sa) == -1 ||
		    ue_sent(u, sa, 0, m) == -1)
			goto done;
		if ((n = ike_pld_notify(&m->pld, IKE_N_COOKIE)) == NULL)
			break;
		if (++tries > 2 || n->data.len < 1 || n->data.len > 64) {
			FAIL(u, "the N3IWF keeps asking for a COOKIE");
			goto done;
		}
		log_debug("N3IWF asks for a COOKIE (%zu bytes)", n->data.len);
		buf_reset(&cookie);
		if (buf_add(&cookie, n->data.p, n->data.len) == -1)
			goto done;
		ike_msg_free(m);
		cb.p = cookie.data;
		cb.len = cookie.len;
		if (ue_build_init(u, sa, &ke, &cb) == -1)
			goto done;
	}
	ret = 0;
done:
	buf_free(&ke);
	buf_free(&cookie);
	return ret;
}

static int
ue_init(struct ue *u, struct ike_sa *sa)
{
	const struct ike_pkt *p = &u->ep.pkt;
	struct ike_msg	      m;
	const char	     *err;
	uint16_t	      et;
	int		      ret = -1;

	memset(&m, 0, sizeof(m));
	/* SPIi: ike_sa_new's (the table is keyed by it) */
	if (ike_random(sa->ni, IKE_NONCE_LEN) == -1)
		goto done;
	sa->ni_len = IKE_NONCE_LEN;
	if (ue_init_xchg(u, sa, &m) == -1)
		goto done;
	if ((err = ue_error_notify(&m.pld, &et)) != NULL) {
		FAIL(u, "the N3IWF refused IKE_SA_INIT: %s (%u)%s", err, et,
		    ike_prop_refusal_hint(u->ep.cfg, et));
		goto done;
	}
	memcpy(sa->spi_r, m.hdr.spi_r, IKE_SPI_LEN);
	if (buf_add(&sa->init_resp, p->data, p->len) == -1)
		goto done;
	ue_nat_check(u, sa, &m.pld);
	if (u->ep.cfg->force_natt)
		sa->natt = 1;
	if (sa->natt) {
		sa->peer.sin_port = htons(u->ep.cfg->natt_port);
		u->ep.net.natt_peer_port = u->ep.cfg->natt_port;
	}
	if (ue_init_keys(u, sa, &m.pld) == -1)
		goto done;
	sa->state = SA_AUTH;
	sa->xc.my_mid = 1;
	ike_sa_log_fp(sa, "IKE SA", NULL);
	ret = 0;
done:
	ike_msg_free(&m);
	if (ret == -1 && u->fail[0] == '\0')
		FAIL(u, "IKE_SA_INIT failed (see above)");
	return ret;
}

/* ---- the user-plane Child SA the N3IWF creates (NWu) ---- */

static int
ue_child2(struct ue *u, struct ike_sa *sa)
{
	struct ike_msg		 m;
	struct ike_child	*ch = &sa->child[1];
	struct ike_chain	 c;
	struct buf		 in;
	const struct ike_notify *n;
	uint8_t			 nr[IKE_NONCE_LEN];
	int			 ok, ret = -1;

	if (ue_wait(u, sa, 1, u->ep.cfg->retrans_ms * 8 + 2000, &m) == -1)
		return -1;
	buf_init(&in, IKE_MSG_MAX);
	if (m.hdr.exchange != IKE_CREATE_CHILD_SA ||
	    !IKE_PLD_HAS(&m.pld, IKE_PL_NONCE) ||
	    !IKE_PLD_HAS(&m.pld, IKE_PL_TSI) ||
	    !IKE_PLD_HAS(&m.pld, IKE_PL_TSR) ||
	    ike_prop_choose_esp(u->ep.cfg, &m.pld, &ch->prop) == -1) {
		FAIL(u, "bad CREATE_CHILD_SA request from the N3IWF");
		(void)ike_ep_respond_notify(&u->ep, sa, &m,
		    IKE_N_NO_PROPOSAL_CHOSEN);
		goto done;
	}
	if ((n = ike_pld_notify(&m.pld, IKE_N_UP_IP4_ADDRESS)) != NULL &&
	    n->data.len == 4) {
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, n->data.p, ip, sizeof(ip));
		log_debug("user plane: UP_IP4_ADDRESS %s, 5G_QOS_INFO %s", ip,
		    ike_pld_notify(&m.pld, IKE_N_5G_QOS_INFO) ? "present" :
								"absent");
	}
	memcpy(&ch->spi_r, ch->prop.spi, 4);
	if (ike_random((uint8_t *)&ch->spi_i, 4) == -1 ||
	    ike_random(nr, sizeof(nr)) == -1)
		goto done;
	memcpy(ch->prop.spi, &ch->spi_i, 4);
	ch->up = 1;
	/* Our policy takes any traffic: the N3IWF's selectors as they are. */
	ch->ts_n3 = m.pld.tsi;
	ch->ts_ue = m.pld.tsr;
	/* KEYMAT: Ni = the N3IWF's nonce (it started the exchange). */
	if (ike_sa_child_keys(sa, ch, m.pld.nonce.p, m.pld.nonce.len, nr,
		sizeof(nr)) == -1)
		goto done;
	ike_ep_inner_init(&in, &c);
	ok = ike_pld_add_sa(&c, &ch->prop, 1) == 0 &&
	    ike_pld_add_nonce(&c, nr, sizeof(nr)) == 0 &&
	    ike_pld_add_ts(&c, IKE_PL_TSI, &ch->ts_n3) == 0 &&
	    ike_pld_add_ts(&c, IKE_PL_TSR, &ch->ts_ue) == 0;
	if (!ok ||
	    ike_ep_respond(&u->ep, sa, IKE_CREATE_CHILD_SA, m.hdr.msgid,
		c.first, &in) == -1)
		goto done;
	sa->nchild = 2;
	ike_sa_log_fp(sa, "Child SA 2 (user plane)", ch);
	ret = 0;
done:
	OPENSSL_cleanse(nr, sizeof(nr));
	ike_msg_free(&m);
	buf_free(&in);
	return ret;
}

/* INFORMATIONAL with Delete(IKE SA); bounded wait for the answer. */
static void
ue_delete(struct ue *u, struct ike_sa *sa)
{
	struct ike_msg m;

	/* Do not wait long for the answer to a Delete. */
	if (ike_ep_delete(&u->ep, sa) == 0 && ue_sent(u, sa, 3, &m) == 0) {
		ike_msg_free(&m);
		log_debug("IKE SA deleted");
	} else
		log_warn("Delete not answered: %s", u->fail);
	sa->state = SA_DEAD;
}

int
ue_conn_up(struct ue *u, unsigned idx, struct ike_sa **out)
{
	const struct ikecfg *c = u->ep.cfg;
	struct ike_sa	    *sa;
	int		     ret = -1;

	u->fail[0] = '\0';
	if ((sa = ike_sa_new(c, 1)) == NULL)
		return -1;
	if (ike_ep_add(&u->ep, sa) == -1) {
		ike_sa_free(sa);
		return -1;
	}
	sa->peer = u->n3iwf;
	sa->st.conn = idx;
	u->ep.net.natt_peer_port = 0;
	if (ue_init(u, sa) == -1)
		goto done;
	sa->st.init_ns = ike_sa_lap(sa);
	if ((c->profile == IKE_PROFILE_NWU ? ue_auth_nwu(u, sa) :
					     ue_auth_rfc(u, sa)) == -1)
		goto done;
	sa->st.auth_ns = ike_sa_lap(sa);
	if (c->tunnel && ue_tun_open(u, sa) == -1)
		goto done;
	if (c->profile == IKE_PROFILE_NWU && (!c->nas_tcp || c->tunnel)) {
		if (ue_child2(u, sa) == -1)
			goto done;
		sa->st.child_ns = ike_sa_lap(sa);
	}
	ike_ep_established(&u->ep, sa);
	*out = sa;
	ret = 0;
done:
	if (ret == -1) {
		log_err("connection %u failed: %s", idx,
		    u->fail[0] ? u->fail : "see above");
		ike_ep_csv_failed(&u->ep, sa);
		sa->state = SA_DEAD;
		ike_ep_sweep(&u->ep);
	}
	return ret;
}

/* One connection: a fresh IKE SA in the table, up, then deleted. */
static int
ue_connect(struct ue *u, unsigned idx)
{
	struct ike_sa *sa;
	int	       ret;

	if (ue_conn_up(u, idx, &sa) == -1) {
		ue_tun_close(u);
		return -1;
	}
	if (u->ep.cfg->hold_set) {
		ret = ue_hold(u); /* sa may be rekeyed away meanwhile */
		ue_tun_close(u);
		return ret;
	}
	ue_delete(u, sa);
	sa->state = SA_DEAD;
	ike_ep_sweep(&u->ep);
	ue_tun_close(u);
	return 0;
}

static int
ue_setup(struct ue *u, const struct ikecfg *c, volatile sig_atomic_t *stop,
    char *err, size_t errlen)
{
	if (ike_addr_parse(c->host, c->port, &u->n3iwf) == -1) {
		snprintf(err, errlen, "peer \"%s\" is not IPv4", c->host);
		return -1;
	}
	if (ike_ep_open(&u->ep, c, stop, c->mode == IKE_MODE_CERT, err,
		errlen) == -1)
		return -1;
	if (ike_mode_has_qkd(c->mode) &&
	    (u->qkd = ike_qkd_open(c, err, errlen)) == NULL)
		return -1;
	ue_rekey_setup(u);
	return ike_ep_bind(&u->ep, err, errlen);
}

int
ike_ue_run(const struct ikecfg *c, volatile sig_atomic_t *stop)
{
	struct ue *u;
	char	   err[IKECFG_ERRLEN];
	unsigned   ok = 0, i;

	if (c->load > 0)
		return ike_ue_load_run(c, stop);
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -1;
	u->ep.net.fd = u->ep.net.fd_natt = -1;
	u->xfd = u->tnl.tun_fd = -1;
	if (ue_setup(u, c, stop, err, sizeof(err)) == -1) {
		log_err("%s", err);
		goto done;
	}
	for (i = 0; i < c->count && !*stop; i++)
		if (ue_connect(u, i) == 0)
			ok++;
	if (c->count > 1)
		log_info("%u of %u connections completed", ok, i);
done:
	ike_ep_close(&u->ep);
	ike_qkd_close(u->qkd);
	free(u);
	return ok == c->count ? 0 : -1;
}
