/* Config of ike-n3iwf / ike-ue: the table of the [ike] settings (common/cfg.h
 * does the rest) and the checks across settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/cfg.h"
#include "common/etsi.h"
#include "common/num.h"
#include "ike/ikecfg.h"
#include "ike/ikev2.h"
#include "ike/nas.h"
#include "ike/qkd.h"

#define R_UE (1u << IKE_ROLE_UE)
#define R_N3 (1u << IKE_ROLE_N3IWF)
#define K(m) CFG_AT(struct ikecfg, m)

static const struct cfg_name modes[] = { { "psk", IKE_MODE_PSK },
	{ "cert", IKE_MODE_CERT }, { "qkd", IKE_MODE_QKD },
	{ "qkd+dh", IKE_MODE_QKD_DH }, { NULL, 0 } };
static const struct cfg_name profiles[] = { { "nwu", IKE_PROFILE_NWU },
	{ "rfc7296", IKE_PROFILE_RFC7296 }, { NULL, 0 } };
static const struct cfg_name schedules[] = { { "paper", IKE_QKD_SCHED_PAPER },
	{ "prf", IKE_QKD_SCHED_PRF }, { NULL, 0 } };
static const struct cfg_name ciphers[] = { { "aes-cbc", 0 }, { "aes-gcm", 1 },
	{ NULL, 0 } };
static const struct cfg_name nas_eas[] = { { "ea0", NAS_ALG_EA0 },
	{ "ea2", NAS_ALG_EA2 }, { NULL, 0 } };
static const struct cfg_name groups[] = { { "14", 14 }, { "19", 19 },
	{ "31", 31 }, { NULL, 0 } };
static const struct cfg_name log_levels[] = { { "error", LOG_ERR },
	{ "warn", LOG_WARN }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
	{ NULL, 0 } };

/* qkd_budget_*: BURST:RATE or off (ike/ratelimit.c). */
static int
set_budget(void *base, const struct cfg_opt *o, const char *key, const char *v,
    char *err, size_t errlen)
{
	return ike_tb_parse(o->key, v,
	    (struct ike_tb_cfg *)(void *)((char *)base + o->off), err, errlen);
}

/* load_rate: arrivals per second, a decimal number >= 0. */
static int
set_rate(void *base, const struct cfg_opt *o, const char *key, const char *v,
    char *err, size_t errlen)
{
	double *d = (double *)(void *)((char *)base + o->off);
	char   *end;

	(void)key;
	*d = strtod(v, &end);
	if (end == v || *end != '\0' || !(*d >= 0 && *d <= 1e6)) {
		snprintf(err, errlen,
		    "%s \"%s\" is not a rate 0..1000000 (per s)", o->key, v);
		return -1;
	}
	return 0;
}

#define BUDGET(key, flag, m, def, text)                                        \
	{                                                                      \
		"ike", key, CFG_CUSTOM, K(m), def, flag,                       \
		    .help = text, .set = set_budget, .arg = "BURST:RATE|off",  \
		    .roles = R_N3                                              \
	}

