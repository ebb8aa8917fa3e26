/* redis_node.c: one connection to one Redis server (redis_node.h): reconnects, the ordered
 * outage queue, retries and subscriptions, over one common/net/redis_conn at a time (the
 * transport: socket, optional TLS, hiredis's reply reader). URLs and RESP encoding are
 * common/redis_proto (pure). Replies arrive in the order the commands were written, so each one
 * pairs with the head of `inflight` (after the handshake's own replies). Every path that loses a
 * connection funnels into conn_gone(), which frees it, settles the commands in flight and
 * schedules the next attempt; nothing touches a connection after that. Calls nothing above it
 * (redis_link, redis_cluster): owners hear from it only through their callbacks.
 */
#include "common/clock.h"
#include "common/net/redis_node.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "common/counted_list.h"
#include "common/error.h"
#include "common/net/redis_conn.h"

/* One command, from redis_node_command_argv until its reply (or loss) has been handled. */
struct cmd {
    /* in queue, requeue or inflight; node.bytes is the RESP length, kept for queue accounting
     * even after `data` is released */
    struct counted_node node;
    struct redis_node *link;
    redis_link_reply_cb *reply_cb; /* NULL once cancelled */
    void *ctx;
    unsigned flags;
    char *data; /* RESP-encoded; released once written unless REDIS_LINK_RETRY needs it again */
};

/* The desired subscription set: few entries (a handful per namespace), so a plain array. */
struct name_set {
    char **names;
    size_t count, cap;
};

struct redis_node {
    struct event_base *base;
    enum redis_link_mode mode;
    struct redis_url url;
    struct redis_tls *tls; /* rediss:// only; borrowed */
    char *probe_channel;
    unsigned connect_timeout_ms, backoff_min_ms, backoff_max_ms, backoff_ms, liveness_timeout_ms;
    size_t queue_limit;
    uint64_t rng;

    void *ctx;
    void (*on_state_cb)(void *ctx, bool connected);
    void (*on_message_cb)(void *ctx, struct slice pattern, struct slice channel,
                          struct slice payload);
    void (*on_event_cb)(void *ctx, enum redis_link_event ev, const char *detail);
    void (*on_room_cb)(void *ctx);
    void (*on_shard_lost_cb)(void *ctx, struct slice channel, const char *error);

    struct redis_conn *conn; /* NULL between attempts */
    int handshake_left;      /* replies to AUTH/SELECT/PING still expected on `conn` */
    bool ready;              /* handshake done and not known to be going away */
    bool reported_up;        /* on_state_cb(true) was the last state reported */
    bool freeing;            /* inside redis_node_free: no user callback any more */
    bool room_wanted;        /* a command was refused: call on_room_cb after the next flush */
    bool full_reported;      /* REDIS_LINK_EV_QUEUE_FULL already reported for this outage */
    bool held;               /* command: redis_node_hold; the queue is not written meanwhile */
    size_t confirms_due;     /* subscriber: resubscription confirmations still to come */
    int callback_depth;      /* user callbacks on the stack; redis_node_free asserts it is 0 */
    uint64_t last_rx_ms;

    struct event *reconnect_timer, *connect_timer, *liveness_timer;
    struct counted_list queue;    /* not yet written, in order */
    struct counted_list requeue;  /* REDIS_LINK_RETRY commands lost in the current drop, in order */
    struct counted_list inflight; /* written, reply pending, in order */
    struct name_set channels, patterns, shards;
    struct redis_link_stats stats;
};

/* ---- small helpers ---- */

/* xorshift64*: the caller seeds it, so tests are reproducible and no global state is used. */
static uint64_t rng_next(struct redis_node *l)
{
    uint64_t x = l->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    l->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static struct timeval tv_ms(unsigned ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000u),
                         .tv_usec = (suseconds_t)(ms % 1000u) * 1000};
    return tv;
}

