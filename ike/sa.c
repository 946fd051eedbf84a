/* One IKE SA: keys (DH, QKD, PPK), AUTH, Child SA keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "ike/amf.h"
#include "ike/crypto.h"
#include "ike/ikev2.h"
#include "ike/msg.h"
#include "ike/pld.h"
#include "ike/qkd.h"
#include "ike/rekey.h"
#include "ike/proposal.h"
#include "ike/sa.h"
#include "ike/usim.h"

struct ike_sa *
ike_sa_new(const struct ikecfg *cfg, int initiator)
{
	struct ike_sa *sa;

	if ((sa = calloc(1, sizeof(*sa))) == NULL)
		return NULL;
	sa->cfg = cfg;
	sa->initiator = initiator;
	buf_init(&sa->init_req, IKE_MSG_MAX);
	buf_init(&sa->init_resp, IKE_MSG_MAX);
	buf_init(&sa->xc.req, IKE_MSG_MAX);
	buf_init(&sa->xc.resp, IKE_MSG_MAX);
	buf_init(&sa->my_id, 4096);
	buf_init(&sa->peer_id, 4096);
	if ((sa->keys = ike_sa_keys_new()) == NULL) {
		ike_sa_free(sa);
		return NULL;
	}
	/* An initiator's SPIi, before the SA enters the table (keyed by it) */
	if (initiator && ike_random(sa->spi_i, IKE_SPI_LEN) == -1) {
		ike_sa_free(sa);
		return NULL;
	}
	sa->t_created = sa->t_start = sa->t_mark = time_mono_ns();
	return sa;
}

void
ike_sa_trim(struct ike_sa *sa)
{
	buf_free(&sa->init_req); /* a duplicate IKE_SA_INIT is dropped */
	buf_free(&sa->init_resp);
	buf_free(&sa->my_id);
	buf_free(&sa->peer_id);
	ike_dh_free(sa->dh);
	sa->dh = NULL;
	ike_sa_keys_free(sa->keys_noppk);
	sa->keys_noppk = NULL;
	ike_qkd_keys_free(sa->qk); /* in the Child SAs' keys now */
	sa->qk = NULL;
}

void
ike_sa_free(struct ike_sa *sa)
{
	if (sa == NULL)
		return;
	buf_free(&sa->init_req);
	buf_free(&sa->init_resp);
	buf_free(&sa->xc.req);
	buf_free(&sa->xc.resp);
	buf_free(&sa->my_id);
	buf_free(&sa->peer_id);
	ike_dh_free(sa->dh);
	ike_sa_keys_free(sa->keys);
	ike_sa_keys_free(sa->keys_noppk);
	ike_qkd_keys_free(sa->qk);
	for (size_t i = 0; i < sa->nchild; i++)
		ike_child_keys_free(sa->child[i].keys);
	amf_free(sa->amf);
	usim_free(sa->usim);
	ike_rekey_free(sa->rk);
	OPENSSL_cleanse(sa, sizeof(*sa));
	free(sa);
}

uint64_t
ike_sa_lap(struct ike_sa *sa)
{
	uint64_t now = time_mono_ns(), d = now - sa->t_mark;

	sa->t_mark = now;
	return d;
}

void
ike_sa_sk(const struct ike_sa *sa, int out, struct ike_sk_ctx *k)
{
	int i_side =
	    sa->initiator == out; /* keys of the initiator's direction */

	k->encr = sa->prop.encr;
	k->integ = sa->prop.integ;
	k->ekey = i_side ? &sa->keys->ei : &sa->keys->er;
	k->akey = i_side ? &sa->keys->ai : &sa->keys->ar;
}

/* SKEYSEED = prf(Ni | Nr, secret) and SK_* from it (RFC 7296 2.14). */
static int
keys_from_secret(struct ike_sa *sa, const uint8_t *secret, size_t len)
{
	return ike_ke_sa_keys(secret, len, sa->ni, sa->ni_len, sa->nr,
	    sa->nr_len, sa->spi_i, sa->spi_r, sa->prop.encr, sa->prop.encr_bits,
	    sa->prop.integ, sa->keys);
}

