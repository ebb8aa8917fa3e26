/* redis_link_obs.h: an observer of one redis_link for net tests (header-only): it counts state
 * changes, every event by kind and queue-room calls, and keeps the last message (pattern and
 * channel as C strings, the payload as bytes) with the time it came. redis_link_obs_config gives
 * a link config wired to it; the test adds its own URL, backoff and limits. */
#ifndef SIOC_REDIS_LINK_OBS_H
#define SIOC_REDIS_LINK_OBS_H

#include <stdbool.h>
#include <string.h>

#include "common/net/redis_link.h"
#include "tests/net/redis_test_server.h"

struct redis_link_obs {
    struct redis_link *link; /* set by the test, for its own use */
    bool connected;
    int ups, downs;
    int events[REDIS_LINK_EV_SHARD_LOST + 1]; /* by enum redis_link_event */
    int rooms;
    int messages;
    char pattern[64], channel[64]; /* NUL-terminated, cut to 63 bytes */
    uint8_t payload[64];
    size_t payload_len; /* cut to 64 bytes */
    long long last_message_ms;
};

static inline void redis_link_obs_state_cb(void *ctx, bool up)
{
    struct redis_link_obs *o = ctx;
    o->connected = up;
    if (up)
        o->ups++;
    else
        o->downs++;
}

static inline void redis_link_obs_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    struct redis_link_obs *o = ctx;
    (void)detail;
    o->events[ev]++;
}

static inline void redis_link_obs_room_cb(void *ctx)
{
    ((struct redis_link_obs *)ctx)->rooms++;
}

static inline void redis_link_obs_copy(char *dst, size_t cap, struct slice s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static inline void redis_link_obs_message_cb(void *ctx, struct slice pattern, struct slice channel,
                                             struct slice payload)
{
    struct redis_link_obs *o = ctx;
    o->messages++;
    o->last_message_ms = redis_test_now_ms();
    redis_link_obs_copy(o->pattern, sizeof(o->pattern), pattern);
    redis_link_obs_copy(o->channel, sizeof(o->channel), channel);
    o->payload_len = payload.len < sizeof(o->payload) ? payload.len : sizeof(o->payload);
    memcpy(o->payload, payload.p, o->payload_len);
}

/* True when the last payload is exactly the string s. */
static inline bool redis_link_obs_payload_is(const struct redis_link_obs *o, const char *s)
{
    return o->payload_len == strlen(s) && memcmp(o->payload, s, o->payload_len) == 0;
}

/* Predicates for loop_wait_until (arg: a struct redis_link_obs). */
static inline bool redis_link_obs_connected(const void *arg)
{
    return ((const struct redis_link_obs *)arg)->connected;
}

static inline bool redis_link_obs_disconnected(const void *arg)
{
    return !((const struct redis_link_obs *)arg)->connected;
}

/* Zeroes *o and returns a config for `url` and `mode` whose callbacks all report to it. */
static inline struct redis_link_config
redis_link_obs_config(struct redis_link_obs *o, const char *url, enum redis_link_mode mode)
{
    memset(o, 0, sizeof(*o));
    return (struct redis_link_config){
        .url = url,
        .mode = mode,
        .ctx = o,
        .on_state_cb = redis_link_obs_state_cb,
        .on_message_cb = redis_link_obs_message_cb,
        .on_event_cb = redis_link_obs_event_cb,
        .on_room_cb = redis_link_obs_room_cb,
    };
}

#endif
