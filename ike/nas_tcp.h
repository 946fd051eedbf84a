/*
 * NAS over TCP on NWu (TS 24.502 9.4, "NAS message envelope"): after
 * IKE_AUTH the UE opens a TCP connection to NAS_IP4_ADDRESS:NAS_TCP_PORT
 * inside the signalling Child SA, and every NAS message travels in an
 * envelope: a 2-octet length field (network order, the length of the NAS
 * message in octets) followed by the NAS message. Both directions.
 *
 * struct nas_tcp_rx reassembles envelopes from a byte stream: several
 * envelopes in one read, one envelope over many reads. A length of 0 or
 * above the receiver's maximum is a framing error (the caller closes the
 * connection); bytes left at EOF are a truncated envelope.
 */
#ifndef IKE_NAS_TCP_H
#define IKE_NAS_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define NAS_TCP_HDR 2
#define NAS_TCP_MAX 4096 /* largest NAS message we accept in an envelope */

struct nas_tcp_rx {
	uint8_t buf[NAS_TCP_HDR + NAS_TCP_MAX];
	size_t	len;  /* bytes held */
	size_t	used; /* bytes of envelopes already returned */
	size_t	max;  /* largest NAS message accepted (<= NAS_TCP_MAX) */
	bool	bad;  /* a framing error was seen: no more envelopes */
};

/* max 0 or above NAS_TCP_MAX means NAS_TCP_MAX. */
void nas_tcp_rx_init(struct nas_tcp_rx *r, size_t max);

/* Appends n stream bytes. 0, or -1 when they do not fit (the caller
 * should take envelopes with nas_tcp_next() first: one envelope of the
 * maximum size always fits) or after a framing error. */
int nas_tcp_feed(struct nas_tcp_rx *r, const uint8_t *p, size_t n);

/* Room for the next read() straight into the buffer: *room bytes at the
 * returned pointer; call nas_tcp_fed(r, n) after writing n of them. */
uint8_t *nas_tcp_space(struct nas_tcp_rx *r, size_t *room);
void	 nas_tcp_fed(struct nas_tcp_rx *r, size_t n);

/*
 * The next whole NAS message: true with the message in *msg and *len (valid until the next
 * feed/space call), or false when more bytes are needed or the stream is
 * broken (then nas_tcp_broken() says so).
 */
bool nas_tcp_next(struct nas_tcp_rx *r, const uint8_t **msg, size_t *len);

/* Whether a length field was 0 or above the maximum. */
bool nas_tcp_broken(const struct nas_tcp_rx *r);

/* Whether part of an envelope is held (at EOF: truncated). */
bool nas_tcp_partial(const struct nas_tcp_rx *r);

/* Appends the envelope of one NAS message (1..NAS_TCP_MAX bytes). 0/-1. */
int nas_tcp_frame(struct buf *out, const uint8_t *msg, size_t n);

/*
 * One NAS/TCP connection on a non-blocking socket, for both ends
 * (nas_ue.c, nas_n3iwf.c): the receive reassembly and a send queue.
 */
struct nas_tcp_conn {
	int		  fd;
	struct nas_tcp_rx rx;
	struct buf	  tx; /* envelopes not yet written */
	size_t		  tx_off;
	bool		  eof; /* the peer closed (or the socket failed) */
};

#define NAS_TCP_TXMAX 65536 /* bytes queued at most per connection */

/* Takes fd (made non-blocking). */
void nas_tcp_conn_init(struct nas_tcp_conn *c, int fd, size_t max);
/* Closes the socket, frees the queue; NULL ok. */
void nas_tcp_conn_close(struct nas_tcp_conn *c);

/* One read() into the reassembly buffer: 1 bytes came, 0 nothing now
 * (or no room before envelopes are taken), -1 EOF or error (c->eof). */
int nas_tcp_read(struct nas_tcp_conn *c);

/* Queues the envelope of msg and writes what the socket takes. 0/-1. */
int  nas_tcp_send(struct nas_tcp_conn *c, const uint8_t *msg, size_t n);
/* Writes queued bytes: 0 (maybe some left), -1 on a socket error. */
int  nas_tcp_flush(struct nas_tcp_conn *c);
/* Whether bytes wait to be written (poll for POLLOUT). */
bool nas_tcp_pending(const struct nas_tcp_conn *c);
#endif
