/* liveness.c: the periodic node check and the node-lost disconnect queue (DESIGN.md §3.2, §3.4).
 * The check itself is one script (scripts.c); this file schedules it, logs what it reaped, asks
 * nodes for snapshots, and turns P:bk:lost items into upstream `disconnect` entries with
 * envelope_up_to_fields, trimming the queue only after the XADDs were answered. Only the active
 * broker (lease.h) checks and drains: the check and the trim are fenced scripts, and the XADDs
 * are sent only while the lease is held (a paused old active that resumes sends none). */
#include "broker/liveness.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/lease.h"
#include "broker/scripts.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/mp.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"

#define LIVENESS_DRAIN_BATCH 128
#define LIVENESS_MISMATCH_CHECKS "5"    /* consecutive checks before asking for a snapshot */
#define LIVENESS_SNAPSHOT_EVERY "60000" /* at most one snapshot request per node per minute */

struct bk_liveness {
    struct broker *b;
    struct event *tick;
    char lost_key[512];
    bool checking;
    /* DESIGN.md §3.4: the broker saw Redis away (its link dropped, a check failed) since the
     * last check that granted a grace: the next check gives every node a fresh node-timeout */
    bool outage, check_marks_outage;
    bool draining, drain_again, drain_failed;
    unsigned drain_inflight;
    size_t drain_count;
    uint64_t *nodes_lost, *sockets_lost, *disconnects, *disconnect_errors, *snapshot_requests;
};

/* ---- the P:bk:lost queue -> P:up:<nsp>:<shard> ---- */

static void drain_finished(struct bk_liveness *l)
{
    l->draining = false;
    bool again = l->drain_again || (!l->drain_failed && l->drain_count == LIVENESS_DRAIN_BATCH);
    l->drain_again = false;
    /* after a failure the next check (it reports the queue length) tries again */
    if (again && !l->drain_failed)
        bk_liveness_drain(l);
}

static void drain_reply_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_liveness *l = ctx;
    l->drain_inflight--;
    if (result != REDIS_LINK_REPLY ||
        (reply->type == REDIS_REPLY_ERROR && bk_lease_fenced(l->b->lease, reply->str))) {
        l->drain_failed = true; /* fenced: the trim; the items stay for the active broker */
    } else if (reply->type == REDIS_REPLY_ERROR) {
        (*l->disconnect_errors)++;
        log_write(l->b->log, LOG_LEVEL_ERROR, "upstream.xadd", "node-lost disconnect: %s",
                  reply->str ? reply->str : "?");
    } else if (reply->type == REDIS_REPLY_STRING) {
        (*l->disconnects)++; /* the XADD id; the LTRIM answers with a status */
    }
    if (l->drain_inflight == 0)
        drain_finished(l);
}

/* Decodes one queue item, cmsgpack.pack({nsp, sid, uid, node}), into *up. */
static bool decode_lost(const redisReply *item, struct envelope_up *up)
{
    if (item->type != REDIS_REPLY_STRING)
        return false;
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, (const uint8_t *)item->str, item->len);
    if (mp_read(&r, &it) != SIOC_OK || it.kind != MP_ARRAY || it.len != 4)
        return false;
    struct slice parts[4];
    for (int i = 0; i < 4; i++) {
        if (mp_read(&r, &it) != SIOC_OK || it.kind != MP_STR)
            return false;
        parts[i] = (struct slice){it.data, it.len};
    }
    static const char reason[] = "node lost";
    *up = (struct envelope_up){
        .type = ENVELOPE_UP_DISCONNECT,
        .nsp = parts[0],
        .sid = parts[1],
        .uid = parts[2],
        .node = parts[3],
        .ts = clock_wall_ms(),
        .reason = {(const uint8_t *)reason, sizeof reason - 1},
    };
    return r.pos == item->len;
}

