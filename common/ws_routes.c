/* ws_routes.c: the `ws-routes` option, path matching and the plain message mapping (see
 * ws_routes.h; docs/contracts.md "Plain WebSocket routes"). */
#include "common/ws_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/http.h"
#include "common/json.h"
#include "common/mp.h"
#include "common/utf8.h"

static bool forbidden_byte(char c)
{
    return (unsigned char)c <= 0x20 || c == 0x7f || c == ',' || c == '=';
}

/* Checks one PATH as written; NULL when valid, else what is wrong. */
static const char *path_problem(const char *p, size_t len, bool *has_user)
{
    *has_user = false;
    if (len == 0 || p[0] != '/')
        return "the path must start with /";
    if (len > WS_ROUTES_MAX_PATH)
        return "the path is too long";
    const size_t ulen = sizeof WS_ROUTES_USER - 1;
    size_t i = 1;
    while (i < len) {
        size_t end = i;
        while (end < len && p[end] != '/')
            end++;
        size_t seg = end - i;
        if (seg == 0 && end < len)
            return "empty path segment";
        if (seg == ulen && memcmp(p + i, WS_ROUTES_USER, ulen) == 0) {
            if (*has_user)
                return "more than one {user} segment";
            *has_user = true;
        } else {
            for (size_t k = i; k < end; k++) {
                char c = p[k];
                if (forbidden_byte(c) || c == '?' || c == '#' || c == '%' || c == '{' || c == '}')
                    return "the path holds a character that is not allowed (?, #, %, {, } or a space)";
            }
        }
        i = end + 1;
    }
    return NULL;
}

static const char *nsp_problem(const char *p, size_t len)
{
    if (len == 0 || p[0] != '/')
        return "the namespace must start with /";
    if (len > WS_ROUTES_MAX_NAMESPACE)
        return "the namespace is too long";
    for (size_t i = 0; i < len; i++) {
        if (forbidden_byte(p[i]))
            return "the namespace holds a character that is not allowed";
    }
    return NULL;
}

static int fail(struct ws_routes *t, int rc, char *err, size_t errlen, const char *item,
                size_t item_len, const char *what)
{
    if (errlen > 0)
        snprintf(err, errlen, "\"%.*s\": %s", (int)(item_len > 80 ? 80 : item_len), item, what);
    ws_routes_deinit(t);
    return rc;
}

int ws_routes_parse(struct ws_routes *t, const char *spec, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (errlen > 0)
        err[0] = '\0';
    if (spec == NULL || spec[0] == '\0')
        return SIOC_OK;
    t->text = strdup(spec);
    if (t->text == NULL)
        return SIOC_ENOMEM;
    char *item = t->text;
    for (;;) {
        char *comma = strchr(item, ',');
        size_t len = comma != NULL ? (size_t)(comma - item) : strlen(item);
        char *eq = memchr(item, '=', len);
        if (eq == NULL)
            return fail(t, SIOC_EPROTO, err, errlen, item, len, "expected PATH=NAMESPACE");
        if (t->count == WS_ROUTES_MAX)
            return fail(t, SIOC_ETOOBIG, err, errlen, item, len, "more than 64 routes");
        struct ws_route *r = &t->routes[t->count];
        r->path = item;
        r->path_len = (size_t)(eq - item);
        r->nsp = eq + 1;
        r->nsp_len = len - r->path_len - 1;
        const char *why = path_problem(r->path, r->path_len, &r->has_user);
        if (why == NULL)
            why = nsp_problem(r->nsp, r->nsp_len);
        if (why != NULL) {
            bool big = strstr(why, "too long") != NULL;
            return fail(t, big ? SIOC_ETOOBIG : SIOC_EPROTO, err, errlen, item, len, why);
        }
        for (size_t i = 0; i < t->count; i++) {
            if (t->routes[i].path_len == r->path_len &&
                memcmp(t->routes[i].path, r->path, r->path_len) == 0)
                return fail(t, SIOC_EPROTO, err, errlen, item, len, "the same path twice");
        }
        t->count++;
        item[len] = '\0'; /* the namespace ends here; the path ends at '=' */
        *eq = '\0';
        if (comma == NULL)
            break;
        item = comma + 1;
    }
    return SIOC_OK;
}

void ws_routes_deinit(struct ws_routes *t)
{
    free(t->text);
    memset(t, 0, sizeof *t);
}

