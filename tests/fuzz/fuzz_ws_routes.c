/* fuzz_ws_routes.c: the `ws-routes` parser, path matching and the plain message mapping
 * (common/ws_routes.h). Input: byte 0 picks the mode. Even: the bytes up to the first '\n' are
 * the option, each following line a request path; every route parsed must match its own path
 * (a literal one exactly itself; with {user}, the path with "x" in place of it, user "x"), and a
 * match's user must be valid UTF-8 of at most WS_ROUTES_MAX_USER bytes without NUL. Odd: the
 * rest is an event's MessagePack array; a text result must be valid UTF-8, and the message of a
 * string or bytes argument must be no longer than the input. */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/utf8.h"
#include "common/ws_routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_SPEC 4096

static void check(int cond)
{
    if (!cond)
        abort();
}

static void self_match(const struct ws_routes *t, const struct ws_route *r, struct buf *user)
{
    char path[WS_ROUTES_MAX_PATH + 1];
    size_t n = 0;
    const char *u = strstr(r->path, WS_ROUTES_USER);
    if (u != NULL && r->has_user) {
        n = (size_t)(u - r->path);
        memcpy(path, r->path, n);
        path[n++] = 'x';
        size_t rest = r->path_len - n + 1 - (sizeof WS_ROUTES_USER - 1);
        memcpy(path + n, u + sizeof WS_ROUTES_USER - 1, rest);
        n += rest;
    } else {
        memcpy(path, r->path, r->path_len);
        n = r->path_len;
    }
    const struct ws_route *got = NULL;
    enum ws_routes_match m = ws_routes_match(t, (const uint8_t *)path, n, &got, user);
    check(m == WS_ROUTES_FOUND);
    if (!r->has_user)
        check(got == r); /* literal paths are unique */
}

static void routes_mode(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t spec_len = nl != NULL ? (size_t)(nl - data) : size;
    if (spec_len > FUZZ_MAX_SPEC)
        return;
    char *spec = malloc(spec_len + 1);
    if (spec == NULL)
        return;
    memcpy(spec, data, spec_len);
    spec[spec_len] = '\0';
    struct ws_routes t;
    char err[200];
    int rc = ws_routes_parse(&t, spec, err, sizeof err);
    free(spec);
    check(rc == SIOC_OK || rc == SIOC_EPROTO || rc == SIOC_ETOOBIG || rc == SIOC_ENOMEM);
    check(rc == SIOC_OK || (t.count == 0 && err[0] != '\0'));
    struct buf user;
    buf_init(&user, 4096);
    for (size_t i = 0; i < t.count; i++)
        self_match(&t, &t.routes[i], &user);
    const uint8_t *p = nl != NULL ? nl + 1 : data + size;
    const uint8_t *end = data + size;
    while (p < end) {
        const uint8_t *e = memchr(p, '\n', (size_t)(end - p));
        size_t len = e != NULL ? (size_t)(e - p) : (size_t)(end - p);
        const struct ws_route *r = NULL;
        enum ws_routes_match m = ws_routes_match(&t, p, len, &r, &user);
        if (m == WS_ROUTES_FOUND) {
            check(r != NULL);
            check(user.len <= WS_ROUTES_MAX_USER && utf8_valid(user.data, user.len));
            check(user.len == 0 || memchr(user.data, 0, user.len) == NULL);
            check(r->has_user || user.len == 0);
        }
        p += len + 1;
    }
    buf_deinit(&user);
    ws_routes_deinit(&t);
}

static void message_mode(const uint8_t *data, size_t size)
{
    struct buf out;
    buf_init(&out, 1 << 20);
    bool binary = false;
    int rc = ws_routes_message_frame(data, size, &out, &binary);
    if (rc == 1 && !binary)
        check(utf8_valid(out.data, out.len));
    buf_deinit(&out);
    buf_init(&out, 0);
    check(ws_routes_message_args(data, size, false, &out) == SIOC_OK && out.len > size);
    buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        message_mode(data + 1, size - 1);
    else
        routes_mode(data + 1, size - 1);
    return 0;
}
