/* worker.c: the benchmark's backend worker, in C so that the worker is never what S3/S4 measure.
 * Reads the upstream stream `P:up:<nsp>:0` with a consumer group (DESIGN.md 3.2) and answers on
 * `P:node:<node>` (3.3): event "ack" is acked with its own arguments (the echo of S3), event
 * "join"(room) joins the sender to the room and acks with no arguments (room set-up for S4).
 * Two connections, so that the worker sleeps (and wakes Redis) once per batch: one only waits in
 * XREADGROUP BLOCK; the other carries each batch's PUBLISHes and its one XACK, pipelined, and its
 * replies are collected without waiting when the next batch arrives. Same contract as sdk/python,
 * minus everything else. */
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mp.h"

#define WK_BATCH 512
/* Replies of the reply connection not read yet: past this, wait for them (Redis fell behind). */
#define WK_MAX_UNREAD (64 * WK_BATCH)

struct wk_entry {
    const char *type, *event, *sid, *nsp, *node, *ack;
    const uint8_t *args;
    size_t args_len, type_len, event_len, sid_len, nsp_len, node_len, ack_len;
};

static bool field_is(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

static void entry_read(const redisReply *fields, struct wk_entry *e)
{
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        if (field_is(k, "type")) {
            e->type = v->str;
            e->type_len = v->len;
        } else if (field_is(k, "event")) {
            e->event = v->str;
            e->event_len = v->len;
        } else if (field_is(k, "sid")) {
            e->sid = v->str;
            e->sid_len = v->len;
        } else if (field_is(k, "nsp")) {
            e->nsp = v->str;
            e->nsp_len = v->len;
        } else if (field_is(k, "node")) {
            e->node = v->str;
            e->node_len = v->len;
        } else if (field_is(k, "ack")) {
            e->ack = v->str;
            e->ack_len = v->len;
        } else if (field_is(k, "args")) {
            e->args = (const uint8_t *)v->str;
            e->args_len = v->len;
        }
    }
}

/* The first argument when it is a string (the room of "join"); false otherwise. */
static bool first_string(const struct wk_entry *e, struct mp_item *room)
{
    struct mp_reader r;
    struct mp_item arr;
    mp_reader_init(&r, e->args, e->args_len);
    return mp_read(&r, &arr) == 0 && arr.kind == MP_ARRAY && arr.len >= 1 &&
           mp_read(&r, room) == 0 && room->kind == MP_STR;
}

/* Builds the reply map of DESIGN.md 3.3 into b; returns false when the entry needs none. */
static bool reply_build(const struct wk_entry *e, struct buf *b)
{
    if (!e->type || e->type_len != 5 || memcmp(e->type, "event", 5) != 0 || !e->ack || !e->sid ||
        !e->nsp || !e->node || !e->event)
        return false;
    bool join = e->event_len == 4 && memcmp(e->event, "join", 4) == 0;
    struct mp_item room;
    if (join && !first_string(e, &room))
        return false;
    buf_reset(b);
    mp_write_map(b, join ? 5 : 4);
    mp_write_cstr(b, "t");
    mp_write_cstr(b, "reply");
    mp_write_cstr(b, "nsp");
    mp_write_str(b, e->nsp, e->nsp_len);
    mp_write_cstr(b, "sid");
    mp_write_str(b, e->sid, e->sid_len);
    if (join) {
        mp_write_cstr(b, "join");
        mp_write_array(b, 1);
        mp_write_str(b, room.data, room.len);
    }
    mp_write_cstr(b, "ack");
    mp_write_map(b, 2);
    mp_write_cstr(b, "id");
    mp_write_uint(b, strtoull(e->ack, NULL, 10));
    mp_write_cstr(b, "args");
    if (join || !e->args)
        mp_write_array(b, 0);
    else
        buf_append(b, e->args, e->args_len);
    return b->err == 0;
}

/* Consumes one reply of the reply connection, already read into hiredis's buffer or (block) read
 * now. Returns 1 when one was consumed, 0 when none is there yet (!block), -1 on a lost link. */
