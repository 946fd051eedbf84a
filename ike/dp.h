/*
 * The data-plane engine both IKE endpoints use: IP packets between a TUN
 * device and ESP-in-UDP (RFC 3948) on the IKE NAT-T port, through the
 * Child SAs the IKE side installs. ESP itself is ike/esp.h, the NWu GRE
 * header ike/gre.h, the TUN device ike/tun.h.
 *
 * Socket. The engine binds its own UDP socket to the address:port of the
 * IKE endpoint's NAT-T socket, in one SO_REUSEPORT group with it, and
 * attaches a classic BPF program to the group: a datagram whose first 4
 * bytes are zero (the non-ESP marker: IKE) or that is shorter than 4
 * bytes (NAT keepalive) goes to group member 0, the IKE socket, which
 * must therefore be bound first with SO_REUSEPORT (ike/net.c does); every
 * other datagram (ESP: a non-zero SPI) to member 1, the engine. So the
 * IKE loop never sees ESP and the engine never sees IKE. dp_new() checks
 * this with a probe (an ESP-shaped datagram with the reserved SPI 1 sent
 * to itself must reach the engine's socket) and fails otherwise.
 *
 * Threads. dp_start() runs two:
 * - outbound: TUN read (a batch of up to DP_BATCH packets, each into a
 *   preallocated slot) -> the Child SA by the inner addresses (below) ->
 *   GRE with the SA's QFI for user-plane SAs -> esp_encap -> one
 *   sendmmsg for the batch;
 * - inbound: recvmmsg (a batch) -> the Child SA by SPI -> esp_decap
 *   (window, ICV, padding) -> the inner source (N3IWF) or destination
 *   (UE) against the SA's inner address -> GRE checked and stripped, QFI
 *   checked (user plane) -> the egress (the TUN today).
 * Nothing is allocated per packet. Each direction has a mutex over its
 * batch buffers, its esp_sa states and its counters; each esp_sa is used
 * by one thread at a time (the holder), as esp.h requires.
 * Spinning (cfg.spin_us > 0): after a batch, the thread that ran it goes
 * on polling both directions without sleeping (each if its mutex is
 * free: non-blocking TUN read and recvmmsg, sched_yield between rounds)
 * until spin_us pass with nothing to do, then sleeps in poll again. A
 * ping's reply then finds a thread running: at the N3IWF the reply is
 * in the TUN when the request's write() returns (the kernel routes it to
 * the DN and back inside that call), at the UE it comes back within the
 * N3IWF's turn. This takes the two warm legs of a round trip (N3IWF
 * out, UE in) off a thread wake-up (~50 us across cores here:
 * bench/dataplane/README.md), for up to spin_us of CPU after each burst
 * of traffic, none when idle. The other thread, woken by the same
 * input, finds the mutex taken or its input drained and sleeps again.
 *
 * Locking. The IKE thread changes the SA tables (dp_child_*); the packet
 * threads read them. One rwlock (writer-preferring, so installs are not
 * starved): a packet thread holds it for reading while it turns one batch
 * into packets to send (never while it waits for input or sends), the
 * IKE thread holds it for writing while it changes the tables and frees
 * an SA only after it has taken it out of every table under that lock:
 * a packet thread can never hold a freed SA. Per batch, that is two
 * atomic operations per thread per up to DP_BATCH packets.
 *
 * Routing (outbound, by the inner IPv4 header):
 * - UE: destination == nas_ip -> the signalling SA; anything else
 *   (IPv6 too) -> the user-plane SA.
 * - N3IWF: the SA pair of the UE whose inner address is the destination;
 *   source == nas_ip -> that UE's signalling SA, else its user-plane SA.
 * - With no signalling SA (the rfc7296 profile: one Child SA, no GRE)
 *   every IPv4 packet goes to the user-plane SA; IPv6 is outside its
 *   TS (IPv4) and dropped both ways (no_route out, selector in).
 * An SA of kind DP_USER with gre set carries GRE (TS 24.502 9.3.3) with
 * its QFI; without gre, plain IP (rfc7296).
 *
 * Egress. Decapsulated packets go to cfg.egress, the TUN when NULL. A
 * GTP-U egress toward a UPF (N3) implements struct dp_egress: it gets
 * each user-plane packet with the UE's inner address and the QFI, which
 * is what it needs to pick the tunnel (TEID) and fill the PDU session
 * container. The downlink from a UPF would be a second input of the
 * outbound thread beside the TUN (routed the same way, by destination).
 *
 * Errors: setup calls (dp_new, dp_start, dp_child_add/rekey) write err
 * and do not log; packet errors are counted (dp_stats), never logged per
 * packet.
 */
