/*
 * clock: the two clocks of the system. Monotonic milliseconds measure durations and deadlines
 * inside one process (leases, backoff, timeouts); wall-clock Unix milliseconds are what gets
 * stored and shown. Never mix them: a stored deadline is wall time, a timer is monotonic.
 */
#ifndef REGMIX_CLOCK_H
#define REGMIX_CLOCK_H

#include <stdint.h>

/* Milliseconds from an arbitrary start, never going backwards. */
int64_t clock_mono_ms(void);

/* Seconds from an arbitrary start, as a double with sub-microsecond resolution. */
double clock_mono_s(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_unix_ms(void);

#endif
