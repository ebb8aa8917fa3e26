/* adapter.c: the Redis adapter message codec (PROTOCOL.md 3.2-3.9, see adapter.h).
 * Decoding walks the fixed message schema once with the bounded mp reader (no recursion on
 * input: unknown and opaque values are skipped iteratively by mp_skip) and hands out slices
 * into the input; encoding writes Node's key orders. JSON text goes through common/json. */
#include "common/adapter.h"

#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"

static const uint8_t default_nsp[] = "/";
static const char uid2_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ======================= reading helpers ======================= */

/* Reads a map key. Non-string keys (which JS would stringify) match no field: key->p = NULL. */
static int read_key(struct mp_reader *r, struct slice *key)
{
    size_t start = r->pos;
    struct mp_item it;
    int err = mp_read_whole(r, &it);
    if (err != SIOC_OK)
        return err;
    if (it.kind == MP_STR) {
        key->p = it.data;
        key->len = it.len;
        return SIOC_OK;
    }
    key->p = NULL;
    key->len = 0;
    r->pos = start;
    return mp_skip_whole(r);
}

static bool key_is(struct slice key, const char *name)
{
    size_t n = strlen(name);
    return key.p != NULL && key.len == n && memcmp(key.p, name, n) == 0;
}

/* Optional string: nil leaves *has false. */
static int read_opt_str(struct mp_reader *r, bool *has, struct slice *out)
{
    *has = false;
    if (mp_take_nil(r))
        return SIOC_OK;
    int err = mp_read_str(r, out);
    *has = err == SIOC_OK;
    return err;
}

static int read_opt_bool(struct mp_reader *r, bool *has, bool *v)
{
    *has = false;
    if (mp_take_nil(r))
        return SIOC_OK;
    struct mp_item it;
    int err = mp_read_whole(r, &it);
    if (err != SIOC_OK)
        return err;
    if (it.kind != MP_BOOL)
        return SIOC_EPROTO;
    *has = true;
    *v = it.boolean;
    return SIOC_OK;
}

/* rooms / except: an array of strings; nil is empty (JS `new Set(null)`). */
static int read_rooms(struct mp_reader *r, struct adapter_rooms *rooms)
{
    rooms->count = 0;
    if (mp_take_nil(r))
        return SIOC_OK;
    uint32_t n;
    int err = mp_read_array_len(r, &n);
    if (err != SIOC_OK)
        return err;
    if (n > ADAPTER_MAX_ROOMS)
        return SIOC_ETOOBIG;
    for (uint32_t i = 0; i < n; i++) {
        err = mp_read_str(r, &rooms->names[i]);
        if (err != SIOC_OK)
            return err;
    }
    rooms->count = n;
    return SIOC_OK;
}

/* An array of strings kept as a msgpack slice (response lists are not capped). */
static int read_str_array(struct mp_reader *r, struct slice *out, uint32_t *count)
{
    size_t start = r->pos;
    uint32_t n;
    int err = mp_read_array_len(r, &n);
    if (err != SIOC_OK)
        return err;
    for (uint32_t i = 0; i < n; i++) {
        struct slice s;
        err = mp_read_str(r, &s);
        if (err != SIOC_OK)
            return err;
    }
    *count = n;
    out->p = r->p + start;
    out->len = r->pos - start;
    return SIOC_OK;
}

