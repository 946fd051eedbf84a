/*
 * The UE's end of NAS over TCP (TS 24.502 9.4, TS 23.502 4.12.2.2 steps
 * 10-11 and 4.12.5): after IKE_AUTH the UE connects from its inner
 * address (the CP payload's) to NAS_IP4_ADDRESS:NAS_TCP_PORT, answers the
 * Registration Accept with Registration Complete, asks for a PDU session
 * (PDU Session Establishment Request in UL NAS TRANSPORT) and waits for
 * the Accept, then logs "PDU session up: ..." and calls cfg.up().
 *
 * Event driven, no threads: one epoll fd to poll for POLLIN (nas_ue_fd),
 * then nas_ue_step(), which never blocks. The usim (usim.h) must have
 * finished 5G-AKA and the Security Mode Command in IKE_AUTH.
 */
#ifndef IKE_NAS_UE_H
#define IKE_NAS_UE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ike/nas_5gsm.h"
#include "ike/usim.h"

struct nas_ue_cfg {
	const char *inner_ip; /* source address (NULL: any) */
	const char *nas_ip;   /* NAS_IP4_ADDRESS */
	uint16_t    nas_port; /* NAS_TCP_PORT */
	uint8_t	    psi;      /* PDU session ID to ask for (1..15) */
	const char *dnn;      /* NULL: none */
	size_t	    max_msg;  /* largest NAS message (0: NAS_TCP_MAX) */
	/* The PDU session is up (acc: QFI, address, AMBR), or failed (NULL). */
	void (*up)(void *arg, const struct nas_sm *acc);
	void *arg;
};

struct nas_ue;

/* Starts the connection (non-blocking). NULL with err naming the bad
 * address or the failing call. u is borrowed. */
struct nas_ue *nas_ue_open(const struct nas_ue_cfg *c, struct usim *u,
    char *err, size_t errlen);
void	       nas_ue_close(struct nas_ue *x); /* NULL ok */

int  nas_ue_fd(const struct nas_ue *x); /* poll for POLLIN */
void nas_ue_step(struct nas_ue *x);

/* Whether the PDU session is up (*acc filled when not NULL). */
bool nas_ue_session(const struct nas_ue *x, struct nas_sm *acc);
/* Whether it ended without a session (refused, connection lost). */
bool nas_ue_failed(const struct nas_ue *x);

#endif
