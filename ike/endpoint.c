/* The endpoint core: sockets, event loop step, send/retransmit (the SA
 * table and its timers: ike/ep_table.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/endpoint.h"
#include "ike/ikev2.h"
#include "ike/rekey.h"
#include "ike/subs.h"

/* ---- setup ---- */

static int
ep_load(struct ike_ep *ep, const struct ikecfg *c, bool with_cert, char *err,
    size_t errlen)
{
	amf_sub_default(&ep->sub);
	if (amf_sub_set(&ep->sub, c->supi, c->k_hex, c->opc_hex, NULL, err,
		errlen) == -1)
		return -1;
	if (ike_sub_range(c) &&
	    (ep->subs = subs_new(&ep->sub, c->supi_first,
		 c->role == IKE_ROLE_N3IWF ? c->subscribers :
		     c->load > 0	   ? c->load :
					     1,
		 c->sub_seed, err, errlen)) == NULL)
		return -1;
	if (with_cert && c->cert != NULL) {
		if ((ep->cert = ike_cert_load(c->cert)) == NULL ||
		    (ep->key = ike_key_load(c->key)) == NULL ||
		    ike_cert_der(ep->cert, &ep->cert_der) == -1) {
			snprintf(err, errlen,
			    "cannot load cert \"%s\" / key \"%s\"", c->cert,
			    c->key);
			return -1;
		}
	}
	if (c->ca != NULL && (ep->ca = ike_ca_load(c->ca)) == NULL) {
		snprintf(err, errlen, "cannot load CA \"%s\"", c->ca);
		return -1;
	}
	return 0;
}

int
ike_ep_open(struct ike_ep *ep, const struct ikecfg *c,
    volatile sig_atomic_t *stop, bool with_cert, char *err, size_t errlen)
{
	ep->cfg = c;
	ep->stop = stop;
	ep->net.fd = ep->net.fd_natt = -1;
	buf_init(&ep->cert_der, IKE_MSG_MAX);
	if (ike_ep_table_init(ep, c->max_ike_sas > 0 ? c->max_ike_sas : 1024) ==
	    -1) {
		snprintf(err, errlen, "no memory for %u IKE SAs",
		    c->max_ike_sas);
		return -1;
	}
	return ep_load(ep, c, with_cert, err, errlen);
}

int
ike_ep_bind(struct ike_ep *ep, char *err, size_t errlen)
{
	const struct ikecfg *c = ep->cfg;
	int		     n3 = c->role == IKE_ROLE_N3IWF;

	if (ike_csv_open(&ep->csv, c->csv, c->csv_msgs, n3 ? "n3iwf" : "ue",
		ike_mode_name(c->mode), ike_profile_name(c->profile),
		ike_qkd_sched_label(c), err, errlen) == -1)
		return -1;
	if (n3)
		return ike_net_listen(&ep->net, c->host, c->port, c->natt_port,
		    err, errlen);
	return ike_net_client(&ep->net, c->local, err, errlen);
}

void
ike_ep_close(struct ike_ep *ep)
{
	for (size_t i = 0; i < ep->nsa; i++)
		ike_sa_free(ep->sa[i]);
	ep->nsa = 0;
	free(ep->sa);
	ep->sa = NULL;
	ike_satab_free(&ep->tab);
	ike_net_close(&ep->net);
	ike_csv_close(&ep->csv);
	X509_free(ep->cert);
	EVP_PKEY_free(ep->key);
	X509_STORE_free(ep->ca);
	buf_free(&ep->cert_der);
	amf_sub_wipe(&ep->sub);
	subs_free(ep->subs);
	ep->subs = NULL;
}

/* ---- sending ---- */

void
ike_ep_inner_init(struct buf *b, struct ike_chain *c)
{
	buf_init(b, IKE_MSG_MAX);
	ike_chain_init(c, b, IKE_CHAIN_DETACHED);
}

