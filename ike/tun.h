/*
 * TUN devices for the data plane: layer 3, no packet information header
 * (IFF_TUN | IFF_NO_PI), so a read() gives one IP packet and a write()
 * takes one. Setup calls (ioctl on an AF_INET socket) write one message
 * into err and do not log.
 *
 * MTU: a packet of the TUN's MTU must leave as one outer datagram on a
 * link of link_mtu bytes: outer IPv4 20 + UDP 8 + ESP at most
 * ESP_MAX_OVERHEAD (57: header 8, IV 16, padding 15, trailer 2, ICV 16:
 * AES-CBC's worst case; AES-GCM takes 37 at most) + GRE 8 (user plane).
 * tun_mtu_for(1500) = 1500 - 93 = 1407, rounded down to a multiple of 8:
 * 1400, TUN_MTU_DEFAULT. An IPv6 outer header (40) would need 20 more.
 */
#ifndef IKE_TUN_H
#define IKE_TUN_H

#include <stdbool.h>
#include <stddef.h>

#include <net/if.h>
#include <netinet/in.h>

#define TUN_LINK_MTU	1500
#define TUN_MTU_DEFAULT 1400
/*
 * Transmit queue (packets the kernel queues for our reads). The default
 * 500 overflows under a TCP burst while the outbound thread encrypts:
 * measured here, iperf3 through the tunnel lost ~8,000 packets in 5 s
 * (TX dropped on the TUN, each a TCP retransmission) at 445 Mbit/s with
 * 500, none at 660 Mbit/s with 4096.
 */
#define TUN_TXQLEN 4096

/* The largest TUN MTU for an outer link MTU (IPv4 outer, GRE counted). */
unsigned tun_mtu_for(unsigned link_mtu);

/*
 * Opens (creating if needed) the TUN device `name` ("" or NULL: the
 * kernel picks tunN); its name goes to ifname. multi_queue: IFF_MULTI_QUEUE
 * (open it again with the same name for each more queue). Returns the
 * file descriptor (O_CLOEXEC, blocking), or -1 with err written.
 */
int tun_open(const char *name, bool multi_queue, char ifname[static IFNAMSIZ],
    char *err, size_t errlen);
/* Sets the IPv4 address and prefix length (0..32). */
int tun_set_addr4(const char *ifname, struct in_addr a, unsigned prefix,
    char *err, size_t errlen);
int tun_set_mtu(const char *ifname, unsigned mtu, char *err, size_t errlen);
int tun_set_txqlen(const char *ifname, unsigned qlen, char *err, size_t errlen);
/* Sets IFF_UP (and IFF_RUNNING). */
int tun_up(const char *ifname, char *err, size_t errlen);
/*
 * All of the above: open, address, MTU (0: TUN_MTU_DEFAULT), transmit
 * queue TUN_TXQLEN, up. Returns the descriptor or -1 (err written,
 * nothing left open).
 */
int tun_setup(const char *name, struct in_addr a, unsigned prefix, unsigned mtu,
    char ifname[static IFNAMSIZ], char *err, size_t errlen);
/* Closes fd (-1: nothing); a non-persistent TUN device goes away with it. */
void tun_close(int fd);

#endif
