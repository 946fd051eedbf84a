/*
 * kmsclient: a curl-like ETSI GS QKD 014 client for poking a KME, qkd-sim
 * or kmsd. Subcommands status, enc and dec; see usage() and README.md.
 * Exit codes: 0 ok, 1 the KME refused or answered nonsense, 2 usage error,
 * 3 transport, TLS or local error.
 */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/etsi.h"
#include "common/num.h"
#include "kmsclient/kmsclient.h"

#define EX_OK	     0
#define EX_REFUSED   1
#define EX_USAGE     2
#define EX_TRANSPORT 3

struct gopts {
	struct kms_client_cfg cfg;
	bool		      json;
};

struct subcmd {
	const char *name;
	int (*fn)(int, char **, struct gopts *);
	const char *help;
};

static int status_main(int, char **, struct gopts *);
static int enc_main(int, char **, struct gopts *);
static int dec_main(int, char **, struct gopts *);

static const struct subcmd subcmds[] = {
	{ "status", status_main,
	    "status SLAVE_SAE_ID\n"
	    "  Get status: key counts and limits for keys shared with SLAVE_SAE_ID.\n" },
	{ "enc", enc_main,
	    "enc SLAVE_SAE_ID [-n NUMBER] [-s SIZE_BITS] "
	    "[-a ADDITIONAL_SLAVE]... [--get]\n"
	    "  Get key (enc_keys): new keys for a connection to SLAVE_SAE_ID.\n"
	    "  -n, --number N       keys wanted (default 1)\n"
	    "  -s, --size BITS      key size in bits (default: the KME's key_size)\n"
	    "  -a, --additional ID  additional slave SAE ID (repeatable; POST only)\n"
	    "  -g, --get            use the GET form (?number=&size=)\n" },
	{ "dec", dec_main,
	    "dec MASTER_SAE_ID KEY_ID... [--get]\n"
	    "  Get key with key IDs (dec_keys): the keys MASTER_SAE_ID obtained.\n"
	    "  -g, --get            use the GET form (?key_ID=), one KEY_ID only\n" },
};

static const char *prog = "kmsclient";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: %s [options] COMMAND [ARGS]\n\n"
	    "ETSI GS QKD 014 client.\n\n"
	    "options:\n"
	    "  --url URL      KME base URL, e.g. https://127.0.0.1:8443 (env KMS_URL)\n"
	    "  --cert FILE    client certificate, PEM (env KMS_CERT)\n"
	    "  --key FILE     client private key, PEM (env KMS_KEY)\n"
	    "  --ca FILE      CA certificate to verify the KME (env KMS_CA)\n"
	    "  --timeout MS   per-request timeout in ms (default %d)\n"
	    "  --insecure-http  accept an http:// URL (keys in clear: test servers only)\n"
	    "  --json         print the JSON object instead of text (also after COMMAND)\n"
	    "  -h, --help     this help; COMMAND --help for a command's help\n\n"
	    "commands:\n",
	    prog, KMS_DEFAULT_TIMEOUT_MS);
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++) {
		const char *h = subcmds[i].help, *nl;

		/* Command line at 2 columns, its description at 4. */
		for (; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
			fprintf(f, "  %.*s\n", (int)(nl - h), h);
		fputc('\n', f);
	}
	fprintf(f,
	    "exit status: 0 ok, 1 KME refused, 2 usage error, "
	    "3 transport/TLS error\n");
}

static int
sub_usage(const char *cmd, int rc)
{
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		if (strcmp(subcmds[i].name, cmd) == 0)
			fprintf(rc == EX_OK ? stdout : stderr,
			    "usage: %s [options] %s", prog, subcmds[i].help);
	return rc;
}

static const char *
reason(int status)
{
	const char *r = kms_http_reason(status);

	return r ? r : "";
}

