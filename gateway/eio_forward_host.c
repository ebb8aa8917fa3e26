/* eio_forward_host.c: the owner's half of polling without sticky sessions (eio_forward.h). A
 * request forwarded by another gateway for one of this node's sessions is written into one end
 * of a socketpair whose other end this node's own HTTP server serves (http_server_adopt), so
 * eio_server answers it exactly as a local request: a GET held until there are packets, a POST
 * read, an upgrade turned into a WebSocket. What the server writes back is sent to the
 * requester: a polling answer once complete (status, fields, body), an upgrade's bytes as they
 * come, both ways, until either side closes. */
#include "gateway/eio_forward_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/container.h"
#include "common/error.h"
#include "common/net/log.h"

#define HOST_MAX_HEAD (64 * 1024)          /* the answer's head, as our server writes it */
#define HOST_MAX_ANSWER ((size_t)64 << 20) /* far above the session's own output limit */
#define HOST_TUNNEL_CHUNK (256 * 1024)     /* bytes per tunnel message */

struct fwd_host {
    struct hashtab_link link; /* by (requester tag, id) */
    struct list_node node;    /* in f->host_list */
    struct eio_forward *f;
    uint64_t id;
    char from[FWD_TAG_MAX + 1];
    size_t from_len;
    bool ws;
    struct bufferevent *bev;       /* our end of the socketpair */
    struct deadline_node deadline; /* polling: the bound of a held GET */
};

static uint64_t host_hash(const struct eio_forward *f, const uint8_t *from, size_t from_len,
                          uint64_t id)
{
    uint8_t key[FWD_TAG_MAX + sizeof id];
    memcpy(key, &id, sizeof id);
    memcpy(key + sizeof id, from, from_len);
    return hashtab_hash(&f->hosts, key, sizeof id + from_len);
}

static struct fwd_host *host_find(struct eio_forward *f, const struct fwd_msg *m)
{
    uint64_t h = host_hash(f, m->from, m->from_len, m->id);
    for (struct hashtab_link *l = hashtab_chain(&f->hosts, h); l != NULL; l = l->next) {
        struct fwd_host *x = container_of(l, struct fwd_host, link);
        if (l->hash == h && x->id == m->id && x->from_len == m->from_len &&
            memcmp(x->from, m->from, m->from_len) == 0)
            return x;
    }
    return NULL;
}

/* Closes our end (the server sees the peer go away, as with a local client) and forgets it. */
static void host_free(struct fwd_host *x)
{
    struct eio_forward *f = x->f;
    hashtab_remove(&f->hosts, &x->link);
    list_remove(&x->node);
    f->host_count--;
    if (f->host_count < f->max_inflight / 2)
        f->host_limit_logged = false;
    deadline_remove(&x->deadline);
    if (x->bev != NULL)
        bufferevent_free(x->bev);
    free(x);
}

static void reply(struct fwd_host *x, struct fwd_msg *m)
{
    m->id = x->id;
    fwd_publish(x->f, (const uint8_t *)x->from, x->from_len, m);
}

static void reply_to(struct eio_forward *f, const struct fwd_msg *req, struct fwd_msg *m)
{
    m->id = req->id;
    fwd_publish(f, req->from, req->from_len, m);
}

/* ---- the server's answer ---- */

