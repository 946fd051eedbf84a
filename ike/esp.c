/*
 * ESP (RFC 4303) for the userspace data plane: see esp.h for the contract.
 *
 * Per packet nothing is allocated: the cipher context of the SA is keyed
 * once in esp_sa_new() and only gets a new IV/nonce per packet (EVP_*Init
 * with NULL cipher and key). HMAC-SHA2-256 is computed from the inner and
 * outer SHA-256 states precomputed from the key (RFC 2104) and copied by
 * struct assignment: OpenSSL 3.0's EVP digest and MAC contexts allocate
 * on every re-initialisation or copy (their provider dupctx/newctx), the
 * low-level SHA256_CTX does not. Those states, the GCM salt and the key
 * copies live in one sec_alloc block; the raw keys are wiped once the
 * contexts are keyed, the rest on free (EVP_CIPHER_CTX_free cleanses the
 * key schedule).
 *
 * CBC IVs (RFC 3602: unpredictable) come from an AES-256-CTR keystream
 * under a random per-SA key, made 64 IVs at a time.
 */
/* SHA256_Init/Update/Final: deprecated in 3.0 but the only allocation-free
 * way to reuse a keyed HMAC state (see above). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/esp.h"

#define ESP_GCM_KEY   32
#define ESP_GCM_SALT  4
#define ESP_GCM_IV    8
#define ESP_CBC_IV    16
#define ESP_ICV	      16
#define ESP_INTEG_KEY 32
#define ESP_WORDS     (ESP_REPLAY_WINDOW / 64)
#define ESP_IV_BATCH  64

_Static_assert(ESP_REPLAY_WINDOW % 64 == 0, "window: a multiple of 64");

void (*esp_test_wipe_hook)(const void *secret, size_t len);

/* Everything secret of an SA: one sec_alloc block. */
struct esp_secret {
	uint8_t	   enc[ESP_GCM_KEY];
	uint8_t	   salt[ESP_GCM_SALT];
	uint8_t	   integ[ESP_INTEG_KEY];
	SHA256_CTX hi, ho, work; /* HMAC inner, outer, per packet */
};

struct esp_sa {
	uint32_t	    spi; /* network byte order */
	enum esp_alg	    alg;
	bool		    esn, outbound;
	struct esp_lifetime life;
	size_t		    ivlen, align;
	EVP_CIPHER_CTX	   *cctx;
	EVP_CIPHER_CTX	   *ivctx; /* CBC outbound: IV generator */
	struct esp_secret  *sec;
	uint8_t		    ivbuf[ESP_IV_BATCH * ESP_CBC_IV];
	size_t		    ivpos;
	uint64_t	    win[ESP_WORDS]; /* inbound: bit s % W: seen */
	/* Written by the SA's thread only, read by any. */
	_Atomic uint64_t    packets, bytes, replay, icv, pad, shortp, other;
	_Atomic uint64_t    seq;
};