void
ike_ep_hdr(const struct ike_sa *sa, struct ike_hdr *h, uint8_t exchange,
    int response, uint32_t mid)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->spi_i, sa->spi_i, IKE_SPI_LEN);
	memcpy(h->spi_r, sa->spi_r, IKE_SPI_LEN);
	h->version = IKE_VERSION;
	h->exchange = exchange;
	h->flags = (uint8_t)((sa->initiator ? IKE_FLAG_I : 0) |
	    (response ? IKE_FLAG_R : 0));
	h->msgid = mid;
}

static void
count_msg(struct ike_sa *sa, uint8_t exchange, uint32_t mid, int sent,
    int response, size_t len, int natt)
{
	int from_i = sent ? sa->initiator : !sa->initiator;

	/* natt: this packet's own port, not the SA's (it may float later). */
	ike_stat_msg(&sa->st, exchange, mid, from_i, response, len, natt);
	log_debug("%s %s MID %u %s (%zu bytes)", sent ? "sent" : "got",
	    ike_exchange_name(exchange), mid, response ? "response" : "request",
	    len);
}

/* Keeps xc.req as our outstanding request, starts the backoff, sends it. */
static void
send_request(struct ike_ep *ep, struct ike_sa *sa, uint8_t exchange,
    uint32_t mid)
{
	struct ike_xchg *x = &sa->xc;

	x->req_exchange = exchange;
	x->req_mid = mid;
	x->req_pending = 1;
	ike_retx_start(&x->retx, ep->cfg->retrans_ms, ep->cfg->retrans_tries);
	count_msg(sa, exchange, mid, 1, 0, x->req.len, sa->natt);
	(void)ike_net_send(&ep->net, sa->natt, &sa->peer, x->req.data,
	    x->req.len);
}

int
ike_ep_request(struct ike_ep *ep, struct ike_sa *sa, uint8_t exchange,
    uint8_t first, const struct buf *inner)
{
	struct ike_sk_ctx k;
	struct ike_hdr	  h;

	ike_ep_hdr(sa, &h, exchange, 0, sa->xc.my_mid);
	ike_sa_sk(sa, 1, &k);
	buf_reset(&sa->xc.req);
	if (ike_msg_seal(&sa->xc.req, &h, first, inner->data, inner->len, &k) ==
	    -1)
		return -1;
	send_request(ep, sa, exchange, sa->xc.my_mid++);
	return 0;
}

int
ike_ep_init_request(struct ike_ep *ep, struct ike_sa *sa)
{
	buf_reset(&sa->xc.req);
	if (buf_add(&sa->xc.req, sa->init_req.data, sa->init_req.len) == -1)
		return -1;
	send_request(ep, sa, IKE_SA_INIT, 0);
	return 0;
}

int
ike_ep_respond(struct ike_ep *ep, struct ike_sa *sa, uint8_t exchange,
    uint32_t mid, uint8_t first, const struct buf *inner)
{
	struct ike_sk_ctx k;
	struct ike_hdr	  h;
	struct ike_xchg	 *x = &sa->xc;

	ike_ep_hdr(sa, &h, exchange, 1, mid);
	ike_sa_sk(sa, 1, &k);
	buf_reset(&x->resp);
	if (ike_msg_seal(&x->resp, &h, first, inner->data, inner->len, &k) ==
	    -1)
		return -1;
	x->resp_mid = mid;
	x->have_resp = 1;
	count_msg(sa, exchange, mid, 1, 1, x->resp.len, sa->natt);
	(void)ike_net_send(&ep->net, sa->natt, &sa->peer, x->resp.data,
	    x->resp.len);
	return 0;
}

int
ike_ep_respond_notify(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_msg *m, uint16_t type)
{
	struct ike_chain c;
	struct buf	 in;
	int		 r;

	ike_ep_inner_init(&in, &c);
	r = ike_pld_add_notify(&c, 0, NULL, 0, type, NULL, 0) == 0 ?
	    ike_ep_respond(ep, sa, m->hdr.exchange, m->hdr.msgid, c.first,
		&in) :
	    -1;
	buf_free(&in);
	return r;
}