/* The command of a node of queue, requeue or inflight (NULL for NULL). */
static struct cmd *cmd_of(struct counted_node *n)
{
    return container_of_or_null(n, struct cmd, node);
}

static void cmd_free(struct cmd *c)
{
    free(c->data);
    free(c);
}

static void cmd_free_all(struct counted_list *list)
{
    struct counted_node *n;
    while ((n = counted_list_pop_head(list)) != NULL)
        cmd_free(cmd_of(n));
}

static size_t set_find(const struct name_set *set, const char *name)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->names[i], name) == 0)
            return i;
    return SIZE_MAX;
}

static int set_add(struct name_set *set, const char *name)
{
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        char **grown = realloc(set->names, cap * sizeof(*grown));
        if (grown == NULL)
            return SIOC_ENOMEM;
        set->names = grown;
        set->cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        return SIOC_ENOMEM;
    set->names[set->count++] = copy;
    return SIOC_OK;
}

static void set_remove_at(struct name_set *set, size_t i)
{
    free(set->names[i]);
    set->names[i] = set->names[--set->count];
}

static void set_free(struct name_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        free(set->names[i]);
    free(set->names);
    memset(set, 0, sizeof(*set));
}

/* ---- user callbacks: counted so redis_node_free can refuse to run underneath them ---- */

static void emit_event(struct redis_node *l, enum redis_link_event ev, const char *detail)
{
    if (l->on_event_cb == NULL || l->freeing)
        return;
    l->callback_depth++;
    l->on_event_cb(l->ctx, ev, detail != NULL ? detail : "");
    l->callback_depth--;
}

static void emit_state(struct redis_node *l, bool up)
{
    if (l->reported_up == up || l->freeing)
        return;
    l->reported_up = up;
    if (l->on_state_cb == NULL)
        return;
    l->callback_depth++;
    l->on_state_cb(l->ctx, up);
    l->callback_depth--;
}

static void deliver_reply(struct redis_node *l, struct cmd *c, const redisReply *reply,
                          enum redis_link_result result)
{
    if (c->reply_cb == NULL || l->freeing)
        return;
    l->callback_depth++;
    c->reply_cb(c->ctx, reply, result);
    l->callback_depth--;
}

/* ---- connection lifecycle ---- */

static void schedule_reconnect(struct redis_node *l)
{
    unsigned d = l->backoff_ms;
    /* Jitter in [d/2, d]: gateways that lost the same Redis do not all come back in lockstep. */
    unsigned delay = d / 2 + (unsigned)(rng_next(l) % (d - d / 2 + 1));
    l->backoff_ms = d >= l->backoff_max_ms / 2 ? l->backoff_max_ms : d * 2;
    struct timeval tv = tv_ms(delay);
    evtimer_add(l->reconnect_timer, &tv);
}

/* The connection is lost, failed, or dropped by us: free it (its own callbacks may be on the
 * stack: redis_conn defers the memory), settle the commands in flight in order (RETRY ones go
 * back in front of the queue, the others are reported lost), report, and schedule the next
 * attempt. */
static void conn_gone(struct redis_node *l, const char *reason)
{
    redis_conn_free(l->conn);
    l->conn = NULL;
    l->ready = false;
    l->handshake_left = 0;
    evtimer_del(l->connect_timer);
    struct cmd *c;
    /* One at a time off `inflight`: a LOST callback may cancel (redis_node_cancel) the others. */
    while ((c = cmd_of(counted_list_pop_head(&l->inflight))) != NULL) {
        if (!l->freeing && (c->flags & REDIS_LINK_RETRY) != 0) {
            l->stats.commands_retried++;
            counted_list_push_tail(&l->requeue, &c->node);
            continue;
        }
        if (!l->freeing)
            l->stats.commands_lost++;
        deliver_reply(l, c, NULL, REDIS_LINK_LOST); /* new commands from here queue */
        cmd_free(c);
    }
    /* Commands lost in flight with REDIS_LINK_RETRY were sent before anything still queued. */
    counted_list_splice_head(&l->queue, &l->requeue);
    if (l->freeing)
        return;
    if (l->reported_up) {
        l->stats.disconnects++;
        emit_event(l, REDIS_LINK_EV_DISCONNECTED, reason);
        emit_state(l, false);
    } else {
        l->stats.connect_failures++;
    }
    schedule_reconnect(l);
}