/* Single writer: a relaxed load and store, no locked instruction. */
static inline void
ctr_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c,
	    atomic_load_explicit(c, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

static inline uint64_t
ctr_get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static inline void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

const char *
esp_rc_name(enum esp_rc rc)
{
	switch (rc) {
	case ESP_OK: return "ok";
	case ESP_E_SHORT: return "short";
	case ESP_E_REPLAY: return "replay";
	case ESP_E_ICV: return "icv";
	case ESP_E_PAD: return "pad";
	case ESP_E_SEQ: return "seq";
	case ESP_E_HARD: return "hard";
	case ESP_E_CRYPTO: return "crypto";
	}
	return "?";
}

/* ---- SA setup ---- */

static int
check_cfg(const struct esp_sa_cfg *c, char *err, size_t errlen)
{
	size_t want = c->alg == ESP_AES_GCM_256 ? ESP_GCM_KEY + ESP_GCM_SALT :
						  ESP_GCM_KEY;

	if (c->alg != ESP_AES_GCM_256 && c->alg != ESP_AES_CBC_256_SHA256) {
		snprintf(err, errlen, "esp: unknown algorithm %d", (int)c->alg);
		return -1;
	}
	if (c->enc_key == NULL || c->enc_len != want) {
		snprintf(err, errlen,
		    "esp: SPI 0x%08x: encryption key of %zu "
		    "bytes, want %zu",
		    ntohl(c->spi), c->enc_len, want);
		return -1;
	}
	if (c->alg == ESP_AES_CBC_256_SHA256 ?
		(c->integ_key == NULL || c->integ_len != ESP_INTEG_KEY) :
		(c->integ_key != NULL || c->integ_len != 0)) {
		snprintf(err, errlen,
		    "esp: SPI 0x%08x: integrity key of %zu "
		    "bytes, want %d",
		    ntohl(c->spi), c->integ_len,
		    c->alg == ESP_AES_CBC_256_SHA256 ? ESP_INTEG_KEY : 0);
		return -1;
	}
	return 0;
}

/* RFC 2104: the SHA-256 states after (key ^ ipad) and (key ^ opad). */
static void
hmac_precompute(struct esp_secret *s)
{
	uint8_t pad[SHA256_CBLOCK];

	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < ESP_INTEG_KEY; i++)
		pad[i] ^= s->integ[i];
	SHA256_Init(&s->hi);
	SHA256_Update(&s->hi, pad, sizeof(pad));
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < ESP_INTEG_KEY; i++)
		pad[i] ^= s->integ[i];
	SHA256_Init(&s->ho);
	SHA256_Update(&s->ho, pad, sizeof(pad));
	OPENSSL_cleanse(pad, sizeof(pad));
}

