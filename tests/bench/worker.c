/* worker.c: the benchmark's backend worker, in C so that the worker is never what S3/S4 measure.
 * Reads the upstream stream `P:up:<nsp>:0` with a consumer group (DESIGN.md 3.2) and answers on
 * `P:node:<node>` (3.3): event "ack" is acked with its own arguments (the echo of S3), event
 * "join"(room) joins the sender to the room and acks with no arguments (room set-up for S4).
 * Pipelines every reply and XACK of a batch. Same contract as sdk/python, minus everything else. */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mp.h"

#define WK_BATCH 512

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
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) {
        fprintf(stderr, "worker: cannot connect to redis\n");
        return 1;
    }
    char key[256];
    snprintf(key, sizeof key, "%s:up:%s:0", prefix, nsp);
    redisReply *r = redisCommand(c, "XGROUP CREATE %s bench $ MKSTREAM", key);
    freeReplyObject(r); /* BUSYGROUP when it exists: fine */
    printf("worker ready\n");
    fflush(stdout);
    struct buf b;
    buf_init(&b, 0);
    for (;;) {
        r = redisCommand(c, "XREADGROUP GROUP bench w COUNT %d BLOCK 1000 STREAMS %s >", WK_BATCH,
                         key);
        if (!r) {
            fprintf(stderr, "worker: redis: %s\n", c->errstr);
            return 1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            continue;
        }
        const redisReply *entries = r->element[0]->element[1];
        size_t pending = 0;
        for (size_t i = 0; i < entries->elements; i++) {
            const redisReply *ent = entries->element[i];
            struct wk_entry e;
            entry_read(ent->element[1], &e);
            if (reply_build(&e, &b)) {
                redisAppendCommand(c, "PUBLISH %s:node:%b %b", prefix, e.node, e.node_len, b.data,
                                   b.len);
                pending++;
            }
            redisAppendCommand(c, "XACK %s bench %b", key, ent->element[0]->str,
                               ent->element[0]->len);
            pending++;
        }
        freeReplyObject(r);
        for (size_t i = 0; i < pending; i++) {
            redisReply *x = NULL;
            if (redisGetReply(c, (void **)&x) != REDIS_OK) {
                fprintf(stderr, "worker: redis: %s\n", c->errstr);
                return 1;
            }
            freeReplyObject(x);
        }
    }
}
