/*
 * libFuzzer target: the input as kmsd's INI config file, through the same
 * table, loader and cross-checks as `kmsd --config` (kmsd/config.c,
 * common/cfgtab.c).
 */
#include "fuzz/fuzz.h"
#include "kmsd/config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmsd_config c;

	if (fuzz_cfg(data, size, &kmsd_cfg_table, &c) == 0)
		for (size_t i = 0; i < c.nsaes; i++)
			(void)kmsd_config_sae(&c, c.saes[i].id);
	kmsd_config_free(&c);
	return 0;
}
