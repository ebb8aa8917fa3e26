/* envelope.c: sioc envelope codecs (DESIGN.md 3.2-3.4), contracts in envelope.h.
 * Both decoder shapes (stream field/value slices, one MessagePack map) first collect the known
 * fields into a table, rejecting duplicates, then convert and validate per entry type with the
 * same checks the encoders run, so whatever decodes re-encodes and whatever encodes decodes. */
#include "common/envelope.h"

#include <string.h>

#include "common/error.h"
#include "common/mp.h"
#include "common/redis_slots.h"
#include "common/utf8.h"

/* ---- shared helpers ---- */

/* One known field as found in the input: for a stream the value text, for a map the whole
 * MessagePack encoding of the value. */
struct raw_field {
    struct slice v;
    bool present;
};

static struct slice cslice(const char *s)
{
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

static bool bytes_equal(const uint8_t *p, size_t len, const char *s)
{
    size_t n = strlen(s);
    return len == n && (n == 0 || memcmp(p, s, n) == 0);
}

/* Index of p[0..len) in names[0..count), or -1. */
static int name_index(const uint8_t *p, size_t len, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (bytes_equal(p, len, names[i]))
            return i;
    return -1;
}

/* Stream entries: n slices alternating field and value. */
static int collect_fields(const struct slice *kv, size_t n, const char *const *names, int count,
                          struct raw_field *raw)
{
    for (int i = 0; i < count; i++)
        raw[i] = (struct raw_field){{NULL, 0}, false};
    if (n % 2 != 0)
        return SIOC_EPROTO;
    for (size_t i = 0; i < n; i += 2) {
        int k = name_index(kv[i].p, kv[i].len, names, count);
        if (k < 0)
            continue; /* forward compatibility: newer writers may add fields */
        if (raw[k].present)
            return SIOC_EPROTO; /* two values for one field: no reading is right */
        raw[k].v = kv[i + 1];
        raw[k].present = true;
    }
    return SIOC_OK;
}

/* A map that must fill p[0..len) exactly. Returns len or SIOC_EPROTO. A message is complete
 * by construction (one pub/sub payload), so a truncated value is a protocol error here. */
static long collect_map(const uint8_t *p, size_t len, const char *const *names, int count,
                        struct raw_field *raw)
{
    struct mp_reader r;
    struct mp_item map;
    for (int i = 0; i < count; i++)
        raw[i] = (struct raw_field){{NULL, 0}, false};
    mp_reader_init(&r, p, len);
    if (mp_read(&r, &map) != SIOC_OK || map.kind != MP_MAP)
        return SIOC_EPROTO;
    for (uint32_t i = 0; i < map.len; i++) {
        struct mp_item key;
        if (mp_read(&r, &key) != SIOC_OK || key.kind != MP_STR)
            return SIOC_EPROTO;
        int k = name_index(key.data, key.len, names, count);
        size_t start = r.pos;
        if (mp_skip(&r) != SIOC_OK)
            return SIOC_EPROTO;
        if (k < 0)
            continue;
        if (raw[k].present)
            return SIOC_EPROTO;
        raw[k].v = (struct slice){p + start, r.pos - start};
        raw[k].present = true;
    }
    if (r.pos != len)
        return SIOC_EPROTO;
    return (long)len;
}

/* Canonical decimal u64: digits only, no sign, no leading zero, no overflow. */
static int parse_u64(struct slice s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0 || s.len > 20 || (s.p[0] == '0' && s.len > 1))
        return SIOC_EPROTO;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return SIOC_EPROTO;
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SIOC_EPROTO;
        v = v * 10 + d;
    }
    *out = v;
    return SIOC_OK;
}

static struct slice format_u64(uint64_t v, uint8_t out[20])
{
    uint8_t tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return (struct slice){out, n};
}

/* Typed views of a map value (an exact one-value slice from collect_map). */
static int mp_str_value(struct slice v, struct slice *out)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, v.p, v.len);
    if (mp_read(&r, &it) != SIOC_OK || it.kind != MP_STR)
        return SIOC_EPROTO;
    *out = (struct slice){it.data, it.len};
    return SIOC_OK;
}

static int mp_u64_value(struct slice v, uint64_t *out)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, v.p, v.len);
    if (mp_read(&r, &it) != SIOC_OK)
        return SIOC_EPROTO;
    if (it.kind == MP_UINT)
        *out = it.u;
    else if (it.kind == MP_INT && it.i >= 0)
        *out = (uint64_t)it.i;
    else
        return SIOC_EPROTO; /* strict: a float or string id is another writer's bug */
    return SIOC_OK;
}

static int mp_bool_value(struct slice v, bool *out)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, v.p, v.len);
    if (mp_read(&r, &it) != SIOC_OK || it.kind != MP_BOOL)
        return SIOC_EPROTO;
    *out = it.boolean;
    return SIOC_OK;
}

/* The same field read from a stream (text) or a map (MessagePack). */
static int get_str(const struct raw_field *f, bool map, struct slice *out)
{
    if (map)
        return mp_str_value(f->v, out);
    *out = f->v;
    return SIOC_OK;
}

static int get_u64(const struct raw_field *f, bool map, uint64_t *out)
{
    return map ? mp_u64_value(f->v, out) : parse_u64(f->v, out);
}

/* ---- validation shared by decoders and encoders ---- */

static int check_text(struct slice s, bool nonempty)
{
    if (nonempty && s.len == 0)
        return SIOC_EPROTO;
    if (s.len > 0 && s.p == NULL)
        return SIOC_EINVAL;
    return utf8_valid(s.p, s.len) ? SIOC_OK : SIOC_EUTF8;
}