int
ike_sa_keys_dh(struct ike_sa *sa, const uint8_t *peer_ke, size_t len)
{
	struct buf gir;
	uint64_t   t0 = time_mono_ns();
	int	   ret = -1;

	buf_init(&gir, 1024);
	if (ike_dh_derive(sa->dh, peer_ke, len, &gir) == -1)
		goto done;
	sa->st.init_dh_ns += time_mono_ns() - t0;
	if (keys_from_secret(sa, gir.data, gir.len) == -1)
		goto done;
	ret = 0;
done:
	buf_free(&gir);
	ike_dh_free(sa->dh);
	sa->dh = NULL;
	return ret;
}

/*
 * A transform key from a 256-bit QKD key: the key itself, truncated to
 * the transform's length; AES-GCM's 4-byte salt (beyond the 32 bytes) is
 * the start of prf(key, "ike-qkd-salt").
 */
static int
qkd_key(const uint8_t q[static IKE_QKD_KEYLEN], size_t want, struct ike_key *k)
{
	static const char label[] = "ike-qkd-salt";
	uint8_t		  buf[IKE_KEY_MAX], salt[IKE_PRF_LEN];
	int		  ret;

	if (want > sizeof(buf))
		return -1;
	memcpy(buf, q, want < IKE_QKD_KEYLEN ? want : IKE_QKD_KEYLEN);
	if (want > IKE_QKD_KEYLEN) {
		if (ike_prf(q, IKE_QKD_KEYLEN, (const uint8_t *)label,
			sizeof(label) - 1, salt) == -1)
			return -1;
		memcpy(buf + IKE_QKD_KEYLEN, salt, want - IKE_QKD_KEYLEN);
	}
	ret = ike_key_set(k, buf, want);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(salt, sizeof(salt));
	return ret;
}

static int
label_key(const uint8_t q[static IKE_QKD_KEYLEN], const char *label,
    struct ike_key *k)
{
	uint8_t out[IKE_PRF_LEN];
	int	ret;

	if (ike_prf(q, IKE_QKD_KEYLEN, (const uint8_t *)label, strlen(label),
		out) == -1)
		return -1;
	ret = ike_key_set(k, out, sizeof(out));
	OPENSSL_cleanse(out, sizeof(out));
	return ret;
}

/* The paper's schedule: 13 keys, used raw (key index table in README). */
static int
keys_qkd_paper(struct ike_sa *sa)
{
	const struct ike_qkd_keys *q = sa->qk;
	size_t			   elen, alen;
	struct ike_sa_keys	  *k = sa->keys;

	if (q == NULL || q->n != IKE_QKD_NKEYS ||
	    ike_encr_keylen(sa->prop.encr, sa->prop.encr_bits, &elen) == -1 ||
	    ike_integ_keylen(sa->prop.integ, &alen) == -1)
		return -1;
	if (qkd_key(q->key[QK_SK_EI], elen, &k->ei) == -1 ||
	    qkd_key(q->key[QK_SK_ER], elen, &k->er) == -1 ||
	    (alen && qkd_key(q->key[QK_SK_AI], alen, &k->ai) == -1) ||
	    (alen && qkd_key(q->key[QK_SK_AR], alen, &k->ar) == -1) ||
	    label_key(q->key[QK_AUTH], "SK_d", &k->d) == -1 ||
	    label_key(q->key[QK_AUTH], "SK_pi", &k->pi) == -1 ||
	    label_key(q->key[QK_AUTH], "SK_pr", &k->pr) == -1)
		return -1;
	return 0;
}

/*
 * The prf schedule: the one QKD key is the shared secret of RFC 7296 2.14,
 * exactly as g^ir is with DH; Child SAs then come from SK_d. The QKD key
 * is wiped as soon as the SK_* exist: nothing else needs it.
 */
static int
keys_qkd_prf(struct ike_sa *sa)
{
	int ret;

	if (sa->qk == NULL || sa->qk->n != 1)
		return -1;
	ret = keys_from_secret(sa, sa->qk->key[0], IKE_QKD_KEYLEN);
	OPENSSL_cleanse(sa->qk->key, sizeof(sa->qk->key));
	return ret;
}

int
ike_sa_keys_qkd(struct ike_sa *sa)
{
	return sa->cfg->qkd_schedule == IKE_QKD_SCHED_PRF ? keys_qkd_prf(sa) :
							    keys_qkd_paper(sa);
}

