/*
 * Small helpers shared by the unit tests: a scratch file or directory and
 * the key ID list of a key container. Include after <cmocka.h>. Static inline, so
 * a test that uses only some of them builds without warnings.
 */
#ifndef TESTS_UNIT_TESTUTIL_H
#define TESTS_UNIT_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/etsi.h"

/*
 * The file /tmp/NAME.PID.ini with text (a static path, valid until the
 * next call; the caller unlinks it).
 */
static inline char *
testutil_write_tmp(const char *name, const char *text)
{
	static char path[128];
	FILE	   *f;

	snprintf(path, sizeof(path), "/tmp/%s.%d.ini", name, (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* A fresh directory /tmp/NAME.XXXXXX in dir[cap]; 0, or -1. */
static inline int
testutil_tmpdir(char *dir, size_t cap, const char *name)
{
	if ((size_t)snprintf(dir, cap, "/tmp/%s.XXXXXX", name) >= cap)
		return -1;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

/* Removes dir and everything below it; 0, or -1. */
static inline int
testutil_rmrf(const char *dir)
{
	char cmd[512];

	if ((size_t)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) >=
	    sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

/* The key IDs of k, in order, for a dec_keys call. */
static inline void
testutil_ids_of(const struct etsi_keys *k, struct etsi_key_ids *ids)
{
	assert_int_equal(etsi_key_ids_alloc(ids, k->n), 0);
	for (size_t i = 0; i < k->n; i++)
		snprintf(ids->ids[i], sizeof(ids->ids[i]), "%s", k->v[i].id);
}

#endif
