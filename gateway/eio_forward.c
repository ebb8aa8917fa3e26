/* eio_forward.c: the requester's half of polling without sticky sessions (eio_forward.h):
 * a request for another node's session is written out again as HTTP bytes, published to the
 * owner named by the sid's tag, and the client's connection is parked until the answer (a
 * polling answer, the owner's "no such session", or the first bytes of a WebSocket tunnel).
 * Bounds: deadlines per kind, max_inflight, and a PUBSUB NUMSUB check every second of the
 * owners still waited for. The owner's half is eio_forward_host.c. */
#include "gateway/eio_forward_internal.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/container.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"
#include "common/net/process.h"

#define DEFAULT_GET_HOLD_MS 25000
#define DEFAULT_TUNNEL_IDLE_MS 45000
#define LIVENESS_INTERVAL_MS 1000
#define LIVENESS_MAX_TAGS 64 /* owners checked per PUBSUB NUMSUB */

enum pending_kind {
    PENDING_POLL,   /* a POST (or another method): answered at once by the owner */
    PENDING_GET,    /* held by the owner until it has packets */
    PENDING_WS,     /* an upgrade waiting for the owner's first bytes */
    PENDING_TUNNEL, /* the client's connection is a WebSocket relayed to the owner */
};

struct fwd_pending {
    struct hashtab_link link; /* by id */
    struct list_node node;    /* in f->pending_list */
    struct eio_forward *f;
    uint64_t id;
    enum pending_kind kind;
    char tag[EIO_SID_TAG_LEN + 1];
    char sid[EIO_SID_LEN + 1];
    struct http_conn *conn;
    struct http_server_request *req; /* until answered or upgraded */
    struct deadline_node deadline;
    long receivers; /* PUBLISH's answer: nodes that got the request; -1 until known */
    long misses;
};

/* ---- table ---- */

static uint64_t id_hash(const struct eio_forward *f, uint64_t id)
{
    return hashtab_hash(&f->pending, &id, sizeof id);
}

static struct fwd_pending *pending_find(struct eio_forward *f, uint64_t id)
{
    uint64_t h = id_hash(f, id);
    for (struct hashtab_link *l = hashtab_chain(&f->pending, h); l != NULL; l = l->next) {
        struct fwd_pending *p = container_of(l, struct fwd_pending, link);
        if (l->hash == h && p->id == id)
            return p;
    }
    return NULL;
}

/* Forgets `p` (its connection is answered, closed, or gone). */
static void pending_free(struct fwd_pending *p)
{
    struct eio_forward *f = p->f;
    hashtab_remove(&f->pending, &p->link);
    list_remove(&p->node);
    f->pending_count--;
    if (f->pending_count < f->max_inflight / 2)
        f->limit_logged = false;
    deadline_remove(&p->deadline);
    redis_link_cancel(f->cmd, p);
    free(p);
}

/* Tells the owner to drop its side (the client went away or we gave up). */
static void send_cancel(struct fwd_pending *p)
{
    struct fwd_msg m = {.type = FWD_CANCEL,
                        .id = p->id,
                        .from = (const uint8_t *)p->f->tag,
                        .from_len = EIO_SID_TAG_LEN};
    fwd_publish(p->f, (const uint8_t *)p->tag, EIO_SID_TAG_LEN, &m);
}

/* The request cannot be served by its owner: the client gets what a gateway without the
 * session answers (PROTOCOL.md 1.2 code 1), so that it starts a new session; a tunnel that is
 * already a WebSocket is closed. */
static void fail(struct fwd_pending *p, const char *why)
{
    struct eio_forward *f = p->f;
    (*f->m_failed)++;
    log_write(f->log, LOG_LEVEL_INFO, "eio.forward_failed", "sid=%s owner=%s: %s", p->sid, p->tag,
              why);
    http_conn_clear_owner(p->conn);
    if (p->kind == PENDING_TUNNEL)
        http_conn_close(p->conn, true);
    else
        eio_server_refuse(f->eio, p->conn, p->req, EIO_ERR_UNKNOWN_SID);
    send_cancel(p);
    pending_free(p);
}

