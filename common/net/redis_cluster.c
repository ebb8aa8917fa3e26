/* redis_cluster.c: the Redis Cluster transport of redis_cluster.h, its command half. Each master
 * is a `cnode` with plain redis_nodes (common/net/redis_node.h: command; subscriber for its
 * shard channels), so reconnects, TLS, AUTH and the per-connection pairing of replies are
 * redis_node's. This file adds the slot map, routing, redirections and a cluster-level queue: an
 * owner's command is a `ccmd` that keeps its arguments until it is answered, so it can be sent
 * again to another master (MOVED, ASK, a REDIS_LINK_RETRY command lost in a failover). Node
 * connections get commands only while connected; a node never retries by itself (the cluster
 * decides where a retry goes). Structural changes (new/freed nodes, moving subscriptions) happen
 * in `kick`, a deferred event, never inside a node's callback. The subscriptions are
 * redis_cluster_sub.c's (called from kick), what both halves share redis_cluster_state.c's;
 * neither calls back into this file. */
#include "common/net/redis_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/net/redis_cluster_internal.h"
#include "common/redis_slots.h"

/* ---- lists ---- */

/* The command of a node of queue, requeue, later or inflight (not NULL). */
static struct ccmd *ccmd_of(struct list_node *link)
{
    return container_of(link, struct ccmd, node.link);
}

static void ccmd_free_all(struct counted_list *l)
{
    struct counted_node *n;
    while ((n = counted_list_pop_head(l)) != NULL)
        free(container_of(n, struct ccmd, node));
}

/* ---- owner callbacks ---- */

static void deliver(struct redis_cluster *c, struct ccmd *m, const redisReply *r,
                    enum redis_link_result result)
{
    if (m->reply_cb != NULL && !c->freeing)
        m->reply_cb(m->ctx, r, result);
}

static void refresh_start(struct redis_cluster *c);

/* ---- nodes ---- */

static void cmd_reply_cb(void *ctx, const redisReply *reply, enum redis_link_result result);

static void remember_addr(struct redis_cluster *c, const char *host, int port)
{
    for (size_t i = 0; i < c->naddrs; i++)
        if (c->addrs[i].port == port && strcmp(c->addrs[i].host, host) == 0)
            return;
    if (c->naddrs == MAX_ADDRS || strlen(host) >= REDIS_SLOT_HOST_MAX)
        return;
    snprintf(c->addrs[c->naddrs].host, REDIS_SLOT_HOST_MAX, "%s", host);
    c->addrs[c->naddrs++].port = port;
}

static void node_cmd_state_cb(void *ctx, bool up)
{
    struct cnode *n = ctx;
    n->cmd_up = up;
    if (!up)
        rc_refresh_soon(n->c); /* a failover? the map says who owns its slots now */
    rc_kick_soon(n->c);
}

static void node_cmd_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    rc_node_event(ctx, ev, detail);
}

/* The command connection of node n (the cluster's commands, CLUSTER SLOTS). */
static struct redis_node *node_cmd_link_new(struct cnode *n)
{
    struct redis_link_config lc = n->c->cfg;
    lc.mode = REDIS_LINK_COMMAND;
    lc.on_state_cb = node_cmd_state_cb;
    lc.on_event_cb = node_cmd_event_cb;
    lc.on_message_cb = NULL;
    lc.on_shard_lost_cb = NULL;
    return rc_node_link_new(n, &lc);
}

/* The cnode of host:port, made if needed, with its command link when `with_cmd` (a subscriber
 * cluster needs one only to ask for the map); NULL when out of memory/room. */
static struct cnode *node_get(struct redis_cluster *c, const char *host, int port, bool with_cmd)
{
    struct cnode *n = rc_node_find(c, host, port);
    if (n == NULL) {
        if (c->nnodes == MAX_NODES || strlen(host) >= sizeof(n->host) ||
            (n = calloc(1, sizeof(*n))) == NULL)
            return NULL;
        n->c = c;
        snprintf(n->host, sizeof(n->host), "%s", host);
        n->port = port;
        c->nodes[c->nnodes++] = n;
        remember_addr(c, host, port);
    }
    if (with_cmd && n->cmd == NULL)
        n->cmd = node_cmd_link_new(n);
    return !with_cmd || n->cmd != NULL ? n : NULL;
}

static void node_free(struct cnode *n)
{
    redis_node_free(n->cmd);
    redis_node_free(n->sub);
    free(n);
}