static int reply_collect(redisContext *c, bool block)
{
    redisReply *x = NULL;
    if (block ? redisGetReply(c, (void **)&x) != REDIS_OK
              : redisGetReplyFromReader(c, (void **)&x) != REDIS_OK)
        return -1;
    if (x == NULL)
        return 0;
    if (x->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "worker: redis: %s\n", x->str);
    freeReplyObject(x);
    return 1;
}

/* Reads, without sleeping, every reply of `c` that has arrived; waits only while more than
 * WK_MAX_UNREAD are outstanding. Returns false on a lost link. */
static bool replies_drain(redisContext *c, size_t *unread)
{
    for (;;) {
        int r;
        while (*unread > 0 && (r = reply_collect(c, false)) != 0) {
            if (r < 0)
                return false;
            (*unread)--;
        }
        if (*unread == 0)
            return true;
        if (*unread > WK_MAX_UNREAD) {
            if (reply_collect(c, true) < 0)
                return false;
            (*unread)--;
            continue;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)
            return true;                    /* nothing more yet: collected after the next batch */
        if (redisBufferRead(c) != REDIS_OK) /* readable: does not block */
            return false;
    }
}

/* Writes everything appended to `c`. Returns false on a lost link. */
static bool flush(redisContext *c)
{
    int done = 0;
    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *prefix = "sioc", *nsp = "/";
    int port = 6379;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--prefix") == 0)
            prefix = argv[i + 1];
        else if (strcmp(argv[i], "--nsp") == 0)
            nsp = argv[i + 1];
        else {
            fprintf(stderr, "usage: worker [--host H] [--port P] [--prefix sioc] [--nsp /]\n");
            return 2;
        }
    }
    redisContext *rd = redisConnect(host, port), *wr = redisConnect(host, port);
    if (!rd || rd->err || !wr || wr->err) {
        fprintf(stderr, "worker: cannot connect to redis\n");
        return 1;
    }
    char key[256];
    snprintf(key, sizeof key, "%s:up:%s:0", prefix, nsp);
    redisReply *r = redisCommand(rd, "XGROUP CREATE %s bench $ MKSTREAM", key);
    freeReplyObject(r); /* BUSYGROUP when it exists: fine */
    printf("worker ready\n");
    fflush(stdout);
    struct buf b;
    buf_init(&b, 0);
    /* XACK key group id... : one command per batch */
    static const char *ack_argv[3 + WK_BATCH];
    static size_t ack_lens[3 + WK_BATCH];
    ack_argv[0] = "XACK", ack_lens[0] = 4;
    ack_argv[1] = key, ack_lens[1] = strlen(key);
    ack_argv[2] = "bench", ack_lens[2] = 5;
    size_t unread = 0;
    for (;;) {
        r = redisCommand(rd, "XREADGROUP GROUP bench w COUNT %d BLOCK 1000 STREAMS %s >", WK_BATCH,
                         key);
        if (!r) {
            fprintf(stderr, "worker: redis: %s\n", rd->errstr);
            return 1;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            const redisReply *entries = r->element[0]->element[1];
            int ack_argc = 3;
            for (size_t i = 0; i < entries->elements && i < WK_BATCH; i++) {
                const redisReply *ent = entries->element[i];
                struct wk_entry e;
                entry_read(ent->element[1], &e);
                if (reply_build(&e, &b)) {
                    redisAppendCommand(wr, "PUBLISH %s:node:%b %b", prefix, e.node, e.node_len,
                                       b.data, b.len);
                    unread++;
                }
                ack_argv[ack_argc] = ent->element[0]->str;
                ack_lens[ack_argc++] = ent->element[0]->len;
            }
            /* after the replies, on the same connection: acknowledged once answered (3.2) */
            redisAppendCommandArgv(wr, ack_argc, ack_argv, ack_lens);
            unread++;
            if (!flush(wr)) {
                fprintf(stderr, "worker: redis: %s\n", wr->errstr);
                return 1;
            }
        }
        freeReplyObject(r);
        if (!replies_drain(wr, &unread)) {
            fprintf(stderr, "worker: redis: %s\n", wr->errstr);
            return 1;
        }
    }
}
