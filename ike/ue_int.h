/*
 * What the two files of the UE share: ike/ue.c (waiting for packets,
 * IKE_SA_INIT, the user-plane Child SA, Delete, the connection loop) and
 * ike/ue_auth.c (IKE_AUTH: rfc7296 and NWu with EAP-5G, PPK, the
 * signalling Child SA). Not for other modules: their entry point is
 * ike/ue.h.
 */
#ifndef IKE_UE_INT_H
#define IKE_UE_INT_H

#include <stdint.h>
#include <stdio.h>

#include <netinet/in.h>

#include "common/buf.h"
#include "ike/endpoint.h"
#include "ike/msg.h"
#include "ike/pld.h"
#include "ike/qkd.h"
#include "ike/sa.h"

struct ue {
	struct ike_ep	   ep;
	struct sockaddr_in n3iwf;
	struct ike_qkd	  *qkd;
	char		   fail[640]; /* why the connection failed */
};

#define FAIL(u, ...) snprintf((u)->fail, sizeof((u)->fail), __VA_ARGS__)

/*
 * ike/ue.c. Sends a protected request and waits for its response in *m
 * (ike_msg_free it), retransmitting; 0, or -1 with u->fail set.
 */
int	    ue_exchange(struct ue *u, struct ike_sa *sa, uint8_t exchange,
	    uint8_t first, const struct buf *inner, struct ike_msg *m);
/* ike/ue.c. The first error notify in a response: its name, or NULL. */
const char *ue_error_notify(const struct ike_pld *p, uint16_t *type);

/*
 * ike/ue_loop.c. ue_hold: the IKE SA kept (rekeyed) until cfg hold_s or
 * SIGTERM, then deleted; the table is empty after; 0 or -1. ue_rekey_setup:
 * the rekeys' QKD key fetch (qkd mode).
 */
int  ue_hold(struct ue *u);
void ue_rekey_setup(struct ue *u);

/* ike/ue_auth.c. IKE_AUTH up to the signalling Child SA; 0 or -1. */
int ue_auth_nwu(struct ue *u, struct ike_sa *sa);
int ue_auth_rfc(struct ue *u, struct ike_sa *sa);

#endif
