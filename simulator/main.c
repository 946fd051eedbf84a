/* qkd-sim: one ETSI GS QKD 014 KME of a simulated QKD pair. */
#include <stdio.h>

#include "common/cfg.h"
#include "common/daemon.h"
#include "common/log.h"
#include "simulator/config.h"
#include "simulator/sim.h"

int
main(int argc, char **argv)
{
	struct sim_config c;
	struct cfg_cmd	  cmd;
	struct sim	 *sim = NULL;
	sigset_t	  set;
	char		  err[512];
	int		  rc, ret = 1;

	log_init("qkd-sim", LOG_INFO);
	if ((rc = cfg_main(&sim_cfg_table, &c, argc, argv, &cmd)) == -1 ||
	    cfg_cmd_done(&cmd)) {
		ret = rc == -1 ? 1 : 0;
		goto done;
	}
	daemon_start(c.id, c.log_level, &set);
	if ((sim = sim_start(&c, err, sizeof(err))) == NULL) {
		log_err("cannot start: %s", err);
		goto done;
	}
	if (c.ready_file &&
	    daemon_ready(c.ready_file,
		"api_port=%u\n"
		"link_port=%u\nmetrics_port=%u\n",
		sim_api_port(sim), sim_link_port(sim),
		sim_metrics_port(sim)) == -1) {
		log_err("cannot write ready file \"%s\"", c.ready_file);
		goto done;
	}
	daemon_wait(&set, NULL, NULL);
	ret = 0;
done:
	sim_stop(sim);
	sim_config_free(&c);
	return ret;
}
