/* cluster_msg.c: the ClusterAdapter message codec of the sharded Redis adapter (see
 * cluster_msg.h). Decoding reads the top-level map once for type, uid, nsp and the data
 * slice, then data by type; encoding writes the MessagePack form in Node's key order and
 * renders it as JSON unless it must stay binary. */
#include "common/cluster_msg.h"

#include <stddef.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"

#define MAX_SAFE_INTEGER 9007199254740992.0 /* 2^53 */

/* ======================= reading ======================= */

static bool key_is(const struct mp_item *key, const char *name)
{
    return mp_item_is_str(key, name);
}

static int read_client_count(struct mp_reader *r, struct cluster_msg *m)
{
    struct mp_item it;
    double v;
    int err = mp_read_whole(r, &it);
    if (err != SIOC_OK)
        return err;
    if (!mp_item_to_double(&it, &v) || v < 0 || v > MAX_SAFE_INTEGER || v != (double)(uint64_t)v)
        return SIOC_EPROTO;
    m->has_client_count = true;
    m->client_count = (uint64_t)v;
    return SIOC_OK;
}

/* An array of maps (FETCH_SOCKETS_RESPONSE's sockets), kept as a slice. */
static int read_sockets(struct mp_reader *r, struct cluster_msg *m)
{
    size_t start = r->pos;
    uint32_t n;
    int err = mp_read_array_len(r, &n);
    if (err != SIOC_OK)
        return err;
    for (uint32_t i = 0; i < n && err == SIOC_OK; i++) {
        if (!mp_next_is_map(r))
            return SIOC_EPROTO;
        struct slice s;
        err = mp_read_raw(r, &s);
    }
    m->has_sockets = err == SIOC_OK;
    m->sockets = (struct slice){r->p + start, r->pos - start};
    return err;
}

/* data.packet: an event packet (BROADCAST), an [event, ...args] array (SERVER_SIDE_EMIT), or
 * any value (the responses). */
static int read_packet_field(struct mp_reader *r, struct cluster_msg *m)
{
    size_t start = r->pos;
    int err;
    if (m->type == CLUSTER_MSG_BROADCAST) {
        err = adapter_read_event(r, &m->event);
        if (err == SIOC_OK && m->event.type != 2 && m->event.type != 5)
            err = SIOC_EPROTO; /* acks (3) are never broadcast */
    } else {
        struct slice v;
        err = mp_read_raw(r, &v);
        if (err == SIOC_OK && m->type == CLUSTER_MSG_SERVER_SIDE_EMIT) {
            struct mp_reader a;
            struct mp_item it, ev;
            mp_reader_init(&a, v.p, v.len);
            if (mp_read_whole(&a, &it) != SIOC_OK || it.kind != MP_ARRAY || it.len == 0 ||
                mp_read_whole(&a, &ev) != SIOC_OK || ev.kind != MP_STR)
                err = SIOC_EPROTO;
        }
    }
    m->has_packet = err == SIOC_OK;
    m->packet = (struct slice){r->p + start, r->pos - start};
    return err;
}

static int read_data_field(struct mp_reader *r, const struct mp_item *key, struct cluster_msg *m)
{
    int err;
    if (key_is(key, "requestId")) {
        err = mp_read_str(r, &m->request_id);
        m->has_request_id = err == SIOC_OK;
    } else if (key_is(key, "opts")) {
        err = adapter_read_opts(r, &m->opts);
        m->has_opts = err == SIOC_OK;
    } else if (key_is(key, "packet")) {
        err = read_packet_field(r, m);
    } else if (key_is(key, "rooms")) {
        err = adapter_read_rooms(r, &m->rooms);
        m->has_rooms = err == SIOC_OK;
    } else if (key_is(key, "close")) {
        struct mp_item it;
        err = mp_read_whole(r, &it);
        if (err == SIOC_OK && it.kind != MP_BOOL)
            err = SIOC_EPROTO;
        m->close = err == SIOC_OK && it.boolean;
    } else if (key_is(key, "clientCount")) {
        err = read_client_count(r, m);
    } else if (key_is(key, "sockets")) {
        err = read_sockets(r, m);
    } else {
        err = mp_skip_whole(r);
    }
    return err == SIOC_EAGAIN ? SIOC_EPROTO : err;
}

