/*
 * delayrelay_opt.c: the relay's command line, its rules' sockets and the
 * ready file (delayrelay.c has the overview).
 */
#include "tests/tools/delayrelay.h"

static const char *
addr_str(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

static bool
rly_in_netns(void)
{
	struct stat a, b;

	return stat("/proc/self/ns/net", &a) == 0 &&
	    stat("/proc/1/ns/net", &b) == 0 && a.st_ino != b.st_ino;
}

static int
parse_addr(const char *s, size_t len, struct sockaddr_in *a)
{
	char	    host[64], *end;
	const char *colon = memrchr(s, ':', len);
	long	    port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (end != s + len || colon + 1 == end || errno != 0 || port < 0 ||
	    port > 65535)
		return -1;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int
rule_add(bool tcp, const char *spec, char *err, size_t errlen)
{
	struct rly_rule *r = &rly.rules[rly.nrules];
	const char	*eq = strchr(spec, '=');

	if (rly.nrules == RLY_MAX_RULES) {
		snprintf(err, errlen, "more than %d rules", RLY_MAX_RULES);
		return -1;
	}
	if (eq == NULL || strlen(spec) >= sizeof(r->spec) ||
	    parse_addr(spec, (size_t)(eq - spec), &r->listen) == -1 ||
	    parse_addr(eq + 1, strlen(eq + 1), &r->target) == -1) {
		snprintf(err, errlen,
		    "%s \"%s\": not LISTEN=TARGET with IPV4:PORT each",
		    tcp ? "-t" : "-u", spec);
		return -1;
	}
	if ((ntohl(r->listen.sin_addr.s_addr) >> 24) != 127 &&
	    !rly_in_netns()) {
		snprintf(err, errlen,
		    "%s \"%s\": listen address not on 127.0.0.0/8 (other "
		    "addresses only inside a network namespace)",
		    tcp ? "-t" : "-u", spec);
		return -1;
	}
	if (r->target.sin_port == 0) {
		snprintf(err, errlen, "%s \"%s\": target port 0",
		    tcp ? "-t" : "-u", spec);
		return -1;
	}
	r->tcp = tcp;
	snprintf(r->spec, sizeof(r->spec), "%s", spec);
	rly.nrules++;
	return 0;
}

static int
rule_open(struct rly_rule *r, char *err, size_t errlen)
{
	int	  one = 1, type = r->tcp ? SOCK_STREAM : SOCK_DGRAM;
	socklen_t sl = sizeof(r->listen);

	r->fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd == -1 ||
	    setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(r->fd, (struct sockaddr *)&r->listen, sizeof(r->listen)) ||
	    (r->tcp && listen(r->fd, 128)) ||
	    getsockname(r->fd, (struct sockaddr *)&r->listen, &sl)) {
		snprintf(err, errlen, "%s \"%s\": cannot listen: %s",
		    r->tcp ? "-t" : "-u", r->spec, strerror(errno));
		return -1;
	}
	r->tag = (struct rly_ev_tag){ EV_LISTEN, r, 0 };
	return rly_ep_set(EPOLL_CTL_ADD, r->fd, EPOLLIN, &r->tag);
}

/* A number of ms in [0, max] with nothing after it, or -1. */
static double
parse_ms(const char *s, double max)
{
	char  *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < 0 ||
	    v > max)
		return -1;
	return v;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: delayrelay [-d MS] [-j MS] [--seed N] [--udp-idle S] "
	    "[--ready FILE]\n"
	    "                  -u LISTEN=TARGET | -t LISTEN=TARGET ...\n"
	    "  -u, --udp L=T     relay UDP from L to T, one upstream socket per "
	    "client\n"
	    "  -t, --tcp L=T     relay TCP connections accepted at L to T\n"
	    "  -d, --delay MS    one-way delay each direction (0; up to "
	    "10000, decimals ok)\n"
	    "  -j, --jitter MS   + uniform [-MS, +MS] per datagram/chunk, MS "
	    "<= delay (0);\n"
	    "                    TCP never reorders, UDP may\n"
	    "      --seed N      jitter random seed (default: getrandom)\n"
	    "      --udp-idle S  forget a UDP flow idle S seconds (300)\n"
	    "      --ready FILE  write \"udp|tcp LISTEN TARGET\" per rule "
	    "once listening\n"
	    "  L, T are IPV4:PORT; L must be on 127.0.0.0/8 outside a network "
	    "namespace;\n"
	    "  port 0 in L picks a free port (see --ready).\n");
}