static int read_flags(struct mp_reader *r, struct adapter_flags *flags)
{
    memset(flags, 0, sizeof *flags);
    if (mp_take_nil(r))
        return SIOC_OK;
    uint32_t n;
    int err = mp_read_map_len(r, &n);
    for (uint32_t i = 0; err == SIOC_OK && i < n; i++) {
        struct slice key;
        bool has;
        err = read_key(r, &key);
        if (err != SIOC_OK)
            break;
        if (key_is(key, "volatile")) {
            err = read_opt_bool(r, &has, &flags->is_volatile);
            flags->is_volatile = has && flags->is_volatile;
        } else if (key_is(key, "compress")) {
            err = read_opt_bool(r, &flags->has_compress, &flags->compress);
        } else if (key_is(key, "broadcast")) {
            err = read_opt_bool(r, &has, &flags->broadcast);
            flags->broadcast = has && flags->broadcast;
        } else if (key_is(key, "expectSingleResponse")) {
            err = read_opt_bool(r, &has, &flags->expect_single_response);
            flags->expect_single_response = has && flags->expect_single_response;
        } else if (key_is(key, "timeout")) {
            flags->has_timeout = false;
            if (mp_take_nil(r))
                continue;
            struct mp_item it;
            err = mp_read_whole(r, &it);
            if (err == SIOC_OK && !mp_item_to_double(&it, &flags->timeout))
                err = SIOC_EPROTO;
            flags->has_timeout = err == SIOC_OK;
        } else {
            /* `local` is never published; old emitters add `json` (PROTOCOL.md 3.9) */
            err = mp_skip_whole(r);
        }
    }
    return err;
}

/* opts {rooms, except, flags}: any key order, any key may be missing. */
static int read_opts(struct mp_reader *r, struct adapter_opts *opts)
{
    opts->rooms.count = 0;
    opts->except.count = 0;
    opts->has_flags = false;
    memset(&opts->flags, 0, sizeof opts->flags);
    uint32_t n;
    int err = mp_read_map_len(r, &n);
    for (uint32_t i = 0; err == SIOC_OK && i < n; i++) {
        struct slice key;
        err = read_key(r, &key);
        if (err != SIOC_OK)
            break;
        if (key_is(key, "rooms")) {
            err = read_rooms(r, &opts->rooms);
        } else if (key_is(key, "except")) {
            err = read_rooms(r, &opts->except);
        } else if (key_is(key, "flags")) {
            opts->has_flags = r->pos < r->len && !mp_next_is_nil(r);
            err = read_flags(r, &opts->flags);
        } else {
            err = mp_skip_whole(r);
        }
    }
    return err;
}

/* packet {type, data, nsp}: type and data are required. */
static int read_packet(struct mp_reader *r, struct adapter_packet *packet)
{
    bool has_type = false, has_data = false;
    packet->nsp.p = default_nsp;
    packet->nsp.len = 1;
    uint32_t n;
    int err = mp_read_map_len(r, &n);
    for (uint32_t i = 0; err == SIOC_OK && i < n; i++) {
        struct slice key;
        err = read_key(r, &key);
        if (err != SIOC_OK)
            break;
        if (key_is(key, "type")) {
            struct mp_item it;
            int64_t v = 0;
            err = mp_read_whole(r, &it);
            if (err == SIOC_OK && !mp_item_to_i64(&it, &v))
                err = SIOC_EPROTO;
            /* PROTOCOL.md 3.13 #2-3: 2 EVENT / 3 ACK; 5 and 6 accepted defensively */
            if (err == SIOC_OK && v != 2 && v != 3 && v != 5 && v != 6)
                err = SIOC_EPROTO;
            if (err == SIOC_OK)
                packet->type = (int)v;
            has_type = true;
        } else if (key_is(key, "data")) {
            if (!mp_next_is_array(r))
                return SIOC_EPROTO; /* data is [event, ...args] */
            err = mp_read_raw(r, &packet->data);
            has_data = true;
        } else if (key_is(key, "nsp")) {
            bool has;
            err = read_opt_str(r, &has, &packet->nsp);
            if (!has) {
                packet->nsp.p = default_nsp;
                packet->nsp.len = 1;
            }
        } else {
            err = mp_skip_whole(r);
        }
    }
    if (err == SIOC_OK && (!has_type || !has_data))
        err = SIOC_EPROTO;
    return err;
}

/* ======================= channels ======================= */

int adapter_channel_room(struct slice channel, struct slice prefix, struct slice nsp,
                         struct slice *room)
{
    size_t head = prefix.len + 1 + nsp.len + 1;
    if (channel.len < head || memcmp(channel.p, prefix.p, prefix.len) != 0 ||
        channel.p[prefix.len] != '#' || memcmp(channel.p + prefix.len + 1, nsp.p, nsp.len) != 0 ||
        channel.p[head - 1] != '#')
        return SIOC_EPROTO;
    /* Node: channel.slice(this.channel.length, -1) */
    room->p = channel.p + head;
    room->len = channel.len > head ? channel.len - head - 1 : 0;
    return SIOC_OK;
}