/* Reports a failed call and maps it to an exit code. */
static int
report(const char *cmd, struct kms_client *c, int rc)
{
	const char *msg = kms_last_message(c), *detail = kms_last_detail(c);
	int	    status = kms_last_status(c);

	switch (rc) {
	case KMS_E_BADREQ:
	case KMS_E_UNAUTH:
	case KMS_E_UNAVAIL:
	case KMS_E_HTTP:
		fprintf(stderr, "%s: %s: %d %s", prog, cmd, status,
		    reason(status));
		if (strcmp(msg, reason(status)) != 0)
			fprintf(stderr, ": %s", msg);
		if (detail[0] != '\0' && strcmp(detail, msg) != 0)
			fprintf(stderr, " (detail %s)", detail);
		fputc('\n', stderr);
		return EX_REFUSED;
	case KMS_E_PROTO:
		fprintf(stderr, "%s: %s: %s: %s\n", prog, cmd, kms_strerror(rc),
		    msg);
		return EX_REFUSED;
	case KMS_E_ARG:
		fprintf(stderr, "%s: %s: %s\n", prog, cmd, msg);
		return EX_USAGE;
	default:
		fprintf(stderr, "%s: %s: %s: %s\n", prog, cmd, kms_strerror(rc),
		    msg);
		return EX_TRANSPORT;
	}
}

static struct kms_client *
open_client(const char *cmd, struct gopts *g)
{
	struct kms_client *c;
	char		   err[256];

	if (g->cfg.url == NULL) {
		fprintf(stderr,
		    "%s: %s: no KME URL: use --url or set KMS_URL\n", prog,
		    cmd);
		return NULL;
	}
	if ((c = kms_client_new(&g->cfg, err, sizeof(err))) != NULL)
		return c;
	if (strncmp(g->cfg.url, "http://", 7) == 0 && !g->cfg.allow_http)
		fprintf(stderr,
		    "%s: %s: URL \"%s\" is plain HTTP: keys would "
		    "travel in clear; use https://, or --insecure-http for a test "
		    "server\n",
		    prog, cmd, g->cfg.url);
	else
		fprintf(stderr, "%s: %s: %s\n", prog, cmd, err);
	return c;
}

/* Next option of a subcommand, 0 at the end. Options and operands mix in
 * any order (GNU permutation); "--" ends the options. */
static int
sub_getopt(int argc, char **argv, const char *shortopts,
    const struct option *longopts)
{
	int ch = getopt_long(argc, argv, shortopts, longopts, NULL);

	return ch == -1 ? 0 : ch;
}

static int
status_main(int argc, char **argv, struct gopts *g)
{
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	struct kms_client	  *c = NULL;
	struct etsi_status	   s;
	char			  *js;
	int			   ch, rc;

	optind = 0;
	while ((ch = sub_getopt(argc, argv, "h", lo)) != 0) {
		if (ch == 'j') /* --json may follow the command too */
			g->json = true;
		else
			return sub_usage("status",
			    ch == 'h' ? EX_OK : EX_USAGE);
	}
	if (argc - optind != 1)
		return sub_usage("status", EX_USAGE);
	if ((c = open_client("status", g)) == NULL)
		return EX_USAGE;
	if ((rc = kms_status(c, argv[optind], &s)) != KMS_OK) {
		rc = report("status", c, rc);
		goto done;
	}
	if (g->json) {
		if ((js = etsi_status_dump(&s)) == NULL) {
			rc = EX_TRANSPORT;
			goto done;
		}
		printf("%s\n", js);
		free(js);
	} else {
		printf("source_KME_ID        %s\n", s.source_kme_id);
		printf("target_KME_ID        %s\n", s.target_kme_id);
		printf("master_SAE_ID        %s\n", s.master_sae_id);
		printf("slave_SAE_ID         %s\n", s.slave_sae_id);
		printf("key_size             %u\n", s.key_size);
		printf("stored_key_count     %u\n", s.stored_key_count);
		printf("max_key_count        %u\n", s.max_key_count);
		printf("max_key_per_request  %u\n", s.max_key_per_request);
		printf("max_key_size         %u\n", s.max_key_size);
		printf("min_key_size         %u\n", s.min_key_size);
		printf("max_SAE_ID_count     %u\n", s.max_sae_id_count);
	}
	rc = EX_OK;
done:
	kms_client_free(c);
	return rc;
}

/* Prints keys: "KEY_ID  BASE64" lines, or the key container as JSON. The
 * base64 text is built in secret memory and wiped. */
