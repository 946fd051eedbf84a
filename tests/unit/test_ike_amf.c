/*
 * Unit tests for ike/amf and ike/usim: a whole NWu registration in memory
 * (5G-AKA and NAS over EAP-5G, as the IKE endpoints run it), wrong keys,
 * wrong RES*, SQN resynchronisation, tampered, truncated and bit-flipped
 * NAS PDUs, and the subscriber configuration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/amf.h"
#include "ike/eap5g.h"
#include "ike/nas.h"
#include "ike/usim.h"
#include "tests/unit/ike5g_test.h"

struct run {
	int ue_msgs; /* NAS PDUs the UE sent */
	int nw_msgs; /* NAS PDUs the AMF sent */
	int eap_req; /* EAP-Requests the N3IWF sent (incl. 5G-Start) */
	int amf_done, ue_done;
};

/* amf_handle / usim_handle, and where the procedure stands as one number
 * from the predicates: 1 keys ready, -1 refused, 0 going on. */
static int
amf_h(struct amf *a, const uint8_t *p, size_t n, struct buf *out, int *done)
{
	int rc = amf_handle(a, p, n, out);

	*done = amf_failed(a) ? -1 : amf_auth_done(a) ? 1 : 0;
	return rc;
}

static int
ue_h(struct usim *u, const uint8_t *p, size_t n, struct buf *out, int *done)
{
	int rc = usim_handle(u, p, n, out);

	*done = usim_failed(u) ? -1 : usim_auth_done(u) ? 1 : 0;
	return rc;
}

/* One NAS PDU through an EAP-5G packet, encoded and decoded: *d borrows eap. */
static void
eap_carry(uint8_t code, uint8_t id, const struct buf *an, const struct buf *nas,
    struct buf *eap, struct eap5g_msg *d)
{
	struct eap5g_msg e;

	memset(&e, 0, sizeof(e));
	e.code = code;
	e.id = id;
	e.msg_id = EAP5G_NAS;
	e.an = an != NULL ? an->data : NULL;
	e.an_len = an != NULL ? an->len : 0;
	e.nas = nas->data;
	e.nas_len = nas->len;
	buf_reset(eap);
	assert_int_equal(eap5g_encode(&e, eap), 0);
	assert_int_equal(eap5g_decode(eap->data, eap->len, d), 0);
}

/*
 * After EAP-Success: the Registration Accept (in the signalling SA, here
 * in memory) and the Registration Complete; then nothing more.
 */
static void
finish_registration(struct amf *amf, struct usim *ue, struct buf *up,
    struct buf *down, struct run *r)
{
	buf_reset(up);
	assert_int_equal(ue_h(ue, down->data, down->len, up, &r->ue_done), 0);
	assert_int_equal(r->ue_done, 1);
	assert_int_equal(usim_registered(ue), 1);
	buf_reset(down);
	assert_int_equal(amf_h(amf, up->data, up->len, down, &r->amf_done), 0);
	assert_int_equal(r->amf_done, 1);
	assert_int_equal(down->len, 0);
	/* after the end, nothing more is accepted */
	assert_int_equal(amf_h(amf, up->data, up->len, down, &r->amf_done), -1);
}

/*
 * Runs the NWu registration as the IKE endpoints will: every NAS PDU goes
 * through EAP-5G encode/decode; the AMF's result picks EAP-Success or
 * EAP-Failure. Returns the final EAP code.
 */
static int
run_flow(struct amf *amf, struct usim *ue, struct run *r)
{
	struct buf	 up, down, eap, an;
	struct eap5g_msg d;
	uint8_t		 id = 1;
	int		 code = 0, rc;

	memset(r, 0, sizeof(*r));
	buf_init(&up, 4096);
	buf_init(&down, 4096);
	buf_init(&eap, 8192);
	buf_init(&an, 256);
	r->eap_req = 1; /* 5G-Start */
	assert_int_equal(usim_an_params(ue, &an), 0);
	assert_int_equal(usim_start(ue, &up), 0);
	for (int round = 0; round < 10; round++) {
		/* UE -> N3IWF: EAP-Response/5G-NAS */
		eap_carry(EAP_CODE_RESPONSE, id, round == 0 ? &an : NULL, &up,
		    &eap, &d);
		r->ue_msgs++;
		buf_reset(&down);
		rc = amf_h(amf, d.nas, d.nas_len, &down, &r->amf_done);
		if (rc == -1 || r->amf_done != 0) {
			code = rc == 0 && r->amf_done == 1 ? EAP_CODE_SUCCESS :
							     EAP_CODE_FAILURE;
			if (down.len)
				r->nw_msgs++;
			break;
		}
		/* N3IWF -> UE: EAP-Request/5G-NAS */
		eap_carry(EAP_CODE_REQUEST, ++id, NULL, &down, &eap, &d);
		r->nw_msgs++;
		r->eap_req++;
		buf_reset(&up);
		rc = ue_h(ue, d.nas, d.nas_len, &up, &r->ue_done);
		assert_int_equal(rc, 0);
		if (r->ue_done == -1) {
			/* the UE still reports why (Authentication Failure) */
			assert_true(up.len > 0);
		}
	}
	if (code == EAP_CODE_SUCCESS)
		finish_registration(amf, ue, &up, &down, r);
	buf_free(&up);
	buf_free(&down);
	buf_free(&eap);
	buf_free(&an);
	return code;
}