static const uint8_t *find_crlf(const uint8_t *p, const uint8_t *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

/* Parses the answer our HTTP server wrote (a status line, fields, Content-Length bytes) at
 * p[0..len). Returns its total length once complete, 0 while incomplete, -1 when it is not
 * such an answer. Fills m's status, headers and body. */
static long parse_answer(const uint8_t *p, size_t len, struct fwd_msg *m)
{
    const uint8_t *end = p + len, *line = find_crlf(p, end);
    if (line == NULL)
        return len > HOST_MAX_HEAD ? -1 : 0;
    if (line - p < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
        return -1;
    m->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (m->status < 100 || m->status > 599)
        return -1;
    size_t content_length = 0;
    m->header_count = 0;
    for (const uint8_t *at = line + 2;;) {
        const uint8_t *eol = find_crlf(at, end);
        if (eol == NULL)
            return len > HOST_MAX_HEAD ? -1 : 0;
        if (eol == at) {
            size_t head = (size_t)(eol + 2 - p);
            if (len - head < content_length)
                return len > HOST_MAX_ANSWER ? -1 : 0;
            m->data = eol + 2;
            m->data_len = content_length;
            return (long)(head + content_length);
        }
        const uint8_t *colon = memchr(at, ':', (size_t)(eol - at));
        if (colon == NULL || m->header_count == FWD_MAX_HEADERS)
            return -1;
        const uint8_t *value = colon + 1;
        while (value < eol && *value == ' ')
            value++;
        size_t name_len = (size_t)(colon - at);
        if (name_len == 14 && strncasecmp((const char *)at, "Content-Length", 14) == 0) {
            for (const uint8_t *d = value; d < eol; d++)
                content_length = content_length * 10 + (size_t)(*d - '0');
            if (content_length > HOST_MAX_ANSWER)
                return -1;
        }
        m->headers[m->header_count].name = at;
        m->headers[m->header_count].name_len = name_len;
        m->headers[m->header_count].value = value;
        m->headers[m->header_count].value_len = (size_t)(eol - value);
        m->header_count++;
        at = eol + 2;
    }
}

static void host_read_cb(struct bufferevent *bev, void *ctx)
{
    struct fwd_host *x = ctx;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (x->ws) {
        size_t n;
        while ((n = evbuffer_get_length(in)) > 0) {
            n = n < HOST_TUNNEL_CHUNK ? n : HOST_TUNNEL_CHUNK;
            struct fwd_msg m = {
                .type = FWD_DOWN, .data = evbuffer_pullup(in, (ssize_t)n), .data_len = n};
            reply(x, &m);
            evbuffer_drain(in, n);
        }
        return;
    }
    size_t len = evbuffer_get_length(in);
    struct fwd_msg m = {.type = FWD_RES};
    long total = parse_answer(evbuffer_pullup(in, -1), len, &m);
    if (total == 0)
        return;
    if (total < 0) {
        log_write(x->f->log, LOG_LEVEL_WARN, "eio.forward_invalid",
                  "unreadable answer to a forwarded request");
        m = (struct fwd_msg){.type = FWD_END};
    }
    reply(x, &m);
    host_free(x);
}

static void host_event_cb(struct bufferevent *bev, short what, void *ctx)
{
    (void)bev;
    struct fwd_host *x = ctx;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    /* the server closed its side: a tunnel's end, or a polling request it closed unanswered */
    struct fwd_msg m = {.type = FWD_END};
    reply(x, &m);
    host_free(x);
}

/* ---- messages from requesters ---- */

static void start(struct eio_forward *f, const struct fwd_msg *m)
{
    if (!eio_server_has_session(f->eio, (const char *)m->sid, m->sid_len)) {
        struct fwd_msg miss = {.type = FWD_MISS};
        reply_to(f, m, &miss);
        return;
    }
    if (f->host_count >= f->max_inflight) {
        if (!f->host_limit_logged)
            log_write(
                f->log, LOG_LEVEL_WARN, "eio.forward_limit",
                "%zu forwarded requests are being served already; answering 503 (forward-max)",
                f->host_count);
        f->host_limit_logged = true;
        static const uint8_t body[] = "forwarding limit reached\n";
        struct fwd_msg busy = {
            .type = FWD_RES, .status = 503, .data = body, .data_len = sizeof body - 1};
        reply_to(f, m, &busy);
        return;
    }
    int fds[2];
    struct fwd_host *x = calloc(1, sizeof *x);
    if (x == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        free(x);
        log_write(f->log, LOG_LEVEL_WARN, "eio.forward_failed",
                  "cannot replay a forwarded request: out of descriptors or memory");
        struct fwd_msg end = {.type = FWD_END};
        reply_to(f, m, &end);
        return;
    }
    x->f = f;
    x->id = m->id;
    memcpy(x->from, m->from, m->from_len);
    x->from_len = m->from_len;
    x->ws = m->ws;
    x->link.hash = host_hash(f, m->from, m->from_len, m->id);
    hashtab_insert(&f->hosts, &x->link);
    list_push_head(&f->host_list, &x->node);
    f->host_count++;
    x->bev = bufferevent_socket_new(f->base, fds[1], BEV_OPT_CLOSE_ON_FREE);
    if (x->bev == NULL) {
        close(fds[0]);
        close(fds[1]);
        struct fwd_msg end = {.type = FWD_END};
        reply(x, &end);
        host_free(x);
        return;
    }
    bufferevent_setcb(x->bev, host_read_cb, NULL, host_event_cb, x);
    bufferevent_enable(x->bev, EV_READ);
    bufferevent_write(x->bev, m->data, m->data_len);
    if (!x->ws) {
        deadline_push(&f->host_wait, &x->deadline, deadline_clock_ms());
        fwd_arm_timer(f);
    }
    (*f->m_served)++;
    http_server_adopt(f->http, fds[0]); /* served from the loop, like an accepted connection */
}

void fwd_host_on_message(struct eio_forward *f, const struct fwd_msg *m)
{
    if (m->type == FWD_REQ) {
        if (host_find(f, m) == NULL)
            start(f, m);
        return;
    }
    struct fwd_host *x = host_find(f, m);
    if (x == NULL)
        return; /* over already */
    if (m->type == FWD_UP && x->ws)
        bufferevent_write(x->bev, m->data, m->data_len);
    else if (m->type == FWD_CANCEL)
        host_free(x);
}

void fwd_host_expired(struct eio_forward *f, struct deadline_node *n)
{
    (void)f;
    struct fwd_host *x = container_of(n, struct fwd_host, deadline);
    struct fwd_msg m = {.type = FWD_END};
    reply(x, &m);
    host_free(x);
}

void fwd_host_free_all(struct eio_forward *f)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &f->host_list)
    {
        host_free(container_of(pos, struct fwd_host, node));
    }
}
