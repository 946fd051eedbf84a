/*
 * GRE for the NWu user plane (3GPP TS 24.502 clause 9.3.3, "GRE
 * encapsulated user data packet"): an 8-byte header (RFC 2784 with the
 * RFC 2890 Key field) in front of one user data packet, inside the
 * user-plane Child SA (ESP next header 47).
 *
 *   octet 1      C=0 (bit 7), K=1 (bit 5), S=0 (bit 4), Reserved0 0
 *   octet 2      Reserved0 0, Ver 0
 *   octets 3-4   Protocol Type
 *   octets 5-8   Key: QFI in octet 5 bits 5..0, RQI in octet 8 bit 7
 *
 * Protocol Type: Release 19 of the spec sets it to zero and tells the
 * receiver to ignore it; earlier releases and free5GC send the
 * EtherType of the payload (0x0800 IPv4, 0x86DD IPv6). We send the
 * EtherType (what every peer accepts) and ignore it on input, taking
 * the IP version from the payload's first nibble instead.
 */
#ifndef IKE_GRE_H
#define IKE_GRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRE_HDR_LEN    8
#define GRE_FLAG_K     0x20 /* octet 1: Key present */
#define GRE_QFI_MAX    63
#define GRE_PROTO_IPV4 0x0800
#define GRE_PROTO_IPV6 0x86DD

struct gre_qos {
	uint8_t qfi; /* 0..63 */
	bool	rqi; /* reflective QoS indicated */
};

/*
 * Writes the header for the IP packet ip[0..len) into hdr. -1 when the
 * packet is not IPv4 or IPv6 (first nibble) or the QFI is over 63.
 */
int gre_encap_hdr(uint8_t hdr[static GRE_HDR_LEN], const struct gre_qos *q,
    const uint8_t *ip, size_t len);
/*
 * Checks the header at p[0..len) (C, S, Reserved0 and Ver zero, K set)
 * and that a non-empty IPv4 or IPv6 packet follows; fills *q. The
 * packet is p[GRE_HDR_LEN .. len). -1 on any mismatch or short input.
 */
int gre_decap(const uint8_t *p, size_t len, struct gre_qos *q);

#endif