static const struct cfg_opt ike_opts[] = {
	{ "ike", "mode", CFG_ENUM, K(mode), "qkd", "mode",
	    .help = "where the keys come from", .names = modes },
	{ "ike", "profile", CFG_ENUM, K(profile), "nwu", "profile",
	    .help = "nwu (3GPP NWu, EAP-5G) or plain rfc7296",
	    .names = profiles },
	{ "ike", "listen", CFG_ADDR, K(host), "127.0.0.1:500", "listen",
	    .help = "N3IWF address", .off2 = offsetof(struct ikecfg, port),
	    .roles = R_N3 },
	{ "ike", "peer", CFG_ADDR, K(host), "127.0.0.1:500", "peer",
	    .help = "the N3IWF", .off2 = offsetof(struct ikecfg, port),
	    .roles = R_UE },
	{ "ike", "local", CFG_IP, K(local), "127.0.0.1", "local",
	    .help = "UE source address", .roles = R_UE },
	{ "ike", "natt_port", CFG_UINT, K(natt_port), "4500", "natt-port",
	    .help = "NAT-T port, non-ESP marker", .min = 0, .max = 65535 },
	{ "ike", "force_natt", CFG_BOOL, K(force_natt), "no", "force-natt",
	    .help = "yes: move to the NAT-T port after INIT", .roles = R_UE },
	{ "ike", "dh", CFG_ENUM, K(dh_group), "14", "dh",
	    .help = "DH group: 14 (MODP-2048), 19 (ECP-256), 31 (X25519)",
	    .names = groups },
	{ "ike", "cipher", CFG_ENUM, K(aead), "aes-cbc", "cipher",
	    .help = "aes-cbc (AES-CBC-256 + HMAC-SHA2-256-128) or aes-gcm",
	    .names = ciphers },
	{ "ike", "esn", CFG_BOOL, K(esn), "yes", "esn",
	    .help = "ESP: offer and choose 64-bit extended sequence numbers "
		    "(no: NO_ESN only)" },
	{ "ike", "psk", CFG_STR, K(psk), NULL, "psk",
	    .help = "pre-shared key (rfc7296 psk and qkd+dh modes)" },
	{ "ike", "cert", CFG_PATH, K(cert), NULL, "cert",
	    .help = "own certificate, PEM (cert mode; N3IWF in nwu)" },
	{ "ike", "key", CFG_PATH, K(key), NULL, "key",
	    .help = "its private key, PEM" },
	{ "ike", "ca", CFG_PATH, K(ca), NULL, "ca",
	    .help = "CA the peer's certificate must chain to" },
	{ "ike", "id", CFG_STR, K(id), "ue.test", "id",
	    .help = "own IKE identity, FQDN", .roles = R_UE },
	{ "ike", "id", CFG_STR, K(id), "n3iwf.test", "id",
	    .help = "own IKE identity, FQDN", .roles = R_N3 },
	{ "ike", "kmsd_url", CFG_STR, K(kmsd_url), NULL, "kmsd-url",
	    .help = "the site's kmsd, https://HOST:PORT" },
	{ "ike", "kmsd_cert", CFG_PATH, K(kmsd_cert), NULL, "kmsd-cert",
	    .help = "client certificate for kmsd (its CN is the SAE ID)" },
	{ "ike", "kmsd_key", CFG_PATH, K(kmsd_key), NULL, "kmsd-key",
	    .help = "its private key" },
	{ "ike", "kmsd_ca", CFG_PATH, K(kmsd_ca), NULL, "kmsd-ca",
	    .help = "CA of kmsd's server certificate" },
	{ "ike", "sae_id", CFG_ID, K(sae_id), NULL, "sae-id",
	    .help = "own SAE ID (if unset: the CN of --kmsd-cert)" },
	{ "ike", "peer_sae", CFG_ID, K(peer_sae), NULL, "peer-sae",
	    .help = "the peer's SAE ID (UE: the N3IWF's, e.g. sae-a)" },
	{ "ike", "kmsd_timeout_ms", CFG_UINT, K(kmsd_timeout_ms), "3000",
	    "kmsd-timeout-ms", .help = "per kmsd call, ms", .min = 1,
	    .max = 600000 },
	{ "ike", "ppk_required", CFG_BOOL, K(ppk_required), "no",
	    "ppk-required",
	    .help = "qkd+dh: refuse to fall back to NO_PPK_AUTH" },
	{ "ike", "qkd_schedule", CFG_ENUM, K(qkd_schedule), "paper",
	    "qkd-schedule",
	    .help = "qkd: paper (13 keys used raw) or prf (one key, RFC 7296 "
		    "prf+)",
	    .names = schedules },
	{ "ike", "supi", CFG_STR, K(supi), NULL, "supi",
	    .help = "subscriber IMSI digits (if unset: 208930000000001)" },
	{ "ike", "k", CFG_STR, K(k_hex), NULL, "k",
	    .help = "subscriber K, 32 hex digits (if unset: TS 35.208 test "
		    "set 1)" },
	{ "ike", "opc", CFG_STR, K(opc_hex), NULL, "opc",
	    .help = "subscriber OPc, 32 hex digits (if unset: TS 35.208 test "
		    "set 1)" },
	{ "ike", "supi_first", CFG_STR, K(supi_first), NULL, "supi-first",
	    .help = "first SUPI of the subscriber range (if unset: supi); "
		    "ike-ue's load mode: UE i is supi_first + i" },
	{ "ike", "sub_seed", CFG_STR, K(sub_seed), NULL, "sub-seed",
	    .help = "32-64 hex digits: the subscriber range's K and OPc are "
		    "derived from it (ike/README.md); needed for a range" },
	{ "ike", "subscribers", CFG_UINT, K(subscribers), "1", "subscribers",
	    .help = "SUPIs the AMF emulator accepts, from supi_first (1: the "
		    "one configured subscriber)",
	    .min = 1, .max = 1000000000, .roles = R_N3 },
	{ "ike", "inner_ip", CFG_IP, K(inner_ip), "10.60.0.2", "inner-ip",
	    .help = "UE inner address given in CP", .roles = R_N3 },
	{ "ike", "nas_ip", CFG_IP, K(nas_ip), "10.60.0.1", "nas-ip",
	    .help = "NAS_IP4_ADDRESS", .roles = R_N3 },
	{ "ike", "up_ip", CFG_IP, K(up_ip), "10.60.0.1", "up-ip",
	    .help = "UP_IP4_ADDRESS", .roles = R_N3 },
	{ "ike", "nas_port", CFG_UINT, K(nas_port), "20000", "nas-port",
	    .help = "NAS_TCP_PORT", .min = 0, .max = 65535, .roles = R_N3 },
	{ "ike", "nas_ciphering", CFG_ENUM, K(nas_ea), "ea2", "nas-ciphering",
	    .help = "NAS ciphering the AMF selects: ea2 (128-NEA2, "
		    "AES-128-CTR, if the UE has it) or ea0 (none: tshark "
		    "decodes the NAS)",
	    .names = nas_eas, .roles = R_N3 },
	{ "ike", "nas_tcp", CFG_BOOL, K(nas_tcp), "no", "nas-tcp",
	    .help = "nwu: yes: the user-plane Child SA waits for the PDU "
		    "session request over NAS/TCP (needs the ESP data plane); "
		    "no: right after IKE_AUTH" },
	{ "ike", "tunnel", CFG_BOOL, K(tunnel), "no", "tunnel",
	    .help = "yes: carry traffic through the Child SAs (TUN, ESP in "
		    "UDP on the NAT-T port; nwu: NAS over TCP, nas_tcp on; "
		    "UE: NAT-T forced)" },
	{ "ike", "tun_name", CFG_STR, K(tun_name), "qkd0", "tun-name",
	    .help = "tunnel: the TUN device's name" },
	{ "ike", "tun_route", CFG_STR, K(tun_route), NULL, "tun-route",
	    .help = "tunnel: A.B.C.D/N or default, routed into the TUN (if "
		    "unset: UE default, N3IWF inner_ip/32)" },
	{ "ike", "status_file", CFG_STR, K(status_file), NULL, "status-file",
	    .help = "tunnel: the data plane's SAs and counters, rewritten "
		    "every second" },
	{ "ike", "tun_spin_us", CFG_UINT, K(tun_spin_us), "200", "tun-spin-us",
	    .help = "tunnel: after a batch the data plane polls both "
		    "directions this long before it sleeps (lower latency, "
		    "up to this much CPU per burst; 0: off)",
	    .min = 0, .max = 100000 },
	{ "ike", "count", CFG_UINT, K(count), "1", "count",
	    .help = "connections in a row, each a fresh IKE SA", .min = 1,
	    .max = 1000000, .roles = R_UE },
	{ "ike", "load", CFG_UINT, K(load), "0", "load",
	    .help = "load mode: this many simulated UEs, each its own SUPI, "
		    "socket and IKE SA (0: one UE, --count connections)",
	    .min = 0, .max = 1000000, .roles = R_UE },
	{ "ike", "load_rate", CFG_CUSTOM, K(load_rate), "0", "load-rate",
	    .help = "load mode: UE arrivals per second (0: as fast as "
		    "load_conc allows)",
	    .set = set_rate, .arg = "R", .roles = R_UE },
	{ "ike", "load_conc", CFG_UINT, K(load_conc), "64", "load-conc",
	    .help = "load mode: connection set-ups in flight at most", .min = 1,
	    .max = 1024, .roles = R_UE },
	{ "ike", "load_hold", CFG_UINT, K(load_hold), "0", "load-hold",
	    .help = "load mode: established UEs held at once at most, the "
		    "oldest deletes its IKE SA (0: all)",
	    .min = 0, .max = 1000000, .roles = R_UE },
	{ "ike", "max_conns", CFG_UINT, K(max_conns), "0", "max-conns",
	    .help = "exit after this many connections (0: until SIGTERM)",
	    .min = 0, .max = 100000000, .roles = R_N3 },
	{ "ike", "max_ike_sas", CFG_UINT, K(max_ike_sas), "65536",
	    "max-ike-sas",
	    .help = "IKE SAs held at most (a new IKE_SA_INIT past it is "
		    "dropped, logged at most once a second)",
	    .min = 16, .max = 4000000 },
	{ "ike", "cookie_threshold", CFG_UINT, K(cookie_threshold), "16",
	    "cookie-threshold",
	    .help = "half-open SAs before COOKIE is "
		    "demanded",
	    .min = 0, .max = 1000000, .roles = R_N3 },
	{ "ike", "half_open_ms", CFG_UINT, K(half_open_ms), "10000",
	    "half-open-ms", .help = "half-open SA lifetime, ms", .min = 10,
	    .max = 3600000, .roles = R_N3 },
	{ "ike", "qkd_cookie", CFG_BOOL, K(qkd_cookie), "yes", "qkd-cookie",
	    .help = "qkd modes: demand a COOKIE before any key is drawn",
	    .roles = R_N3 },
	/* Budgets in keys: one qkd connection draws 13 (ike/README.md). */
	BUDGET("qkd_budget_src", "qkd-budget-src", budget_src, "65:1.3",
	    "QKD keys per source address, keys and keys/s"),
	BUDGET("qkd_budget_sae", "qkd-budget-sae", budget_sae, "650:16",
	    "QKD keys per claimed SAE ID"),
	BUDGET("qkd_budget_all", "qkd-budget-all", budget_all, "1300:16",
	    "QKD keys in total"),
	{ "ike", "kmsd_workers", CFG_UINT, K(kmsd_workers), "2", "kmsd-workers",
	    .help = "threads making enc_keys calls, each with its own kmsd "
		    "connection",
	    .min = 1, .max = 64, .roles = R_N3 },
	{ "ike", "kmsd_queue", CFG_UINT, K(kmsd_queue), "64", "kmsd-queue",
	    .help = "enc_keys calls queued or in flight at most", .min = 1,
	    .max = 100000, .roles = R_N3 },
	{ "ike", "crypto_workers", CFG_UINT, K(crypto_workers), "0",
	    "crypto-workers",
	    .help = "threads doing the DH of IKE_SA_INIT and the signatures "
		    "of IKE_AUTH (0: one per online CPU)",
	    .min = 0, .max = 64, .roles = R_N3 },
	{ "ike", "crypto_queue", CFG_UINT, K(crypto_queue), "256",
	    "crypto-queue",
	    .help = "DH jobs queued or in flight at most; a new IKE_SA_INIT "
		    "past it is dropped (the UE retransmits)",
	    .min = 1, .max = 100000, .roles = R_N3 },
	{ "ike", "crypto_stock", CFG_UINT, K(crypto_stock), "32",
	    "crypto-stock",
	    .help = "DH key pairs idle crypto workers make ahead (each used "
		    "once; 0: none)",
	    .min = 0, .max = 256, .roles = R_N3 },
	{ "ike", "retransmit_ms", CFG_UINT, K(retrans_ms), "500",
	    "retransmit-ms",
	    .help = "first retransmission timeout, doubled "
		    "each time, ms",
	    .min = 10, .max = 60000 },
	{ "ike", "retransmit_tries", CFG_UINT, K(retrans_tries), "5",
	    "retransmit-tries", .help = "sends of one request before giving up",
	    .min = 1, .max = 20 },
	{ "ike", "csv", CFG_PATH, K(csv), NULL, "csv",
	    .help = "append one row per connection to this CSV" },
	{ "ike", "csv_msgs", CFG_PATH, K(csv_msgs), NULL, "csv-msgs",
	    .help = "append one row per IKE message here (if unset: the csv "
		    "file with .msgs)" },
	{ "ike", "ready_file", CFG_PATH, K(ready_file), NULL, "ready-file",
	    .help = "write port=, natt_port=, pid= here when up",
	    .roles = R_N3 },
	{ "ike", "peer_transform", CFG_UINT, K(peer_transform), "0",
	    "propose-ke",
	    .help = "test hook: propose this KE transform ID "
		    "instead (0: off)",
	    .min = 0, .max = 65535, .roles = R_UE },
	{ "ike", "ppk_key_id", CFG_STR, K(ppk_key_id), NULL, "ppk-key-id",
	    .help = "qkd+dh: use this key ID as the PPK (dec_keys from "
		    "--peer-sae, which fetched it) instead of a new key",
	    .roles = R_UE },
	{ "ike", "hold_s", CFG_UINT, K(hold_s), NULL, "hold",
	    .help = "keep the IKE SA up this long, rekeying it, then delete "
		    "it (0: until SIGTERM; unset: delete at once)",
	    .min = 0, .max = 100000000, .roles = R_UE,
	    .seen = CFG_SEEN(struct ikecfg, hold_set) },
	{ "ike", "ike_soft_s", CFG_UINT, K(ike_soft_s), "14400", "ike-soft",
	    .help = "IKE SA soft lifetime: rekey after this many seconds (0: "
		    "never, ike_hard_s deletes it)",
	    .min = 0, .max = 100000000 },
	{ "ike", "ike_hard_s", CFG_UINT, K(ike_hard_s), "0", "ike-hard",
	    .help = "IKE SA hard lifetime: delete after, s (0: soft + 10%)",
	    .min = 0, .max = 100000000 },
	{ "ike", "child_soft_s", CFG_UINT, K(child_soft_s), "3600",
	    "child-soft",
	    .help = "Child SA soft lifetime: rekey after this many seconds "
		    "(0: never, child_hard_s deletes it)",
	    .min = 0, .max = 100000000 },
	{ "ike", "child_hard_s", CFG_UINT, K(child_hard_s), "0", "child-hard",
	    .help = "Child SA hard lifetime: delete after, s (0: soft + 10%)",
	    .min = 0, .max = 100000000 },
	{ "ike", "child_soft_bytes", CFG_UINT, K(child_soft_bytes), "0",
	    "child-soft-bytes",
	    .help = "Child SA: rekey after this many bytes (0: no limit)",
	    .min = 0, .max = UINT64_MAX },
	{ "ike", "child_hard_bytes", CFG_UINT, K(child_hard_bytes), "0",
	    "child-hard-bytes",
	    .help = "Child SA: delete after this many bytes (0: no limit)",
	    .min = 0, .max = UINT64_MAX },
	{ "ike", "child_soft_packets", CFG_UINT, K(child_soft_pkts), "0",
	    "child-soft-packets",
	    .help = "Child SA: rekey after this many packets (0: no limit)",
	    .min = 0, .max = UINT64_MAX },
	{ "ike", "child_hard_packets", CFG_UINT, K(child_hard_pkts), "0",
	    "child-hard-packets",
	    .help = "Child SA: delete after this many packets (0: no limit)",
	    .min = 0, .max = UINT64_MAX },
	{ "ike", "rekey_jitter", CFG_UINT, K(rekey_jitter), "10",
	    "rekey-jitter",
	    .help = "percent of a soft lifetime taken off at random, so both "
		    "sides do not rekey at once",
	    .min = 0, .max = 50 },
	{ "ike", "rekey_retry_s", CFG_UINT, K(rekey_retry_s), "2",
	    "rekey-retry",
	    .help = "seconds before a refused rekey (TEMPORARY_FAILURE) is "
		    "tried again",
	    .min = 1, .max = 3600 },
	{ "ike", "child_pfs", CFG_BOOL, K(child_pfs), "yes", "child-pfs",
	    .help = "psk/cert: a fresh DH in Child SA rekeys (qkd: a fresh "
		    "QKD key; qkd+dh: always DH)" },
	{ "ike", "log_level", CFG_ENUM, K(log_level), "info", "log-level",
	    .help = "least important log lines written", .names = log_levels },
};