/* Drops the connection now (from anywhere, its callbacks included). */
static void link_drop(struct redis_node *l, const char *reason)
{
    if (l->conn != NULL)
        conn_gone(l, reason);
}

/* Encodes and writes one command of NUL-terminated strings on the connection (handshake and
 * subscriptions; the owner's commands are encoded once, in redis_node_command_argv). */
static bool conn_send(struct redis_node *l, int argc, const char *const *argv)
{
    size_t *lens = malloc((size_t)argc * sizeof(*lens)); /* a whole (P)SUBSCRIBE set: any argc */
    if (lens == NULL)
        return false;
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    size_t bound = redis_command_bound(argc, lens);
    char *data = bound != 0 ? malloc(bound) : NULL;
    bool ok = data != NULL &&
              redis_conn_write(l->conn, data, redis_command_encode(data, argc, argv, lens));
    free(data);
    free(lens);
    return ok;
}

static bool send_cmd(struct redis_node *l, struct cmd *c, struct counted_list *from);
static void resubscribe(struct redis_node *l);
static void sub_reply(struct redis_node *l, const redisReply *reply);

/* DESIGN.md §3.2: queued entries are written, in order, before any new command; not while
 * the owner holds the link. */
static void flush_queue(struct redis_node *l)
{
    struct cmd *c;
    while (l->ready && !l->held && (c = cmd_of(counted_list_first(&l->queue))) != NULL) {
        if (!send_cmd(l, c, &l->queue)) { /* it stays at the head of the queue */
            link_drop(l, "out of memory");
            break;
        }
    }
}

/* After a refusal, tells the owner once the queue is written. */
static void room_if_wanted(struct redis_node *l)
{
    if (l->ready && !l->held && l->room_wanted && l->queue.count == 0 && l->on_room_cb != NULL) {
        l->room_wanted = false;
        l->callback_depth++;
        l->on_room_cb(l->ctx);
        l->callback_depth--;
    }
}

static void become_ready(struct redis_node *l)
{
    l->ready = true;
    l->full_reported = false;
    l->backoff_ms = l->backoff_min_ms;
    l->last_rx_ms = clock_mono_ms();
    l->stats.connects++;
    evtimer_del(l->connect_timer);
    if (l->mode == REDIS_LINK_COMMAND)
        flush_queue(l);
    else
        resubscribe(l);
    char hostport[300];
    snprintf(hostport, sizeof(hostport), "%s:%d", l->url.host, l->url.port);
    if (l->ready)
        emit_event(l, REDIS_LINK_EV_CONNECTED, hostport);
    /* a subscriber is usable once Redis has confirmed its subscriptions (sub_reply) */
    if (l->ready && l->confirms_due == 0)
        emit_state(l, true);
    room_if_wanted(l);
}

/* TCP (and TLS) is up: AUTH, SELECT, then PING, pipelined; the PING's reply proves that AUTH and
 * SELECT went through. */
static void conn_open_cb(void *ctx)
{
    struct redis_node *l = ctx;
    bool ok = true;
    l->handshake_left = 0;
    if (l->url.password != NULL) {
        /* Redis 6 ACL: AUTH user password; without a user, the legacy AUTH password */
        const char *argv[3] = {"AUTH", l->url.user, l->url.password};
        if (l->url.user == NULL) {
            argv[1] = l->url.password;
            ok = conn_send(l, 2, argv);
        } else {
            ok = conn_send(l, 3, argv);
        }
        l->handshake_left++;
    }
    if (l->url.db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", l->url.db);
        const char *argv[2] = {"SELECT", db};
        ok = ok && conn_send(l, 2, argv);
        l->handshake_left++;
    }
    const char *ping[1] = {"PING"};
    ok = ok && conn_send(l, 1, ping);
    l->handshake_left++;
    if (!ok)
        link_drop(l, "out of memory");
}

