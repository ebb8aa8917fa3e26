/* loop_test.h: driving a libevent loop from a test (header-only): run it until a condition holds
 * or a bound passes, or for a fixed time. A 5 ms tick keeps the loop turning when nothing else
 * is pending, so the clock is checked. Uses redis_test_now_ms from redis_test_server.h. */
#ifndef SIOC_TEST_LOOP_H
#define SIOC_TEST_LOOP_H

#include <event2/event.h>
#include <stdbool.h>

#include "tests/net/redis_test_server.h"

static inline void loop_test_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs `base` until pred(arg) holds or timeout_ms passes; returns pred(arg). pred may be NULL
 * (run for the whole time). */
static inline bool loop_wait_until(struct event_base *base, bool (*pred)(const void *),
                                   const void *arg, int timeout_ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, loop_test_tick_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    long long deadline = redis_test_now_ms() + timeout_ms;
    while ((pred == NULL || !pred(arg)) && redis_test_now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return pred != NULL && pred(arg);
}

static inline void loop_run_for(struct event_base *base, int ms)
{
    loop_wait_until(base, NULL, NULL, ms);
}

#endif
