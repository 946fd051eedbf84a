/* What kmsd and qkd-sim do alike around their work (daemon.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include "common/buf.h"
#include "common/daemon.h"
#include "common/log.h"

struct httpd_cfg
daemon_api_cfg(const char *host, uint16_t port, const char *cert,
    const char *key, const char *ca, size_t max_body,
    const struct httpd_limits *lim)
{
	struct httpd_cfg hc;

	memset(&hc, 0, sizeof(hc));
	hc.host = host;
	hc.port = port;
	hc.cert_file = cert;
	hc.key_file = key;
	hc.ca_file = ca;
	hc.max_body = max_body;
	hc.lim = *lim;
	hc.name = "api";
	return hc;
}

void
daemon_start(const char *name, const char *level, sigset_t *set)
{
	enum log_level lvl = LOG_INFO;

	if (level != NULL)
		(void)log_level_parse(level, &lvl); /* the table checked it */
	log_init(name, lvl);
	sec_json_init();
	sec_harden();
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void
daemon_wait(const sigset_t *set, void (*hup)(void *ctx), void *ctx)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if (hup)
			hup(ctx);
		else
			log_info("SIGHUP: nothing to reload");
	}
	log_info("%s: stopping", strsignal(sig));
}

int
daemon_ready(const char *path, const char *fmt, ...)
{
	char	tmp[4096];
	FILE   *f;
	va_list ap;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp) ||
	    (f = fopen(tmp, "w")) == NULL)
		return -1;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fprintf(f, "pid=%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}
