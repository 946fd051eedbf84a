/*
 * Test driver: ONE side of the data plane (ike/dp.h) with static Child
 * SAs, for tests/integ/test_dp.sh (two of them in two network
 * namespaces). It opens what the IKE endpoint would (ike_net_listen: an
 * IKE socket on an ephemeral port and the NAT-T socket on --local), a
 * TUN device, and the engine beside the NAT-T socket; it logs every IKE
 * datagram that reaches the IKE side and writes the engine's counters
 * (dp_stats_write) plus "ike_datagrams N" to --status every 100 ms and
 * at exit (SIGTERM, SIGINT).
 *
 *   dp-pair --role ue|n3iwf --profile nwu|rfc7296 --alg gcm|cbc
 *           --local A:PORT --peer B:PORT --tun NAME --tun-addr A/LEN
 *           --inner UE_INNER --nas-ip NAS_IP --qfi N --esn 0|1
 *           --keys FILE --status FILE
 *
 * SPIs are fixed: UE -> N3IWF 0xa001 (signalling), 0xa002 (user plane);
 * N3IWF -> UE 0xb001, 0xb002; rfc7296 has the user-plane pair only (no
 * GRE). --keys names a file of mode 0600 (anything looser is refused)
 * with lines "NAME HEX": sig.u2n.enc, sig.n2u.enc, up.u2n.enc,
 * up.n2u.enc (GCM: 36 bytes, key | salt; CBC: 32) and for CBC the same
 * with .integ (32 bytes). The key bytes are never printed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/num.h"
#include "ike/dp.h"
#include "ike/net.h"
#include "ike/tun.h"

#define KEY_MAX	  64
#define NKEYS	  8
#define LINE_MAX_ 512

static volatile sig_atomic_t stop;

struct opts {
	const char	  *role, *profile, *alg, *tun, *keys, *status;
	struct sockaddr_in local, peer;
	struct in_addr	   tun_addr, inner, nas_ip;
	unsigned	   prefix, qfi;
	bool		   esn;
};

/* Key material read from --keys, in secret memory. */
struct keys {
	uint8_t (*k)[KEY_MAX]; /* NKEYS, sec_alloc */
	size_t len[NKEYS];
};

static const char *const key_names[NKEYS] = { "sig.u2n.enc", "sig.u2n.integ",
	"sig.n2u.enc", "sig.n2u.integ", "up.u2n.enc", "up.u2n.integ",
	"up.n2u.enc", "up.n2u.integ" };

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
unhex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(s);

	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	*len = n / 2;
	return num_unhex(s, out, n / 2);
}

static int
keys_line(struct keys *k, char *line, unsigned lno)
{
	char *save = NULL, *name, *hex;
	int   i;

	name = strtok_r(line, " \t\r\n", &save);
	hex = strtok_r(NULL, " \t\r\n", &save);

	if (name == NULL || name[0] == '#')
		return 0;
	for (i = 0; i < NKEYS && strcmp(key_names[i], name) != 0; i++)
		;
	if (i == NKEYS || hex == NULL ||
	    unhex(hex, k->k[i], KEY_MAX, &k->len[i]) == -1) {
		/* the name only: the value may be a key */
		fprintf(stderr, "dp-pair: keys line %u: bad entry \"%s\"\n",
		    lno, name);
		return -1;
	}
	return 0;
}

