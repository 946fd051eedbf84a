/* Config of ike-n3iwf / ike-ue: INI [ike] section and flags through one setter. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>

#include "common/cfg.h"
#include "common/etsi.h"
#include "common/num.h"
#include "ike/ikecfg.h"

#define R_UE	1u
#define R_N3	2u
#define R_ALL	3u

const struct ikecfg_flag ikecfg_flags[] = {
	{ "mode",	"mode",		"psk, cert, qkd or qkd+dh (qkd)", R_ALL },
	{ "profile",	"profile",	"nwu (3GPP NWu, EAP-5G) or rfc7296 (nwu)", R_ALL },
	{ "listen",	"listen",	"N3IWF address, IPV4:PORT (127.0.0.1:500)", R_N3 },
	{ "peer",	"peer",		"the N3IWF, IPV4:PORT (127.0.0.1:500)", R_UE },
	{ "local",	"local",	"UE source address (127.0.0.1)", R_UE },
	{ "natt-port",	"natt_port",	"NAT-T port, non-ESP marker (4500)", R_ALL },
	{ "force-natt",	"force_natt",	"yes: move to the NAT-T port after INIT (no)", R_UE },
	{ "dh",		"dh",		"DH group: 14 (MODP-2048), 19 (ECP-256), 31 (X25519) (14)", R_ALL },
	{ "cipher",	"cipher",	"aes-cbc (AES-CBC-256 + HMAC-SHA2-256-128) or aes-gcm (aes-cbc)", R_ALL },
	{ "psk",	"psk",		"pre-shared key (rfc7296 psk and qkd+dh modes)", R_ALL },
	{ "cert",	"cert",		"own certificate, PEM (cert mode; N3IWF in nwu)", R_ALL },
	{ "key",	"key",		"its private key, PEM", R_ALL },
	{ "ca",		"ca",		"CA the peer's certificate must chain to", R_ALL },
	{ "id",		"id",		"own IKE identity, FQDN (ue.test / n3iwf.test)", R_ALL },
	{ "kmsd-url",	"kmsd_url",	"the site's kmsd, https://HOST:PORT", R_ALL },
	{ "kmsd-cert",	"kmsd_cert",	"client certificate for kmsd (its CN is the SAE ID)", R_ALL },
	{ "kmsd-key",	"kmsd_key",	"its private key", R_ALL },
	{ "kmsd-ca",	"kmsd_ca",	"CA of kmsd's server certificate", R_ALL },
	{ "sae-id",	"sae_id",	"own SAE ID (default: CN of --kmsd-cert)", R_ALL },
	{ "peer-sae",	"peer_sae",	"the peer's SAE ID (UE: the N3IWF's, sae-a)", R_ALL },
	{ "kmsd-timeout-ms", "kmsd_timeout_ms", "per kmsd call (3000)", R_ALL },
	{ "ppk-required", "ppk_required", "qkd+dh: refuse to fall back to NO_PPK_AUTH (no)", R_ALL },
	{ "supi",	"supi",		"subscriber IMSI digits (208930000000001)", R_ALL },
	{ "k",		"k",		"subscriber K, 32 hex digits (TS 35.208 test set 1)", R_ALL },
	{ "opc",	"opc",		"subscriber OPc, 32 hex digits (TS 35.208 test set 1)", R_ALL },
	{ "inner-ip",	"inner_ip",	"UE inner address given in CP (10.60.0.2)", R_N3 },
	{ "nas-ip",	"nas_ip",	"NAS_IP4_ADDRESS (10.60.0.1)", R_N3 },
	{ "up-ip",	"up_ip",	"UP_IP4_ADDRESS (10.60.0.1)", R_N3 },
	{ "nas-port",	"nas_port",	"NAS_TCP_PORT (20000)", R_N3 },
	{ "count",	"count",	"connections in a row, each a fresh IKE SA (1)", R_UE },
	{ "max-conns",	"max_conns",	"exit after this many connections (0: until SIGTERM)", R_N3 },
	{ "cookie-threshold", "cookie_threshold", "half-open SAs before COOKIE is demanded (16)", R_N3 },
	{ "half-open-ms", "half_open_ms", "half-open SA lifetime (10000)", R_N3 },
	{ "qkd-cookie",	"qkd_cookie",	"qkd modes: demand a COOKIE before any key is drawn (yes)", R_N3 },
	{ "qkd-budget-src", "qkd_budget_src", "QKD keys per source address, BURST:RATE keys/s or off (65:1.3)", R_N3 },
	{ "qkd-budget-sae", "qkd_budget_sae", "QKD keys per claimed SAE ID, BURST:RATE or off (650:16)", R_N3 },
	{ "qkd-budget-all", "qkd_budget_all", "QKD keys in total, BURST:RATE or off (1300:16)", R_N3 },
	{ "kmsd-workers", "kmsd_workers", "threads making enc_keys calls, each with its own kmsd connection (2)", R_N3 },
	{ "kmsd-queue",	"kmsd_queue",	"enc_keys calls queued or in flight at most (64)", R_N3 },
	{ "retransmit-ms", "retransmit_ms", "first retransmission timeout, doubled each time (500)", R_ALL },
	{ "retransmit-tries", "retransmit_tries", "sends of one request before giving up (5)", R_ALL },
	{ "csv",	"csv",		"append one row per connection to this CSV", R_ALL },
	{ "csv-msgs",	"csv_msgs",	"append one row per IKE message here (default: CSV with .msgs)", R_ALL },
	{ "ready-file",	"ready_file",	"write port=, natt_port=, pid= here when up", R_N3 },
	{ "propose-ke",	"peer_transform", "test hook: propose this KE transform ID instead (0: off)", R_UE },
	{ "ppk-key-id", "ppk_key_id", "qkd+dh: use this key ID as the PPK (dec_keys from --peer-sae, which fetched it) instead of a new key", R_UE },
	{ "log-level",	"log_level",	"error, warn, info or debug (info)", R_ALL },
};
const size_t ikecfg_nflags = sizeof(ikecfg_flags) / sizeof(ikecfg_flags[0]);

static const char *mode_names[] = { "psk", "cert", "qkd", "qkd+dh" };

const char *
ike_mode_name(enum ike_mode m)
{
	return (unsigned)m < 4 ? mode_names[m] : "?";
}

const char *
ike_profile_name(enum ike_profile p)
{
	return p == IKE_PROFILE_NWU ? "nwu" : "rfc7296";
}

int
ike_mode_parse(const char *s, enum ike_mode *out)
{
	for (unsigned i = 0; i < 4; i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum ike_mode)i;
			return 0;
		}
	return -1;
}

int
ike_mode_has_dh(enum ike_mode m)
{
	return m != IKE_MODE_QKD;
}

int
ike_mode_has_qkd(enum ike_mode m)
{
	return m == IKE_MODE_QKD || m == IKE_MODE_QKD_DH;
}

void
ikecfg_defaults(struct ikecfg *c, enum ike_role role)
{
	memset(c, 0, sizeof(*c));
	c->role = role;
	c->mode = IKE_MODE_QKD;
	c->profile = IKE_PROFILE_NWU;
	c->log_level = LOG_INFO;
	snprintf(c->host, sizeof(c->host), "127.0.0.1");
	snprintf(c->local, sizeof(c->local), "127.0.0.1");
	c->port = 500;
	c->natt_port = 4500;
	c->dh_group = 14;
	c->kmsd_timeout_ms = 3000;
	snprintf(c->inner_ip, sizeof(c->inner_ip), "10.60.0.2");
	snprintf(c->nas_ip, sizeof(c->nas_ip), "10.60.0.1");
	snprintf(c->up_ip, sizeof(c->up_ip), "10.60.0.1");
	c->nas_port = 20000;
	c->count = 1;
	c->cookie_threshold = 16;
	c->half_open_ms = 10000;
	/* Budgets in keys: one qkd connection draws 13 (ike/README.md). */
	c->qkd_cookie = 1;
	c->budget_src = (struct ike_tb_cfg){ 65, 1.3 };
	c->budget_sae = (struct ike_tb_cfg){ 650, 16 };
	c->budget_all = (struct ike_tb_cfg){ 1300, 16 };
	c->kmsd_workers = 2;
	c->kmsd_queue = 64;
	c->retrans_ms = 500;
	c->retrans_tries = 5;
}