const char *
ike_mode_name(enum ike_mode m)
{
	for (size_t i = 0; modes[i].name; i++)
		if (modes[i].value == (int)m)
			return modes[i].name;
	return "?";
}

const char *
ike_qkd_sched_name(enum ike_qkd_sched s)
{
	return s == IKE_QKD_SCHED_PRF ? "prf" : "paper";
}

const char *
ike_qkd_sched_label(const struct ikecfg *c)
{
	return c->mode == IKE_MODE_QKD ? ike_qkd_sched_name(c->qkd_schedule) :
					 "-";
}

unsigned
ike_qkd_sched_nkeys(enum ike_qkd_sched s)
{
	return s == IKE_QKD_SCHED_PRF ? 1 : IKE_QKD_NKEYS;
}

uint16_t
ike_qkd_sched_ke(enum ike_qkd_sched s)
{
	return s == IKE_QKD_SCHED_PRF ? IKE_KE_QKD_ETSI014_PRF :
					IKE_KE_QKD_ETSI014;
}

bool
ike_qkd_raw(const struct ikecfg *c)
{
	return c->mode == IKE_MODE_QKD &&
	    c->qkd_schedule == IKE_QKD_SCHED_PAPER;
}

const char *
ike_profile_name(enum ike_profile p)
{
	return p == IKE_PROFILE_NWU ? "nwu" : "rfc7296";
}