/* Socket.IO namespaces always start with '/'. */
static int check_nsp(struct slice s)
{
    if (s.len == 0 || s.p == NULL || s.p[0] != '/')
        return SIOC_EPROTO;
    return check_text(s, true);
}

/* 3.4: the boot epoch is written as 16 lowercase hex digits (envelope.h). */
static int check_epoch(struct slice s)
{
    if (s.len != ENVELOPE_EPOCH_LEN || s.p == NULL)
        return SIOC_EPROTO;
    for (size_t i = 0; i < s.len; i++)
        if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f')))
            return SIOC_EPROTO;
    return SIOC_OK;
}

/* Exactly one well-formed MessagePack value filling s, of `kind` when want_kind is set. */
static int check_value(struct slice s, bool want_kind, enum mp_kind kind)
{
    size_t used;
    struct mp_reader r;
    struct mp_item it;
    if (s.len == 0 || s.p == NULL || mp_validate(s.p, s.len, &used) != SIOC_OK || used != s.len)
        return SIOC_EPROTO;
    mp_reader_init(&r, s.p, s.len);
    if (mp_read(&r, &it) != SIOC_OK || (want_kind && it.kind != kind))
        return SIOC_EPROTO;
    return SIOC_OK;
}

enum list_kind {
    LIST_STRINGS, /* rooms */
    LIST_EMITS,   /* [event, arg...] arrays */
};

/* A list filling raw exactly, at most `max` elements; stores the element count. */
/* 3.3: an emit is [event, arg...]: a non-empty array led by the event name. `el` is the array
 * just read from `r`; reads its items. */
static int read_emit_items(struct mp_reader *r, const struct mp_item *el)
{
    struct mp_item event;
    if (el->kind != MP_ARRAY || el->len == 0 || mp_read(r, &event) != SIOC_OK ||
        event.kind != MP_STR)
        return SIOC_EPROTO;
    if (!utf8_valid(event.data, event.len))
        return SIOC_EUTF8;
    for (uint32_t a = 1; a < el->len; a++)
        if (mp_skip(r) != SIOC_OK)
            return SIOC_EPROTO;
    return SIOC_OK;
}

/* One emit as a whole value (a call's "emit"). */
static int check_emit(struct slice s)
{
    struct mp_reader r;
    struct mp_item el;
    if (check_value(s, true, MP_ARRAY) != SIOC_OK)
        return SIOC_EPROTO;
    mp_reader_init(&r, s.p, s.len);
    if (mp_read(&r, &el) != SIOC_OK)
        return SIOC_EPROTO;
    int rc = read_emit_items(&r, &el);
    return rc == SIOC_OK && r.pos != s.len ? SIOC_EPROTO : rc;
}

static int check_list(struct slice raw, enum list_kind kind, uint32_t max, uint32_t *count)
{
    struct mp_reader r;
    struct mp_item list;
    if (raw.len == 0 || raw.p == NULL)
        return SIOC_EPROTO;
    mp_reader_init(&r, raw.p, raw.len);
    if (mp_read(&r, &list) != SIOC_OK || list.kind != MP_ARRAY)
        return SIOC_EPROTO;
    if (list.len > max)
        return SIOC_ETOOBIG;
    for (uint32_t i = 0; i < list.len; i++) {
        struct mp_item el;
        if (mp_read(&r, &el) != SIOC_OK)
            return SIOC_EPROTO;
        if (kind == LIST_EMITS) {
            int rc = read_emit_items(&r, &el);
            if (rc != SIOC_OK)
                return rc;
        } else if (el.kind != MP_STR) {
            return SIOC_EPROTO;
        } else if (!utf8_valid(el.data, el.len)) {
            return SIOC_EUTF8;
        }
    }
    if (r.pos != raw.len)
        return SIOC_EPROTO;
    *count = list.len;
    return SIOC_OK;
}

/* ---- list iteration ---- */

void envelope_iter_init(struct envelope_iter *it, const struct envelope_list *list)
{
    struct mp_reader r;
    struct mp_item head;
    it->p = list->raw.p;
    it->len = list->raw.len;
    it->pos = 0;
    it->left = 0;
    if (it->len == 0 || it->p == NULL)
        return;
    mp_reader_init(&r, it->p, it->len);
    if (mp_read(&r, &head) == SIOC_OK && head.kind == MP_ARRAY) {
        it->pos = r.pos;
        it->left = head.len;
    }
}

bool envelope_iter_next(struct envelope_iter *it, struct slice *out)
{
    struct mp_reader r;
    struct mp_item el;
    if (it->left == 0)
        return false;
    mp_reader_init(&r, it->p, it->len);
    r.pos = it->pos;
    size_t start = r.pos;
    if (mp_read(&r, &el) != SIOC_OK) {
        it->left = 0;
        return false;
    }
    if (el.kind == MP_STR) {
        *out = (struct slice){el.data, el.len};
    } else {
        r.pos = start;
        if (mp_skip(&r) != SIOC_OK) {
            it->left = 0;
            return false;
        }
        *out = (struct slice){it->p + start, r.pos - start};
    }
    it->pos = r.pos;
    it->left--;
    return true;
}

/* ---- encoding helpers ---- */

static void put_field(struct envelope_fields *f, const char *name, struct slice value)
{
    f->kv[f->n++] = cslice(name);
    f->kv[f->n++] = value;
}

