/* api_rec.c: the gateways' recovery-window as the broker's /v1/emit sees it (api_rec.h). */
#include "broker/api_rec.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"

#define REC_WINDOW_MAX 86400000u /* the gateways' recovery-window option bound */

struct bk_rec {
    struct broker *b;
    struct event *tick;
    char *key; /* P:rec:window */
    bool reading;
    unsigned window;
};

/* The value as the SDK reads it: digits only, else 0 (absent: recovery off). */
static unsigned parse_window(const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_STRING || reply->len == 0 || reply->len > 9)
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < reply->len; i++) {
        if (reply->str[i] < '0' || reply->str[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(reply->str[i] - '0');
    }
    return v <= REC_WINDOW_MAX ? v : 0;
}

static void read_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_rec *r = ctx;
    r->reading = false;
    if (result != REDIS_LINK_REPLY || reply->type == REDIS_REPLY_ERROR)
        return; /* keep the last value; the next tick reads again */
    unsigned window = parse_window(reply);
    if (window != r->window)
        log_write(r->b->log, LOG_LEVEL_INFO, "api.recovery",
                  window > 0
                      ? "gateways' recovery-window %u ms: /v1/emit broadcasts are stored for "
                        "connection state recovery"
                      : "recovery off (%u): /v1/emit broadcasts are not stored",
                  window);
    r->window = window;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bk_rec *r = arg;
    if (r->reading || !redis_link_connected(r->b->cmd))
        return;
    const char *argv[] = {"GET", r->key};
    if (redis_link_command_argv(r->b->cmd, 2, argv, NULL, 0, read_cb, r) == SIOC_OK)
        r->reading = true;
}

struct bk_rec *bk_rec_new(struct broker *b)
{
    struct bk_rec *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->b = b;
    struct buf key;
    buf_init(&key, 0);
    buf_append_cstr(&key, b->prefix);
    buf_append_cstr(&key, ":rec:window");
    buf_append_byte(&key, 0);
    r->key = key.err == SIOC_OK ? (char *)key.data : NULL;
    if (r->key == NULL)
        buf_deinit(&key);
    r->tick = event_new(b->base, -1, EV_PERSIST, tick_cb, r);
    if (r->key == NULL || r->tick == NULL) {
        bk_rec_free(r);
        return NULL;
    }
    struct timeval tv = {BK_REC_REFRESH_MS / 1000, (BK_REC_REFRESH_MS % 1000) * 1000};
    event_add(r->tick, &tv);
    event_active(r->tick, EV_TIMEOUT, 0); /* the first read at once (when connected) */
    return r;
}

void bk_rec_free(struct bk_rec *r)
{
    if (r == NULL)
        return;
    redis_link_cancel(r->b->cmd, r);
    if (r->tick != NULL)
        event_free(r->tick);
    free(r->key);
    free(r);
}

unsigned bk_rec_window(const struct bk_rec *r)
{
    return r->window;
}
