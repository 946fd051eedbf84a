/*
 * wakelat: the parts of the data plane's ping latency, measured alone
 * (bench/dataplane/README.md, "Where the ping time goes").
 *
 *   wakelat wake [N]   pipe ping-pong between two threads and between two
 *                      processes, both on one core and on two cores: the
 *                      median and p90 of one hop (half a round trip), i.e.
 *                      write + wake-up of a thread blocked in read/poll
 *   wakelat tun [N]    in a fresh network namespace (unshare): a TUN with
 *                      10.99.0.1/24, an ICMP echo request from 10.99.0.2
 *                      written into it; the kernel's reply comes back out
 *                      of the TUN. Times of write(), of read() and whether
 *                      the reply is already queued when write() returns
 *   wakelat tun-napi [N]   the same with IFF_NAPI (the written packet
 *                      goes through a NAPI context instead of netif_rx)
 *
 * Prints one line per measurement, microseconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *what, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	printf("%-44s p50 %7.1f  p90 %7.1f  min %6.1f us (n=%zu)\n", what,
	    v[n / 2], v[n * 9 / 10], v[0], n);
}

static void
pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	(void)sched_setaffinity(0, sizeof(s), &s);
}

/* ------------------------------------------------------ pipe ping-pong */

struct pp {
	int a[2], b[2]; /* main -> echo, echo -> main */
	int cpu, n;
};

static void
echo_loop(struct pp *p)
{
	char c;

	pin(p->cpu);
	for (int i = 0; i < p->n; i++) {
		struct pollfd f = { p->a[0], POLLIN, 0 };

		/* blocks in poll as the engine does, then reads */
		if (poll(&f, 1, -1) != 1 || read(p->a[0], &c, 1) != 1 ||
		    write(p->b[1], &c, 1) != 1)
			exit(1);
	}
}

static void *
echo_thread(void *arg)
{
	echo_loop(arg);
	return NULL;
}

static void
pingpong(const char *what, bool proc, int cpu_main, int cpu_echo, int n)
{
	struct pp p = { .cpu = cpu_echo, .n = n };
	double	 *v = calloc((size_t)n, sizeof(double));
	pthread_t t;
	pid_t	  pid = -1;
	char	  c = 'x';

	if (v == NULL || pipe(p.a) == -1 || pipe(p.b) == -1)
		exit(1);
	if (proc) {
		if ((pid = fork()) == 0) {
			echo_loop(&p);
			_exit(0);
		}
	} else if (pthread_create(&t, NULL, echo_thread, &p) != 0)
		exit(1);
	pin(cpu_main);
	for (int i = 0; i < n; i++) {
		struct pollfd f = { p.b[0], POLLIN, 0 };
		double	      t0 = now_us();

		if (write(p.a[1], &c, 1) != 1 || poll(&f, 1, -1) != 1 ||
		    read(p.b[0], &c, 1) != 1)
			exit(1);
		v[i] = (now_us() - t0) / 2;
		usleep(200); /* let both sides go idle, as between pings */
	}
	if (proc)
		waitpid(pid, NULL, 0);
	else
		pthread_join(t, NULL);
	report(what, v, (size_t)n);
	free(v);
	close(p.a[0]), close(p.a[1]), close(p.b[0]), close(p.b[1]);
}

/* ------------------------------------------------------------- TUN */

static uint16_t
csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* An 84-byte ICMP echo request 10.99.0.2 -> 10.99.0.1. */
static void
echo_req(uint8_t *p, uint16_t seq)
{
	uint16_t c;

	memset(p, 0, 84);
	p[0] = 0x45, p[3] = 84, p[8] = 64, p[9] = 1;
	p[12] = 10, p[13] = 99, p[15] = 2;
	p[16] = 10, p[17] = 99, p[19] = 1;
	c = csum(p, 20), p[10] = (uint8_t)(c >> 8), p[11] = (uint8_t)c;
	p[20] = 8, p[26] = (uint8_t)(seq >> 8), p[27] = (uint8_t)seq;
	c = csum(p + 20, 64), p[22] = (uint8_t)(c >> 8), p[23] = (uint8_t)c;
}

static int
tun_open(bool napi)
{
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
	int	     fd;

	if (napi)
		ifr.ifr_flags |= IFF_NAPI;

	if (unshare(CLONE_NEWNET) == -1) {
		perror("wakelat: unshare");
		exit(1);
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "wl0");
	if ((fd = open("/dev/net/tun", O_RDWR)) == -1 ||
	    ioctl(fd, TUNSETIFF, &ifr) == -1 ||
	    system("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
		   "net.ipv6.conf.default.disable_ipv6=1 && "
		   "ip addr add 10.99.0.1/24 dev wl0 && ip link set wl0 up") !=
		0) {
		perror("wakelat: TUN");
		exit(1);
	}
	return fd;
}

static void
tun_cost(int n, bool napi)
{
	double *w = calloc((size_t)n, sizeof(double));
	double *r = calloc((size_t)n, sizeof(double));
	int	fd = tun_open(napi), queued = 0;
	uint8_t p[84], b[2048];

	if (w == NULL || r == NULL)
		exit(1);
	for (int i = 0; i < n; i++) {
		struct pollfd f = { fd, POLLIN, 0 };
		double	      t0, t1, t2;

		echo_req(p, (uint16_t)i);
		t0 = now_us();
		if (write(fd, p, sizeof(p)) != (ssize_t)sizeof(p))
			exit(1);
		t1 = now_us();
		if (poll(&f, 1, 0) == 1)
			queued++;
		else if (poll(&f, 1, 1000) != 1)
			exit(1);
		t2 = now_us();
		if (read(fd, b, sizeof(b)) < 28 || b[20] != 0) {
			fprintf(stderr, "wakelat: no echo reply\n");
			exit(1);
		}
		w[i] = t1 - t0;
		r[i] = now_us() - t2;
		usleep(200);
	}
	report("TUN write() of an echo request (84 B)", w, (size_t)n);
	report("TUN read() of the kernel's reply", r, (size_t)n);
	printf("reply already queued when write() returned: %d of %d\n", queued,
	    n);
	free(w);
	free(r);
}

int
main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 5000;

	if (argc < 2 || n <= 0)
		goto usage;
	if (strcmp(argv[1], "wake") == 0) {
		pingpong("threads, same core: one hop", false, 0, 0, n);
		pingpong("threads, two cores: one hop", false, 0, 1, n);
		pingpong("processes, same core: one hop", true, 0, 0, n);
		pingpong("processes, two cores: one hop", true, 0, 1, n);
		return 0;
	}
	if (strcmp(argv[1], "tun") == 0 || strcmp(argv[1], "tun-napi") == 0) {
		tun_cost(n, argv[1][3] != '\0');
		return 0;
	}
usage:
	fprintf(stderr, "usage: wakelat wake|tun|tun-napi [N]\n");
	return 1;
}
