/* Monotonic time and sleeps. */
#ifndef COMMON_TIMEUTIL_H
#define COMMON_TIMEUTIL_H

#include <stdint.h>

uint64_t time_mono_ns(void);
uint64_t time_real_ms(void);
void	 time_sleep_ns(uint64_t ns);

#endif
