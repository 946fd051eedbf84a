/*
 * libFuzzer target: the input as qkd-sim's INI config file, through the
 * same loader, setters and cross-checks as `qkd-sim --config`
 * (simulator/config.c, common/cfg.c).
 */
#include "fuzz/fuzz.h"
#include "simulator/config.h"

static int
set(void *ctx, const char *section, const char *name, const char *value,
    char *err, size_t errlen)
{
	return sim_config_set(ctx, section, name, value, err, errlen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim_config	c;
	char			err[512];

	fuzz_init();
	sim_config_defaults(&c);
	if (fuzz_cfg(data, size, set, &c) == 0)
		(void)sim_config_finish(&c, err, sizeof(err));
	sim_config_free(&c);
	return 0;
}
