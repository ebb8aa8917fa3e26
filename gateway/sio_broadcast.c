/* sio_broadcast.c: broadcasts and selections of the Socket.IO layer (see sio_server.h): one
 * encoding per broadcast, a reference to the same frames for every recipient (DESIGN.md §4).
 * An EVENT is the same text in Socket.IO protocols v4 and v5, and the Engine.IO framing of its
 * attachments is cached per revision on the frames (frame.h), so clients of both revisions
 * share one encoding. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "gateway/eio_server.h"
#include "gateway/sio_internal.h"

/* Connection state recovery (sio_hold.c): true when the socket keeps the broadcast for later
 * (it is being restored) or drops it (it got it from the stream already). */
static bool held_or_dropped(struct sio_socket *s, struct slice data, bool is_volatile)
{
    if (s->floor != NULL && sio_floor_drops(s, data))
        return true;
    if (!s->holding)
        return false;
    if (!is_volatile)
        sio_hold_packet(s, data);
    return true;
}

struct broadcast_ctx {
    struct gw_frame *frames[MAX_FRAMES];
    int nframes;
    struct slice data;      /* the event: for the plain form, kept by holding sockets */
    struct gw_frame *plain; /* its plain form (ws-routes), built for the first plain recipient */
    bool plain_built;
    bool is_volatile;
    int sent;
};

/* A plain client (ws-routes) gets the plain message, built for the first one and shared by
 * every plain recipient as the frames are. */
static void send_plain(struct broadcast_ctx *b, struct sio_client *c)
{
    if (!b->plain_built) {
        int rc;
        b->plain = sio_plain_frame(c->srv, b->data, &rc);
        b->plain_built = true;
    }
    if (b->plain != NULL)
        plain_ws_conn_send(c->plain, b->plain);
}

/* Queues the broadcast on one client (the per-recipient path: kept inline, the Engine.IO case
 * first). */
static inline void send_frames(struct broadcast_ctx *b, struct sio_client *c)
{
    if (__builtin_expect(c->plain != NULL, 0)) {
        send_plain(b, c);
        return;
    }
    for (int i = 0; i < b->nframes; i++)
        eio_session_send(c->session, b->frames[i]);
}

static void broadcast_visit(void *ctx, struct rooms_member *m)
{
    struct broadcast_ctx *b = ctx;
    struct sio_socket *s = m->owner;
    if (__builtin_expect(s->floor != NULL || s->holding, 0) &&
        held_or_dropped(s, b->data, b->is_volatile))
        return;
    if (!s->accepted || s->ending || s->client->closing)
        return;
    if (b->is_volatile && !sio_client_writable(s->client))
        return;
    send_frames(b, s->client);
    b->sent++;
}

int sio_server_broadcast(struct sio_server *srv, const struct sio_broadcast *b)
{
    struct sio_nsp *nsp = sio_nsp_find(srv, b->nsp, b->nsp_len);
    if (nsp == NULL)
        return 0; /* nobody ever joined this namespace here */
    struct sio_packet pkt = {
        .type = SIO_EVENT,
        .nsp = {(const uint8_t *)nsp->name, nsp->len},
        .has_data = true,
        .data = b->data,
    };
    struct broadcast_ctx ctx = {.is_volatile = b->is_volatile, .data = b->data};
    /* an EVENT is the same text in protocols v4 and v5: one encoding serves every client (the
     * Engine.IO framing of attachments is cached per revision on the frames, frame.h) */
    ctx.nframes = sio_encode_frames(srv, SIO_V5, &pkt, ctx.frames);
    if (ctx.nframes < 0)
        return ctx.nframes;
    rooms_select(nsp->rooms, b->rooms, b->nrooms, b->except, b->nexcept, broadcast_visit, &ctx);
    sio_unref_frames(ctx.frames, ctx.nframes);
    gw_frame_unref(ctx.plain);
    return ctx.sent;
}

struct group_ctx {
    struct broadcast_ctx b;
    struct group_ack ack;
};