static void write_str(struct buf *b, struct slice s)
{
    mp_write_str(b, s.p, s.len);
}

/* ---- 3.2 upstream entries ---- */

enum up_field {
    UP_V,
    UP_TYPE,
    UP_NSP,
    UP_SID,
    UP_NODE,
    UP_UID,
    UP_TS,
    UP_EVENT,
    UP_ARGS,
    UP_ACK,
    UP_AUTH,
    UP_HS,
    UP_RID,
    UP_REASON,
    UP_FIELD_COUNT
};

static const char *const up_names[UP_FIELD_COUNT] = {
    "v",     "type", "nsp", "sid",  "node", "uid", "ts",
    "event", "args", "ack", "auth", "hs",   "rid", "reason",
};

/* Indexed by enum envelope_up_type. */
static const char *const up_types[] = {"connect", "event", "disconnect"};
#define UP_TYPE_COUNT ((int)(sizeof up_types / sizeof up_types[0]))

#define UP_BIT(f) (1u << (f))
#define UP_COMMON                                                                                  \
    (UP_BIT(UP_V) | UP_BIT(UP_TYPE) | UP_BIT(UP_NSP) | UP_BIT(UP_SID) | UP_BIT(UP_NODE) |          \
     UP_BIT(UP_UID) | UP_BIT(UP_TS))

/* 3.2: the fields each entry type must carry (ack and rid are optional). */
static const unsigned up_required[UP_TYPE_COUNT] = {
    [ENVELOPE_UP_CONNECT] = UP_COMMON | UP_BIT(UP_AUTH) | UP_BIT(UP_HS),
    [ENVELOPE_UP_EVENT] = UP_COMMON | UP_BIT(UP_EVENT) | UP_BIT(UP_ARGS),
    [ENVELOPE_UP_DISCONNECT] = UP_COMMON | UP_BIT(UP_REASON),
};

static int up_check(const struct envelope_up *up)
{
    int rc;
    if ((int)up->type < 0 || (int)up->type >= UP_TYPE_COUNT)
        return SIOC_EPROTO;
    rc = check_nsp(up->nsp);
    if (rc == SIOC_OK)
        rc = check_text(up->sid, true);
    if (rc == SIOC_OK)
        rc = check_text(up->node, true);
    if (rc == SIOC_OK)
        rc = check_text(up->uid, false);
    if (rc != SIOC_OK)
        return rc;
    switch (up->type) {
    case ENVELOPE_UP_EVENT:
        rc = check_text(up->event, false);
        if (rc == SIOC_OK)
            rc = check_value(up->args, true, MP_ARRAY);
        break;
    case ENVELOPE_UP_CONNECT:
        rc = check_value(up->auth, false, MP_NIL);
        if (rc == SIOC_OK)
            rc = check_value(up->hs, true, MP_MAP);
        if (rc == SIOC_OK && up->has_rid)
            rc = check_text(up->rid, true);
        break;
    case ENVELOPE_UP_DISCONNECT: rc = check_text(up->reason, false); break;
    }
    return rc;
}

/* Converts collected fields (text for a stream, MessagePack for a map) into *out. */
static int up_from_raw(const struct raw_field *raw, bool map, struct envelope_up *out)
{
    uint64_t v;
    struct slice type;
    int rc;
    memset(out, 0, sizeof *out);
    if (!raw[UP_V].present || !raw[UP_TYPE].present)
        return SIOC_EPROTO;
    rc = get_u64(&raw[UP_V], map, &v);
    if (rc != SIOC_OK)
        return rc;
    if (v != 1)
        return SIOC_ENOTSUP; /* a future envelope version: the reader must be upgraded */
    rc = get_str(&raw[UP_TYPE], map, &type);
    if (rc != SIOC_OK)
        return rc;
    int t = name_index(type.p, type.len, up_types, UP_TYPE_COUNT);
    if (t < 0)
        return SIOC_ENOTSUP;
    out->type = (enum envelope_up_type)t;
    for (int f = 0; f < UP_FIELD_COUNT; f++)
        if ((up_required[t] & UP_BIT(f)) && !raw[f].present)
            return SIOC_EPROTO;

    rc = get_str(&raw[UP_NSP], map, &out->nsp);
    if (rc == SIOC_OK)
        rc = get_str(&raw[UP_SID], map, &out->sid);
    if (rc == SIOC_OK)
        rc = get_str(&raw[UP_NODE], map, &out->node);
    if (rc == SIOC_OK)
        rc = get_str(&raw[UP_UID], map, &out->uid);
    if (rc == SIOC_OK)
        rc = get_u64(&raw[UP_TS], map, &out->ts);
    if (rc != SIOC_OK)
        return rc;
    switch (out->type) {
    case ENVELOPE_UP_EVENT:
        rc = get_str(&raw[UP_EVENT], map, &out->event);
        out->args = raw[UP_ARGS].v;
        out->has_ack = raw[UP_ACK].present;
        if (rc == SIOC_OK && out->has_ack)
            rc = get_u64(&raw[UP_ACK], map, &out->ack);
        break;
    case ENVELOPE_UP_CONNECT:
        out->auth = raw[UP_AUTH].v;
        out->hs = raw[UP_HS].v;
        out->has_rid = raw[UP_RID].present;
        if (out->has_rid)
            rc = get_str(&raw[UP_RID], map, &out->rid);
        break;
    case ENVELOPE_UP_DISCONNECT: rc = get_str(&raw[UP_REASON], map, &out->reason); break;
    }
    return rc != SIOC_OK ? rc : up_check(out);
}

