/*
 * The endpoint core both roles run on (ike/ue.c: initiator, ike/n3iwf.c:
 * responder). It holds what every IKE endpoint has: the UDP sockets on
 * the IKE and NAT-T ports (ike/net.h), the CSV files (ike/csv.h), the own
 * certificate and key, the CA, the 5G subscriber, and the table of IKE
 * SAs; and it does what every endpoint does with them:
 *
 *  - the event loop step: ike_ep_next() waits for a datagram (or the
 *    role's extra descriptor), finds the IKE SA by SPIs, drops what is
 *    not for us, absorbs retransmitted requests (cached response sent
 *    again; requests of an SA whose request is parked for keys dropped),
 *    decrypts, and hands the role one event: a new IKE_SA_INIT, the
 *    peer's next request, or the response to our outstanding request;
 *  - sending: requests (next message ID, kept and retransmitted with
 *    backoff by ike_ep_retx_tick()), responses (cached for duplicates),
 *    plain IKE_SA_INIT messages, notifies, INFORMATIONAL Delete;
 *  - NAT detection (NAT_DETECTION_*_IP), the "established" log line and
 *    the CSV rows of a connection.
 *
 * The roles keep only what differs: the UE waits for each response in
 * turn (blocking), the N3IWF serves the whole table from one loop. ESP
 * never reaches this loop: the data-plane engine (ike/dp.h) takes it off
 * the NAT-T port by SO_REUSEPORT and a BPF program, and the Child SAs
 * reach the engine through the hooks below (ike/tnl.c). Rekeys (ike/rekey.h) are exchanges in an SA's struct
 * ike_xchg, retransmitted by the same tick; their lifetimes are timers
 * next to ike_ep_retx_tick() (ike_rekey_tick()); a rekeyed IKE SA is a
 * new entry of the table with new SPIs.
 */
#ifndef IKE_ENDPOINT_H
#define IKE_ENDPOINT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include "common/buf.h"
#include "ike/amf.h"
#include "ike/crypto.h"
#include "ike/csv.h"
#include "ike/ikecfg.h"
#include "ike/msg.h"
#include "ike/net.h"
#include "ike/pld.h"
#include "ike/ratelimit.h"
#include "ike/sa.h"
#include "ike/satab.h"

/*
 * The data plane's hooks (ike/esp.h, built beside this): the endpoint
 * calls them when a Child SA's keys come into use and go. All NULL today
 * (no data plane: nothing to call). Make-before-break: `installed` for a
 * new Child SA (after IKE_AUTH / CREATE_CHILD_SA; inbound may be used at
 * once), `replaced` when a rekey makes `ch` the one to send with instead
 * of `old` (old stays valid inbound until `removed`; started: we started
 * the exchange, so the peer has ch already; else it gets ch only with our
 * response: send on ch once it has arrived from the peer, or old goes), `removed` when a
 * Child SA is deleted or taken out of use (a hard lifetime; every Child
 * SA of an IKE SA that ends, ike_rekey_unplug(), the replaced ones too):
 * it sends nothing more, and a second call for it must do nothing.
 * The keys are in ch->keys ("i" = UE -> N3IWF); spi_i is the UE's
 * inbound SPI, spi_r the N3IWF's. The data plane reports traffic back
 * with ike_rekey_child_soft() / ike_rekey_child_hard() (ike/rekey.h)
 * when a byte or packet limit (cfg child_{soft,hard}_{bytes,packets})
 * is reached: soft starts a rekey, hard (or the sequence numbers used
 * up) deletes the Child SA.
 */
struct ike_ep_hooks {
	void (*installed)(void *ctx, const struct ike_sa *sa,
	    const struct ike_child *ch);
	void (*replaced)(void *ctx, const struct ike_sa *sa,
	    const struct ike_child *old, const struct ike_child *ch,
	    bool started);
	void (*removed)(void *ctx, const struct ike_sa *sa,
	    const struct ike_child *ch);
	void *ctx;
};