/* ---- the client's connection ---- */

static void client_close_cb(void *ctx, struct http_conn *conn, const char *reason)
{
    (void)conn;
    (void)reason;
    struct fwd_pending *p = ctx;
    send_cancel(p); /* as a local client's abort: the owner's GET or WebSocket ends too */
    pending_free(p);
}

static size_t client_data_cb(void *ctx, struct http_conn *conn, const uint8_t *data, size_t len)
{
    (void)conn;
    struct fwd_pending *p = ctx;
    struct fwd_msg m = {.type = FWD_UP,
                        .id = p->id,
                        .from = (const uint8_t *)p->f->tag,
                        .from_len = EIO_SID_TAG_LEN,
                        .data = data,
                        .data_len = len};
    if (fwd_publish(p->f, (const uint8_t *)p->tag, EIO_SID_TAG_LEN, &m) != SIOC_OK) {
        fail(p, "Redis refused the WebSocket data");
        return len;
    }
    return len;
}

/* Arms the kind's deadline again (a tunnel: after each message from the owner). */
static void arm(struct fwd_pending *p)
{
    struct eio_forward *f = p->f;
    struct deadline_list *l = p->kind == PENDING_GET      ? &f->get_wait
                              : p->kind == PENDING_TUNNEL ? &f->tunnel_wait
                                                          : &f->short_wait;
    deadline_push(l, &p->deadline, deadline_clock_ms());
    fwd_arm_timer(f);
}

/* ---- the request out ---- */

static bool hop_by_hop(struct slice name, bool ws)
{
    static const char *const names[] = {
        "Connection",       "Keep-Alive", "Content-Length", "Transfer-Encoding",
        "Proxy-Connection", "TE",         "Trailer"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name.len == strlen(names[i]) &&
            strncasecmp((const char *)name.p, names[i], name.len) == 0)
            return true;
    return !ws && name.len == 7 && strncasecmp((const char *)name.p, "Upgrade", 7) == 0;
}

/* The request as HTTP/1.1 bytes for the owner's server: the same method, target, end-to-end
 * fields and body; `Connection: close` (one answer per replay) or, for an upgrade, `upgrade`. */
static void write_request(struct buf *out, const struct http_server_request *req)
{
    const struct http_request *h = req->head;
    buf_append(out, h->method.p, h->method.len);
    buf_append_byte(out, ' ');
    buf_append(out, h->target.p, h->target.len);
    buf_append_cstr(out, " HTTP/1.1\r\n");
    bool host = false;
    for (size_t i = 0; i < h->header_count; i++) {
        const struct http_header *hd = &h->headers[i];
        if (hop_by_hop(hd->name, req->upgrade))
            continue;
        host |= hd->name.len == 4 && strncasecmp((const char *)hd->name.p, "Host", 4) == 0;
        buf_append(out, hd->name.p, hd->name.len);
        buf_append_cstr(out, ": ");
        buf_append(out, hd->value.p, hd->value.len);
        buf_append_cstr(out, "\r\n");
    }
    if (!host) /* an HTTP/1.0 client's request: 1.1 needs one (RFC 9112 3.2) */
        buf_append_cstr(out, "Host: sioc-forward\r\n");
    buf_append_cstr(out, req->upgrade ? "Connection: Upgrade\r\n" : "Connection: close\r\n");
    if (!req->upgrade) {
        char cl[48];
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", req->body.len);
        buf_append_cstr(out, cl);
    }
    buf_append_cstr(out, "\r\n");
    buf_append(out, req->body.p, req->body.len);
}

static void publish_reply_cb(void *ctx, const struct redisReply *reply,
                             enum redis_link_result result)
{
    struct fwd_pending *p = ctx;
    if (result != REDIS_LINK_REPLY || reply->type != REDIS_REPLY_INTEGER) {
        fail(p, "Redis did not take the request");
        return;
    }
    p->receivers = (long)reply->integer;
    if (p->receivers == 0)
        fail(p, "no gateway has the session's tag");
    else if (p->misses >= p->receivers)
        fail(p, "the owner does not know the session");
}