/* Matches a {user} route: the same segments, one of them the user's. */
static bool match_user(const struct ws_route *r, const uint8_t *path, size_t len,
                       struct slice *user)
{
    const char *rp = r->path;
    size_t ri = 0, pi = 0;
    const size_t ulen = sizeof WS_ROUTES_USER - 1;
    while (ri < r->path_len && pi < len) {
        if (rp[ri] != '/' || path[pi] != '/')
            return false;
        ri++, pi++;
        size_t rend = ri, pend = pi;
        while (rend < r->path_len && rp[rend] != '/')
            rend++;
        while (pend < len && path[pend] != '/')
            pend++;
        if (rend - ri == ulen && memcmp(rp + ri, WS_ROUTES_USER, ulen) == 0) {
            if (pend == pi)
                return false; /* an empty user segment */
            *user = (struct slice){path + pi, pend - pi};
        } else if (rend - ri != pend - pi || memcmp(rp + ri, path + pi, rend - ri) != 0) {
            return false;
        }
        ri = rend, pi = pend;
    }
    return ri == r->path_len && pi == len;
}

enum ws_routes_match ws_routes_match(const struct ws_routes *t, const uint8_t *path, size_t len,
                                     const struct ws_route **route, struct buf *user)
{
    buf_reset(user);
    for (size_t i = 0; i < t->count; i++) {
        const struct ws_route *r = &t->routes[i];
        if (!r->has_user && r->path_len == len && memcmp(r->path, path, len) == 0) {
            *route = r;
            return WS_ROUTES_FOUND;
        }
    }
    for (size_t i = 0; i < t->count; i++) {
        const struct ws_route *r = &t->routes[i];
        struct slice raw = {NULL, 0};
        if (!r->has_user || !match_user(r, path, len, &raw))
            continue;
        *route = r;
        if (raw.len > 3 * WS_ROUTES_MAX_USER ||
            http_percent_decode(raw, false, user) != SIOC_OK || user->len > WS_ROUTES_MAX_USER ||
            memchr(user->data, 0, user->len) != NULL || !utf8_valid(user->data, user->len)) {
            buf_reset(user);
            return WS_ROUTES_BAD_USER;
        }
        return WS_ROUTES_FOUND;
    }
    return WS_ROUTES_NONE;
}

int ws_routes_message_args(const uint8_t *p, size_t len, bool binary, struct buf *out)
{
    mp_write_array(out, 1);
    if (binary)
        mp_write_bin(out, p, len);
    else
        mp_write_str(out, p, len);
    return out->err;
}

/* Appends text p[0..len) with every byte that starts no valid UTF-8 sequence replaced by
 * U+FFFD: a text frame must be UTF-8 (RFC 6455 5.6), and JavaScript would have decoded the
 * string with replacements too. */
static void append_text(struct buf *out, const uint8_t *p, size_t len)
{
    if (utf8_valid(p, len)) {
        buf_append(out, p, len);
        return;
    }
    size_t i = 0;
    while (i < len) {
        uint8_t b = p[i];
        size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (n > 0 && i + n <= len && utf8_valid(p + i, n)) {
            buf_append(out, p + i, n);
            i += n;
        } else {
            buf_append(out, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
}

int ws_routes_message_frame(const uint8_t *event, size_t len, struct buf *out, bool *binary)
{
    struct mp_reader r;
    struct mp_item head, arg;
    mp_reader_init(&r, event, len);
    if (mp_read(&r, &head) != SIOC_OK || head.kind != MP_ARRAY || head.len == 0 ||
        mp_skip(&r) != SIOC_OK)
        return SIOC_EPROTO;
    if (head.len < 2)
        return 0;
    struct mp_reader at = r; /* the first argument, for the JSON writer */
    if (mp_read(&r, &arg) != SIOC_OK)
        return SIOC_EPROTO;
    *binary = arg.kind == MP_BIN;
    if (arg.kind == MP_STR || arg.kind == MP_BIN) {
        if (arg.kind == MP_STR)
            append_text(out, arg.data, arg.len);
        else
            buf_append(out, arg.data, arg.len);
        return out->err != SIOC_OK ? out->err : 1;
    }
    int rc = json_from_msgpack(&at, NULL, out);
    if (rc != SIOC_OK)
        return rc;
    return out->err != SIOC_OK ? out->err : 1;
}
