/*
 * ike/pld: build -> parse round trip of every payload type; every
 * truncation of a valid chain fails cleanly; every single-bit flip is
 * survived; critical-bit handling; duplicates; SK placement; the SA
 * proposal builder, chooser (NO_PROPOSAL_CHOSEN cases) and reply check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/ikev2.h"
#include "ike/pld.h"
#include "ike/proposal.h"

static const uint8_t nonce[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
static const uint8_t ke[64] = { 0xaa, 0xbb };
static const uint8_t eap[] = { IKE_EAP_RESPONSE, 7, 0, 10, 254, 0, 0, 0x28,
	0xaf, 3 };
static const uint8_t spis[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t ip4[4] = { 10, 0, 0, 2 };

static struct ike_prop_desc
prop_qkd(void)
{
	struct ike_prop_desc d = {
		.proto = IKE_PROTO_IKE,
		.encr = IKE_ENCR_AES_GCM_16,
		.encr_bits = 256,
		.prf = IKE_PRF_HMAC_SHA2_256,
		.nke = 1,
		.ke = { IKE_KE_QKD_ETSI014 },
	};
	return d;
}

static struct ike_prop_desc
prop_dh(void)
{
	struct ike_prop_desc d = {
		.proto = IKE_PROTO_IKE,
		.encr = IKE_ENCR_AES_CBC,
		.encr_bits = 256,
		.prf = IKE_PRF_HMAC_SHA2_256,
		.integ = IKE_INTEG_HMAC_SHA2_256_128,
		.nke = 3,
		.ke = { IKE_KE_CURVE25519, IKE_KE_ECP256, IKE_KE_MODP2048 },
	};
	return d;
}

static struct ike_prop_desc
prop_esp(void)
{
	struct ike_prop_desc d = {
		.proto = IKE_PROTO_ESP,
		.spi_len = 4,
		.spi = { 0xc0, 1, 2, 3 },
		.encr = IKE_ENCR_AES_GCM_16,
		.encr_bits = 256,
	};
	return d;
}

/* A chain with one of every payload type we build. */
static void
build_all(struct buf *b, uint8_t *first)
{
	struct ike_chain     c;
	struct ike_prop_desc p[2] = { prop_qkd(), prop_dh() };
	struct ike_cp_pld    cp = { .type = IKE_CFG_REPLY, .nattr = 2 };
	struct ike_ts_pld    ts = { .nts = 2 };

	cp.attr[0].type = IKE_CP_INTERNAL_IP4_ADDRESS;
	cp.attr[0].val.p = ip4;
	cp.attr[0].val.len = 4;
	cp.attr[1].type = IKE_CP_INTERNAL_IP4_DNS; /* empty: a request */
	ts.ts[0].type = IKE_TS_IPV4_ADDR_RANGE;
	ts.ts[0].eport = 65535;
	memcpy(ts.ts[0].start, ip4, 4);
	memset(ts.ts[0].end, 0xff, 4);
	ts.ts[1].type = IKE_TS_IPV6_ADDR_RANGE;
	ts.ts[1].ipproto = 17;
	ts.ts[1].sport = ts.ts[1].eport = 500;
	memset(ts.ts[1].end, 0xff, 16);
	buf_init(b, IKE_MSG_MAX);
	ike_chain_init(&c, b, IKE_CHAIN_DETACHED);
	assert_int_equal(ike_pld_add_sa(&c, p, 2), 0);
	assert_int_equal(ike_pld_add_ke(&c, IKE_KE_ECP256, ke, sizeof(ke)), 0);
	assert_int_equal(ike_pld_add_nonce(&c, nonce, sizeof(nonce)), 0);
	assert_int_equal(ike_pld_add_notify(&c, IKE_PROTO_NONE, NULL, 0,
			     IKE_N_NAT_DETECTION_SOURCE_IP, nonce, 20),
	    0);
	assert_int_equal(ike_pld_add_notify(&c, IKE_PROTO_ESP, spis, 4,
			     IKE_N_REKEY_SA, NULL, 0),
	    0);
	assert_int_equal(ike_pld_add_id(&c, IKE_PL_IDI, IKE_ID_FQDN,
			     (const uint8_t *)"ue.example", 10),
	    0);
	assert_int_equal(ike_pld_add_id(&c, IKE_PL_IDR, IKE_ID_IPV4_ADDR, ip4,
			     4),
	    0);
	assert_int_equal(ike_pld_add_cert(&c, IKE_PL_CERT, IKE_CERT_X509_SIG,
			     ke, 30),
	    0);
	assert_int_equal(ike_pld_add_cert(&c, IKE_PL_CERTREQ, IKE_CERT_X509_SIG,
			     nonce, 20),
	    0);
	assert_int_equal(ike_pld_add_auth(&c, IKE_AUTH_PSK, nonce, 32), 0);
	assert_int_equal(ike_pld_add_eap(&c, eap, sizeof(eap)), 0);
	assert_int_equal(ike_pld_add_cp(&c, &cp), 0);
	assert_int_equal(ike_pld_add_ts(&c, IKE_PL_TSI, &ts), 0);
	assert_int_equal(ike_pld_add_ts(&c, IKE_PL_TSR, &ts), 0);
	assert_int_equal(ike_pld_add_delete(&c, IKE_PROTO_ESP, 4, spis, 2), 0);
	*first = c.first;
	assert_int_equal(*first, IKE_PL_SA);
}