static void append_slice(struct buf *out, struct slice s)
{
    buf_append(out, s.p, s.len);
}

void adapter_broadcast_channel(struct buf *out, struct slice prefix, struct slice nsp,
                               const struct adapter_rooms *rooms)
{
    append_slice(out, prefix);
    buf_append_byte(out, '#');
    append_slice(out, nsp);
    buf_append_byte(out, '#');
    if (rooms != NULL && rooms->count == 1) {
        append_slice(out, rooms->names[0]);
        buf_append_byte(out, '#');
    }
}

void adapter_request_channel(struct buf *out, struct slice prefix, struct slice nsp)
{
    append_slice(out, prefix);
    buf_append_cstr(out, "-request#");
    append_slice(out, nsp);
    buf_append_byte(out, '#');
}

void adapter_response_channel(struct buf *out, struct slice prefix, struct slice nsp,
                              int request_type, struct slice requester_uid, bool specific)
{
    append_slice(out, prefix);
    buf_append_cstr(out, "-response#");
    append_slice(out, nsp);
    buf_append_byte(out, '#');
    /* PROTOCOL.md 3.8: the SERVER_SIDE_EMIT ack always goes to the shared channel */
    if (specific && requester_uid.len > 0 && request_type != ADAPTER_SERVER_SIDE_EMIT) {
        append_slice(out, requester_uid);
        buf_append_byte(out, '#');
    }
}

/* ======================= broadcasts ======================= */

int adapter_broadcast_decode(const uint8_t *p, size_t len, struct adapter_broadcast *out)
{
    if (len > ADAPTER_MAX_MESSAGE)
        return SIOC_ETOOBIG;
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, p, len);
    int err = mp_read_whole(&r, &it);
    if (err != SIOC_OK)
        return err;
    /* [uid, packet, opts]: Node destructures three elements and ignores any more */
    if (it.kind != MP_ARRAY || it.len < 3)
        return SIOC_EPROTO;
    if ((err = mp_read_str(&r, &out->uid)) != SIOC_OK ||
        (err = read_packet(&r, &out->packet)) != SIOC_OK ||
        (err = read_opts(&r, &out->opts)) != SIOC_OK)
        return err;
    for (uint32_t i = 3; i < it.len; i++)
        if ((err = mp_skip_whole(&r)) != SIOC_OK)
            return err;
    /* notepack.decode throws on trailing bytes */
    return r.pos == len ? (int)len : SIOC_EPROTO;
}

static void mp_write_slice(struct buf *b, struct slice s)
{
    mp_write_str(b, s.p, s.len);
}

static void mp_write_rooms(struct buf *b, const struct adapter_rooms *rooms)
{
    mp_write_array(b, (uint32_t)rooms->count);
    for (size_t i = 0; i < rooms->count; i++)
        mp_write_slice(b, rooms->names[i]);
}

static void mp_write_flags(struct buf *b, const struct adapter_flags *f)
{
    uint32_t n = (uint32_t)f->is_volatile + f->has_compress + f->broadcast + f->has_timeout +
                 f->expect_single_response;
    mp_write_map(b, n);
    if (f->is_volatile) {
        mp_write_cstr(b, "volatile");
        mp_write_bool(b, true);
    }
    if (f->has_compress) {
        mp_write_cstr(b, "compress");
        mp_write_bool(b, f->compress);
    }
    if (f->broadcast) {
        mp_write_cstr(b, "broadcast");
        mp_write_bool(b, true);
    }
    if (f->has_timeout) {
        mp_write_cstr(b, "timeout");
        mp_write_number(b, f->timeout);
    }
    if (f->expect_single_response) {
        mp_write_cstr(b, "expectSingleResponse");
        mp_write_bool(b, true);
    }
}

