/*
 * libFuzzer target for the IKEv2 message parser and the SK decryptor.
 *
 * Input: one mode byte, then the data.
 *   mode 0: a whole datagram, plain parse (header + payload chain)
 *   mode 1: a whole datagram, decrypted with a fixed AES-CBC/HMAC key
 *   mode 2: a whole datagram, decrypted with a fixed AES-GCM-16 key
 *   mode 3: byte 1 = first payload type, then an inner payload chain: it
 *           is parsed directly, then sealed with the fixed key (CBC or GCM
 *           by length parity), decrypted and parsed again, which drives
 *           the inner parser through the authenticated path.
 * Every parsed result also goes through ike/proposal.c as each side of
 * three configurations would take it (qkd with AES-GCM; DH group 31 and
 * group 19 with AES-CBC + HMAC): the IKE SA chooser and KE check, the
 * initiator's reply check, the ESP chooser and reply check; and, for KE
 * payloads of groups 19 and 31, through the key exchange validation.
 *
 * `make fuzz` builds and runs it with the other targets (fuzz/README.md).
 * Its seeds in fuzz/corpus/ike/ come from this file's own writer:
 *   clang -std=c11 -D_GNU_SOURCE -DIKE_FUZZ_MKSEEDS -I. fuzz/ike_fuzz.c \
 *     ike/ikev2.c ike/pld.c ike/pld_build.c ike/pld_sa.c ike/msg.c \
 *     ike/crypto.c ike/crypto_ke.c ike/crypto_auth.c ike/proposal.c \
 *     ike/ikecfg.c ike/ratelimit.c common/?*.c \
 *     $(pkg-config --cflags --libs libmicrohttpd gnutls libcurl openssl \
 *     jansson sqlite3 inih) -o build/ike_fuzz_seeds
 *   ./build/ike_fuzz_seeds fuzz/corpus/ike
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/crypto.h"
#include "ike/ikecfg.h"
#include "ike/ikev2.h"
#include "ike/msg.h"
#include "ike/pld.h"
#include "ike/proposal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ike_key ek_cbc, ak_cbc, ek_gcm;
static struct ike_dh *dh19, *dh31;

/* The configurations whose proposals (ike/proposal.c) meet the input. */
#define NCFG 3
static struct ikecfg cfgs[NCFG];

static void
init_once(void)
{
	static int done;
	uint8_t	   k[36];

	if (done)
		return;
	done = 1;
	log_init("ike_fuzz", LOG_ERR);
	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)(0x5a ^ (i * 13));
	ike_key_set(&ek_cbc, k, 32);
	ike_key_set(&ak_cbc, k + 3, 32);
	ike_key_set(&ek_gcm, k, 36);
	dh19 = ike_dh_new(IKE_KE_ECP256);
	dh31 = ike_dh_new(IKE_KE_CURVE25519);
	cfgs[0].mode = IKE_MODE_QKD;
	cfgs[0].aead = 1;
	cfgs[1].mode = IKE_MODE_PSK;
	cfgs[1].dh_group = IKE_KE_CURVE25519;
	cfgs[2].mode = IKE_MODE_QKD_DH;
	cfgs[2].dh_group = IKE_KE_ECP256;
	for (size_t i = 0; i < NCFG; i++)
		cfgs[i].role = IKE_ROLE_N3IWF;
}

static struct ike_sk_ctx
fuzz_ctx(int gcm)
{
	struct ike_sk_ctx k;

	memset(&k, 0, sizeof(k));
	if (gcm) {
		k.encr = IKE_ENCR_AES_GCM_16;
		k.ekey = &ek_gcm;
	} else {
		k.encr = IKE_ENCR_AES_CBC;
		k.ekey = &ek_cbc;
		k.integ = IKE_INTEG_HMAC_SHA2_256_128;
		k.akey = &ak_cbc;
	}
	return k;
}

/* The SA payload as each configuration's responder and initiator read it. */
static void
use_sa(const struct ike_pld *p)
{
	struct ike_prop_desc ch, offer;
	uint8_t		     grp[2];

	for (size_t i = 0; i < NCFG; i++) {
		if (ike_prop_choose_ike(&cfgs[i], p, &ch) == 0)
			(void)ike_prop_check_ke(&cfgs[i], &ch, p, grp);
		if (IKE_PLD_HAS(p, IKE_PL_SA))
			(void)ike_prop_reply_ike(&cfgs[i], &p->sa, &ch);
		(void)ike_prop_choose_esp(&cfgs[i], p, &ch);
		ike_prop_esp(&cfgs[i], &offer);
		(void)ike_prop_reply_esp(&offer, p, &ch);
	}
}

/* Feeds a parse result to the consumers that read decoded forms. */
static void
use_result(const struct ike_pld *p)
{
	struct ike_dh *dh = NULL;
	struct buf     s;

	use_sa(p);
	(void)ike_pld_notify(p, IKE_N_QKD_KEY_IDS);
	if (IKE_PLD_HAS(p, IKE_PL_KE))
		dh = p->ke.group == IKE_KE_ECP256    ? dh19 :
		    p->ke.group == IKE_KE_CURVE25519 ? dh31 :
						       NULL;
	if (dh != NULL) {
		buf_init(&s, 1024);
		ike_dh_derive(dh, p->ke.data.p, p->ke.data.len, &s);
		buf_free(&s);
	}
}

static void
fuzz_msg(const uint8_t *p, size_t len, const struct ike_sk_ctx *k)
{
	struct ike_msg *m = malloc(sizeof(*m));

	if (m == NULL)
		return;
	if (ike_msg_parse(p, len, k, m) == 0)
		use_result(&m->pld);
	ike_msg_free(m);
	free(m);
}