bool eio_forward_request(struct eio_forward *f, struct http_conn *conn,
                         struct http_server_request *req, const char *sid)
{
    if (f->pending_count >= f->max_inflight) {
        if (!f->limit_logged)
            log_write(f->log, LOG_LEVEL_WARN, "eio.forward_limit",
                      "%zu requests for other gateways' sessions wait already; answering 503 "
                      "(forward-max)",
                      f->pending_count);
        f->limit_logged = true;
        (*f->m_failed)++;
        static const struct http_field text[] = {{"Content-Type", "text/plain"}};
        http_conn_respond(conn, 503, text, 1, "forwarding limit reached\n", 25, false);
        return true;
    }
    struct fwd_pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        eio_server_refuse(f->eio, conn, req, EIO_ERR_UNKNOWN_SID);
        return true;
    }
    p->f = f;
    p->id = ++f->next_id;
    p->conn = conn;
    p->req = req;
    p->receivers = -1;
    bool get = req->head->method.len == 3 && memcmp(req->head->method.p, "GET", 3) == 0;
    p->kind = req->upgrade ? PENDING_WS : get ? PENDING_GET : PENDING_POLL;
    memcpy(p->sid, sid, EIO_SID_LEN);
    memcpy(p->tag, sid, EIO_SID_TAG_LEN);
    p->link.hash = id_hash(f, p->id);
    hashtab_insert(&f->pending, &p->link);
    list_push_head(&f->pending_list, &p->node);
    f->pending_count++;
    http_conn_set_owner(conn, &(struct http_conn_owner){NULL, NULL, client_close_cb, p});
    arm(p);

    struct buf bytes;
    buf_init(&bytes, 0);
    write_request(&bytes, req);
    struct fwd_msg m = {.type = FWD_REQ,
                        .id = p->id,
                        .from = (const uint8_t *)f->tag,
                        .from_len = EIO_SID_TAG_LEN,
                        .sid = (const uint8_t *)sid,
                        .sid_len = EIO_SID_LEN,
                        .ws = req->upgrade,
                        .data = bytes.data,
                        .data_len = bytes.len};
    /* without Redis nobody can answer: the client starts a new session at once (1.2 code 1) */
    bool up = redis_link_connected(f->cmd);
    int rc = !up || bytes.err != SIOC_OK ? bytes.err
                                         : fwd_publish_cb(f, (const uint8_t *)p->tag,
                                                          EIO_SID_TAG_LEN, &m, publish_reply_cb, p);
    buf_deinit(&bytes);
    if (!up)
        fail(p, "Redis unreachable");
    else if (rc != SIOC_OK)
        fail(p, sioc_strerror(rc));
    else
        (*f->m_forwarded)++;
    return true;
}

/* ---- answers from the owner ---- */

