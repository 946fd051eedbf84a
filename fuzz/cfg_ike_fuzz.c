/*
 * libFuzzer target: the input as ike-ue's or ike-n3iwf's INI config file
 * (ike-n3iwf's if the input's length is odd), through the same table,
 * loader and cross-checks as `--config` (ike/ikecfg.c, common/cfgtab.c).
 */
#include "fuzz/fuzz.h"
#include "ike/ikecfg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ikecfg c;

	(void)fuzz_cfg(data, size,
	    size & 1 ? &ikecfg_n3iwf_table : &ikecfg_ue_table, &c);
	ikecfg_free(&c);
	return 0;
}
