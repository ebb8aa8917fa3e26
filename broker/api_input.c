/* api_input.c: validation of API request bodies, selectors, paths and queries (DESIGN.md §2
 * sioc-broker). Bodies go through json_to_msgpack once; every check then walks the MessagePack
 * with mp_read, so nothing is trusted before its type and count were looked at. */
#include "broker/api_input.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/user_room.h"
#include "common/error.h"
#include "common/hex.h"
#include "common/json.h"
#include "common/mp.h"

#define API_MAX_BODY_MP ((size_t)4 << 20) /* MessagePack form of a body (the JSON is <= 1 MiB) */

enum field_type { F_STRING, F_STRINGS, F_ARRAY, F_BOOL, F_ACK };

#define K_EMIT (1u << API_BODY_EMIT)
#define K_JOIN (1u << API_BODY_JOIN)
#define K_LEAVE (1u << API_BODY_LEAVE)
#define K_DISCONNECT (1u << API_BODY_DISCONNECT)
#define K_ALL (K_EMIT | K_JOIN | K_LEAVE | K_DISCONNECT)

struct field {
    const char *name;
    enum field_type type;
    unsigned kinds; /* endpoints that accept it */
};

static const struct field fields[] = {
    {"nsp", F_STRING, K_ALL},
    {"event", F_STRING, K_EMIT},
    {"args", F_ARRAY, K_EMIT},
    {"rooms", F_STRINGS, K_ALL},
    {"users", F_STRINGS, K_ALL},
    {"sids", F_STRINGS, K_ALL},
    {"except", F_STRINGS, K_ALL},
    {"volatile", F_BOOL, K_EMIT},
    {"to", F_STRINGS, K_JOIN | K_LEAVE},
    {"close", F_BOOL, K_DISCONNECT},
    {"ack", F_ACK, K_EMIT},
};
#define FIELD_COUNT (sizeof fields / sizeof fields[0])

/* Socket.IO reserves these event names (socket.io's RESERVED_EVENTS); the emitter refuses them. */
static const char *const reserved_events[] = {"connect",       "connect_error", "disconnect",
                                              "disconnecting", "newListener",   "removeListener"};

static bool fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized): va_start above
    va_end(ap);
    return false;
}

static struct api_list *list_of(struct api_body *b, const char *name)
{
    if (strcmp(name, "rooms") == 0)
        return &b->rooms;
    if (strcmp(name, "users") == 0)
        return &b->users;
    if (strcmp(name, "sids") == 0)
        return &b->sids;
    if (strcmp(name, "except") == 0)
        return &b->except;
    return &b->to;
}

/* Reads an array of non-empty strings at r into *list. */
static bool read_strings(struct mp_reader *r, const struct mp_item *head, size_t start,
                         struct api_list *list, const char *name, char *err, size_t errlen)
{
    if (head->kind != MP_ARRAY)
        return fail(err, errlen, "field '%s' must be an array of strings", name);
    if (head->len > ADAPTER_MAX_ROOMS)
        return fail(err, errlen, "field '%s' has too many items (at most 256)", name);
    for (uint32_t i = 0; i < head->len; i++) {
        struct mp_item it;
        if (mp_read(r, &it) != SIOC_OK || it.kind != MP_STR)
            return fail(err, errlen, "field '%s' must be an array of strings", name);
        if (it.len == 0)
            return fail(err, errlen, "field '%s' must not hold empty strings", name);
    }
    list->present = true;
    list->count = head->len;
    list->raw = (struct slice){r->p + start, r->pos - start};
    return true;
}

/* "ack": {"timeout": ms}, the only key, required. */
static bool read_ack(struct api_body *b, struct mp_reader *r, const struct mp_item *head, char *err,
                     size_t errlen)
{
    if (head->kind != MP_MAP)
        return fail(err, errlen, "%s",
                    "field 'ack' must be an object with a 'timeout' (milliseconds)");
    for (uint32_t i = 0; i < head->len; i++) {
        struct mp_item key, value;
        int64_t ms;
        if (mp_read(r, &key) != SIOC_OK || key.kind != MP_STR)
            return fail(err, errlen, "%s", "malformed object key");
        if (!(key.len == 7 && memcmp(key.data, "timeout", 7) == 0)) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(key.len < 48 ? key.len : 48),
                     (const char *)key.data);
            return fail(err, errlen, "unknown field 'ack.%s'", name);
        }
        if (b->has_ack)
            return fail(err, errlen, "%s", "field 'ack.timeout' given twice");
        if (mp_read(r, &value) != SIOC_OK || value.kind == MP_ARRAY || value.kind == MP_MAP ||
            !mp_item_to_i64(&value, &ms) || ms < API_ACK_TIMEOUT_MIN_MS ||
            ms > API_ACK_TIMEOUT_MAX_MS)
            return fail(err, errlen, "%s",
                        "field 'ack.timeout' must be an integer from 1 to 120000 (milliseconds)");
        b->has_ack = true;
        b->ack_timeout_ms = (uint32_t)ms;
    }
    if (!b->has_ack)
        return fail(err, errlen, "%s",
                    "field 'ack.timeout' is required (milliseconds, 1 to 120000)");
    return true;
}

