/*
 * Who is at the other end of a TLS connection: the checks every mutual-TLS
 * server here applies to a client certificate, beyond the chain to the CA.
 *   - extendedKeyUsage, when present, must name clientAuth (a server-only
 *     certificate does not log in as an SAE);
 *   - the subject has exactly one CN, and it is a valid SAE/KME ID (so the
 *     identity a handler sees is never ambiguous or unprintable);
 * and the escaping of certificate names for logs.
 */
#ifndef COMMON_TLSID_H
#define COMMON_TLSID_H

#include <stdbool.h>
#include <stddef.h>

#include <gnutls/gnutls.h>

#define TLSID_LOG_MAX 64 /* certificate name bytes shown in a log line */
#define TLSID_WHYLEN  384

/* s[0..len) for a log line: printable ASCII kept, '"', '\\', control and
 * non-ASCII bytes as \xNN, cut after TLSID_LOG_MAX bytes with "...". */
void tlsid_escape(const char *s, size_t len, char *out, size_t outlen);

/* GnuTLS server session: demand a client certificate and refuse, in the
 * handshake, one that fails tlsid_gnutls_peer(s, 1, ...). */
void tlsid_gnutls_require_client(gnutls_session_t s);

/*
 * The client certificate's single CN (a valid ID) in cn, 0; or -1 with the
 * reason in why (names escaped). verify_chain also checks the chain to the
 * trust list (with the clientAuth purpose); without it only the certificate
 * itself is checked (the handshake already verified the chain).
 */
int tlsid_gnutls_peer(gnutls_session_t s, bool verify_chain, char *cn,
    size_t cnlen, char *why, size_t whylen);

/* Why the handshake of session s refused its client certificate (0), then
 * forgotten; -1 if it did not (or the reason was dropped). Call it when the
 * connection closes: sessions are matched by address. */
int tlsid_refusal(gnutls_session_t s, char *why, size_t whylen);

/*
 * Whether the certificate in cert_file has exactly the subject CN cn and
 * chains to ca_file: to a server trusting that CA it is the same identity
 * as any certificate that CA issued with that CN. False also when a file
 * cannot be read, with the reason in why.
 */
bool tlsid_cert_is(const char *cert_file, const char *ca_file, const char *cn,
    char *why, size_t whylen);

#endif