int envelope_up_to_fields(const struct envelope_up *up, struct envelope_fields *out)
{
    out->n = 0;
    if (up_check(up) != SIOC_OK)
        return SIOC_EINVAL;
    put_field(out, "v", cslice("1"));
    put_field(out, "type", cslice(up_types[up->type]));
    put_field(out, "nsp", up->nsp);
    put_field(out, "sid", up->sid);
    put_field(out, "node", up->node);
    put_field(out, "uid", up->uid);
    put_field(out, "ts", format_u64(up->ts, out->digits[0]));
    switch (up->type) {
    case ENVELOPE_UP_EVENT:
        put_field(out, "event", up->event);
        put_field(out, "args", up->args);
        if (up->has_ack)
            put_field(out, "ack", format_u64(up->ack, out->digits[1]));
        break;
    case ENVELOPE_UP_CONNECT:
        put_field(out, "auth", up->auth);
        put_field(out, "hs", up->hs);
        if (up->has_rid)
            put_field(out, "rid", up->rid);
        if (up->recovered)
            put_field(out, "recovered", cslice("1"));
        break;
    case ENVELOPE_UP_DISCONNECT: put_field(out, "reason", up->reason); break;
    }
    return SIOC_OK;
}

int envelope_up_from_fields(const struct slice *kv, size_t n, struct envelope_up *out)
{
    struct raw_field raw[UP_FIELD_COUNT];
    int rc = collect_fields(kv, n, up_names, UP_FIELD_COUNT, raw);
    return rc != SIOC_OK ? rc : up_from_raw(raw, false, out);
}

int envelope_up_encode_map(const struct envelope_up *up, struct buf *b)
{
    if (up_check(up) != SIOC_OK)
        return SIOC_EINVAL;
    uint32_t pairs = 7;
    if (up->type == ENVELOPE_UP_EVENT)
        pairs += 2 + up->has_ack;
    else if (up->type == ENVELOPE_UP_CONNECT)
        pairs += 2 + up->has_rid + up->recovered;
    else
        pairs += 1;
    mp_write_map(b, pairs);
    mp_write_cstr(b, "v");
    mp_write_uint(b, 1);
    mp_write_cstr(b, "type");
    mp_write_cstr(b, up_types[up->type]);
    mp_write_cstr(b, "nsp");
    write_str(b, up->nsp);
    mp_write_cstr(b, "sid");
    write_str(b, up->sid);
    mp_write_cstr(b, "node");
    write_str(b, up->node);
    mp_write_cstr(b, "uid");
    write_str(b, up->uid);
    mp_write_cstr(b, "ts");
    mp_write_uint(b, up->ts);
    switch (up->type) {
    case ENVELOPE_UP_EVENT:
        mp_write_cstr(b, "event");
        write_str(b, up->event);
        mp_write_cstr(b, "args");
        buf_append(b, up->args.p, up->args.len); /* already MessagePack: embedded as is */
        if (up->has_ack) {
            mp_write_cstr(b, "ack");
            mp_write_uint(b, up->ack);
        }
        break;
    case ENVELOPE_UP_CONNECT:
        mp_write_cstr(b, "auth");
        buf_append(b, up->auth.p, up->auth.len);
        mp_write_cstr(b, "hs");
        buf_append(b, up->hs.p, up->hs.len);
        if (up->has_rid) {
            mp_write_cstr(b, "rid");
            write_str(b, up->rid);
        }
        if (up->recovered) {
            mp_write_cstr(b, "recovered");
            mp_write_uint(b, 1);
        }
        break;
    case ENVELOPE_UP_DISCONNECT:
        mp_write_cstr(b, "reason");
        write_str(b, up->reason);
        break;
    }
    return b->err;
}

long envelope_up_decode_map(const uint8_t *p, size_t len, struct envelope_up *out)
{
    struct raw_field raw[UP_FIELD_COUNT];
    long n = collect_map(p, len, up_names, UP_FIELD_COUNT, raw);
    if (n < 0)
        return n;
    int rc = up_from_raw(raw, true, out);
    return rc != SIOC_OK ? rc : n;
}

/* ---- 3.3 directed replies ---- */

enum reply_key {
    RK_T,
    RK_NSP,
    RK_SID,
    RK_ACK,
    RK_EMIT,
    RK_JOIN,
    RK_LEAVE,
    RK_DISCONNECT,
    RK_RID,
    RK_OK,
    RK_UID,
    RK_ROOMS,
    RK_DATA,
    RK_ERROR,
    RK_CALL,
    RK_COUNT
};

static const char *const reply_names[RK_COUNT] = {
    "t",   "nsp", "sid", "ack",   "emit", "join",  "leave", "disconnect",
    "rid", "ok",  "uid", "rooms", "data", "error", "call",
};

/* Indexed by enum envelope_reply_type. */
static const char *const reply_types[] = {"reply", "connect", "snapshot"};

enum ack_key { AK_ID, AK_ARGS, AK_COUNT };
static const char *const ack_names[AK_COUNT] = {"id", "args"};
enum call_key { CK_ID, CK_TO, CK_EMIT, CK_COUNT };
static const char *const call_names[CK_COUNT] = {"id", "to", "emit"};
enum error_key { EK_MESSAGE, EK_DATA, EK_COUNT };
static const char *const error_names[EK_COUNT] = {"message", "data"};

