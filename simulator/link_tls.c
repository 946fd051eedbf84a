/*
 * TLS of the emulated QKD link (link_int.h): the context (TLS 1.3, both
 * sides present their KME certificate and verify the peer's), the check
 * that the peer's certificate names the expected KME, the connecting
 * side's handshake and the listening side's, stepped from the I/O loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "simulator/link_int.h"

void
link_tls_errstr(char *out, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(out, cap, "%s",
		    errno ? strerror(errno) : "unknown error");
	else
		ERR_error_string_n(e, out, cap);
	ERR_clear_error();
}

SSL_CTX *
link_tls_ctx(const struct link_cfg *c, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char	 e[200];

	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "link: cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx,
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_num_tickets(ctx, 0);
	/* One read() per burst instead of two per record (header, body). */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
		link_tls_errstr(e, sizeof(e));
		snprintf(err, errlen, "link: certificate %s: %s", c->cert, e);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		link_tls_errstr(e, sizeof(e));
		snprintf(err, errlen, "link: private key %s: %s", c->key, e);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
		link_tls_errstr(e, sizeof(e));
		snprintf(err, errlen, "link: ca_file %s: %s", c->ca_file, e);
		goto fail;
	}
	SSL_CTX_set_verify(ctx,
	    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The peer certificate's subject CN must be exactly the expected peer ID. */
static bool
peer_cn_ok(struct link *l, SSL *ssl, char *cn, size_t cncap)
{
	X509		*cert = SSL_get0_peer_certificate(ssl);
	X509_NAME	*nm;
	X509_NAME_ENTRY *e;
	unsigned char	*u = NULL;
	int		 idx, n;
	bool		 ok;
	size_t		 i;

	snprintf(cn, cncap, "(none)");
	if (cert == NULL || (nm = X509_get_subject_name(cert)) == NULL)
		return false;
	idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
	if (idx < 0 || (e = X509_NAME_get_entry(nm, idx)) == NULL)
		return false;
	n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
	if (n < 0)
		return false;
	ok = (size_t)n == strlen(l->cfg.peer_id) &&
	    memcmp(u, l->cfg.peer_id, (size_t)n) == 0 &&
	    X509_NAME_get_index_by_NID(nm, NID_commonName, idx) < 0;
	for (i = 0; i < (size_t)n && i + 1 < cncap; i++)
		cn[i] = (u[i] >= 0x20 && u[i] < 0x7f) ? (char)u[i] : '?';
	cn[i] = '\0';
	OPENSSL_free(u);
	return ok;
}

/* Why a handshake failed, for the log. */
static void
handshake_fail(struct link *l, SSL *ssl, const char *who)
{
	char e[200], msg[400];
	long vr;

	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK)
		snprintf(e, sizeof(e), "peer certificate not accepted: %s",
		    X509_verify_cert_error_string(vr));
	else
		link_tls_errstr(e, sizeof(e));
	snprintf(msg, sizeof(msg), "TLS handshake with %s failed: %s", who, e);
	link_note_err(l, true, msg);
}

/* After the handshake: the peer must be the KME we pair with. */
static bool
handshake_peer_ok(struct link *l, SSL *ssl, const char *who)
{
	char msg[400], cn[160];

	if (peer_cn_ok(l, ssl, cn, sizeof(cn)))
		return true;
	snprintf(msg, sizeof(msg),
	    "refusing peer %s: certificate CN \"%s\" "
	    "is not the expected peer KME \"%s\"",
	    who, cn, l->cfg.peer_id);
	link_note_err(l, true, msg);
	return false;
}

/*
 * One non-blocking handshake step: 0 with *want 0 when done (and the peer
 * is the one expected), else with the poll event it waits for; -1 failed.
 */