bool
ike_mode_has_dh(enum ike_mode m)
{
	return m != IKE_MODE_QKD;
}

bool
ike_mode_has_qkd(enum ike_mode m)
{
	return m == IKE_MODE_QKD || m == IKE_MODE_QKD_DH;
}

static int
need(const char *v, const char *what, const char *why, char *err, size_t errlen)
{
	if (v != NULL)
		return 0;
	snprintf(err, errlen, "%s is required %s", what, why);
	return -1;
}

static int
finish_qkd(struct ikecfg *c, char *err, size_t errlen)
{
	if (!ike_mode_has_qkd(c->mode))
		return 0;
	if (need(c->kmsd_url, "--kmsd-url", "in qkd modes", err, errlen) ==
		-1 ||
	    need(c->kmsd_cert, "--kmsd-cert", "in qkd modes", err, errlen) ==
		-1 ||
	    need(c->kmsd_key, "--kmsd-key", "in qkd modes", err, errlen) == -1)
		return -1;
	/* The UE names the N3IWF's SAE (dec_keys in qkd; enc_keys slave in qkd+dh). */
	if (c->role == IKE_ROLE_UE &&
	    need(c->peer_sae, "--peer-sae", "on the UE in qkd modes", err,
		errlen) == -1)
		return -1;
	return 0;
}