static void mp_write_packet(struct buf *b, const struct adapter_packet *packet)
{
    mp_write_map(b, 3);
    mp_write_cstr(b, "type");
    mp_write_uint(b, (uint64_t)packet->type);
    mp_write_cstr(b, "data");
    append_slice(b, packet->data);
    mp_write_cstr(b, "nsp");
    mp_write_slice(b, packet->nsp);
}

/* opts in the adapter's order {rooms, except, flags}; flags only when with_flags. */
static void mp_write_opts(struct buf *b, const struct adapter_opts *opts, bool with_flags)
{
    mp_write_map(b, with_flags ? 3 : 2);
    mp_write_cstr(b, "rooms");
    mp_write_rooms(b, &opts->rooms);
    mp_write_cstr(b, "except");
    mp_write_rooms(b, &opts->except);
    if (with_flags) {
        mp_write_cstr(b, "flags");
        mp_write_flags(b, &opts->flags);
    }
}

void adapter_broadcast_encode(struct buf *out, const struct adapter_broadcast *msg)
{
    mp_write_array(out, 3);
    mp_write_slice(out, msg->uid);
    mp_write_packet(out, &msg->packet);
    mp_write_opts(out, &msg->opts, true);
}

void adapter_broadcast_encode_emitter(struct buf *out, const struct adapter_broadcast *msg)
{
    mp_write_array(out, 3);
    mp_write_cstr(out, "emitter");
    mp_write_packet(out, &msg->packet);
    /* @socket.io/redis-emitter 5.x: {rooms, flags, except} */
    mp_write_map(out, 3);
    mp_write_cstr(out, "rooms");
    mp_write_rooms(out, &msg->opts.rooms);
    mp_write_cstr(out, "flags");
    mp_write_flags(out, &msg->opts.flags);
    mp_write_cstr(out, "except");
    mp_write_rooms(out, &msg->opts.except);
}

/* ======================= parts, for the sharded format (cluster_msg.c) ======================= */

int adapter_read_opts(struct mp_reader *r, struct adapter_opts *opts)
{
    return read_opts(r, opts);
}

int adapter_read_rooms(struct mp_reader *r, struct adapter_rooms *rooms)
{
    return read_rooms(r, rooms);
}

int adapter_read_event(struct mp_reader *r, struct adapter_packet *packet)
{
    return read_packet(r, packet);
}

void adapter_write_opts(struct buf *out, const struct adapter_opts *opts)
{
    mp_write_opts(out, opts, true);
}

void adapter_write_rooms(struct buf *out, const struct adapter_rooms *rooms)
{
    mp_write_rooms(out, rooms);
}

/* ======================= requests and responses: decoding ======================= */

int adapter_open_reader(const uint8_t *p, size_t len, struct buf *scratch, struct mp_reader *r)
{
    if (len > ADAPTER_MAX_MESSAGE)
        return SIOC_ETOOBIG;
    if (len > 0 && p[0] == '{') {
        buf_reset(scratch);
        int err = json_to_msgpack(p, len, scratch);
        if (err != SIOC_OK)
            return err;
        mp_reader_init(r, scratch->data, scratch->len);
    } else {
        mp_reader_init(r, p, len);
    }
    return SIOC_OK;
}

/* A request or response: a map, JSON or MessagePack; its key count in *nkeys. */
static int open_message(const uint8_t *p, size_t len, struct buf *scratch, struct mp_reader *r,
                        uint32_t *nkeys)
{
    int err = adapter_open_reader(p, len, scratch, r);
    return err != SIOC_OK ? err : mp_read_map_len(r, nkeys);
}

static int read_type(struct mp_reader *r, int *type)
{
    struct mp_item it;
    int64_t v;
    int err = mp_read_whole(r, &it);
    if (err != SIOC_OK)
        return err;
    if (!mp_item_to_i64(&it, &v))
        return SIOC_EPROTO;
    *type = v < 0 || v > 99 ? 99 : (int)v; /* out of range: reported as ENOTSUP at the end */
    return SIOC_OK;
}