static int
print_keys(const struct etsi_keys *k, bool json)
{
	char  *s;
	size_t cap = B64_ENCLEN(ETSI_MAX_KEY_BYTES) + 1;
	int    rc = EX_OK;

	if (json) {
		if ((s = etsi_keys_dump(k)) == NULL)
			return EX_TRANSPORT;
		printf("%s\n", s);
		sec_free_any(s);
	} else {
		if ((s = sec_alloc(cap)) == NULL)
			return EX_TRANSPORT;
		for (size_t i = 0; i < k->n; i++) {
			if (b64_encode(k->v[i].key, k->v[i].len, s, cap) ==
			    -1) {
				rc = EX_TRANSPORT;
				break;
			}
			printf("%s  %s\n", k->v[i].id, s);
		}
		sec_free(s, cap);
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "%s: cannot write output\n", prog);
		rc = EX_TRANSPORT;
	}
	return rc;
}

/* Prints the keys of a call that worked, or reports why it did not; frees
 * the keys and the client. */
static int
keys_done(const char *cmd, struct kms_client *c, int rc, struct etsi_keys *keys,
    bool json)
{
	rc = rc == KMS_OK ? print_keys(keys, json) : report(cmd, c, rc);
	etsi_keys_free(keys);
	kms_client_free(c);
	return rc;
}

