/* fuzz_adapter.c: feeds arbitrary bytes to the Redis adapter decoders (broadcast, request and
 * response; JSON and msgpack paths). Every accepted message must consume exactly the input,
 * keep its slices inside the input (or the JSON scratch) and its room lists within
 * ADAPTER_MAX_ROOMS, and re-encode into a message that decodes to the same fields. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/adapter.h"
#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"
#include "common/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

struct range {
    const uint8_t *p;
    size_t len;
};

static bool inside(struct range r, struct slice s)
{
    return s.len == 0 || (s.p >= r.p && s.len <= r.len && s.p - r.p <= (ptrdiff_t)(r.len - s.len));
}

static bool same(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* After a JSON round trip strings are equal when they were valid UTF-8 (invalid bytes
 * become U+FFFD, as in JavaScript). */
static bool same_text(struct slice a, struct slice b, bool json)
{
    if (json && !utf8_valid(a.p, a.len))
        return true;
    return same(a, b);
}

/* Two msgpack values that JSON.stringify renders identically. */
static bool same_value(struct slice a, struct slice b, bool json)
{
    if (!json)
        return same(a, b);
    struct buf ja, jb;
    struct mp_reader r;
    buf_init(&ja, 0);
    buf_init(&jb, 0);
    mp_reader_init(&r, a.p, a.len);
    int ea = json_from_msgpack(&r, NULL, &ja);
    mp_reader_init(&r, b.p, b.len);
    int eb = json_from_msgpack(&r, NULL, &jb);
    bool eq = ea == SIOC_OK && eb == SIOC_OK && ja.len == jb.len &&
              (ja.len == 0 || memcmp(ja.data, jb.data, ja.len) == 0);
    buf_deinit(&ja);
    buf_deinit(&jb);
    return eq;
}

static void check_rooms_inside(struct range r, const struct adapter_rooms *rooms)
{
    REQUIRE(rooms->count <= ADAPTER_MAX_ROOMS);
    for (size_t i = 0; i < rooms->count; i++)
        REQUIRE(inside(r, rooms->names[i]));
}

static bool same_rooms(const struct adapter_rooms *a, const struct adapter_rooms *b, bool json)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (!same_text(a->names[i], b->names[i], json))
            return false;
    return true;
}

static bool same_number(double a, double b, bool json)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b || (json && !isfinite(a));
}

static bool same_flags(const struct adapter_flags *a, const struct adapter_flags *b, bool json)
{
    /* JSON has no NaN/Infinity: such a timeout comes back as null, i.e. absent */
    bool timeout_ok = a->has_timeout == b->has_timeout
                          ? !a->has_timeout || same_number(a->timeout, b->timeout, json)
                          : json && !isfinite(a->timeout);
    return a->is_volatile == b->is_volatile && a->has_compress == b->has_compress &&
           (!a->has_compress || a->compress == b->compress) && a->broadcast == b->broadcast &&
           a->expect_single_response == b->expect_single_response && timeout_ok;
}

static bool same_opts(const struct adapter_opts *a, const struct adapter_opts *b, bool json)
{
    return same_rooms(&a->rooms, &b->rooms, json) && same_rooms(&a->except, &b->except, json) &&
           a->has_flags == b->has_flags && same_flags(&a->flags, &b->flags, json);
}

static bool same_packet(const struct adapter_packet *a, const struct adapter_packet *b, bool json)
{
    return a->type == b->type && same_text(a->nsp, b->nsp, json) &&
           same_value(a->data, b->data, json);
}

