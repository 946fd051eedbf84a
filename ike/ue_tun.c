/*
 * The UE's tunnel (cfg tunnel = yes, ike/tnl.h): after IKE_AUTH, the TUN
 * with the CP address and the route to the data network, the engine on
 * the UE's socket, the signalling Child SA, then NAS over TCP from the
 * inner address (nwu, ike/nas_ue.h); the user-plane Child SA follows
 * when the N3IWF's CREATE_CHILD_SA comes (ike/ue.c), and "tunnel up" is
 * logged once the PDU session is (rfc7296: once the Child SA is).
 */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "common/log.h"
#include "ike/ikev2.h"
#include "ike/nas_ue.h"
#include "ike/pld.h"
#include "ike/tnl.h"
#include "ike/ue_int.h"

void
ue_tun_cp(struct ue *u, const struct ike_pld *pl)
{
	const struct ike_notify *n;

	if (IKE_PLD_HAS(pl, IKE_PL_CP) && pl->cp.type == IKE_CFG_REPLY)
		for (size_t i = 0; i < pl->cp.nattr; i++)
			if (pl->cp.attr[i].type ==
				IKE_CP_INTERNAL_IP4_ADDRESS &&
			    pl->cp.attr[i].val.len == 4)
				memcpy(&u->inner, pl->cp.attr[i].val.p, 4);
	if ((n = ike_pld_notify(pl, IKE_N_NAS_IP4_ADDRESS)) != NULL &&
	    n->data.len == 4)
		memcpy(&u->nas_ip, n->data.p, 4);
	if ((n = ike_pld_notify(pl, IKE_N_NAS_TCP_PORT)) != NULL &&
	    n->data.len == 2)
		u->nas_port = (uint16_t)(n->data.p[0] << 8 | n->data.p[1]);
}

static void
ue_tun_log_up(struct ue *u, unsigned qfi)
{
	char ip[INET_ADDRSTRLEN];

	if (u->tun_up_logged)
		return;
	u->tun_up_logged = true;
	inet_ntop(AF_INET, &u->inner, ip, sizeof(ip));
	if (qfi != 0)
		log_info("tunnel up: inner %s, PDU session QFI %u", ip, qfi);
	else
		log_info("tunnel up: inner %s", ip);
	tnl_status(&u->tnl);
}

/* nas_ue's cfg.up: the PDU session is up (acc), or failed (NULL). */
static void
ue_tun_session(void *arg, const struct nas_sm *acc)
{
	struct ue *u = arg;

	if (acc == NULL) {
		log_err("tunnel: no PDU session");
		return;
	}
	ue_tun_log_up(u, acc->qfi);
}

static int
ue_tun_nas(struct ue *u, struct ike_sa *sa)
{
	struct nas_ue_cfg nc;
	char		  inner[INET_ADDRSTRLEN], nas[INET_ADDRSTRLEN];
	char		  route[INET_ADDRSTRLEN + 3];
	char		  err[256];

	if (u->nas_ip.s_addr == 0 || u->nas_port == 0) {
		FAIL(u,
		    "tunnel: no NAS_IP4_ADDRESS / NAS_TCP_PORT from the "
		    "N3IWF");
		return -1;
	}
	inet_ntop(AF_INET, &u->inner, inner, sizeof(inner));
	inet_ntop(AF_INET, &u->nas_ip, nas, sizeof(nas));
	/* NAS_IP through the TUN whatever tun_route routes there */
	snprintf(route, sizeof(route), "%s/32", nas);
	if (tnl_route_add(u->tnl.ifname, route, err, sizeof(err)) == -1) {
		FAIL(u, "tunnel: %s", err);
		return -1;
	}
	memset(&nc, 0, sizeof(nc));
	nc.inner_ip = inner;
	nc.nas_ip = nas;
	nc.nas_port = u->nas_port;
	nc.psi = 1;
	nc.dnn = "internet";
	nc.up = ue_tun_session;
	nc.arg = u;
	if ((u->nas = nas_ue_open(&nc, sa->usim, err, sizeof(err))) == NULL) {
		FAIL(u, "tunnel: NAS over TCP: %s", err);
		return -1;
	}
	u->xfd = nas_ue_fd(u->nas);
	return 0;
}

int
ue_tun_open(struct ue *u, struct ike_sa *sa)
{
	char err[256];

	if (u->inner.s_addr == 0) {
		FAIL(u, "tunnel: the N3IWF gave no inner address (CP)");
		return -1;
	}
	if (tnl_open(&u->tnl, &u->ep, u->inner, u->inner, u->nas_ip, err,
		sizeof(err)) == -1) {
		FAIL(u, "tunnel: %s", err);
		return -1;
	}
	if (tnl_install(&u->tnl, sa, &sa->child[0]) == -1) {
		FAIL(u, "tunnel: the signalling Child SA is not installed");
		return -1;
	}
	if (u->ep.cfg->profile != IKE_PROFILE_NWU) {
		ue_tun_log_up(u, 0);
		return 0;
	}
	return ue_tun_nas(u, sa);
}

void
ue_tun_step(struct ue *u)
{
	if (u->nas == NULL)
		return;
	nas_ue_step(u->nas);
	if (nas_ue_failed(u->nas)) {
		if (!u->tun_up_logged)
			log_err("tunnel: NAS over TCP ended without a PDU "
				"session");
		else
			log_info("tunnel: the NAS connection closed");
		nas_ue_close(u->nas);
		u->nas = NULL;
		u->xfd = -1;
	}
}

void
ue_tun_tick(struct ue *u)
{
	tnl_tick(&u->tnl);
}

void
ue_tun_close(struct ue *u)
{
	nas_ue_close(u->nas);
	u->nas = NULL;
	u->xfd = -1;
	tnl_close(&u->tnl);
}
