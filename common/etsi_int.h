/*
 * Internal to common/etsi*.c: what the parser and the dumper share.
 */
#ifndef COMMON_ETSI_INT_H
#define COMMON_ETSI_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/etsi.h"

/* One member of the Status object: an ID string or an unsigned count, at
 * offset off in struct etsi_status. Parsed and dumped in this order. */
struct etsi_field {
	const char *name;
	size_t	    off;
	bool	    is_id; /* char[ETSI_ID_MAX + 1], else unsigned */
};

#define ETSI_STATUS_NFIELDS 11
extern const struct etsi_field etsi_status_fields[ETSI_STATUS_NFIELDS];

/* key_ID: 1..ETSI_KEY_ID_MAX visible ASCII. */
bool etsi_key_id_valid(const char *s, size_t len);

#endif