int
ike_sa_keys_ppk(struct ike_sa *sa)
{
	if (sa->qk == NULL || sa->qk->n < 1)
		return -1;
	if (sa->keys_noppk == NULL &&
	    (sa->keys_noppk = ike_sa_keys_new()) == NULL)
		return -1;
	memcpy(sa->keys_noppk, sa->keys, sizeof(*sa->keys));
	if (ike_ppk_mix(sa->qk->key[0], IKE_QKD_KEYLEN, sa->keys, sa->keys) ==
	    -1)
		return -1;
	sa->ppk_used = 1;
	return 0;
}

int
ike_sa_octets(const struct ike_sa *sa, int of_initiator, int noppk,
    const struct ike_bytes *id_body, struct buf *out)
{
	const struct ike_sa_keys *ks =
	    noppk && sa->keys_noppk ? sa->keys_noppk : sa->keys;
	const struct buf *m = of_initiator ? &sa->init_req : &sa->init_resp;

	return ike_auth_octets(m->data, m->len, of_initiator ? sa->nr : sa->ni,
	    of_initiator ? sa->nr_len : sa->ni_len,
	    of_initiator ? &ks->pi : &ks->pr, id_body->p, id_body->len, out);
}

/*
 * qkd mode, prf schedule, rfc7296: no PSK and no 13th key. The AUTH is
 * PSK-style with SK_pi (the initiator's) or SK_pr (the responder's) as
 * the secret, as RFC 7296 2.16 does for EAP methods without an MSK: only
 * holders of the QKD key K can derive them, and they bind K to both
 * nonces and SPIs.
 */
static int
sk_p_secret(const struct ike_sa *sa, int of_initiator, uint8_t *out, size_t cap,
    size_t *len)
{
	const struct ike_key *k = of_initiator ? &sa->keys->pi : &sa->keys->pr;

	if (k->len == 0 || k->len > cap)
		return -1;
	memcpy(out, k->k, k->len);
	*len = k->len;
	return 0;
}

/* nwu: KN3IWF (3GPP), or prf(key12, KN3IWF) in the paper's qkd mode. */
static int
kn3iwf_secret(const struct ike_sa *sa, uint8_t *out, size_t cap, size_t *len)
{
	if (!sa->have_kn3iwf || cap < IKE_PRF_LEN)
		return -1;
	if (ike_qkd_raw(sa->cfg)) {
		/* Bind both: the QKD AUTH key and 5G-AKA's KN3IWF. */
		if (sa->qk == NULL ||
		    ike_prf(sa->qk->key[QK_AUTH], IKE_QKD_KEYLEN, sa->kn3iwf,
			sizeof(sa->kn3iwf), out) == -1)
			return -1;
	} else
		memcpy(out, sa->kn3iwf, sizeof(sa->kn3iwf));
	*len = IKE_PRF_LEN;
	return 0;
}

int
ike_sa_auth_secret(const struct ike_sa *sa, int of_initiator, uint8_t *out,
    size_t cap, size_t *len)
{
	const struct ikecfg *c = sa->cfg;
	size_t		     n;

	if (c->profile == IKE_PROFILE_NWU)
		return kn3iwf_secret(sa, out, cap, len);
	if (c->mode == IKE_MODE_QKD && !ike_qkd_raw(c))
		return sk_p_secret(sa, of_initiator, out, cap, len);
	if (c->mode == IKE_MODE_QKD) {
		if (sa->qk == NULL || cap < IKE_QKD_KEYLEN)
			return -1;
		memcpy(out, sa->qk->key[QK_AUTH], IKE_QKD_KEYLEN);
		*len = IKE_QKD_KEYLEN;
		return 0;
	}
	if (c->psk == NULL || (n = strlen(c->psk)) > cap)
		return -1;
	memcpy(out, c->psk, n);
	*len = n;
	return 0;
}

