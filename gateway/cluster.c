/* cluster.c: the gateway's side of the @socket.io/redis-adapter cluster (see cluster.h):
 * namespaces and their channels, message routing, broadcast delivery (PROTOCOL.md 3.3),
 * publishing on the cluster's own connection (3.7) and metrics. The requests themselves
 * (3.5, 3.6) are answered in cluster_requests.c. */
#include "gateway/cluster.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container.h"
#include "common/config.h"
#include "common/adapter.h"
#include "common/cluster_msg.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"
#include "common/net/process.h"
#include "gateway/cluster_internal.h"

static const char *const type_names[CLUSTER_REQUEST_TYPES] = {
    "sockets",           "all_rooms",    "remote_join",      "remote_leave",
    "remote_disconnect", "remote_fetch", "server_side_emit", "broadcast",
};

/* ---- namespaces ---- */

/* splitmix64: uids only need to differ between nodes, not to be secret (PROTOCOL.md 3.2) */
static uint64_t next_random(struct cluster *c)
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static char *channel_string(struct buf *tmp)
{
    buf_append_byte(tmp, '\0');
    if (tmp->err != SIOC_OK)
        return NULL;
    return strdup((const char *)tmp->data);
}

static void nsp_free(struct cluster_nsp *n)
{
    if (n == NULL)
        return;
    free(n->name);
    free(n->request_channel);
    free(n->response_channel);
    free(n->specific_channel);
    free(n->shard_channel);
    free(n);
}

/* A namespace entry with a fresh uid and its three channel names (PROTOCOL.md 3.2). */
static struct cluster_nsp *nsp_add(struct cluster *c, const char *name, size_t len)
{
    struct cluster_nsp *n = cluster_nsp_find(c, name, len);
    if (n != NULL)
        return n; /* listed twice */
    if (c->nsp_count == CLUSTER_MAX_NAMESPACES || len == 0)
        return NULL;
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    uint64_t r = next_random(c);
    uint8_t bytes[ADAPTER_UID_LEN];
    for (size_t i = 0; i < ADAPTER_UID_LEN; i++)
        bytes[i] = (uint8_t)(r >> (8 * i));
    adapter_uid2(n->uid, bytes, ADAPTER_UID_LEN);
    n->len = len;
    n->name = strndup(name, len);
    struct slice key = {(const uint8_t *)c->key, strlen(c->key)};
    struct slice nsp = {(const uint8_t *)name, len};
    struct slice uid = {(const uint8_t *)n->uid, ADAPTER_UID_LEN};
    struct buf tmp;
    buf_init(&tmp, 0);
    adapter_request_channel(&tmp, key, nsp);
    n->request_channel = channel_string(&tmp);
    buf_reset(&tmp);
    adapter_response_channel(&tmp, key, nsp, ADAPTER_SOCKETS, uid, false);
    n->response_channel = channel_string(&tmp);
    buf_reset(&tmp);
    adapter_response_channel(&tmp, key, nsp, ADAPTER_SOCKETS, uid, true);
    n->specific_channel = channel_string(&tmp);
    buf_reset(&tmp);
    cluster_msg_channel(&tmp, key, nsp);
    n->shard_channel = channel_string(&tmp);
    buf_deinit(&tmp);
    if (n->name == NULL || n->request_channel == NULL || n->response_channel == NULL ||
        n->specific_channel == NULL || n->shard_channel == NULL) {
        nsp_free(n);
        return NULL;
    }
    c->nsps[c->nsp_count++] = n;
    namemap_insert(&c->nsp_map, &n->by_name, n->name, len);
    const char *channels[] = {n->request_channel, n->response_channel, n->specific_channel};
    for (size_t i = 0; i < 3; i++) {
        n->channels[i].nsp = n;
        n->channels[i].request = i == 0;
        namemap_insert(&c->channel_map, &n->channels[i].node, channels[i], strlen(channels[i]));
    }
    return n;
}

const char *cluster_uid(const struct cluster *c, const char *nsp)
{
    const struct cluster_nsp *n = cluster_nsp_find(c, nsp, strlen(nsp));
    return n ? n->uid : NULL;
}

