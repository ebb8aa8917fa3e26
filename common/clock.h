/* clock.h: sioc's two clocks, in milliseconds. The monotonic one measures time spans (timeouts,
 * liveness, back-off); the wall clock is for timestamps that leave the process (Redis entries,
 * heartbeats, API answers) and may jump. */
#ifndef SIOC_CLOCK_H
#define SIOC_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC: for spans within this process. */
static inline uint64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): for timestamps other processes read. */
static inline uint64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
