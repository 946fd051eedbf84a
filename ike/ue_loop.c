/*
 * The UE's hold (cfg hold_s, --hold): once the connection is up
 * (ike/ue.c), an event loop on the endpoint core keeps the IKE SA: it
 * answers the N3IWF's requests (rekeys, Deletes), runs the lifetimes and
 * sends its own rekeys (ike/rekey.h), and follows the IKE SA to its new
 * SPIs when it is rekeyed. At the end of the hold, or on SIGTERM, it
 * deletes the IKE SA.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ike/endpoint.h"
#include "ike/ikev2.h"
#include "ike/qkd.h"
#include "ike/rekey.h"
#include "ike/ue_int.h"

/* rk_ops.fetch: ONE dec_keys at kmsd B for the key the N3IWF named. */
static int
ue_rekey_fetch(void *ctx, const char *id, struct ike_qkd_keys *out)
{
	struct ue *u = ctx;
	char	   why[IKE_QKD_WHYLEN];

	if (id != out->id[0])
		snprintf(out->id[0], sizeof(out->id[0]), "%s", id);
	if (ike_qkd_dec(u->qkd, u->ep.cfg->peer_sae,
		(const char(*)[ETSI_KEY_ID_MAX + 1]) out->id, 1, out,
		why) == -1) {
		log_warn("rekey: kmsd %s: %s", u->ep.cfg->kmsd_url, why);
		return -1;
	}
	return 0;
}

void
ue_rekey_setup(struct ue *u)
{
	ike_rekey_signal_setup(); /* SIGUSR2: rekey now */
	if (u->qkd == NULL || u->ep.cfg->mode != IKE_MODE_QKD)
		return;
	u->ep.rk_ops.fetch = ue_rekey_fetch;
	u->ep.rk_ops.ctx = u;
}

/* The IKE SA in use: established and not replaced by a rekey. */
static struct ike_sa *
ue_live(struct ue *u)
{
	for (size_t i = 0; i < u->ep.nsa; i++) {
		struct ike_sa *sa = u->ep.sa[i];

		if (sa->state == SA_ESTABLISHED &&
		    (sa->rk == NULL || !ike_rekey_replaced(sa)))
			return sa;
	}
	return NULL;
}

static void
ue_loop_request(struct ue *u, struct ike_sa *sa, const struct ike_msg *m)
{
	switch (m->hdr.exchange) {
	case IKE_CREATE_CHILD_SA: ike_rekey_request(&u->ep, sa, m); return;
	case IKE_INFORMATIONAL:
		if (!ike_rekey_informational(&u->ep, sa, m))
			return;
		if (sa == ue_live(u)) {
			log_warn("the N3IWF deleted the IKE SA");
			FAIL(u, "the N3IWF deleted the IKE SA");
		} else
			log_debug("replaced IKE SA deleted by the N3IWF");
		sa->state = SA_DEAD;
		return;
	default:
		log_warn("unexpected %s request from the N3IWF",
		    ike_exchange_name(m->hdr.exchange));
		(void)ike_ep_respond_notify(&u->ep, sa, m,
		    IKE_N_NO_ADDITIONAL_SAS);
		return;
	}
}

static void
ue_loop_event(struct ue *u, struct ike_ep_ev *ev)
{
	struct ike_sa *sa = ev->sa;

	if (ev->type == IKE_EP_XFD)
		ue_tun_step(u); /* NAS over TCP */
	else if (ev->type == IKE_EP_REQUEST)
		ue_loop_request(u, sa, &ev->m);
	else if (ev->type == IKE_EP_RESPONSE &&
	    !ike_rekey_response(&u->ep, sa, &ev->m) &&
	    ev->m.hdr.exchange == IKE_INFORMATIONAL && sa->state == SA_DELETING)
		sa->state = SA_DEAD;
	ike_msg_free(&ev->m);
}

/* Retransmissions and lifetimes of every SA; the ms to wait. */
static int
ue_loop_timers(struct ue *u)
{
	int wait = 1000, w;

	for (size_t i = 0; i < u->ep.nsa; i++) {
		struct ike_sa *sa = u->ep.sa[i];

		if ((w = ike_ep_retx_tick(&u->ep, sa)) == -1) {
			log_warn("the N3IWF does not answer %s MID %u",
			    ike_exchange_name(sa->xc.req_exchange),
			    sa->xc.req_mid);
			if (sa == ue_live(u))
				FAIL(u, "the N3IWF does not answer");
			sa->state = SA_DEAD;
			w = 0;
		}
		if (w < wait)
			wait = w;
		if ((w = ike_rekey_tick(&u->ep, sa)) < wait)
			wait = w;
	}
	ike_ep_sweep(&u->ep);
	return wait;
}

/* Delete of the IKE SA in use; a bounded wait for the answer. */
static void
ue_loop_delete(struct ue *u)
{
	struct ike_sa	*sa = ue_live(u);
	struct ike_ep_ev ev;
	uint64_t	 end = time_mono_ns() + 2000000000ull;

	size_t held = 0;

	if (sa == NULL)
		return;
	for (size_t i = 0; i < u->ep.nsa; i++)
		held += u->ep.sa[i]->state != SA_DEAD;
	log_info("%zu IKE SA(s) held at the end", held);
	ike_rekey_log_children(sa, "deleting the IKE SA");
	if (ike_ep_delete(&u->ep, sa) == -1)
		return;
	sa->state = SA_DELETING;
	while (sa->state == SA_DELETING && time_mono_ns() < end) {
		if (ike_ep_retx_tick(&u->ep, sa) == -1)
			break;
		(void)ike_ep_next(&u->ep, u->xfd, 100, &ev);
		ue_loop_event(u, &ev);
	}
	if (sa->state == SA_DEAD)
		log_debug("IKE SA deleted");
	else
		log_warn("Delete not answered");
}

int
ue_hold(struct ue *u)
{
	const struct ikecfg *c = u->ep.cfg;
	struct ike_ep_ev     ev;
	uint64_t	     now, end = UINT64_MAX;
	int		     wait, ret = 0;

	if (c->hold_s > 0)
		end = time_mono_ns() + (uint64_t)c->hold_s * 1000000000ull;
	log_info("holding the IKE SA %s%u s",
	    c->hold_s ? "for " :
			"until "
			"SIGTERM, ",
	    c->hold_s);
	while (!*u->ep.stop && (now = time_mono_ns()) < end) {
		wait = ue_loop_timers(u);
		if (ue_live(u) == NULL) {
			log_err("hold ended: %s",
			    u->fail[0] ? u->fail : "no IKE SA left");
			ret = -1;
			break;
		}
		if (end != UINT64_MAX &&
		    (end - now) / 1000000u < (uint64_t)wait)
			wait = (int)((end - now) / 1000000u) + 1;
		ue_tun_tick(u);
		(void)ike_ep_next(&u->ep, u->xfd, wait, &ev);
		ue_loop_event(u, &ev);
	}
	ike_rekey_stats_log(&u->ep);
	ue_loop_delete(u);
	for (size_t i = 0; i < u->ep.nsa; i++)
		u->ep.sa[i]->state = SA_DEAD;
	ike_ep_sweep(&u->ep);
	return ret;
}
