/*
 * Keys at rest: the key-encryption key (KEK) file and AES-256-GCM sealing
 * under it. Used by kmsd's pool and the simulator's store.
 *
 * Blob layout: nonce (12 bytes) || ciphertext (n bytes) || tag (16 bytes),
 * SEAL_OVERHEAD bytes longer than the plaintext. Nonces are 96 random bits
 * per seal (RAND_bytes): no state to persist, safe across crashes, restarts
 * and several processes sharing one KEK. NIST SP 800-38D allows 2^32 random
 * nonces per key; at 200,000 keys/s sustained that is ~6 hours of nonstop
 * sealing, but a pool holds and replaces far fewer keys than that over the
 * life of a KEK (rotate the KEK, i.e. start a new pool, before 2^32 seals).
 *
 * The AAD binds a blob to its record (key ID, owner, ...): a blob copied to
 * another record does not open.
 */
#ifndef COMMON_SEAL_H
#define COMMON_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEK_LEN   32
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN   16
#define SEAL_OVERHEAD  (SEAL_NONCE_LEN + SEAL_TAG_LEN)
#define SEAL_MAX_LEN   (1u << 30) /* plaintext and AAD limit */

struct seal;

/*
 * Reads the 32-byte KEK from path. If path does not exist, creates it with 32
 * random bytes, mode 0600, atomically (written and synced under a temporary
 * name, then linked into place: nobody ever sees a short file; if two
 * processes race, both end up with the winner's key). Refuses a symbolic
 * link (opened with O_NOFOLLOW), and anything but a regular file of exactly
 * 32 bytes owned by the effective user with mode 0600 (or 0400). 0, or -1
 * with a message naming the path, the bad value and the fix in err; kek is
 * wiped on failure.
 */
int seal_kek_load(const char *path, uint8_t kek[static SEAL_KEK_LEN], char *err,
    size_t errlen);

/*
 * A sealing context for one KEK (the key schedule is computed once; kek can
 * be wiped after the call). Thread-safe: calls on one object are serialised
 * by its mutex. NULL on failure.
 */
struct seal *seal_new(const uint8_t kek[static SEAL_KEK_LEN]);
void	     seal_free(struct seal *s); /* NULL ok; wipes */

/* out gets n + SEAL_OVERHEAD bytes. 0 or -1. */
int seal_seal(struct seal *s, const uint8_t *aad, size_t aadlen,
    const uint8_t *pt, size_t n, uint8_t *out);

/*
 * Like seal_seal, with a nonce the caller chooses (same blob layout; seal_open
 * opens it). The caller guarantees that no nonce is ever used twice under
 * one key: meant for keys derived per context with seal_subkey, where a
 * counter held in memory for the key's whole life is unique by construction.
 */
int seal_seal_iv(struct seal *s, const uint8_t iv[static SEAL_NONCE_LEN],
    const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t n,
    uint8_t *out);

/*
 * HKDF-SHA256 (RFC 5869) of the KEK: a 32-byte subkey for one context (salt:
 * e.g. random bytes kept beside the data; info: a label naming the use).
 * Different salts or labels give independent keys, so a fresh random salt
 * gives a key no other database or process has ever used. 0 or -1.
 */
int seal_subkey(const uint8_t kek[static SEAL_KEK_LEN], const uint8_t *salt,
    size_t saltlen, const char *info, uint8_t out[static SEAL_KEK_LEN]);

/*
 * pt gets bloblen - SEAL_OVERHEAD bytes. 0, or -1 if the blob is too short or
 * does not authenticate under this KEK and AAD (pt is wiped then).
 */
int seal_open(struct seal *s, const uint8_t *aad, size_t aadlen,
    const uint8_t *blob, size_t bloblen, uint8_t *pt);

/*
 * A small file sealed under the KEK (state that must not be edited, e.g.
 * kmsd's pool high-water marks). seal_file_write seals pt (n bytes, at most
 * SEAL_FILE_MAX) with aad and replaces path atomically: a temporary file
 * (mode 0600) in the same directory, fsync, rename over path, fsync of the
 * directory; a reader sees the old content or the new, and after 0 the new
 * content survives a power cut. 0, or -1 with err naming the path.
 */
#define SEAL_FILE_MAX (1u << 20)
int seal_file_write(struct seal *s, const char *path, const uint8_t *aad,
    size_t aadlen, const uint8_t *pt, size_t n, char *err, size_t errlen);

/*
 * Reads a file seal_file_write wrote: 0 with *pt (malloc'd, *n bytes; wipe
 * and free it), 0 with *pt NULL if path does not exist, -1 with err naming
 * the path if it
 * is not a regular file (symlinks are not followed), is not owned by this
 * process's user, has group/other access, is larger than SEAL_FILE_MAX +
 * SEAL_OVERHEAD, or does not authenticate under this KEK and AAD.
 */
int seal_file_read(struct seal *s, const char *path, const uint8_t *aad,
    size_t aadlen, uint8_t **pt, size_t *n, char *err, size_t errlen);

#endif