/* data, by type; a nil value is an absent key (JSON null / undefined). */
static int read_data(struct slice data, struct cluster_msg *m)
{
    struct mp_reader r;
    uint32_t n;
    mp_reader_init(&r, data.p, data.len);
    int err = mp_read_map_len(&r, &n);
    for (uint32_t i = 0; err == SIOC_OK && i < n; i++) {
        struct mp_item key;
        err = mp_read_whole(&r, &key);
        if (err != SIOC_OK)
            break;
        if (key.kind != MP_STR) {
            err = mp_skip(&r) == SIOC_OK ? SIOC_OK : SIOC_EPROTO;
            continue;
        }
        if (mp_next_is_nil(&r)) {
            r.pos++;
            continue;
        }
        err = read_data_field(&r, &key, m);
    }
    return err;
}

/* What each type must carry (cluster-adapter.js reads these without checking). */
static int check_required(const struct cluster_msg *m)
{
    bool ok = true;
    switch (m->type) {
    case CLUSTER_MSG_BROADCAST: ok = m->has_packet && m->has_opts; break;
    case CLUSTER_MSG_SOCKETS_JOIN:
    case CLUSTER_MSG_SOCKETS_LEAVE: ok = m->has_opts && m->has_rooms; break;
    case CLUSTER_MSG_DISCONNECT_SOCKETS: ok = m->has_opts; break;
    case CLUSTER_MSG_FETCH_SOCKETS: ok = m->has_opts && m->has_request_id; break;
    case CLUSTER_MSG_SERVER_SIDE_EMIT: ok = m->has_packet; break;
    case CLUSTER_MSG_FETCH_SOCKETS_RESPONSE: ok = m->has_request_id && m->has_sockets; break;
    case CLUSTER_MSG_BROADCAST_CLIENT_COUNT: ok = m->has_request_id && m->has_client_count; break;
    case CLUSTER_MSG_SERVER_SIDE_EMIT_RESPONSE:
    case CLUSTER_MSG_BROADCAST_ACK: ok = m->has_request_id; break;
    default: break;
    }
    return ok ? SIOC_OK : SIOC_EPROTO;
}

static int read_top(struct mp_reader *r, struct cluster_msg *m, struct slice *data, bool *has_type,
                    bool *has_uid, bool *has_nsp)
{
    uint32_t n;
    int err = mp_read_map_len(r, &n);
    for (uint32_t i = 0; err == SIOC_OK && i < n; i++) {
        struct mp_item key, it;
        err = mp_read_whole(r, &key);
        if (err != SIOC_OK)
            break;
        if (key_is(&key, "type")) {
            int64_t v;
            err = mp_read_whole(r, &it);
            if (err == SIOC_OK && !mp_item_to_i64(&it, &v))
                err = SIOC_EPROTO;
            m->type = err != SIOC_OK ? 0 : v < 1 || v > CLUSTER_MSG_TYPE_MAX ? 99 : (int)v;
            *has_type = err == SIOC_OK;
        } else if (key_is(&key, "uid")) {
            err = mp_read_str(r, &m->uid);
            *has_uid = err == SIOC_OK;
        } else if (key_is(&key, "nsp")) {
            err = mp_read_str(r, &m->nsp);
            *has_nsp = err == SIOC_OK;
        } else if (key_is(&key, "data")) {
            err = mp_read_raw(r, data);
        } else {
            err = mp_skip(r) == SIOC_OK ? SIOC_OK : SIOC_EPROTO;
        }
    }
    return err;
}

int cluster_msg_decode(const uint8_t *p, size_t len, struct buf *scratch, struct cluster_msg *out)
{
    struct mp_reader r;
    int err = adapter_open_reader(p, len, scratch, &r);
    if (err != SIOC_OK)
        return err;
    memset(out, 0, offsetof(struct cluster_msg, opts));
    out->has_packet = out->has_rooms = out->close = out->has_client_count = out->has_sockets =
        false;
    out->opts.rooms.count = out->opts.except.count = out->rooms.count = 0;
    struct slice data = {NULL, 0};
    bool has_type = false, has_uid = false, has_nsp = false;
    err = read_top(&r, out, &data, &has_type, &has_uid, &has_nsp);
    if (err == SIOC_OK && r.pos != r.len)
        err = SIOC_EPROTO; /* JSON.parse / notepack.decode refuse trailing bytes */
    if (err == SIOC_OK && (!has_type || !has_uid || !has_nsp))
        err = SIOC_EPROTO;
    if (err == SIOC_OK && out->type == 99)
        return SIOC_ENOTSUP;
    if (err == SIOC_OK && data.p != NULL && !(data.len == 1 && data.p[0] == 0xc0))
        err = read_data(data, out);
    if (err == SIOC_OK)
        err = check_required(out);
    return err == SIOC_OK ? (int)len : err;
}