int cluster_nsp_open(struct cluster *c, const char *name, size_t len)
{
    if (c == NULL || !c->any_namespace || cluster_nsp_find(c, name, len) != NULL)
        return SIOC_OK;
    if (memchr(name, 0, len) != NULL)
        return SIOC_EINVAL; /* names are C strings here (channel names, logs) */
    if (c->nsp_count == CLUSTER_MAX_NAMESPACES || len > CLUSTER_MAX_NSP)
        return SIOC_ETOOBIG;
    struct cluster_nsp *n = nsp_add(c, name, len);
    if (n == NULL)
        return SIOC_ENOMEM;
    if (c->sharded) {
        int rc = cluster_sharded_follow(c, n, true);
        if (rc != SIOC_OK)
            cluster_nsp_close(c, name, len);
        return rc;
    }
    if (c->subscribe_cb == NULL)
        return SIOC_OK;
    const char *channels[] = {n->request_channel, n->response_channel, n->specific_channel};
    for (size_t i = 0; i < 3; i++) {
        /* queued on the subscriber link (sent on every reconnect): an error here is only a
         * full queue or no memory, and the namespace is refused rather than half followed */
        int rc = c->subscribe_cb(c->subscribe_ctx, channels[i]);
        if (rc != SIOC_OK) {
            log_write(c->log, LOG_LEVEL_WARN, "cluster.subscribe_failed", "channel=%s: %s",
                      channels[i], sioc_strerror(rc));
            cluster_nsp_close(c, name, len);
            return rc;
        }
    }
    return SIOC_OK;
}

void cluster_nsp_close(struct cluster *c, const char *name, size_t len)
{
    struct cluster_nsp *n = c != NULL && c->any_namespace ? cluster_nsp_find(c, name, len) : NULL;
    if (n == NULL)
        return;
    if (c->sharded)
        cluster_sharded_follow(c, n, false);
    const char *channels[] = {n->request_channel, n->response_channel, n->specific_channel};
    for (size_t i = 0; i < 3; i++) {
        if (!c->sharded && c->unsubscribe_cb != NULL)
            c->unsubscribe_cb(c->subscribe_ctx, channels[i]);
        namemap_remove(&c->channel_map, &n->channels[i].node);
    }
    namemap_remove(&c->nsp_map, &n->by_name);
    cluster_acks_forget(c, n);
    for (size_t i = 0; i < c->nsp_count; i++) {
        if (c->nsps[i] == n) {
            c->nsps[i] = c->nsps[--c->nsp_count];
            break;
        }
    }
    nsp_free(n);
}

static void pub_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    struct cluster *c = ctx;
    if (ev == REDIS_LINK_EV_CONNECTED)
        log_write(c->log, LOG_LEVEL_INFO, "cluster.redis_connected", "%s", detail ? detail : "");
    else if (ev == REDIS_LINK_EV_DISCONNECTED || ev == REDIS_LINK_EV_QUEUE_FULL)
        log_write(c->log, LOG_LEVEL_WARN, "cluster.redis_lost", "%s", detail ? detail : "");
}

static double gauge_connected(void *ctx)
{
    const struct cluster *c = ctx;
    return redis_link_connected(c->pub) ? 1.0 : 0.0;
}

/* ---- broadcasts (PROTOCOL.md 3.3) ---- */

static void on_broadcast(struct cluster *c, struct slice channel, struct slice payload)
{
    (*c->received)++;
    int rc = adapter_broadcast_decode(payload.p, payload.len, &c->msg);
    if (rc < 0) {
        (*c->dropped)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.invalid_broadcast", "channel=%.*s: %s",
                  (int)channel.len, channel.p, sioc_strerror(rc));
        return;
    }
    if (c->msg.packet.type != 2 && c->msg.packet.type != 5) {
        (*c->dropped)++; /* ack packets travel as requests (type 7), not as broadcasts */
        return;
    }
    /* 3.3 step 1: the channel must belong to the packet's namespace (`<key>#<nsp>#...`) */
    struct slice room;
    struct slice key = {(const uint8_t *)c->key, strlen(c->key)};
    if (adapter_channel_room(channel, key, c->msg.packet.nsp, &room) != SIOC_OK) {
        (*c->dropped)++;
        return;
    }
    /* 3.3 step 2 / 3.7: our own uid means we published it (never today: the gateway does not
     * originate adapter broadcasts, but a restarted peer may reuse nothing of ours either way) */
    const struct cluster_nsp *n =
        cluster_nsp_find(c, (const char *)c->msg.packet.nsp.p, c->msg.packet.nsp.len);
    if (n != NULL && c->msg.uid.len == ADAPTER_UID_LEN &&
        memcmp(c->msg.uid.p, n->uid, ADAPTER_UID_LEN) == 0)
        return;
    /* steps 3-4: union of rooms minus except; volatile skips clients that cannot take it now;
     * compress needs nothing (the gateway declines permessage-deflate, so nothing is ever
     * compressed); one encoding for every recipient */
    char nsp[CLUSTER_MAX_NSP + 1];
    if (c->msg.packet.nsp.len > CLUSTER_MAX_NSP) {
        (*c->dropped)++;
        return;
    }
    memcpy(nsp, c->msg.packet.nsp.p, c->msg.packet.nsp.len);
    nsp[c->msg.packet.nsp.len] = '\0';
    struct sio_broadcast b = {
        .nsp = nsp,
        .nsp_len = c->msg.packet.nsp.len,
        .data = c->msg.packet.data,
        .rooms = c->msg.opts.rooms.names,
        .nrooms = c->msg.opts.rooms.count,
        .except = c->msg.opts.except.names,
        .nexcept = c->msg.opts.except.count,
        .is_volatile = c->msg.opts.flags.is_volatile,
    };
    int sent = sio_server_broadcast(c->srv, &b);
    if (sent < 0) {
        (*c->dropped)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.broadcast_failed", "nsp=%s: %s", nsp,
                  sioc_strerror(sent));
        return;
    }
    *c->delivered += (uint64_t)sent;
}