static int request_field(struct mp_reader *r, struct slice key, struct adapter_request *q,
                         bool *has_type)
{
    if (key_is(key, "uid"))
        return read_opt_str(r, &q->has_uid, &q->uid);
    if (key_is(key, "requestId"))
        return read_opt_str(r, &q->has_request_id, &q->request_id);
    if (key_is(key, "sid"))
        return read_opt_str(r, &q->has_sid, &q->sid);
    if (key_is(key, "room"))
        return read_opt_str(r, &q->has_room, &q->room);
    if (key_is(key, "close"))
        return read_opt_bool(r, &q->has_close, &q->close);
    if (key_is(key, "type")) {
        *has_type = !mp_take_nil(r);
        return *has_type ? read_type(r, &q->type) : SIOC_OK;
    }
    if (key_is(key, "rooms")) {
        q->has_rooms = r->pos < r->len && !mp_next_is_nil(r);
        return read_rooms(r, &q->rooms);
    }
    if (key_is(key, "opts")) {
        q->has_opts = !mp_take_nil(r);
        return q->has_opts ? read_opts(r, &q->opts) : SIOC_OK;
    }
    if (key_is(key, "data")) {
        q->has_data = !mp_take_nil(r);
        if (q->has_data && !mp_next_is_array(r))
            return SIOC_EPROTO; /* SERVER_SIDE_EMIT data is [event, ...args] */
        return q->has_data ? mp_read_raw(r, &q->data) : SIOC_OK;
    }
    if (key_is(key, "packet")) {
        q->has_packet = !mp_take_nil(r);
        return q->has_packet ? read_packet(r, &q->packet) : SIOC_OK;
    }
    return mp_skip_whole(r);
}

int adapter_request_decode(const uint8_t *p, size_t len, struct buf *scratch,
                           struct adapter_request *out)
{
    struct mp_reader r;
    uint32_t n;
    bool has_type = false;
    int err = open_message(p, len, scratch, &r, &n);
    out->has_uid = out->has_request_id = out->has_opts = out->has_rooms = false;
    out->has_close = out->has_data = out->has_packet = out->has_sid = out->has_room = false;
    out->rooms.count = 0;
    for (uint32_t i = 0; err == SIOC_OK && i < n; i++) {
        struct slice key;
        err = read_key(&r, &key);
        if (err == SIOC_OK)
            err = request_field(&r, key, out, &has_type);
    }
    if (err != SIOC_OK)
        return err;
    if (r.pos != r.len || !has_type)
        return SIOC_EPROTO;
    if (out->type > ADAPTER_BROADCAST)
        return SIOC_ENOTSUP;
    /* requests that are answered need a requestId to answer with */
    if (!out->has_request_id &&
        (out->type == ADAPTER_SOCKETS || out->type == ADAPTER_ALL_ROOMS ||
         out->type == ADAPTER_REMOTE_FETCH || out->type == ADAPTER_BROADCAST))
        return SIOC_EPROTO;
    if (out->type == ADAPTER_BROADCAST && !out->has_packet)
        return SIOC_EPROTO;
    return (int)len;
}

/* sockets: all strings (SOCKETS) or all maps (REMOTE_FETCH). */
static int read_sockets(struct mp_reader *r, struct adapter_response *s)
{
    size_t start = r->pos;
    uint32_t n;
    int err = mp_read_array_len(r, &n);
    if (err != SIOC_OK)
        return err;
    s->sockets_fetch = n > 0 && mp_next_is_map(r);
    for (uint32_t i = 0; i < n; i++) {
        if (s->sockets_fetch) {
            if (!mp_next_is_map(r))
                return SIOC_EPROTO;
            err = mp_skip_whole(r);
        } else {
            struct slice id;
            err = mp_read_str(r, &id);
        }
        if (err != SIOC_OK)
            return err;
    }
    s->sockets_count = n;
    s->sockets.p = r->p + start;
    s->sockets.len = r->pos - start;
    return SIOC_OK;
}

