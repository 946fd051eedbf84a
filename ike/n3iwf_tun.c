/*
 * The N3IWF's tunnel (cfg tunnel = yes, ike/tnl.h): at start the TUN
 * with NAS_IP4_ADDRESS and the route to the UEs' inner addresses, the
 * engine on the NAT-T socket, and (nwu) the NAS/TCP server on
 * NAS_IP:NAS_PORT (ike/nas_n3iwf.h). Per UE: after IKE_AUTH its
 * signalling Child SA is installed and the UE made known to NAS; its PDU
 * Session Establishment Request starts the user-plane CREATE_CHILD_SA
 * (nas_tcp is on with the tunnel), whose completion installs it (the
 * endpoint's hooks) and lets the Accept go. When the IKE SA dies its
 * Child SAs leave the engine (ike_ep_sweep's hook) and the UE leaves NAS.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "ike/workq.h"
#include "ike/n3iwf_int.h"
#include "ike/nas_n3iwf.h"
#include "ike/tnl.h"

#define N3_CP_POOL 1024 /* inner addresses from cfg inner_ip on */

static bool
n3_cp_used(const struct n3 *n, const struct ike_sa *self, struct in_addr a)
{
	for (size_t i = 0; i < n->ep.nsa; i++)
		if (n->ep.sa[i] != self && n->ep.sa[i]->state != SA_DEAD &&
		    n->ep.sa[i]->cp_addr.s_addr == a.s_addr)
			return true;
	return false;
}

int
n3iwf_cp_alloc(struct n3 *n, struct ike_sa *sa)
{
	struct in_addr base, a;

	if (inet_pton(AF_INET, n->ep.cfg->inner_ip, &base) != 1)
		return -1;
	for (uint32_t k = 0; k < N3_CP_POOL; k++) {
		a.s_addr = htonl(ntohl(base.s_addr) + k);
		if (!n3_cp_used(n, sa, a)) {
			sa->cp_addr = a;
			return 0;
		}
	}
	log_warn("no inner address left (%u from %s in use)", N3_CP_POOL,
	    n->ep.cfg->inner_ip);
	return -1;
}

/* nas_n3iwf's cfg.child: the AMF wants the user-plane Child SA of ue. */
static void
n3_tun_want_child(void *arg, void *ue, const struct amf_pdu_setup *s)
{
	struct n3     *n = arg;
	struct ike_sa *sa = ue;

	sa->pdu_psi = s->psi;
	if (sa->state != SA_CHILD || n3iwf_create_child(n, sa) == -1) {
		log_warn("tunnel: cannot start the user-plane Child SA");
		(void)nas_n3iwf_child_done(n->nas, sa, s->psi, false);
		sa->pdu_psi = 0;
	}
}

static int
n3_tun_poll_add(int ep, int fd, char *err, size_t errlen)
{
	struct epoll_event e;

	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN;
	e.data.fd = fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == -1) {
		snprintf(err, errlen, "epoll_ctl: %m");
		return -1;
	}
	return 0;
}

static int
n3_tun_nas(struct n3 *n, char *err, size_t errlen)
{
	const struct ikecfg *c = n->ep.cfg;
	struct nas_n3iwf_cfg nc;

	memset(&nc, 0, sizeof(nc));
	nc.ip = c->nas_ip;
	nc.port = c->nas_port;
	nc.qfi = TNL_QFI;
	nc.child = n3_tun_want_child;
	nc.arg = n;
	if ((n->nas = nas_n3iwf_open(&nc, err, errlen)) == NULL)
		return -1;
	if ((n->xfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		snprintf(err, errlen, "epoll_create1: %m");
		return -1;
	}
	if (n3_tun_poll_add(n->xfd, nas_n3iwf_fd(n->nas), err, errlen) == -1)
		return -1;
	return n3_tun_poll_add(n->xfd, ike_wq_fd(n->wq), err, errlen);
}

int
n3iwf_tun_open(struct n3 *n, char *err, size_t errlen)
{
	const struct ikecfg *c = n->ep.cfg;
	struct in_addr	     nas, inner;

	if (!c->tunnel)
		return 0;
	if (inet_pton(AF_INET, c->nas_ip, &nas) != 1 ||
	    inet_pton(AF_INET, c->inner_ip, &inner) != 1) {
		snprintf(err, errlen, "tunnel: nas_ip / inner_ip not IPv4");
		return -1;
	}
	if (tnl_open(&n->tnl, &n->ep, nas, inner, nas, err, errlen) == -1)
		return -1;
	return c->profile == IKE_PROFILE_NWU ? n3_tun_nas(n, err, errlen) : 0;
}

int
n3iwf_tun_xfd(const struct n3 *n)
{
	if (n->xfd != -1)
		return n->xfd;
	return ike_wq_fd(n->wq);
}

void
n3iwf_tun_step(struct n3 *n)
{
	if (n->nas != NULL)
		nas_n3iwf_step(n->nas);
	tnl_tick(&n->tnl);
}

void
n3iwf_tun_auth(struct n3 *n, struct ike_sa *sa)
{
	if (!n->ep.cfg->tunnel || n->ep.cfg->profile != IKE_PROFILE_NWU)
		return;
	if (tnl_install(&n->tnl, sa, &sa->child[0]) == -1 ||
	    nas_n3iwf_ue_add(n->nas, (const uint8_t *)&sa->cp_addr, sa->amf,
		sa) == -1) {
		log_warn("tunnel: the UE's signalling path is not set up");
		sa->state = SA_DEAD;
	}
}

void
n3iwf_tun_child(struct n3 *n, struct ike_sa *sa, bool ok)
{
	char ip[INET_ADDRSTRLEN];

	if (n->nas == NULL || sa->pdu_psi == 0)
		return;
	(void)nas_n3iwf_child_done(n->nas, sa, sa->pdu_psi, ok);
	if (ok) {
		inet_ntop(AF_INET, &sa->cp_addr, ip, sizeof(ip));
		log_info("tunnel up: UE inner %s, PDU session %u QFI %u", ip,
		    sa->pdu_psi, TNL_QFI);
	}
	sa->pdu_psi = 0;
}

/* The IKE SA that replaced sa (a rekey moved its AMF there), or NULL. */
static struct ike_sa *
n3_tun_successor(const struct n3 *n, const struct ike_sa *sa)
{
	if (sa->amf != NULL || sa->cp_addr.s_addr == 0)
		return NULL;
	for (size_t i = 0; i < n->ep.nsa; i++) {
		struct ike_sa *s = n->ep.sa[i];

		if (s != sa && s->state != SA_DEAD && s->amf != NULL &&
		    s->cp_addr.s_addr == sa->cp_addr.s_addr)
			return s;
	}
	return NULL;
}

void
n3iwf_tun_gone(struct n3 *n, struct ike_sa *sa)
{
	struct ike_sa *next;

	if (n->nas == NULL)
		return;
	if ((next = n3_tun_successor(n, sa)) != NULL &&
	    nas_n3iwf_ue_move(n->nas, sa, next, next->amf) == 0)
		return; /* rekeyed: the NAS connection stays */
	nas_n3iwf_ue_del(n->nas, sa);
}

void
n3iwf_tun_close(struct n3 *n)
{
	nas_n3iwf_close(n->nas);
	n->nas = NULL;
	if (n->xfd != -1)
		close(n->xfd);
	n->xfd = -1;
	tnl_close(&n->tnl);
}
