/* The endpoints' kmsd client: 13 keys per connection in one call per side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/uuid.h"
#include "ike/crypto.h"
#include "ike/ikecfg.h"
#include "ike/qkd.h"
#include "kmsclient/kmsclient.h"

struct ike_qkd {
	struct kms_client *kc;
	char		   sae[ETSI_ID_MAX + 1];
};

/* The subject CN of a PEM certificate: the SAE ID kmsd knows us by. */
static int
cert_cn(const char *path, char *out, size_t cap)
{
	X509 *x;
	int   n;

	if ((x = ike_cert_load(path)) == NULL)
		return -1;
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
	    out, (int)cap);
	X509_free(x);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

struct ike_qkd *
ike_qkd_open(const struct ikecfg *c, char *err, size_t errlen)
{
	struct kms_client_cfg kc;
	struct ike_qkd	     *q;
	struct etsi_status    st;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (c->sae_id != NULL)
		snprintf(q->sae, sizeof(q->sae), "%s", c->sae_id);
	else if (cert_cn(c->kmsd_cert, q->sae, sizeof(q->sae)) == -1 ||
	    !etsi_id_valid(q->sae)) {
		snprintf(err, errlen,
		    "cannot read an SAE ID (subject CN) from "
		    "kmsd_cert \"%s\"; give --sae-id",
		    c->kmsd_cert);
		free(q);
		return NULL;
	}
	memset(&kc, 0, sizeof(kc));
	kc.url = c->kmsd_url;
	kc.cert = c->kmsd_cert;
	kc.key = c->kmsd_key;
	kc.ca = c->kmsd_ca ? c->kmsd_ca : c->ca;
	kc.timeout_ms = c->kmsd_timeout_ms;
	if ((q->kc = kms_client_new(&kc, err, errlen)) == NULL) {
		free(q);
		return NULL;
	}
	/* Warm up: the TLS handshake now, not in the first IKE_SA_INIT. */
	if (c->peer_sae != NULL) {
		if (kms_status(q->kc, c->peer_sae, &st) != KMS_OK)
			log_warn("kmsd %s not reachable yet (%s%s%s); going on",
			    c->kmsd_url, kms_last_message(q->kc),
			    *kms_last_detail(q->kc) ? ": " : "",
			    kms_last_detail(q->kc));
		else
			log_info(
			    "kmsd %s: connected as SAE %s (%u keys for %s)",
			    c->kmsd_url, q->sae, st.stored_key_count,
			    c->peer_sae);
	}
	return q;
}

void
ike_qkd_close(struct ike_qkd *q)
{
	if (q == NULL)
		return;
	kms_client_free(q->kc);
	free(q);
}

const char *
ike_qkd_sae(const struct ike_qkd *q)
{
	return q->sae;
}

struct ike_qkd_keys *
ike_qkd_keys_new(void)
{
	return sec_alloc(sizeof(struct ike_qkd_keys));
}

void
ike_qkd_keys_free(struct ike_qkd_keys *k)
{
	if (k != NULL)
		sec_free(k, sizeof(*k));
}

static void
kms_why(struct ike_qkd *q, const char *call, int rc, char *why)
{
	int st = kms_last_status(q->kc);

	snprintf(why, IKE_QKD_WHYLEN, "%s: %s%s%.0d%s %s%s%s", call,
	    kms_strerror(rc), st ? " (HTTP " : "", st, st ? ")" : "",
	    kms_last_message(q->kc), *kms_last_detail(q->kc) ? ": " : "",
	    kms_last_detail(q->kc));
}

/* Moves keys from the ETSI container into out (checked sizes, UUID IDs). */
static int
take_keys(const struct etsi_keys *ks, struct ike_qkd_keys *out, char *why)
{
	for (size_t i = 0; i < ks->n; i++) {
		const struct etsi_key *k = &ks->v[i];

		if (k->len != IKE_QKD_KEYLEN) {
			snprintf(why, IKE_QKD_WHYLEN,
			    "key %s has %zu bytes, not %u", k->id, k->len,
			    (unsigned)IKE_QKD_KEYLEN);
			return -1;
		}
		if (uuid_parse(k->id, out->uuid[i]) == -1) {
			snprintf(why, IKE_QKD_WHYLEN,
			    "key ID \"%s\" is not a UUID", k->id);
			return -1;
		}
		snprintf(out->id[i], sizeof(out->id[i]), "%s", k->id);
		memcpy(out->key[i], k->key, IKE_QKD_KEYLEN);
	}
	out->n = ks->n;
	return 0;
}