int
ike_sa_child_keys(struct ike_sa *sa, struct ike_child *ch, const uint8_t *ni,
    size_t ni_len, const uint8_t *nr, size_t nr_len)
{
	const struct ike_prop_desc *p = &ch->prop;
	struct ike_child_keys	   *k;
	size_t			    elen, alen, b;

	if (ch->keys == NULL && (ch->keys = ike_child_keys_new()) == NULL)
		return -1;
	k = ch->keys;
	if (!ike_qkd_raw(sa->cfg)) {
		if (ike_child_keys_derive(&sa->keys->d, NULL, 0, ni, ni_len, nr,
			nr_len, p->encr, p->encr_bits, p->integ, k) == -1)
			return -1;
		/* The N3IWF started this exchange: keep "i" = the UE. */
		if (ch->up)
			ike_child_keys_swap(k);
		return 0;
	}
	if (sa->qk == NULL || sa->qk->n != IKE_QKD_NKEYS ||
	    ike_encr_keylen(p->encr, p->encr_bits, &elen) == -1 ||
	    ike_integ_keylen(p->integ, &alen) == -1)
		return -1;
	b = ch->up ? QK_C2_EI : QK_C1_EI;
	if (qkd_key(sa->qk->key[b], elen, &k->ei) == -1 ||
	    qkd_key(sa->qk->key[b + 1], elen, &k->er) == -1 ||
	    (alen && qkd_key(sa->qk->key[b + 2], alen, &k->ai) == -1) ||
	    (alen && qkd_key(sa->qk->key[b + 3], alen, &k->ar) == -1))
		return -1;
	return 0;
}

static void
fp_keys(const struct ike_key *const *keys, size_t n, char out[static 17])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t	    md[32];
	unsigned    mdlen = 0;

	out[0] = '\0';
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto done;
	for (size_t i = 0; i < n; i++)
		if (EVP_DigestUpdate(ctx, keys[i]->k, keys[i]->len) != 1)
			goto done;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		goto done;
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
done:
	EVP_MD_CTX_free(ctx);
}

void
ike_sa_log_fp(const struct ike_sa *sa, const char *what,
    const struct ike_child *ch)
{
	char fp[17];

	if (log_get_level() < LOG_DEBUG)
		return;
	if (ch == NULL) {
		const struct ike_key *ks[] = { &sa->keys->d, &sa->keys->ai,
			&sa->keys->ar, &sa->keys->ei, &sa->keys->er,
			&sa->keys->pi, &sa->keys->pr };

		fp_keys(ks, 7, fp);
	} else {
		const struct ike_key *ks[] = { &ch->keys->ei, &ch->keys->ai,
			&ch->keys->er, &ch->keys->ar };

		fp_keys(ks, 4, fp);
	}
	log_debug("%s keys sha256-fp=%s", what, fp);
	if (ch != NULL) {
		char ue[IKE_TS_STRLEN], n3[IKE_TS_STRLEN];

		log_debug("%s traffic selectors: UE %s, N3IWF %s", what,
		    ike_prop_ts_str(&ch->ts_ue, ue, sizeof(ue)),
		    ike_prop_ts_str(&ch->ts_n3, n3, sizeof(n3)));
	}
}

int
ike_sa_add_id(struct ike_chain *c, uint8_t pltype, const char *fqdn, X509 *cert,
    struct buf *id_body)
{
	uint8_t	      *der = NULL;
	const uint8_t *d;
	size_t	       dlen;
	uint8_t	       type = IKE_ID_FQDN;
	int	       n, ret = -1;

	if (cert != NULL) {
		if ((n = i2d_X509_NAME(X509_get_subject_name(cert), &der)) <= 0)
			return -1;
		d = der;
		dlen = (size_t)n;
		type = IKE_ID_DER_ASN1_DN;
	} else {
		d = (const uint8_t *)fqdn;
		dlen = strlen(fqdn);
	}
	buf_reset(id_body);
	id_body->len = 0;
	if (buf_add_u8(id_body, type) == -1 || buf_add_u8(id_body, 0) == -1 ||
	    buf_add_u16(id_body, 0) == -1 || buf_add(id_body, d, dlen) == -1 ||
	    ike_pld_add_id(c, pltype, type, d, dlen) == -1)
		goto done;
	ret = 0;
done:
	OPENSSL_free(der);
	return ret;
}