/* An AMF for `net` and a UE for `ue_sub`, run through run_flow(). */
struct pair {
	struct amf  *amf;
	struct usim *ue;
	struct run   r;
};

static int
pair_run(struct pair *p, const struct amf_sub *net,
    const struct amf_sub *ue_sub, const char *rand_hex)
{
	uint8_t rand[16];

	assert_non_null(p->amf = amf_new(net));
	assert_non_null(p->ue = usim_new(ue_sub));
	if (rand_hex != NULL) {
		hx(rand_hex, rand, 16);
		amf_set_rand(p->amf, rand);
	}
	return run_flow(p->amf, p->ue, &p->r);
}

static void
pair_free(struct pair *p)
{
	amf_free(p->amf);
	usim_free(p->ue);
}

/* Both sides hold the same KN3IWF; *k gets it. */
static void
assert_same_kn3iwf(const struct pair *p, uint8_t k[static 32])
{
	uint8_t k2[32];

	assert_int_equal(amf_kn3iwf(p->amf, k), 0);
	assert_int_equal(usim_kn3iwf(p->ue, k2), 0);
	assert_memory_equal(k, k2, 32);
}

/* Neither side has a KN3IWF. */
static void
assert_no_kn3iwf(const struct pair *p)
{
	uint8_t k[32];

	assert_int_equal(amf_kn3iwf(p->amf, k), -1);
	assert_int_equal(usim_kn3iwf(p->ue, k), -1);
}

static void
test_amf_usim_run(void **state)
{
	struct amf_sub sub;
	struct pair    p;
	uint8_t	       k[32];

	amf_sub_default(&sub);
	assert_non_null(p.amf = amf_new(&sub));
	assert_non_null(p.ue = usim_new(&sub));
	assert_no_kn3iwf(&p);
	pair_free(&p);
	/* test set 1: SQN ff9bb4d0b607 */
	assert_int_equal(pair_run(&p, &sub, &sub, TS1_RAND), EAP_CODE_SUCCESS);
	/* MID 2, 3, 4: three EAP-Response/5G-NAS; 3 EAP-Requests (5G-Start
	 * + 2 x 5G-NAS) then EAP-Success; the 3rd AMF output is the
	 * Registration Accept */
	assert_int_equal(p.r.ue_msgs, 3);
	assert_int_equal(p.r.eap_req, 1 + 2);
	assert_int_equal(p.r.nw_msgs, 3);
	assert_same_kn3iwf(&p, k);
	assert_hex(k, V_KN3IWF); /* the python-computed chain */
	assert_int_equal(amf_sqn(p.amf), 0xff9bb4d0b607ULL);
	assert_int_equal(usim_sqn(p.ue), 0xff9bb4d0b607ULL);
	pair_free(&p);

	/* random RAND: still equal keys */
	assert_int_equal(pair_run(&p, &sub, &sub, NULL), EAP_CODE_SUCCESS);
	assert_same_kn3iwf(&p, k);
	pair_free(&p);
	amf_free(NULL);
	usim_free(NULL);
}

static void
test_amf_wrong_k(void **state)
{
	struct amf_sub sub, bad;
	struct pair    p;

	amf_sub_default(&sub);
	bad = sub;
	bad.k[0] ^= 1;
	/* UE with a wrong K: AUTN MAC fails, Authentication Failure #20 */
	assert_int_equal(pair_run(&p, &sub, &bad, NULL), EAP_CODE_FAILURE);
	assert_int_equal(p.r.ue_done, -1);
	assert_int_equal(p.r.amf_done, -1);
	assert_no_kn3iwf(&p);
	pair_free(&p);

	/* AMF with a wrong OPc: the same, from the other side */
	bad = sub;
	bad.opc[15] ^= 0x80;
	assert_int_equal(pair_run(&p, &bad, &sub, NULL), EAP_CODE_FAILURE);
	assert_int_equal(p.r.amf_done, -1);
	pair_free(&p);

	/* unknown subscriber: Registration Reject */
	bad = sub;
	bad.supi[14] = '2';
	assert_int_equal(pair_run(&p, &sub, &bad, NULL), EAP_CODE_FAILURE);
	assert_int_equal(p.r.nw_msgs, 1); /* the Registration Reject */
	pair_free(&p);
}