static bool send_disconnect(struct bk_liveness *l, const struct envelope_up *up)
{
    struct broker *b = l->b;
    struct envelope_fields f;
    if (envelope_up_to_fields(up, &f) != SIOC_OK)
        return false;
    struct buf key;
    buf_init(&key, 4096);
    envelope_key_up_stream(&key, b->prefix, up->nsp,
                           envelope_shard(up->sid.p, up->sid.len, b->upstream_shards),
                           b->upstream_shards);
    char maxlen[24];
    snprintf(maxlen, sizeof maxlen, "%llu", (unsigned long long)b->upstream_maxlen);
    const char *argv[6 + 2 * ENVELOPE_MAX_FIELDS];
    size_t lens[6 + 2 * ENVELOPE_MAX_FIELDS];
    argv[0] = "XADD";
    argv[1] = (const char *)key.data;
    argv[2] = "MAXLEN";
    argv[3] = "~";
    argv[4] = maxlen;
    argv[5] = "*";
    lens[0] = 4;
    lens[1] = key.len;
    lens[2] = 6;
    lens[3] = 1;
    lens[4] = strlen(maxlen);
    lens[5] = 1;
    for (size_t i = 0; i < f.n; i++) {
        argv[6 + i] = f.kv[i].p ? (const char *)f.kv[i].p : "";
        lens[6 + i] = f.kv[i].len;
    }
    int rc = key.err != SIOC_OK ? key.err
                                : redis_link_command_argv(b->cmd, (int)(6 + f.n), argv, lens, 0,
                                                          drain_reply_cb, l);
    buf_deinit(&key);
    if (rc != SIOC_OK) {
        l->drain_failed = true;
        return true; /* not the item's fault: keep it queued */
    }
    l->drain_inflight++;
    return true;
}

static void lrange_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_liveness *l = ctx;
    l->drain_inflight--;
    if (result != REDIS_LINK_REPLY || reply->type != REDIS_REPLY_ARRAY) {
        l->drain_failed = true;
        if (l->drain_inflight == 0)
            drain_finished(l);
        return;
    }
    if (!bk_lease_active(l->b->lease)) {
        l->drain_failed = true; /* the lease was lost while LRANGE ran: the items stay */
        if (l->drain_inflight == 0)
            drain_finished(l);
        return;
    }
    l->drain_count = reply->elements;
    for (size_t i = 0; i < reply->elements && !l->drain_failed; i++) {
        struct envelope_up up;
        if (!decode_lost(reply->element[i], &up) || !send_disconnect(l, &up)) {
            (*l->disconnect_errors)++;
            log_write(l->b->log, LOG_LEVEL_ERROR, "upstream.lost", "malformed %s item skipped",
                      l->lost_key);
        }
    }
    if (!l->drain_failed && l->drain_count > 0) {
        char start[24];
        snprintf(start, sizeof start, "%zu", l->drain_count);
        /* KEYS[1] = P: a key of the mirror's slot, so a cluster runs it on that master */
        const char *argv[] = {"EVAL",       bk_script_lost_trim(),       "1",  l->b->prefix,
                              l->b->prefix, bk_lease_token(l->b->lease), start};
        if (redis_link_command_argv(l->b->cmd, 7, argv, NULL, 0, drain_reply_cb, l) == SIOC_OK)
            l->drain_inflight++;
        else
            l->drain_failed = true;
    }
    if (l->drain_inflight == 0)
        drain_finished(l);
}

void bk_liveness_drain(struct bk_liveness *l)
{
    if (l->draining) {
        l->drain_again = true;
        return;
    }
    if (!bk_lease_active(l->b->lease))
        return;
    char count[24];
    snprintf(count, sizeof count, "%d", LIVENESS_DRAIN_BATCH - 1);
    const char *argv[] = {"LRANGE", l->lost_key, "0", count};
    if (redis_link_command_argv(l->b->cmd, 4, argv, NULL, 0, lrange_cb, l) != SIOC_OK)
        return;
    l->draining = true;
    l->drain_failed = false;
    l->drain_count = 0;
    l->drain_inflight = 1;
}

