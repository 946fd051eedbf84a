/* ike-n3iwf: the N3IWF's IKEv2 responder on NWu (see ike/README.md). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/ikecfg.h"
#include "ike/sa.h"

static volatile sig_atomic_t	stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	struct ikecfg		c;
	struct sigaction	sa;
	char			err[IKECFG_ERRLEN] = "";
	int			ret;

	log_init("ike-n3iwf", LOG_INFO);
	if (ikecfg_from_args(&c, IKE_ROLE_N3IWF, argc, argv, err, sizeof(err)) == -1) {
		fprintf(stderr, "ike-n3iwf: %s\n", err);
		ikecfg_free(&c);
		return 2;
	}
	log_init("ike-n3iwf", c.log_level);
	sec_json_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = ike_n3iwf_run(&c, &stop);
	ikecfg_free(&c);
	return ret == 0 ? 0 : 1;
}