int
ike_sa_add_auth(struct ike_sa *sa, struct ike_chain *c, EVP_PKEY *key,
    const struct buf *id_body, int noppk)
{
	struct ike_bytes idb = { id_body->data, id_body->len };
	struct buf	 oct, sig;
	uint8_t		 secret[256], auth[IKE_PRF_LEN];
	size_t		 slen = 0;
	int		 ret = -1;

	buf_init(&oct, 2 * IKE_MSG_MAX);
	buf_init(&sig, 1024);
	if (ike_sa_octets(sa, sa->initiator, noppk, &idb, &oct) == -1)
		goto done;
	if (key != NULL) {
		if (ike_auth_sig_sign(key, oct.data, oct.len, &sig) == -1 ||
		    ike_pld_add_auth(c, IKE_AUTH_DIGITAL_SIG, sig.data,
			sig.len) == -1)
			goto done;
	} else {
		if (ike_sa_auth_secret(sa, sa->initiator, secret,
			sizeof(secret), &slen) == -1) {
			log_err("%s: no shared secret for AUTH", __func__);
			goto done;
		}
		if (ike_auth_psk(secret, slen, oct.data, oct.len, auth) == -1 ||
		    ike_pld_add_auth(c, IKE_AUTH_PSK, auth, sizeof(auth)) == -1)
			goto done;
	}
	ret = 0;
done:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(auth, sizeof(auth));
	buf_free(&oct);
	buf_free(&sig);
	return ret;
}

/* The certificate in m's CERT payload, chained to ca and naming the ID. */
static X509 *
peer_cert(const struct ike_pld *m, const struct ike_id_pld *id, X509_STORE *ca)
{
	if (m->ncert < 1 || m->cert[0].enc != IKE_CERT_X509_SIG) {
		log_warn("peer signs but sent no X.509 CERT payload");
		return NULL;
	}
	return ike_cert_peer(m->cert[0].data.p, m->cert[0].data.len, id->type,
	    id->data.p, id->data.len, ca);
}

int
ike_sa_check_auth(struct ike_sa *sa, const struct ike_pld *m, uint8_t method,
    X509_STORE *ca, const struct buf *id, const uint8_t *auth, size_t alen,
    int noppk)
{
	const struct ike_id_pld *idp = sa->initiator ? &m->idr : &m->idi;
	struct ike_bytes	 idb;
	struct buf		 oct;
	uint8_t			 secret[256];
	size_t			 slen = 0;
	X509			*x = NULL;
	int			 ret = -1;

	buf_init(&oct, 2 * IKE_MSG_MAX);
	if (id == NULL &&
	    !IKE_PLD_HAS(m, sa->initiator ? IKE_PL_IDR : IKE_PL_IDI)) {
		log_warn("%s: no ID payload", __func__);
		goto done;
	}
	if (auth == NULL) {
		if (!IKE_PLD_HAS(m, IKE_PL_AUTH)) {
			log_warn("%s: no AUTH payload", __func__);
			goto done;
		}
		if (m->auth.method != method) {
			log_warn("%s: peer AUTH method %u, expected %u",
			    __func__, m->auth.method, method);
			goto done;
		}
		auth = m->auth.data.p;
		alen = m->auth.data.len;
	}
	if (id != NULL) {
		idb.p = id->data;
		idb.len = id->len;
	} else {
		idb = idp->body;
		buf_reset(&sa->peer_id);
		sa->peer_id.len = 0;
		if (buf_add(&sa->peer_id, idb.p, idb.len) == -1)
			goto done;
	}
	if (ike_sa_octets(sa, !sa->initiator, noppk, &idb, &oct) == -1)
		goto done;
	if (method == IKE_AUTH_DIGITAL_SIG) {
		if (id != NULL || (x = peer_cert(m, idp, ca)) == NULL ||
		    ike_auth_sig_verify(x, oct.data, oct.len, auth, alen) == -1)
			goto done;
	} else {
		if (ike_sa_auth_secret(sa, !sa->initiator, secret,
			sizeof(secret), &slen) == -1 ||
		    ike_auth_psk_verify(secret, slen, oct.data, oct.len, auth,
			alen) == -1)
			goto done;
	}
	ret = 0;
done:
	if (ret == -1)
		log_warn("peer AUTH (method %u) does not verify", method);
	OPENSSL_cleanse(secret, sizeof(secret));
	X509_free(x);
	buf_free(&oct);
	return ret;
}
