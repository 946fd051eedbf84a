/* The UE (ike/ue.c): the IKEv2 initiator of ike-ue. */
#ifndef IKE_UE_H
#define IKE_UE_H

#include <signal.h>

#include "ike/ikecfg.h"

/* cfg->count connections in a row; 0 when all of them completed. */
int ike_ue_run(const struct ikecfg *c, volatile sig_atomic_t *stop);

#endif