/*
 * One soft/hard pair: hard 0 becomes soft + 10%; soft < hard. A soft
 * lifetime in seconds (fill) of 0 means no rekey: it needs a hard one.
 */
static int
check_pair(const char *what, uint64_t soft, uint64_t *hard, int fill, char *err,
    size_t errlen)
{
	if (soft == 0 && fill && *hard == 0) {
		snprintf(err, errlen, "%s: 0 (no rekey) needs a hard lifetime",
		    what);
		return -1;
	}
	if (*hard == 0 && fill)
		*hard = soft + (soft / 10 > 0 ? soft / 10 : 1);
	if (*hard == 0 || soft == 0 || soft < *hard)
		return 0;
	snprintf(err, errlen,
	    "%s: the soft lifetime %llu is not below the hard one %llu", what,
	    (unsigned long long)soft, (unsigned long long)*hard);
	return -1;
}

static int
finish_lifetimes(struct ikecfg *c, char *err, size_t errlen)
{
	uint64_t ih = c->ike_hard_s, ch = c->child_hard_s;

	if (check_pair("ike_soft_s", c->ike_soft_s, &ih, 1, err, errlen) ==
		-1 ||
	    check_pair("child_soft_s", c->child_soft_s, &ch, 1, err, errlen) ==
		-1 ||
	    check_pair("child_soft_bytes", c->child_soft_bytes,
		&c->child_hard_bytes, 0, err, errlen) == -1 ||
	    check_pair("child_soft_packets", c->child_soft_pkts,
		&c->child_hard_pkts, 0, err, errlen) == -1)
		return -1;
	c->ike_hard_s = (unsigned)ih;
	c->child_hard_s = (unsigned)ch;
	return 0;
}