static bool node_is_master(const struct redis_cluster *c, const struct cnode *n)
{
    for (unsigned i = 0; i < c->map.nnodes; i++)
        if (c->by_index[i] == n)
            return true;
    return false;
}

/* Frees the nodes nothing needs any more (not masters, nothing queued, in flight, subscribed). */
static void nodes_gc(struct redis_cluster *c)
{
    for (size_t i = 0; i < c->nnodes;) {
        struct cnode *n = c->nodes[i];
        if (node_is_master(c, n) || n->pending > 0 || n->queued > 0 || n->shards > 0 ||
            n == c->home_node || n == c->refresh_node) {
            i++;
            continue;
        }
        struct list_node *pos, *tmp;
        list_for_each_safe(pos, tmp, &c->queue.head)
        {
            struct ccmd *m = ccmd_of(pos);
            if (m->ask == n)
                m->ask = NULL;
        }
        c->nodes[i] = c->nodes[--c->nnodes];
        node_free(n);
    }
}

static struct cnode *route_node(const struct redis_cluster *c, const struct ccmd *m)
{
    if (m->ask != NULL)
        return m->ask;
    return rc_slot_node(c, m->route == REDIS_ROUTE_KEY ? m->slot : 0);
}

/* ---- commands ---- */

static void queue_add(struct redis_cluster *c, struct ccmd *m)
{
    m->qnode = route_node(c, m);
    if (m->qnode != NULL)
        m->qnode->queued++;
    else
        c->unrouted++;
    counted_list_push_tail(&c->queue, &m->node);
}

static void queue_take(struct redis_cluster *c, struct ccmd *m)
{
    if (m->qnode != NULL)
        m->qnode->queued--;
    else
        c->unrouted--;
    m->qnode = NULL;
    counted_list_remove(&c->queue, &m->node);
}

/* Writes m on its node if that node's command link is connected. */
static bool dispatch(struct redis_cluster *c, struct ccmd *m)
{
    struct cnode *n = route_node(c, m);
    if (n == NULL || n->cmd == NULL || !redis_node_connected(n->cmd))
        return false;
    if (m->ask != NULL) {
        const char *asking[1] = {"ASKING"};
        if (redis_node_command_argv(n->cmd, 1, asking, NULL, 0, NULL, NULL) != SIOC_OK)
            return false;
        m->ask = NULL;
    }
    if (redis_node_command_argv(n->cmd, m->argc, m->argv, m->lens, 0, cmd_reply_cb, m) != SIOC_OK)
        return false;
    m->sent = n;
    n->pending++;
    counted_list_push_tail(&c->inflight, &m->node);
    return true;
}

static void flush_queue(struct redis_cluster *c)
{
    if (c->held)
        return;
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->queue.head)
    {
        struct ccmd *m = ccmd_of(pos);
        struct cnode *n = route_node(c, m);
        if (n == NULL || n->cmd == NULL || !redis_node_connected(n->cmd))
            continue;
        queue_take(c, m);
        if (!dispatch(c, m)) {
            queue_add(c, m); /* out of memory in the node link: stays, at the end */
            break;
        }
    }
    if (c->room_wanted && c->queue.count == 0 && rc_cluster_up(c) && c->cfg.on_room_cb != NULL &&
        !c->freeing) {
        c->room_wanted = false;
        c->cfg.on_room_cb(c->cfg.ctx);
    }
}

static bool error_is(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r->len >= n && memcmp(r->str, prefix, n) == 0;
}

/* A MOVED or ASK answer: true when m was re-queued for its new node. */
static bool follow_redirect(struct redis_cluster *c, struct ccmd *m, struct cnode *from,
                            const redisReply *r)
{
    struct redis_redirect rd;
    enum redis_redirect_kind kind = redis_redirect_parse(r->str, r->len, &rd);
    if (kind == REDIS_REDIRECT_NONE || m->redirects >= REDIS_CLUSTER_MAX_REDIRECTS)
        return false;
    if (rd.host[0] == '\0') /* "MOVED 12 :6380": the same host as the node that answered */
        snprintf(rd.host, sizeof(rd.host), "%s", from->host);
    struct cnode *to = node_get(c, rd.host, rd.port, true);
    if (to == NULL)
        return false;
    m->redirects++;
    c->stats.redirects++;
    if (kind == REDIS_REDIRECT_ASK) {
        m->ask = to;
    } else {
        int idx = redis_slot_map_assign(&c->map, rd.slot, rd.slot, rd.host, rd.port);
        if (idx >= 0)
            c->by_index[idx] = to;
        rc_emit_event(c, REDIS_LINK_EV_REDIRECT, r->str);
        rc_refresh_soon(c);
    }
    counted_list_push_tail(&c->requeue, &m->node);
    rc_kick_soon(c);
    return true;
}

