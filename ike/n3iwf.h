/* The N3IWF (ike/n3iwf.c): the IKEv2 responder of ike-n3iwf. */
#ifndef IKE_N3IWF_H
#define IKE_N3IWF_H

#include <signal.h>

#include "ike/ikecfg.h"

/* Serves until *stop (or cfg->max_conns); 0, or -1 when setup failed. */
int ike_n3iwf_run(const struct ikecfg *c, volatile sig_atomic_t *stop);

#endif
