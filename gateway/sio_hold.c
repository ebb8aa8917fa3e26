/* sio_hold.c: the Socket.IO layer's part of connection state recovery (sio_server.h,
 * gateway/recovery.h): a socket being restored holds the broadcasts that reach it while its
 * missed packets are read from Redis, then releases those the read did not return, and drops
 * the late pub/sub copies of those it did (its "floor"). Offsets are Redis stream ids carried as
 * the last argument of an event (docs/contracts.md "Connection state recovery"). */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/mp.h"
#include "gateway/eio_server.h"
#include "gateway/sio_internal.h"

static bool parse_id(const char *p, size_t len, uint64_t *ms, uint64_t *seq)
{
    uint64_t v[2] = {0, 0};
    int part = 0;
    size_t digits = 0;
    if (len == 0 || len > 41)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '-' && part == 0 && digits > 0) {
            part = 1;
            digits = 0;
        } else if (p[i] >= '0' && p[i] <= '9' && digits < 19) {
            v[part] = v[part] * 10 + (uint64_t)(p[i] - '0');
            digits++;
        } else {
            return false;
        }
    }
    *ms = v[0];
    *seq = v[1];
    return part == 1 && digits > 0;
}

bool sio_offset_after(const char *a, size_t alen, const char *b)
{
    uint64_t am, as, bm, bs;
    if (!parse_id(a, alen, &am, &as) || !parse_id(b, strlen(b), &bm, &bs))
        return false;
    return am > bm || (am == bm && as > bs);
}

bool sio_offset_of(struct slice data, char out[48])
{
    struct mp_reader rd;
    struct mp_item it, last = {0};
    uint64_t ms, seq;
    mp_reader_init(&rd, data.p, data.len);
    if (mp_read(&rd, &it) != SIOC_OK || it.kind != MP_ARRAY || it.len < 2)
        return false;
    for (uint32_t i = 0; i < it.len; i++) {
        size_t before = rd.pos;
        if (mp_read(&rd, &last) != SIOC_OK)
            return false;
        rd.pos = before;
        if (mp_skip(&rd) != SIOC_OK)
            return false;
    }
    if (last.kind != MP_STR || !parse_id((const char *)last.data, last.len, &ms, &seq))
        return false;
    memcpy(out, last.data, last.len);
    out[last.len] = '\0';
    return true;
}

void sio_socket_hold(struct sio_socket *s)
{
    s->holding = true;
}

void sio_hold_packet(struct sio_socket *s, struct slice data)
{
    if (s->held_count >= MAX_HELD_PACKETS) {
        s->held_count = MAX_HELD_PACKETS + 1; /* overflow: closed on release */
        return;
    }
    struct held_packet *h = malloc(sizeof *h + data.len);
    if (h == NULL) {
        s->held_count = MAX_HELD_PACKETS + 1;
        return;
    }
    h->next = NULL;
    h->len = data.len;
    memcpy(h->data, data.p, data.len);
    *s->held_tail = h;
    s->held_tail = &h->next;
    s->held_count++;
}

bool sio_floor_drops(struct sio_socket *s, struct slice data)
{
    char id[48];
    if (!sio_offset_of(data, id))
        return false; /* not a stored packet: never in the read */
    if (!sio_offset_after(id, strlen(id), s->floor))
        return true;
    free(s->floor); /* pub/sub order is the stream's: nothing older follows */
    s->floor = NULL;
    return false;
}

void sio_socket_release(struct sio_socket *s, const char *after, bool drop)
{
    bool overflow = s->held_count > MAX_HELD_PACKETS;
    s->holding = false;
    if (!drop && after != NULL && after[0] != '\0') {
        free(s->floor);
        s->floor = strdup(after); /* out of memory: late copies may then come twice */
    }
    while (s->held != NULL) {
        struct held_packet *h = s->held;
        s->held = h->next;
        struct slice data = {h->data, h->len};
        if (!drop && !overflow && (s->floor == NULL || !sio_floor_drops(s, data)))
            sio_socket_emit(s, data);
        free(h);
    }
    s->held_tail = &s->held;
    s->held_count = 0;
    if (overflow && !drop) {
        if (s->client->srv->cfg.on_log != NULL)
            s->client->srv->cfg.on_log(s->client->srv->cfg.ctx, "recovery.hold_overflow",
                                       "more broadcasts than the hold keeps while recovering");
        /* a transport close, recoverable: the client comes back for what it missed */
        eio_session_close(s->client->session, "forced close");
    }
}