static void
check_all(const struct ike_pld *p)
{
	const struct ike_proposal *pr;

	assert_int_equal(p->n, 15);
	assert_int_equal(p->sa.nprop, 2);
	pr = &p->sa.prop[0];
	assert_int_equal(pr->num, 1);
	assert_int_equal(pr->nxf, 3);
	assert_int_equal(pr->xf[0].type, IKE_XF_ENCR);
	assert_int_equal(pr->xf[0].id, IKE_ENCR_AES_GCM_16);
	assert_int_equal(pr->xf[0].keylen, 256);
	assert_int_equal(pr->xf[2].type, IKE_XF_KE);
	assert_int_equal(pr->xf[2].id, IKE_KE_QKD_ETSI014);
	assert_int_equal(p->sa.prop[1].num, 2);
	assert_int_equal(p->sa.prop[1].nxf, 6);
	assert_int_equal(p->ke.group, IKE_KE_ECP256);
	assert_int_equal(p->ke.data.len, sizeof(ke));
	assert_memory_equal(p->ke.data.p, ke, sizeof(ke));
	assert_int_equal(p->nonce.len, sizeof(nonce));
	assert_memory_equal(p->nonce.p, nonce, sizeof(nonce));
	assert_int_equal(p->nnotify, 2);
	assert_int_equal(p->notify[0].type, IKE_N_NAT_DETECTION_SOURCE_IP);
	assert_int_equal(p->notify[0].data.len, 20);
	assert_int_equal(p->notify[1].proto, IKE_PROTO_ESP);
	assert_int_equal(p->notify[1].spi_len, 4);
	assert_memory_equal(p->notify[1].spi, spis, 4);
	assert_ptr_equal(ike_pld_notify(p, IKE_N_REKEY_SA), &p->notify[1]);
	assert_null(ike_pld_notify(p, IKE_N_COOKIE));
	assert_int_equal(p->idi.type, IKE_ID_FQDN);
	assert_memory_equal(p->idi.data.p, "ue.example", 10);
	assert_int_equal(p->idi.body.len, 14);
	assert_int_equal(p->idr.type, IKE_ID_IPV4_ADDR);
	assert_int_equal(p->ncert, 1);
	assert_int_equal(p->cert[0].data.len, 30);
	assert_int_equal(p->ncertreq, 1);
	assert_int_equal(p->auth.method, IKE_AUTH_PSK);
	assert_int_equal(p->auth.data.len, 32);
	assert_int_equal(p->eap.code, IKE_EAP_RESPONSE);
	assert_int_equal(p->eap.id, 7);
	assert_memory_equal(p->eap.raw.p, eap, sizeof(eap));
	assert_int_equal(p->cp.type, IKE_CFG_REPLY);
	assert_int_equal(p->cp.nattr, 2);
	assert_memory_equal(p->cp.attr[0].val.p, ip4, 4);
	assert_int_equal(p->cp.attr[1].type, IKE_CP_INTERNAL_IP4_DNS);
	assert_int_equal(p->cp.attr[1].val.len, 0);
	assert_int_equal(p->tsi.nts, 2);
	assert_int_equal(p->tsi.ts[0].eport, 65535);
	assert_memory_equal(p->tsi.ts[0].start, ip4, 4);
	assert_int_equal(p->tsr.ts[1].type, IKE_TS_IPV6_ADDR_RANGE);
	assert_int_equal(p->tsr.ts[1].ipproto, 17);
	assert_int_equal(p->tsr.ts[1].sport, 500);
	assert_int_equal(p->del.proto, IKE_PROTO_ESP);
	assert_int_equal(p->del.nspi, 2);
	assert_memory_equal(p->del.spis.p, spis, 8);
	for (uint8_t t = IKE_PL_SA; t <= IKE_PL_EAP; t++)
		assert_int_equal(IKE_PLD_HAS(p, t),
		    t != IKE_PL_VENDOR && t != IKE_PL_SK);
}

