/* subscriber.c: the one pub/sub connection of subscriber.h. A SUBSCRIBER redis_link keeps the
 * set of names across reconnects; each name has a route (handler and context) in one name map
 * per kind; the probe is PUBLISHed through the attached COMMAND link. */
#include "gateway/subscriber.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/deadline.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/list.h"
#include "common/namemap.h"
#include "common/net/log.h"
#include "common/net/process.h"
#include "common/net/redis_link.h"
#include "gateway/redis_log.h"

#define SUBSCRIBER_KINDS 3

struct route {
    struct namemap_node node; /* in s->routes[kind], keyed by name */
    struct list_node all;     /* s->all, for subscriber_free */
    subscriber_message_fn *fn;
    void *ctx;
    size_t len;
    char name[]; /* NUL-terminated */
};

struct subscriber {
    struct log *log;
    char *name, *probe_channel;
    struct redis_link *sub;
    struct namemap routes[SUBSCRIBER_KINDS];
    bool maps_ready;
    struct list_node all;
    bool up; /* Redis confirmed the whole set */
    uint64_t unrouted;

    /* the probe (subscriber_attach) */
    struct redis_link *probe_link;
    void (*on_state)(void *ctx, bool up);
    void *state_ctx;
    struct event *probe_timer;
    unsigned probe_interval_ms;
    bool probe_pending;     /* the last probe's PUBLISH is not answered yet */
    uint64_t probe_sent_ms; /* ... sent then (monotonic) */
};

/* ---- routes ---- */

static struct route *route_find(const struct subscriber *s, enum subscriber_kind kind,
                                const void *name, size_t len)
{
    struct namemap_node *n = namemap_find(&s->routes[kind], name, len);
    return n != NULL ? container_of(n, struct route, node) : NULL;
}

static void route_free(struct subscriber *s, enum subscriber_kind kind, struct route *r)
{
    namemap_remove(&s->routes[kind], &r->node);
    list_remove(&r->all);
    free(r);
}

static int link_add(struct subscriber *s, enum subscriber_kind kind, const char *name)
{
    switch (kind) {
    case SUBSCRIBER_PATTERN: return redis_link_psubscribe(s->sub, name);
    case SUBSCRIBER_SHARD: return redis_link_ssubscribe(s->sub, name);
    default: return redis_link_subscribe(s->sub, name);
    }
}

static int link_remove(struct subscriber *s, enum subscriber_kind kind, const char *name)
{
    switch (kind) {
    case SUBSCRIBER_PATTERN: return redis_link_punsubscribe(s->sub, name);
    case SUBSCRIBER_SHARD: return redis_link_sunsubscribe(s->sub, name);
    default: return redis_link_unsubscribe(s->sub, name);
    }
}

int subscriber_add(struct subscriber *s, enum subscriber_kind kind, const char *name,
                   subscriber_message_fn *fn, void *ctx)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || fn == NULL || (unsigned)kind >= SUBSCRIBER_KINDS)
        return SIOC_EINVAL;
    struct route *r = route_find(s, kind, name, len);
    if (r != NULL)
        return r->fn == fn && r->ctx == ctx ? SIOC_OK : SIOC_EINVAL;
    r = malloc(sizeof *r + len + 1);
    if (r == NULL)
        return SIOC_ENOMEM;
    memcpy(r->name, name, len + 1);
    r->len = len;
    r->fn = fn;
    r->ctx = ctx;
    int rc = link_add(s, kind, name);
    if (rc != SIOC_OK) {
        free(r);
        return rc;
    }
    namemap_insert(&s->routes[kind], &r->node, r->name, len);
    r->all.prev = r->all.next = NULL;
    list_push_tail(&s->all, &r->all);
    return SIOC_OK;
}

int subscriber_remove(struct subscriber *s, enum subscriber_kind kind, const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || (unsigned)kind >= SUBSCRIBER_KINDS)
        return SIOC_EINVAL;
    struct route *r = route_find(s, kind, name, len);
    if (r != NULL)
        route_free(s, kind, r);
    return link_remove(s, kind, name);
}

/* A pmessage goes to its pattern's route; a message or smessage (pattern empty) to its channel's,
 * a plain channel's first. */
static void sub_message_cb(void *ctx, struct slice pattern, struct slice channel,
                           struct slice payload)
{
    struct subscriber *s = ctx;
    struct route *r;
    if (pattern.len > 0)
        r = route_find(s, SUBSCRIBER_PATTERN, pattern.p, pattern.len);
    else if ((r = route_find(s, SUBSCRIBER_CHANNEL, channel.p, channel.len)) == NULL)
        r = route_find(s, SUBSCRIBER_SHARD, channel.p, channel.len);
    if (r == NULL) {
        s->unrouted++;
        log_write(s->log, LOG_LEVEL_DEBUG, "subscriber.unrouted", "channel=%.*s pattern=%.*s",
                  (int)(channel.len < 256 ? channel.len : 256), (const char *)channel.p,
                  (int)(pattern.len < 256 ? pattern.len : 256), (const char *)pattern.p);
        return;
    }
    r->fn(r->ctx, pattern, channel, payload);
}

/* ---- connection state and the probe ---- */

static void sub_state_cb(void *ctx, bool connected)
{
    struct subscriber *s = ctx;
    s->up = connected;
    if (s->on_state != NULL)
        s->on_state(s->state_ctx, connected);
}

static void sub_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    struct subscriber *s = ctx;
    redis_log_event(s->log, s->name, ev, detail);
}

static void probe_reply_cb(void *ctx, const struct redisReply *reply, enum redis_link_result result)
{
    (void)reply;
    (void)result;
    ((struct subscriber *)ctx)->probe_pending = false;
}