int
ike_ep_init_respond(struct ike_ep *ep, struct ike_sa *sa)
{
	count_msg(sa, IKE_SA_INIT, 0, 1, 1, sa->init_resp.len, sa->natt);
	return ike_net_send(&ep->net, sa->natt, &sa->peer, sa->init_resp.data,
	    sa->init_resp.len);
}

void
ike_ep_init_notify(struct ike_ep *ep, int natt, const struct sockaddr_in *to,
    const uint8_t spi_i[static IKE_SPI_LEN], uint16_t type, const uint8_t *data,
    size_t len)
{
	struct ike_chain c;
	struct ike_hdr	 h;
	struct buf	 out;
	size_t		 start;

	memset(&h, 0, sizeof(h));
	memcpy(h.spi_i, spi_i, IKE_SPI_LEN);
	h.version = IKE_VERSION;
	h.exchange = IKE_SA_INIT;
	h.flags = IKE_FLAG_R;
	buf_init(&out, 1024);
	if (ike_msg_begin(&out, &h, &c, &start) == 0 &&
	    ike_pld_add_notify(&c, 0, NULL, 0, type, data, len) == 0 &&
	    ike_msg_end(&out, start) == 0)
		(void)ike_net_send(&ep->net, natt, to, out.data, out.len);
	buf_free(&out);
}

/* Also when a request is outstanding (shutdown): the Delete replaces it. */
int
ike_ep_delete(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_chain c;
	struct buf	 in;
	int		 r;

	ike_ep_inner_init(&in, &c);
	sa->xc.req_pending = 0;
	r = ike_pld_add_delete(&c, IKE_PROTO_IKE, 0, NULL, 0) == 0 ?
	    ike_ep_request(ep, sa, IKE_INFORMATIONAL, c.first, &in) :
	    -1;
	buf_free(&in);
	return r;
}

bool
ike_ep_informational(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_msg *m)
{
	struct ike_chain c;
	struct buf	 in;

	ike_ep_inner_init(&in, &c);
	(void)ike_ep_respond(ep, sa, IKE_INFORMATIONAL, m->hdr.msgid, c.first,
	    &in);
	buf_free(&in);
	return IKE_PLD_HAS(&m->pld, IKE_PL_DELETE) &&
	    m->pld.del.proto == IKE_PROTO_IKE;
}

/* ---- receiving ---- */

static int
ep_resend(struct ike_ep *ep, struct ike_sa *sa)
{
	const struct ike_xchg *x = &sa->xc;

	log_debug("retransmitting %s MID %u (send %u)",
	    ike_exchange_name(x->req_exchange), x->req_mid, x->retx.sent);
	return ike_net_send(&ep->net, sa->natt, &sa->peer, x->req.data,
	    x->req.len);
}

int
ike_ep_retx_tick(struct ike_ep *ep, struct ike_sa *sa)
{
	struct ike_xchg *x = &sa->xc;
	int		 w;

	if (!x->req_pending || sa->state == SA_DEAD)
		return INT_MAX;
	if ((w = ike_retx_wait_ms(&x->retx)) > 0)
		return w;
	if (!ike_retx_again(&x->retx))
		return -1;
	(void)ep_resend(ep, sa);
	return ike_retx_wait_ms(&x->retx);
}

