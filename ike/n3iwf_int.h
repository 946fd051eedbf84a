/*
 * What the two files of the N3IWF share: ike/n3iwf.c (the loop, the
 * SA table's timers, IKE_SA_INIT, QKD key budgets and draws) and
 * ike/n3iwf_auth.c (the exchanges after IKE_SA_INIT). Not for other
 * modules: their entry point is ike/n3iwf.h.
 */
#ifndef IKE_N3IWF_INT_H
#define IKE_N3IWF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "ike/endpoint.h"
#include "ike/cpuq.h"
#include "ike/kmsq.h"
#include "ike/msg.h"
#include "ike/ratelimit.h"
#include "ike/sa.h"
#include "ike/tnl.h"

/* Counters, logged on SIGUSR1 and at exit (ike/README.md). */
struct n3_stats {
	unsigned long init_rx;		      /* IKE_SA_INIT requests */
	unsigned long cookie_sent, cookie_ok; /* dup_absorbed: ep.absorbed */
	unsigned long over_src, over_sae, over_all, queue_full;
	unsigned long draws, keys_drawn, draw_fail;
	unsigned long keys_wiped; /* drawn for an SA that died first */
	unsigned long cpu_busy;	  /* IKE_SA_INIT dropped: crypto queue full */
};

struct nas_n3iwf;

struct n3 {
	struct ike_ep	     ep;
	uint8_t		     cookie_secret[32];
	struct ike_wq	    *wq;       /* worker threads (ike/workq.h) */
	struct ike_kmsq_job *ppk_done; /* the PPK job IKE_AUTH resumes with */
	struct ike_cpuq_job *sig_done; /* IKE_AUTH resumes with: signatures */
	struct ike_rl	     rl_src, rl_sae;
	struct ike_tb	     tb_all;
	struct ike_loglim    refuse_log;
	struct n3_stats	     stats;
	unsigned	     conn_seq;
	/* tunnel (cfg tunnel, ike/n3iwf_tun.c) */
	struct tnl	     tnl;
	struct nas_n3iwf    *nas; /* nwu: the NAS/TCP server */
	int		     xfd; /* epoll of kmsq's and nas's fds, or -1 */
	/* inner addresses (CP): cfg inner_ip + k for k < cp_n, bit k set
	 * while cp_sa[k] (the IKE SA holding the UE's AMF) lives */
	uint64_t	    *cp_bits;
	struct ike_sa	   **cp_sa;
	size_t		     cp_n;
};

/*
 * ike/n3iwf.c. The QKD key budgets: n keys from the source address's, the
 * claimed SAE ID's and the global bucket, all three or none. 0: taken;
 * -1: over budget (logged, rate-limited; counted), `which` names the bucket.
 */
int n3iwf_budget(struct n3 *n, const struct sockaddr_in *from, const char *sae,
    unsigned keys, const char **which);

/* ike/n3iwf.c. The IKE_SA_INIT response to sa->init_req once sa's keys
 * came from a worker (ke: our KE data, kelen 0 in qkd mode); sa goes to
 * SA_AUTH. 0 or -1. */
int n3iwf_init_resume(struct n3 *n, struct ike_sa *sa, const uint8_t *ke,
    size_t kelen);

/* ike/n3iwf_auth.c. The peer's next request on sa, our response to ours. */
void n3iwf_request(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m);
/* A parked IKE_AUTH request (req, as received) processed again. */
void n3iwf_auth_again(struct n3 *n, struct ike_sa *sa, const uint8_t *req,
    size_t len);
void n3iwf_response(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m);
/*
 * A finished PPK dec_keys: the parked IKE_AUTH processed again, as
 * received, now with the key; or the key wiped when its SA is gone.
 */
void n3iwf_ppk_done(struct n3 *n, struct ike_kmsq_job *j);
/*
 * Starts the user-plane CREATE_CHILD_SA of sa (state SA_CHILD). Right
 * after IKE_AUTH with nas_tcp = no; with yes, when the AMF asks for it on
 * the PDU Session Establishment Request (nas_n3iwf.h cfg.child). 0 or -1.
 */
int  n3iwf_create_child(struct n3 *n, struct ike_sa *sa);

/*
 * ike/n3iwf_cpu.c, the CPU lane's work. n3iwf_cpu_init: IKE_SA_INIT's DH
 * (psk, cert, qkd+dh) queued, sa in the table waiting in SA_INIT; 0 (the
 * table owns sa) or -1 (dropped: the lane is full; or answered; the caller
 * frees sa). n3iwf_cpu_sig: IKE_AUTH's signatures (verify: the peer's
 * CERT + AUTH first; always our AUTH signed, left in n->sig_done->au.sig):
 * 1 parked (m comes back through n3iwf_auth_again with n->sig_done),
 * 0 done, -1 refused (logged). n3iwf_cpu_done: a finished job.
 */
int  n3iwf_cpu_init(struct n3 *n, struct ike_sa *sa, const struct ike_pkt *p,
     const struct ike_pld *pl);
int  n3iwf_cpu_sig(struct n3 *n, struct ike_sa *sa, const struct ike_msg *m,
     int verify);
void n3iwf_cpu_done(struct n3 *n, struct ike_cpuq_job *j);

/*
 * ike/n3iwf_rekey.c. The rekeys' fresh QKD keys (qkd mode): set up the
 * endpoint's rk_ops (draw: ONE enc_keys {1} through kmsq, within the
 * budgets); a finished rekey job goes to ike_rekey_qkd_done(), or is
 * wiped when no rekey wants it any more.
 */
void n3iwf_rekey_setup(struct n3 *n);
void n3iwf_rekey_done(struct n3 *n, struct ike_kmsq_job *j);

/*
 * ike/n3iwf_tun.c, the tunnel (cfg tunnel). n3iwf_tun_open: at start,
 * the TUN with NAS_IP and the route to the UEs, the engine, the NAS/TCP
 * server; 0 or -1 (err). n3iwf_tun_xfd: what the loop polls beside IKE;
 * n3iwf_tun_step: it is readable (kmsq's jobs are drained by the caller).
 * n3iwf_tun_auth: after the last IKE_AUTH response (the signalling SA
 * installed, the UE known to NAS). n3iwf_tun_child: the user-plane
 * Child SA is up (ok) or failed. The endpoint's role calls (set by
 * n3iwf_tun_open, also without a tunnel): sa is about to be freed (its
 * inner address freed, the UE gone from NAS), or a rekey moved the UE
 * to a new IKE SA (so do its address and NAS connection).
 * n3iwf_tun_close: all of it gone.
 */
/* The UE's inner address (CP): the lowest free one from cfg inner_ip on
 * (max_ike_sas of them), into sa->cp_addr; it moves with the UE to the
 * IKE SA that replaces sa and is free again when the last one goes.
 * 0 or -1 (logged). */
int  n3iwf_cp_alloc(struct n3 *n, struct ike_sa *sa);
int  n3iwf_tun_open(struct n3 *n, char *err, size_t errlen);
int  n3iwf_tun_xfd(const struct n3 *n);
void n3iwf_tun_step(struct n3 *n);
void n3iwf_tun_auth(struct n3 *n, struct ike_sa *sa);
void n3iwf_tun_child(struct n3 *n, struct ike_sa *sa, bool ok);
void n3iwf_tun_close(struct n3 *n);

#endif