static void group_visit(void *ctx, struct rooms_member *m)
{
    struct group_ctx *g = ctx;
    struct sio_socket *s = m->owner;
    if (!s->accepted || s->ending || s->client->closing)
        return;
    if (s->client->plain != NULL) {
        /* a plain client cannot acknowledge: it gets the message and never answers */
        send_frames(&g->b, s->client);
        g->b.sent++;
        return;
    }
    if (s->group_len == s->group_cap) {
        uint32_t cap = s->group_cap ? s->group_cap * 2 : 2;
        if (cap > MAX_TRACKED_ACKS)
            return; /* a client sitting on that many unanswered acks gets no more of them */
        struct group_ack *acks = realloc(s->group_acks, cap * sizeof *acks);
        if (acks == NULL)
            return;
        s->group_acks = acks;
        s->group_cap = cap;
    }
    s->group_acks[s->group_len++] = g->ack;
    send_frames(&g->b, s->client);
    g->b.sent++;
}

int sio_server_broadcast_with_ack(struct sio_server *srv, const struct sio_broadcast *b,
                                  uint64_t *ack_id,
                                  void (*on_ack)(void *ctx, struct sio_socket *sock,
                                                 uint64_t ack_id, struct slice args),
                                  void *ctx)
{
    struct sio_nsp *nsp = sio_nsp_find(srv, b->nsp, b->nsp_len);
    if (nsp == NULL)
        return 0;
    /* PROTOCOL.md 3.6: one id from the namespace counter, the same packet for everyone */
    uint64_t id = nsp->ack_counter++;
    *ack_id = id;
    struct sio_packet pkt = {
        .type = SIO_EVENT,
        .nsp = {(const uint8_t *)nsp->name, nsp->len},
        .has_id = true,
        .id = id,
        .has_data = true,
        .data = b->data,
    };
    struct group_ctx g = {.b = {.data = b->data}, .ack = {id, on_ack, ctx}};
    g.b.nframes = sio_encode_frames(srv, SIO_V5, &pkt, g.b.frames);
    if (g.b.nframes < 0)
        return g.b.nframes;
    rooms_select(nsp->rooms, b->rooms, b->nrooms, b->except, b->nexcept, group_visit, &g);
    sio_unref_frames(g.b.frames, g.b.nframes);
    gw_frame_unref(g.b.plain);
    return g.b.sent;
}

struct select_ctx {
    void (*cb)(void *ctx, struct sio_socket *sock);
    void *ctx;
};

static void select_visit(void *ctx, struct rooms_member *m)
{
    struct select_ctx *sc = ctx;
    struct sio_socket *s = m->owner;
    if (s->accepted && !s->ending && !s->client->closing)
        sc->cb(sc->ctx, s);
}

void sio_server_select(struct sio_server *srv, const char *nsp, size_t nsp_len,
                       const struct slice *rooms, size_t nrooms, const struct slice *except,
                       size_t nexcept, void (*cb)(void *ctx, struct sio_socket *sock), void *ctx)
{
    struct sio_nsp *n = sio_nsp_find(srv, nsp, nsp_len);
    if (n == NULL)
        return;
    struct select_ctx sc = {cb, ctx};
    rooms_select(n->rooms, rooms, nrooms, except, nexcept, select_visit, &sc);
}

void sio_server_each_socket(struct sio_server *srv, void (*cb)(void *ctx, struct sio_socket *sock),
                            void *ctx)
{
    struct select_ctx sc = {cb, ctx};
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &srv->nsps)
    {
        struct sio_nsp *n = list_entry(pos, struct sio_nsp, all);
        rooms_select(n->rooms, NULL, 0, NULL, 0, select_visit, &sc);
    }
}

void sio_server_each_room(struct sio_server *srv, const char *nsp, size_t nsp_len,
                          void (*cb)(void *ctx, const uint8_t *room, size_t len, size_t size),
                          void *ctx)
{
    struct sio_nsp *n = sio_nsp_find(srv, nsp, nsp_len);
    if (n != NULL)
        rooms_each_room(n->rooms, cb, ctx);
}