/* ---- the periodic check ---- */

static void request_snapshot(struct bk_liveness *l, const redisReply *node)
{
    struct broker *b = l->b;
    struct buf channel, msg;
    buf_init(&channel, 4096);
    buf_init(&msg, 64);
    envelope_key_node(&channel, b->prefix, (struct slice){(const uint8_t *)node->str, node->len});
    struct envelope_reply request = {.t = ENVELOPE_SNAPSHOT_REQUEST};
    envelope_reply_encode(&request, &msg);
    if (channel.err == SIOC_OK && msg.err == SIOC_OK) {
        const char *argv[] = {"PUBLISH", (const char *)channel.data, (const char *)msg.data};
        size_t lens[] = {7, channel.len, msg.len};
        redis_link_command_argv(b->cmd, 3, argv, lens, 0, NULL, NULL);
        (*l->snapshot_requests)++;
        log_write(b->log, LOG_LEVEL_WARN, "node.mismatch",
                  "node=%s: its socket count disagrees with the mirror; snapshot requested",
                  node->str);
    }
    buf_deinit(&channel);
    buf_deinit(&msg);
}

static void check_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_liveness *l = ctx;
    l->checking = false;
    if (result != REDIS_LINK_REPLY) {
        l->outage = true;
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && bk_lease_fenced(l->b->lease, reply->str))
        return;
    if (reply->type == REDIS_REPLY_ERROR || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 3) {
        l->outage = true; /* Redis answered, but not as a working Redis does (LOADING, BUSY...) */
        log_write(l->b->log, LOG_LEVEL_ERROR, "liveness.check", "%s",
                  reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str : "unexpected reply");
        return;
    }
    if (l->check_marks_outage)
        l->outage = false; /* the grace is in P:bk:liveness now */
    const redisReply *reaped = reply->element[1], *want = reply->element[2];
    for (size_t i = 0; reaped->type == REDIS_REPLY_ARRAY && i + 2 < reaped->elements; i += 3) {
        const redisReply *node = reaped->element[i], *count = reaped->element[i + 1],
                         *why = reaped->element[i + 2];
        if (node->type != REDIS_REPLY_STRING || count->type != REDIS_REPLY_INTEGER ||
            why->type != REDIS_REPLY_STRING)
            continue;
        (*l->nodes_lost)++;
        *l->sockets_lost += (uint64_t)count->integer;
        log_write(l->b->log, LOG_LEVEL_WARN, "node.lost", "node=%s sockets=%lld why=%s", node->str,
                  count->integer, why->str);
    }
    for (size_t i = 0; want->type == REDIS_REPLY_ARRAY && i < want->elements; i++)
        if (want->element[i]->type == REDIS_REPLY_STRING)
            request_snapshot(l, want->element[i]);
    if (reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer > 0)
        bk_liveness_drain(l);
}

/* Checks come every check-interval, so a longer gap between two of them means Redis stalled
 * (or the broker did). A heartbeat lives node-timeout and is renewed every node-timeout / 3 at
 * the latest (gateway/registry.c), so a stall must count from node-timeout / 3 on: a shorter one
 * cannot have let a live node's heartbeat expire. */
