/*
 * tunfwd: the data-plane benchmark's ceiling for a userspace tunnel. It moves
 * IP packets TUN -> UDP -> TUN without any crypto: one thread per direction,
 * one read and one write system call per packet, as a userspace ESP over TUN
 * must at least do. Our ESP can come close to this, never above it.
 *
 *   tunfwd -t IFNAME -l LOCAL_IPV4:PORT -p PEER_IPV4:PORT
 *
 * Attaches to (or creates) the TUN device IFNAME (IFF_TUN | IFF_NO_PI); the
 * caller sets its address, MTU and routes with ip(8). Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct tunfwd {
	int		   tun, udp;
	struct sockaddr_in peer;
};

static int
tunfwd_addr(const char *s, struct sockaddr_in *sa)
{
	char	    host[64];
	const char *colon = strrchr(s, ':');

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int
tunfwd_tun(const char *name)
{
	struct ifreq ifr;
	int	     fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* TUN -> UDP (to the peer). */
static void *
tunfwd_out(void *arg)
{
	struct tunfwd *f = arg;
	unsigned char  b[65536];

	for (;;) {
		ssize_t n = read(f->tun, b, sizeof(b));
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			perror("tunfwd: tun read");
			exit(1);
		}
		(void)sendto(f->udp, b, (size_t)n, 0,
		    (struct sockaddr *)&f->peer, sizeof(f->peer));
	}
	return NULL;
}

/* UDP -> TUN. */
static void *
tunfwd_in(void *arg)
{
	struct tunfwd *f = arg;
	unsigned char  b[65536];

	for (;;) {
		ssize_t n = recv(f->udp, b, sizeof(b), 0);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			perror("tunfwd: udp recv");
			exit(1);
		}
		if (write(f->tun, b, (size_t)n) < 0 && errno != EINTR)
			continue; /* dropped, as a full queue would */
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct tunfwd	   f;
	struct sockaddr_in local;
	const char	  *ifname = NULL, *l = NULL, *p = NULL;
	pthread_t	   t;
	int		   c, sz = 4 << 20;

	while ((c = getopt(argc, argv, "t:l:p:")) != -1) {
		switch (c) {
		case 't': ifname = optarg; break;
		case 'l': l = optarg; break;
		case 'p': p = optarg; break;
		default: goto usage;
		}
	}
	if (ifname == NULL || l == NULL || p == NULL ||
	    tunfwd_addr(l, &local) != 0 || tunfwd_addr(p, &f.peer) != 0)
		goto usage;
	f.tun = tunfwd_tun(ifname);
	if (f.tun < 0) {
		fprintf(stderr, "tunfwd: TUN %s: %s\n", ifname,
		    strerror(errno));
		return 1;
	}
	f.udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (f.udp < 0 ||
	    bind(f.udp, (struct sockaddr *)&local, sizeof(local)) != 0) {
		fprintf(stderr, "tunfwd: UDP %s: %s\n", l, strerror(errno));
		if (f.udp >= 0)
			close(f.udp);
		close(f.tun);
		return 1;
	}
	setsockopt(f.udp, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(f.udp, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (pthread_create(&t, NULL, tunfwd_out, &f) != 0) {
		close(f.udp);
		close(f.tun);
		return 1;
	}
	tunfwd_in(&f);
	return 0;
usage:
	fprintf(stderr,
	    "usage: tunfwd -t IFNAME -l LOCAL_IPV4:PORT -p PEER_IPV4:PORT\n");
	return 1;
}
