/* ike-ue: the 5G UE's IKEv2 initiator on NWu (see ike/README.md). */
#include "ike/cli.h"

int
main(int argc, char **argv)
{
	return ike_cli_main("ike-ue", IKE_ROLE_UE, argc, argv);
}