bool
ike_sub_range(const struct ikecfg *c)
{
	return c->sub_seed != NULL;
}

int
ike_supi_range(const char *first, unsigned mnc_len, uint64_t n, uint64_t *value,
    unsigned *digits, char *err, size_t errlen)
{
	uint64_t max = 1, msin = 1;
	unsigned plmn = 3 + mnc_len, d;

	if (strncmp(first, "imsi-", 5) == 0)
		first += 5;
	d = (unsigned)strlen(first);
	if (d < plmn + 1 || d > IKE_SUPI_DIGITS_MAX ||
	    strspn(first, "0123456789") != d) {
		snprintf(err, errlen,
		    "supi_first \"%s\" is not 6-15 IMSI digits", first);
		return -1;
	}
	*value = strtoull(first, NULL, 10);
	for (unsigned i = 0; i < d; i++)
		max *= 10;
	if (n == 0 || n > max - *value) {
		snprintf(err, errlen,
		    "%llu subscribers from supi_first \"%s\" do not fit in %u "
		    "digits",
		    (unsigned long long)n, first, d);
		return -1;
	}
	for (unsigned i = plmn; i < d; i++)
		msin *= 10; /* MCC and MNC: the leading 3 + mnc_len digits */
	if (*value / msin != (*value + n - 1) / msin) {
		snprintf(err, errlen,
		    "%llu subscribers from supi_first \"%s\" cross into another "
		    "MCC/MNC",
		    (unsigned long long)n, first);
		return -1;
	}
	*digits = d;
	return 0;
}

