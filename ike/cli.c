/* The shared main() of ike-ue and ike-n3iwf: flags, signals, run. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "ike/cli.h"
#include "ike/ikecfg.h"
#include "ike/n3iwf.h"
#include "ike/ue.h"

static volatile sig_atomic_t	cli_stop;

static void
cli_on_signal(int sig)
{
	(void)sig;
	cli_stop = 1;
}

int
ike_cli_main(const char *prog, enum ike_role role, int argc, char **argv)
{
	struct ikecfg		c;
	struct sigaction	sa;
	char			err[IKECFG_ERRLEN] = "";
	int			ret;

	log_init(prog, LOG_INFO);
	if (ikecfg_from_args(&c, role, argc, argv, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", prog, err);
		ikecfg_free(&c);
		return 2;
	}
	log_init(prog, c.log_level);
	sec_json_init();
	sec_harden();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = role == IKE_ROLE_UE ? ike_ue_run(&c, &cli_stop) :
	    ike_n3iwf_run(&c, &cli_stop);
	ikecfg_free(&c);
	return ret == 0 ? 0 : 1;
}