static bool read_field(struct api_body *b, struct mp_reader *r, const struct field *f, char *err,
                       size_t errlen)
{
    size_t start = r->pos;
    struct mp_item it;
    if (mp_read(r, &it) != SIOC_OK)
        return fail(err, errlen, "field '%s' is malformed", f->name);
    switch (f->type) {
    case F_STRING:
        if (it.kind != MP_STR)
            return fail(err, errlen, "field '%s' must be a string", f->name);
        if (strcmp(f->name, "nsp") == 0)
            b->nsp = (struct slice){it.data, it.len};
        else
            b->event = (struct slice){it.data, it.len};
        return true;
    case F_BOOL:
        if (it.kind != MP_BOOL)
            return fail(err, errlen, "field '%s' must be true or false", f->name);
        if (strcmp(f->name, "volatile") == 0)
            b->is_volatile = it.boolean;
        else
            b->close = it.boolean;
        return true;
    case F_ARRAY: {
        if (it.kind != MP_ARRAY)
            return fail(err, errlen, "field '%s' must be an array", f->name);
        size_t items = r->pos;
        for (uint32_t i = 0; i < it.len; i++)
            if (mp_skip(r) != SIOC_OK)
                return fail(err, errlen, "field '%s' is malformed", f->name);
        b->has_args = true;
        b->args_count = it.len;
        b->args_items = (struct slice){r->p + items, r->pos - items};
        return true;
    }
    case F_STRINGS: return read_strings(r, &it, start, list_of(b, f->name), f->name, err, errlen);
    case F_ACK: return read_ack(b, r, &it, err, errlen);
    }
    return false;
}

bool api_body_parse(struct api_body *out, enum api_body_kind kind, const uint8_t *body, size_t len,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    buf_init(&out->mp, API_MAX_BODY_MP);
    out->nsp = (struct slice){(const uint8_t *)"/", 1};
    int rc = json_to_msgpack(body, len, &out->mp);
    if (rc != SIOC_OK) {
        snprintf(err, errlen, "malformed JSON body (%s)", sioc_strerror(rc));
        return false;
    }
    struct mp_reader r;
    struct mp_item top;
    mp_reader_init(&r, out->mp.data, out->mp.len);
    if (mp_read(&r, &top) != SIOC_OK || top.kind != MP_MAP)
        return fail(err, errlen, "%s", "the body must be a JSON object");
    unsigned seen = 0;
    for (uint32_t i = 0; i < top.len; i++) {
        struct mp_item key;
        if (mp_read(&r, &key) != SIOC_OK || key.kind != MP_STR)
            return fail(err, errlen, "%s", "malformed object key");
        size_t f = 0;
        while (f < FIELD_COUNT && !(strlen(fields[f].name) == key.len &&
                                    memcmp(fields[f].name, key.data, key.len) == 0))
            f++;
        if (f == FIELD_COUNT || !(fields[f].kinds & (1u << kind))) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(key.len < 48 ? key.len : 48),
                     (const char *)key.data);
            return fail(err, errlen, "unknown field '%s'", name);
        }
        if (seen & (1u << f))
            return fail(err, errlen, "field '%s' given twice", fields[f].name);
        seen |= 1u << f;
        if (!read_field(out, &r, &fields[f], err, errlen))
            return false;
    }
    if (out->nsp.len == 0 || out->nsp.p[0] != '/')
        return fail(err, errlen, "%s", "field 'nsp' must start with /");
    /* gateways keep namespace names as C strings and refuse NUL in them (a CONNECT to such a
     * name gets "Invalid namespace"): no socket can be there, and the channel would be wrong */
    if (memchr(out->nsp.p, 0, out->nsp.len) != NULL)
        return fail(err, errlen, "%s", "field 'nsp' must not contain NUL");
    if (kind == API_BODY_EMIT) {
        if (out->event.len == 0)
            return fail(err, errlen, "%s", "field 'event' is required (a non-empty string)");
        for (size_t i = 0; i < sizeof reserved_events / sizeof reserved_events[0]; i++)
            if (strlen(reserved_events[i]) == out->event.len &&
                memcmp(reserved_events[i], out->event.p, out->event.len) == 0)
                return fail(err, errlen, "event '%s' is reserved", reserved_events[i]);
        /* an ack is asked of every selected socket: none may skip the event */
        if (out->has_ack && out->is_volatile)
            return fail(err, errlen, "%s", "field 'volatile' cannot be used with 'ack'");
        return true;
    }
    if ((kind == API_BODY_JOIN || kind == API_BODY_LEAVE) && out->to.count == 0)
        return fail(err, errlen, "%s", "field 'to' is required (an array of room names)");
    /* A selector is required: an empty one would reach every socket of the namespace. */
    if (out->rooms.count + out->users.count + out->sids.count == 0)
        return fail(err, errlen, "%s", "give at least one of 'rooms', 'users', 'sids'");
    return true;
}