int
ike_sub_seed(const char *hex, uint8_t out[static IKE_SUB_SEED_MAX], size_t *len,
    char *err, size_t errlen)
{
	size_t n = hex != NULL ? strlen(hex) : 0;

	if (n < 2 * IKE_SUB_SEED_MIN || n > 2 * IKE_SUB_SEED_MAX || n % 2) {
		snprintf(err, errlen,
		    "sub_seed is not 32-64 hex digits (an even number; it has "
		    "%zu characters)",
		    n);
		return -1;
	}
	if (num_unhex(hex, out, n / 2) == -1) {
		OPENSSL_cleanse(out, IKE_SUB_SEED_MAX);
		snprintf(err, errlen, "sub_seed is not hex digits");
		return -1;
	}
	*len = n / 2;
	return 0;
}

/* The subscriber range (--subscribers, --load, --supi-first, --sub-seed). */
static int
finish_subs(struct ikecfg *c, char *err, size_t errlen)
{
	uint64_t n = c->role == IKE_ROLE_N3IWF ? c->subscribers : c->load;
	uint64_t first;
	uint8_t	 seed[IKE_SUB_SEED_MAX];
	size_t	 len;
	unsigned digits;
	int	 r;

	if (c->sub_seed == NULL) {
		if (n <= 1)
			return 0;
		snprintf(err, errlen, "--sub-seed is required with %s %llu",
		    c->role == IKE_ROLE_N3IWF ? "--subscribers" : "--load",
		    (unsigned long long)n);
		return -1;
	}
	r = ike_sub_seed(c->sub_seed, seed, &len, err, errlen);
	OPENSSL_cleanse(seed, sizeof(seed));
	if (r == -1)
		return -1;
	return ike_supi_range(c->supi_first ? c->supi_first :
		c->supi			    ? c->supi :
					      "208930000000001",
	    2, n > 0 ? n : 1, &first, &digits, err, errlen);
}

static int
finish_load(const struct ikecfg *c, char *err, size_t errlen)
{
	if (c->role != IKE_ROLE_UE || c->load == 0)
		return 0;
	if (c->tunnel) {
		snprintf(err, errlen,
		    "--tunnel is not supported with --load (load-mode UEs run "
		    "no data plane)");
		return -1;
	}
	if (c->nas_tcp) {
		snprintf(err, errlen,
		    "--nas-tcp is not supported with --load (it needs the data "
		    "plane)");
		return -1;
	}
	if (c->load_hold > c->load) {
		snprintf(err, errlen, "--load-hold %u is more than --load %u",
		    c->load_hold, c->load);
		return -1;
	}
	return 0;
}