static void conn_reply_cb(void *ctx, struct redisReply *reply)
{
    struct redis_node *l = ctx;
    if (l->handshake_left > 0) {
        /* AUTH, SELECT or PING: any error (NOAUTH, WRONGPASS, a bad db) makes it useless */
        if (reply->type == REDIS_REPLY_ERROR) {
            emit_event(l, REDIS_LINK_EV_HANDSHAKE_ERROR, reply->str);
            link_drop(l, "handshake error");
            return;
        }
        if (--l->handshake_left == 0)
            become_ready(l);
        return;
    }
    if (l->mode == REDIS_LINK_SUBSCRIBER) {
        sub_reply(l, reply);
        return;
    }
    struct cmd *c = cmd_of(counted_list_pop_head(&l->inflight));
    if (c == NULL) {
        link_drop(l, "reply without a command");
        return;
    }
    deliver_reply(l, c, reply, REDIS_LINK_REPLY);
    cmd_free(c);
}

static void conn_error_cb(void *ctx, const char *reason)
{
    struct redis_node *l = ctx;
    char detail[320];
    /* A TLS port closes on a plain client's first command: say what is likely wrong. */
    snprintf(detail, sizeof(detail), "%s%s", reason,
             !l->url.tls && l->handshake_left > 0 ? " (a TLS port? use rediss://)" : "");
    if (!l->ready) /* refused, unreachable, TLS handshake or verification failed, closed early */
        emit_event(l, REDIS_LINK_EV_CONNECT_FAILED, detail);
    conn_gone(l, detail);
}

static void reconnect_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_node *l = arg;
    char err[256];
    struct redis_conn_config cc = {
        .host = l->url.host, /* a name is resolved blocking: use an address in production */
        .port = l->url.port,
        .tls = l->url.tls ? l->tls : NULL,
        .ctx = l,
        .on_open_cb = conn_open_cb,
        .on_reply_cb = conn_reply_cb,
        .on_error_cb = conn_error_cb,
    };
    l->conn = redis_conn_new(l->base, &cc, err, sizeof(err));
    if (l->conn == NULL) {
        emit_event(l, REDIS_LINK_EV_CONNECT_FAILED, err);
        l->stats.connect_failures++;
        schedule_reconnect(l);
        return;
    }
    /* Bounds the TCP connect, the TLS handshake and AUTH/SELECT/PING together. */
    struct timeval tv = tv_ms(l->connect_timeout_ms);
    evtimer_add(l->connect_timer, &tv);
}

static void connect_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_node *l = arg;
    if (l->conn == NULL || l->ready)
        return;
    /* A plain Redis port waits for the end of a "line" that a ClientHello never sends. */
    const char *detail = l->handshake_left > 0 ? "connect timeout: no answer to AUTH/SELECT/PING"
                         : l->url.tls ? "connect timeout: TCP connect or TLS handshake not done "
                                        "(a plain Redis port?)"
                                      : "connect timeout";
    emit_event(l, REDIS_LINK_EV_CONNECT_TIMEOUT, detail);
    link_drop(l, detail);
}

static void liveness_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_node *l = arg;
    if (!l->ready || clock_mono_ms() - l->last_rx_ms < l->liveness_timeout_ms)
        return;
    /* Issue 4: a subscription can stop delivering without the socket failing; replace it. */
    l->stats.liveness_timeouts++;
    emit_event(l, REDIS_LINK_EV_LIVENESS_TIMEOUT, "no pub/sub traffic");
    link_drop(l, "liveness timeout");
}

void redis_node_touch(struct redis_node *l)
{
    l->last_rx_ms = clock_mono_ms();
}