static int response_field(struct mp_reader *r, struct slice key, struct adapter_response *s)
{
    if (key_is(key, "requestId"))
        return read_opt_str(r, &s->has_request_id, &s->request_id);
    if (key_is(key, "type")) {
        s->has_type = !mp_take_nil(r);
        return s->has_type ? read_type(r, &s->type) : SIOC_OK;
    }
    if (key_is(key, "sockets")) {
        s->has_sockets = !mp_take_nil(r);
        return s->has_sockets ? read_sockets(r, s) : SIOC_OK;
    }
    if (key_is(key, "rooms")) {
        s->has_rooms = !mp_take_nil(r);
        return s->has_rooms ? read_str_array(r, &s->rooms, &s->rooms_count) : SIOC_OK;
    }
    if (key_is(key, "clientCount")) {
        s->has_client_count = !mp_take_nil(r);
        if (!s->has_client_count)
            return SIOC_OK;
        struct mp_item it;
        int64_t v;
        int err = mp_read_whole(r, &it);
        if (err != SIOC_OK)
            return err;
        /* a JS count: a non-negative integer up to Number.MAX_SAFE_INTEGER */
        if (!mp_item_to_i64(&it, &v) || v < 0 || v > ((int64_t)1 << 53) - 1)
            return SIOC_EPROTO;
        s->client_count = (uint64_t)v;
        return SIOC_OK;
    }
    /* type 6 data / type 9 packet: the ack argument, any value; JSON has no undefined, so a
     * present nil is a real null argument and kept */
    if (key_is(key, "data")) {
        s->has_data = true;
        return mp_read_raw(r, &s->data);
    }
    if (key_is(key, "packet")) {
        s->has_packet = true;
        return mp_read_raw(r, &s->packet);
    }
    return mp_skip_whole(r);
}

int adapter_response_decode(const uint8_t *p, size_t len, struct buf *scratch,
                            struct adapter_response *out)
{
    struct mp_reader r;
    uint32_t n;
    int err = open_message(p, len, scratch, &r, &n);
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; err == SIOC_OK && i < n; i++) {
        struct slice key;
        err = read_key(&r, &key);
        if (err == SIOC_OK)
            err = response_field(&r, key, out);
    }
    if (err != SIOC_OK)
        return err;
    if (r.pos != r.len || !out->has_request_id)
        return SIOC_EPROTO;
    if (out->has_type && out->type != ADAPTER_SERVER_SIDE_EMIT &&
        out->type != ADAPTER_BROADCAST_CLIENT_COUNT && out->type != ADAPTER_BROADCAST_ACK)
        return SIOC_ENOTSUP;
    if (out->has_type && out->type == ADAPTER_BROADCAST_CLIENT_COUNT && !out->has_client_count)
        return SIOC_EPROTO;
    return (int)len;
}

/* ======================= requests and responses: encoding ======================= */

static void json_key(struct buf *b, bool *first, const char *key)
{
    if (!*first)
        buf_append_byte(b, ',');
    *first = false;
    buf_append_byte(b, '"');
    buf_append_cstr(b, key);
    buf_append_cstr(b, "\":");
}

static void json_slice(struct buf *b, struct slice s)
{
    json_write_string(b, s.p, s.len);
}

static void json_rooms(struct buf *b, const struct adapter_rooms *rooms)
{
    buf_append_byte(b, '[');
    for (size_t i = 0; i < rooms->count; i++) {
        if (i > 0)
            buf_append_byte(b, ',');
        json_slice(b, rooms->names[i]);
    }
    buf_append_byte(b, ']');
}

static void json_flags(struct buf *b, const struct adapter_flags *f)
{
    bool first = true;
    buf_append_byte(b, '{');
    if (f->is_volatile) {
        json_key(b, &first, "volatile");
        buf_append_cstr(b, "true");
    }
    if (f->has_compress) {
        json_key(b, &first, "compress");
        buf_append_cstr(b, f->compress ? "true" : "false");
    }
    if (f->broadcast) {
        json_key(b, &first, "broadcast");
        buf_append_cstr(b, "true");
    }
    if (f->has_timeout) {
        json_key(b, &first, "timeout");
        json_write_number(b, f->timeout);
    }
    if (f->expect_single_response) {
        json_key(b, &first, "expectSingleResponse");
        buf_append_cstr(b, "true");
    }
    buf_append_byte(b, '}');
}