/* The UE has seen a higher SQN: Authentication Failure #21 with AUTS, the
 * AMF resynchronises and challenges again (one more EAP round). */
static void
test_amf_resync(void **state)
{
	struct amf_sub sub, ue_sub;
	struct pair    p;
	uint8_t	       k[32];

	amf_sub_default(&sub);
	ue_sub = sub;
	ue_sub.sqn += 1000;
	assert_int_equal(pair_run(&p, &sub, &ue_sub, NULL), EAP_CODE_SUCCESS);
	assert_int_equal(p.r.ue_msgs, 4);
	assert_int_equal(p.r.eap_req, 1 + 3);
	assert_int_equal(amf_sqn(p.amf), ue_sub.sqn + 1);
	assert_int_equal(usim_sqn(p.ue), ue_sub.sqn + 1);
	assert_same_kn3iwf(&p, k);
	pair_free(&p);
}

/* A fresh AMF and UE for the default subscriber, and NAS buffers. */
struct fix {
	struct amf_sub sub;
	struct amf    *amf;
	struct usim   *ue;
	struct buf     up, down, junk;
};

static int
fix_setup(void **state)
{
	static struct fix f;

	amf_sub_default(&f.sub);
	assert_non_null(f.amf = amf_new(&f.sub));
	assert_non_null(f.ue = usim_new(&f.sub));
	buf_init(&f.up, 4096);
	buf_init(&f.down, 4096);
	buf_init(&f.junk, 4096);
	*state = &f;
	return 0;
}

static int
fix_teardown(void **state)
{
	struct fix *f = *state;

	buf_free(&f->up);
	buf_free(&f->down);
	buf_free(&f->junk);
	amf_free(f->amf);
	usim_free(f->ue);
	return 0;
}

/* AMF -> UE: the UE handles f->down, its answer replaces f->up. */
static int
to_ue(struct fix *f, int *done)
{
	buf_reset(&f->up);
	return ue_h(f->ue, f->down.data, f->down.len, &f->up, done);
}

/* UE -> AMF: the AMF handles f->up, its answer replaces f->down. */
static int
to_amf(struct fix *f, int *done)
{
	buf_reset(&f->down);
	return amf_h(f->amf, f->up.data, f->up.len, &f->down, done);
}

/* Registration Request only once. */
static void
test_usim_start_once(void **state)
{
	struct fix *f = *state;

	assert_int_equal(usim_start(f->ue, &f->up), 0);
	assert_int_equal(usim_start(f->ue, &f->up), -1); /* only once */
	buf_reset(&f->up);
	assert_int_equal(usim_start(f->ue, &f->up) == -1, 1);
}

/* A UE that answers with a wrong RES* gets Authentication Reject. */
static void
test_amf_bad_res(void **state)
{
	struct fix    *f = *state;
	struct nas_msg m;
	int	       done;

	assert_int_equal(usim_start(f->ue, &f->up), 0);
	assert_int_equal(to_amf(f, &done), 0);
	assert_int_equal(done, 0);
	/* the same Registration Request again is out of sequence */
	assert_int_equal(amf_h(f->amf, f->up.data, f->up.len, &f->down, &done),
	    -1);
	assert_int_equal(to_ue(f, &done), 0);
	assert_int_equal(nas_decode(f->up.data, f->up.len, &m), 0);
	assert_int_equal(m.type, NAS_AUTH_RESPONSE);
	f->up.data[f->up.len - 1] ^= 1; /* corrupt RES* */
	assert_int_equal(to_amf(f, &done), 0);
	assert_int_equal(done, -1);
	assert_int_equal(nas_decode(f->down.data, f->down.len, &m), 0);
	assert_int_equal(m.type, NAS_AUTH_REJECT);
	assert_int_equal(to_ue(f, &done), 0);
	assert_int_equal(done, -1);
	assert_int_equal(f->up.len, 0);
}