static void fuzz_broadcast(const uint8_t *data, size_t size)
{
    struct adapter_broadcast m, m2;
    struct range in = {data, size};
    int rc = adapter_broadcast_decode(data, size, &m);
    if (rc < 0)
        return;
    REQUIRE((size_t)rc == size);
    REQUIRE(inside(in, m.uid) && inside(in, m.packet.data));
    REQUIRE(inside(in, m.packet.nsp) || (m.packet.nsp.len == 1 && m.packet.nsp.p[0] == '/'));
    check_rooms_inside(in, &m.opts.rooms);
    check_rooms_inside(in, &m.opts.except);

    for (int emitter = 0; emitter < 2; emitter++) {
        struct buf b;
        buf_init(&b, 0);
        if (emitter)
            adapter_broadcast_encode_emitter(&b, &m);
        else
            adapter_broadcast_encode(&b, &m);
        REQUIRE(b.err == SIOC_OK);
        REQUIRE(adapter_broadcast_decode(b.data, b.len, &m2) == (int)b.len);
        REQUIRE(emitter ? same(m2.uid, (struct slice){(const uint8_t *)"emitter", 7})
                        : same(m.uid, m2.uid));
        REQUIRE(same_packet(&m.packet, &m2.packet, false));
        REQUIRE(m2.opts.has_flags); /* encoders always write flags */
        m2.opts.has_flags = m.opts.has_flags;
        REQUIRE(same_opts(&m.opts, &m2.opts, false));
        buf_deinit(&b);
    }
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    struct adapter_request q, q2;
    struct buf scratch, scratch2, b;
    buf_init(&scratch, 0);
    buf_init(&scratch2, 0);
    buf_init(&b, 0);
    int rc = adapter_request_decode(data, size, &scratch, &q);
    if (rc < 0)
        goto out;
    REQUIRE((size_t)rc == size);
    struct range in = {data, size};
    if (size > 0 && data[0] == '{')
        in = (struct range){scratch.data, scratch.len};
    REQUIRE(q.type >= 0 && q.type <= ADAPTER_BROADCAST);
    REQUIRE(!q.has_uid || inside(in, q.uid));
    REQUIRE(!q.has_request_id || inside(in, q.request_id));
    REQUIRE(!q.has_data || inside(in, q.data));
    REQUIRE(!q.has_sid || inside(in, q.sid));
    REQUIRE(!q.has_room || inside(in, q.room));
    REQUIRE(!q.has_packet || inside(in, q.packet.data));
    check_rooms_inside(in, &q.rooms);
    if (q.has_opts) {
        check_rooms_inside(in, &q.opts.rooms);
        check_rooms_inside(in, &q.opts.except);
    }

    bool json = q.type != ADAPTER_BROADCAST;
    int err = adapter_request_encode(&b, &q);
    /* JSON output only fails on data json_from_msgpack refuses (depth) */
    REQUIRE(err == SIOC_OK || (json && err != SIOC_ENOMEM));
    if (err != SIOC_OK)
        goto out;
    rc = adapter_request_decode(b.data, b.len, &scratch2, &q2);
    if (json && rc == SIOC_EDEPTH)
        goto out; /* data nested right at JSON_MAX_DEPTH, one level deeper inside the request */
    REQUIRE(rc == (int)b.len);
    REQUIRE(q2.type == q.type && q2.has_uid == q.has_uid && q2.has_request_id == q.has_request_id &&
            q2.has_opts == q.has_opts && q2.has_rooms == q.has_rooms &&
            q2.has_close == q.has_close && q2.has_data == q.has_data &&
            q2.has_packet == q.has_packet && q2.has_sid == q.has_sid && q2.has_room == q.has_room);
    REQUIRE(!q.has_uid || same_text(q.uid, q2.uid, json));
    REQUIRE(!q.has_request_id || same_text(q.request_id, q2.request_id, json));
    REQUIRE(!q.has_sid || same_text(q.sid, q2.sid, json));
    REQUIRE(!q.has_room || same_text(q.room, q2.room, json));
    REQUIRE(!q.has_close || q.close == q2.close);
    REQUIRE(!q.has_opts || same_opts(&q.opts, &q2.opts, json));
    REQUIRE(!q.has_rooms || same_rooms(&q.rooms, &q2.rooms, json));
    REQUIRE(!q.has_data || same_value(q.data, q2.data, json));
    REQUIRE(!q.has_packet || same_packet(&q.packet, &q2.packet, json));
out:
    buf_deinit(&scratch);
    buf_deinit(&scratch2);
    buf_deinit(&b);
}

static void fuzz_response(const uint8_t *data, size_t size)
{
    struct adapter_response s, s2;
    struct buf scratch, scratch2, b;
    buf_init(&scratch, 0);
    buf_init(&scratch2, 0);
    buf_init(&b, 0);
    int rc = adapter_response_decode(data, size, &scratch, &s);
    if (rc < 0)
        goto out;
    REQUIRE((size_t)rc == size);
    struct range in = {data, size};
    if (size > 0 && data[0] == '{')
        in = (struct range){scratch.data, scratch.len};
    REQUIRE(s.has_request_id && inside(in, s.request_id));
    REQUIRE(!s.has_sockets || inside(in, s.sockets));
    REQUIRE(!s.has_rooms || inside(in, s.rooms));
    REQUIRE(!s.has_data || inside(in, s.data));
    REQUIRE(!s.has_packet || inside(in, s.packet));

    bool json = !(s.has_type && s.type == ADAPTER_BROADCAST_ACK);
    int err = adapter_response_encode(&b, &s);
    REQUIRE(err == SIOC_OK || (json && err != SIOC_ENOMEM));
    if (err != SIOC_OK)
        goto out;
    rc = adapter_response_decode(b.data, b.len, &scratch2, &s2);
    if (json && rc == SIOC_EDEPTH)
        goto out;
    REQUIRE(rc == (int)b.len);
    REQUIRE(s2.has_type == s.has_type && (!s.has_type || s2.type == s.type));
    REQUIRE(same_text(s.request_id, s2.request_id, json));
    REQUIRE(s2.has_sockets == s.has_sockets && s2.has_rooms == s.has_rooms &&
            s2.has_client_count == s.has_client_count && s2.has_data == s.has_data &&
            s2.has_packet == s.has_packet);
    REQUIRE(!s.has_sockets ||
            (s.sockets_count == s2.sockets_count && s.sockets_fetch == s2.sockets_fetch &&
             same_value(s.sockets, s2.sockets, json)));
    REQUIRE(!s.has_rooms ||
            (s.rooms_count == s2.rooms_count && same_value(s.rooms, s2.rooms, json)));
    REQUIRE(!s.has_client_count || s.client_count == s2.client_count);
    REQUIRE(!s.has_data || same_value(s.data, s2.data, json));
    REQUIRE(!s.has_packet || same_value(s.packet, s2.packet, json));
out:
    buf_deinit(&scratch);
    buf_deinit(&scratch2);
    buf_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_broadcast(data, size);
    fuzz_request(data, size);
    fuzz_response(data, size);
    /* the channel helper against a fixed prefix/namespace */
    struct slice room, ch = {data, size}, prefix = {(const uint8_t *)"socket.io", 9},
                       nsp = {(const uint8_t *)"/", 1};
    if (adapter_channel_room(ch, prefix, nsp, &room) == SIOC_OK)
        REQUIRE(room.p >= data && room.len + 12 <= size);
    return 0;
}