static void json_opts(struct buf *b, const struct adapter_opts *opts)
{
    buf_append_cstr(b, "{\"rooms\":");
    json_rooms(b, &opts->rooms);
    buf_append_cstr(b, ",\"except\":");
    json_rooms(b, &opts->except);
    if (opts->has_flags) {
        buf_append_cstr(b, ",\"flags\":");
        json_flags(b, &opts->flags);
    }
    buf_append_byte(b, '}');
}

/* Renders one msgpack value as JSON.stringify would (bins as Buffer.toJSON). */
static int json_value(struct buf *b, struct slice v)
{
    struct mp_reader r;
    mp_reader_init(&r, v.p, v.len);
    int err = json_from_msgpack(&r, NULL, b);
    if (err == SIOC_OK && r.pos != v.len)
        err = SIOC_EINVAL;
    return err;
}

static int finish(struct buf *out, size_t start, int err)
{
    if (err == SIOC_OK)
        err = out->err;
    if (err != SIOC_OK)
        buf_truncate(out, start < out->len ? start : out->len);
    return err;
}

/* BROADCAST (7) is the one msgpack request (PROTOCOL.md 3.5). */
static int request_encode_msgpack(struct buf *b, const struct adapter_request *q)
{
    uint32_t n = 1u + q->has_uid + q->has_request_id + q->has_packet + q->has_opts + q->has_rooms +
                 q->has_sid + q->has_room + q->has_close + q->has_data;
    mp_write_map(b, n);
    if (q->has_uid) {
        mp_write_cstr(b, "uid");
        mp_write_slice(b, q->uid);
    }
    if (q->has_request_id) {
        mp_write_cstr(b, "requestId");
        mp_write_slice(b, q->request_id);
    }
    mp_write_cstr(b, "type");
    mp_write_uint(b, (uint64_t)q->type);
    if (q->has_packet) {
        mp_write_cstr(b, "packet");
        mp_write_packet(b, &q->packet);
    }
    if (q->has_opts) {
        mp_write_cstr(b, "opts");
        mp_write_opts(b, &q->opts, q->opts.has_flags);
    }
    if (q->has_rooms) {
        mp_write_cstr(b, "rooms");
        mp_write_rooms(b, &q->rooms);
    }
    if (q->has_sid) {
        mp_write_cstr(b, "sid");
        mp_write_slice(b, q->sid);
    }
    if (q->has_room) {
        mp_write_cstr(b, "room");
        mp_write_slice(b, q->room);
    }
    if (q->has_close) {
        mp_write_cstr(b, "close");
        mp_write_bool(b, q->close);
    }
    if (q->has_data) {
        mp_write_cstr(b, "data");
        append_slice(b, q->data);
    }
    return SIOC_OK;
}

static int request_encode_json(struct buf *b, const struct adapter_request *q)
{
    bool first = true;
    buf_append_byte(b, '{');
    if (q->has_uid) {
        json_key(b, &first, "uid");
        json_slice(b, q->uid);
    }
    if (q->has_request_id) {
        json_key(b, &first, "requestId");
        json_slice(b, q->request_id);
    }
    json_key(b, &first, "type");
    buf_append_u64(b, (uint64_t)q->type);
    int err = SIOC_OK;
    if (q->has_packet) {
        /* never sent as JSON by Node; written in the same shape for completeness */
        json_key(b, &first, "packet");
        buf_append_cstr(b, "{\"type\":");
        buf_append_u64(b, (uint64_t)q->packet.type);
        buf_append_cstr(b, ",\"data\":");
        err = json_value(b, q->packet.data);
        buf_append_cstr(b, ",\"nsp\":");
        json_slice(b, q->packet.nsp);
        buf_append_byte(b, '}');
    }
    if (q->has_opts) {
        json_key(b, &first, "opts");
        json_opts(b, &q->opts);
    }
    if (q->has_rooms) {
        json_key(b, &first, "rooms");
        json_rooms(b, &q->rooms);
    }
    if (q->has_sid) {
        json_key(b, &first, "sid");
        json_slice(b, q->sid);
    }
    if (q->has_room) {
        json_key(b, &first, "room");
        json_slice(b, q->room);
    }
    if (q->has_close) {
        json_key(b, &first, "close");
        buf_append_cstr(b, q->close ? "true" : "false");
    }
    if (err == SIOC_OK && q->has_data) {
        json_key(b, &first, "data");
        err = json_value(b, q->data);
    }
    buf_append_byte(b, '}');
    return err;
}