static void
test_round_trip(void **state)
{
	struct buf	b;
	uint8_t		first;
	struct ike_pld *p = malloc(sizeof(*p));

	assert_non_null(p);
	build_all(&b, &first);
	assert_int_equal(ike_pld_parse(first, b.data, b.len, p), 0);
	check_all(p);
	free(p);
	buf_free(&b);
}

/* Every prefix fails, in its own exact-size heap copy (ASan sees reads). */
static void
test_truncations(void **state)
{
	struct buf	b;
	uint8_t		first, *cp;
	struct ike_pld *p = malloc(sizeof(*p));

	assert_non_null(p);
	build_all(&b, &first);
	for (size_t n = 0; n < b.len; n++) {
		cp = malloc(n ? n : 1);
		assert_non_null(cp);
		memcpy(cp, b.data, n);
		assert_int_equal(ike_pld_parse(first, cp, n, p), -1);
		assert_int_equal(p->err, IKE_N_INVALID_SYNTAX);
		free(cp);
	}
	/* Trailing garbage fails too. */
	assert_int_equal(buf_add_u8(&b, 0), 0);
	assert_int_equal(ike_pld_parse(first, b.data, b.len, p), -1);
	free(p);
	buf_free(&b);
}

static void
test_bit_flips(void **state)
{
	struct buf	b;
	uint8_t		first, *cp;
	struct ike_pld *p = malloc(sizeof(*p));
	size_t		ok = 0;

	assert_non_null(p);
	build_all(&b, &first);
	cp = malloc(b.len);
	assert_non_null(cp);
	for (size_t i = 0; i < b.len * 8; i++) {
		memcpy(cp, b.data, b.len);
		cp[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (ike_pld_parse(first, cp, b.len, p) == 0)
			ok++;
		else
			assert_true(p->err != 0);
	}
	assert_true(ok > 0 && ok < b.len * 8); /* data flips parse */
	free(cp);
	free(p);
	buf_free(&b);
}

static void
test_critical(void **state)
{
	/* Nonce -> unknown type 200 -> end. */
	uint8_t chain[] = {
		200,
		0,
		0,
		20,
		1,
		2,
		3,
		4,
		5,
		6,
		7,
		8,
		9,
		10,
		11,
		12,
		13,
		14,
		15,
		16,
		0,
		0,
		0,
		6,
		0xde,
		0xad,
	};
	struct ike_pld *p = malloc(sizeof(*p));

	assert_non_null(p);
	assert_int_equal(ike_pld_parse(IKE_PL_NONCE, chain, sizeof(chain), p),
	    0);
	assert_int_equal(p->n, 2);
	assert_int_equal(p->list[1].type, 200);
	assert_int_equal(p->list[1].body.len, 2);
	chain[21] = IKE_PLD_CRITICAL;
	assert_int_equal(ike_pld_parse(IKE_PL_NONCE, chain, sizeof(chain), p),
	    -1);
	assert_int_equal(p->err, IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD);
	assert_int_equal(p->err_type, 200);
	/* A known payload with the critical bit set is fine. */
	chain[1] = IKE_PLD_CRITICAL;
	chain[21] = 0;
	assert_int_equal(ike_pld_parse(IKE_PL_NONCE, chain, sizeof(chain), p),
	    0);
	assert_true(p->list[0].critical);
	/* Nonce twice. */
	chain[0] = IKE_PL_NONCE;
	chain[23] = 20;
	{
		uint8_t two[40];

		memcpy(two, chain, 20);
		memcpy(two + 20, chain, 20);
		two[20] = 0;
		assert_int_equal(ike_pld_parse(IKE_PL_NONCE, two, 40, p), -1);
		assert_int_equal(p->err, IKE_N_INVALID_SYNTAX);
	}
	free(p);
}

static void
test_sk_position(void **state)
{
	/* Notify (empty) -> SK(first inner = IDi, 8 body bytes). */
	uint8_t chain[] = {
		IKE_PL_SK,
		0,
		0,
		8,
		0,
		0,
		0x40,
		0x00,
		IKE_PL_IDI,
		0,
		0,
		12,
		1,
		2,
		3,
		4,
		5,
		6,
		7,
		8,
	};
	struct ike_pld *p = malloc(sizeof(*p));

	assert_non_null(p);
	assert_int_equal(ike_pld_parse(IKE_PL_NOTIFY, chain, sizeof(chain), p),
	    0);
	assert_true(IKE_PLD_HAS(p, IKE_PL_SK));
	assert_int_equal(p->sk.first, IKE_PL_IDI);
	assert_int_equal(p->sk.off, 12);
	assert_int_equal(p->sk.body.len, 8);
	/* SK not last: its length stops before the end of the data. */
	chain[11] = 10;
	assert_int_equal(ike_pld_parse(IKE_PL_NOTIFY, chain, sizeof(chain), p),
	    -1);
	chain[11] = 40;
	assert_int_equal(ike_pld_parse(IKE_PL_NOTIFY, chain, sizeof(chain), p),
	    -1);
	free(p);
}

static void
test_malformed(void **state)
{
	struct ike_pld	*p = malloc(sizeof(*p));
	uint8_t		 shortnonce[] = { 0, 0, 0, 8, 1, 2, 3, 4 };
	uint8_t		 badeap[] = { 0, 0, 0, 9, 1, 1, 0, 6, 1 };
	uint8_t		 baddel[] = { 0, 0, 0, 8, IKE_PROTO_IKE, 4, 0, 0 };
	uint8_t		 zerolen[] = { 0, 0, 0, 0 };
	struct buf	 b;
	struct ike_chain c;

	assert_non_null(p);
	assert_int_equal(ike_pld_parse(IKE_PL_NONCE, shortnonce,
			     sizeof(shortnonce), p),
	    -1);
	assert_int_equal(ike_pld_parse(IKE_PL_EAP, badeap, sizeof(badeap), p),
	    -1);
	assert_int_equal(ike_pld_parse(IKE_PL_DELETE, baddel, sizeof(baddel),
			     p),
	    -1);
	assert_int_equal(ike_pld_parse(IKE_PL_KE, zerolen, sizeof(zerolen), p),
	    -1);
	assert_int_equal(ike_pld_parse(IKE_PL_NONE, NULL, 0, p), 0);
	assert_int_equal(p->n, 0);
	/* Builders refuse what the parser would refuse. */
	buf_init(&b, 4096);
	ike_chain_init(&c, &b, IKE_CHAIN_DETACHED);
	assert_int_equal(ike_pld_add_nonce(&c, nonce, 8), -1);
	assert_int_equal(ike_pld_add_eap(&c, badeap + 4, 5), -1);
	assert_int_equal(ike_pld_add_delete(&c, IKE_PROTO_IKE, 4, spis, 1), -1);
	assert_int_equal(ike_pld_add_id(&c, IKE_PL_AUTH, 1, nonce, 4), -1);
	/* A payload that outgrows the buffer's maximum fails cleanly. */
	buf_free(&b);
	buf_init(&b, 64);
	ike_chain_init(&c, &b, IKE_CHAIN_DETACHED);
	assert_int_equal(ike_pld_add_ke(&c, 14, ke, 64), -1);
	buf_free(&b);
	free(p);
}

/* Back-patching through the low-level API and into a header byte. */
static void
test_back_patch(void **state)
{
	struct buf	 b;
	struct ike_chain c;
	size_t		 s;

	buf_init(&b, 4096);
	assert_int_equal(buf_add_u8(&b, 0xee), 0); /* "header" byte */
	ike_chain_init(&c, &b, 0);
	assert_int_equal(ike_pld_begin(&c, IKE_PL_VENDOR, 0, &s), 0);
	assert_int_equal(buf_add(&b, "abc", 3), 0);
	assert_int_equal(ike_pld_end(&c, s), 0);
	assert_int_equal(ike_pld_add_nonce(&c, nonce, 16), 0);
	assert_int_equal(b.data[0], IKE_PL_VENDOR);
	assert_int_equal(b.data[1], IKE_PL_NONCE); /* patched next */
	assert_int_equal(b.data[4], 7);		   /* patched length */
	assert_int_equal(b.data[8], IKE_PL_NONE);
	assert_int_equal(b.data[11], 20);
	buf_free(&b);
}

/* ---- proposals ---- */

static void
offer(struct ike_sa_pld *sa, const struct ike_prop_desc *d, size_t n)
{
	struct buf	 b;
	struct ike_chain c;
	struct ike_pld	*p = malloc(sizeof(*p));

	assert_non_null(p);
	buf_init(&b, 4096);
	ike_chain_init(&c, &b, IKE_CHAIN_DETACHED);
	assert_int_equal(ike_pld_add_sa(&c, d, n), 0);
	assert_int_equal(ike_pld_parse(c.first, b.data, b.len, p), 0);
	*sa = p->sa;
	free(p);
	buf_free(&b);
}

static void
test_choose(void **state)
{
	struct ike_sa_pld    sa;
	struct ike_prop_desc both[2] = { prop_qkd(), prop_dh() };
	struct ike_prop_desc qkd = prop_qkd(), dh = prop_dh(), ch;
	struct ike_prop_desc dh14 = prop_dh();

	/* A qkd peer meets a qkd policy. */
	offer(&sa, &qkd, 1);
	assert_int_equal(ike_sa_choose(&sa, &qkd, 1, &ch), 0);
	assert_int_equal(ch.num, 1);
	assert_int_equal(ch.encr, IKE_ENCR_AES_GCM_16);
	assert_int_equal(ch.integ, 0);
	assert_int_equal(ch.nke, 1);
	assert_int_equal(ch.ke[0], IKE_KE_QKD_ETSI014);
	/* A peer without qkd: NO_PROPOSAL_CHOSEN, cleanly. */
	assert_int_equal(ike_sa_choose(&sa, &dh, 1, &ch), -1);
	/* Offer [qkd, dh]: a dh-only policy takes proposal 2, our KE order. */
	offer(&sa, both, 2);
	dh14.nke = 1;
	dh14.ke[0] = IKE_KE_MODP2048;
	assert_int_equal(ike_sa_choose(&sa, &dh14, 1, &ch), 0);
	assert_int_equal(ch.num, 2);
	assert_int_equal(ch.ke[0], IKE_KE_MODP2048);
	assert_int_equal(ike_sa_choose(&sa, &dh, 1, &ch), 0);
	assert_int_equal(ch.ke[0], IKE_KE_CURVE25519);
	/* Peer preference first: policy [dh, qkd] still gets proposal 1. */
	assert_int_equal(ike_sa_choose(&sa, (struct ike_prop_desc[]){ dh, qkd },
			     2, &ch),
	    0);
	assert_int_equal(ch.num, 1);
	/* Key length must match. */
	qkd.encr_bits = 128;
	assert_int_equal(ike_sa_choose(&sa, &qkd, 1, &ch), -1);
	/* Unknown transform type or attribute: proposal skipped. */
	offer(&sa, both, 1);
	sa.prop[0].xf[sa.prop[0].nxf++] =
	    (struct ike_xform){ .type = 6, .id = 1 };
	assert_int_equal(ike_sa_choose(&sa, both, 1, &ch), -1);
	sa.prop[0].nxf--;
	sa.prop[0].xf[0].bad_attr = 1;
	assert_int_equal(ike_sa_choose(&sa, both, 1, &ch), -1);
	sa.nprop = 0;
	assert_int_equal(ike_sa_choose(&sa, both, 1, &ch), -1);
}

static void
test_choose_esp(void **state)
{
	struct ike_sa_pld    sa;
	struct ike_prop_desc esp = prop_esp(), ch, pfs = prop_esp();

	offer(&sa, &esp, 1);
	assert_int_equal(sa.prop[0].nxf, 2); /* ENCR + ESN */
	assert_int_equal(sa.prop[0].xf[1].type, IKE_XF_ESN);
	assert_int_equal(ike_sa_choose(&sa, &esp, 1, &ch), 0);
	assert_int_equal(ch.spi_len, 4);
	assert_memory_equal(ch.spi, esp.spi, 4);
	/* Our policy wants PFS, the peer offers none. */
	pfs.nke = 1;
	pfs.ke[0] = IKE_KE_CURVE25519;
	assert_int_equal(ike_sa_choose(&sa, &pfs, 1, &ch), -1);
	/* The peer wants PFS; we have no KE: refuse. */
	offer(&sa, &pfs, 1);
	assert_int_equal(ike_sa_choose(&sa, &esp, 1, &ch), -1);
	/* ESN only: refused. */
	sa.prop[0].xf[sa.prop[0].nxf - 1].id = IKE_ESN_YES;
	assert_int_equal(ike_sa_choose(&sa, &pfs, 1, &ch), -1);
	/* IKE policy vs ESP offer. */
	esp = prop_qkd();
	assert_int_equal(ike_sa_choose(&sa, &esp, 1, &ch), -1);
}

/* The SA payload of d[0..n) as a parsed message, for ike_prop_choose_esp. */
static struct ike_pld *
offer_pld(const struct ike_prop_desc *d, size_t n)
{
	struct ike_pld *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	offer(&p->sa, d, n);
	p->seen |= IKE_PLD_BIT(IKE_PL_SA);
	return p;
}

/* The value of the ESN transforms of proposal i, in order, as "1 0". */
static void
esn_ids(const struct ike_sa_pld *sa, size_t i, char *s, size_t n)
{
	s[0] = '\0';
	for (size_t j = 0; j < sa->prop[i].nxf; j++)
		if (sa->prop[i].xf[j].type == IKE_XF_ESN)
			snprintf(s + strlen(s), n - strlen(s), "%s%u",
			    s[0] ? " " : "", sa->prop[i].xf[j].id);
}

/*
 * ESN (RFC 7296 3.3.2, RFC 4303 A2): we offer ESN then NO_ESN; a
 * responder takes ESN when offered, NO_ESN from a peer without it; with
 * esn off it offers NO_ESN only and refuses an ESN-only offer.
 */
static void
test_esn(void **state)
{
	struct ikecfg	     on = { .aead = 1, .esn = 1 }, off = { .aead = 1 };
	struct ike_prop_desc d, ch, got, peer;
	struct ike_pld	    *pl;
	struct ike_sa_pld    sa;
	char		     ids[32];

	/* our offer: ESN first, then NO_ESN, in the one ESP proposal */
	ike_prop_esp(&on, &d);
	memcpy(d.spi, "\xc0\x01\x02\x03", 4);
	offer(&sa, &d, 1);
	esn_ids(&sa, 0, ids, sizeof(ids));
	assert_string_equal(ids, "1 0");
	ike_prop_esp(&off, &d);
	offer(&sa, &d, 1);
	esn_ids(&sa, 0, ids, sizeof(ids));
	assert_string_equal(ids, "0");
	/* an ESN-capable responder chooses ESN from our offer */
	ike_prop_esp(&on, &d);
	memcpy(d.spi, "\xc0\x01\x02\x03", 4);
	pl = offer_pld(&d, 1);
	assert_int_equal(ike_prop_choose_esp(&on, pl, &ch), 0);
	assert_true(ike_prop_uses_esn(&ch));
	assert_int_equal(ch.nesn, 1);
	/* its answer carries ESN alone; our check of it keeps ESN */
	offer(&pl->sa, &ch, 1);
	esn_ids(&pl->sa, 0, ids, sizeof(ids));
	assert_string_equal(ids, "1");
	assert_int_equal(ike_prop_reply_esp(&d, pl, &got), 0);
	assert_true(ike_prop_uses_esn(&got));
	free(pl);
	/* an esn-off responder takes NO_ESN from the same offer */
	pl = offer_pld(&d, 1);
	assert_int_equal(ike_prop_choose_esp(&off, pl, &ch), 0);
	assert_false(ike_prop_uses_esn(&ch));
	assert_int_equal(ch.esn[0], IKE_ESN_NONE);
	offer(&pl->sa, &ch, 1);
	assert_int_equal(ike_prop_reply_esp(&d, pl, &got), 0);
	assert_false(ike_prop_uses_esn(&got));
	free(pl);
	/* a NO_ESN-only peer (older strongSwan default) is accepted */
	peer = prop_esp();
	pl = offer_pld(&peer, 1);
	assert_int_equal(ike_prop_choose_esp(&on, pl, &ch), 0);
	assert_false(ike_prop_uses_esn(&ch));
	free(pl);
	/* an ESN-only offer: taken with esn on, refused with it off
	 * (the caller answers NO_PROPOSAL_CHOSEN) */
	peer.nesn = 1;
	peer.esn[0] = IKE_ESN_YES;
	pl = offer_pld(&peer, 1);
	assert_int_equal(ike_prop_choose_esp(&on, pl, &ch), 0);
	assert_true(ike_prop_uses_esn(&ch));
	assert_int_equal(ike_prop_choose_esp(&off, pl, &ch), -1);
	/* a reply with ESN to our NO_ESN-only offer: not what we offered */
	offer(&pl->sa, &peer, 1);
	ike_prop_esp(&off, &d);
	assert_int_equal(ike_prop_reply_esp(&d, pl, &got), -1);
	/* a reply with both ESN values: refused (one of each type) */
	ike_prop_esp(&on, &d);
	offer(&pl->sa, &d, 1);
	assert_int_equal(ike_prop_reply_esp(&d, pl, &got), -1);
	free(pl);
}

static void
test_check_reply(void **state)
{
	struct ike_prop_desc mine[2] = { prop_qkd(), prop_dh() };
	struct ike_prop_desc ch, ch2;
	struct ike_sa_pld    offered, reply;

	offer(&offered, mine, 2);
	assert_int_equal(ike_sa_choose(&offered, &mine[1], 1, &ch), 0);
	offer(&reply, &ch, 1); /* responder echoes its choice */
	assert_int_equal(reply.prop[0].num, 2);
	assert_int_equal(ike_sa_check_reply(&reply, mine, 2, &ch2), 0);
	assert_int_equal(ch2.ke[0], ch.ke[0]);
	assert_int_equal(ch2.num, 2);
	/* Two proposals, or two of a type, or not what we offered: refused. */
	assert_int_equal(ike_sa_check_reply(&offered, mine, 2, &ch2), -1);
	offer(&reply, &mine[1], 1); /* three KE transforms */
	assert_int_equal(ike_sa_check_reply(&reply, mine, 2, &ch2), -1);
	ch.ke[0] = IKE_KE_MODP2048;
	offer(&reply, &ch, 1);
	assert_int_equal(ike_sa_check_reply(&reply, mine, 1, &ch2), -1);
}

static void
test_names(void **state)
{
	assert_string_equal(ike_payload_name(IKE_PL_NONCE), "NONCE");
	assert_string_equal(ike_payload_name(250), "UNKNOWN");
	assert_string_equal(ike_exchange_name(IKE_SA_INIT), "IKE_SA_INIT");
	assert_string_equal(ike_notify_name(IKE_N_QKD_KEY_IDS), "QKD_KEY_IDS");
	assert_string_equal(ike_notify_name(IKE_N_NAS_IP4_ADDRESS),
	    "NAS_IP4_ADDRESS");
	assert_string_equal(ike_notify_name(IKE_N_USE_PPK), "USE_PPK");
	assert_string_equal(ike_xf_name(IKE_XF_KE, 1025), "QKD_ETSI014");
	assert_string_equal(ike_xf_name(9, 1), "UNKNOWN");
	assert_string_equal(ike_xf_type_name(IKE_XF_KE), "KE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_critical),
		cmocka_unit_test(test_sk_position),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_back_patch),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_choose_esp),
		cmocka_unit_test(test_esn),
		cmocka_unit_test(test_check_reply),
		cmocka_unit_test(test_names),
	};

	log_init("test_ike_pld", getenv("V") ? LOG_DEBUG : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
