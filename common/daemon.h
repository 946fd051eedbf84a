/*
 * The start and the life of a daemon (kmsd, qkd-sim), once its config is
 * read (cfg_main): logs, hardening, signals, the ready file, the wait.
 */
#ifndef COMMON_DAEMON_H
#define COMMON_DAEMON_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/httpd.h"
#include "common/log.h"

/*
 * Logs as name at level (the text of a log_level setting; NULL: info),
 * Jansson's allocator and process hardening (sec_*), SIGPIPE ignored,
 * SIGTERM, SIGINT and SIGHUP blocked into *set: threads started after this
 * inherit the mask, and daemon_wait() takes them.
 */
void daemon_start(const char *name, const char *level, sigset_t *set);

/* Until SIGTERM or SIGINT (logged "NAME: stopping"); each SIGHUP calls
 * hup(ctx), or with hup NULL logs that there is nothing to reload. */
void daemon_wait(const sigset_t *set, void (*hup)(void *ctx), void *ctx);

/*
 * The settings of a daemon's ETSI 014 API listener, named "api": HTTPS on
 * host:port with the server certificate cert and its key, client
 * certificates required to chain to ca, bodies up to max_body, the
 * connection limits lim. The strings are borrowed: they outlive the server.
 */
struct httpd_cfg daemon_api_cfg(const char *host, uint16_t port,
    const char *cert, const char *key, const char *ca, size_t max_body,
    const struct httpd_limits *lim);

/* Writes the "key=value" lines of fmt and "pid=" to path (through
 * path.tmp and a rename, so a reader never sees half of it). */
int daemon_ready(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
