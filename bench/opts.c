/* kme-bench's command line: options, their limits, loopback-only URLs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/etsi.h"
#include "common/log.h"
#include "common/num.h"

#include "bench/bench.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: " PROG " [options]\n"
	    "Load client for ETSI GS QKD 014 KMEs: enc_keys as the master SAE at URL A,\n"
	    "then dec_keys of the same key IDs as the slave SAE at URL B. One thread and\n"
	    "one persistent mutual-TLS connection per connection counted by -c.\n"
	    "\n"
	    "  --url-a URL        KME of the master SAE        (env KME_A_URL)\n"
	    "  --url-b URL        KME of the slave SAE         (env KME_B_URL)\n"
	    "  --ca FILE          CA of the KME server certs   (env CA)\n"
	    "  --cert-a FILE      master SAE client cert       (env SAE_A_CERT)\n"
	    "  --key-a FILE       master SAE client key        (env SAE_A_KEY)\n"
	    "  --cert-b FILE      slave SAE client cert        (env SAE_B_CERT)\n"
	    "  --key-b FILE       slave SAE client key         (env SAE_B_KEY)\n"
	    "  --master ID        master SAE ID                (env SAE_A_ID)\n"
	    "  --slave ID         slave SAE ID                 (env SAE_B_ID)\n"
	    "  -c, --conns LIST   connections, e.g. 4 or 1,4; repeatable; each count is\n"
	    "                     run in turn (default 1, max %d)\n"
	    "  -d, --duration S   measured seconds per phase (default 5, max %u)\n"
	    "  --calls N          also stop a phase after N measured calls\n"
	    "  -n, --number N     keys per call (default 13, max %d)\n"
	    "  -s, --size BITS    key size in bits, multiple of 8 (default 256)\n"
	    "  --warmup S         unrecorded seconds before each phase (default 1)\n"
	    "  --enc-only         skip the dec_keys phase\n"
	    "  --path-prefix P    API path prefix (default /api/v1/keys)\n"
	    "  -h, --help         this text\n"
	    "\n"
	    "URLs must be https on 127.0.0.1, localhost or [::1].\n"
	    "Output: a readable block and one `RESULT phase=...` line per phase.\n"
	    "Exit status: 0 all calls succeeded, 1 usage or setup error,\n"
	    "2 some calls failed or a phase had nothing to do.\n",
	    MAX_CONNS, MAX_DURATION_S, ETSI_MAX_KEYS);
}

/* ---- options ----------------------------------------------------------- */

static int
parse_uint_opt(const char *name, const char *s, unsigned min, unsigned max,
    unsigned *out)
{
	if (num_uint(s, min, max, out) == 0)
		return 0;
	log_err("%s \"%s\" is not a whole number in %u..%u", name, s, min, max);
	return -1;
}

static int
parse_conns(struct opts *o, const char *arg)
{
	char tmp[256], *save = NULL, *tok;

	if (strlen(arg) >= sizeof(tmp)) {
		log_err("-c \"%.40s...\" is too long", arg);
		return -1;
	}
	strcpy(tmp, arg);
	if (tmp[0] == '\0' || tmp[0] == ',' || tmp[strlen(tmp) - 1] == ',' ||
	    strstr(tmp, ",,") != NULL) {
		log_err("-c \"%s\" is not a comma list of counts", arg);
		return -1;
	}
	for (tok = strtok_r(tmp, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->nconns == MAX_CONN_RUNS) {
			log_err("-c: more than %d connection counts",
			    MAX_CONN_RUNS);
			return -1;
		}
		if (parse_uint_opt("-c", tok, 1, MAX_CONNS,
			&o->conns[o->nconns]) == -1)
			return -1;
		o->nconns++;
	}
	return 0;
}

static int
check_prefix(const char *p)
{
	size_t len = strlen(p);

	if (len == 0 || len > 200 || p[0] != '/' || p[len - 1] == '/' ||
	    strpbrk(p, "?#% \"\t\r\n") != NULL) {
		log_err(
		    "--path-prefix \"%s\" must start with '/', not end with "
		    "'/', and hold no '?', '#', '%%', quotes or spaces",
		    p);
		return -1;
	}
	return 0;
}

/* https on 127.0.0.1, localhost or [::1]; nothing else is ever loaded. */
static int
check_url(const char *opt, const char *url)
{
	CURLU *u;
	char  *scheme = NULL, *host = NULL, *query = NULL;
	int    rc = -1;

	if ((u = curl_url()) == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		log_err("%s \"%s\" is not a URL", opt, url);
		goto done;
	}
	if (strcmp(scheme, "https") != 0) {
		log_err("%s \"%s\": scheme must be https (mutual TLS)", opt,
		    url);
		goto done;
	}
	if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0 &&
	    strcmp(host, "[::1]") != 0) {
		log_err("%s \"%s\": host \"%s\" refused: only 127.0.0.1, "
			"localhost or [::1] may be loaded from this machine",
		    opt, url, host);
		goto done;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
		log_err("%s \"%s\": no query string allowed", opt, url);
		goto done;
	}
	rc = 0;
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

static int
need(const char *val, const char *opt, const char *env)
{
	if (val != NULL && *val != '\0')
		return 0;
	log_err("%s not given (option %s or environment %s)", opt + 2, opt,
	    env);
	return -1;
}