/* ---- public: lifetime ---- */

struct redis_node *redis_node_new(struct event_base *base, const struct redis_link_config *cfg,
                                  const struct redis_url *url)
{
    if (url->cluster || (url->tls && cfg->tls == NULL))
        return NULL;
    struct redis_node *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    counted_list_init(&l->queue);
    counted_list_init(&l->requeue);
    counted_list_init(&l->inflight);
    redis_url_copy(&l->url, url);
    l->tls = cfg->tls;
    l->base = base;
    l->mode = cfg->mode;
    l->connect_timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : REDIS_LINK_DEFAULT_CONNECT_TIMEOUT_MS;
    l->backoff_min_ms =
        cfg->backoff_min_ms ? cfg->backoff_min_ms : REDIS_LINK_DEFAULT_BACKOFF_MIN_MS;
    l->backoff_max_ms =
        cfg->backoff_max_ms ? cfg->backoff_max_ms : REDIS_LINK_DEFAULT_BACKOFF_MAX_MS;
    if (l->backoff_max_ms < l->backoff_min_ms)
        l->backoff_max_ms = l->backoff_min_ms;
    l->backoff_ms = l->backoff_min_ms;
    l->queue_limit =
        cfg->queue_limit_bytes ? cfg->queue_limit_bytes : REDIS_LINK_DEFAULT_QUEUE_LIMIT;
    l->rng = cfg->jitter_seed ? cfg->jitter_seed : 0x9E3779B97F4A7C15ULL; /* xorshift needs != 0 */
    l->liveness_timeout_ms = cfg->mode == REDIS_LINK_SUBSCRIBER ? cfg->liveness_timeout_ms : 0;
    l->ctx = cfg->ctx;
    l->on_state_cb = cfg->on_state_cb;
    l->on_message_cb = cfg->on_message_cb;
    l->on_event_cb = cfg->on_event_cb;
    l->on_room_cb = cfg->on_room_cb;
    l->on_shard_lost_cb = cfg->on_shard_lost_cb;
    l->reconnect_timer = evtimer_new(base, reconnect_timer_cb, l);
    l->connect_timer = evtimer_new(base, connect_timer_cb, l);
    if (l->liveness_timeout_ms != 0)
        l->liveness_timer = event_new(base, -1, EV_PERSIST, liveness_timer_cb, l);
    if (cfg->mode == REDIS_LINK_SUBSCRIBER && cfg->probe_channel != NULL && cfg->probe_channel[0])
        l->probe_channel = strdup(cfg->probe_channel);
    if (l->reconnect_timer == NULL || l->connect_timer == NULL ||
        (l->liveness_timeout_ms != 0 && l->liveness_timer == NULL) ||
        (cfg->mode == REDIS_LINK_SUBSCRIBER && cfg->probe_channel != NULL &&
         cfg->probe_channel[0] && l->probe_channel == NULL)) {
        redis_node_free(l);
        return NULL;
    }
    if (l->liveness_timer != NULL) {
        /* Checking 4 times per timeout bounds detection to 1.25 x the timeout. */
        struct timeval tv = tv_ms(l->liveness_timeout_ms / 4 ? l->liveness_timeout_ms / 4 : 1);
        event_add(l->liveness_timer, &tv);
    }
    struct timeval zero = {0, 0};
    evtimer_add(l->reconnect_timer, &zero);
    return l;
}

void redis_node_free(struct redis_node *l)
{
    if (l == NULL)
        return;
    /* The connection's callbacks would run on a freed link. */
    assert(l->callback_depth == 0 &&
           "redis_link_free (redis_node_free) called from inside a link callback");
    l->freeing = true;
    redis_conn_free(l->conn);
    l->conn = NULL;
    cmd_free_all(&l->queue);
    cmd_free_all(&l->requeue);
    cmd_free_all(&l->inflight);
    set_free(&l->channels);
    set_free(&l->patterns);
    set_free(&l->shards);
    if (l->reconnect_timer != NULL)
        event_free(l->reconnect_timer);
    if (l->connect_timer != NULL)
        event_free(l->connect_timer);
    if (l->liveness_timer != NULL)
        event_free(l->liveness_timer);
    free(l->probe_channel);
    free(l);
}

