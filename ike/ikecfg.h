/*
 * Configuration of ike-n3iwf and ike-ue: one table of the [ike] settings for
 * common/cfg (file, flags over it, --help, --check-config, man page), with
 * the cross-field checks. Both binaries share the struct and the table; a
 * setting of the other role is ignored in the file and is no flag here.
 */
#ifndef IKE_IKECFG_H
#define IKE_IKECFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"
#include "common/log.h"
#include "ike/ratelimit.h"

enum ike_mode {
	IKE_MODE_PSK = 0, /* DH + PSK (NWu: KN3IWF) */
	IKE_MODE_CERT,	  /* DH + RFC 7427 ECDSA signatures */
	IKE_MODE_QKD,	  /* no DH: 13 keys from kmsd */
	IKE_MODE_QKD_DH,  /* DH + one QKD key as RFC 8784 PPK */
};

enum ike_profile {
	IKE_PROFILE_NWU = 0, /* 3GPP NWu: EAP-5G, two Child SAs */
	IKE_PROFILE_RFC7296, /* plain IKEv2: PSK/cert AUTH, one Child SA */
};

/* qkd mode: how the QKD keys become the SA keys (ike/README.md). */
enum ike_qkd_sched {
	IKE_QKD_SCHED_PAPER = 0, /* the paper's: 13 keys used raw */
	IKE_QKD_SCHED_PRF,	 /* one key as RFC 7296's shared secret */
};

enum ike_role { IKE_ROLE_UE = 0, IKE_ROLE_N3IWF };

#define IKECFG_HOSTLEN 64
#define IKECFG_ERRLEN  512

struct ikecfg {
	enum ike_role	 role;
	enum ike_mode	 mode;
	enum ike_profile profile;
	enum log_level	 log_level;

	/* network */
	char	 host[IKECFG_HOSTLEN];	/* N3IWF: listen; UE: peer */
	uint16_t port;			/* IKE port (500) */
	uint16_t natt_port;		/* NAT-T port (4500) */
	char	 local[IKECFG_HOSTLEN]; /* UE: local address */
	int	 force_natt;		/* UE: move to natt_port after INIT */

	/* crypto */
	unsigned dh_group;	  /* 14, 19 or 31 */
	int	 aead;		  /* 1: AES-GCM-16, 0: AES-CBC + HMAC */
	int	 esn;		  /* ESP: offer and take ESN (else NO_ESN) */
	char	*psk;		  /* rfc7296 psk / qkd+dh */
	char	*cert, *key, *ca; /* own certificate (PEM), key, CA */
	char	*id;		  /* own IKE identity (FQDN) */
	unsigned peer_transform;  /* UE test hook: extra KE ID */

	/* QKD / kmsd */
	char		  *kmsd_url, *kmsd_cert, *kmsd_key, *kmsd_ca;
	char		  *sae_id;   /* own SAE ID (default: kmsd cert CN) */
	char		  *peer_sae; /* UE: the N3IWF's SAE (master) */
	unsigned	   kmsd_timeout_ms;
	int		   ppk_required; /* qkd+dh: no NO_PPK_AUTH fallback */
	enum ike_qkd_sched qkd_schedule; /* qkd: key schedule */
	char		  *ppk_key_id;	 /* qkd+dh: PPK fetched by the peer */

	/* 5G */
	char	*supi;		  /* IMSI digits */
	char	*k_hex, *opc_hex; /* subscriber keys (TS 35.208 set 1) */
	char	*supi_first;	  /* the range's first SUPI (NULL: supi) */
	char	*sub_seed;	  /* the range's keys (ike/subs.h), hex */
	unsigned subscribers;	  /* N3IWF: SUPIs in the range */
	char	 inner_ip[IKECFG_HOSTLEN]; /* CP address for the UE */
	char	 nas_ip[IKECFG_HOSTLEN];   /* NAS_IP4_ADDRESS */
	char	 up_ip[IKECFG_HOSTLEN];	   /* UP_IP4_ADDRESS */
	uint16_t nas_port;		   /* NAS_TCP_PORT */
	int	 nas_ea; /* N3IWF: NAS_ALG_EA2 (if the UE has it) or EA0 */
	int nas_tcp; /* the UP Child SA waits for the PDU session (NAS/TCP) */

	/* the ESP data plane (ike/tnl.h) */
	int	 tunnel;      /* yes: TUN + ESP through the Child SAs */
	char	*tun_name;    /* the TUN device's name */
	char	*tun_route;   /* routed into the TUN (NULL: role default) */
	char	*status_file; /* SAs and counters, rewritten every second */
	unsigned tun_spin_us; /* data plane: spin after a batch (dp.h) */

