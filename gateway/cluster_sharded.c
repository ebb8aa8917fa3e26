/* cluster_sharded.c: the gateway as a member of a cluster of @socket.io/redis-adapter 8.3
 * createShardedAdapter peers (`adapter sharded`; docs/contracts.md "Sharded adapter"). Per
 * followed namespace it SSUBSCRIBEs `<key>#<nsp>#` on the bridge's subscriber connection (so
 * Node's serverCount, PUBSUB SHARDNUMSUB, counts it once), and in the dynamic modes the
 * `<key>#<nsp>#<room>#` channel of each room that has local members (cluster_on_room_change).
 * Every message type a Node peer sends is acted on or answered, on the requester's
 * `<key>#<nsp>#<uid>#` through the cluster's command connection (SPUBLISH): broadcasts (with
 * acks: BROADCAST_CLIENT_COUNT, then BROADCAST_ACK per client), SOCKETS_JOIN/LEAVE,
 * DISCONNECT_SOCKETS, FETCH_SOCKETS, SERVER_SIDE_EMIT (with ack: one null answer). The gateway
 * originates no requests, so responses to others are read and ignored. */
#include <stdio.h>
#include <string.h>

#include "common/cluster_msg.h"
#include "common/error.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"
#include "gateway/cluster_internal.h"

static const uint8_t nil_value[] = {0xc0};

/* A reply `m` of `type` to the request c->smsg, with its requestId. */
static struct cluster_msg *reply_to(struct cluster *c, int type)
{
    struct cluster_msg *m = &c->reply;
    m->type = type;
    m->has_request_id = true;
    m->request_id = c->smsg.request_id;
    m->has_opts = m->has_packet = m->has_rooms = m->has_client_count = m->has_sockets = false;
    return m;
}

/* BROADCAST without acks: to the local sockets it selects, encoded once. */
static void deliver(struct cluster *c, const struct cluster_nsp *n, const struct cluster_msg *m)
{
    (*c->received)++;
    struct sio_broadcast b = {
        .nsp = n->name,
        .nsp_len = n->len,
        .data = m->event.data,
        .rooms = m->opts.rooms.names,
        .nrooms = m->opts.rooms.count,
        .except = m->opts.except.names,
        .nexcept = m->opts.except.count,
        .is_volatile = m->opts.flags.is_volatile,
    };
    int sent = sio_server_broadcast(c->srv, &b);
    if (sent < 0) {
        (*c->dropped)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.broadcast_failed", "nsp=%s: %s", n->name,
                  sioc_strerror(sent));
        return;
    }
    *c->delivered += (uint64_t)sent;
}

static void on_broadcast(struct cluster *c, struct cluster_nsp *n, const struct cluster_msg *m)
{
    if (!m->has_request_id) {
        deliver(c, n, m);
        return;
    }
    (*c->requests[ADAPTER_BROADCAST])++;
    struct cluster_ack_request q = {
        .data = m->event.data,
        .opts = &m->opts,
        .request_id = m->request_id,
        .requester_uid = m->uid,
        .sharded = true,
    };
    cluster_broadcast_with_ack(c, n, &q);
}

static void on_fetch(struct cluster *c, const struct cluster_nsp *n, const struct cluster_msg *m)
{
    (*c->requests[ADAPTER_REMOTE_FETCH])++;
    cluster_write_fetch(c, n, &m->opts);
    struct cluster_msg *r = reply_to(c, CLUSTER_MSG_FETCH_SOCKETS_RESPONSE);
    r->has_sockets = true;
    r->sockets = (struct slice){c->list.data, c->list.len};
    if (c->list.err != SIOC_OK)
        r->sockets = (struct slice){(const uint8_t *)"\x90", 1}; /* answer, even if empty */
    cluster_respond_sharded(c, n, m->uid, r);
}

/* SERVER_SIDE_EMIT: the gateway has no server-side listeners; asked for an ack, it answers
 * once with null (as a Node listener calling back with null), so the sender's
 * serverSideEmitWithAck gets one answer per gateway instead of a timeout. */
static void on_server_side_emit(struct cluster *c, const struct cluster_nsp *n,
                                const struct cluster_msg *m)
{
    (*c->requests[ADAPTER_SERVER_SIDE_EMIT])++;
    if (!m->has_request_id)
        return;
    struct cluster_msg *r = reply_to(c, CLUSTER_MSG_SERVER_SIDE_EMIT_RESPONSE);
    r->has_packet = true;
    r->packet = (struct slice){nil_value, sizeof nil_value};
    cluster_respond_sharded(c, n, m->uid, r);
}

