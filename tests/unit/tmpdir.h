/*
 * A private temporary directory per unit test: /tmp/NAME.XXXXXX, created
 * 0700, removed with everything in it. Header only, for the test files.
 */
#ifndef TESTS_TMPDIR_H
#define TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

/* dir (len bytes) gets the path; 0 or -1. */
static inline int
tmpdir_make(char *dir, size_t len, const char *name)
{
	if ((size_t)snprintf(dir, len, "/tmp/%s.XXXXXX", name) >= len)
		return -1;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static inline int
tmpdir_remove(const char *dir)
{
	char cmd[256];

	if ((size_t)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir) >= sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

#endif