static int
enc_main(int argc, char **argv, struct gopts *g)
{
	static const struct option lo[] = { { "number", required_argument, NULL,
						'n' },
		{ "size", required_argument, NULL, 's' },
		{ "additional", required_argument, NULL, 'a' },
		{ "get", no_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	struct kms_client	  *c = NULL;
	struct etsi_key_req	   req;
	struct etsi_keys	   keys = { NULL, 0 };
	char			  *slaves[ETSI_MAX_SLAVES];
	int			   ch, rc = EX_USAGE;
	bool			   get = false;

	memset(&req, 0, sizeof(req));
	req.number = 1;
	req.slaves = slaves;
	optind = 0;
	while ((ch = sub_getopt(argc, argv, "n:s:a:gh", lo)) != 0) {
		switch (ch) {
		case 'n':
			if (num_uint(optarg, 1, UINT_MAX, &req.number) == -1) {
				fprintf(stderr,
				    "%s: enc: number \"%s\" is not an "
				    "integer >= 1\n",
				    prog, optarg);
				return EX_USAGE;
			}
			break;
		case 's':
			if (num_uint(optarg, 1, UINT_MAX, &req.size) == -1) {
				fprintf(stderr,
				    "%s: enc: size \"%s\" is not an "
				    "integer >= 1 (bits)\n",
				    prog, optarg);
				return EX_USAGE;
			}
			break;
		case 'a':
			if (!etsi_id_valid(optarg)) {
				fprintf(stderr,
				    "%s: enc: additional slave \"%s\" is "
				    "not a valid SAE ID\n",
				    prog, optarg);
				return EX_USAGE;
			}
			if (req.nslaves == ETSI_MAX_SLAVES) {
				fprintf(stderr,
				    "%s: enc: at most %d additional "
				    "slave SAE IDs\n",
				    prog, ETSI_MAX_SLAVES);
				return EX_USAGE;
			}
			slaves[req.nslaves++] = optarg;
			break;
		case 'j': g->json = true; break;
		case 'g': get = true; break;
		case 'h': return sub_usage("enc", EX_OK);
		default: return sub_usage("enc", EX_USAGE);
		}
	}
	if (argc - optind != 1)
		return sub_usage("enc", EX_USAGE);
	if (get && req.nslaves > 0) {
		fprintf(stderr,
		    "%s: enc: --get takes no additional slave SAE IDs "
		    "(the GET form has only number and size)\n",
		    prog);
		return EX_USAGE;
	}
	if ((c = open_client("enc", g)) == NULL)
		return EX_USAGE;
	rc = get ?
	    kms_enc_keys_get(c, argv[optind], req.number, req.size, &keys) :
	    kms_enc_keys(c, argv[optind], &req, &keys);
	return keys_done("enc", c, rc, &keys, g->json);
}

static int
dec_main(int argc, char **argv, struct gopts *g)
{
	static const struct option lo[] = { { "get", no_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	struct kms_client	  *c;
	struct etsi_key_ids	   ids = { NULL, 0 };
	struct etsi_keys	   keys = { NULL, 0 };
	char			  *pos[1 + ETSI_MAX_KEYS];
	int			   ch, rc = EX_USAGE, npos = 0;
	bool			   get = false;

	optind = 0;
	while ((ch = sub_getopt(argc, argv, "gh", lo)) != 0) {
		if (ch == 'h')
			return sub_usage("dec", EX_OK);
		if (ch == 'j') {
			g->json = true;
			continue;
		}
		if (ch != 'g')
			return sub_usage("dec", EX_USAGE);
		get = true;
	}
	if (argc - optind > 1 + ETSI_MAX_KEYS) {
		fprintf(stderr, "%s: dec: at most %d key IDs\n", prog,
		    ETSI_MAX_KEYS);
		return EX_USAGE;
	}
	while (optind < argc)
		pos[npos++] = argv[optind++];
	if (npos < 2 || (get && npos != 2)) {
		if (get && npos > 2)
			fprintf(stderr,
			    "%s: dec: --get takes exactly one KEY_ID\n", prog);
		return sub_usage("dec", EX_USAGE);
	}
	for (int i = 1; i < npos; i++)
		if (strlen(pos[i]) == 0 || strlen(pos[i]) > ETSI_KEY_ID_MAX) {
			fprintf(stderr,
			    "%s: dec: key ID \"%.80s\" must have 1 to "
			    "%d characters\n",
			    prog, pos[i], ETSI_KEY_ID_MAX);
			return EX_USAGE;
		}
	if (etsi_key_ids_alloc(&ids, (size_t)npos - 1) == -1) {
		fprintf(stderr, "%s: dec: out of memory\n", prog);
		return EX_TRANSPORT;
	}
	for (int i = 1; i < npos; i++)
		memcpy(ids.ids[i - 1], pos[i], strlen(pos[i]) + 1);
	if ((c = open_client("dec", g)) == NULL)
		goto done;
	rc = get ? kms_dec_keys_get(c, pos[0], pos[1], &keys) :
		   kms_dec_keys(c, pos[0], &ids, &keys);
	rc = keys_done("dec", c, rc, &keys, g->json);
done:
	etsi_key_ids_free(&ids);
	return rc;
}

static void
unset_empty(const char **v)
{
	if (*v != NULL && (*v)[0] == '\0')
		*v = NULL;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = { { "url", required_argument, NULL,
						'u' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "ca", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "insecure-http", no_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	struct gopts		   g;
	unsigned		   tmo;
	int			   ch;

	memset(&g, 0, sizeof(g));
	g.cfg.url = getenv("KMS_URL");
	g.cfg.cert = getenv("KMS_CERT");
	g.cfg.key = getenv("KMS_KEY");
	g.cfg.ca = getenv("KMS_CA");
	sec_json_init();
	sec_harden();

	/* '+': stop at the subcommand, whose options are its own. */
	while ((ch = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (ch) {
		case 'u': g.cfg.url = optarg; break;
		case 'c': g.cfg.cert = optarg; break;
		case 'k': g.cfg.key = optarg; break;
		case 'C': g.cfg.ca = optarg; break;
		case 'j': g.json = true; break;
		case 'I': g.cfg.allow_http = true; break;
		case 't':
			if (num_uint(optarg, 1, 3600000, &tmo) == -1) {
				fprintf(stderr,
				    "%s: timeout \"%s\" is not a number "
				    "of milliseconds (1 to 3600000)\n",
				    prog, optarg);
				return EX_USAGE;
			}
			g.cfg.timeout_ms = (long)tmo;
			break;
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		usage(stdout);
		return EX_OK;
	}
	/* Empty environment values count as unset. */
	unset_empty(&g.cfg.cert);
	unset_empty(&g.cfg.key);
	unset_empty(&g.cfg.ca);
	unset_empty(&g.cfg.url);
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		if (strcmp(argv[optind], subcmds[i].name) == 0) {
			char name[32];

			/* getopt's own messages then read "kmsclient enc: ..." */
			snprintf(name, sizeof(name), "%s %s", prog,
			    subcmds[i].name);
			argv[optind] = name;
			return subcmds[i].fn(argc - optind, argv + optind, &g);
		}
	fprintf(stderr, "%s: unknown command \"%s\"\n", prog, argv[optind]);
	usage(stderr);
	return EX_USAGE;
}
