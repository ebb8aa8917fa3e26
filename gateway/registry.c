/* registry.c: heartbeats and P:registry entries of one gateway (see registry.h; DESIGN.md
 * §3.4, docs/contracts.md). Entries go through one COMMAND link with REDIS_LINK_RETRY, so
 * they reach Redis in order, at least once, also across a Redis restart; the broker applies
 * them idempotently by (node, epoch, seq). */
#include "gateway/registry.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/mp.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"

#define REGISTRY_MAXLEN "1000000" /* the stream is trimmed approximately to this many entries */

struct registry {
    struct sio_server *srv;
    struct log *log;
    struct redis_link *link;
    struct event *heartbeat;
    char *prefix, *node, *address;
    char epoch[ENVELOPE_EPOCH_LEN + 1];
    unsigned node_timeout_ms, heartbeat_ms;
    uint64_t seq;
    uint64_t started_ms;
    size_t pending;
    bool connected_once;
    struct buf key_registry, key_hb, key_nodes, key_retired;
    uint64_t rng;             /* the next epoch's random bits */
    unsigned checks_inflight; /* epoch checks (SISMEMBER) awaiting their reply */
    unsigned checks_stale;    /* ... of which asked about an epoch already left */
    void (*on_epoch_reaped)(void *ctx, const char *old_epoch, const char *new_epoch);
    void *ctx;
    uint64_t *written, *errors, *refused;
};

static void reply_cb(void *ctx, const struct redisReply *reply, enum redis_link_result result)
{
    struct registry *r = ctx;
    r->pending--;
    if (result == REDIS_LINK_REPLY && reply != NULL && reply->type != REDIS_REPLY_ERROR) {
        (*r->written)++;
        return;
    }
    (*r->errors)++;
    log_write(r->log, LOG_LEVEL_WARN, "registry.write_failed", "%s",
              reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : "connection lost");
}

static void send_command(struct registry *r, int argc, const char *const *argv,
                         const size_t *argvlen)
{
    int rc = redis_link_command_argv(r->link, argc, argv, argvlen, REDIS_LINK_RETRY, reply_cb, r);
    if (rc == SIOC_OK) {
        r->pending++;
        return;
    }
    /* the queue of a long outage is full: this change is lost to the mirror until the broker's
     * anti-entropy repairs it; said loudly, never silently */
    (*r->refused)++;
    log_write(r->log, LOG_LEVEL_WARN, "registry.dropped", "%s", sioc_strerror(rc));
}

struct room_list {
    struct buf *out;
    uint32_t count;
};

static void count_room(void *ctx, const uint8_t *room, size_t len, size_t size)
{
    (void)room;
    (void)len;
    (void)size;
    ((struct room_list *)ctx)->count++;
}

static void write_room(void *ctx, const uint8_t *room, size_t len, size_t size)
{
    (void)size;
    struct room_list *l = ctx;
    if (l->count++ < ENVELOPE_MAX_ROOMS)
        mp_write_str(l->out, room, len);
}

/* XADD P:registry MAXLEN ~ N * <fields of the entry>. `rooms` is a MessagePack array. */
static void append_raw(struct registry *r, enum envelope_reg_op op, const char *nsp,
                       const char *sid, const char *uid, struct slice rooms)
{
    struct envelope_reg e = {
        .node = {(const uint8_t *)r->node, strlen(r->node)},
        .epoch = {(const uint8_t *)r->epoch, ENVELOPE_EPOCH_LEN},
        .seq = ++r->seq,
        .op = op,
        .nsp = {(const uint8_t *)nsp, strlen(nsp)},
        .sid = {(const uint8_t *)sid, strlen(sid)},
        .uid = {(const uint8_t *)uid, strlen(uid)},
        .rooms = {.raw = rooms},
    };
    struct envelope_fields f;
    if (envelope_reg_to_fields(&e, &f) != SIOC_OK) {
        (*r->refused)++;
        log_write(r->log, LOG_LEVEL_WARN, "registry.invalid_entry", "sid=%s", sid);
        return;
    }
    const char *argv[5 + 2 * ENVELOPE_MAX_FIELDS] = {"XADD", (const char *)r->key_registry.data,
                                                     "MAXLEN", "~", REGISTRY_MAXLEN};
    size_t argvlen[5 + 2 * ENVELOPE_MAX_FIELDS] = {4, r->key_registry.len, 6, 1,
                                                   strlen(REGISTRY_MAXLEN)};
    int argc = 5;
    argv[argc] = "*";
    argvlen[argc++] = 1;
    for (size_t i = 0; i < f.n; i++) {
        argv[argc] = (const char *)f.kv[i].p;
        argvlen[argc++] = f.kv[i].len;
    }
    send_command(r, argc, argv, argvlen);
}