/* Every strict prefix of pdu is refused by the AMF (amf) or the UE. */
static void
assert_prefixes_refused(struct fix *f, const struct buf *pdu, int amf)
{
	int done;

	for (size_t n = 0; n < pdu->len; n++)
		assert_int_equal(amf ?
			amf_h(f->amf, pdu->data, n, &f->junk, &done) :
			ue_h(f->ue, pdu->data, n, &f->junk, &done),
		    -1);
}

/* A tampered Security Mode Command is refused by the UE; truncated or
 * bit-flipped NAS PDUs never crash either side. */
static void
test_amf_tamper(void **state)
{
	struct fix    *f = *state;
	struct nas_msg m;
	int	       done;

	assert_int_equal(usim_start(f->ue, &f->up), 0);
	assert_prefixes_refused(f, &f->up, 1);
	assert_int_equal(to_amf(f, &done), 0);
	assert_prefixes_refused(f, &f->down, 0);
	assert_int_equal(to_ue(f, &done), 0);
	assert_int_equal(to_amf(f, &done), 0);
	assert_int_equal(f->down.data[1], NAS_SHT_INT_NEW); /* SMC */
	assert_prefixes_refused(f, &f->down, 0);
	assert_int_equal(f->junk.len, 0);
	f->down.data[3] ^= 0x10; /* MAC */
	assert_int_equal(to_ue(f, &done), 0);
	assert_int_equal(done, -1);
	assert_int_equal(nas_decode(f->up.data, f->up.len, &m), 0);
	assert_int_equal(m.type, NAS_SMC_REJECT);
	assert_int_equal(to_amf(f, &done), 0);
	assert_int_equal(done, -1);
	assert_int_equal(amf_kn3iwf(f->amf, (uint8_t[32]){ 0 }), -1);
}

/* Every single-bit flip of the Registration Request (at a fresh AMF) and of
 * the Authentication Request (at a fresh UE): a clean 0/-1, never a crash,
 * and never "done" with keys. */
static void
test_amf_bitflips(void **state)
{
	struct amf_sub sub;
	struct amf    *amf;
	struct usim   *ue;
	struct buf     req, chal, out;
	uint8_t	       k[32];
	int	       done, rc;

	amf_sub_default(&sub);
	buf_init(&req, 4096);
	buf_init(&chal, 4096);
	buf_init(&out, 4096);
	assert_non_null(ue = usim_new(&sub));
	assert_non_null(amf = amf_new(&sub));
	assert_int_equal(usim_start(ue, &req), 0);
	assert_int_equal(amf_h(amf, req.data, req.len, &chal, &done), 0);
	amf_free(amf);
	usim_free(ue);
	for (size_t bit = 0; bit < 8 * req.len; bit++) {
		assert_non_null(amf = amf_new(&sub));
		req.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		buf_reset(&out);
		rc = amf_h(amf, req.data, req.len, &out, &done);
		assert_true(rc == 0 || rc == -1);
		assert_true(done <= 0);
		assert_int_equal(amf_kn3iwf(amf, k), -1);
		req.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		amf_free(amf);
	}
	for (size_t bit = 0; bit < 8 * chal.len; bit++) {
		assert_non_null(ue = usim_new(&sub));
		buf_reset(&out);
		assert_int_equal(usim_start(ue, &out), 0);
		chal.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		buf_reset(&out);
		rc = ue_h(ue, chal.data, chal.len, &out, &done);
		assert_true(rc == 0 || rc == -1);
		assert_true(done <= 0);
		assert_int_equal(usim_kn3iwf(ue, k), -1);
		chal.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		usim_free(ue);
	}
	buf_free(&req);
	buf_free(&chal);
	buf_free(&out);
}

static void
test_amf_sub_set(void **state)
{
	struct amf_sub s, d;
	char	       err[128];

	amf_sub_default(&d);
	memset(&s, 0, sizeof(s));
	s.mnc_len = 2;
	assert_int_equal(amf_sub_set(&s, "imsi-208930000000001", TS1_K, NULL,
			     TS1_OP, err, sizeof(err)),
	    0);
	assert_string_equal(s.supi, "208930000000001");
	assert_memory_equal(s.k, d.k, 16);
	assert_memory_equal(s.opc, d.opc, 16); /* OPc computed from OP */
	assert_int_equal(amf_sub_set(&s, NULL, NULL, TS2_OPC, NULL, err,
			     sizeof(err)),
	    0);
	assert_int_equal(s.opc[0], 0x53);
	assert_int_equal(amf_sub_set(&s, "imsi-2089", NULL, NULL, NULL, err,
			     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "supi"));
	assert_int_equal(amf_sub_set(&s, NULL,
			     "465b5ce8b199b49faa5f0a2ee238a6bg", NULL, NULL,
			     err, sizeof(err)),
	    -1);
	assert_string_equal(err, "k is not 32 hex digits");
	assert_int_equal(amf_sub_set(&s, NULL, NULL, "00", NULL, err,
			     sizeof(err)),
	    -1);
	assert_null(strstr(err, "00"));
	d.mnc_len = 4;
	assert_null(amf_new(&d));
	assert_null(usim_new(&d));
	amf_sub_wipe(&s);
	assert_int_equal(s.k[0] | s.opc[0], 0);
}

