/*
 * libFuzzer target: the input as ike-ue's or ike-n3iwf's INI config file
 * (ike-n3iwf's if the input's length is odd), through the same loader,
 * setter and cross-checks as `--config` (ike/ikecfg.c, common/cfg.c).
 */
#include "fuzz/fuzz.h"
#include "ike/ikecfg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ikecfg	c;
	char		err[IKECFG_ERRLEN];

	fuzz_init();
	ikecfg_defaults(&c, size & 1 ? IKE_ROLE_N3IWF : IKE_ROLE_UE);
	if (fuzz_cfg(data, size, ikecfg_set, &c) == 0)
		(void)ikecfg_finish(&c, err, sizeof(err));
	ikecfg_free(&c);
	return 0;
}