static int
keys_read(const char *path, struct keys *k)
{
	char	    line[LINE_MAX_];
	struct stat st;
	FILE	   *f;
	unsigned    lno = 0;
	int	    rc = 0;

	if ((f = fopen(path, "r")) == NULL || fstat(fileno(f), &st) == -1) {
		fprintf(stderr, "dp-pair: %s: %s\n", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		fprintf(stderr, "dp-pair: %s: mode %03o, want 0600\n", path,
		    (unsigned)(st.st_mode & 0777));
		fclose(f);
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL)
		rc = keys_line(k, line, ++lno);
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return rc;
}

/* One esp_sa from key set base (0: sig, 4: up), direction u2n or n2u. */
static struct esp_sa *
sa_make(const struct opts *o, const struct keys *k, int base, bool u2n,
    bool outbound, uint32_t spi)
{
	struct esp_sa_cfg c = { 0 };
	struct esp_sa	 *sa;
	char		  err[256];
	int		  i = base + (u2n ? 0 : 2);

	c.spi = htonl(spi);
	c.alg = strcmp(o->alg, "gcm") == 0 ? ESP_AES_GCM_256 :
					     ESP_AES_CBC_256_SHA256;
	c.esn = o->esn;
	c.outbound = outbound;
	c.enc_key = k->k[i];
	c.enc_len = k->len[i];
	if (c.alg == ESP_AES_CBC_256_SHA256) {
		c.integ_key = k->k[i + 1];
		c.integ_len = k->len[i + 1];
	}
	if ((sa = esp_sa_new(&c, err, sizeof(err))) == NULL)
		fprintf(stderr, "dp-pair: SA 0x%x (%s): %s\n", spi,
		    key_names[i], err);
	return sa;
}

/* Installs the pair of one kind: UE -> N3IWF SPI 0xa00n, back 0xb00n. */
static int
pair_add(struct dp *dp, const struct opts *o, const struct keys *k,
    enum dp_kind kind)
{
	bool		ue = strcmp(o->role, "ue") == 0;
	int		base = kind == DP_SIGNALLING ? 0 : 4;
	unsigned	n = kind == DP_SIGNALLING ? 1 : 2;
	struct dp_child c = { 0 };
	char		err[256];

	c.in = sa_make(o, k, base, !ue, false, (ue ? 0xb000 : 0xa000) + n);
	c.out = sa_make(o, k, base, ue, true, (ue ? 0xa000 : 0xb000) + n);
	c.peer = o->peer;
	c.kind = kind;
	c.gre = kind == DP_USER && strcmp(o->profile, "nwu") == 0;
	c.qfi = (uint8_t)o->qfi;
	c.inner = o->inner;
	if (c.in == NULL || c.out == NULL) {
		esp_sa_free(c.in);
		esp_sa_free(c.out);
		return -1;
	}
	if (dp_child_add(dp, &c, err, sizeof(err)) == -1) {
		fprintf(stderr, "dp-pair: %s\n", err);
		return -1;
	}
	return 0;
}

static int
addr_opt(const char *v, struct sockaddr_in *a)
{
	char	 host[64];
	uint16_t port;

	return num_hostport(v, host, sizeof(host), &port, false) == -1 ||
		ike_addr_parse(host, port, a) == -1 ?
	    -1 :
	    0;
}

static int
prefix_opt(const char *v, struct in_addr *a, unsigned *prefix)
{
	char  ip[INET_ADDRSTRLEN];
	char *slash = strchr(v, '/');

	if (slash == NULL || (size_t)(slash - v) >= sizeof(ip))
		return -1;
	memcpy(ip, v, (size_t)(slash - v));
	ip[slash - v] = '\0';
	return inet_pton(AF_INET, ip, a) == 1 &&
		num_uint(slash + 1, 0, 32, prefix) == 0 ?
	    0 :
	    -1;
}

static int
opt_set(struct opts *o, const char *k, const char *v)
{
	unsigned u;

	if (strcmp(k, "--role") == 0)
		o->role = v;
	else if (strcmp(k, "--profile") == 0)
		o->profile = v;
	else if (strcmp(k, "--alg") == 0)
		o->alg = v;
	else if (strcmp(k, "--tun") == 0)
		o->tun = v;
	else if (strcmp(k, "--keys") == 0)
		o->keys = v;
	else if (strcmp(k, "--status") == 0)
		o->status = v;
	else if (strcmp(k, "--local") == 0)
		return addr_opt(v, &o->local);
	else if (strcmp(k, "--peer") == 0)
		return addr_opt(v, &o->peer);
	else if (strcmp(k, "--tun-addr") == 0)
		return prefix_opt(v, &o->tun_addr, &o->prefix);
	else if (strcmp(k, "--inner") == 0)
		return inet_pton(AF_INET, v, &o->inner) == 1 ? 0 : -1;
	else if (strcmp(k, "--nas-ip") == 0)
		return inet_pton(AF_INET, v, &o->nas_ip) == 1 ? 0 : -1;
	else if (strcmp(k, "--qfi") == 0)
		return num_uint(v, 0, 63, &o->qfi);
	else if (strcmp(k, "--esn") == 0) {
		if (num_uint(v, 0, 1, &u) == -1)
			return -1;
		o->esn = u == 1;
	} else
		return -1;
	return 0;
}

static int
opts_parse(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->profile = "nwu";
	o->alg = "gcm";
	o->qfi = 1;
	for (int i = 1; i < argc; i += 2)
		if (i + 1 >= argc || opt_set(o, argv[i], argv[i + 1]) == -1) {
			fprintf(stderr, "dp-pair: bad option \"%s\"%s%s\n",
			    argv[i], i + 1 < argc ? " value " : "",
			    i + 1 < argc ? argv[i + 1] : "");
			return -1;
		}
	if (o->role == NULL || o->tun == NULL || o->keys == NULL ||
	    o->status == NULL || o->local.sin_port == 0 ||
	    o->peer.sin_port == 0 || o->inner.s_addr == 0 ||
	    (strcmp(o->role, "ue") != 0 && strcmp(o->role, "n3iwf") != 0) ||
	    (strcmp(o->alg, "gcm") != 0 && strcmp(o->alg, "cbc") != 0) ||
	    (strcmp(o->profile, "nwu") != 0 &&
		strcmp(o->profile, "rfc7296") != 0)) {
		fprintf(stderr,
		    "dp-pair: need --role ue|n3iwf --tun --keys "
		    "--status --local --peer --inner; --alg "
		    "gcm|cbc, --profile nwu|rfc7296\n");
		return -1;
	}
	return 0;
}

/* The counters to PATH.tmp, then renamed over PATH (readers see whole
 * files). */
static void
status_write(struct dp *dp, const char *path, unsigned long ike_n)
{
	char  tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "ike_datagrams %lu\n", ike_n);
	if (dp_stats_write(dp, f) == -1 || fclose(f) == EOF ||
	    rename(tmp, path) == -1)
		log_warn("status file %s: %s", path, strerror(errno));
}