static bool skipped_field(const uint8_t *name, size_t len)
{
    static const char *const names[] = {"Content-Length", "Connection", "Keep-Alive",
                                        "Transfer-Encoding"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (len == strlen(names[i]) && strncasecmp((const char *)name, names[i], len) == 0)
            return true;
    return false;
}

/* The owner's polling answer, given to the client as this server's own (its keep-alive). */
static void answer(struct fwd_pending *p, const struct fwd_msg *m)
{
    struct http_field fields[FWD_MAX_HEADERS];
    size_t n = 0;
    struct buf names; /* NUL-terminated copies */
    buf_init(&names, 0);
    size_t offsets[FWD_MAX_HEADERS][2];
    for (size_t i = 0; i < m->header_count; i++) {
        if (skipped_field(m->headers[i].name, m->headers[i].name_len))
            continue;
        offsets[n][0] = names.len;
        buf_append(&names, m->headers[i].name, m->headers[i].name_len);
        buf_append_byte(&names, 0);
        offsets[n][1] = names.len;
        buf_append(&names, m->headers[i].value, m->headers[i].value_len);
        buf_append_byte(&names, 0);
        n++;
    }
    for (size_t i = 0; i < n && names.err == SIOC_OK; i++)
        fields[i] = (struct http_field){(const char *)names.data + offsets[i][0],
                                        (const char *)names.data + offsets[i][1]};
    http_conn_clear_owner(p->conn);
    if (names.err != SIOC_OK)
        http_conn_respond(p->conn, 503, NULL, 0, NULL, 0, false);
    else
        http_conn_respond(p->conn, m->status, fields, n, m->data, m->data_len, false);
    buf_deinit(&names);
    pending_free(p);
}

static void tunnel_data(struct fwd_pending *p, const struct fwd_msg *m)
{
    if (p->kind == PENDING_WS) {
        /* the owner's first bytes (its 101, or its refusal): from now on the client's
         * connection is raw bytes both ways, whatever the owner said */
        p->kind = PENDING_TUNNEL;
        p->req = NULL;
        http_conn_upgrade(p->conn,
                          &(struct http_conn_owner){client_data_cb, NULL, client_close_cb, p});
    }
    arm(p);
    http_conn_write(p->conn, m->data, m->data_len);
}

/* The owner's side closed: a polling request without an answer (its connection was closed,
 * as a local one would have been), or the end of a tunnel. */
static void owner_end(struct fwd_pending *p)
{
    http_conn_clear_owner(p->conn);
    if (p->kind == PENDING_WS) {
        fail(p, "the owner closed the upgrade");
        return;
    }
    http_conn_close(p->conn, true);
    pending_free(p);
}

static void requester_message(struct eio_forward *f, const struct fwd_msg *m)
{
    struct fwd_pending *p = pending_find(f, m->id);
    if (p == NULL)
        return; /* answered already (timeout, client gone) */
    bool ws = p->kind == PENDING_WS || p->kind == PENDING_TUNNEL;
    switch (m->type) {
    case FWD_RES:
        if (!ws)
            answer(p, m);
        break;
    case FWD_MISS:
        /* a node with the same tag (24 bits drawn at start) that is not the owner: the answer
         * is "unknown" only when every receiver said so */
        if (p->kind != PENDING_TUNNEL && ++p->misses >= p->receivers && p->receivers >= 0)
            fail(p, "the owner does not know the session");
        break;
    case FWD_DOWN:
        if (ws)
            tunnel_data(p, m);
        break;
    case FWD_END: owner_end(p); break;
    default: break;
    }
}

void eio_forward_on_message(struct eio_forward *f, const uint8_t *p, size_t len)
{
    struct fwd_msg m;
    int rc = fwd_msg_decode(p, len, &m);
    if (rc == SIOC_ENOTSUP)
        return;
    if (rc != SIOC_OK) {
        (*f->m_invalid)++;
        log_write(f->log, LOG_LEVEL_WARN, "eio.forward_invalid", "%zu bytes on %s: %s", len,
                  f->channel, sioc_strerror(rc));
        return;
    }
    if (m.type == FWD_REQ || m.type == FWD_UP || m.type == FWD_CANCEL)
        fwd_host_on_message(f, &m);
    else
        requester_message(f, &m);
}

/* ---- deadlines and the owners' liveness ---- */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct eio_forward *f = arg;
    uint64_t now = deadline_clock_ms();
    struct deadline_list *lists[] = {&f->short_wait, &f->get_wait, &f->tunnel_wait};
    for (size_t i = 0; i < 3; i++) {
        struct deadline_node *n;
        while ((n = deadline_pop_expired(lists[i], now)) != NULL)
            fail(container_of(n, struct fwd_pending, deadline), "timeout");
    }
    struct deadline_node *n;
    while ((n = deadline_pop_expired(&f->host_wait, now)) != NULL)
        fwd_host_expired(f, n);
    fwd_arm_timer(f);
}

/* PUBSUB NUMSUB's answer: every request parked for an owner whose channel has no subscriber
 * left (killed, or gone from Redis) gets its answer now rather than at its deadline. */