void cluster_on_message(void *ctx, struct slice pattern, struct slice channel, struct slice payload)
{
    struct cluster *c = ctx;
    if (c->sharded) {
        cluster_sharded_on_message(c, channel, payload);
        return;
    }
    if (pattern.len > 0) {
        on_broadcast(c, channel, payload);
        return;
    }
    struct cluster_channel *ch = container_of_or_null(
        namemap_find(&c->channel_map, channel.p, channel.len), struct cluster_channel, node);
    if (ch == NULL)
        return;
    if (ch->request)
        cluster_on_request(c, ch->nsp, payload);
    else /* answers to other nodes' requests (3.8: every node reads both channels); this
          * gateway has no request of its own pending, so there is nothing to match */
        (*c->responses_ignored)++;
}

/* ---- lifecycle ---- */

static bool add_pattern(struct cluster *c, const char *nsp, size_t nsp_len)
{
    char pattern[CLUSTER_MAX_NSP + 300];
    if (nsp == NULL)
        snprintf(pattern, sizeof pattern, "%s#*", c->key);
    else /* PROTOCOL.md 3.2: one pattern per namespace covers the main and the room channels */
        snprintf(pattern, sizeof pattern, "%s#%.*s#*", c->key, (int)nsp_len, nsp);
    if (c->pattern_count == CLUSTER_MAX_NAMESPACES ||
        (c->patterns[c->pattern_count] = strdup(pattern)) == NULL)
        return false;
    c->pattern_count++;
    return true;
}

static bool register_metrics(struct cluster *c, struct metrics *m)
{
    c->received = metrics_counter(m, "sioc_broadcasts_received_total",
                                  "adapter broadcasts received from Redis", NULL);
    c->delivered = metrics_counter(m, "sioc_broadcast_deliveries_total",
                                   "sockets a received broadcast was sent to", NULL);
    c->dropped =
        metrics_counter(m, "sioc_broadcasts_dropped_total",
                        "received broadcasts that could not be decoded or delivered", NULL);
    bool ok = c->received && c->delivered && c->dropped;
    for (size_t i = 0; ok && i < CLUSTER_REQUEST_TYPES; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "type=\"%s\"", type_names[i]);
        c->requests[i] =
            metrics_counter(m, "sioc_adapter_requests_total",
                            "adapter requests received from other nodes, by type", labels);
        ok = c->requests[i] != NULL;
    }
    c->requests_invalid = metrics_counter(m, "sioc_adapter_requests_invalid_total",
                                          "adapter requests that could not be decoded", NULL);
    c->responses = metrics_counter(m, "sioc_adapter_responses_total",
                                   "responses and acks this node published", NULL);
    c->responses_ignored =
        metrics_counter(m, "sioc_adapter_responses_ignored_total",
                        "responses to other nodes' requests (read, ignored)", NULL);
    c->publish_failed = metrics_counter(m, "sioc_adapter_publish_failed_total",
                                        "responses that could not be queued for Redis", NULL);
    c->acks_expired =
        metrics_counter(m, "sioc_adapter_ack_requests_expired_total",
                        "broadcasts with acks that expired before every client acked", NULL);
    c->acks_pending = metrics_gauge(m, "sioc_adapter_ack_requests_pending",
                                    "broadcasts with acks awaiting client acks", NULL);
    c->room_channels =
        metrics_gauge(m, "sioc_adapter_room_channels",
                      "adapter sharded: room channels SSUBSCRIBEd (dynamic modes)", NULL);
    return ok && c->requests_invalid && c->responses && c->responses_ignored && c->publish_failed &&
           c->acks_expired && c->acks_pending && c->room_channels &&
           metrics_gauge_fn(m, "sioc_cluster_redis_connected",
                            "1 while the cluster's publishing connection is up", NULL,
                            gauge_connected, c) == SIOC_OK;
}