static uint64_t liveness_outage_gap_ms(const struct broker *b)
{
    uint64_t gap = 2ull * b->check_interval_ms + 1000;
    return gap < b->node_timeout_ms / 3 ? gap : b->node_timeout_ms / 3;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bk_liveness *l = arg;
    struct broker *b = l->b;
    /* never queue checks while Redis is away: one runs right after the reconnect instead */
    if (l->checking || !redis_link_connected(b->cmd) || !bk_lease_active(b->lease))
        return;
    char now[24], forget[24], timeout[24], gap[24];
    snprintf(now, sizeof now, "%llu", (unsigned long long)clock_wall_ms());
    snprintf(forget, sizeof forget, "%u", b->forget_after_ms);
    snprintf(timeout, sizeof timeout, "%u", b->node_timeout_ms);
    snprintf(gap, sizeof gap, "%llu", (unsigned long long)liveness_outage_gap_ms(b));
    /* KEYS[1] = P: a key of the mirror's slot, so a cluster runs it on that master */
    const char *argv[] = {"EVAL",
                          bk_script_liveness(),
                          "1",
                          b->prefix,
                          b->prefix,
                          now,
                          forget,
                          LIVENESS_MISMATCH_CHECKS,
                          LIVENESS_SNAPSHOT_EVERY,
                          timeout,
                          gap,
                          l->outage ? "1" : "0",
                          bk_lease_token(b->lease)};
    if (redis_link_command_argv(b->cmd, 13, argv, NULL, 0, check_cb, l) == SIOC_OK) {
        l->checking = true;
        l->check_marks_outage = l->outage;
    }
}

void bk_liveness_redis_state(struct bk_liveness *l, bool connected)
{
    /* a drop: Redis was away for the broker, and the first check after the reconnection (none
     * runs before it) starts the grace; the first connection of the broker's life is no outage
     * (a restarted broker's downtime shows as a gap between checks) */
    if (l != NULL && !connected)
        l->outage = true;
}

void bk_liveness_set_active(struct bk_liveness *l, bool active)
{
    /* a takeover is an outage of the liveness check: the nodes get a fresh node-timeout, from
     * the new active's first check, before a missing heartbeat counts (docs/contracts.md). The
     * first broker of an idle cluster gets none (as before failover existed: its own downtime
     * shows as a gap between checks). */
    if (l == NULL)
        return;
    if (active) {
        if (bk_lease_took_over(l->b->lease))
            l->outage = true;
        event_active(l->tick, EV_TIMEOUT, 0); /* the first check (the grace) at once */
    }
}

struct bk_liveness *bk_liveness_new(struct broker *b)
{
    struct bk_liveness *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->b = b;
    struct buf key;
    buf_init(&key, sizeof l->lost_key - 1);
    buf_append_cstr(&key, b->prefix);
    buf_append_cstr(&key, ":bk:lost");
    if (key.err == SIOC_OK)
        memcpy(l->lost_key, key.data, key.len);
    buf_deinit(&key);
    l->tick = event_new(b->base, -1, EV_PERSIST, tick_cb, l);
    l->nodes_lost =
        metrics_counter(b->metrics, "sioc_broker_nodes_lost_total",
                        "nodes whose sockets were reaped (heartbeat expired or new epoch)", NULL);
    l->sockets_lost =
        metrics_counter(b->metrics, "sioc_broker_sockets_lost_total",
                        "sockets removed from the mirror by the liveness check", NULL);
    l->disconnects = metrics_counter(b->metrics, "sioc_broker_node_lost_disconnects_total",
                                     "node-lost disconnect entries appended upstream", NULL);
    l->disconnect_errors =
        metrics_counter(b->metrics, "sioc_broker_node_lost_errors_total",
                        "node-lost disconnects that could not be appended", NULL);
    l->snapshot_requests = metrics_counter(b->metrics, "sioc_broker_snapshot_requests_total",
                                           "snapshots requested from nodes (anti-entropy)", NULL);
    if (l->lost_key[0] == '\0' || l->tick == NULL || l->nodes_lost == NULL ||
        l->sockets_lost == NULL || l->disconnects == NULL || l->disconnect_errors == NULL ||
        l->snapshot_requests == NULL) {
        bk_liveness_free(l);
        return NULL;
    }
    unsigned ms = b->check_interval_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(l->tick, &tv);
    return l;
}

void bk_liveness_free(struct bk_liveness *l)
{
    if (l == NULL)
        return;
    redis_link_cancel(l->b->cmd, l);
    if (l->tick != NULL)
        event_free(l->tick);
    free(l);
}