static int
parse_args(int argc, char **argv, const char **ready, char *err, size_t errlen)
{
	static const struct option lo[] = { { "udp", 1, NULL, 'u' },
		{ "tcp", 1, NULL, 't' }, { "delay", 1, NULL, 'd' },
		{ "jitter", 1, NULL, 'j' }, { "seed", 1, NULL, 's' },
		{ "udp-idle", 1, NULL, 'i' }, { "ready", 1, NULL, 'r' },
		{ "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	int			   c;
	char			  *end;
	unsigned long long	   v;

	rly.udp_idle_s = 300;
	while ((c = getopt_long(argc, argv, "u:t:d:j:h", lo, NULL)) != -1) {
		switch (c) {
		case 'u':
		case 't':
			if (rule_add(c == 't', optarg, err, errlen) == -1)
				return -1;
			break;
		case 'd':
		case 'j':
			if (parse_ms(optarg, RLY_MAX_DELAY) < 0) {
				snprintf(err, errlen,
				    "--%s \"%s\": not a number of ms from 0 to "
				    "%.0f",
				    c == 'd' ? "delay" : "jitter", optarg,
				    RLY_MAX_DELAY);
				return -1;
			}
			*(c == 'd' ? &rly.delay_ms : &rly.jitter_ms) =
			    parse_ms(optarg, RLY_MAX_DELAY);
			break;
		case 's':
		case 'i':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (*optarg == '-' || end == optarg || *end != '\0' ||
			    errno != 0 || (c == 'i' && (v == 0 || v > 86400))) {
				snprintf(err, errlen, "--%s \"%s\": %s",
				    c == 's' ? "seed" : "udp-idle", optarg,
				    c == 's' ? "not an unsigned integer" :
					       "not 1 to 86400 seconds");
				return -1;
			}
			if (c == 's')
				rly.rng = v;
			else
				rly.udp_idle_s = (unsigned)v;
			break;
		case 'r': *ready = optarg; break;
		case 'h': usage(stdout); exit(0);
		default:
			snprintf(err, errlen, "unknown option (--help)");
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\"",
		    argv[optind]);
		return -1;
	}
	if (rly.nrules == 0) {
		snprintf(err, errlen, "no -u or -t rule (--help)");
		return -1;
	}
	if (rly.jitter_ms > rly.delay_ms) {
		snprintf(err, errlen, "--jitter %g is larger than --delay %g",
		    rly.jitter_ms, rly.delay_ms);
		return -1;
	}
	return 0;
}

static int
write_ready(const char *path, char *err, size_t errlen)
{
	char  tmp[4096], a[32], b[32];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL) {
		snprintf(err, errlen, "--ready \"%s\": %s", path,
		    strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < rly.nrules; i++)
		fprintf(f, "%s %s %s\n", rly.rules[i].tcp ? "tcp" : "udp",
		    addr_str(&rly.rules[i].listen, a, sizeof(a)),
		    addr_str(&rly.rules[i].target, b, sizeof(b)));
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "--ready \"%s\": %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
rly_setup(int argc, char **argv, char *err, size_t errlen)
{
	const char	*ready = NULL;
	struct sigaction sa = { 0 };

	if (parse_args(argc, argv, &ready, err, errlen) == -1)
		return -1;
	if (rly.rng == 0 &&
	    getrandom(&rly.rng, sizeof(rly.rng), 0) != sizeof(rly.rng))
		rly.rng = rly_now();
	rly.ep = epoll_create1(EPOLL_CLOEXEC);
	rly.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	rly.ttag = (struct rly_ev_tag){ EV_TIMER, NULL, 0 };
	if (rly.ep == -1 || rly.tfd == -1 ||
	    rly_ep_set(EPOLL_CTL_ADD, rly.tfd, EPOLLIN, &rly.ttag) == -1) {
		snprintf(err, errlen, "epoll/timerfd: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < rly.nrules; i++)
		if (rule_open(&rly.rules[i], err, errlen) == -1)
			return -1;
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return ready != NULL ? write_ready(ready, err, errlen) : 0;
}