static void numsub_cb(void *ctx, const struct redisReply *reply, enum redis_link_result result)
{
    struct eio_forward *f = ctx;
    f->liveness_pending = false;
    if (result != REDIS_LINK_REPLY || reply->type != REDIS_REPLY_ARRAY)
        return;
    size_t prefix = strlen(f->prefix) + 5; /* "<prefix>:eio:" */
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *ch = reply->element[i], *n = reply->element[i + 1];
        if (ch->type != REDIS_REPLY_STRING || n->type != REDIS_REPLY_INTEGER || n->integer != 0 ||
            ch->len != prefix + EIO_SID_TAG_LEN)
            continue;
        struct list_node *pos, *tmp;
        /* the analyzer cannot see that fail() unlinks p from the head it reads next time */
        list_for_each_safe(pos, tmp, &f->pending_list) // NOLINT(clang-analyzer-unix.Malloc)
        {
            struct fwd_pending *p = container_of(pos, struct fwd_pending, node);
            if (memcmp(p->tag, ch->str + prefix, EIO_SID_TAG_LEN) == 0)
                fail(p, "the owner is gone");
        }
    }
}

static void liveness_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct eio_forward *f = arg;
    if (list_empty(&f->pending_list) || f->liveness_pending || !redis_link_connected(f->cmd))
        return;
    char channels[LIVENESS_MAX_TAGS][96];
    const char *argv[LIVENESS_MAX_TAGS + 2] = {"PUBSUB", "NUMSUB"};
    int argc = 2;
    for (const struct list_node *pos = f->pending_list.next;
         pos != &f->pending_list && argc < LIVENESS_MAX_TAGS + 2; pos = pos->next) {
        const struct fwd_pending *p = container_of(pos, struct fwd_pending, node);
        bool seen = false;
        for (int i = 2; i < argc && !seen; i++)
            seen =
                memcmp(argv[i] + strlen(argv[i]) - EIO_SID_TAG_LEN, p->tag, EIO_SID_TAG_LEN) == 0;
        if (seen)
            continue;
        snprintf(channels[argc - 2], sizeof channels[0], "%s:eio:%s", f->prefix, p->tag);
        argv[argc] = channels[argc - 2];
        argc++;
    }
    if (redis_link_command_argv(f->cmd, argc, argv, NULL, 0, numsub_cb, f) == SIOC_OK)
        f->liveness_pending = true;
}

/* ---- lifecycle ---- */

static void link_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    struct eio_forward *f = ctx;
    if (ev == REDIS_LINK_EV_CONNECTED)
        log_write(f->log, LOG_LEVEL_INFO, "redis.connected", "link=eio-forward %s",
                  detail ? detail : "");
    else if (ev == REDIS_LINK_EV_DISCONNECTED || ev == REDIS_LINK_EV_QUEUE_FULL)
        log_write(f->log, LOG_LEVEL_WARN,
                  ev == REDIS_LINK_EV_QUEUE_FULL ? "redis.queue_full" : "redis.disconnected",
                  "link=eio-forward %s", detail ? detail : "");
}

static void register_metrics(struct eio_forward *f, struct metrics *m)
{
    if (m == NULL) {
        f->m_forwarded = &f->unused_counters[0], f->m_served = &f->unused_counters[1];
        f->m_failed = &f->unused_counters[2], f->m_invalid = &f->unused_counters[3];
        return;
    }
    f->m_forwarded =
        metrics_counter(m, "sioc_eio_forwarded_total",
                        "requests for other gateways' sessions sent to their owner", NULL);
    f->m_served =
        metrics_counter(m, "sioc_eio_forward_served_total",
                        "requests of this gateway's sessions replayed for another gateway", NULL);
    f->m_failed =
        metrics_counter(m, "sioc_eio_forward_failed_total",
                        "forwarded requests answered Session ID unknown, 503 or closed", NULL);
    f->m_invalid =
        metrics_counter(m, "sioc_eio_forward_invalid_total", "malformed forwarding messages", NULL);
}

