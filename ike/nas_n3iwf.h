/*
 * The N3IWF's end of NAS over TCP (TS 24.502 9.4, TS 23.502 4.12.2.2 and
 * 4.12.5): it listens on NAS_IP4_ADDRESS:NAS_TCP_PORT, maps each TCP
 * connection to its UE by the source address (the inner address the
 * N3IWF gave the UE in the CP payload), and relays NAS messages between
 * the UE and that UE's AMF emulator (amf.h):
 *
 *   connection from the UE's inner address
 *     <- Registration Accept (the AMF's, from EAP-Success: amf_reg_accept)
 *     -> Registration Complete                          -> amf_handle
 *     -> UL NAS TRANSPORT (PDU Session Establishment Request)
 *                                -> amf_handle -> the AMF's session call
 *        -> cfg.child(): the integrator starts the user-plane Child SA
 *     nas_n3iwf_child_done(): the Child SA is up -> amf_pdu_done
 *     <- DL NAS TRANSPORT (PDU Session Establishment Accept)
 *
 * The Accept is forwarded only after the Child SA is up, as TS 23.502
 * 4.12.5 steps 4-6 order it. Event driven, no threads: one epoll fd to
 * poll for POLLIN (nas_n3iwf_fd), then nas_n3iwf_step(), which never
 * blocks. A connection from an unknown address, a framing error (length
 * 0 or above the maximum), a truncated envelope at EOF, or a NAS message
 * the AMF refuses closes the connection and is counted.
 */
#ifndef IKE_NAS_N3IWF_H
#define IKE_NAS_N3IWF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ike/amf.h"

struct nas_n3iwf_cfg {
	const char *ip;	     /* NAS_IP4_ADDRESS to listen on */
	uint16_t    port;    /* NAS_TCP_PORT (0: any, see nas_n3iwf_port) */
	uint8_t	    qfi;     /* QFI of the PDU session (1..63) */
	size_t	    max_msg; /* largest NAS message (0: NAS_TCP_MAX) */
	/* The AMF asks for the user-plane Child SA of UE `ue` (as given to
	 * nas_n3iwf_ue_add): answer with nas_n3iwf_child_done(), later or
	 * from inside the call; never nas_n3iwf_ue_del() from inside it. */
	void (*child)(void *arg, void *ue, const struct amf_pdu_setup *s);
	void *arg;
};

struct nas_n3iwf_stats {
	uint64_t conns;	      /* connections accepted from known UEs */
	uint64_t unknown_src; /* closed: no UE has that source address */
	uint64_t msgs_in, msgs_out;
	uint64_t bad_frame; /* closed: length 0 or above the maximum */
	uint64_t truncated; /* closed: EOF inside an envelope */
	uint64_t bad_nas;   /* closed: the AMF refused a NAS message */
	uint64_t sessions;  /* PDU Session Establishment Accepts sent */
};

struct nas_n3iwf;

/* Listens. NULL with err naming the address on failure. */
struct nas_n3iwf      *
nas_n3iwf_open(const struct nas_n3iwf_cfg *c, char *err, size_t errlen);
void nas_n3iwf_close(struct nas_n3iwf *n); /* NULL ok */

int	 nas_n3iwf_fd(const struct nas_n3iwf *n); /* poll for POLLIN */
uint16_t nas_n3iwf_port(const struct nas_n3iwf *n);
void	 nas_n3iwf_step(struct nas_n3iwf *n);

/*
 * A UE after its IKE_AUTH: its inner address (network order), its AMF
 * emulator (borrowed: call nas_n3iwf_ue_del before freeing it; its
 * Registration Accept, if it has one, is sent first on the connection),
 * and the caller's handle for it, given back in cfg.child. The PDU
 * address is the inner address. 0, or -1 (address or handle already
 * known, no memory).
 */
int  nas_n3iwf_ue_add(struct nas_n3iwf *n, const uint8_t inner[static 4],
     struct amf *amf, void *ue);
/* Forgets the UE (and closes its connection); unknown ue is ignored. */
void nas_n3iwf_ue_del(struct nas_n3iwf *n, void *ue);

/* The UE's IKE SA was rekeyed: its handle is new_ue and its AMF
 * emulator amf (moved with it) from now on; the connection stays. 0, or
 * -1 (no such UE). */
int nas_n3iwf_ue_move(struct nas_n3iwf *n, void *old_ue, void *new_ue,
    struct amf *amf);

/* The user-plane Child SA of session psi is up (or failed): the Accept
 * (or a Reject) goes to the UE. 0, or -1 (no such UE or session). */
int nas_n3iwf_child_done(struct nas_n3iwf *n, void *ue, uint8_t psi, bool up);

void nas_n3iwf_get_stats(const struct nas_n3iwf *n, struct nas_n3iwf_stats *s);

#endif