/* An optional list: absent (empty raw) or a valid list; stores its count. */
static int check_opt_list(struct envelope_list *l, enum list_kind kind, uint32_t max)
{
    l->count = 0;
    return l->raw.len == 0 ? SIOC_OK : check_list(l->raw, kind, max, &l->count);
}

static int reply_check(struct envelope_reply *r)
{
    int rc;
    switch (r->t) {
    case ENVELOPE_REPLY:
        rc = check_nsp(r->nsp);
        if (rc == SIOC_OK)
            rc = check_text(r->sid, true);
        if (rc == SIOC_OK && r->has_ack)
            rc = check_value(r->ack_args, true, MP_ARRAY);
        if (rc == SIOC_OK)
            rc = check_opt_list(&r->emit, LIST_EMITS, ENVELOPE_MAX_EMITS);
        if (rc == SIOC_OK)
            rc = check_opt_list(&r->join, LIST_STRINGS, ENVELOPE_MAX_ROOMS);
        if (rc == SIOC_OK)
            rc = check_opt_list(&r->leave, LIST_STRINGS, ENVELOPE_MAX_ROOMS);
        if (rc == SIOC_OK && r->has_call) {
            if (r->call_id.len > ENVELOPE_MAX_CALL_ID || r->call_to.len > ENVELOPE_MAX_CALL_TO)
                return SIOC_ETOOBIG;
            rc = check_text(r->call_id, true);
            if (rc == SIOC_OK)
                rc = check_text(r->call_to, true);
            if (rc == SIOC_OK)
                rc = check_emit(r->call_emit);
        }
        return rc;
    case ENVELOPE_SNAPSHOT_REQUEST: return SIOC_OK;
    case ENVELOPE_REPLY_CONNECT:
        rc = check_text(r->rid, true);
        if (rc == SIOC_OK && r->has_uid)
            rc = check_text(r->uid, false);
        if (rc == SIOC_OK)
            rc = check_opt_list(&r->rooms, LIST_STRINGS, ENVELOPE_MAX_ROOMS);
        if (rc == SIOC_OK && r->has_data)
            rc = check_value(r->data, false, MP_NIL);
        if (rc == SIOC_OK && r->has_error)
            rc = check_text(r->error_message, false);
        if (rc == SIOC_OK && r->has_error && r->has_error_data)
            rc = check_value(r->error_data, false, MP_NIL);
        return rc;
    }
    return SIOC_EPROTO;
}

static int reply_decode_reply(const struct raw_field *raw, struct envelope_reply *out)
{
    int rc;
    if (!raw[RK_NSP].present || !raw[RK_SID].present)
        return SIOC_EPROTO;
    rc = mp_str_value(raw[RK_NSP].v, &out->nsp);
    if (rc == SIOC_OK)
        rc = mp_str_value(raw[RK_SID].v, &out->sid);
    if (rc == SIOC_OK && raw[RK_ACK].present) {
        struct raw_field ack[AK_COUNT];
        if (collect_map(raw[RK_ACK].v.p, raw[RK_ACK].v.len, ack_names, AK_COUNT, ack) < 0 ||
            !ack[AK_ID].present || !ack[AK_ARGS].present)
            return SIOC_EPROTO;
        out->has_ack = true;
        out->ack_args = ack[AK_ARGS].v;
        rc = mp_u64_value(ack[AK_ID].v, &out->ack_id);
    }
    if (raw[RK_EMIT].present)
        out->emit.raw = raw[RK_EMIT].v;
    if (raw[RK_JOIN].present)
        out->join.raw = raw[RK_JOIN].v;
    if (raw[RK_LEAVE].present)
        out->leave.raw = raw[RK_LEAVE].v;
    if (rc == SIOC_OK && raw[RK_DISCONNECT].present)
        rc = mp_bool_value(raw[RK_DISCONNECT].v, &out->disconnect);
    if (rc == SIOC_OK && raw[RK_CALL].present) {
        struct raw_field call[CK_COUNT];
        if (collect_map(raw[RK_CALL].v.p, raw[RK_CALL].v.len, call_names, CK_COUNT, call) < 0 ||
            !call[CK_ID].present || !call[CK_TO].present || !call[CK_EMIT].present)
            return SIOC_EPROTO;
        out->has_call = true;
        out->call_emit = call[CK_EMIT].v;
        rc = mp_str_value(call[CK_ID].v, &out->call_id);
        if (rc == SIOC_OK)
            rc = mp_str_value(call[CK_TO].v, &out->call_to);
    }
    return rc;
}

static int reply_decode_connect(const struct raw_field *raw, struct envelope_reply *out)
{
    int rc;
    if (!raw[RK_RID].present || !raw[RK_OK].present)
        return SIOC_EPROTO;
    rc = mp_str_value(raw[RK_RID].v, &out->rid);
    if (rc == SIOC_OK)
        rc = mp_bool_value(raw[RK_OK].v, &out->ok);
    out->has_uid = raw[RK_UID].present;
    if (rc == SIOC_OK && out->has_uid)
        rc = mp_str_value(raw[RK_UID].v, &out->uid);
    if (raw[RK_ROOMS].present)
        out->rooms.raw = raw[RK_ROOMS].v;
    out->has_data = raw[RK_DATA].present;
    out->data = raw[RK_DATA].v;
    if (rc == SIOC_OK && raw[RK_ERROR].present) {
        struct raw_field err[EK_COUNT];
        if (collect_map(raw[RK_ERROR].v.p, raw[RK_ERROR].v.len, error_names, EK_COUNT, err) < 0 ||
            !err[EK_MESSAGE].present)
            return SIOC_EPROTO;
        out->has_error = true;
        out->has_error_data = err[EK_DATA].present;
        out->error_data = err[EK_DATA].v;
        rc = mp_str_value(err[EK_MESSAGE].v, &out->error_message);
    }
    return rc;
}