struct cluster *cluster_new(struct event_base *base, const struct cluster_config *cfg,
                            struct sio_server *srv, struct log *log, struct metrics *metrics)
{
    struct cluster *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->base = base;
    c->srv = srv;
    c->log = log;
    c->specific = cfg->specific_response_channel;
    c->subscribe_cb = cfg->subscribe_cb;
    c->unsubscribe_cb = cfg->unsubscribe_cb;
    c->subscribe_ctx = cfg->subscribe_ctx;
    c->sharded = cfg->sharded;
    c->sub_mode = cfg->sub_mode;
    c->shard_cb = cfg->shard_cb;
    c->rng = cfg->seed;
    if (c->rng == 0)
        c->rng = process_random_u64(c);
    buf_init(&c->scratch, ADAPTER_MAX_MESSAGE);
    buf_init(&c->out, 0);
    buf_init(&c->channel, 0);
    buf_init(&c->ids, 0);
    buf_init(&c->list, 0);
    buf_init(&c->shard_scratch, 0);
    c->key = strdup(cfg->adapter_key ? cfg->adapter_key : "socket.io");
    bool ok = c->key != NULL && cfg->namespaces != NULL && register_metrics(c, metrics) &&
              namemap_init(&c->nsp_map, next_random(c)) == SIOC_OK &&
              namemap_init(&c->channel_map, next_random(c)) == SIOC_OK;
    if (ok && strcmp(cfg->namespaces, "*") == 0) {
        c->any_namespace = true;
        ok = c->sharded || add_pattern(c, NULL, 0);
    } else {
        const char *cursor = cfg->namespaces, *s;
        size_t n;
        while (ok && config_list_next(&cursor, &s, &n)) {
            struct cluster_nsp *nsp = n <= CLUSTER_MAX_NSP ? nsp_add(c, s, n) : NULL;
            ok = nsp != NULL && (c->sharded || add_pattern(c, s, n));
            if (ok && !c->sharded) {
                c->channels[c->channel_count++] = nsp->request_channel;
                c->channels[c->channel_count++] = nsp->response_channel;
                c->channels[c->channel_count++] = nsp->specific_channel;
            }
        }
    }
    if (ok) {
        struct redis_link_config lcfg = {
            .url = cfg->redis_url,
            .tls = cfg->redis_tls,
            .mode = REDIS_LINK_COMMAND,
            .jitter_seed = next_random(c),
            .ctx = c,
            .on_event_cb = pub_event_cb,
        };
        c->pub = cfg->redis_url ? redis_link_new(base, &lcfg) : NULL;
        ok = c->pub != NULL;
    }
    if (!ok) {
        cluster_free(c);
        return NULL;
    }
    return c;
}

void cluster_free(struct cluster *c)
{
    if (c == NULL)
        return;
    cluster_acks_free(c);
    redis_link_free(c->pub);
    for (size_t i = 0; i < c->pattern_count; i++)
        free(c->patterns[i]);
    for (size_t i = 0; i < c->nsp_count; i++)
        nsp_free(c->nsps[i]);
    buf_deinit(&c->scratch);
    buf_deinit(&c->out);
    buf_deinit(&c->channel);
    buf_deinit(&c->ids);
    buf_deinit(&c->list);
    buf_deinit(&c->shard_scratch);
    namemap_deinit(&c->nsp_map);
    namemap_deinit(&c->channel_map);
    free(c->key);
    free(c);
}

int cluster_start(struct cluster *c)
{
    int first = SIOC_OK;
    for (size_t i = 0; c->sharded && !c->any_namespace && i < c->nsp_count; i++) {
        int rc = cluster_sharded_follow(c, c->nsps[i], true);
        if (first == SIOC_OK)
            first = rc;
    }
    return first;
}

size_t cluster_channels(const struct cluster *c, const char *const **channels)
{
    *channels = (const char *const *)c->channels;
    return c->channel_count;
}

size_t cluster_patterns(const struct cluster *c, const char *const **patterns)
{
    *patterns = (const char *const *)c->patterns;
    return c->pattern_count;
}
