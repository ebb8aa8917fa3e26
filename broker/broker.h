/* broker.h: the process context of sioc-broker (DESIGN.md §2, §3.4) that its modules share: the
 * options, the event loop, the Redis links, the logger and the metrics. main_broker.c owns and
 * fills it; lease.c (active or standby), mirror.c (registry consumer), liveness.c (node liveness,
 * node-lost disconnects), api.c (HTTP API) and calls.c (the API's acks) borrow it for their whole
 * lifetime. */
#ifndef SIOC_BROKER_H
#define SIOC_BROKER_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct log;
struct metrics;
struct redis_link;
struct bk_mirror;
struct bk_liveness;
struct bk_api;
struct bk_calls;
struct bk_lease;
struct redis_tls;

struct broker {
    struct event_base *base;
    struct log *log;
    struct metrics *metrics;
    /* Applies, liveness, queries and publishes: Redis runs them in the order they were issued. */
    struct redis_link *cmd;
    /* XREADGROUP ... BLOCK only (a blocked read would stall everything behind it on cmd). */
    struct redis_link *reader;
    /* Active or standing by (lease.h): the mirror and liveness act only while it is held. */
    struct bk_lease *lease;
    struct bk_mirror *mirror;
    struct bk_liveness *liveness;
    struct bk_api *api;
    /* SUBSCRIBER: the answers to the API's ack calls (calls.h), on bk_calls_channel. */
    struct redis_link *calls_sub;
    struct bk_calls *calls;
    /* The TLS client context of every Redis link (rediss://), or NULL; owned by main. */
    struct redis_tls *redis_tls;
    /* Option values; point into the config, valid for the process lifetime. */
    const char *prefix;      /* key-prefix (P) */
    const char *adapter_key; /* adapter-key (A) */
    bool sharded;            /* adapter sharded: pushes in createShardedAdapter's format */
    int sub_mode;            /* subscription-mode (enum cluster_sub_mode) */
    const char *user_room;   /* user-room, exactly one %s */
    const char *api_key;     /* NULL: no auth (loopback only) */
    unsigned node_timeout_ms;
    unsigned check_interval_ms;
    unsigned lease_ms; /* lease-timeout */
    unsigned
        forget_after_ms; /* a dead node's state (and its /v1/nodes entry) is dropped after this */
    uint32_t upstream_shards;
    uint64_t upstream_maxlen;
};

#endif