long envelope_reply_decode(const uint8_t *p, size_t len, struct envelope_reply *out)
{
    struct raw_field raw[RK_COUNT];
    struct slice t;
    memset(out, 0, sizeof *out);
    long n = collect_map(p, len, reply_names, RK_COUNT, raw);
    if (n < 0)
        return n;
    if (!raw[RK_T].present || mp_str_value(raw[RK_T].v, &t) != SIOC_OK)
        return SIOC_EPROTO;
    int rc;
    if (bytes_equal(t.p, t.len, reply_types[ENVELOPE_REPLY])) {
        out->t = ENVELOPE_REPLY;
        rc = reply_decode_reply(raw, out);
    } else if (bytes_equal(t.p, t.len, reply_types[ENVELOPE_REPLY_CONNECT])) {
        out->t = ENVELOPE_REPLY_CONNECT;
        rc = reply_decode_connect(raw, out);
    } else if (bytes_equal(t.p, t.len, reply_types[ENVELOPE_SNAPSHOT_REQUEST])) {
        out->t = ENVELOPE_SNAPSHOT_REQUEST;
        rc = SIOC_OK;
    } else {
        return SIOC_ENOTSUP; /* a newer worker's message kind */
    }
    if (rc == SIOC_OK)
        rc = reply_check(out);
    return rc != SIOC_OK ? rc : n;
}

static void write_list(struct buf *b, const char *key, const struct envelope_list *l)
{
    if (l->raw.len == 0)
        return;
    mp_write_cstr(b, key);
    buf_append(b, l->raw.p, l->raw.len);
}

int envelope_reply_encode(const struct envelope_reply *r, struct buf *b)
{
    struct envelope_reply copy = *r; /* reply_check stores list counts */
    if (reply_check(&copy) != SIOC_OK)
        return SIOC_EINVAL;
    if (r->t == ENVELOPE_REPLY) {
        mp_write_map(b, 3u + r->has_ack + (r->emit.raw.len > 0) + (r->join.raw.len > 0) +
                            (r->leave.raw.len > 0) + r->disconnect + r->has_call);
        mp_write_cstr(b, "t");
        mp_write_cstr(b, "reply");
        mp_write_cstr(b, "nsp");
        write_str(b, r->nsp);
        mp_write_cstr(b, "sid");
        write_str(b, r->sid);
        if (r->has_ack) {
            mp_write_cstr(b, "ack");
            mp_write_map(b, 2);
            mp_write_cstr(b, "id");
            mp_write_uint(b, r->ack_id);
            mp_write_cstr(b, "args");
            buf_append(b, r->ack_args.p, r->ack_args.len);
        }
        write_list(b, "emit", &r->emit);
        write_list(b, "join", &r->join);
        write_list(b, "leave", &r->leave);
        if (r->disconnect) {
            mp_write_cstr(b, "disconnect");
            mp_write_bool(b, true);
        }
        if (r->has_call) {
            mp_write_cstr(b, "call");
            mp_write_map(b, 3);
            mp_write_cstr(b, "id");
            write_str(b, r->call_id);
            mp_write_cstr(b, "to");
            write_str(b, r->call_to);
            mp_write_cstr(b, "emit");
            buf_append(b, r->call_emit.p, r->call_emit.len);
        }
        return b->err;
    }
    if (r->t == ENVELOPE_SNAPSHOT_REQUEST) {
        mp_write_map(b, 1);
        mp_write_cstr(b, "t");
        mp_write_cstr(b, "snapshot");
        return b->err;
    }
    mp_write_map(b, 3u + r->has_uid + (r->rooms.raw.len > 0) + r->has_data + r->has_error);
    mp_write_cstr(b, "t");
    mp_write_cstr(b, "connect");
    mp_write_cstr(b, "rid");
    write_str(b, r->rid);
    mp_write_cstr(b, "ok");
    mp_write_bool(b, r->ok);
    if (r->has_uid) {
        mp_write_cstr(b, "uid");
        write_str(b, r->uid);
    }
    write_list(b, "rooms", &r->rooms);
    if (r->has_data) {
        mp_write_cstr(b, "data");
        buf_append(b, r->data.p, r->data.len);
    }
    if (r->has_error) {
        mp_write_cstr(b, "error");
        mp_write_map(b, 1 + r->has_error_data);
        mp_write_cstr(b, "message");
        write_str(b, r->error_message);
        if (r->has_error_data) {
            mp_write_cstr(b, "data");
            buf_append(b, r->error_data.p, r->error_data.len);
        }
    }
    return b->err;
}

static int call_result_check(const struct envelope_call_result *c)
{
    if (c->id.len > ENVELOPE_MAX_CALL_ID)
        return SIOC_ETOOBIG;
    int rc = check_text(c->id, true);
    if (rc == SIOC_OK)
        rc = check_nsp(c->nsp);
    if (rc == SIOC_OK)
        rc = check_text(c->sid, true);
    if (rc == SIOC_OK)
        rc = c->has_args ? check_value(c->args, true, MP_ARRAY) : check_text(c->error, true);
    return rc;
}