int adapter_request_encode(struct buf *out, const struct adapter_request *req)
{
    size_t start = out->len;
    if (req->type < ADAPTER_SOCKETS || req->type > ADAPTER_BROADCAST)
        return SIOC_EINVAL;
    int err = req->type == ADAPTER_BROADCAST ? request_encode_msgpack(out, req)
                                             : request_encode_json(out, req);
    return finish(out, start, err);
}

/* BROADCAST_ACK (9) is the one msgpack response. */
static void response_encode_msgpack(struct buf *b, const struct adapter_response *s)
{
    uint32_t n = (uint32_t)s->has_type + s->has_request_id + s->has_sockets + s->has_rooms +
                 s->has_client_count + s->has_data + s->has_packet;
    mp_write_map(b, n);
    if (s->has_type) {
        mp_write_cstr(b, "type");
        mp_write_uint(b, (uint64_t)s->type);
    }
    if (s->has_request_id) {
        mp_write_cstr(b, "requestId");
        mp_write_slice(b, s->request_id);
    }
    if (s->has_sockets) {
        mp_write_cstr(b, "sockets");
        append_slice(b, s->sockets);
    }
    if (s->has_rooms) {
        mp_write_cstr(b, "rooms");
        append_slice(b, s->rooms);
    }
    if (s->has_client_count) {
        mp_write_cstr(b, "clientCount");
        mp_write_uint(b, s->client_count);
    }
    if (s->has_data) {
        mp_write_cstr(b, "data");
        append_slice(b, s->data);
    }
    if (s->has_packet) {
        mp_write_cstr(b, "packet");
        append_slice(b, s->packet);
    }
}

static int response_encode_json(struct buf *b, const struct adapter_response *s)
{
    bool first = true;
    int err = SIOC_OK;
    buf_append_byte(b, '{');
    if (s->has_type) {
        json_key(b, &first, "type");
        buf_append_u64(b, (uint64_t)s->type);
    }
    if (s->has_request_id) {
        json_key(b, &first, "requestId");
        json_slice(b, s->request_id);
    }
    if (s->has_sockets) {
        json_key(b, &first, "sockets");
        err = json_value(b, s->sockets);
    }
    if (err == SIOC_OK && s->has_rooms) {
        json_key(b, &first, "rooms");
        err = json_value(b, s->rooms);
    }
    if (s->has_client_count) {
        json_key(b, &first, "clientCount");
        buf_append_u64(b, s->client_count);
    }
    if (err == SIOC_OK && s->has_data) {
        json_key(b, &first, "data");
        err = json_value(b, s->data);
    }
    if (err == SIOC_OK && s->has_packet) {
        json_key(b, &first, "packet");
        err = json_value(b, s->packet);
    }
    buf_append_byte(b, '}');
    return err;
}

int adapter_response_encode(struct buf *out, const struct adapter_response *res)
{
    size_t start = out->len;
    if (res->has_type && res->type != ADAPTER_SERVER_SIDE_EMIT &&
        res->type != ADAPTER_BROADCAST_CLIENT_COUNT && res->type != ADAPTER_BROADCAST_ACK)
        return SIOC_EINVAL;
    int err = SIOC_OK;
    if (res->has_type && res->type == ADAPTER_BROADCAST_ACK)
        response_encode_msgpack(out, res);
    else
        err = response_encode_json(out, res);
    return finish(out, start, err);
}

/* ======================= ids ======================= */

void adapter_uid2(char *out, const uint8_t *random, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = uid2_alphabet[random[i] % 64];
    out[n] = '\0';
}
