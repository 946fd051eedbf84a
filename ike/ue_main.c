/* ike-ue: the 5G UE's IKEv2 initiator on NWu (see ike/README.md). */
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

	log_init("ike-ue", LOG_INFO);
	if (ikecfg_from_args(&c, IKE_ROLE_UE, argc, argv, err, sizeof(err)) == -1) {
		fprintf(stderr, "ike-ue: %s\n", err);
		ikecfg_free(&c);
		return 2;
	}
	log_init("ike-ue", c.log_level);
	sec_json_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = ike_ue_run(&c, &stop);
	ikecfg_free(&c);
	return ret == 0 ? 0 : 1;
}