/* How long the last probe has waited for Redis's answer; 0 when it has it. */
static uint64_t probe_wait_ms(const struct subscriber *s)
{
    return s->probe_pending ? deadline_clock_ms() - s->probe_sent_ms : 0;
}

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct subscriber *s = arg;
    if (s->probe_pending) {
        /* Redis does not answer the command connection either: it is stalled (SIGSTOP, a long
         * command, a slow disk), and the subscriber's silence says nothing about its own
         * connection. Replacing it would lose its subscriptions, and with them the replies to
         * the entries already written, which Redis answers when it goes on (DESIGN.md §3.3). A
         * stall longer than SUBSCRIBER_STALL_MAX_MS is treated as a dead connection again. */
        if (probe_wait_ms(s) < SUBSCRIBER_STALL_MAX_MS)
            redis_link_touch(s->sub);
        return;
    }
    /* a probe queued during an outage (or a hold) would only delay the commands behind it */
    if (s->probe_link != NULL && redis_link_connected(s->probe_link) && s->up) {
        const char *argv[] = {"PUBLISH", s->probe_channel, "1"};
        if (redis_link_command_argv(s->probe_link, 3, argv, NULL, 0, probe_reply_cb, s) ==
            SIOC_OK) {
            s->probe_pending = true;
            s->probe_sent_ms = deadline_clock_ms();
        }
    }
}

void subscriber_attach(struct subscriber *s, struct redis_link *probe_link,
                       void (*on_state)(void *ctx, bool up), void *ctx)
{
    s->probe_link = probe_link;
    s->probe_pending = false; /* an answer through a former link is not awaited */
    s->on_state = on_state;
    s->state_ctx = ctx;
}

bool subscriber_up(const struct subscriber *s)
{
    return s->up;
}

bool subscriber_ready(const struct subscriber *s)
{
    return s->up && probe_wait_ms(s) < 3 * (uint64_t)s->probe_interval_ms;
}

bool subscriber_connected(const struct subscriber *s)
{
    return redis_link_connected(s->sub);
}

uint64_t subscriber_unrouted(const struct subscriber *s)
{
    return s->unrouted;
}

/* ---- lifetime ---- */

static char *probe_channel(const char *prefix, const char *node)
{
    struct buf tmp;
    buf_init(&tmp, 0);
    buf_append_cstr(&tmp, prefix != NULL ? prefix : ENVELOPE_DEFAULT_PREFIX);
    buf_append_cstr(&tmp, ":probe:");
    buf_append_cstr(&tmp, node);
    buf_append_byte(&tmp, '\0');
    if (tmp.err != SIOC_OK) {
        buf_deinit(&tmp);
        return NULL;
    }
    size_t len;
    return (char *)buf_detach(&tmp, &len);
}

static bool maps_init(struct subscriber *s, uint64_t seed)
{
    for (int k = 0; k < SUBSCRIBER_KINDS; k++) {
        if (namemap_init(&s->routes[k], seed + (uint64_t)k) != SIOC_OK) {
            while (--k >= 0)
                namemap_deinit(&s->routes[k]);
            return false;
        }
    }
    return true;
}

struct subscriber *subscriber_new(struct event_base *base, const struct subscriber_config *cfg,
                                  struct log *log)
{
    if (cfg->redis_url == NULL || cfg->node_id == NULL || cfg->node_id[0] == '\0')
        return NULL;
    struct subscriber *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->log = log;
    list_init(&s->all);
    uint64_t seed = cfg->seed != 0 ? cfg->seed : process_random_u64(s);
    s->probe_interval_ms =
        cfg->probe_interval_ms > 0 ? cfg->probe_interval_ms : SUBSCRIBER_DEFAULT_PROBE_INTERVAL_MS;
    s->name = strdup(cfg->name != NULL ? cfg->name : "subscriber");
    s->probe_channel = probe_channel(cfg->key_prefix, cfg->node_id);
    if (s->name == NULL || s->probe_channel == NULL || !(s->maps_ready = maps_init(s, seed)))
        goto fail;
    struct redis_link_config sc = {
        .url = cfg->redis_url,
        .tls = cfg->redis_tls,
        .mode = REDIS_LINK_SUBSCRIBER,
        .jitter_seed = seed ^ 0x9e3779b97f4a7c15ull,
        .liveness_timeout_ms = 3 * s->probe_interval_ms,
        .probe_channel = s->probe_channel,
        .ctx = s,
        .on_state_cb = sub_state_cb,
        .on_message_cb = sub_message_cb,
        .on_event_cb = sub_event_cb,
    };
    s->sub = redis_link_new(base, &sc);
    s->probe_timer = event_new(base, -1, EV_PERSIST, probe_cb, s);
    struct timeval tv = {(time_t)(s->probe_interval_ms / 1000u),
                         (suseconds_t)(s->probe_interval_ms % 1000u) * 1000};
    if (s->sub == NULL || s->probe_timer == NULL || event_add(s->probe_timer, &tv) != 0)
        goto fail;
    return s;
fail:
    subscriber_free(s);
    return NULL;
}

void subscriber_free(struct subscriber *s)
{
    if (s == NULL)
        return;
    redis_link_free(s->sub);
    if (s->probe_timer != NULL)
        event_free(s->probe_timer);
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &s->all)
    {
        free(container_of(pos, struct route, all)); /* the maps go just below */
    }
    if (s->maps_ready)
        for (int k = 0; k < SUBSCRIBER_KINDS; k++)
            namemap_deinit(&s->routes[k]);
    free(s->name);
    free(s->probe_channel);
    free(s);
}
