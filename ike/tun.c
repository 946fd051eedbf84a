/* TUN devices: open, IPv4 address, MTU, up (ioctl). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "ike/esp.h"
#include "ike/gre.h"
#include "ike/tun.h"

unsigned
tun_mtu_for(unsigned link_mtu)
{
	unsigned over = 20 + 8 + ESP_MAX_OVERHEAD + GRE_HDR_LEN;

	if (link_mtu < over + 576)
		return 576; /* the IPv4 minimum a host must take */
	return (link_mtu - over) & ~7u;
}

int
tun_open(const char *name, bool multi_queue, char ifname[static IFNAMSIZ],
    char *err, size_t errlen)
{
	struct ifreq ifr;
	int	     fd;

	if (name != NULL && strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "TUN name \"%s\" is longer than %d", name,
		    IFNAMSIZ - 1);
		return -1;
	}
	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "/dev/net/tun: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	if (multi_queue)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	if (name != NULL)
		memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
		snprintf(err, errlen, "TUN \"%s\": TUNSETIFF: %s",
		    name != NULL ? name : "", strerror(errno));
		close(fd);
		return -1;
	}
	memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	ifname[IFNAMSIZ - 1] = '\0';
	return fd;
}

/* One interface ioctl on a throwaway AF_INET socket. */
static int
if_ioctl(const char *ifname, unsigned long req, struct ifreq *ifr,
    const char *what, char *err, size_t errlen)
{
	int s;

	memcpy(ifr->ifr_name, ifname, IFNAMSIZ);
	ifr->ifr_name[IFNAMSIZ - 1] = '\0';
	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    ioctl(s, req, ifr) == -1) {
		snprintf(err, errlen, "%s: %s: %s", ifname, what,
		    strerror(errno));
		if (s != -1)
			close(s);
		return -1;
	}
	close(s);
	return 0;
}

int
tun_set_addr4(const char *ifname, struct in_addr a, unsigned prefix, char *err,
    size_t errlen)
{
	struct ifreq	   ifr;
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (prefix > 32) {
		snprintf(err, errlen, "%s: prefix length %u is over 32", ifname,
		    prefix);
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	sin.sin_addr = a;
	memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
	if (if_ioctl(ifname, SIOCSIFADDR, &ifr, "set address", err, errlen) ==
	    -1)
		return -1;
	sin.sin_addr.s_addr =
	    prefix == 0 ? 0 : htonl(~(uint32_t)0 << (32 - prefix));
	memcpy(&ifr.ifr_netmask, &sin, sizeof(sin));
	return if_ioctl(ifname, SIOCSIFNETMASK, &ifr, "set netmask", err,
	    errlen);
}

int
tun_set_mtu(const char *ifname, unsigned mtu, char *err, size_t errlen)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_mtu = (int)mtu;
	return if_ioctl(ifname, SIOCSIFMTU, &ifr, "set MTU", err, errlen);
}

int
tun_set_txqlen(const char *ifname, unsigned qlen, char *err, size_t errlen)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_qlen = (int)qlen;
	return if_ioctl(ifname, SIOCSIFTXQLEN, &ifr, "set txqueuelen", err,
	    errlen);
}

int
tun_up(const char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	if (if_ioctl(ifname, SIOCGIFFLAGS, &ifr, "get flags", err, errlen) ==
	    -1)
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return if_ioctl(ifname, SIOCSIFFLAGS, &ifr, "set up", err, errlen);
}

int
tun_setup(const char *name, struct in_addr a, unsigned prefix, unsigned mtu,
    char ifname[static IFNAMSIZ], char *err, size_t errlen)
{
	int fd;

	if ((fd = tun_open(name, false, ifname, err, errlen)) == -1)
		return -1;
	if (tun_set_mtu(ifname, mtu != 0 ? mtu : TUN_MTU_DEFAULT, err,
		errlen) == -1 ||
	    tun_set_txqlen(ifname, TUN_TXQLEN, err, errlen) == -1 ||
	    tun_set_addr4(ifname, a, prefix, err, errlen) == -1 ||
	    tun_up(ifname, err, errlen) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

void
tun_close(int fd)
{
	if (fd != -1)
		close(fd);
}