/* ======================= writing ======================= */

static bool may_contain_binary(int type)
{
    return type == CLUSTER_MSG_BROADCAST || type == CLUSTER_MSG_BROADCAST_ACK ||
           type == CLUSTER_MSG_FETCH_SOCKETS_RESPONSE || type == CLUSTER_MSG_SERVER_SIDE_EMIT ||
           type == CLUSTER_MSG_SERVER_SIDE_EMIT_RESPONSE;
}

/* True when a `bin` appears anywhere in p[0..len) (a flat walk visits every item header). */
static bool has_bin(const uint8_t *p, size_t len)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, p, len);
    while (r.pos < r.len && mp_read(&r, &it) == SIOC_OK) {
        if (it.kind == MP_BIN)
            return true;
    }
    return false;
}

static void write_slice_str(struct buf *b, struct slice s)
{
    mp_write_str(b, s.p, s.len);
}

static void write_request_id(struct buf *b, const struct cluster_msg *m)
{
    mp_write_cstr(b, "requestId");
    write_slice_str(b, m->request_id);
}

static void write_opts(struct buf *b, const struct cluster_msg *m)
{
    mp_write_cstr(b, "opts");
    adapter_write_opts(b, &m->opts);
}

static void write_packet(struct buf *b, const struct cluster_msg *m)
{
    mp_write_cstr(b, "packet");
    buf_append(b, m->packet.p, m->packet.len);
}

/* BROADCAST's packet as BroadcastOperator.emit builds it: {type, data} (no nsp: the adapter
 * adds it after publishing). */
static void write_event(struct buf *b, const struct cluster_msg *m)
{
    mp_write_cstr(b, "packet");
    mp_write_map(b, 2);
    mp_write_cstr(b, "type");
    mp_write_uint(b, (uint64_t)m->event.type);
    mp_write_cstr(b, "data");
    buf_append(b, m->event.data.p, m->event.data.len);
}

static int write_data(struct buf *b, const struct cluster_msg *m)
{
    mp_write_cstr(b, "data");
    switch (m->type) {
    case CLUSTER_MSG_BROADCAST:
        mp_write_map(b, 2 + m->has_request_id);
        write_event(b, m);
        if (m->has_request_id)
            write_request_id(b, m);
        write_opts(b, m);
        break;
    case CLUSTER_MSG_SOCKETS_JOIN:
    case CLUSTER_MSG_SOCKETS_LEAVE:
        mp_write_map(b, 2);
        write_opts(b, m);
        mp_write_cstr(b, "rooms");
        adapter_write_rooms(b, &m->rooms);
        break;
    case CLUSTER_MSG_DISCONNECT_SOCKETS:
        mp_write_map(b, 2);
        write_opts(b, m);
        mp_write_cstr(b, "close");
        mp_write_bool(b, m->close);
        break;
    case CLUSTER_MSG_FETCH_SOCKETS:
        mp_write_map(b, 2);
        write_opts(b, m);
        write_request_id(b, m);
        break;
    case CLUSTER_MSG_SERVER_SIDE_EMIT:
        mp_write_map(b, 1 + m->has_request_id);
        if (m->has_request_id)
            write_request_id(b, m);
        write_packet(b, m);
        break;
    case CLUSTER_MSG_FETCH_SOCKETS_RESPONSE:
        mp_write_map(b, 2);
        write_request_id(b, m);
        mp_write_cstr(b, "sockets");
        buf_append(b, m->sockets.p, m->sockets.len);
        break;
    case CLUSTER_MSG_SERVER_SIDE_EMIT_RESPONSE:
    case CLUSTER_MSG_BROADCAST_ACK:
        mp_write_map(b, 1 + m->has_packet); /* an undefined argument: no key, as JSON/notepack */
        write_request_id(b, m);
        if (m->has_packet)
            write_packet(b, m);
        break;
    case CLUSTER_MSG_BROADCAST_CLIENT_COUNT:
        mp_write_map(b, 2);
        write_request_id(b, m);
        mp_write_cstr(b, "clientCount");
        mp_write_uint(b, m->client_count);
        break;
    default: return SIOC_EINVAL;
    }
    return SIOC_OK;
}