static int
check_opts(struct opts *o)
{
	if (need(o->url_a, "--url-a", "KME_A_URL") ||
	    need(o->ca, "--ca", "CA") ||
	    need(o->cert_a, "--cert-a", "SAE_A_CERT") ||
	    need(o->key_a, "--key-a", "SAE_A_KEY") ||
	    need(o->master, "--master", "SAE_A_ID") ||
	    need(o->slave, "--slave", "SAE_B_ID"))
		return -1;
	if (!o->enc_only &&
	    (need(o->url_b, "--url-b", "KME_B_URL") ||
		need(o->cert_b, "--cert-b", "SAE_B_CERT") ||
		need(o->key_b, "--key-b", "SAE_B_KEY")))
		return -1;
	if (!etsi_id_valid(o->master) || !etsi_id_valid(o->slave)) {
		log_err("SAE ID \"%s\" or \"%s\" is not a valid ETSI 014 ID",
		    o->master, o->slave);
		return -1;
	}
	if (o->size % 8 != 0) {
		log_err("-s \"%u\" is not a multiple of 8", o->size);
		return -1;
	}
	if (check_prefix(o->prefix) || check_url("--url-a", o->url_a) ||
	    (!o->enc_only && check_url("--url-b", o->url_b)))
		return -1;
	if (o->nconns == 0)
		o->conns[o->nconns++] = 1;
	return 0;
}

static void
opts_defaults(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->url_a = getenv("KME_A_URL");
	o->url_b = getenv("KME_B_URL");
	o->ca = getenv("CA");
	o->master = getenv("SAE_A_ID");
	o->cert_a = getenv("SAE_A_CERT");
	o->key_a = getenv("SAE_A_KEY");
	o->slave = getenv("SAE_B_ID");
	o->cert_b = getenv("SAE_B_CERT");
	o->key_b = getenv("SAE_B_KEY");
	o->prefix = "/api/v1/keys";
	o->duration_s = 5;
	o->warmup_s = 1;
	o->number = 13;
	o->size = 256;
}

enum {
	O_URL_A = 256,
	O_URL_B,
	O_CA,
	O_CERT_A,
	O_KEY_A,
	O_CERT_B,
	O_KEY_B,
	O_MASTER,
	O_SLAVE,
	O_CALLS,
	O_WARMUP,
	O_ENC_ONLY,
	O_PREFIX
};

static const struct option long_opts[] = {
	{ "url-a", required_argument, NULL, O_URL_A },
	{ "url-b", required_argument, NULL, O_URL_B },
	{ "ca", required_argument, NULL, O_CA },
	{ "cert-a", required_argument, NULL, O_CERT_A },
	{ "key-a", required_argument, NULL, O_KEY_A },
	{ "cert-b", required_argument, NULL, O_CERT_B },
	{ "key-b", required_argument, NULL, O_KEY_B },
	{ "master", required_argument, NULL, O_MASTER },
	{ "slave", required_argument, NULL, O_SLAVE },
	{ "conns", required_argument, NULL, 'c' },
	{ "duration", required_argument, NULL, 'd' },
	{ "calls", required_argument, NULL, O_CALLS },
	{ "number", required_argument, NULL, 'n' },
	{ "size", required_argument, NULL, 's' },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "enc-only", no_argument, NULL, O_ENC_ONLY },
	{ "path-prefix", required_argument, NULL, O_PREFIX },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Options that take a number (NUM_OPTS); 0 done, -1 bad value. */
static int
parse_num_opt(struct opts *o, int ch, const char *arg)
{
	switch (ch) {
	case 'c': return parse_conns(o, arg);
	case 'd':
		return parse_uint_opt("-d", arg, 1, MAX_DURATION_S,
		    &o->duration_s);
	case 'n':
		return parse_uint_opt("-n", arg, 1, ETSI_MAX_KEYS, &o->number);
	case 's':
		return parse_uint_opt("-s", arg, 8, ETSI_MAX_KEY_BYTES * 8,
		    &o->size);
	case O_WARMUP:
		return parse_uint_opt("--warmup", arg, 0, MAX_WARMUP_S,
		    &o->warmup_s);
	case O_CALLS:
		if (num_u64(arg, 1, UINT64_C(1000000000), &o->max_calls) == 0)
			return 0;
		log_err("--calls \"%s\" is not a whole number in 1..1000000000",
		    arg);
		return -1;
	}
	return 0;
}

/* 0: run (or o->help: --help shown), -1: error. */
int
bench_opts_parse(struct opts *o, int argc, char **argv)
{
	int ch;

	opts_defaults(o);
	while ((ch = getopt_long(argc, argv, "c:d:n:s:h", long_opts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
		case 'd':
		case 'n':
		case 's':
		case O_WARMUP:
		case O_CALLS:
			if (parse_num_opt(o, ch, optarg) == -1)
				return -1;
			break;
		case O_URL_A: o->url_a = optarg; break;
		case O_URL_B: o->url_b = optarg; break;
		case O_CA: o->ca = optarg; break;
		case O_CERT_A: o->cert_a = optarg; break;
		case O_KEY_A: o->key_a = optarg; break;
		case O_CERT_B: o->cert_b = optarg; break;
		case O_KEY_B: o->key_b = optarg; break;
		case O_MASTER: o->master = optarg; break;
		case O_SLAVE: o->slave = optarg; break;
		case O_ENC_ONLY: o->enc_only = true; break;
		case O_PREFIX: o->prefix = optarg; break;
		case 'h':
			usage(stdout);
			o->help = true;
			return 0;
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		log_err("unexpected argument \"%s\"", argv[optind]);
		return -1;
	}
	return check_opts(o);
}