bool
ike_ep_init_dup(struct ike_ep *ep, const struct ike_pkt *p,
    const struct ike_hdr *h)
{
	struct ike_sa *sa = ike_satab_chain(&ep->tab, h->spi_i);

	for (; sa != NULL; sa = sa->tab.h_next) {
		int same;

		if (memcmp(sa->spi_i, h->spi_i, IKE_SPI_LEN) != 0 ||
		    sa->peer.sin_addr.s_addr != p->from.sin_addr.s_addr)
			continue;
		same = sa->init_req.len == p->len &&
		    memcmp(sa->init_req.data, p->data, p->len) == 0;
		if (same && sa->state == SA_INIT) {
			/* Keys still coming: the answer comes with them. */
			log_debug(
			    "duplicate IKE_SA_INIT while kmsd works: absorbed");
			ep->absorbed++;
		} else if (same && !sa->auth_started) {
			log_debug("duplicate IKE_SA_INIT: response sent again");
			(void)ike_net_send(&ep->net, p->natt, &p->from,
			    sa->init_resp.data, sa->init_resp.len);
		}
		return true;
	}
	return false;
}

/* The initiator's plain IKE_SA_INIT response (SA in SA_INIT). */
static enum ike_ep_evtype
rx_init_resp(struct ike_sa *sa, const struct ike_pkt *p,
    const struct ike_hdr *h, struct ike_msg *m)
{
	if (!sa->initiator || h->exchange != IKE_SA_INIT ||
	    !(h->flags & IKE_FLAG_R) || h->msgid != 0) {
		log_debug("%s: dropped %s MID %u: no keys yet", __func__,
		    ike_exchange_name(h->exchange), h->msgid);
		return IKE_EP_NONE;
	}
	if (ike_msg_parse(p->data, p->len, NULL, m) == -1) {
		ike_msg_free(m);
		return IKE_EP_NONE;
	}
	sa->xc.req_pending = 0;
	ike_stat_msg(&sa->st, IKE_SA_INIT, 0, 0, 1, p->len, 0);
	return IKE_EP_RESPONSE;
}

/* A protected response: to our outstanding request, or dropped. */
static enum ike_ep_evtype
rx_response(struct ike_sa *sa, const struct ike_pkt *p, const struct ike_hdr *h,
    const struct ike_sk_ctx *k, struct ike_msg *m)
{
	struct ike_xchg *x = &sa->xc;

	if (!x->req_pending || h->msgid != x->req_mid ||
	    h->exchange != x->req_exchange) {
		log_debug("%s: dropped unexpected response MID %u", __func__,
		    h->msgid);
		return IKE_EP_NONE;
	}
	if (ike_msg_parse(p->data, p->len, k, m) == -1) {
		ike_msg_free(m);
		return IKE_EP_NONE;
	}
	x->req_pending = 0;
	buf_free(&x->req); /* answered: nothing to retransmit */
	count_msg(sa, h->exchange, h->msgid, 0, 1, p->len, p->natt);
	return IKE_EP_RESPONSE;
}

/* A protected request: the next one, a duplicate (answered again), or old. */
static enum ike_ep_evtype
rx_request(struct ike_ep *ep, struct ike_sa *sa, const struct ike_pkt *p,
    const struct ike_hdr *h, const struct ike_sk_ctx *k, struct ike_msg *m)
{
	struct ike_xchg *x = &sa->xc;

	if (h->msgid == x->peer_mid) {
		if (ike_msg_parse(p->data, p->len, k, m) == -1) {
			ike_msg_free(m);
			return IKE_EP_NONE;
		}
		x->peer_mid++;
		count_msg(sa, h->exchange, h->msgid, 0, 0, p->len, p->natt);
		return IKE_EP_REQUEST;
	}
	if (x->have_resp && h->msgid == x->resp_mid) {
		/* A retransmitted request: the ICV must still check out. */
		if (ike_msg_parse(p->data, p->len, k, m) == 0) {
			log_debug(
			    "duplicate %s request MID %u: response sent again",
			    ike_exchange_name(h->exchange), h->msgid);
			(void)ike_net_send(&ep->net, sa->natt, &sa->peer,
			    x->resp.data, x->resp.len);
		}
		ike_msg_free(m);
		return IKE_EP_NONE;
	}
	log_debug("%s: dropped request MID %u (expected %u)", __func__,
	    h->msgid, x->peer_mid);
	return IKE_EP_NONE;
}

