/*
 * ike-ue's load mode (cfg load > 0, ike/ue_load.c): N simulated UEs, each
 * with its own SUPI and keys (ike/subs.h), its own UDP socket and IKE SA,
 * arriving at cfg load_rate, at most load_conc set-ups in flight, at most
 * load_hold held; one summary line on stdout at the end.
 */
#ifndef IKE_UE_LOAD_H
#define IKE_UE_LOAD_H

#include <signal.h>

#include "ike/ikecfg.h"

/* 0 when every UE was established, -1 otherwise (or on a setup error). */
int ike_ue_load_run(const struct ikecfg *c, volatile sig_atomic_t *stop);

#endif
