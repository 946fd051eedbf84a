/*
 * One simulated KME: its key store and the emulated QKD link to its peer.
 * This is the boundary between the ETSI 014 HTTP layer (api.c) and the
 * key logic (kme*.c, link*.c, store*.c). All functions are thread-safe.
 * kme_start reports a bad configuration in err; the ETSI operations return
 * an enum kme_rc (the HTTP status, see api.c) with the message in err.
 */
#ifndef SIM_KME_H
#define SIM_KME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/etsi.h"
#include "simulator/link.h"

struct kme;

struct kme_cfg {
	const char  *kme_id;  /* own KME ID, e.g. "kme-a" */
	const char **sae_ids; /* SAEs attached to this KME */
	size_t	     n_sae;
	unsigned     key_size;	    /* default key size, bits (multiple of 8) */
	unsigned     max_key_count; /* cap on stored keys of key_size */
	const char  *db_path;	    /* NULL: keys in memory only */
	const char *kek_file; /* key-encryption key file (0600), with db_path */
	unsigned
	    key_ttl_s; /* assigned keys unfetched this long are wiped; 0 never */
	unsigned
	    max_keys_per_pair; /* keys waiting per (master, slave); 0 no cap */
	int transmitter;       /* 1: this side produces key material */
	uint64_t key_rate;     /* secret-key rate, bits/s (transmitter) */
	unsigned link_timeout_ms; /* wait for the peer's commit */

	/*
	 * The emulated QKD link to the peer KME (link.h): listen_host/port on
	 * exactly one side (port 0 picks a free one), peer_host/port on the
	 * other; cert, key and ca_file; peer_id, the peer KME's ID, which its
	 * certificate must carry as CN. kme_start sets self_id and tick_ms.
	 */
	struct link_cfg link;
};

enum kme_rc {
	KME_OK = 0,
	KME_EBADREQ,   /* 400 */
	KME_EUNAUTH,   /* 401 */
	KME_ENOTFOUND, /* 400, ETSI_MSG_KEYS_NOTFOUND */
	KME_EUNAVAIL, /* 503: link down, not enough key material, store error */
};

struct kme_info {
	char	 peer_kme_id[ETSI_ID_MAX + 1];
	int	 link_up;
	unsigned stored_key_count; /* keys of key_size ready to assign */
	/* the key store's counters (store_stats) */
	size_t	 assigned;     /* assigned keys waiting for a slave here */
	uint64_t expired;      /* ... wiped unfetched after key_ttl_s */
	uint64_t tampered;     /* records refused: they do not authenticate */
	uint64_t refused_full; /* assignments refused: pair at its cap */
};

struct kme *kme_start(const struct kme_cfg *cfg, char *err, size_t errlen);
void	    kme_stop(struct kme *k);		/* NULL ok */
uint16_t    kme_link_port(const struct kme *k); /* bound listen port, or 0 */
void	    kme_get_info(struct kme *k, struct kme_info *out);
bool	    kme_sae_is_local(struct kme *k, const char *sae);
/* SAE attached to the peer KME (learnt from the peer when the link comes up). */
bool	    kme_sae_is_remote(struct kme *k, const char *sae);

/*
 * Master side: number keys of size_bits for master and slaves[0..nslaves-1]
 * (the slave of the URL first, then the additional ones). The assignment is
 * committed at the peer before this returns KME_OK; the keys are then gone
 * from this KME. Request limits (number, size range, SAE counts) are the
 * caller's job; this checks key material, the link and the slaves' KME.
 */
enum kme_rc kme_enc_keys(struct kme *k, const char *master,
    const char *const *slaves, size_t nslaves, unsigned number,
    unsigned size_bits, struct etsi_keys *out, char err[static ETSI_ERRLEN]);

/*
 * Slave side: the keys named in ids, assigned by master to caller. All or
 * nothing: KME_ENOTFOUND if any is unknown (or not from that master),
 * KME_EUNAUTH if caller is not one of its slaves. Each slave gets a key once.
 */
enum kme_rc kme_dec_keys(struct kme *k, const char *caller, const char *master,
    const struct etsi_key_ids *ids, struct etsi_keys *out,
    char err[static ETSI_ERRLEN]);

#endif