/* Classifies a message of sa (header decoded); m is parsed for events. */
static enum ike_ep_evtype
ep_rx(struct ike_ep *ep, struct ike_sa *sa, const struct ike_pkt *p,
    const struct ike_hdr *h, struct ike_msg *m)
{
	struct ike_sk_ctx k;
	int		  from_i = (h->flags & IKE_FLAG_I) != 0;

	if (sa->state == SA_INIT)
		return rx_init_resp(sa, p, h, m);
	if (from_i == sa->initiator) {
		log_debug("%s: dropped %s MID %u: wrong I flag", __func__,
		    ike_exchange_name(h->exchange), h->msgid);
		return IKE_EP_NONE;
	}
	ike_sa_sk(sa, 0, &k);
	if (h->flags & IKE_FLAG_R)
		return rx_response(sa, p, h, &k, m);
	return rx_request(ep, sa, p, h, &k, m);
}

enum ike_ep_evtype
ike_ep_next(struct ike_ep *ep, int xfd, int wait_ms, struct ike_ep_ev *ev)
{
	static const uint8_t zero[IKE_SPI_LEN];
	struct ike_pkt	    *p = &ep->pkt;
	struct ike_hdr	    *h = &ev->h;
	struct ike_sa	    *sa;
	int		     r;

	memset(ev, 0, sizeof(*ev));
	ev->p = p;
	if ((r = ike_net_poll(&ep->net, xfd, wait_ms, p)) != 1)
		return ev->type = r == -1 ? IKE_EP_ERROR :
		    r == 2		  ? IKE_EP_XFD :
					    IKE_EP_NONE;
	if (ike_hdr_decode(p->data, p->len, h) == -1)
		return IKE_EP_NONE;
	if (h->exchange == IKE_SA_INIT && !(h->flags & IKE_FLAG_R) &&
	    memcmp(h->spi_r, zero, IKE_SPI_LEN) == 0)
		return ev->type = ep->cfg->role == IKE_ROLE_N3IWF ?
		    IKE_EP_INIT :
		    IKE_EP_NONE;
	if ((sa = ike_ep_find(ep, h->spi_i, h->spi_r)) == NULL ||
	    sa->state == SA_DEAD || (sa->state == SA_INIT && !sa->initiator)) {
		log_debug("%s for an unknown IKE SA dropped",
		    ike_exchange_name(h->exchange));
		return IKE_EP_NONE;
	}
	if (sa->xc.parked && !(h->flags & IKE_FLAG_R)) {
		/* Answered once the parked request has its keys. */
		ep->absorbed++;
		log_debug(
		    "%s MID %u while a request waits for its keys: dropped",
		    ike_exchange_name(h->exchange), h->msgid);
		return IKE_EP_NONE;
	}
	ev->sa = sa; /* touched by ike_ep_find */
	ev->type = ep_rx(ep, sa, p, h, &ev->m);
	if (ev->type == IKE_EP_REQUEST && p->natt && !sa->natt) {
		sa->natt = 1; /* the peer floated to NAT-T */
		sa->peer = p->from;
	}
	return ev->type;
}

/* ---- NAT detection ---- */

/* NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | port). */
static int
nat_hash(const uint8_t spi_i[static 8], const uint8_t spi_r[static 8],
    const struct sockaddr_in *a, uint8_t out[static 20])
{
	uint8_t	 in[8 + 8 + 4 + 2];
	unsigned len = 0;

	memcpy(in, spi_i, 8);
	memcpy(in + 8, spi_r, 8);
	memcpy(in + 16, &a->sin_addr, 4);
	memcpy(in + 20, &a->sin_port, 2);
	return EVP_Digest(in, sizeof(in), out, &len, EVP_sha1(), NULL) == 1 &&
		len == 20 ?
	    0 :
	    -1;
}

