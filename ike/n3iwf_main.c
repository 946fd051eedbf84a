/* ike-n3iwf: the N3IWF's IKEv2 responder on NWu (see ike/README.md). */
#include "ike/cli.h"

int
main(int argc, char **argv)
{
	return ike_cli_main("ike-n3iwf", IKE_ROLE_N3IWF, argc, argv);
}