bool redis_node_connected(const struct redis_node *l)
{
    return l->ready;
}

void redis_node_disconnect_now(struct redis_node *l)
{
    link_drop(l, "disconnected by owner");
}

void redis_node_get_stats(const struct redis_node *l, struct redis_link_stats *out)
{
    *out = l->stats;
    out->queue_bytes = l->queue.bytes;
    out->queue_commands = l->queue.count;
}

/* ---- COMMAND mode ---- */

/* Writes one command on the connection; its reply will pair with it in `inflight`. Once
 * written, it leaves `from` (the list it is in, or NULL for none) for the tail of `inflight`; if
 * the write fails it stays where it is. */
static bool send_cmd(struct redis_node *l, struct cmd *c, struct counted_list *from)
{
    if (!redis_conn_write(l->conn, c->data, c->node.bytes))
        return false;
    if (from != NULL)
        counted_list_remove(from, &c->node);
    counted_list_push_tail(&l->inflight, &c->node);
    l->stats.commands_sent++;
    if ((c->flags & REDIS_LINK_RETRY) == 0) {
        free(c->data);
        c->data = NULL;
    }
    return true;
}

/* Commands that would turn this connection into something whose replies no longer pair with
 * our commands. */
static bool command_forbidden(const char *name, size_t len)
{
    static const char *const names[] = {"subscribe",    "psubscribe",   "ssubscribe", "unsubscribe",
                                        "punsubscribe", "sunsubscribe", "monitor",    "reset"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return true;
    return false;
}

int redis_node_command_argv(struct redis_node *l, int argc, const char *const *argv,
                            const size_t *argvlen, unsigned flags, redis_link_reply_cb *reply_cb,
                            void *ctx)
{
    if (l->mode != REDIS_LINK_COMMAND || argc < 1 || argv == NULL)
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
    size_t total = redis_command_bound(argc, lens);
    if (total == 0)
        return SIOC_ETOOBIG;
    if (command_forbidden(argv[0], lens[0]))
        return SIOC_EINVAL;
    char *data = malloc(total);
    if (data == NULL)
        return SIOC_ENOMEM;
    size_t len = redis_command_encode(data, argc, argv, lens);
    if ((!l->ready || l->held) && l->queue.bytes + len > l->queue_limit) {
        free(data);
        l->stats.commands_refused++;
        l->room_wanted = true;
        if (!l->full_reported) {
            l->full_reported = true;
            emit_event(l, REDIS_LINK_EV_QUEUE_FULL, "redis queue full while disconnected");
        }
        return SIOC_ETOOBIG;
    }
    struct cmd *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        free(data);
        return SIOC_ENOMEM;
    }
    c->link = l;
    c->reply_cb = reply_cb;
    c->ctx = ctx;
    c->flags = flags;
    c->node.bytes = len;
    c->data = data;
    if (l->ready && !l->held && l->queue.count == 0 && send_cmd(l, c, NULL))
        return SIOC_OK;
    counted_list_push_tail(&l->queue, &c->node);
    l->stats.commands_queued++;
    return SIOC_OK;
}

static size_t cancel_in(struct counted_list *list, const void *ctx)
{
    size_t n = 0;
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &list->head)
    {
        struct cmd *c = container_of(pos, struct cmd, node.link);
        if (c->ctx == ctx && c->reply_cb != NULL) {
            c->reply_cb = NULL;
            n++;
        }
    }
    return n;
}

size_t redis_node_cancel(struct redis_node *l, const void *ctx)
{
    return cancel_in(&l->queue, ctx) + cancel_in(&l->requeue, ctx) + cancel_in(&l->inflight, ctx);
}