/* The CBC IV generator: AES-256-CTR under a random key and counter. */
static int
ivgen_new(struct esp_sa *sa)
{
	uint8_t k[32 + 16];
	int	rc = -1;

	if ((sa->ivctx = EVP_CIPHER_CTX_new()) == NULL ||
	    RAND_bytes(k, sizeof(k)) != 1 ||
	    EVP_EncryptInit_ex(sa->ivctx, EVP_aes_256_ctr(), NULL, k, k + 32) !=
		1)
		goto done;
	sa->ivpos = sizeof(sa->ivbuf); /* empty: refilled on first use */
	rc = 0;
done:
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

static int
cipher_new(struct esp_sa *sa)
{
	const EVP_CIPHER *ci =
	    sa->alg == ESP_AES_GCM_256 ? EVP_aes_256_gcm() : EVP_aes_256_cbc();

	if ((sa->cctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_CipherInit_ex(sa->cctx, ci, NULL, sa->sec->enc, NULL,
		sa->outbound ? 1 : 0) != 1)
		return -1;
	if (sa->alg == ESP_AES_CBC_256_SHA256) {
		if (EVP_CIPHER_CTX_set_padding(sa->cctx, 0) != 1)
			return -1;
		hmac_precompute(sa->sec);
		if (sa->outbound && ivgen_new(sa) == -1)
			return -1;
	}
	return 0;
}

struct esp_sa *
esp_sa_new(const struct esp_sa_cfg *c, char *err, size_t errlen)
{
	struct esp_sa *sa;

	if (check_cfg(c, err, errlen) == -1)
		return NULL;
	if ((sa = calloc(1, sizeof(*sa))) == NULL ||
	    (sa->sec = sec_alloc(sizeof(*sa->sec))) == NULL) {
		snprintf(err, errlen, "esp: out of memory");
		free(sa);
		return NULL;
	}
	sa->spi = c->spi;
	sa->alg = c->alg;
	sa->esn = c->esn;
	sa->outbound = c->outbound;
	sa->life = c->life;
	sa->ivlen = c->alg == ESP_AES_GCM_256 ? ESP_GCM_IV : ESP_CBC_IV;
	sa->align = c->alg == ESP_AES_GCM_256 ? 4 : 16;
	memcpy(sa->sec->enc, c->enc_key, ESP_GCM_KEY);
	if (c->alg == ESP_AES_GCM_256)
		memcpy(sa->sec->salt, c->enc_key + ESP_GCM_KEY, ESP_GCM_SALT);
	else
		memcpy(sa->sec->integ, c->integ_key, ESP_INTEG_KEY);
	if (cipher_new(sa) == -1) {
		snprintf(err, errlen, "esp: SPI 0x%08x: cipher setup failed",
		    ntohl(c->spi));
		esp_sa_free(sa);
		return NULL;
	}
	/* Keyed: the raw keys are not needed again (the salt is). */
	OPENSSL_cleanse(sa->sec->enc, sizeof(sa->sec->enc));
	OPENSSL_cleanse(sa->sec->integ, sizeof(sa->sec->integ));
	return sa;
}

void
esp_sa_free(struct esp_sa *sa)
{
	if (sa == NULL)
		return;
	EVP_CIPHER_CTX_free(sa->cctx); /* cleanses the key schedule */
	EVP_CIPHER_CTX_free(sa->ivctx);
	OPENSSL_cleanse(sa->ivbuf, sizeof(sa->ivbuf));
	if (sa->sec != NULL) {
		OPENSSL_cleanse(sa->sec, sizeof(*sa->sec));
		if (esp_test_wipe_hook != NULL)
			esp_test_wipe_hook(sa->sec, sizeof(*sa->sec));
		sec_free(sa->sec, sizeof(*sa->sec));
	}
	free(sa);
}

uint32_t
esp_sa_spi(const struct esp_sa *sa)
{
	return sa->spi;
}

bool
esp_sa_esn(const struct esp_sa *sa)
{
	return sa->esn;
}

void
esp_sa_stats(const struct esp_sa *sa, struct esp_stats *st)
{
	st->packets = ctr_get(&sa->packets);
	st->bytes = ctr_get(&sa->bytes);
	st->replay = ctr_get(&sa->replay);
	st->icv = ctr_get(&sa->icv);
	st->pad = ctr_get(&sa->pad);
	st->shortp = ctr_get(&sa->shortp);
	st->other = ctr_get(&sa->other);
	st->seq = ctr_get(&sa->seq);
}

static bool
past(uint64_t v, uint64_t limit)
{
	return limit != 0 && v >= limit;
}

bool
esp_sa_soft(const struct esp_sa *sa)
{
	uint64_t seq_soft = sa->esn ? (uint64_t)1 << 63 : (uint64_t)1 << 31;

	return past(ctr_get(&sa->packets), sa->life.soft_packets) ||
	    past(ctr_get(&sa->bytes), sa->life.soft_bytes) ||
	    ctr_get(&sa->seq) >= seq_soft;
}

/* Checked before a packet: the one that crosses hard_bytes still goes. */
static bool
hard_reached(const struct esp_sa *sa)
{
	return past(ctr_get(&sa->packets), sa->life.hard_packets) ||
	    past(ctr_get(&sa->bytes), sa->life.hard_bytes);
}

bool
esp_sa_hard(const struct esp_sa *sa)
{
	return hard_reached(sa) ||
	    (sa->outbound &&
		ctr_get(&sa->seq) == (sa->esn ? UINT64_MAX : UINT32_MAX));
}

void
esp_sa_test_set_seq(struct esp_sa *sa, uint64_t seq)
{
	atomic_store_explicit(&sa->seq, seq, memory_order_relaxed);
	memset(sa->win, 0, sizeof(sa->win));
	if (!sa->outbound && seq != 0)
		sa->win[(seq / 64) % ESP_WORDS] |= (uint64_t)1 << (seq % 64);
}

/* Counts a failure in its counter; returns rc. */
static enum esp_rc
fail(struct esp_sa *sa, enum esp_rc rc)
{
	switch (rc) {
	case ESP_E_SHORT: ctr_add(&sa->shortp, 1); break;
	case ESP_E_REPLAY: ctr_add(&sa->replay, 1); break;
	case ESP_E_ICV: ctr_add(&sa->icv, 1); break;
	case ESP_E_PAD: ctr_add(&sa->pad, 1); break;
	default: ctr_add(&sa->other, 1); break;
	}
	return rc;
}

static enum esp_rc
crypto_fail(struct esp_sa *sa, const char *what)
{
	log_err("esp: SPI 0x%08x: %s", ntohl(sa->spi), what);
	return fail(sa, ESP_E_CRYPTO);
}

/* ---- HMAC-SHA2-256-128 (RFC 4868) over SPI | seq | IV | ciphertext
 * [| seq_hi] (RFC 4303 2.2.1) ---- */

static void
hmac_icv(struct esp_sa *sa, const uint8_t *p, size_t n, uint32_t seq_hi,
    uint8_t icv[ESP_ICV])
{
	struct esp_secret *s = sa->sec;
	uint8_t		   md[SHA256_DIGEST_LENGTH], hi[4];

	s->work = s->hi;
	SHA256_Update(&s->work, p, n);
	if (sa->esn) {
		put32(hi, seq_hi);
		SHA256_Update(&s->work, hi, sizeof(hi));
	}
	SHA256_Final(md, &s->work);
	s->work = s->ho;
	SHA256_Update(&s->work, md, sizeof(md));
	SHA256_Final(md, &s->work);
	memcpy(icv, md, ESP_ICV);
}

/* ---- outbound ---- */

static int
next_iv(struct esp_sa *sa, uint8_t *iv)
{
	int n;

	if (sa->ivpos == sizeof(sa->ivbuf)) {
		memset(sa->ivbuf, 0, sizeof(sa->ivbuf));
		if (EVP_EncryptUpdate(sa->ivctx, sa->ivbuf, &n, sa->ivbuf,
			sizeof(sa->ivbuf)) != 1)
			return -1;
		sa->ivpos = 0;
	}
	memcpy(iv, sa->ivbuf + sa->ivpos, ESP_CBC_IV);
	sa->ivpos += ESP_CBC_IV;
	return 0;
}

/* The trailer of section 2.4: padding 1, 2, 3 ..., pad length, next header;
 * its length. */
static size_t
trailer(const struct esp_sa *sa, size_t inlen, uint8_t nh, uint8_t *t)
{
	size_t padlen = (sa->align - (inlen + 2) % sa->align) % sa->align;

	for (size_t i = 0; i < padlen; i++)
		t[i] = (uint8_t)(i + 1);
	t[padlen] = (uint8_t)padlen;
	t[padlen + 1] = nh;
	return padlen + 2;
}

/* Encrypts in and the trailer t into out; the ICV goes to icv. */
static int
seal(struct esp_sa *sa, uint8_t *hdr, const uint8_t *in, size_t inlen,
    const uint8_t *t, size_t tlen, uint64_t seq, uint8_t *icv)
{
	uint8_t *iv = hdr + ESP_HDR_LEN, *ct = iv + sa->ivlen, nonce[12],
		aad[12];
	int n, m;

	if (sa->alg == ESP_AES_GCM_256) {
		memcpy(nonce, sa->sec->salt, ESP_GCM_SALT);
		put32(iv, (uint32_t)(seq >> 32));
		put32(iv + 4, (uint32_t)seq);
		memcpy(nonce + ESP_GCM_SALT, iv, ESP_GCM_IV);
		memcpy(aad, hdr, 4); /* SPI | [seq_hi |] seq_lo */
		put32(aad + 4, (uint32_t)(seq >> 32));
		memcpy(aad + (sa->esn ? 8 : 4), hdr + 4, 4);
		if (EVP_EncryptInit_ex(sa->cctx, NULL, NULL, NULL, nonce) !=
			1 ||
		    EVP_EncryptUpdate(sa->cctx, NULL, &n, aad,
			sa->esn ? 12 : 8) != 1)
			return -1;
	} else if (next_iv(sa, iv) == -1 ||
	    EVP_EncryptInit_ex(sa->cctx, NULL, NULL, NULL, iv) != 1)
		return -1;
	if ((inlen > 0 &&
		EVP_EncryptUpdate(sa->cctx, ct, &n, in, (int)inlen) != 1) ||
	    EVP_EncryptUpdate(sa->cctx, ct + (inlen > 0 ? n : 0), &m, t,
		(int)tlen) != 1 ||
	    EVP_EncryptFinal_ex(sa->cctx, ct, &n) != 1)
		return -1;
	if (sa->alg == ESP_AES_GCM_256)
		return EVP_CIPHER_CTX_ctrl(sa->cctx, EVP_CTRL_GCM_GET_TAG,
			   ESP_ICV, icv) == 1 ?
		    0 :
		    -1;
	hmac_icv(sa, hdr, (size_t)(icv - hdr), (uint32_t)(seq >> 32), icv);
	return 0;
}

enum esp_rc
esp_encap(struct esp_sa *sa, const uint8_t *in, size_t inlen, uint8_t nh,
    uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t	 t[15 + 2];
	uint64_t seq = ctr_get(&sa->seq);
	size_t	 tlen, total;

	if (!sa->outbound)
		return crypto_fail(sa, "esp_encap on an inbound SA");
	if (hard_reached(sa))
		return fail(sa, ESP_E_HARD);
	if (seq == (sa->esn ? UINT64_MAX : UINT32_MAX))
		return fail(sa, ESP_E_SEQ);
	if (inlen > INT32_MAX / 2)
		return fail(sa, ESP_E_SHORT);
	tlen = trailer(sa, inlen, nh, t);
	total = ESP_HDR_LEN + sa->ivlen + inlen + tlen + ESP_ICV;
	if (cap < total)
		return fail(sa, ESP_E_SHORT);
	/* Consumed before use: a failed packet never gives its number (its
	 * GCM nonce) to another. */
	atomic_store_explicit(&sa->seq, ++seq, memory_order_relaxed);
	memcpy(out, &sa->spi, 4);
	put32(out + 4, (uint32_t)seq);
	if (seal(sa, out, in, inlen, t, tlen, seq, out + total - ESP_ICV) == -1)
		return crypto_fail(sa, "encryption failed");
	ctr_add(&sa->packets, 1);
	ctr_add(&sa->bytes, inlen);
	*outlen = total;
	return ESP_OK;
}

/* ---- inbound: the window (RFC 4303 3.4.3, appendix A) ---- */

/* The full sequence number of a packet whose low 32 bits are lo (A2.1). */
static uint64_t
infer_seq(const struct esp_sa *sa, uint32_t lo)
{
	uint64_t top = ctr_get(&sa->seq);
	uint32_t tl = (uint32_t)top, th = (uint32_t)(top >> 32);
	uint32_t bl = tl - (ESP_REPLAY_WINDOW - 1); /* mod 2^32 */

	if (!sa->esn)
		return lo;
	if (tl >= ESP_REPLAY_WINDOW - 1) { /* window within one subspace */
		if (lo < bl)
			th++;	       /* ahead, in the next subspace */
	} else if (lo >= bl && th > 0) /* window spans two subspaces */
		th--;		       /* the previous subspace */
	return (uint64_t)th << 32 | lo;
}

static bool
win_seen(const struct esp_sa *sa, uint64_t seq)
{
	uint64_t top = ctr_get(&sa->seq);

	if (seq == 0)
		return true;
	if (seq > top)
		return false;
	if (top - seq >= ESP_REPLAY_WINDOW)
		return true; /* left of the window */
	return (sa->win[(seq / 64) % ESP_WORDS] >> (seq % 64) & 1) != 0;
}

/* Marks seq seen, sliding the window right when seq is new. */
static void
win_mark(struct esp_sa *sa, uint64_t seq)
{
	uint64_t top = ctr_get(&sa->seq);

	if (seq > top) {
		if (seq - top >= ESP_REPLAY_WINDOW)
			memset(sa->win, 0, sizeof(sa->win));
		else {
			/* Bits top+1 .. seq: a word at a time when whole. */
			for (uint64_t s = top + 1; s <= seq;) {
				if (s % 64 == 0 && seq - s >= 63) {
					sa->win[(s / 64) % ESP_WORDS] = 0;
					s += 64;
				} else {
					sa->win[(s / 64) % ESP_WORDS] &=
					    ~((uint64_t)1 << (s % 64));
					s++;
				}
			}
		}
		atomic_store_explicit(&sa->seq, seq, memory_order_relaxed);
	}
	sa->win[(seq / 64) % ESP_WORDS] |= (uint64_t)1 << (seq % 64);
}

/* Verifies the ICV and decrypts ct[0..ctlen) in place. */
static enum esp_rc
open_pkt(struct esp_sa *sa, uint8_t *pkt, size_t ctlen, uint64_t seq)
{
	uint8_t *iv = pkt + ESP_HDR_LEN, *ct = iv + sa->ivlen,
		*icv = ct + ctlen;
	uint8_t nonce[12], aad[12], tag[ESP_ICV];
	int	n;

	memcpy(tag, icv, ESP_ICV);
	if (sa->alg == ESP_AES_GCM_256) {
		memcpy(nonce, sa->sec->salt, ESP_GCM_SALT);
		memcpy(nonce + ESP_GCM_SALT, iv, ESP_GCM_IV);
		memcpy(aad, pkt, 4);
		put32(aad + 4, (uint32_t)(seq >> 32));
		memcpy(aad + (sa->esn ? 8 : 4), pkt + 4, 4);
		if (EVP_DecryptInit_ex(sa->cctx, NULL, NULL, NULL, nonce) !=
			1 ||
		    EVP_CIPHER_CTX_ctrl(sa->cctx, EVP_CTRL_GCM_SET_TAG, ESP_ICV,
			tag) != 1 ||
		    EVP_DecryptUpdate(sa->cctx, NULL, &n, aad,
			sa->esn ? 12 : 8) != 1 ||
		    EVP_DecryptUpdate(sa->cctx, ct, &n, ct, (int)ctlen) != 1)
			return crypto_fail(sa, "decryption failed");
		if (EVP_DecryptFinal_ex(sa->cctx, ct + n, &n) != 1)
			return fail(sa, ESP_E_ICV);
		return ESP_OK;
	}
	hmac_icv(sa, pkt, (size_t)(icv - pkt), (uint32_t)(seq >> 32), tag);
	if (CRYPTO_memcmp(tag, icv, ESP_ICV) != 0)
		return fail(sa, ESP_E_ICV);
	if (EVP_DecryptInit_ex(sa->cctx, NULL, NULL, NULL, iv) != 1 ||
	    EVP_DecryptUpdate(sa->cctx, ct, &n, ct, (int)ctlen) != 1 ||
	    EVP_DecryptFinal_ex(sa->cctx, ct + n, &n) != 1)
		return crypto_fail(sa, "decryption failed");
	return ESP_OK;
}

/* Padding 1, 2, 3 ... (section 2.4) before pad length and next header. */
static bool
pad_ok(const uint8_t *pt, size_t ptlen)
{
	size_t	padlen = pt[ptlen - 2];
	uint8_t bad = 0;

	if (padlen + 2 > ptlen)
		return false;
	for (size_t i = 0; i < padlen; i++)
		bad |= pt[ptlen - 2 - padlen + i] ^ (uint8_t)(i + 1);
	return bad == 0;
}

enum esp_rc
esp_decap(struct esp_sa *sa, uint8_t *pkt, size_t len, size_t *off,
    size_t *inlen, uint8_t *nh)
{
	size_t	    hdr = ESP_HDR_LEN + sa->ivlen, ctlen, padlen;
	uint64_t    seq;
	enum esp_rc rc;
	uint8_t	   *pt;

	if (sa->outbound)
		return crypto_fail(sa, "esp_decap on an outbound SA");
	if (hard_reached(sa))
		return fail(sa, ESP_E_HARD);
	if (len < hdr + ESP_ICV + sa->align || len > INT32_MAX / 2)
		return fail(sa, ESP_E_SHORT);
	ctlen = len - hdr - ESP_ICV;
	if (ctlen % sa->align != 0)
		return fail(sa, ESP_E_SHORT);
	seq = infer_seq(sa, get32(pkt + 4));
	if (win_seen(sa, seq))
		return fail(sa, ESP_E_REPLAY);
	if ((rc = open_pkt(sa, pkt, ctlen, seq)) != ESP_OK)
		return rc;
	win_mark(sa, seq);
	pt = pkt + hdr;
	if (!pad_ok(pt, ctlen))
		return fail(sa, ESP_E_PAD);
	padlen = pt[ctlen - 2];
	*off = hdr;
	*inlen = ctlen - padlen - 2;
	*nh = pt[ctlen - 1];
	ctr_add(&sa->packets, 1);
	ctr_add(&sa->bytes, *inlen);
	return ESP_OK;
}

/* ---- SPI table: open addressing, linear probing, tombstones ---- */

/*
 * Slots are atomic pointers so that a reader on another thread sees either
 * the old or the new SA, never a torn one (freeing a removed SA while a
 * reader may still hold it is the caller's business). A deleted slot
 * becomes a tombstone, or empty (with the tombstones just before it) when
 * the slot after it is empty: no probe sequence runs through it then.
 * Tombstones left by churn could lengthen the search for an absent SPI
 * (every packet with a stranger's SPI): a lookup never probes further than
 * the longest probe any add needed, which stays short at half load.
 */
struct esp_spi_table {
	size_t			  mask, count, max;
	_Atomic size_t		  maxprobe; /* longest probe of any add */
	_Atomic(struct esp_sa *) *slot;	    /* NULL empty, &tomb deleted */
};

static struct esp_sa tomb;

static size_t
spi_hash(uint32_t spi, size_t mask)
{
	return (size_t)((spi * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & mask;
}

struct esp_spi_table *
esp_spi_table_new(size_t max_sas)
{
	struct esp_spi_table *t;
	size_t		      cap = 4;

	if (max_sas == 0 || max_sas > SIZE_MAX / 8)
		return NULL;
	while (cap < 2 * max_sas)
		cap *= 2;
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->slot = calloc(cap, sizeof(*t->slot))) == NULL) {
		free(t);
		return NULL;
	}
	t->mask = cap - 1;
	t->max = max_sas;
	return t;
}

void
esp_spi_table_free(struct esp_spi_table *t)
{
	if (t == NULL)
		return;
	free(t->slot);
	free(t);
}

static struct esp_sa *
slot_get(const struct esp_spi_table *t, size_t i)
{
	return atomic_load_explicit(&t->slot[i], memory_order_acquire);
}

static void
slot_set(struct esp_spi_table *t, size_t i, struct esp_sa *sa)
{
	atomic_store_explicit(&t->slot[i], sa, memory_order_release);
}

/* The slot holding spi, or SIZE_MAX. */
static size_t
slot_find(const struct esp_spi_table *t, uint32_t spi)
{
	size_t i = spi_hash(spi, t->mask);
	size_t maxprobe =
	    atomic_load_explicit(&t->maxprobe, memory_order_acquire);

	for (size_t n = 0; n <= maxprobe; n++, i = (i + 1) & t->mask) {
		struct esp_sa *sa = slot_get(t, i);

		if (sa == NULL)
			break;
		if (sa != &tomb && sa->spi == spi)
			return i;
	}
	return SIZE_MAX;
}

struct esp_sa *
esp_spi_find(const struct esp_spi_table *t, uint32_t spi)
{
	size_t i = slot_find(t, spi);

	return i == SIZE_MAX ? NULL : slot_get(t, i);
}

int
esp_spi_add(struct esp_spi_table *t, struct esp_sa *sa)
{
	size_t i = spi_hash(sa->spi, t->mask), n = 0;

	/* At most half full: the capacity is at least twice max. */
	if (t->count == t->max || slot_find(t, sa->spi) != SIZE_MAX)
		return -1;
	while (slot_get(t, i) != NULL && slot_get(t, i) != &tomb) {
		i = (i + 1) & t->mask;
		n++;
	}
	if (n > atomic_load_explicit(&t->maxprobe, memory_order_relaxed))
		atomic_store_explicit(&t->maxprobe, n, memory_order_release);
	slot_set(t, i, sa);
	t->count++;
	return 0;
}

struct esp_sa *
esp_spi_del(struct esp_spi_table *t, uint32_t spi)
{
	size_t	       i = slot_find(t, spi);
	struct esp_sa *sa;

	if (i == SIZE_MAX)
		return NULL;
	sa = slot_get(t, i);
	if (slot_get(t, (i + 1) & t->mask) != NULL) {
		slot_set(t, i, &tomb);
	} else {
		do {
			slot_set(t, i, NULL);
			i = (i - 1) & t->mask;
		} while (slot_get(t, i) == &tomb);
	}
	t->count--;
	return sa;
}