void api_body_deinit(struct api_body *b)
{
    buf_deinit(&b->mp);
}

/* Calls fn for each string of a validated list. */
static void list_each(const struct api_list *list, void (*fn)(void *ctx, struct slice s), void *ctx)
{
    if (!list->present)
        return;
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, list->raw.p, list->raw.len);
    if (mp_read(&r, &it) != SIOC_OK)
        return;
    for (uint32_t i = 0; i < it.len; i++) {
        struct mp_item s;
        if (mp_read(&r, &s) != SIOC_OK)
            return;
        fn(ctx, (struct slice){s.data, s.len});
    }
}

static void add_room(void *ctx, struct slice s)
{
    struct adapter_rooms *rooms = ctx;
    if (rooms->count < ADAPTER_MAX_ROOMS)
        rooms->names[rooms->count++] = s;
}

bool api_list_to_rooms(const struct api_list *list, struct adapter_rooms *rooms)
{
    rooms->count = 0;
    if (list->count > ADAPTER_MAX_ROOMS)
        return false;
    list_each(list, add_room, rooms);
    return true;
}

struct user_rooms {
    struct buf *names;
    const char *pattern;
    size_t count;
    size_t lens[ADAPTER_MAX_ROOMS];
};

static void add_user(void *ctx, struct slice uid)
{
    struct user_rooms *u = ctx;
    size_t len = user_room_append(u->names, u->pattern, uid);
    if (u->count < ADAPTER_MAX_ROOMS)
        u->lens[u->count++] = len;
}

bool api_selector_build(struct api_selector *sel, const struct api_body *b, const char *user_room,
                        char *err, size_t errlen)
{
    memset(&sel->rooms, 0, sizeof sel->rooms);
    memset(&sel->except, 0, sizeof sel->except);
    buf_init(&sel->names, 0);
    size_t total = (size_t)b->rooms.count + b->users.count + b->sids.count;
    if (total > ADAPTER_MAX_ROOMS)
        return fail(err, errlen, "%s", "at most 256 rooms, users and sids together");
    list_each(&b->rooms, add_room, &sel->rooms);
    struct user_rooms *u = calloc(1, sizeof *u);
    if (u == NULL)
        return fail(err, errlen, "%s", "out of memory");
    *u = (struct user_rooms){&sel->names, user_room, 0, {0}};
    list_each(&b->users, add_user, u);
    if (sel->names.err != SIOC_OK) {
        free(u);
        return fail(err, errlen, "%s", "out of memory");
    }
    /* the storage no longer moves: point at the user-room names */
    size_t pos = 0;
    for (size_t i = 0; i < u->count; i++) {
        sel->rooms.names[sel->rooms.count++] = (struct slice){sel->names.data + pos, u->lens[i]};
        pos += u->lens[i];
    }
    free(u);
    list_each(&b->sids, add_room, &sel->rooms);
    list_each(&b->except, add_room, &sel->except);
    return true;
}

void api_selector_deinit(struct api_selector *sel)
{
    buf_deinit(&sel->names);
}

char *api_percent_decode(const uint8_t *p, size_t len, bool plus_is_space, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_digit_value(p[i + 1]) : -1;
            int lo = i + 2 < len ? hex_digit_value(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            c = (uint8_t)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == 0) {
            free(out);
            return NULL;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

bool api_query_get(struct slice query, const char *name, struct slice *value)
{
    size_t name_len = strlen(name);
    size_t i = 0;
    while (i <= query.len) {
        size_t end = i;
        while (end < query.len && query.p[end] != '&')
            end++;
        const uint8_t *eq = memchr(query.p + i, '=', end - i);
        size_t key_len = eq ? (size_t)(eq - (query.p + i)) : end - i;
        if (key_len == name_len && memcmp(query.p + i, name, name_len) == 0) {
            *value = eq ? (struct slice){eq + 1, (size_t)(query.p + end - (eq + 1))}
                        : (struct slice){query.p + end, 0};
            return true;
        }
        i = end + 1;
    }
    return false;
}