static void cmd_reply_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct ccmd *m = ctx;
    struct redis_cluster *c = m->c;
    struct cnode *from = m->sent;
    from->pending--;
    m->sent = NULL;
    counted_list_remove(&c->inflight, &m->node);
    if (result == REDIS_LINK_LOST) {
        rc_refresh_soon(c);
        if ((m->flags & REDIS_LINK_RETRY) != 0 && m->reply_cb != NULL) {
            c->stats.commands_retried++;
            counted_list_push_tail(&c->requeue, &m->node); /* to the slot's owner once the map
                                                            * says who it is */
            rc_kick_soon(c);
            return;
        }
        c->stats.commands_lost++;
        deliver(c, m, NULL, REDIS_LINK_LOST);
        free(m);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && reply->str != NULL) {
        if (follow_redirect(c, m, from, reply))
            return;
        if ((error_is(reply, "TRYAGAIN") || error_is(reply, "CLUSTERDOWN") ||
             error_is(reply, "LOADING") || error_is(reply, "MASTERDOWN")) &&
            m->tryagain < REDIS_CLUSTER_MAX_TRYAGAIN) {
            m->tryagain++;
            counted_list_push_tail(&c->later, &m->node); /* sent again after the next map refresh */
            rc_refresh_soon(c);
            return;
        }
    }
    deliver(c, m, reply, REDIS_LINK_REPLY);
    free(m);
}

/* ---- slot map ---- */

static bool parse_node_entry(const redisReply *e, const struct cnode *from, char *host, int *port)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_INTEGER)
        return false;
    const redisReply *h = e->element[0];
    if (h->len >= REDIS_SLOT_HOST_MAX || memchr(h->str, '\0', h->len) != NULL)
        return false;
    if (h->len == 0 || (h->len == 1 && h->str[0] == '?'))
        snprintf(host, REDIS_SLOT_HOST_MAX, "%s", from->host); /* no endpoint announced */
    else
        snprintf(host, REDIS_SLOT_HOST_MAX, "%.*s", (int)h->len, h->str);
    *port = (int)e->element[1]->integer;
    return true;
}

/* CLUSTER SLOTS: [[start, end, [host, port, id...], [replica...]...]...] into c->next. */
static bool parse_slots(struct redis_cluster *c, const redisReply *r, const struct cnode *from)
{
    redis_slot_map_clear(&c->next);
    if (r->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        char host[REDIS_SLOT_HOST_MAX];
        int port;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            !parse_node_entry(e->element[2], from, host, &port) || e->element[0]->integer < 0 ||
            e->element[1]->integer < 0)
            return false;
        if (redis_slot_map_assign(&c->next, (unsigned)e->element[0]->integer,
                                  (unsigned)e->element[1]->integer, host, port) < 0)
            return false;
        for (size_t k = 3; k < e->elements; k++) /* replicas: places to ask next time */
            if (parse_node_entry(e->element[k], from, host, &port))
                remember_addr(c, host, port);
    }
    return redis_slot_map_covered(&c->next) > 0;
}

static void install_map(struct redis_cluster *c)
{
    bool changed = !c->map_loaded ||
                   memcmp(c->map.owner, c->next.owner, sizeof(c->map.owner)) != 0 ||
                   c->map.nnodes != c->next.nnodes;
    for (unsigned i = 0; !changed && i < c->map.nnodes; i++)
        changed = c->map.nodes[i].port != c->next.nodes[i].port ||
                  strcmp(c->map.nodes[i].host, c->next.nodes[i].host) != 0;
    c->map = c->next;
    c->map_loaded = true;
    c->stats.slot_map_loads++;
    for (unsigned i = 0; i < c->map.nnodes; i++) {
        remember_addr(c, c->map.nodes[i].host, c->map.nodes[i].port);
        c->by_index[i] = node_get(c, c->map.nodes[i].host, c->map.nodes[i].port,
                                  c->cfg.mode == REDIS_LINK_COMMAND);
    }
    if (changed) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%u masters, %u slots covered", c->map.nnodes,
                 redis_slot_map_covered(&c->map));
        rc_emit_event(c, REDIS_LINK_EV_SLOT_MAP, detail);
    }
}