static void append_entry(struct registry *r, enum envelope_reg_op op, struct sio_socket *sock,
                         struct slice rooms)
{
    append_raw(r, op, sio_socket_nsp(sock), sio_socket_id(sock), sio_socket_uid(sock), rooms);
}

/* An entry carrying the socket's full room set (split when above the per-entry limit). */
static void append_with_rooms(struct registry *r, enum envelope_reg_op op, struct sio_socket *sock)
{
    struct room_list l = {NULL, 0};
    sio_socket_each_room(sock, count_room, &l);
    struct buf rooms;
    buf_init(&rooms, 0);
    mp_write_array(&rooms, l.count < ENVELOPE_MAX_ROOMS ? l.count : ENVELOPE_MAX_ROOMS);
    l.out = &rooms;
    l.count = 0;
    sio_socket_each_room(sock, write_room, &l);
    if (rooms.err == SIOC_OK)
        append_entry(r, op, sock, (struct slice){rooms.data, rooms.len});
    buf_deinit(&rooms);
}

void registry_on_accepted(struct registry *r, struct sio_socket *sock)
{
    append_with_rooms(r, ENVELOPE_REG_CONNECT, sock);
}

void registry_on_room(struct registry *r, struct sio_socket *sock, const uint8_t *room, size_t len,
                      bool joined)
{
    struct buf rooms;
    buf_init(&rooms, 0);
    mp_write_array(&rooms, 1);
    mp_write_str(&rooms, room, len);
    if (rooms.err == SIOC_OK)
        append_entry(r, joined ? ENVELOPE_REG_JOIN : ENVELOPE_REG_LEAVE, sock,
                     (struct slice){rooms.data, rooms.len});
    buf_deinit(&rooms);
}

void registry_on_disconnect(struct registry *r, struct sio_socket *sock)
{
    if (sio_socket_accepted(sock))
        append_with_rooms(r, ENVELOPE_REG_DISCONNECT, sock);
}

static void snapshot_socket(void *ctx, struct sio_socket *sock)
{
    append_with_rooms(ctx, ENVELOPE_REG_SNAPSHOT, sock);
}

void registry_snapshot(struct registry *r)
{
    static const uint8_t no_rooms[] = {0x90};
    struct slice empty = {no_rooms, 1};
    append_raw(r, ENVELOPE_REG_SNAPSHOT, "/", "*", "begin", empty);
    sio_server_each_socket(r->srv, snapshot_socket, r);
    append_raw(r, ENVELOPE_REG_SNAPSHOT, "/", "*", "end", empty);
    log_write(r->log, LOG_LEVEL_INFO, "registry.snapshot", "%zu sockets",
              sio_server_socket_count(r->srv));
}

size_t registry_pending(const struct registry *r)
{
    return r->pending;
}

const char *registry_epoch(const struct registry *r)
{
    return r->epoch;
}

static void send_heartbeat(struct registry *r);

