/* The shared main() of ike-ue and ike-n3iwf (ike/cli.c). */
#ifndef IKE_CLI_H
#define IKE_CLI_H

#include "ike/ikecfg.h"

/* Flags and config, signals, then the role's run; exit status 0 ok,
 * 1 failed, 2 usage. */
int ike_cli_main(const char *prog, enum ike_role role, int argc, char **argv);

#endif
