/* Levelled logging to stderr with a UTC timestamp and the program name. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"

static char	      log_prog[64] = "qkd";
static enum log_level log_lvl = LOG_INFO;
static const char    *log_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *prog, enum log_level lvl)
{
	/* A copy: the caller's string may be a config value freed on reload. */
	snprintf(log_prog, sizeof(log_prog), "%s", prog);
	log_lvl = lvl;
}

enum log_level
log_get_level(void)
{
	return log_lvl;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char		line[1024], ts[32];
	struct timespec now;
	struct tm	tm;
	va_list		ap;
	int		n;

	if (lvl > log_lvl)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s: ", ts,
	    now.tv_nsec / 1000000, log_prog, log_names[lvl]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per line so that lines of concurrent threads do not mix. */
	strncat(line, "\n", sizeof(line) - strlen(line) - 1);
	fputs(line, stderr);
}