static void
fuzz_inner(const uint8_t *p, size_t len)
{
	struct ike_pld	 *pl = malloc(sizeof(*pl));
	struct ike_hdr	  h;
	struct ike_sk_ctx k = fuzz_ctx(len & 1);
	struct buf	  out;

	if (pl == NULL || len < 1)
		goto done;
	if (ike_pld_parse(p[0], p + 1, len - 1, pl) == 0)
		use_result(pl);
	memset(&h, 0, sizeof(h));
	h.spi_i[0] = 1;
	h.exchange = IKE_AUTH;
	h.msgid = 1;
	buf_init(&out, IKE_MSG_MAX);
	if (ike_msg_seal(&out, &h, p[0], p + 1, len - 1, &k) == 0)
		fuzz_msg(out.data, out.len, &k);
	buf_free(&out);
done:
	free(pl);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ike_sk_ctx k;

	init_once();
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0: fuzz_msg(data + 1, size - 1, NULL); break;
	case 1:
	case 2:
		k = fuzz_ctx((data[0] & 3) == 2);
		fuzz_msg(data + 1, size - 1, &k);
		break;
	default: fuzz_inner(data + 1, size - 1); break;
	}
	return 0;
}

#ifdef IKE_FUZZ_MKSEEDS
/* Writes valid messages of each mode as seeds into the directory argv[1]. */
static void
put(const char *dir, const char *name, uint8_t mode, const uint8_t *p,
    size_t len)
{
	char  path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL) {
		perror(path);
		exit(1);
	}
	fputc(mode, f);
	fwrite(p, 1, len, f);
	fclose(f);
}

static void
inner_chain(struct buf *b, struct ike_chain *c)
{
	struct ike_prop_desc d;
	struct ike_ts_pld    ts;
	struct ike_cp_pld    cp;
	static const uint8_t eap[] = { 2, 1, 0, 6, 254, 3 };
	uint8_t		     n[32] = { 1 }, ke[32] = { 9 }, ip[4] = { 10 };

	ike_prop_ike(&cfgs[1], &d); /* CBC + HMAC, X25519 */
	memset(&ts, 0, sizeof(ts));
	ts.nts = 1;
	ts.ts[0].type = IKE_TS_IPV4_ADDR_RANGE;
	ts.ts[0].eport = 65535;
	memset(ts.ts[0].end, 0xff, 4);
	memset(&cp, 0, sizeof(cp));
	cp.type = IKE_CFG_REPLY;
	cp.nattr = 1;
	cp.attr[0].type = IKE_CP_INTERNAL_IP4_ADDRESS;
	cp.attr[0].val.p = ip;
	cp.attr[0].val.len = 4;
	ike_pld_add_sa(c, &d, 1);
	ike_pld_add_ke(c, IKE_KE_CURVE25519, ke, sizeof(ke));
	ike_pld_add_nonce(c, n, sizeof(n));
	ike_pld_add_notify(c, 0, NULL, 0, IKE_N_QKD_KEY_IDS, n, 17);
	ike_pld_add_id(c, IKE_PL_IDI, IKE_ID_FQDN, (const uint8_t *)"ue", 2);
	ike_pld_add_auth(c, IKE_AUTH_PSK, n, 32);
	ike_pld_add_eap(c, eap, sizeof(eap));
	ike_pld_add_cp(c, &cp);
	ike_pld_add_ts(c, IKE_PL_TSI, &ts);
	ike_pld_add_ts(c, IKE_PL_TSR, &ts);
	ike_pld_add_delete(c, IKE_PROTO_ESP, 4, n, 1);
	(void)b;
}

int
main(int argc, char **argv)
{
	struct buf	  in, out;
	struct ike_chain  c;
	struct ike_hdr	  h;
	struct ike_sk_ctx k;
	size_t		  start;

	if (argc != 2) {
		fprintf(stderr, "usage: %s corpus-dir\n", argv[0]);
		return 2;
	}
	init_once();
	memset(&h, 0, sizeof(h));
	h.spi_i[0] = 1;
	h.exchange = IKE_SA_INIT;
	buf_init(&in, IKE_MSG_MAX);
	buf_init(&out, IKE_MSG_MAX);
	ike_chain_init(&c, &in, IKE_CHAIN_DETACHED);
	inner_chain(&in, &c);
	{
		struct buf sd;

		buf_init(&sd, IKE_MSG_MAX);
		buf_add_u8(&sd, c.first);
		buf_add(&sd, in.data, in.len);
		put(argv[1], "inner", 3, sd.data, sd.len);
		buf_free(&sd);
	}
	ike_msg_begin(&out, &h, &c, &start);
	inner_chain(&out, &c);
	ike_msg_end(&out, start);
	put(argv[1], "plain", 0, out.data, out.len);
	for (int gcm = 0; gcm < 2; gcm++) {
		ike_chain_init(&c, &in, IKE_CHAIN_DETACHED);
		buf_reset(&in);
		inner_chain(&in, &c);
		buf_reset(&out);
		k = fuzz_ctx(gcm);
		h.exchange = IKE_AUTH;
		if (ike_msg_seal(&out, &h, c.first, in.data, in.len, &k) == -1)
			return 1;
		put(argv[1], gcm ? "gcm" : "cbc", gcm ? 2 : 1, out.data,
		    out.len);
	}
	buf_free(&in);
	buf_free(&out);
	return 0;
}
#endif