/* The IKE side: counts what reaches the NAT-T socket, until a signal. */
static void
ike_loop(struct dp *dp, struct ike_net *net, const char *status)
{
	static struct ike_pkt p;
	unsigned long	      n = 0;
	char		      from[64];

	while (!stop) {
		if (ike_net_recv(net, 100, &p) == 1) {
			ike_addr_str(&p.from, from, sizeof(from));
			log_info("ike socket: %zu-byte IKE message from %s "
				 "(natt=%d)",
			    p.len, from, p.natt);
			n++;
		}
		status_write(dp, status, n);
	}
	status_write(dp, status, n);
}

static int
run(const struct opts *o, struct dp *dp, const struct keys *k)
{
	if (strcmp(o->profile, "nwu") == 0 &&
	    pair_add(dp, o, k, DP_SIGNALLING) == -1)
		return -1;
	return pair_add(dp, o, k, DP_USER);
}

int
main(int argc, char **argv)
{
	struct opts    o;
	struct keys    k = { 0 };
	struct ike_net net = { .fd = -1, .fd_natt = -1 };
	struct dp_cfg  c = { 0 };
	struct dp     *dp = NULL;
	char	       err[256], ifname[IFNAMSIZ], host[INET_ADDRSTRLEN];
	int	       tun = -1, rc = 1;

	log_init("dp-pair", LOG_INFO);
	sec_harden();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (opts_parse(argc, argv, &o) == -1)
		return 2;
	if ((k.k = sec_alloc(NKEYS * KEY_MAX)) == NULL ||
	    keys_read(o.keys, &k) == -1)
		goto done;
	inet_ntop(AF_INET, &o.local.sin_addr, host, sizeof(host));
	/* The IKE side first: its NAT-T socket opens the SO_REUSEPORT
	 * group, member 0. */
	if (ike_net_listen(&net, host, 0, ntohs(o.local.sin_port), err,
		sizeof(err)) == -1 ||
	    (tun = tun_setup(o.tun, o.tun_addr, o.prefix, 0, ifname, err,
		 sizeof(err))) == -1) {
		fprintf(stderr, "dp-pair: %s\n", err);
		goto done;
	}
	c.role = strcmp(o.role, "ue") == 0 ? DP_ROLE_UE : DP_ROLE_N3IWF;
	c.tun_fd = tun;
	c.local = net.natt_addr;
	c.nas_ip = o.nas_ip;
	err[0] = '\0'; /* run() reports its own failures */
	if ((dp = dp_new(&c, err, sizeof(err))) == NULL ||
	    run(&o, dp, &k) == -1 || dp_start(dp, err, sizeof(err)) == -1) {
		if (err[0] != '\0')
			fprintf(stderr, "dp-pair: %s\n", err);
		goto done;
	}
	log_info("up: %s %s %s on %s, ESP on UDP %u", o.role, o.profile, o.alg,
	    ifname, ntohs(o.local.sin_port));
	ike_loop(dp, &net, o.status);
	rc = 0;
done:
	dp_free(dp);
	tun_close(tun);
	ike_net_close(&net);
	if (k.k != NULL)
		sec_free(k.k, NKEYS * KEY_MAX);
	log_info("exit %d", rc);
	return rc;
}
