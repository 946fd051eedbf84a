/*
 * IKE over UDP: sockets on the IKE port (500) and the NAT-T port (4500,
 * where each IKE message is preceded by the 4-byte non-ESP marker), a
 * bounded receive with a timeout, and the requester's retransmission
 * schedule (exponential backoff, RFC 7296 2.1).
 *
 * The N3IWF binds both ports on one address; the UE has one socket on an
 * ephemeral port and sends to the N3IWF's IKE or NAT-T port.
 */
#ifndef IKE_NET_H
#define IKE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "ike/ikev2.h"

/* Frame bytes around an IKE message: Ethernet 14 + IPv4 20 + UDP 8. */
#define IKE_FRAME_OVERHEAD 42

struct ike_net {
	int		   fd;	      /* IKE port (UE: its only socket) */
	int		   fd_natt;   /* NAT-T port (N3IWF), else -1 */
	struct sockaddr_in ike_addr;  /* where fd is bound */
	struct sockaddr_in natt_addr; /* where fd_natt is bound */
	uint16_t
	    natt_peer_port; /* UE: datagrams from this port carry the marker */
};

struct ike_pkt {
	uint8_t		   data[IKE_MSG_MAX];
	size_t		   len; /* IKE message, marker stripped */
	struct sockaddr_in from;
	struct sockaddr_in to;	 /* our local address it came to */
	int		   natt; /* came on the NAT-T port / had the marker */
	uint64_t	   t_ns; /* receive time, monotonic */
};

/* N3IWF: bind host:port and host:natt_port (port 0: ephemeral, for tests). */
int ike_net_listen(struct ike_net *n, const char *host, uint16_t port,
    uint16_t natt_port, char *err, size_t errlen);
/* UE: one socket on local:0 (SO_REUSEPORT: the data plane joins it). */
int
ike_net_client(struct ike_net *n, const char *local, char *err, size_t errlen);
/*
 * A UE of the load mode: the same without SO_REUSEPORT, so the port is
 * its own (two auto-bound SO_REUSEPORT sockets of one user may share a
 * port, and the kernel splits the datagrams between them).
 */
int  ike_net_client_own(struct ike_net *n, const char *local, char *err,
     size_t errlen);
void ike_net_close(struct ike_net *n);

/* Sends msg to `to`; natt: with the marker (N3IWF: from the NAT-T socket). */
int ike_net_send(struct ike_net *n, int natt, const struct sockaddr_in *to,
    const uint8_t *msg, size_t len);
/*
 * Waits up to timeout_ms (-1: forever) for one IKE message. 1: got one in
 * *p; 0: timeout (or EINTR, so the caller can look at its stop flag);
 * -1: socket error. Drops (and returns 0 for) ESP packets on the NAT-T
 * port, NAT keepalives and anything shorter than an IKE header.
 */
int ike_net_recv(struct ike_net *n, int timeout_ms, struct ike_pkt *p);
/* The same, also polling xfd (-1: none): 2 when xfd is readable (first). */
int ike_net_poll(struct ike_net *n, int xfd, int timeout_ms, struct ike_pkt *p);

/* The frame length the paper's Table II counts for an IKE message. */
size_t ike_frame_len(size_t ike_len, int natt);

int  ike_addr_parse(const char *host, uint16_t port, struct sockaddr_in *a);
/* "a.b.c.d:port" */
void ike_addr_str(const struct sockaddr_in *a, char *out, size_t cap);

/* Requester's retransmission schedule: base, 2 base, 4 base, ... */
struct ike_retx {
	unsigned base_ms;
	unsigned tries; /* sends allowed */
	unsigned sent;
	uint64_t deadline_ns; /* of the current send */
};

void ike_retx_start(struct ike_retx *r, unsigned base_ms, unsigned tries);
/* ms until the deadline (0 when due), for a poll timeout. */
int  ike_retx_wait_ms(const struct ike_retx *r);
/* Deadline passed: true if one more send is allowed (schedule advanced),
 * false if given up. */
bool ike_retx_again(struct ike_retx *r);

#endif