static void sharded_message_in(struct cluster *c, struct cluster_nsp *n,
                               const struct cluster_msg *m)
{
    switch (m->type) {
    case CLUSTER_MSG_BROADCAST: on_broadcast(c, n, m); break;
    case CLUSTER_MSG_SOCKETS_JOIN:
    case CLUSTER_MSG_SOCKETS_LEAVE: {
        bool join = m->type == CLUSTER_MSG_SOCKETS_JOIN;
        (*c->requests[join ? ADAPTER_REMOTE_JOIN : ADAPTER_REMOTE_LEAVE])++;
        cluster_apply_rooms(c, n, &m->opts, &m->rooms, join);
        break;
    }
    case CLUSTER_MSG_DISCONNECT_SOCKETS:
        (*c->requests[ADAPTER_REMOTE_DISCONNECT])++;
        cluster_apply_disconnect(c, n, &m->opts, m->close);
        break;
    case CLUSTER_MSG_FETCH_SOCKETS: on_fetch(c, n, m); break;
    case CLUSTER_MSG_SERVER_SIDE_EMIT: on_server_side_emit(c, n, m); break;
    case CLUSTER_MSG_FETCH_SOCKETS_RESPONSE:
    case CLUSTER_MSG_SERVER_SIDE_EMIT_RESPONSE:
    case CLUSTER_MSG_BROADCAST_CLIENT_COUNT:
    case CLUSTER_MSG_BROADCAST_ACK:
        (*c->responses_ignored)++; /* no request of ours is ever pending */
        break;
    default: /* heartbeats and ADAPTER_CLOSE: the sharded adapter has no heartbeat */ break;
    }
}

void cluster_sharded_on_message(struct cluster *c, struct slice channel, struct slice payload)
{
    struct cluster_msg *m = &c->smsg;
    int rc = cluster_msg_decode(payload.p, payload.len, &c->scratch, m);
    if (rc == SIOC_ENOTSUP)
        return; /* a type of a later adapter version: Node ignores those too */
    if (rc < 0) {
        (*c->requests_invalid)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.invalid_message", "channel=%.*s: %s (%zu bytes)",
                  (int)channel.len, channel.p, sioc_strerror(rc), payload.len);
        return;
    }
    struct cluster_nsp *n = cluster_nsp_find(c, (const char *)m->nsp.p, m->nsp.len);
    struct slice room;
    /* another namespace's message (Node ignores it), or on a channel not of its namespace */
    if (n == NULL || adapter_channel_room(channel, cluster_key_slice(c), m->nsp, &room) != SIOC_OK)
        return;
    if (m->uid.len == strlen(n->uid) && memcmp(m->uid.p, n->uid, m->uid.len) == 0)
        return; /* our own (never today: the gateway publishes only answers) */
    sharded_message_in(c, n, m);
}

/* ---- subscriptions ---- */

static int shard_subscribe(struct cluster *c, const char *channel, bool subscribe)
{
    int rc = c->shard_cb != NULL ? c->shard_cb(c->subscribe_ctx, channel, subscribe) : SIOC_OK;
    if (rc != SIOC_OK)
        log_write(c->log, LOG_LEVEL_WARN, "cluster.subscribe_failed", "channel=%s %s: %s", channel,
                  subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE", sioc_strerror(rc));
    return rc;
}

int cluster_sharded_follow(struct cluster *c, const struct cluster_nsp *n, bool follow)
{
    return shard_subscribe(c, n->shard_channel, follow);
}

void cluster_on_room_change(void *ctx, const char *nsp, size_t nsp_len, const uint8_t *room,
                            size_t len, bool created, bool is_socket_id)
{
    struct cluster *c = ctx;
    if (c == NULL || !c->sharded ||
        !cluster_msg_room_subscribed(c->sub_mode, (struct slice){room, len}, is_socket_id))
        return;
    const struct cluster_nsp *n = cluster_nsp_find(c, nsp, nsp_len);
    if (n == NULL)
        return;
    struct buf ch;
    buf_init(&ch, 0);
    cluster_msg_sub_channel(&ch, cluster_key_slice(c), cluster_nsp_slice(n),
                            (struct slice){room, len});
    buf_append_byte(&ch, '\0');
    /* a room name with a NUL cannot be a C-string channel name: Node peers would publish on
     * it, but such a room only comes from a peer's own choice; its broadcasts are missed */
    if (ch.err == SIOC_OK && memchr(ch.data, '\0', ch.len - 1) == NULL &&
        shard_subscribe(c, (const char *)ch.data, created) == SIOC_OK)
        *c->room_channels += created ? 1 : -1;
    buf_deinit(&ch);
}
