/* The shared main() of ike-ue and ike-n3iwf: config, signals, run. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/cfg.h"
#include "common/log.h"
#include "ike/cli.h"
#include "ike/ikecfg.h"
#include "ike/n3iwf.h"
#include "ike/ue.h"

static volatile sig_atomic_t cli_stop;

static void
cli_on_signal(int sig)
{
	(void)sig;
	cli_stop = 1;
}

/* Exit status: 0 done (or --help, --check-config), 1 failed, 2 bad config. */
int
ike_cli_main(const char *prog, enum ike_role role, int argc, char **argv)
{
	const struct cfg_table *t =
	    role == IKE_ROLE_UE ? &ikecfg_ue_table : &ikecfg_n3iwf_table;
	struct ikecfg	 c;
	struct cfg_cmd	 cmd;
	struct sigaction sa;
	int		 ret;

	log_init(prog, LOG_INFO);
	if ((ret = cfg_main(t, &c, argc, argv, &cmd)) == -1 ||
	    cfg_cmd_done(&cmd)) {
		ikecfg_free(&c);
		return ret == -1 ? 2 : 0;
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
