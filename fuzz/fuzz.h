/*
 * Helpers shared by the libFuzzer targets in fuzz/ (see fuzz/README.md):
 * process setup, INI text through the daemons' config loader, and a fake
 * KME that gives kmsclient canned answers in place of the network.
 */
#ifndef FUZZ_FUZZ_H
#define FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"

/* Records in an input are separated by this (never valid inside JSON or INI
 * values that matter, easy to write in seed files). */
#define FUZZ_SEP "\n#"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Once per process: quiet logs, Jansson's allocator as in the daemons. */
void fuzz_init(void);

/* Next record of [*p, *p + *n): returns its start and length, advances past
 * it and its separator; NULL when none is left. */
const uint8_t *fuzz_next(const uint8_t **p, size_t *n, size_t *len);

/* The input as t's INI file, as `--config` reads it: defaults, the file
 * (cfg_tab_load_file), then finish(). 0 when all of it passed; cfg is the
 * caller's to free (t->free) in every case. */
int fuzz_cfg(const uint8_t *data, size_t size, const struct cfg_table *t,
    void *cfg);

/*
 * The fake KME answers kmsclient's calls from these records, in order: per
 * record one byte H, then the body. H & 15 picks the outcome (0-5: 200,
 * 6-7: 400, 8: 401, 9: 404, 10: 405, 11: 500, 12: 503, 13: connection
 * error, 14: timeout, 15: a body over kmsclient's cap); H >> 4 the chunking
 * of the body (3, as for '0'..'?', means one piece). With no record left,
 * every call fails to connect.
 */
void fuzz_answers(const uint8_t *p, size_t n);

#endif