static void refresh_reply_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct cnode *n = ctx;
    struct redis_cluster *c = n->c;
    if (c->refresh_node != n)
        return;
    c->refresh_node = NULL;
    evtimer_del(c->refresh_timer);
    c->last_refresh_ms = clock_mono_ms();
    if (result == REDIS_LINK_REPLY && parse_slots(c, reply, n)) {
        install_map(c);
    } else {
        c->addr_next++; /* ask someone else next time */
        c->refresh_wanted = true;
    }
    /* what waited for this map: the retries of TRYAGAIN/CLUSTERDOWN */
    counted_list_splice_head(&c->requeue, &c->later);
    rc_kick_soon(c);
}

/* The node to ask: a connected master first, else the next remembered address in turn. */
static struct cnode *refresh_target(struct redis_cluster *c)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->cmd != NULL && redis_node_connected(c->nodes[i]->cmd) &&
            node_is_master(c, c->nodes[i]))
            return c->nodes[i];
    for (size_t tries = 0; tries < c->naddrs; tries++) {
        size_t i = c->addr_next++ % c->naddrs;
        struct cnode *n = node_get(c, c->addrs[i].host, c->addrs[i].port, true);
        if (n != NULL)
            return n;
    }
    return NULL;
}

static void refresh_start(struct redis_cluster *c)
{
    if (c->refresh_node != NULL || c->freeing)
        return;
    c->refresh_wanted = false;
    struct cnode *n = refresh_target(c);
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    if (n == NULL ||
        redis_node_command_argv(n->cmd, 2, argv, NULL, 0, refresh_reply_cb, n) != SIOC_OK) {
        c->refresh_wanted = true;
        struct timeval tv = {.tv_sec = 0, .tv_usec = REDIS_CLUSTER_REFRESH_MS * 1000};
        evtimer_add(c->refresh_timer, &tv);
        return;
    }
    c->refresh_node = n;
    /* no answer within the connect timeout: that node is away, try the next */
    unsigned ms = c->cfg.connect_timeout_ms;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->refresh_timer, &tv);
}

static void refresh_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_cluster *c = arg;
    if (c->refresh_node != NULL) { /* timed out */
        redis_node_cancel(c->refresh_node->cmd, c->refresh_node);
        c->refresh_node = NULL;
        c->addr_next++;
        rc_kick_soon(c); /* gc, and the next attempt */
    }
    refresh_start(c);
}

/* ---- deferred work ---- */

/* Something waits for a master the map does not give yet (a failover in progress). */
static bool waiting(const struct redis_cluster *c)
{
    return c->queue.count > 0 || c->later.count > 0 || !rc_cluster_up(c);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_cluster *c = arg;
    if (c->map_loaded)
        for (unsigned i = 0; i < c->map.nnodes; i++)
            if (c->by_index[i] == NULL)
                c->by_index[i] = node_get(c, c->map.nodes[i].host, c->map.nodes[i].port,
                                          c->cfg.mode == REDIS_LINK_COMMAND);
    /* redirected and retried commands go first, in the order they were answered */
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->requeue.head)
    {
        struct ccmd *m = ccmd_of(pos);
        m->qnode = route_node(c, m);
        if (m->qnode != NULL)
            m->qnode->queued++;
        else
            c->unrouted++;
    }
    counted_list_splice_head(&c->queue, &c->requeue);
    if (c->cfg.mode == REDIS_LINK_SUBSCRIBER && c->map_loaded) {
        rc_home_sync(c);
        rc_shards_sync(c);
    }
    flush_queue(c);
    nodes_gc(c);
    rc_update_state(c);
    if (c->refresh_wanted || waiting(c))
        rc_refresh_soon(c);
}

/* ---- public ---- */

