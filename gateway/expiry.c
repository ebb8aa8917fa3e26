/* expiry.c: a binary min-heap of socket expiries driven by one libevent timer (see expiry.h). */
#include "gateway/expiry.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

struct expiry_entry {
    int64_t at_s;
    char sid[SIO_SOCKET_ID_LEN]; /* the key: unique across namespaces, so the namespace is not kept
                                  * (it may be freed before the entry is due) */
};

struct expiry {
    struct sio_server *srv;
    struct event *timer;
    struct expiry_entry *heap;
    size_t len, cap;
    void (*on_expire)(void *ctx, struct sio_socket *sock);
    void *ctx;
};

static void swap(struct expiry_entry *a, struct expiry_entry *b)
{
    struct expiry_entry t = *a;
    *a = *b;
    *b = t;
}

static void sift_up(struct expiry *e, size_t i)
{
    while (i > 0 && e->heap[(i - 1) / 2].at_s > e->heap[i].at_s) {
        swap(&e->heap[(i - 1) / 2], &e->heap[i]);
        i = (i - 1) / 2;
    }
}

static void sift_down(struct expiry *e, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < e->len && e->heap[l].at_s < e->heap[m].at_s)
            m = l;
        if (r < e->len && e->heap[r].at_s < e->heap[m].at_s)
            m = r;
        if (m == i)
            return;
        swap(&e->heap[m], &e->heap[i]);
        i = m;
    }
}

static void arm(struct expiry *e)
{
    if (e->len == 0) {
        evtimer_del(e->timer);
        return;
    }
    int64_t wait = e->heap[0].at_s - (int64_t)time(NULL);
    struct timeval tv = {wait > 0 ? wait : 0, wait > 0 ? 0 : 1000};
    evtimer_add(e->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct expiry *e = arg;
    int64_t now = (int64_t)time(NULL);
    while (e->len > 0 && e->heap[0].at_s <= now) {
        struct expiry_entry top = e->heap[0];
        if (--e->len > 0) {
            e->heap[0] = e->heap[e->len];
            sift_down(e, 0);
        }
        struct sio_socket *sock = sio_server_find_id(e->srv, top.sid, SIO_SOCKET_ID_LEN);
        if (sock == NULL)
            continue; /* it left before its credentials ran out */
        if (e->on_expire != NULL)
            e->on_expire(e->ctx, sock);
        sio_socket_disconnect(sock, false);
    }
    arm(e);
}

struct expiry *expiry_new(struct event_base *base, struct sio_server *srv,
                          void (*on_expire)(void *ctx, struct sio_socket *sock), void *ctx)
{
    struct expiry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->srv = srv;
    e->on_expire = on_expire;
    e->ctx = ctx;
    e->timer = evtimer_new(base, timer_cb, e);
    if (e->timer == NULL) {
        free(e);
        return NULL;
    }
    return e;
}

void expiry_free(struct expiry *e)
{
    if (e == NULL)
        return;
    free(e->heap);
    event_free(e->timer);
    free(e);
}

int expiry_add(struct expiry *e, struct sio_socket *sock, int64_t at_s)
{
    if (e->len == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        struct expiry_entry *heap = realloc(e->heap, cap * sizeof *heap);
        if (heap == NULL)
            return SIOC_ENOMEM;
        e->heap = heap;
        e->cap = cap;
    }
    struct expiry_entry *x = &e->heap[e->len];
    x->at_s = at_s;
    memcpy(x->sid, sio_socket_key(sock), SIO_SOCKET_ID_LEN);
    sift_up(e, e->len++);
    arm(e);
    return SIOC_OK;
}