#ifndef IKE_DP_H
#define IKE_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <netinet/in.h>

#include "ike/esp.h"

#define DP_BATCH	    64	 /* packets per read / send batch */
#define DP_PKT_MAX	    4096 /* largest inner packet (TUN MTU below it) */
#define DP_MAX_CHILDREN_DEF 4096 /* Child SAs (pairs) by default */
#define DP_ESP_SPI_PROBE    1	 /* reserved SPI of the demux probe */

enum dp_role {
	DP_ROLE_UE = 0, /* one N3IWF: route by nas_ip, inner address 0 */
	DP_ROLE_N3IWF,	/* many UEs: route by each UE's inner address */
};

enum dp_kind {
	DP_SIGNALLING = 0, /* NAS over TCP to/from NAS_IP4_ADDRESS */
	DP_USER,	   /* user plane: GRE + QFI (nwu), plain (rfc7296) */
};

struct dp_meta {
	struct in_addr ue_inner; /* the UE's inner address */
	enum dp_kind   kind;
	uint8_t	       qfi; /* user plane with GRE: the packet's QFI */
};

/* Where decapsulated packets leave; NULL in dp_cfg: the TUN. */
struct dp_egress {
	/* Called by the inbound thread; 0 sent, -1 dropped (counted). */
	int (*send)(void *ctx, const uint8_t *pkt, size_t len,
	    const struct dp_meta *m);
	void *ctx;
};

struct dp_cfg {
	enum dp_role role;
	int	     tun_fd; /* read, written, made O_NONBLOCK; not closed */
	/* Where the IKE endpoint's NAT-T socket is bound (ike_net's
	 * natt_addr on the N3IWF, ike_addr on the UE). */
	struct sockaddr_in	local;
	struct in_addr		nas_ip;	      /* NAS_IP4_ADDRESS; 0: none */
	unsigned		max_children; /* 0: DP_MAX_CHILDREN_DEF */
	const struct dp_egress *egress;	      /* NULL: the TUN */
	unsigned spin_us;	 /* Threads: spin after a batch; 0: no */
	bool	 no_demux_check; /* tests: skip the probe */
};

/*
 * One Child SA as the IKE side installs it. in and out come from
 * esp_sa_new(); dp_child_add() and dp_child_rekey() take ownership of
 * both in every case (on failure they are freed, keys wiped).
 */
struct dp_child {
	struct esp_sa	  *in, *out;
	struct sockaddr_in peer; /* outer address:port of the peer */
	enum dp_kind	   kind;
	bool		   gre; /* user plane in GRE (nwu profile) */
	uint8_t		   qfi; /* gre: the QFI sent and required */
	/* N3IWF: the UE's inner address (routing key and the required
	 * inner source); UE: its own inner address (the required inner
	 * destination), or 0 for no check. */
	struct in_addr	   inner;
};

/* Engine counters (all since dp_new). */
struct dp_stats {
	/* outbound */
	uint64_t out_packets, out_bytes; /* ESP datagrams sent */
	uint64_t tun_read_err, no_route, out_esp_err, out_expired;
	uint64_t sock_send_err;
	/* inbound */
	uint64_t in_packets, in_bytes; /* inner packets delivered */
	uint64_t sock_recv_err, truncated, nonesp, keepalive, no_sa;
	uint64_t in_replay, in_icv, in_pad, in_short, in_other;
	uint64_t selector, bad_nh, gre_bad, qfi_bad, egress_err;
};