/* splitmix64: epochs only need to differ between lives of a node */
static uint64_t next_random(struct registry *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* DESIGN.md §3.4 (docs/contracts.md): the broker reaped this epoch while the node lived. The
 * node starts a new life: a fresh epoch whose first command is its heartbeat, and the owner
 * closes every session (clients reconnect and are registered again under the new epoch). */
static void epoch_reaped(struct registry *r)
{
    char old[ENVELOPE_EPOCH_LEN + 1];
    memcpy(old, r->epoch, sizeof old);
    envelope_epoch_format(next_random(r) ^ clock_wall_ms(), (uint8_t *)r->epoch);
    r->epoch[ENVELOPE_EPOCH_LEN] = '\0';
    r->seq = 0;
    r->checks_stale = r->checks_inflight; /* their answers are about the old epoch */
    log_write(r->log, LOG_LEVEL_WARN, "registry.epoch_reaped",
              "the broker declared epoch %s of this node lost; %zu sockets are closed to "
              "reconnect, new epoch %s",
              old, sio_server_socket_count(r->srv), r->epoch);
    send_heartbeat(r);
    if (r->on_epoch_reaped != NULL)
        r->on_epoch_reaped(r->ctx, old, r->epoch);
}

static void epoch_check_cb(void *ctx, const struct redisReply *reply, enum redis_link_result result)
{
    struct registry *r = ctx;
    r->checks_inflight--;
    if (r->checks_stale > 0) {
        r->checks_stale--;
        return;
    }
    if (result == REDIS_LINK_REPLY && reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer == 1)
        epoch_reaped(r);
}

/* Every heartbeat_ms: P:hb:<node> = epoch (PX node-timeout) and P:nodes[node] = info, then
 * whether the broker retired this epoch. A beat is not queued behind an outage: a stale beat
 * would only mislead the broker. */
static void send_heartbeat(struct registry *r)
{
    char px[24];
    snprintf(px, sizeof px, "%u", r->node_timeout_ms);
    const char *set[] = {"SET", (const char *)r->key_hb.data, r->epoch, "PX", px};
    send_command(r, 5, set, NULL);
    struct envelope_node_info info = {
        .epoch = {(const uint8_t *)r->epoch, ENVELOPE_EPOCH_LEN},
        .address = {(const uint8_t *)r->address, strlen(r->address)},
        .started = r->started_ms,
        .sockets = sio_server_socket_count(r->srv),
    };
    struct buf value;
    buf_init(&value, 0);
    if (envelope_node_info_encode(&info, &value) == SIOC_OK) {
        const char *hset[] = {"HSET", (const char *)r->key_nodes.data, r->node,
                              (const char *)value.data};
        size_t lens[] = {4, r->key_nodes.len, strlen(r->node), value.len};
        send_command(r, 4, hset, lens);
    }
    buf_deinit(&value);
    const char *check[] = {"SISMEMBER", (const char *)r->key_retired.data, r->epoch};
    if (redis_link_command_argv(r->link, 3, check, NULL, 0, epoch_check_cb, r) == SIOC_OK)
        r->checks_inflight++;
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct registry *r = arg;
    if (redis_link_connected(r->link))
        send_heartbeat(r);
}

static void state_cb(void *ctx, bool connected)
{
    struct registry *r = ctx;
    if (!connected)
        return;
    heartbeat_cb(-1, 0, r); /* announce at once, not a beat later */
    /* After an outage Redis may have lost or replayed anything (restart, failover): the queued
     * entries were written first; a snapshot lets the broker repair the mirror exactly. */
    if (r->connected_once)
        registry_snapshot(r);
    r->connected_once = true;
}

static void event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    (void)ev;
    struct registry *r = ctx;
    log_write(r->log, LOG_LEVEL_INFO, "registry.redis", "%s", detail);
}

static char *dup_or(const char *s, const char *fallback)
{
    return strdup(s != NULL ? s : fallback);
}

int registry_set_address(struct registry *r, const char *address)
{
    char *copy = strdup(address);
    if (copy == NULL)
        return SIOC_ENOMEM;
    free(r->address);
    r->address = copy;
    return SIOC_OK;
}

