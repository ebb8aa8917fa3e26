/* redis_events.c: the libevent adapter of redis_events.h.
 * hiredis's stock libevent adapter (adapters/libevent.h) re-arms a one-shot read event after
 * every read and arms, then disarms, a write event around every command: 2 epoll_ctl per read
 * and 2 per write, and each command waits one more loop iteration (epoll_wait) before it leaves.
 * On a latency path (an upstream XADD, DESIGN.md 3.2) that is 4 system calls and a loop turn
 * per round trip. This adapter keeps the read event armed (EV_PERSIST) and writes directly from
 * an event_active'd flush at the end of the current loop iteration, so every command issued in
 * one iteration still leaves in one write(2). EV_WRITE is armed only while connecting and while
 * the socket is full. */
#include "common/net/redis_events.h"

#include <stdlib.h>

#include <hiredis/hiredis.h>

struct link_events {
    redisAsyncContext *ac;
    struct event *rev, *wev, *flush;
    bool writing; /* inside redisAsyncHandleWrite: a write request then means "socket full" */
    bool dead;    /* hiredis freed the context while `writing`: free this after the write */
};

static void adapter_free(struct link_events *e)
{
    event_free(e->rev);
    event_free(e->wev);
    event_free(e->flush);
    free(e);
}

static void adapter_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct link_events *e = arg;
    redisAsyncHandleRead(e->ac); /* may free e (hiredis cleanup) */
}

/* EV_WRITE (connect completion, or room again in a full socket) and the end-of-iteration flush. */
static void adapter_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct link_events *e = arg;
    e->writing = true;
    redisAsyncHandleWrite(e->ac); /* may free the context: then adapter_cleanup set e->dead */
    e->writing = false;
    if (e->dead)
        adapter_free(e);
}

static void adapter_add_read(void *privdata)
{
    struct link_events *e = privdata;
    if (!event_pending(e->rev, EV_READ, NULL))
        event_add(e->rev, NULL);
}

static void adapter_del_read(void *privdata)
{
    struct link_events *e = privdata;
    event_del(e->rev);
}

/* hiredis wants to write: a new command, or (inside redisAsyncHandleWrite) bytes left over. */
static void adapter_add_write(void *privdata)
{
    struct link_events *e = privdata;
    if ((e->ac->c.flags & REDIS_CONNECTED) == 0 || e->writing ||
        event_pending(e->wev, EV_WRITE, NULL))
        event_add(e->wev, NULL); /* connecting, or the socket is full: wait for room */
    else
        event_active(e->flush, EV_WRITE, 0); /* no-op when already active this iteration */
}

static void adapter_del_write(void *privdata)
{
    struct link_events *e = privdata;
    event_del(e->wev);
}

/* hiredis frees the context: possibly from inside one of the callbacks above (libevent allows
 * freeing an event from its own callback). Inside a write, adapter_write_cb still reads e
 * afterwards: the events stop now, the memory goes when it returns. */
static void adapter_cleanup(void *privdata)
{
    struct link_events *e = privdata;
    if (e->writing) {
        event_del(e->rev);
        event_del(e->wev);
        event_del(e->flush);
        e->dead = true;
        return;
    }
    adapter_free(e);
}

bool redis_events_attach(redisAsyncContext *ac, struct event_base *base)
{
    struct link_events *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return false;
    e->ac = ac;
    e->rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, adapter_read_cb, e);
    e->wev = event_new(base, ac->c.fd, EV_WRITE, adapter_write_cb, e);
    e->flush = event_new(base, -1, 0, adapter_write_cb, e);
    if (e->rev == NULL || e->wev == NULL || e->flush == NULL || event_add(e->rev, NULL) != 0 ||
        event_add(e->wev, NULL) != 0) { /* EV_WRITE: the non-blocking connect's completion */
        if (e->rev != NULL)
            event_free(e->rev);
        if (e->wev != NULL)
            event_free(e->wev);
        if (e->flush != NULL)
            event_free(e->flush);
        free(e);
        return false;
    }
    ac->ev.addRead = adapter_add_read;
    ac->ev.delRead = adapter_del_read;
    ac->ev.addWrite = adapter_add_write;
    ac->ev.delWrite = adapter_del_write;
    ac->ev.cleanup = adapter_cleanup;
    ac->ev.data = e;
    return true;
}