int envelope_call_result_encode(const struct envelope_call_result *c, struct buf *b)
{
    if (call_result_check(c) != SIOC_OK)
        return SIOC_EINVAL;
    mp_write_map(b, 5);
    mp_write_cstr(b, "t");
    mp_write_cstr(b, "ack");
    mp_write_cstr(b, "id");
    write_str(b, c->id);
    mp_write_cstr(b, "nsp");
    write_str(b, c->nsp);
    mp_write_cstr(b, "sid");
    write_str(b, c->sid);
    if (c->has_args) {
        mp_write_cstr(b, "args");
        buf_append(b, c->args.p, c->args.len);
    } else {
        mp_write_cstr(b, "error");
        write_str(b, c->error);
    }
    return b->err;
}

enum call_result_key { CR_T, CR_ID, CR_NSP, CR_SID, CR_ARGS, CR_ERROR, CR_COUNT };
static const char *const call_result_names[CR_COUNT] = {"t", "id", "nsp", "sid", "args", "error"};

long envelope_call_result_decode(const uint8_t *p, size_t len, struct envelope_call_result *out)
{
    struct raw_field raw[CR_COUNT];
    struct slice t;
    memset(out, 0, sizeof *out);
    long n = collect_map(p, len, call_result_names, CR_COUNT, raw);
    if (n < 0)
        return n;
    if (!raw[CR_T].present || mp_str_value(raw[CR_T].v, &t) != SIOC_OK)
        return SIOC_EPROTO;
    if (!bytes_equal(t.p, t.len, "ack"))
        return SIOC_ENOTSUP;
    /* docs/contracts.md "Calls": the answer carries args or error, never both */
    if (!raw[CR_ID].present || !raw[CR_NSP].present || !raw[CR_SID].present ||
        raw[CR_ARGS].present == raw[CR_ERROR].present)
        return SIOC_EPROTO;
    int rc = mp_str_value(raw[CR_ID].v, &out->id);
    if (rc == SIOC_OK)
        rc = mp_str_value(raw[CR_NSP].v, &out->nsp);
    if (rc == SIOC_OK)
        rc = mp_str_value(raw[CR_SID].v, &out->sid);
    out->has_args = raw[CR_ARGS].present;
    if (out->has_args)
        out->args = raw[CR_ARGS].v;
    else if (rc == SIOC_OK)
        rc = mp_str_value(raw[CR_ERROR].v, &out->error);
    if (rc == SIOC_OK)
        rc = call_result_check(out);
    return rc != SIOC_OK ? rc : n;
}

/* ---- 3.4 registry ---- */

enum reg_field { RF_NODE, RF_EPOCH, RF_SEQ, RF_OP, RF_NSP, RF_SID, RF_UID, RF_ROOMS, RF_COUNT };

static const char *const reg_names[RF_COUNT] = {
    "node", "epoch", "seq", "op", "nsp", "sid", "uid", "rooms",
};

/* Indexed by enum envelope_reg_op. */
static const char *const reg_ops[] = {"connect", "disconnect", "join", "leave", "snapshot"};
#define REG_OP_COUNT ((int)(sizeof reg_ops / sizeof reg_ops[0]))

static int reg_check(struct envelope_reg *e)
{
    int rc;
    if ((int)e->op < 0 || (int)e->op >= REG_OP_COUNT)
        return SIOC_EPROTO;
    rc = check_text(e->node, true);
    if (rc == SIOC_OK)
        rc = check_epoch(e->epoch);
    if (rc == SIOC_OK)
        rc = check_nsp(e->nsp);
    if (rc == SIOC_OK)
        rc = check_text(e->sid, true);
    if (rc == SIOC_OK)
        rc = check_text(e->uid, false);
    if (rc == SIOC_OK)
        rc = check_list(e->rooms.raw, LIST_STRINGS, ENVELOPE_MAX_ROOMS, &e->rooms.count);
    return rc;
}

int envelope_reg_to_fields(const struct envelope_reg *e, struct envelope_fields *out)
{
    struct envelope_reg copy = *e; /* reg_check stores the room count */
    out->n = 0;
    if (reg_check(&copy) != SIOC_OK)
        return SIOC_EINVAL;
    put_field(out, "node", e->node);
    put_field(out, "epoch", e->epoch);
    put_field(out, "seq", format_u64(e->seq, out->digits[0]));
    put_field(out, "op", cslice(reg_ops[e->op]));
    put_field(out, "nsp", e->nsp);
    put_field(out, "sid", e->sid);
    put_field(out, "uid", e->uid);
    put_field(out, "rooms", e->rooms.raw);
    return SIOC_OK;
}

int envelope_reg_from_fields(const struct slice *kv, size_t n, struct envelope_reg *out)
{
    struct raw_field raw[RF_COUNT];
    memset(out, 0, sizeof *out);
    int rc = collect_fields(kv, n, reg_names, RF_COUNT, raw);
    if (rc != SIOC_OK)
        return rc;
    for (int f = 0; f < RF_COUNT; f++)
        if (!raw[f].present)
            return SIOC_EPROTO; /* every op carries every field (envelope.h) */
    int op = name_index(raw[RF_OP].v.p, raw[RF_OP].v.len, reg_ops, REG_OP_COUNT);
    if (op < 0)
        return SIOC_ENOTSUP;
    out->op = (enum envelope_reg_op)op;
    out->node = raw[RF_NODE].v;
    out->epoch = raw[RF_EPOCH].v;
    out->nsp = raw[RF_NSP].v;
    out->sid = raw[RF_SID].v;
    out->uid = raw[RF_UID].v;
    out->rooms.raw = raw[RF_ROOMS].v;
    rc = parse_u64(raw[RF_SEQ].v, &out->seq);
    return rc != SIOC_OK ? rc : reg_check(out);
}