struct eio_forward *eio_forward_new(struct event_base *base, const struct eio_forward_config *cfg,
                                    struct eio_server *eio, struct http_server *http,
                                    struct log *log, struct metrics *metrics)
{
    if (cfg->redis_url == NULL || cfg->tag == NULL || strlen(cfg->tag) != EIO_SID_TAG_LEN)
        return NULL;
    struct eio_forward *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    list_init(&f->pending_list);
    list_init(&f->host_list);
    f->base = base;
    f->eio = eio;
    f->http = http;
    f->log = log;
    memcpy(f->tag, cfg->tag, EIO_SID_TAG_LEN);
    f->prefix = strdup(cfg->key_prefix != NULL ? cfg->key_prefix : "sioc");
    f->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : EIO_FORWARD_DEFAULT_TIMEOUT_MS;
    f->max_inflight = cfg->max_inflight ? cfg->max_inflight : EIO_FORWARD_DEFAULT_MAX;
    unsigned hold = cfg->get_hold_ms ? cfg->get_hold_ms : DEFAULT_GET_HOLD_MS;
    deadline_list_init(&f->short_wait, f->timeout_ms);
    deadline_list_init(&f->get_wait, (uint64_t)hold + f->timeout_ms);
    deadline_list_init(&f->tunnel_wait,
                       cfg->tunnel_idle_ms ? cfg->tunnel_idle_ms : DEFAULT_TUNNEL_IDLE_MS);
    deadline_list_init(&f->host_wait, (uint64_t)hold + f->timeout_ms);
    register_metrics(f, metrics);
    uint64_t seed = process_random_u64(f);
    size_t chlen = strlen(f->prefix ? f->prefix : "") + 6 + EIO_SID_TAG_LEN;
    f->channel = malloc(chlen);
    struct redis_link_config lc = {.url = cfg->redis_url,
                                   .tls = cfg->redis_tls,
                                   .mode = REDIS_LINK_COMMAND,
                                   .jitter_seed = seed,
                                   .ctx = f,
                                   .on_event_cb = link_event_cb};
    f->timer.ev = evtimer_new(base, timer_cb, f);
    f->liveness = event_new(base, -1, EV_PERSIST, liveness_cb, f);
    if (f->prefix == NULL || f->channel == NULL || f->timer.ev == NULL || f->liveness == NULL ||
        hashtab_init(&f->pending, 64, seed) != SIOC_OK ||
        hashtab_init(&f->hosts, 64, seed ^ 0x9e3779b97f4a7c15ull) != SIOC_OK ||
        (f->cmd = redis_link_new(base, &lc)) == NULL) {
        eio_forward_free(f);
        return NULL;
    }
    snprintf(f->channel, chlen, "%s:eio:%s", f->prefix, f->tag);
    struct timeval tv = {LIVENESS_INTERVAL_MS / 1000, (LIVENESS_INTERVAL_MS % 1000) * 1000};
    event_add(f->liveness, &tv);
    if (cfg->subscribe == NULL || cfg->subscribe(cfg->subscribe_ctx, f->channel) != SIOC_OK) {
        eio_forward_free(f);
        return NULL;
    }
    return f;
}

const char *eio_forward_channel(const struct eio_forward *f)
{
    return f->channel;
}

void eio_forward_free(struct eio_forward *f)
{
    if (f == NULL)
        return;
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &f->pending_list)
    {
        struct fwd_pending *p = container_of(pos, struct fwd_pending, node);
        http_conn_clear_owner(p->conn);
        http_conn_close(p->conn, false);
        pending_free(p);
    }
    fwd_host_free_all(f);
    redis_link_free(f->cmd);
    if (f->timer.ev != NULL)
        event_free(f->timer.ev);
    if (f->liveness != NULL)
        event_free(f->liveness);
    if (f->pending.buckets != NULL)
        hashtab_deinit(&f->pending);
    if (f->hosts.buckets != NULL)
        hashtab_deinit(&f->hosts);
    free(f->prefix);
    free(f->channel);
    free(f);
}