void redis_node_hold(struct redis_node *l, bool hold)
{
    if (l->mode != REDIS_LINK_COMMAND || l->held == hold)
        return;
    l->held = hold;
    flush_queue(l);
    room_if_wanted(l);
}

size_t redis_node_queue_room(const struct redis_node *l)
{
    if (l->ready && !l->held)
        return SIZE_MAX;
    return l->queue.bytes >= l->queue_limit ? 0 : l->queue_limit - l->queue.bytes;
}

/* ---- SUBSCRIBER mode ---- */

static bool reply_is_string(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

static struct slice reply_slice(const redisReply *r)
{
    return (struct slice){(const uint8_t *)r->str, r->len};
}

/* Every push for our channels and patterns: (p)subscribe confirmations and messages. */
/* A shard channel dropped by Redis (unsolicited `sunsubscribe`: its slot moved) or an SSUBSCRIBE
 * refused (an error reply: channel empty). */
static void shard_lost(struct redis_node *l, struct slice channel, const char *error)
{
    if (channel.len > 0) {
        char name[512];
        if (channel.len >= sizeof(name))
            return;
        memcpy(name, channel.p, channel.len);
        name[channel.len] = '\0';
        size_t at = set_find(&l->shards, name);
        if (at == SIZE_MAX)
            return; /* the answer to our own SUNSUBSCRIBE */
        set_remove_at(&l->shards, at);
    }
    if (l->on_shard_lost_cb == NULL || l->freeing)
        return;
    l->callback_depth++;
    l->on_shard_lost_cb(l->ctx, channel, error);
    l->callback_depth--;
}

static void sub_reply(struct redis_node *l, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        /* a refused SSUBSCRIBE (MOVED, CLUSTERDOWN): it counts as answered */
        if (l->confirms_due > 0 && --l->confirms_due == 0 && l->ready)
            emit_state(l, true);
        shard_lost(l, (struct slice){(const uint8_t *)"", 0}, reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    l->last_rx_ms = clock_mono_ms();
    const redisReply *kind = reply->element[0];
    if (!reply_is_string(kind))
        return;
    struct slice pattern = {(const uint8_t *)"", 0}, channel, payload; /* never a NULL p */
    if (reply->elements == 3 &&
        (strcmp(kind->str, "message") == 0 || strcmp(kind->str, "smessage") == 0)) {
        channel = reply_slice(reply->element[1]);
        payload = reply_slice(reply->element[2]);
        if (!reply_is_string(reply->element[1]) || !reply_is_string(reply->element[2]))
            return;
    } else if (reply->elements == 4 && strcmp(kind->str, "pmessage") == 0) {
        pattern = reply_slice(reply->element[1]);
        channel = reply_slice(reply->element[2]);
        payload = reply_slice(reply->element[3]);
        if (!reply_is_string(reply->element[1]) || !reply_is_string(reply->element[2]) ||
            !reply_is_string(reply->element[3]))
            return;
    } else {
        /* a (p)(un)subscribe confirmation: it proves liveness, and the last one of the
         * resubscription makes the link usable (those come first: Redis answers in order) */
        bool subscribed = strcmp(kind->str, "subscribe") == 0 ||
                          strcmp(kind->str, "psubscribe") == 0 ||
                          strcmp(kind->str, "ssubscribe") == 0;
        if (subscribed && l->confirms_due > 0 && --l->confirms_due == 0 && l->ready)
            emit_state(l, true);
        if (strcmp(kind->str, "sunsubscribe") == 0 && reply_is_string(reply->element[1]))
            shard_lost(l, reply_slice(reply->element[1]), NULL);
        return;
    }
    l->stats.messages_received++;
    if (pattern.len == 0 && l->probe_channel != NULL && channel.len == strlen(l->probe_channel) &&
        memcmp(channel.p, l->probe_channel, channel.len) == 0)
        return;
    if (l->on_message_cb == NULL || l->freeing)
        return;
    l->callback_depth++;
    l->on_message_cb(l->ctx, pattern, channel, payload);
    l->callback_depth--;
}

/* Sends `verb name...` for the names of one set (plus an extra name) in a single command. */
static void send_sub_command(struct redis_node *l, const char *verb, const struct name_set *set,
                             const char *extra)
{
    size_t argc = 1 + set->count + (extra != NULL);
    if (argc == 1)
        return;
    const char **argv = malloc(argc * sizeof(*argv));
    if (argv == NULL) {
        /* Without the subscriptions the link is useless; retry the whole connection. */
        link_drop(l, "out of memory");
        return;
    }
    size_t n = 0;
    argv[n++] = verb;
    for (size_t i = 0; i < set->count; i++)
        argv[n++] = set->names[i];
    if (extra != NULL)
        argv[n++] = extra;
    bool ok = conn_send(l, (int)n, argv);
    free(argv);
    if (!ok)
        link_drop(l, "out of memory");
}

static void send_one(struct redis_node *l, const char *verb, const char *name);

static void resubscribe(struct redis_node *l)
{
    l->confirms_due =
        l->channels.count + (l->probe_channel != NULL) + l->patterns.count + l->shards.count;
    send_sub_command(l, "SUBSCRIBE", &l->channels, l->probe_channel);
    if (l->ready)
        send_sub_command(l, "PSUBSCRIBE", &l->patterns, NULL);
    /* one SSUBSCRIBE per channel: on a cluster the channels of one command must share a slot */
    for (size_t i = 0; l->ready && i < l->shards.count; i++)
        send_one(l, "SSUBSCRIBE", l->shards.names[i]);
}

static void send_one(struct redis_node *l, const char *verb, const char *name)
{
    const char *argv[2] = {verb, name};
    if (!conn_send(l, 2, argv))
        link_drop(l, "out of memory");
}

static int set_change(struct redis_node *l, struct name_set *set, const char *name, bool add,
                      const char *verb)
{
    if (l->mode != REDIS_LINK_SUBSCRIBER || name == NULL || name[0] == '\0')
        return SIOC_EINVAL;
    size_t at = set_find(set, name);
    if (add == (at != SIZE_MAX))
        return SIOC_OK;
    if (add) {
        int err = set_add(set, name);
        if (err != SIOC_OK)
            return err;
    }
    /* The probe channel stays subscribed whatever the owner does with the same name. */
    bool is_probe =
        set == &l->channels && l->probe_channel != NULL && strcmp(name, l->probe_channel) == 0;
    if (l->ready && !is_probe)
        send_one(l, verb, name);
    if (!add)
        set_remove_at(set, at);
    return SIOC_OK;
}

int redis_node_subscribe(struct redis_node *l, const char *channel)
{
    return set_change(l, &l->channels, channel, true, "SUBSCRIBE");
}

int redis_node_unsubscribe(struct redis_node *l, const char *channel)
{
    return set_change(l, &l->channels, channel, false, "UNSUBSCRIBE");
}

int redis_node_psubscribe(struct redis_node *l, const char *pattern)
{
    return set_change(l, &l->patterns, pattern, true, "PSUBSCRIBE");
}

int redis_node_punsubscribe(struct redis_node *l, const char *pattern)
{
    return set_change(l, &l->patterns, pattern, false, "PUNSUBSCRIBE");
}

int redis_node_ssubscribe(struct redis_node *l, const char *channel)
{
    return set_change(l, &l->shards, channel, true, "SSUBSCRIBE");
}

int redis_node_sunsubscribe(struct redis_node *l, const char *channel)
{
    return set_change(l, &l->shards, channel, false, "SUNSUBSCRIBE");
}

size_t redis_node_subscription_count(const struct redis_node *l)
{
    return l->channels.count + l->patterns.count + l->shards.count;
}