struct redis_cluster *redis_cluster_new(struct event_base *base,
                                        const struct redis_link_config *cfg,
                                        const struct redis_url *url)
{
    if (!url->cluster || (url->tls && cfg->tls == NULL))
        return NULL;
    struct redis_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    counted_list_init(&c->queue);
    counted_list_init(&c->requeue);
    counted_list_init(&c->later);
    counted_list_init(&c->inflight);
    c->base = base;
    redis_url_copy(&c->url, url);
    c->cfg = *cfg;
    c->cfg.url = NULL;
    if (c->cfg.connect_timeout_ms == 0)
        c->cfg.connect_timeout_ms = REDIS_LINK_DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->cfg.queue_limit_bytes == 0)
        c->cfg.queue_limit_bytes = REDIS_LINK_DEFAULT_QUEUE_LIMIT;
    if (cfg->mode == REDIS_LINK_SUBSCRIBER && cfg->probe_channel != NULL && cfg->probe_channel[0])
        c->probe_channel = strdup(cfg->probe_channel);
    c->cfg.probe_channel = c->probe_channel;
    for (int i = 0; i < url->nseeds; i++)
        remember_addr(c, url->seeds[i].host, url->seeds[i].port);
    c->kick = evtimer_new(base, kick_cb, c);
    c->refresh_timer = evtimer_new(base, refresh_timer_cb, c);
    if (c->kick == NULL || c->refresh_timer == NULL ||
        (cfg->mode == REDIS_LINK_SUBSCRIBER && cfg->probe_channel != NULL &&
         cfg->probe_channel[0] && c->probe_channel == NULL)) {
        redis_cluster_free(c);
        return NULL;
    }
    rc_refresh_soon(c);
    return c;
}

void redis_cluster_free(struct redis_cluster *c)
{
    if (c == NULL)
        return;
    c->freeing = true;
    redis_node_free(c->home);
    for (size_t i = 0; i < c->nnodes; i++)
        node_free(c->nodes[i]);
    ccmd_free_all(&c->queue);
    ccmd_free_all(&c->requeue);
    ccmd_free_all(&c->later);
    ccmd_free_all(&c->inflight);
    rc_subs_free(c);
    if (c->kick != NULL)
        event_free(c->kick);
    if (c->refresh_timer != NULL)
        event_free(c->refresh_timer);
    free(c->probe_channel);
    free(c);
}

bool redis_cluster_connected(const struct redis_cluster *c)
{
    return rc_cluster_up(c);
}

void redis_cluster_disconnect_now(struct redis_cluster *c)
{
    for (size_t i = 0; i < c->nnodes; i++) {
        if (c->nodes[i]->cmd != NULL)
            redis_node_disconnect_now(c->nodes[i]->cmd);
        if (c->nodes[i]->sub != NULL)
            redis_node_disconnect_now(c->nodes[i]->sub);
    }
    if (c->home != NULL)
        redis_node_disconnect_now(c->home);
}

static void add_stats(struct redis_link_stats *out, const struct redis_node *l)
{
    if (l == NULL)
        return;
    struct redis_link_stats s;
    redis_node_get_stats(l, &s);
    out->connects += s.connects;
    out->disconnects += s.disconnects;
    out->connect_failures += s.connect_failures;
    out->commands_sent += s.commands_sent;
    out->messages_received += s.messages_received;
    out->liveness_timeouts += s.liveness_timeouts;
}

void redis_cluster_get_stats(const struct redis_cluster *c, struct redis_link_stats *out)
{
    *out = c->stats;
    for (size_t i = 0; i < c->nnodes; i++) {
        add_stats(out, c->nodes[i]->cmd);
        add_stats(out, c->nodes[i]->sub);
    }
    add_stats(out, c->home);
    out->queue_bytes = c->queue.bytes;
    out->queue_commands = c->queue.count;
}