int
ike_qkd_enc(struct ike_qkd *q, const char *slave, unsigned n,
    struct ike_qkd_keys *out, char why[static IKE_QKD_WHYLEN])
{
	struct etsi_key_req req;
	struct etsi_keys    ks = { NULL, 0 };
	int		    rc, ret = -1;

	if (n == 0 || n > IKE_QKD_NKEYS) {
		snprintf(why, IKE_QKD_WHYLEN, "%u keys asked, at most %u", n,
		    (unsigned)IKE_QKD_NKEYS);
		return -1;
	}
	memset(&req, 0, sizeof(req));
	req.number = n;
	req.size = IKE_QKD_KEYLEN * 8;
	if ((rc = kms_enc_keys(q->kc, slave, &req, &ks)) != KMS_OK) {
		kms_why(q, "enc_keys", rc, why);
		goto done;
	}
	if (ks.n != n) {
		snprintf(why, IKE_QKD_WHYLEN, "enc_keys gave %zu keys, not %u",
		    ks.n, n);
		goto done;
	}
	ret = take_keys(&ks, out, why);
done:
	etsi_keys_free(&ks);
	if (ret == -1)
		OPENSSL_cleanse(out, sizeof(*out));
	return ret;
}

int
ike_qkd_dec(struct ike_qkd *q, const char	    *master,
    const char (*ids)[ETSI_KEY_ID_MAX + 1], unsigned n,
    struct ike_qkd_keys *out, char why[static IKE_QKD_WHYLEN])
{
	struct etsi_key_ids req = { NULL, 0 };
	struct etsi_keys    ks = { NULL, 0 };
	struct etsi_keys    ordered = { NULL, 0 };
	int		    rc, ret = -1;

	if (n == 0 || n > IKE_QKD_NKEYS || etsi_key_ids_alloc(&req, n) == -1 ||
	    etsi_keys_alloc(&ordered, n) == -1) {
		snprintf(why, IKE_QKD_WHYLEN, "cannot ask for %u keys", n);
		goto done;
	}
	for (unsigned i = 0; i < n; i++)
		memcpy(req.ids[i], ids[i], sizeof(req.ids[i]));
	if ((rc = kms_dec_keys(q->kc, master, &req, &ks)) != KMS_OK) {
		kms_why(q, "dec_keys", rc, why);
		goto done;
	}
	/* kms_dec_keys checked that exactly these IDs came back; order them. */
	for (unsigned i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < ks.n; j++)
			if (strcmp(ks.v[j].id, ids[i]) == 0)
				break;
		if (j == ks.n) {
			snprintf(why, IKE_QKD_WHYLEN,
			    "dec_keys: key %s missing", ids[i]);
			goto done;
		}
		ordered.v[i] = ks.v[j]; /* borrowed, not freed twice */
	}
	ret = take_keys(&ordered, out, why);
done:
	free(ordered.v);
	etsi_keys_free(&ks);
	etsi_key_ids_free(&req);
	if (ret == -1)
		OPENSSL_cleanse(out, sizeof(*out));
	return ret;
}

int
ike_qkd_ids_encode(const struct ike_qkd_keys *k, uint8_t *out, size_t cap,
    size_t *len)
{
	if (k->n == 0 || k->n > IKE_QKD_NKEYS || cap < 1 + 16 * k->n) {
		log_err("%s: %zu key IDs do not fit in %zu bytes", __func__,
		    k->n, cap);
		return -1;
	}
	out[0] = (uint8_t)k->n;
	for (size_t i = 0; i < k->n; i++)
		memcpy(out + 1 + 16 * i, k->uuid[i], 16);
	*len = 1 + 16 * k->n;
	return 0;
}

int
ike_qkd_ids_decode(const uint8_t *p, size_t len, unsigned want,
    struct ike_qkd_keys *k)
{
	if (len < 1 || p[0] != want || want > IKE_QKD_NKEYS ||
	    len != 1 + 16 * (size_t)want) {
		log_warn("%s: QKD_KEY_IDS of %zu bytes (count %u), want %u IDs",
		    __func__, len, len ? p[0] : 0, want);
		return -1;
	}
	for (unsigned i = 0; i < want; i++) {
		memcpy(k->uuid[i], p + 1 + 16 * i, 16);
		uuid_fmt(k->uuid[i], k->id[i]);
	}
	k->n = want;
	return 0;
}
