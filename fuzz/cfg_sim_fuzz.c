/*
 * libFuzzer target: the input as qkd-sim's INI config file, through the
 * same table, loader and cross-checks as `qkd-sim --config`
 * (simulator/config.c, common/cfgtab.c).
 */
#include "fuzz/fuzz.h"
#include "simulator/config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim_config c;

	(void)fuzz_cfg(data, size, &sim_cfg_table, &c);
	sim_config_free(&c);
	return 0;
}