static int
set_bool(int *dst, const char *name, const char *v, char *err, size_t errlen)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0)
		*dst = 1;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcmp(v, "0") == 0)
		*dst = 0;
	else {
		snprintf(err, errlen, "%s \"%s\" is not yes or no", name, v);
		return -1;
	}
	return 0;
}

static int
set_ip(char *dst, size_t cap, const char *name, const char *v, char *err,
    size_t errlen)
{
	struct in_addr	a;

	if (strlen(v) >= cap || inet_pton(AF_INET, v, &a) != 1) {
		snprintf(err, errlen, "%s \"%s\" is not an IPv4 address", name, v);
		return -1;
	}
	snprintf(dst, cap, "%s", v);
	return 0;
}

static int
set_port(uint16_t *dst, const char *name, const char *v, char *err, size_t errlen)
{
	unsigned	u;

	if (cfg_uint(&u, name, v, 0, 65535, err, errlen) == -1)
		return -1;
	*dst = (uint16_t)u;
	return 0;
}

static int
set_str(char **dst, const char *v, char *err, size_t errlen)
{
	if (cfg_str(dst, v) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
set_enum(struct ikecfg *c, const char *name, const char *v, char *err,
    size_t errlen)
{
	if (strcmp(name, "mode") == 0) {
		if (ike_mode_parse(v, &c->mode) == 0)
			return 0;
		snprintf(err, errlen, "mode \"%s\" is not psk, cert, qkd or qkd+dh", v);
	} else if (strcmp(name, "profile") == 0) {
		if (strcmp(v, "nwu") == 0 || strcmp(v, "rfc7296") == 0) {
			c->profile = v[0] == 'n' ? IKE_PROFILE_NWU : IKE_PROFILE_RFC7296;
			return 0;
		}
		snprintf(err, errlen, "profile \"%s\" is not nwu or rfc7296", v);
	} else if (strcmp(name, "cipher") == 0) {
		if (strcmp(v, "aes-cbc") == 0 || strcmp(v, "aes-gcm") == 0) {
			c->aead = strcmp(v, "aes-gcm") == 0;
			return 0;
		}
		snprintf(err, errlen, "cipher \"%s\" is not aes-cbc or aes-gcm", v);
	} else if (strcmp(name, "log_level") == 0) {
		if (log_level_parse(v, &c->log_level) == 0)
			return 0;
		snprintf(err, errlen, "log_level \"%s\" is not error, warn, info or debug", v);
	} else if (strcmp(name, "dh") == 0) {
		if (strcmp(v, "14") == 0 || strcmp(v, "19") == 0 || strcmp(v, "31") == 0) {
			c->dh_group = (unsigned)atoi(v);
			return 0;
		}
		snprintf(err, errlen, "dh \"%s\" is not 14, 19 or 31", v);
	} else
		return 1;
	return -1;
}

static int
set_addr(struct ikecfg *c, const char *name, const char *v, char *err,
    size_t errlen)
{
	if (strcmp(name, "listen") == 0 || strcmp(name, "peer") == 0) {
		if (strcmp(name, "listen") == 0 && c->role != IKE_ROLE_N3IWF)
			return 1;
		if (strcmp(name, "peer") == 0 && c->role != IKE_ROLE_UE)
			return 1;
		return cfg_addr(c->host, sizeof(c->host), &c->port, name, v, err,
		    errlen);
	}
	if (strcmp(name, "local") == 0)
		return set_ip(c->local, sizeof(c->local), name, v, err, errlen);
	if (strcmp(name, "inner_ip") == 0)
		return set_ip(c->inner_ip, sizeof(c->inner_ip), name, v, err, errlen);
	if (strcmp(name, "nas_ip") == 0)
		return set_ip(c->nas_ip, sizeof(c->nas_ip), name, v, err, errlen);
	if (strcmp(name, "up_ip") == 0)
		return set_ip(c->up_ip, sizeof(c->up_ip), name, v, err, errlen);
	if (strcmp(name, "natt_port") == 0)
		return set_port(&c->natt_port, name, v, err, errlen);
	if (strcmp(name, "nas_port") == 0)
		return set_port(&c->nas_port, name, v, err, errlen);
	return 1;
}

static int
set_num(struct ikecfg *c, const char *name, const char *v, char *err,
    size_t errlen)
{
	static const struct {
		const char	*name;
		size_t		 off;
		unsigned	 min, max;
	} nums[] = {
		{ "kmsd_timeout_ms", offsetof(struct ikecfg, kmsd_timeout_ms), 1, 600000 },
		{ "count", offsetof(struct ikecfg, count), 1, 1000000 },
		{ "max_conns", offsetof(struct ikecfg, max_conns), 0, 100000000 },
		{ "cookie_threshold", offsetof(struct ikecfg, cookie_threshold), 0, 1000000 },
		{ "half_open_ms", offsetof(struct ikecfg, half_open_ms), 10, 3600000 },
		{ "kmsd_workers", offsetof(struct ikecfg, kmsd_workers), 1, 64 },
		{ "kmsd_queue", offsetof(struct ikecfg, kmsd_queue), 1, 100000 },
		{ "retransmit_ms", offsetof(struct ikecfg, retrans_ms), 10, 60000 },
		{ "retransmit_tries", offsetof(struct ikecfg, retrans_tries), 1, 20 },
		{ "peer_transform", offsetof(struct ikecfg, peer_transform), 0, 65535 },
	};

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (strcmp(name, nums[i].name) == 0)
			return cfg_uint((unsigned *)(void *)((char *)c + nums[i].off),
			    name, v, nums[i].min, nums[i].max, err, errlen);
	return 1;
}

static int
set_strs(struct ikecfg *c, const char *name, const char *v, char *err,
    size_t errlen)
{
	static const struct {
		const char	*name;
		size_t		 off;
	} strs[] = {
		{ "psk", offsetof(struct ikecfg, psk) },
		{ "cert", offsetof(struct ikecfg, cert) },
		{ "key", offsetof(struct ikecfg, key) },
		{ "ca", offsetof(struct ikecfg, ca) },
		{ "id", offsetof(struct ikecfg, id) },
		{ "kmsd_url", offsetof(struct ikecfg, kmsd_url) },
		{ "kmsd_cert", offsetof(struct ikecfg, kmsd_cert) },
		{ "kmsd_key", offsetof(struct ikecfg, kmsd_key) },
		{ "kmsd_ca", offsetof(struct ikecfg, kmsd_ca) },
		{ "sae_id", offsetof(struct ikecfg, sae_id) },
		{ "peer_sae", offsetof(struct ikecfg, peer_sae) },
		{ "supi", offsetof(struct ikecfg, supi) },
		{ "k", offsetof(struct ikecfg, k_hex) },
		{ "opc", offsetof(struct ikecfg, opc_hex) },
		{ "csv", offsetof(struct ikecfg, csv) },
		{ "csv_msgs", offsetof(struct ikecfg, csv_msgs) },
		{ "ready_file", offsetof(struct ikecfg, ready_file) },
		{ "ppk_key_id", offsetof(struct ikecfg, ppk_key_id) },
	};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (strcmp(name, strs[i].name) == 0) {
			if (*v == '\0') {
				snprintf(err, errlen, "%s is empty", name);
				return -1;
			}
			return set_str((char **)(void *)((char *)c + strs[i].off),
			    v, err, errlen);
		}
	return 1;
}

int
ikecfg_set(void *ctx, const char *section, const char *name, const char *value,
    char *err, size_t errlen)
{
	struct ikecfg	*c = ctx;
	int		 r;

	if (strcmp(section, "ike") != 0) {
		snprintf(err, errlen, "unknown section [%s] (only [ike])", section);
		return -1;
	}
	if (strcmp(name, "force_natt") == 0)
		return set_bool(&c->force_natt, name, value, err, errlen);
	if (strcmp(name, "ppk_required") == 0)
		return set_bool(&c->ppk_required, name, value, err, errlen);
	if (strcmp(name, "qkd_cookie") == 0)
		return set_bool(&c->qkd_cookie, name, value, err, errlen);
	if (strcmp(name, "qkd_budget_src") == 0)
		return ike_tb_parse(name, value, &c->budget_src, err, errlen);
	if (strcmp(name, "qkd_budget_sae") == 0)
		return ike_tb_parse(name, value, &c->budget_sae, err, errlen);
	if (strcmp(name, "qkd_budget_all") == 0)
		return ike_tb_parse(name, value, &c->budget_all, err, errlen);
	if ((r = set_enum(c, name, value, err, errlen)) != 1)
		return r;
	if ((r = set_addr(c, name, value, err, errlen)) != 1)
		return r;
	if ((r = set_num(c, name, value, err, errlen)) != 1)
		return r;
	if ((r = set_strs(c, name, value, err, errlen)) != 1)
		return r;
	snprintf(err, errlen, "unknown setting \"%s\"", name);
	return -1;
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
	if (need(c->kmsd_url, "--kmsd-url", "in qkd modes", err, errlen) == -1 ||
	    need(c->kmsd_cert, "--kmsd-cert", "in qkd modes", err, errlen) == -1 ||
	    need(c->kmsd_key, "--kmsd-key", "in qkd modes", err, errlen) == -1)
		return -1;
	/* The UE names the N3IWF's SAE (dec_keys in qkd; enc_keys slave in qkd+dh). */
	if (c->role == IKE_ROLE_UE &&
	    need(c->peer_sae, "--peer-sae", "on the UE in qkd modes", err, errlen) == -1)
		return -1;
	if (c->sae_id != NULL && !etsi_id_valid(c->sae_id)) {
		snprintf(err, errlen, "sae_id \"%s\" is not a valid SAE ID", c->sae_id);
		return -1;
	}
	if (c->peer_sae != NULL && !etsi_id_valid(c->peer_sae)) {
		snprintf(err, errlen, "peer_sae \"%s\" is not a valid SAE ID", c->peer_sae);
		return -1;
	}
	return 0;
}

int
ikecfg_finish(struct ikecfg *c, char *err, size_t errlen)
{
	int	n3 = c->role == IKE_ROLE_N3IWF;

	if (c->id == NULL && set_str(&c->id, n3 ? "n3iwf.test" : "ue.test", err,
	    errlen) == -1)
		return -1;
	if (c->port == 0 && !n3) {
		snprintf(err, errlen, "peer port 0 is not a port");
		return -1;
	}
	if (c->profile == IKE_PROFILE_RFC7296 &&
	    (c->mode == IKE_MODE_PSK || c->mode == IKE_MODE_QKD_DH) &&
	    need(c->psk, "--psk", "in rfc7296 psk and qkd+dh modes", err, errlen) == -1)
		return -1;
	if (c->mode == IKE_MODE_CERT || (n3 && c->profile == IKE_PROFILE_NWU)) {
		if (need(c->cert, "--cert", n3 ? "(the N3IWF signs its AUTH)" :
		    "in cert mode", err, errlen) == -1 ||
		    need(c->key, "--key", "with --cert", err, errlen) == -1)
			return -1;
	}
	if ((c->mode == IKE_MODE_CERT || (!n3 && c->profile == IKE_PROFILE_NWU)) &&
	    need(c->ca, "--ca", "to verify the peer's certificate", err, errlen) == -1)
		return -1;
	if (finish_qkd(c, err, errlen) == -1)
		return -1;
	if (c->csv != NULL && c->csv_msgs == NULL) {
		size_t	 n = strlen(c->csv);
		char	*m = malloc(n + 6);

		if (m == NULL)
			return -1;
		if (n > 4 && strcmp(c->csv + n - 4, ".csv") == 0)
			snprintf(m, n + 6, "%.*s.msgs.csv", (int)(n - 4), c->csv);
		else
			snprintf(m, n + 6, "%s.msgs", c->csv);
		c->csv_msgs = m;
	}
	return 0;
}

void
ikecfg_free(struct ikecfg *c)
{
	char	**strs[] = { &c->psk, &c->cert, &c->key, &c->ca, &c->id,
	    &c->kmsd_url, &c->kmsd_cert, &c->kmsd_key, &c->kmsd_ca, &c->sae_id,
	    &c->peer_sae, &c->supi, &c->k_hex, &c->opc_hex, &c->csv,
	    &c->csv_msgs, &c->ready_file, &c->ppk_key_id };

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (*strs[i] != NULL)
			explicit_bzero(*strs[i], strlen(*strs[i]));
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

static void
usage(FILE *f, enum ike_role role)
{
	int	ue = role == IKE_ROLE_UE;

	fprintf(f, "usage: %s [--config FILE] [options]\n\n%s\n"
	    "Flags override the config file (INI, section [ike], setting names as\n"
	    "below with '_' for '-'). See ike/README.md.\n\n",
	    ue ? "ike-ue" : "ike-n3iwf",
	    ue ? "IKEv2 initiator (the 5G UE on NWu): connects to ike-n3iwf, with QKD\n"
	    "keys from its site's kmsd in the qkd modes." :
	    "IKEv2 responder (the N3IWF on NWu) with an AMF emulator inside, QKD\n"
	    "keys from its site's kmsd in the qkd modes.");
	for (size_t i = 0; i < ikecfg_nflags; i++)
		if (ikecfg_flags[i].roles & (ue ? R_UE : R_N3))
			fprintf(f, "  --%-18s %s\n", ikecfg_flags[i].flag,
			    ikecfg_flags[i].help);
	fprintf(f, "  --%-18s %s\n  -h, --help            this text\n",
	    "config FILE", "INI file read before the flags");
	if (!ue)
		fprintf(f, "\nsignals: SIGTERM/SIGINT: Delete every IKE SA, then exit\n");
	else
		fprintf(f, "\nexit status: 0 when every connection completed, 1 otherwise\n");
}

int
ikecfg_from_args(struct ikecfg *c, enum ike_role role, int argc, char **argv,
    char *err, size_t errlen)
{
	struct option	*opts;
	const char	*cfgfile = NULL;
	int		 ch, idx, ret = -1;

	ikecfg_defaults(c, role);
	if ((opts = calloc(ikecfg_nflags + 3, sizeof(*opts))) == NULL)
		return -1;
	for (size_t i = 0; i < ikecfg_nflags; i++)
		opts[i] = (struct option){ ikecfg_flags[i].flag, required_argument, NULL, 0 };
	opts[ikecfg_nflags] = (struct option){ "config", required_argument, NULL, 'c' };
	opts[ikecfg_nflags + 1] = (struct option){ "help", no_argument, NULL, 'h' };
	/* Pass 1: --help and --config. */
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (ch == 'h') {
			usage(stdout, role);
			free(opts);
			exit(0);
		}
		if (ch == 'c')
			cfgfile = optarg;
	}
	if (cfgfile && cfg_load(cfgfile, ikecfg_set, c, err, errlen) == -1)
		goto done;
	/* Pass 2: the flags, in order, over the file. */
	opterr = 1;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		if (ch == '?') {
			snprintf(err, errlen, "bad flag (see --help)");
			goto done;
		}
		if (ch != 0)
			continue;
		if (!(ikecfg_flags[idx].roles & (role == IKE_ROLE_UE ? R_UE : R_N3))) {
			snprintf(err, errlen, "--%s is not a flag of this program",
			    ikecfg_flags[idx].flag);
			goto done;
		}
		if (ikecfg_set(c, "ike", ikecfg_flags[idx].name, optarg, err,
		    errlen) == -1) {
			size_t	n = strlen(err);

			snprintf(err + n, errlen - n, " (flag --%s)", ikecfg_flags[idx].flag);
			goto done;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
		goto done;
	}
	ret = ikecfg_finish(c, err, errlen);
done:
	free(opts);
	return ret;
}