/*
 * Where a rekey's fresh QKD key comes from (qkd mode, ike/rekey.c): the
 * N3IWF (master SAE) draws it asynchronously (`draw`: 0 queued, the
 * answer comes through ike_rekey_qkd_done(); -1 refused now: over budget
 * or the queue full); the UE fetches the key the N3IWF named (`fetch`,
 * dec_keys of one key ID, blocking; 0 or -1 logged).
 */
struct ike_qkd_keys;
struct subs;
struct ike_rekey_ops {
	int (*draw)(void *ctx, struct ike_sa *sa);
	int (*fetch)(void *ctx, const char *id, struct ike_qkd_keys *out);
	void *ctx;
};

/* Rekey counters of one endpoint (logged by ike_rekey_stats_log()). */
struct ike_rekey_stats {
	unsigned long child, ike;	     /* rekeys done (both directions) */
	unsigned long child_ours, ike_ours;  /* ... that we started */
	unsigned long collisions, redundant; /* collisions, SAs deleted */
	unsigned long temp_fail;	     /* TEMPORARY_FAILURE sent + got */
	unsigned long qkd_keys;		     /* fresh QKD keys used */
	unsigned long qkd_drawn; /* N3IWF: drawn (used, or wiped unused) */
	unsigned long expired;	 /* hard lifetimes reached */
};

/*
 * The role's calls from the table (each NULL: none): `gone` just before
 * an SA is freed; `moved` when a rekey moves the UE's state (Child SAs,
 * inner address, AMF) from one IKE SA to its successor.
 */
struct ike_ep_role {
	void (*gone)(void *ctx, struct ike_sa *sa);
	void (*moved)(void *ctx, struct ike_sa *from, struct ike_sa *to);
	void *ctx;
};

struct ike_ep {
	const struct ikecfg   *cfg;
	volatile sig_atomic_t *stop;
	struct ike_net	       net;
	struct ike_csv	       csv;
	X509		      *cert; /* own certificate (or NULL) */
	EVP_PKEY	      *key;
	struct buf	       cert_der;
	X509_STORE	      *ca;
	struct amf_sub	       sub;  /* the 5G subscriber */
	struct subs	      *subs; /* the subscriber range, or NULL */
	/* the IKE SAs: a dense array (iterate sa[0..nsa-1]; the order
	 * changes when one goes), indexed by SPIi, timed (ike/satab.h) */
	struct ike_sa	     **sa;
	size_t		       nsa, max_sa;
	struct ike_satab       tab;
	struct ike_sa	      *touched;	 /* looked at since the last reap */
	unsigned long	       sig_seen; /* the SIGUSR2 generation handled */
	size_t		       half_open;
	struct ike_loglim      full_log;
	struct ike_ep_role     role;
	unsigned	       done;	 /* connections established */
	unsigned long	       absorbed; /* requests absorbed (parked SA) */
	struct ike_pkt	       pkt;	 /* the datagram of the last event */
	struct ike_ep_hooks    hooks;	 /* the data plane's (NULL: none) */
	struct ike_rekey_ops   rk_ops;	 /* qkd: fresh keys for rekeys */
	struct ike_rekey_stats rks;
};

/*
 * Setup, in two steps (the roles open their kmsd clients in between):
 * ike_ep_open: the subscriber (and the range of ike/subs.h when cfg
 * sub_seed is set: --subscribers on the N3IWF, --load on the UE), certificate and key (with_cert: the UE
 * loads them in cert mode only), the CA; ike_ep_bind: the CSV files and
 * the sockets (N3IWF: host:port and the NAT-T port; UE: one socket on
 * cfg->local). 0, or -1 with a message in err naming the bad value.
 * ike_ep_close() after either (also frees the SAs in the table).
 */
int  ike_ep_open(struct ike_ep *ep, const struct ikecfg *c,
     volatile sig_atomic_t *stop, bool with_cert, char *err, size_t errlen);
