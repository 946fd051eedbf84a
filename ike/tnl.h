/*
 * The tunnel (cfg tunnel = yes): what both IKE endpoints do with the
 * data plane (ike/dp.h). tnl_open() makes the TUN device (UE: its inner
 * address from CP; N3IWF: NAS_IP4_ADDRESS) and its route (cfg tun_route:
 * UE default, N3IWF inner_ip/32), starts the engine on the endpoint's
 * NAT-T socket, and sets the endpoint's Child SA hooks (endpoint.h):
 * installed -> dp_child_add, replaced -> dp_child_rekey, removed ->
 * dp_child_unroute now, dp_child_del after the grace (a second removed
 * of the same pair does nothing). A rekey the peer started moves the route to the new SA
 * only once a packet came on it, or before the old one goes (the peer
 * installs it when our response arrives: sending on it at once would
 * lose packets meanwhile). A removed pair leaves the engine TNL_GRACE_MS
 * later: ESP the peer sent before its Delete may still sit in the
 * engine's socket while the IKE thread already has the Delete's answer.
 * tnl_tick(), once a second from the role's loop: hard limits (bytes,
 * packets, sequence numbers: dp_expired, each pair once ->
 * ike_rekey_child_hard, which deletes the Child SA), byte and
 * packet soft lifetimes (dp_child_stats().soft -> ike_rekey_child_soft)
 * and the status file (cfg status_file: dp_stats_write, rewritten whole
 * every second, through a temporary file and rename; a last time at
 * tnl_close, once the removed pairs are gone).
 *
 * Keys "i" of a Child SA are UE -> N3IWF (sa.h): the UE sends with them
 * and receives on spi_i, the N3IWF the other way round. A user-plane SA
 * (nwu) carries GRE with QFI TNL_QFI; rfc7296's one Child SA is plain.
 */
#ifndef IKE_TNL_H
#define IKE_TNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/if.h>
#include <netinet/in.h>

#include "ike/endpoint.h"

#define TNL_QFI	     1	 /* the QFI of the PDU session (5G_QOS_INFO says 1) */
#define TNL_PENDING  64	 /* rekeys answered, route not yet moved */
#define TNL_GRACE_MS 500 /* a removed SA still takes packets in flight */

/* A rekey we answered: the new pair waits for its first packet. */
struct tnl_pending {
	uint32_t old_in, new_in; /* inbound SPIs */
};

struct dp;

struct tnl {
	struct ike_ep	  *ep;
	struct dp	  *dp;
	int		   tun_fd;
	char		   ifname[IFNAMSIZ];
	/* UE: its own inner address; N3IWF: the UE's (cfg inner_ip). */
	struct in_addr	   inner;
	uint64_t	   next_tick; /* monotonic ns */
	struct tnl_pending pend[TNL_PENDING];
	size_t		   npend;
	/* removed SAs: inbound SPI and when it leaves the engine (ns) */
	struct {
		uint32_t in_spi;
		uint64_t at;
	} grave[TNL_PENDING];
	size_t ngrave;
};

/*
 * TUN (address tun_addr/32), route, engine started, hooks set. inner as
 * above. 0, or -1 with err written (nothing left open).
 */
int  tnl_open(struct tnl *t, struct ike_ep *ep, struct in_addr tun_addr,
     struct in_addr inner, struct in_addr nas_ip, char *err, size_t errlen);
/* Engine stopped (every SA wiped), TUN closed, hooks cleared; NULL dp ok. */
void tnl_close(struct tnl *t);
/* Installs ch of sa now (before the IKE SA is established); 0 or -1. */
int
tnl_install(struct tnl *t, const struct ike_sa *sa, const struct ike_child *ch);
/* true when ch's inbound SA is installed. */
bool tnl_has(const struct tnl *t, const struct ike_child *ch);
/* Soft lifetimes and the status file, at most once a second. */
void tnl_tick(struct tnl *t);
/* Writes the status file now (no-op without cfg status_file). */
void tnl_status(struct tnl *t);

/* Adds the IPv4 route "A.B.C.D/N" or "default" into ifname; 0 or -1. */
int
tnl_route_add(const char *ifname, const char *route, char *err, size_t errlen);

#endif