	/* behaviour */
	unsigned count;		      /* UE: connections in a row */
	unsigned load;		      /* UE: simulated UEs (0: one UE) */
	double	 load_rate;	      /* UE: arrivals per second (0: max) */
	unsigned load_conc;	      /* UE: set-ups in flight at most */
	unsigned load_hold;	      /* UE: established held (0: all) */
	unsigned max_conns;	      /* N3IWF: exit after this many (0: run) */
	unsigned max_ike_sas;	      /* IKE SAs in the table at most */
	unsigned cookie_threshold;    /* N3IWF: half-open SAs before COOKIE */
	unsigned retrans_ms;	      /* first retransmission timeout */
	unsigned retrans_tries;	      /* sends before giving up */
	unsigned half_open_ms;	      /* N3IWF: half-open SA lifetime */
	int	 qkd_cookie;	      /* N3IWF, qkd modes: COOKIE always */
	struct ike_tb_cfg budget_src; /* N3IWF: QKD keys per source address */
	struct ike_tb_cfg budget_sae; /* ... per claimed SAE ID */
	struct ike_tb_cfg budget_all; /* ... in total */
	unsigned	  kmsd_workers; /* N3IWF: parallel enc_keys calls */
	unsigned	  kmsd_queue;	/* N3IWF: enc_keys queued + in flight */
	unsigned crypto_workers; /* N3IWF: DH/signature threads (0: CPUs) */
	unsigned crypto_queue;	 /* N3IWF: IKE_SA_INIT DH jobs at most */
	unsigned crypto_stock;	 /* N3IWF: DH key pairs made ahead */
	char	*csv;		 /* per-connection CSV */
	char	*csv_msgs;	 /* per-message CSV */
	char	*ready_file;	 /* N3IWF: port= written when up */

	/* lifetimes and rekeying (ike/rekey.c); hard 0: soft + 10% */
	unsigned hold_s;       /* UE: keep the IKE SA up (0: until SIGTERM) */
	int	 hold_set;     /* hold_s was given (else connect, delete) */
	unsigned ike_soft_s;   /* IKE SA: rekey after */
	unsigned ike_hard_s;   /* IKE SA: delete after */
	unsigned child_soft_s; /* Child SA: rekey after */
	unsigned child_hard_s; /* Child SA: delete after */
	uint64_t child_soft_bytes, child_hard_bytes; /* 0: no limit */
	uint64_t child_soft_pkts, child_hard_pkts;   /* 0: no limit */
	unsigned rekey_jitter;	/* percent taken off soft lifetimes */
	unsigned rekey_retry_s; /* after TEMPORARY_FAILURE */
	int	 child_pfs;	/* psk/cert: DH in Child SA rekeys */
};

/* The settings of each program (cfg_main() reads them). */
extern const struct cfg_table ikecfg_ue_table;
extern const struct cfg_table ikecfg_n3iwf_table;

void ikecfg_free(struct ikecfg *c);

const char *ike_mode_name(enum ike_mode m);
const char *ike_profile_name(enum ike_profile p);
const char *ike_qkd_sched_name(enum ike_qkd_sched s);
/*
 * qkd mode's key schedule as the CSV and the log name it: "paper" or
 * "prf" in qkd mode, "-" in the other modes (no QKD key schedule).
 */
const char *ike_qkd_sched_label(const struct ikecfg *c);
/* QKD keys one IKE_SA_INIT draws in qkd mode: 13 (paper) or 1 (prf). */
unsigned    ike_qkd_sched_nkeys(enum ike_qkd_sched s);
/* The KE transform that names the schedule: 1025 (paper), 1026 (prf). */
uint16_t    ike_qkd_sched_ke(enum ike_qkd_sched s);
/* qkd mode with the paper's schedule: the 13 QKD keys are used raw. */
bool	    ike_qkd_raw(const struct ikecfg *c);
bool	    ike_mode_has_dh(enum ike_mode m);
/* Whether the subscribers are a range (ike/subs.h): a sub_seed is set. */
bool	    ike_sub_range(const struct ikecfg *c);

/* The subscriber range's config values (ike/subs.h), checked. */
#define IKE_SUPI_DIGITS_MAX 15
#define IKE_SUB_SEED_MIN    16 /* bytes: 32..64 hex digits */
#define IKE_SUB_SEED_MAX    32
/*
 * first: supi_first ("imsi-" optional); n SUPIs from it, all of the same
 * width (3 + mnc_len + 1 .. 15 digits) and MCC/MNC. Its value and width
 * in *value, *digits. 0, or -1 with err naming the bad value.
 */
int  ike_supi_range(const char *first, unsigned mnc_len, uint64_t n,
     uint64_t *value, unsigned *digits, char *err, size_t errlen);
/* sub_seed: 32..64 hex digits into out (*len bytes). 0, or -1 with err
 * (never the seed itself). */
int  ike_sub_seed(const char *hex, uint8_t out[static IKE_SUB_SEED_MAX],
     size_t *len, char *err, size_t errlen);
bool ike_mode_has_qkd(enum ike_mode m);

#endif