int
ike_ep_add_natd(struct ike_chain *c, const uint8_t spi_i[static 8],
    const uint8_t spi_r[static 8], const struct sockaddr_in *from,
    const struct sockaddr_in *to)
{
	uint8_t nat[20];

	if (nat_hash(spi_i, spi_r, from, nat) == -1 ||
	    ike_pld_add_notify(c, 0, NULL, 0, IKE_N_NAT_DETECTION_SOURCE_IP,
		nat, sizeof(nat)) == -1 ||
	    nat_hash(spi_i, spi_r, to, nat) == -1 ||
	    ike_pld_add_notify(c, 0, NULL, 0,
		IKE_N_NAT_DETECTION_DESTINATION_IP, nat, sizeof(nat)) == -1)
		return -1;
	return 0;
}

/* 1 when the notify's data is not the hash of a (hash made). */
static int
nat_differs(const struct ike_notify *n, const uint8_t spi_i[static 8],
    const uint8_t spi_r[static 8], const struct sockaddr_in *a)
{
	uint8_t nat[20];

	return nat_hash(spi_i, spi_r, a, nat) == 0 &&
	    (n->data.len != 20 || memcmp(nat, n->data.p, 20) != 0);
}

int
ike_ep_natd_check(const struct ike_pld *pl, const uint8_t spi_i[static 8],
    const uint8_t spi_r[static 8], const struct sockaddr_in *peer,
    const struct sockaddr_in *local)
{
	const struct ike_notify *src, *dst;
	int			 r = 0;

	src = ike_pld_notify(pl, IKE_N_NAT_DETECTION_SOURCE_IP);
	dst = ike_pld_notify(pl, IKE_N_NAT_DETECTION_DESTINATION_IP);
	if (src == NULL || dst == NULL)
		return 0;
	if (nat_differs(src, spi_i, spi_r, peer))
		r |= IKE_NAT_PEER;
	if (nat_differs(dst, spi_i, spi_r, local))
		r |= IKE_NAT_US;
	return r;
}

/* ---- the connection's end ---- */

static void
spi_hex(const uint8_t spi[static 8], char out[static 17])
{
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", spi[i]);
}

void
ike_ep_established(struct ike_ep *ep, struct ike_sa *sa)
{
	const struct ikecfg *c = ep->cfg;
	char		     si[17], sr[17];

	sa->st.total_ns = time_mono_ns() - sa->t_start;
	sa->state = SA_ESTABLISHED;
	sa->st.ok = 1;
	spi_hex(sa->spi_i, si);
	spi_hex(sa->spi_r, sr);
	log_info("IKE SA established (%s, %s) %s_i %s_r with %zu Child SA(s) "
		 "in %.2f ms (init %.2f, auth %.2f, child %.2f)%s%s%s",
	    ike_mode_name(c->mode), ike_profile_name(c->profile), si, sr,
	    sa->nchild, (double)sa->st.total_ns / 1e6,
	    (double)sa->st.init_ns / 1e6, (double)sa->st.auth_ns / 1e6,
	    (double)sa->st.child_ns / 1e6, sa->ppk_used ? ", PPK used" : "",
	    c->mode == IKE_MODE_QKD ? ", QKD key schedule " : "",
	    c->mode == IKE_MODE_QKD ? ike_qkd_sched_label(c) : "");
	ike_csv_write(&ep->csv, &sa->st);
	ep->done++;
	ike_sa_trim(sa);
	for (size_t i = 0; ep->hooks.installed != NULL && i < sa->nchild; i++)
		ep->hooks.installed(ep->hooks.ctx, sa, &sa->child[i]);
}

void
ike_ep_csv_failed(struct ike_ep *ep, struct ike_sa *sa)
{
	sa->st.ok = 0;
	sa->st.total_ns = time_mono_ns() - sa->t_start;
	ike_csv_write(&ep->csv, &sa->st);
}