/* Counters of one installed Child SA. */
struct dp_child_stats {
	struct esp_stats in, out;
	bool		 soft;	 /* either SA past a soft lifetime: rekey */
	bool		 hard;	 /* either SA past a hard one: delete */
	bool		 routed; /* out is the SA that carries new packets */
};

struct dp;

/* Binds and checks the ESP socket; threads not started. NULL: err. */
struct dp *dp_new(const struct dp_cfg *c, char *err, size_t errlen);
int	   dp_start(struct dp *dp, char *err, size_t errlen);
/* Stops and joins the threads, frees every SA (keys wiped); NULL ok. */
void	   dp_free(struct dp *dp);

/*
 * Installs a Child SA pair: its inbound SA by SPI at once, its outbound
 * SA as the route of (inner, kind), replacing any SA routed there
 * before (which stays installed until removed). -1: table full, SPI
 * already installed, bad QFI (err written; both SAs freed).
 */
int
dp_child_add(struct dp *dp, const struct dp_child *c, char *err, size_t errlen);
/*
 * Make-before-break rekey: installs the new pair and moves the route of
 * the pair whose inbound SPI is old_in_spi to the new outbound SA, in
 * one step under the lock. The old pair stays (its inbound SA still
 * accepts packets in flight) until dp_child_del(old_in_spi). -1: no such
 * old pair, or as dp_child_add.
 */
int dp_child_rekey(struct dp *dp, uint32_t old_in_spi, const struct dp_child *c,
    char *err, size_t errlen);
/*
 * The responder's side of a rekey: as dp_child_rekey, but the route stays
 * on the old pair (the peer installs the new SA only when our response
 * reaches it) until dp_child_route(new inbound SPI): when the new inbound
 * SA has seen a packet, or before the old pair is removed.
 */
int dp_child_rekey_later(struct dp *dp, uint32_t old_in_spi,
    const struct dp_child *c, char *err, size_t errlen);
/* Routes the pair's (inner, kind) to its outbound SA; -1: no such pair. */
int dp_child_route(struct dp *dp, uint32_t in_spi);
/*
 * The pair stops carrying new packets: its route goes (if it is still
 * the route of its inner address and kind) while its inbound SA stays,
 * for packets in flight, until dp_child_del. -1: no such pair.
 */
int dp_child_unroute(struct dp *dp, uint32_t in_spi);
/* Removes the pair with that inbound SPI and frees both SAs (keys
 * wiped). -1: no such pair. */
int dp_child_del(struct dp *dp, uint32_t in_spi);
/* Counters of the pair with that inbound SPI; -1: no such pair. */
int dp_child_stats(struct dp *dp, uint32_t in_spi, struct dp_child_stats *st);
void   dp_stats(struct dp *dp, struct dp_stats *st);
/*
 * Hard lifetimes: writes the inbound SPIs of up to max pairs whose
 * inbound or outbound SA reached a hard limit (packets, bytes, or the
 * outbound sequence space: ESP_E_HARD / ESP_E_SEQ, esp_sa_hard), each
 * pair once in its life, and returns how many. The IKE side deletes
 * those Child SAs (ike_rekey_child_hard). IKE thread only.
 */
size_t dp_expired(struct dp *dp, uint32_t *in_spis, size_t max);
/* Child SA pairs installed now. */
size_t dp_child_count(struct dp *dp);
/*
 * Writes the engine's counters, the number of Child SA pairs installed
 * ("dp child_sas N") and one line per Child SA as text ("name value"
 * pairs, no key material) to f; -1 on a write error.
 */
int    dp_stats_write(struct dp *dp, FILE *f);

#endif
