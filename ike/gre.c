/* GRE header of the NWu user plane (TS 24.502 9.3.3): build and check. */
#include <string.h>

#include "ike/gre.h"

int
gre_encap_hdr(uint8_t hdr[static GRE_HDR_LEN], const struct gre_qos *q,
    const uint8_t *ip, size_t len)
{
	uint16_t proto;

	if (len == 0 || q->qfi > GRE_QFI_MAX)
		return -1;
	switch (ip[0] >> 4) {
	case 4: proto = GRE_PROTO_IPV4; break;
	case 6: proto = GRE_PROTO_IPV6; break;
	default: return -1;
	}
	hdr[0] = GRE_FLAG_K;
	hdr[1] = 0;
	hdr[2] = (uint8_t)(proto >> 8);
	hdr[3] = (uint8_t)proto;
	hdr[4] = q->qfi;
	hdr[5] = 0;
	hdr[6] = 0;
	hdr[7] = q->rqi ? 0x80 : 0;
	return 0;
}

int
gre_decap(const uint8_t *p, size_t len, struct gre_qos *q)
{
	uint8_t v;

	if (len <= GRE_HDR_LEN)
		return -1;
	/* Exactly K among C, K, S and Reserved0; Reserved0 and Ver zero. */
	if (p[0] != GRE_FLAG_K || p[1] != 0)
		return -1;
	v = p[GRE_HDR_LEN] >> 4;
	if (v != 4 && v != 6)
		return -1;
	q->qfi = p[4] & GRE_QFI_MAX;
	q->rqi = (p[7] & 0x80) != 0;
	return 0;
}
