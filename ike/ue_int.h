/*
 * What the two files of the UE share: ike/ue.c (waiting for packets,
 * IKE_SA_INIT, the user-plane Child SA, Delete, the connection loop) and
 * ike/ue_auth.c (IKE_AUTH: rfc7296 and NWu with EAP-5G, PPK, the
 * signalling Child SA). Not for other modules: their entry point is
 * ike/ue.h.
 */
#ifndef IKE_UE_INT_H
#define IKE_UE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <netinet/in.h>

#include "common/buf.h"
#include "ike/endpoint.h"
#include "ike/msg.h"
#include "ike/pld.h"
#include "ike/qkd.h"
#include "ike/sa.h"
#include "ike/tnl.h"

struct nas_ue;
struct ld;

struct ue {
	struct ike_ep	   ep;
	struct sockaddr_in n3iwf;
	struct ike_qkd	  *qkd;
	char		   fail[640]; /* why the connection failed */
	/* tunnel (cfg tunnel, ike/ue_tun.c) */
	struct in_addr	   inner, nas_ip; /* CP address, NAS_IP4_ADDRESS */
	uint16_t	   nas_port;	  /* NAS_TCP_PORT */
	struct tnl	   tnl;
	struct nas_ue	  *nas;
	int		   xfd; /* polled beside IKE (NAS), or -1 */
	bool		   tun_up_logged;
	struct ld	  *load; /* load mode (ike/ue_load.c), or NULL */
};

#define FAIL(u, ...) snprintf((u)->fail, sizeof((u)->fail), __VA_ARGS__)

/*
 * ike/ue.c. Sends a protected request and waits for its response in *m
 * (ike_msg_free it), retransmitting; 0, or -1 with u->fail set.
 */
int	    ue_exchange(struct ue *u, struct ike_sa *sa, uint8_t exchange,
	    uint8_t first, const struct buf *inner, struct ike_msg *m);
/*
 * ike/ue.c. One connection up to established: a fresh IKE SA in the
 * table (*out), IKE_SA_INIT, IKE_AUTH, the user-plane Child SA, the
 * "established" line and CSV row. 0, or -1 (logged with idx, the CSV row
 * with ok 0, the SA gone).
 */
int	    ue_conn_up(struct ue *u, unsigned idx, struct ike_sa **out);
/* ike/ue.c. The first error notify in a response: its name, or NULL. */
const char *ue_error_notify(const struct ike_pld *p, uint16_t *type);

/*
 * ike/ue_loop.c. ue_hold: the IKE SA kept (rekeyed) until cfg hold_s or
 * SIGTERM, then deleted; the table is empty after; 0 or -1. ue_rekey_setup:
 * the rekeys' QKD key fetch (qkd mode).
 */
int  ue_hold(struct ue *u);
void ue_rekey_setup(struct ue *u);

/*
 * ike/ue_tun.c, the tunnel (cfg tunnel). ue_tun_cp: the CP address and
 * NAS_IP4_ADDRESS / NAS_TCP_PORT of the last IKE_AUTH response.
 * ue_tun_open: after IKE_AUTH, the TUN with the CP address, the engine,
 * the signalling Child SA installed, NAS over TCP started (u->xfd); 0 or
 * -1 (u->fail). ue_tun_step: u->xfd is readable. ue_tun_tick: from the
 * hold loop. ue_tun_close: all of it gone (NULL parts ok).
 */
void ue_tun_cp(struct ue *u, const struct ike_pld *pl);
int  ue_tun_open(struct ue *u, struct ike_sa *sa);
void ue_tun_step(struct ue *u);
void ue_tun_tick(struct ue *u);
void ue_tun_close(struct ue *u);

/* ike/ue_auth.c. IKE_AUTH up to the signalling Child SA; 0 or -1. */
int ue_auth_nwu(struct ue *u, struct ike_sa *sa);
int ue_auth_rfc(struct ue *u, struct ike_sa *sa);

#endif