int  ike_ep_bind(struct ike_ep *ep, char *err, size_t errlen);
/* The table alone, for max SAs (ike_ep_open does it): 0 or -1. */
int  ike_ep_table_init(struct ike_ep *ep, size_t max);
void ike_ep_close(struct ike_ep *ep);

/* ---- the table ---- */

/*
 * The table holds at most cfg max_ike_sas SAs. Every SA the endpoint
 * hands out (ike_ep_add, ike_ep_find, an event's sa) is "touched": the
 * responder's loop looks at touched SAs only (ike_ep_timers), so an SA
 * that changes without passing through those (a callback with its
 * pointer) must be handed to ike_ep_touch().
 */
/* Adds sa (the table owns it); -1 when full (logged, rate-limited). */
int  ike_ep_add(struct ike_ep *ep, struct ike_sa *sa);
bool ike_ep_full(const struct ike_ep *ep);
struct ike_sa	     *
ike_ep_find(struct ike_ep *ep, const uint8_t spi_i[static IKE_SPI_LEN],
	   const uint8_t spi_r[static IKE_SPI_LEN]);
void   ike_ep_touch(struct ike_ep *ep, struct ike_sa *sa);
/* sa leaves the table, not freed (the caller's now; it may
 * ike_ep_add it to another endpoint). */
void   ike_ep_detach(struct ike_ep *ep, struct ike_sa *sa);
/* IKE SAs not past IKE_SA_INIT, or past it without an IKE_AUTH request
 * (a count kept up to date, O(SAs touched)). */
size_t ike_ep_half_open(struct ike_ep *ep);
/* Frees the SAs in state SA_DEAD, their Child SAs out of the data plane
 * first (ike_rekey_unplug): a pass over the whole table (the UE). */
void   ike_ep_sweep(struct ike_ep *ep);

/*
 * The responder's timers, O(SAs due or touched) per call: the touched
 * SAs run `tick` at once (an event may have started a request to
 * retransmit, or ended the SA), every other SA when the deadline its
 * last tick returned has come; a SIGUSR2 (ike_rekey_sig_gen) makes them
 * all due. tick returns the ms until it wants to run again (INT_MAX:
 * never, unless touched). SA_DEAD SAs are freed (role.gone first).
 * Returns the ms to wait for the next deadline, at most max_ms.
 */
int ike_ep_timers(struct ike_ep *ep,
    int (*tick)(void *ctx, struct ike_sa *sa, uint64_t now), void *ctx,
    int max_ms);

/* ---- the event loop ---- */

enum ike_ep_evtype {
	IKE_EP_NONE = 0, /* timeout, signal, or handled/dropped here */
	IKE_EP_ERROR,	 /* socket error */
	IKE_EP_XFD,	 /* the extra descriptor is readable */
	IKE_EP_INIT,	 /* responder: an IKE_SA_INIT request, no SA yet */
	IKE_EP_REQUEST,	 /* the peer's next request on sa, in m */
	IKE_EP_RESPONSE, /* the response to sa's request, in m */
};

struct ike_ep_ev {
	enum ike_ep_evtype    type;
	struct ike_sa	     *sa;
	struct ike_hdr	      h; /* INIT, REQUEST, RESPONSE */
	const struct ike_pkt *p; /* the datagram (ep->pkt) */
	struct ike_msg	      m; /* REQUEST, RESPONSE: ike_msg_free() it */
};

/*
 * Waits up to wait_ms for one datagram (or xfd, -1: none) and makes it
 * an event in *ev. A request that floats to the NAT-T port moves its SA
 * there. Returns ev->type.
 */
enum ike_ep_evtype
ike_ep_next(struct ike_ep *ep, int xfd, int wait_ms, struct ike_ep_ev *ev);

/*
 * Retransmission of sa's outstanding request: when its time has come,
 * sends it again. Returns the ms to wait for its response (INT32_MAX
 * when nothing is outstanding), or -1 when every send was used (the
 * caller gives the SA up and says why).
 */