int cluster_msg_encode(struct buf *out, struct buf *scratch, const struct cluster_msg *msg)
{
    if (msg->type < 1 || msg->type > CLUSTER_MSG_TYPE_MAX)
        return SIOC_EINVAL;
    bool with_data = msg->type != CLUSTER_MSG_INITIAL_HEARTBEAT &&
                     msg->type != CLUSTER_MSG_HEARTBEAT && msg->type != CLUSTER_MSG_ADAPTER_CLOSE;
    buf_reset(scratch);
    mp_write_map(scratch, 3 + with_data);
    mp_write_cstr(scratch, "type");
    mp_write_uint(scratch, (uint64_t)msg->type);
    int err = with_data ? write_data(scratch, msg) : SIOC_OK;
    mp_write_cstr(scratch, "uid");
    write_slice_str(scratch, msg->uid);
    mp_write_cstr(scratch, "nsp");
    write_slice_str(scratch, msg->nsp);
    if (err == SIOC_OK)
        err = scratch->err;
    size_t start = out->len;
    if (err == SIOC_OK && may_contain_binary(msg->type) && has_bin(scratch->data, scratch->len)) {
        buf_append(out, scratch->data, scratch->len);
        err = out->err;
    } else if (err == SIOC_OK) {
        struct mp_reader r;
        mp_reader_init(&r, scratch->data, scratch->len);
        err = json_from_msgpack(&r, NULL, out);
    }
    if (err != SIOC_OK)
        buf_truncate(out, start);
    return err;
}

/* ======================= channels and modes ======================= */

void cluster_msg_channel(struct buf *out, struct slice prefix, struct slice nsp)
{
    buf_append(out, prefix.p, prefix.len);
    buf_append_byte(out, '#');
    buf_append(out, nsp.p, nsp.len);
    buf_append_byte(out, '#');
}

void cluster_msg_sub_channel(struct buf *out, struct slice prefix, struct slice nsp,
                             struct slice name)
{
    cluster_msg_channel(out, prefix, nsp);
    buf_append(out, name.p, name.len);
    buf_append_byte(out, '#');
}

bool cluster_msg_uses_room_channel(enum cluster_sub_mode mode, const struct cluster_msg *msg)
{
    if (msg->type != CLUSTER_MSG_BROADCAST || msg->has_request_id || msg->opts.rooms.count != 1)
        return false;
    /* looksLikeASocketId: a string of 20 characters (UTF-16 units; ids are ASCII) */
    return mode == CLUSTER_SUB_DYNAMIC_PRIVATE ||
           (mode == CLUSTER_SUB_DYNAMIC && msg->opts.rooms.names[0].len != 20);
}

void cluster_msg_publish_channel(struct buf *out, struct slice prefix, enum cluster_sub_mode mode,
                                 const struct cluster_msg *msg)
{
    if (cluster_msg_uses_room_channel(mode, msg))
        cluster_msg_sub_channel(out, prefix, msg->nsp, msg->opts.rooms.names[0]);
    else
        cluster_msg_channel(out, prefix, msg->nsp);
}

bool cluster_msg_room_subscribed(enum cluster_sub_mode mode, struct slice room, bool is_socket_id)
{
    if (mode == CLUSTER_SUB_STATIC)
        return false;
    if (mode == CLUSTER_SUB_DYNAMIC_PRIVATE)
        return true;
    return !(is_socket_id && room.len == 20);
}

static const char *const mode_names[] = {"dynamic", "static", "dynamic-private"};

bool cluster_sub_mode_parse(const char *s, enum cluster_sub_mode *out)
{
    for (int i = 0; i < 3; i++) {
        if (s != NULL && strcmp(s, mode_names[i]) == 0) {
            *out = (enum cluster_sub_mode)i;
            return true;
        }
    }
    return false;
}

const char *cluster_sub_mode_name(enum cluster_sub_mode mode)
{
    return (unsigned)mode < 3 ? mode_names[mode] : "?";
}