static int
ikecfg_finish(void *cfg, char *err, size_t errlen)
{
	struct ikecfg *c = cfg;
	int	       n3 = c->role == IKE_ROLE_N3IWF;

	if (c->port == 0 && !n3) {
		snprintf(err, errlen, "peer port 0 is not a port");
		return -1;
	}
	if (c->profile == IKE_PROFILE_RFC7296 &&
	    (c->mode == IKE_MODE_PSK || c->mode == IKE_MODE_QKD_DH) &&
	    need(c->psk, "--psk", "in rfc7296 psk and qkd+dh modes", err,
		errlen) == -1)
		return -1;
	if (c->mode == IKE_MODE_CERT || (n3 && c->profile == IKE_PROFILE_NWU)) {
		if (need(c->cert, "--cert",
			n3 ? "(the N3IWF signs its AUTH)" : "in cert mode", err,
			errlen) == -1 ||
		    need(c->key, "--key", "with --cert", err, errlen) == -1)
			return -1;
	}
	if ((c->mode == IKE_MODE_CERT ||
		(!n3 && c->profile == IKE_PROFILE_NWU)) &&
	    need(c->ca, "--ca", "to verify the peer's certificate", err,
		errlen) == -1)
		return -1;
	if (finish_qkd(c, err, errlen) == -1 ||
	    finish_lifetimes(c, err, errlen) == -1 ||
	    finish_subs(c, err, errlen) == -1 ||
	    finish_load(c, err, errlen) == -1)
		return -1;
	if (c->tunnel) { /* NAS rides the signalling SA; ESP on NAT-T */
		c->nas_tcp = c->profile == IKE_PROFILE_NWU;
		c->force_natt = 1;
		if (!n3 && !c->hold_set) /* the UE keeps it: until SIGTERM */
			c->hold_set = 1;
	}
	if (c->csv != NULL && c->csv_msgs == NULL) {
		size_t n = strlen(c->csv);
		char  *m = malloc(n + 6);

		if (m == NULL)
			return -1;
		if (n > 4 && strcmp(c->csv + n - 4, ".csv") == 0)
			snprintf(m, n + 6, "%.*s.msgs.csv", (int)(n - 4),
			    c->csv);
		else
			snprintf(m, n + 6, "%s.msgs", c->csv);
		c->csv_msgs = m;
	}
	return 0;
}

static void
ikecfg_init_ue(void *cfg)
{
	memset(cfg, 0, sizeof(struct ikecfg));
	((struct ikecfg *)cfg)->role = IKE_ROLE_UE;
}

static void
ikecfg_init_n3iwf(void *cfg)
{
	memset(cfg, 0, sizeof(struct ikecfg));
	((struct ikecfg *)cfg)->role = IKE_ROLE_N3IWF;
}

void
ikecfg_free(struct ikecfg *c)
{
	cfg_release(&ikecfg_ue_table, c, false);
}

static void
ikecfg_free_cb(void *cfg)
{
	ikecfg_free(cfg);
}

#define IKE_USAGE(prog)                                                        \
	prog " [--config FILE] [options]\n       " prog                        \
	     " --check-config FILE [options]"
#define IKE_FLAGS                                                              \
	"Flags override the config file (INI, section [ike]). "                \
	"See ike/README.md."

const struct cfg_table ikecfg_ue_table = {
	.prog = "ike-ue",
	.usage = IKE_USAGE("ike-ue"),
	.about =
	    "IKEv2 initiator (the 5G UE on NWu): connects to ike-n3iwf, "
	    "with QKD\nkeys from its site's kmsd in the qkd modes. " IKE_FLAGS,
	.tail =
	    "exit status: 0 when every connection completed, 1 otherwise, "
	    "2 bad config\nsignals: SIGTERM/SIGINT: Delete the IKE SA, then "
	    "exit; SIGUSR2: rekey the IKE SA and its Child SAs now",
	.opts = ike_opts,
	.nopts = sizeof(ike_opts) / sizeof(ike_opts[0]),
	.role = R_UE,
	.init = ikecfg_init_ue,
	.finish = ikecfg_finish,
	.free = ikecfg_free_cb,
};

const struct cfg_table ikecfg_n3iwf_table = {
	.prog = "ike-n3iwf",
	.usage = IKE_USAGE("ike-n3iwf"),
	.about =
	    "IKEv2 responder (the N3IWF on NWu) with an AMF emulator "
	    "inside, QKD\nkeys from its site's kmsd in the qkd modes. " IKE_FLAGS,
	.tail = "signals: SIGTERM/SIGINT: Delete every IKE SA, then exit; "
		"SIGUSR1: counters to the log; SIGUSR2: rekey every IKE SA and "
		"its Child SAs now",
	.opts = ike_opts,
	.nopts = sizeof(ike_opts) / sizeof(ike_opts[0]),
	.role = R_N3,
	.init = ikecfg_init_n3iwf,
	.finish = ikecfg_finish,
	.free = ikecfg_free_cb,
};