int ike_ep_retx_tick(struct ike_ep *ep, struct ike_sa *sa);

/*
 * Responder: true when p is an IKE_SA_INIT request of an SA in the table
 * (a retransmission: the same response sent again, or none yet while its
 * keys are made: absorbed, counted in ep->absorbed).
 */
bool ike_ep_init_dup(struct ike_ep *ep, const struct ike_pkt *p,
    const struct ike_hdr *h);

/* ---- sending ---- */

/* An empty inner payload chain in b (buf_free it). */
void ike_ep_inner_init(struct buf *b, struct ike_chain *c);
/* The IKE header of sa for a message of ours. */
void ike_ep_hdr(const struct ike_sa *sa, struct ike_hdr *h, uint8_t exchange,
    int response, uint32_t mid);
/*
 * Protected messages. Requests get the next MID of our direction, are
 * kept for retransmission and start the backoff; responses are cached
 * for duplicates. Both are counted in the connection's message sizes.
 * inner: the inner payload chain (first payload `first`).
 */
int  ike_ep_request(struct ike_ep *ep, struct ike_sa *sa, uint8_t exchange,
     uint8_t first, const struct buf *inner);
int  ike_ep_respond(struct ike_ep *ep, struct ike_sa *sa, uint8_t exchange,
     uint32_t mid, uint8_t first, const struct buf *inner);
/* A response to m with one notify (error, or NO_ADDITIONAL_SAS ...). */
int  ike_ep_respond_notify(struct ike_ep *ep, struct ike_sa *sa,
     const struct ike_msg *m, uint16_t type);
/*
 * Plain IKE_SA_INIT. Initiator: sa->init_req as our request (kept and
 * retransmitted as above). Responder: sa->init_resp (counted, sent).
 */
int  ike_ep_init_request(struct ike_ep *ep, struct ike_sa *sa);
int  ike_ep_init_respond(struct ike_ep *ep, struct ike_sa *sa);
/* Responder without an SA: a plain IKE_SA_INIT answer with one notify. */
void ike_ep_init_notify(struct ike_ep *ep, int natt,
    const struct sockaddr_in *to, const uint8_t spi_i[static IKE_SPI_LEN],
    uint16_t type, const uint8_t *data, size_t len);
/* INFORMATIONAL request with Delete (IKE SA). */
int  ike_ep_delete(struct ike_ep *ep, struct ike_sa *sa);
/*
 * The peer's INFORMATIONAL request m: answered (empty). true when it
 * deletes the IKE SA.
 */
bool ike_ep_informational(struct ike_ep *ep, struct ike_sa *sa,
    const struct ike_msg *m);

/* ---- NAT detection (RFC 7296 2.23) ---- */

/* NAT_DETECTION_SOURCE_IP (from) and _DESTINATION_IP (to) for c. */
int ike_ep_add_natd(struct ike_chain *c, const uint8_t spi_i[static 8],
    const uint8_t spi_r[static 8], const struct sockaddr_in *from,
    const struct sockaddr_in *to);
/*
 * The peer's NAT-D notifies in pl against the addresses: IKE_NAT_PEER
 * when its source is not `peer`, IKE_NAT_US when its destination is not
 * `local`; 0 when neither (or no NAT-D).
 */
#define IKE_NAT_PEER 1
#define IKE_NAT_US   2
int ike_ep_natd_check(const struct ike_pld *pl, const uint8_t spi_i[static 8],
    const uint8_t spi_r[static 8], const struct sockaddr_in *peer,
    const struct sockaddr_in *local);

/* ---- the connection's end ---- */

/* sa is up: state, the log line both roles print, the CSV rows. */
void ike_ep_established(struct ike_ep *ep, struct ike_sa *sa);
/* A connection that did not make it: its CSV rows with ok = 0. */
void ike_ep_csv_failed(struct ike_ep *ep, struct ike_sa *sa);

#endif