static int
handshake_step(struct link *l, SSL *ssl, const char *who, short *want)
{
	int r;

	*want = 0;
	ERR_clear_error();
	if ((r = SSL_do_handshake(ssl)) == 1)
		return handshake_peer_ok(l, ssl, who) ? 0 : -1;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ: *want = POLLIN; return 0;
	case SSL_ERROR_WANT_WRITE: *want = POLLOUT; return 0;
	default: handshake_fail(l, ssl, who); return -1;
	}
}

SSL *
link_tls_connect(struct link *l, int fd, const char *who)
{
	SSL	*ssl;
	uint64_t deadline = time_mono_ns() + (uint64_t)HANDSHAKE_MS * 1000000;
	char	 msg[200];
	short	 w = 0;
	bool	 ready;
	int	 r;

	ssl = SSL_new(l->ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	while ((r = handshake_step(l, ssl, who, &w)) == 0 && w != 0) {
		if (time_mono_ns() > deadline) {
			snprintf(msg, sizeof(msg),
			    "TLS handshake with %s timed out", who);
			link_note_err(l, true, msg);
			r = -1;
			break;
		}
		if (link_wait_fd(l, fd, w, 100, &ready) == -1) {
			r = -1;
			break;
		}
	}
	if (r == -1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

static void
addr_str(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char	 h[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
		port = ntohs(a->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
		port = ntohs(a->sin6_port);
	}
	snprintf(out, cap, "%s:%u", h, port);
}

void
link_pend_drop(struct link *l, size_t i)
{
	SSL_free(l->pend[i].ssl);
	close(l->pend[i].fd);
	l->pend[i] = l->pend[--l->npend];
}

/*
 * Accept a connection and start its handshake. Handshakes are stepped from
 * the I/O loop, so a client that connects and stays silent holds neither the
 * link nor the next real peer; when too many are pending the oldest goes.
 */
void
link_pend_accept(struct link *l)
{
	struct sockaddr_storage ss;
	socklen_t		sl = sizeof(ss);
	struct link_pend       *pd;
	SSL		       *ssl;
	int			fd;

	fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd == -1)
		return;
	link_sock_tune(fd);
	if ((ssl = SSL_new(l->ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		close(fd);
		return;
	}
	SSL_set_accept_state(ssl);
	if (l->npend == LINK_PEND_MAX) {
		log_info("link: too many pending handshakes; dropping the one "
			 "from %s",
		    l->pend[0].who);
		link_pend_drop(l, 0);
	}
	pd = &l->pend[l->npend++];
	pd->fd = fd;
	pd->ssl = ssl;
	pd->want = POLLIN;
	pd->deadline = time_mono_ns() + (uint64_t)HANDSHAKE_MS * 1000000;
	addr_str(&ss, pd->who, sizeof(pd->who));
}

void
link_pend_run(struct link *l, const struct pollfd *p)
{
	uint64_t now = time_mono_ns();
	char	 msg[200];
	size_t	 i = l->npend;

	while (i-- > 0) {
		struct link_pend *pd = &l->pend[i];

		if (p != NULL && p[i].revents == 0) {
			if (now > pd->deadline) {
				snprintf(msg, sizeof(msg),
				    "TLS handshake with %s "
				    "timed out",
				    pd->who);
				link_note_err(l, false, msg);
				link_pend_drop(l, i);
			}
			continue;
		}
		if (handshake_step(l, pd->ssl, pd->who, &pd->want) == -1) {
			link_pend_drop(l, i);
			continue;
		}
		if (pd->want != 0)
			continue; /* in progress */
		if (l->ssl != NULL)
			link_conn_close(l,
			    "replaced by a new connection from the peer");
		(void)link_conn_adopt(l, pd->fd, pd->ssl, pd->who);
		l->pend[i] = l->pend[--l->npend];
	}
}

size_t
link_pend_pollfds(struct link *l, struct pollfd *p)
{
	size_t n = 0;

	for (size_t i = 0; i < l->npend; i++)
		p[n++] = (struct pollfd){ .fd = l->pend[i].fd,
			.events = l->pend[i].want };
	return n;
}