/* The plain message of a NAS PDU sent in clear (SHT 0, 1, 3, or EA0). */
static int
clear_type(const struct buf *pdu)
{
	const uint8_t *pl;
	size_t	       n;
	uint8_t	       sht;
	struct nas_msg m;

	if (nas_split(pdu->data, pdu->len, &sht, &pl, &n) == -1 ||
	    nas_decode(pl, n, &m) == -1)
		return -1;
	return m.type;
}

/*
 * NAS ciphering: by default the AMF selects 128-NEA2 (the UE lists 5G-EA0
 * and 5G-EA2); the Security Mode Command (SHT 3, sent in clear) says so,
 * and the Security Mode Complete and Registration Accept (SHT 4, 2) no
 * longer read as plain 5GMM. amf_set_ciphering(EA0): 5G-EA0, in clear.
 * Both run to the same KN3IWF and the Registration Complete.
 */
static void
test_amf_ciphering(void **state)
{
	struct amf_sub sub;
	struct pair    p;
	struct run     r;
	struct buf     up, down;
	uint8_t	       k[32];

	amf_sub_default(&sub);
	buf_init(&up, 4096);
	buf_init(&down, 4096);
	for (int ea = 2; ea >= 0; ea -= 2) {
		memset(&r, 0, sizeof(r));
		assert_non_null(p.amf = amf_new(&sub));
		assert_non_null(p.ue = usim_new(&sub));
		if (ea == 0)
			amf_set_ciphering(p.amf, NAS_ALG_EA0);
		buf_reset(&up);
		assert_int_equal(usim_start(p.ue, &up),
		    0);			      /* Registration Rq */
		for (int i = 0; i < 2; i++) { /* Auth Request, then SMC */
			buf_reset(&down);
			assert_int_equal(amf_h(p.amf, up.data, up.len, &down,
					     &r.amf_done),
			    0);
			buf_reset(&up);
			assert_int_equal(ue_h(p.ue, down.data, down.len, &up,
					     &r.ue_done),
			    0);
		}
		/* down: the SMC, 5G-EA in the high nibble, 128-NIA2 low */
		assert_int_equal(down.data[1], NAS_SHT_INT_NEW);
		assert_int_equal(clear_type(&down), NAS_SMC);
		assert_int_equal(down.data[7 + 3], ea << 4 | NAS_ALG_IA2);
		/* up: the Security Mode Complete, SHT 4 */
		assert_int_equal(up.data[1], NAS_SHT_INT_ENC_NEW);
		assert_true(ea == 0 ? clear_type(&up) == NAS_SMC_COMPLETE :
				      clear_type(&up) != NAS_SMC_COMPLETE);
		buf_reset(&down);
		assert_int_equal(amf_h(p.amf, up.data, up.len, &down,
				     &r.amf_done),
		    0);
		assert_int_equal(r.amf_done, 1);
		/* down: the Registration Accept, SHT 2 */
		assert_int_equal(down.data[1], NAS_SHT_INT_ENC);
		assert_true(ea == 0 ? clear_type(&down) == NAS_REG_ACCEPT :
				      clear_type(&down) != NAS_REG_ACCEPT);
		assert_same_kn3iwf(&p, k);
		finish_registration(p.amf, p.ue, &up, &down, &r);
		pair_free(&p);
	}
	buf_free(&up);
	buf_free(&down);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_amf_usim_run),
		cmocka_unit_test(test_amf_wrong_k),
		cmocka_unit_test_setup_teardown(test_usim_start_once, fix_setup,
		    fix_teardown),
		cmocka_unit_test_setup_teardown(test_amf_bad_res, fix_setup,
		    fix_teardown),
		cmocka_unit_test(test_amf_resync),
		cmocka_unit_test_setup_teardown(test_amf_tamper, fix_setup,
		    fix_teardown),
		cmocka_unit_test(test_amf_bitflips),
		cmocka_unit_test(test_amf_sub_set),
		cmocka_unit_test(test_amf_ciphering),
	};

	log_init("test_ike_amf", LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
