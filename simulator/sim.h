/* One running simulated KME (key logic + ETSI 014 API), from its config.
 * Used by qkd-sim's main and by kmsd in simulator mode (embedded KME). */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stdint.h>

#include "simulator/config.h"

struct sim;

/* c must outlive the returned object. */
struct sim *sim_start(const struct sim_config *c, char *err, size_t errlen);
void	    sim_stop(struct sim *s); /* NULL ok */
uint16_t    sim_api_port(const struct sim *s);
uint16_t    sim_link_port(const struct sim *s);
uint16_t    sim_metrics_port(const struct sim *s); /* 0: none */

#endif
