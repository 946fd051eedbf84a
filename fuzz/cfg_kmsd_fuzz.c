/*
 * libFuzzer target: the input as kmsd's INI config file, through the same
 * loader, setters and cross-checks as `kmsd --config` (kmsd/config.c,
 * common/cfg.c).
 */
#include "fuzz/fuzz.h"
#include "kmsd/config.h"

static int
set(void *ctx, const char *section, const char *name, const char *value,
    char *err, size_t errlen)
{
	return kmsd_config_set(ctx, section, name, value, err, errlen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmsd_config	c;
	char			err[512];

	fuzz_init();
	kmsd_config_defaults(&c);
	if (fuzz_cfg(data, size, set, &c) == 0 &&
	    kmsd_config_finish(&c, err, sizeof(err)) == 0)
		for (size_t i = 0; i < c.nsaes; i++)
			(void)kmsd_config_sae(&c, c.saes[i].id);
	kmsd_config_free(&c);
	return 0;
}