void envelope_epoch_format(uint64_t random_bits, uint8_t out[ENVELOPE_EPOCH_LEN])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < ENVELOPE_EPOCH_LEN; i++)
        out[i] = (uint8_t)hex[(random_bits >> (4 * (ENVELOPE_EPOCH_LEN - 1 - i))) & 0xf];
}

/* ---- 3.4 node info (P:nodes hash values) ---- */

enum node_key { NK_EPOCH, NK_ADDRESS, NK_STARTED, NK_SOCKETS, NK_COUNT };
static const char *const node_names[NK_COUNT] = {"epoch", "address", "started", "sockets"};

static int node_info_check(const struct envelope_node_info *ni)
{
    int rc = check_epoch(ni->epoch);
    return rc != SIOC_OK ? rc : check_text(ni->address, true);
}

int envelope_node_info_encode(const struct envelope_node_info *ni, struct buf *b)
{
    if (node_info_check(ni) != SIOC_OK)
        return SIOC_EINVAL;
    mp_write_map(b, NK_COUNT);
    mp_write_cstr(b, "epoch");
    write_str(b, ni->epoch);
    mp_write_cstr(b, "address");
    write_str(b, ni->address);
    mp_write_cstr(b, "started");
    mp_write_uint(b, ni->started);
    mp_write_cstr(b, "sockets");
    mp_write_uint(b, ni->sockets);
    return b->err;
}

long envelope_node_info_decode(const uint8_t *p, size_t len, struct envelope_node_info *out)
{
    struct raw_field raw[NK_COUNT];
    memset(out, 0, sizeof *out);
    long n = collect_map(p, len, node_names, NK_COUNT, raw);
    if (n < 0)
        return n;
    for (int k = 0; k < NK_COUNT; k++)
        if (!raw[k].present)
            return SIOC_EPROTO;
    int rc = mp_str_value(raw[NK_EPOCH].v, &out->epoch);
    if (rc == SIOC_OK)
        rc = mp_str_value(raw[NK_ADDRESS].v, &out->address);
    if (rc == SIOC_OK)
        rc = mp_u64_value(raw[NK_STARTED].v, &out->started);
    if (rc == SIOC_OK)
        rc = mp_u64_value(raw[NK_SOCKETS].v, &out->sockets);
    if (rc == SIOC_OK)
        rc = node_info_check(out);
    return rc != SIOC_OK ? rc : n;
}

/* ---- 3.2 shard selection ---- */

uint32_t envelope_fnv1a32(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t envelope_shard(const uint8_t *sid, size_t len, uint32_t shards)
{
    return shards == 0 ? 0 : envelope_fnv1a32(sid, len) % shards;
}

/* ---- key names (DESIGN.md 3.2-3.4) ---- */

static void key_begin(struct buf *b, const char *prefix, const char *kind)
{
    buf_append_cstr(b, prefix);
    buf_append_byte(b, ':');
    buf_append_cstr(b, kind);
}

static void key_part(struct buf *b, struct slice part)
{
    buf_append_byte(b, ':');
    buf_append(b, part.p, part.len);
}

void envelope_key_up_stream(struct buf *b, const char *prefix, struct slice nsp, uint32_t shard,
                            uint32_t shards)
{
    if (!redis_prefix_is_cluster(prefix)) {
        key_begin(b, prefix, "up");
        key_part(b, nsp);
        buf_append_byte(b, ':');
        buf_append_u64(b, shard);
        return;
    }
    char tag[32];
    size_t n = redis_spread_tag(shard, shards, tag, sizeof tag);
    buf_append(b, prefix + 1, strlen(prefix) - 2); /* P without its braces */
    buf_append_cstr(b, ":up");
    key_part(b, nsp);
    buf_append_cstr(b, ":{");
    if (n == 0) /* shard >= shards: a caller bug; keep the shard visible, in its own tag */
        buf_append_u64(b, shard);
    else
        buf_append(b, tag, n);
    buf_append_byte(b, '}');
}

void envelope_key_up_channel(struct buf *b, const char *prefix, struct slice nsp)
{
    key_begin(b, prefix, "up");
    key_part(b, nsp);
}

void envelope_key_node(struct buf *b, const char *prefix, struct slice node)
{
    key_begin(b, prefix, "node");
    key_part(b, node);
}

void envelope_key_hb(struct buf *b, const char *prefix, struct slice node)
{
    key_begin(b, prefix, "hb");
    key_part(b, node);
}

void envelope_key_nodes(struct buf *b, const char *prefix)
{
    key_begin(b, prefix, "nodes");
}

void envelope_key_registry(struct buf *b, const char *prefix)
{
    key_begin(b, prefix, "registry");
}

void envelope_key_sid(struct buf *b, const char *prefix, struct slice sid)
{
    key_begin(b, prefix, "sid");
    key_part(b, sid);
}

void envelope_key_user(struct buf *b, const char *prefix, struct slice uid)
{
    key_begin(b, prefix, "user");
    key_part(b, uid);
}

void envelope_key_room(struct buf *b, const char *prefix, struct slice nsp, struct slice room)
{
    key_begin(b, prefix, "room");
    key_part(b, nsp);
    key_part(b, room);
}

void envelope_key_node_sids(struct buf *b, const char *prefix, struct slice node)
{
    key_begin(b, prefix, "node-sids");
    key_part(b, node);
}