static bool command_forbidden(const char *name, size_t len)
{
    static const char *const names[] = {"subscribe",    "psubscribe",   "ssubscribe", "unsubscribe",
                                        "punsubscribe", "sunsubscribe", "monitor",    "reset"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return true;
    return false;
}

/* One allocation: the struct, argv pointers, lengths, then the bytes. */
static struct ccmd *ccmd_new(int argc, const char *const *argv, const size_t *lens)
{
    size_t total = 0;
    for (int i = 0; i < argc; i++) {
        if (lens[i] > SIZE_MAX / 4 || total > SIZE_MAX / 4)
            return NULL;
        total += lens[i] + 1;
    }
    size_t head = sizeof(struct ccmd) + (size_t)argc * (sizeof(char *) + sizeof(size_t));
    struct ccmd *m = calloc(1, head + total);
    if (m == NULL)
        return NULL;
    m->argc = argc;
    m->argv = (const char **)(m + 1);
    m->lens = (size_t *)(m->argv + argc);
    char *p = (char *)(m->lens + argc);
    for (int i = 0; i < argc; i++) {
        if (lens[i] > 0)
            memcpy(p, argv[i], lens[i]);
        p[lens[i]] = '\0';
        m->argv[i] = p;
        m->lens[i] = lens[i];
        p += lens[i] + 1;
    }
    m->node.bytes = total + (size_t)argc * 16; /* about its RESP size, for the queue limit */
    return m;
}

int redis_cluster_command_argv(struct redis_cluster *c, int argc, const char *const *argv,
                               const size_t *argvlen, unsigned flags, redis_link_reply_cb *reply_cb,
                               void *ctx)
{
    if (c->cfg.mode != REDIS_LINK_COMMAND || argc < 1 || argv == NULL)
        return SIOC_EINVAL;
    size_t lens_buf[REDIS_LINK_MAX_ARGS];
    const size_t *lens = argvlen;
    if (lens == NULL) {
        if (argc > REDIS_LINK_MAX_ARGS)
            return SIOC_EINVAL;
        for (int i = 0; i < argc; i++)
            lens_buf[i] = strlen(argv[i]);
        lens = lens_buf;
    }
    if (command_forbidden(argv[0], lens[0]))
        return SIOC_EINVAL;
    int index;
    enum redis_route_kind route = redis_command_route(argc, argv, lens, &index);
    if (route == REDIS_ROUTE_REFUSE)
        return SIOC_EINVAL;
    struct ccmd *m = ccmd_new(argc, argv, lens);
    if (m == NULL)
        return SIOC_ENOMEM;
    m->c = c;
    m->reply_cb = reply_cb;
    m->ctx = ctx;
    m->flags = flags;
    m->route = route;
    m->slot = route == REDIS_ROUTE_KEY ? redis_key_slot(argv[index], lens[index]) : 0;
    struct cnode *n = route_node(c, m);
    if (!c->held && n != NULL && n->queued == 0 && c->unrouted == 0 && dispatch(c, m))
        return SIOC_OK;
    if (c->queue.bytes + m->node.bytes > c->cfg.queue_limit_bytes) {
        free(m);
        c->stats.commands_refused++;
        c->room_wanted = true;
        if (!c->full_reported) {
            c->full_reported = true;
            rc_emit_event(c, REDIS_LINK_EV_QUEUE_FULL,
                          "redis cluster queue full while a master is away");
        }
        return SIOC_ETOOBIG;
    }
    queue_add(c, m);
    c->stats.commands_queued++;
    if (!c->map_loaded || n == NULL)
        rc_refresh_soon(c);
    return SIOC_OK;
}

static size_t cancel_in(struct counted_list *l, const void *ctx)
{
    size_t n = 0;
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &l->head)
    {
        struct ccmd *m = ccmd_of(pos);
        if (m->ctx == ctx && m->reply_cb != NULL) {
            m->reply_cb = NULL;
            n++;
        }
    }
    return n;
}

size_t redis_cluster_cancel(struct redis_cluster *c, const void *ctx)
{
    return cancel_in(&c->queue, ctx) + cancel_in(&c->requeue, ctx) + cancel_in(&c->later, ctx) +
           cancel_in(&c->inflight, ctx);
}

void redis_cluster_hold(struct redis_cluster *c, bool hold)
{
    if (c->cfg.mode != REDIS_LINK_COMMAND || c->held == hold)
        return;
    c->held = hold;
    if (!hold)
        flush_queue(c);
}

size_t redis_cluster_queue_room(const struct redis_cluster *c)
{
    if (rc_cluster_up(c) && !c->held && c->queue.count == 0)
        return SIZE_MAX;
    size_t limit = c->cfg.queue_limit_bytes;
    return c->queue.bytes >= limit ? 0 : limit - c->queue.bytes;
}

unsigned redis_cluster_masters(const struct redis_cluster *c)
{
    return c->map_loaded ? c->map.nnodes : 0;
}

int redis_cluster_slot_master(const struct redis_cluster *c, unsigned slot, char *out, size_t n)
{
    struct cnode *node = rc_slot_node(c, slot);
    if (node == NULL)
        return -1;
    snprintf(out, n, "%s:%d", node->host, node->port);
    return redis_slot_map_owner(&c->map, slot);
}