struct registry *registry_new(struct event_base *base, const struct registry_config *cfg,
                              struct sio_server *srv, struct log *log, struct metrics *metrics)
{
    struct registry *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->srv = srv;
    r->log = log;
    r->prefix = dup_or(cfg->key_prefix, "sioc");
    r->node = dup_or(cfg->node_id, "");
    r->address = dup_or(cfg->address, "?");
    r->node_timeout_ms = cfg->node_timeout_ms ? cfg->node_timeout_ms : 6000;
    /* a beat must come well within the key's lifetime, whatever node-timeout is */
    r->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms
                      : r->node_timeout_ms < 6000
                          ? (r->node_timeout_ms / 3 ? r->node_timeout_ms / 3 : 1)
                          : 2000;
    r->rng = cfg->seed ^ 0x5851f42d4c957f2dull;
    r->on_epoch_reaped = cfg->on_epoch_reaped;
    r->ctx = cfg->ctx;
    r->started_ms = clock_wall_ms();
    envelope_epoch_format(cfg->seed, (uint8_t *)r->epoch);
    r->epoch[ENVELOPE_EPOCH_LEN] = '\0';
    buf_init(&r->key_registry, 0);
    buf_init(&r->key_hb, 0);
    buf_init(&r->key_nodes, 0);
    buf_init(&r->key_retired, 0);
    struct slice node = {(const uint8_t *)r->node, r->node ? strlen(r->node) : 0};
    envelope_key_registry(&r->key_registry, r->prefix);
    envelope_key_hb(&r->key_hb, r->prefix, node);
    envelope_key_nodes(&r->key_nodes, r->prefix);
    buf_append_byte(&r->key_registry, 0); /* NUL-terminated too, for the argv above */
    buf_append_byte(&r->key_hb, 0);
    buf_append_byte(&r->key_nodes, 0);
    /* the broker's set of retired epochs of this node (broker/scripts.c, docs/contracts.md) */
    buf_append_cstr(&r->key_retired, r->prefix ? r->prefix : "");
    buf_append_cstr(&r->key_retired, ":bk:retired:");
    buf_append_cstr(&r->key_retired, r->node ? r->node : "");
    buf_append_byte(&r->key_retired, 0);
    r->key_registry.len--;
    r->key_hb.len--;
    r->key_nodes.len--;
    r->written = metrics_counter(metrics, "sioc_registry_written_total",
                                 "registry commands Redis confirmed", NULL);
    r->errors = metrics_counter(metrics, "sioc_registry_errors_total",
                                "registry commands refused or lost", NULL);
    r->refused = metrics_counter(metrics, "sioc_registry_dropped_total",
                                 "registry entries dropped (queue full during an outage)", NULL);
    struct redis_link_config lc = {
        .url = cfg->redis_url,
        .tls = cfg->redis_tls,
        .mode = REDIS_LINK_COMMAND,
        /* docs/contracts.md (Node liveness): after an outage the broker waits node-timeout for
         * a beat, so this link must be back well within it: it retries at least every
         * node-timeout / 4 (never less often than the links' default) */
        .backoff_max_ms = r->node_timeout_ms / 4 < REDIS_LINK_DEFAULT_BACKOFF_MAX_MS
                              ? r->node_timeout_ms / 4
                              : REDIS_LINK_DEFAULT_BACKOFF_MAX_MS,
        .jitter_seed = cfg->seed ^ 0x2545f4914f6cdd1dull,
        .ctx = r,
        .on_state_cb = state_cb,
        .on_event_cb = event_cb,
    };
    bool ok = r->prefix && r->node && r->node[0] != '\0' && r->address && r->written && r->errors &&
              r->refused && r->key_registry.err == SIOC_OK && r->key_hb.err == SIOC_OK &&
              r->key_nodes.err == SIOC_OK && r->key_retired.err == SIOC_OK;
    r->link = ok ? redis_link_new(base, &lc) : NULL;
    r->heartbeat = r->link ? event_new(base, -1, EV_PERSIST, heartbeat_cb, r) : NULL;
    struct timeval tv = {r->heartbeat_ms / 1000, (r->heartbeat_ms % 1000) * 1000};
    if (r->heartbeat == NULL || event_add(r->heartbeat, &tv) != 0) {
        registry_free(r);
        return NULL;
    }
    /* The first command of the epoch is its heartbeat: the broker must see the new epoch's beat
     * before its entries, or an old epoch's live beat could retire it (broker/README.md). */
    send_heartbeat(r);
    return r;
}

void registry_free(struct registry *r)
{
    if (r == NULL)
        return;
    if (r->heartbeat != NULL)
        event_free(r->heartbeat);
    redis_link_free(r->link);
    buf_deinit(&r->key_registry);
    buf_deinit(&r->key_hb);
    buf_deinit(&r->key_nodes);
    buf_deinit(&r->key_retired);
    free(r->prefix);
    free(r->node);
    free(r->address);
    free(r);
}
