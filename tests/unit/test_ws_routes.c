/* test_ws_routes.c: the `ws-routes` option's parser, path matching ({user} segments, percent
 * decoding, literal routes first), and the plain message mapping both ways
 * (common/ws_routes.h; docs/contracts.md "Plain WebSocket routes"). */
#include "common/error.h"
#include "common/mp.h"
#include "common/ws_routes.h"
#include "tests/unit/test.h"

static int parse(struct ws_routes *t, const char *spec, char *err)
{
    return ws_routes_parse(t, spec, err, 200);
}

static void test_parse_valid(void)
{
    struct ws_routes t;
    char err[200];
    CHECK(parse(&t, "/test=/echo,/ws=/ws,/ws/{user}=/ws", err) == SIOC_OK);
    CHECK(t.count == 3);
    CHECK(strcmp(t.routes[0].path, "/test") == 0 && strcmp(t.routes[0].nsp, "/echo") == 0);
    CHECK(strcmp(t.routes[2].path, "/ws/{user}") == 0 && strcmp(t.routes[2].nsp, "/ws") == 0);
    CHECK(!t.routes[0].has_user && !t.routes[1].has_user && t.routes[2].has_user);
    CHECK(t.routes[2].path_len == 10 && t.routes[2].nsp_len == 3);
    ws_routes_deinit(&t);
    CHECK(parse(&t, "", err) == SIOC_OK && t.count == 0);
    ws_routes_deinit(&t);
    CHECK(ws_routes_parse(&t, NULL, err, sizeof err) == SIOC_OK && t.count == 0);
    CHECK(parse(&t, "/=/,/a/=/x,/{user}/chat=/c,/a.b-c_d~e!$&'()*+;:@=/", err) == SIOC_OK);
    CHECK(t.count == 4);
    ws_routes_deinit(&t);
    ws_routes_deinit(&t); /* twice: harmless */
}

static void test_parse_errors(void)
{
    static const struct {
        const char *spec;
        int rc;
        const char *says;
    } cases[] = {
        {"/ws", SIOC_EPROTO, "expected PATH=NAMESPACE"},
        {"/ws=/ws,", SIOC_EPROTO, "expected PATH=NAMESPACE"},
        {",/ws=/ws", SIOC_EPROTO, "expected PATH=NAMESPACE"},
        {"ws=/ws", SIOC_EPROTO, "must start with /"},
        {"=/ws", SIOC_EPROTO, "must start with /"},
        {"/ws=ws", SIOC_EPROTO, "namespace must start with /"},
        {"/ws=", SIOC_EPROTO, "namespace must start with /"},
        {"/ws=/a=b", SIOC_EPROTO, "namespace holds"},
        {"/w s=/ws", SIOC_EPROTO, "not allowed"},
        {"/ws?x=/ws", SIOC_EPROTO, "not allowed"},
        {"/ws#=/ws", SIOC_EPROTO, "not allowed"},
        {"/w%20s=/ws", SIOC_EPROTO, "not allowed"},
        {"/{users}=/ws", SIOC_EPROTO, "not allowed"},
        {"/a{user}=/ws", SIOC_EPROTO, "not allowed"},
        {"/a//b=/ws", SIOC_EPROTO, "empty path segment"},
        {"//=/ws", SIOC_EPROTO, "empty path segment"},
        {"/{user}/{user}=/ws", SIOC_EPROTO, "more than one {user}"},
        {"/ws=/ws,/ws=/other", SIOC_EPROTO, "the same path twice"},
        {"/ws=/w\x01", SIOC_EPROTO, "namespace holds"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ws_routes t;
        char err[200] = "";
        int rc = parse(&t, cases[i].spec, err);
        CHECK(rc == cases[i].rc);
        CHECK(strstr(err, cases[i].says) != NULL);
        CHECK(t.count == 0 && t.text == NULL);
        if (rc != cases[i].rc || strstr(err, cases[i].says) == NULL)
            fprintf(stderr, "  case %zu \"%s\": %d %s\n", i, cases[i].spec, rc, err);
    }
}

static void test_parse_limits(void)
{
    struct ws_routes t;
    char err[200];
    char spec[WS_ROUTES_MAX * 16 + 64];
    size_t n = 0;
    for (int i = 0; i < WS_ROUTES_MAX; i++)
        n += (size_t)snprintf(spec + n, sizeof spec - n, "%s/r%d=/n", i ? "," : "", i);
    CHECK(parse(&t, spec, err) == SIOC_OK && t.count == WS_ROUTES_MAX);
    ws_routes_deinit(&t);
    snprintf(spec + n, sizeof spec - n, ",/one-more=/n");
    CHECK(parse(&t, spec, err) == SIOC_ETOOBIG && strstr(err, "more than 64") != NULL);
    char longpath[WS_ROUTES_MAX_PATH + 16];
    memset(longpath, 'a', sizeof longpath);
    longpath[0] = '/';
    memcpy(longpath + WS_ROUTES_MAX_PATH + 1, "=/ws", 5);
    CHECK(parse(&t, longpath, err) == SIOC_ETOOBIG && strstr(err, "too long") != NULL);
    longpath[WS_ROUTES_MAX_PATH] = '=';
    memcpy(longpath + WS_ROUTES_MAX_PATH + 1, "/ws", 4);
    CHECK(parse(&t, longpath, err) == SIOC_OK); /* exactly the limit */
    ws_routes_deinit(&t);
}

static enum ws_routes_match match(const struct ws_routes *t, const char *path,
                                  const struct ws_route **r, struct buf *user)
{
    /* the path ends at a guard page: matching never reads past it */
    size_t map_len;
    size_t len = strlen(path);
    uint8_t *p = test_guard_copy(path, len, &map_len);
    enum ws_routes_match m = ws_routes_match(t, p, len, r, user);
    test_guard_free(p, len, map_len);
    return m;
}

static void test_match(void)
{
    struct ws_routes t;
    char err[200];
    CHECK(parse(&t, "/ws/{user}=/u,/test=/echo,/ws=/ws,/ws/admin=/admin,/{user}/inbox=/in", err) ==
          SIOC_OK);
    const struct ws_route *r = NULL;
    struct buf user;
    buf_init(&user, 1024);
    CHECK(match(&t, "/test", &r, &user) == WS_ROUTES_FOUND && strcmp(r->nsp, "/echo") == 0 &&
          user.len == 0);
    CHECK(match(&t, "/ws", &r, &user) == WS_ROUTES_FOUND && strcmp(r->nsp, "/ws") == 0);
    /* a literal route wins over {user}, wherever it is in the list */
    CHECK(match(&t, "/ws/admin", &r, &user) == WS_ROUTES_FOUND && strcmp(r->nsp, "/admin") == 0);
    CHECK(match(&t, "/ws/alice", &r, &user) == WS_ROUTES_FOUND && strcmp(r->nsp, "/u") == 0);
    CHECK_STR(user.data, user.len, "alice");
    CHECK(match(&t, "/ws/al%20ice+x%2Fy", &r, &user) == WS_ROUTES_FOUND);
    CHECK_STR(user.data, user.len, "al ice+x/y"); /* + stays +: a path is not a query */
    CHECK(match(&t, "/ws/%C3%A9", &r, &user) == WS_ROUTES_FOUND);
    CHECK_STR(user.data, user.len, "\xc3\xa9");
    CHECK(match(&t, "/bob/inbox", &r, &user) == WS_ROUTES_FOUND && strcmp(r->nsp, "/in") == 0);
    CHECK_STR(user.data, user.len, "bob");
    static const char *const none[] = {
        "",        "/",      "/test/",  "/tes",        "/testx", "/ws/",  "/ws//",
        "/ws/a/b", "/wsx/a", "//inbox", "/bob/inbox/", "/ws/a/", "/TEST", "test"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        CHECK(match(&t, none[i], &r, &user) == WS_ROUTES_NONE);
        if (match(&t, none[i], &r, &user) != WS_ROUTES_NONE)
            fprintf(stderr, "  matched \"%s\"\n", none[i]);
    }
    CHECK(match(&t, "/ws/%FF", &r, &user) == WS_ROUTES_BAD_USER && user.len == 0);
    CHECK(match(&t, "/ws/a%00b", &r, &user) == WS_ROUTES_BAD_USER);
    CHECK(match(&t, "/ws/%ED%A0%80", &r, &user) == WS_ROUTES_BAD_USER); /* a surrogate */
    char big[WS_ROUTES_MAX_USER + 8] = "/ws/";
    memset(big + 4, 'x', WS_ROUTES_MAX_USER);
    big[4 + WS_ROUTES_MAX_USER] = '\0';
    CHECK(match(&t, big, &r, &user) == WS_ROUTES_FOUND && user.len == WS_ROUTES_MAX_USER);
    big[4 + WS_ROUTES_MAX_USER] = 'x';
    big[5 + WS_ROUTES_MAX_USER] = '\0';
    CHECK(match(&t, big, &r, &user) == WS_ROUTES_BAD_USER);
    buf_deinit(&user);
    ws_routes_deinit(&t);
}

static void test_message_args(void)
{
    struct buf out;
    buf_init(&out, 0);
    CHECK(ws_routes_message_args((const uint8_t *)"hi", 2, false, &out) == SIOC_OK);
    CHECK_MEM(out.data, out.len, "\x91\xa2hi", 4);
    buf_reset(&out);
    CHECK(ws_routes_message_args((const uint8_t *)"\x00\x01", 2, true, &out) == SIOC_OK);
    CHECK_MEM(out.data, out.len, "\x91\xc4\x02\x00\x01", 5);
    buf_reset(&out);
    CHECK(ws_routes_message_args(NULL, 0, false, &out) == SIOC_OK);
    CHECK_MEM(out.data, out.len, "\x91\xa0", 2);
    buf_deinit(&out);
}

/* ["e", arg] as MessagePack (the event name is never sent); V(s): a literal and its length (it may
 * hold NUL bytes). */
#define EV_ARG(arg)                                                                                \
    "\x92\xa1"                                                                                     \
    "e" arg
#define V(s) s, sizeof(s) - 1

static void test_message_frame(void)
{
    static const struct {
        const char *mp;
        size_t len;
        int rc;
        bool binary;
        const char *out;
        size_t out_len;
    } cases[] = {
        {V("\x92\xa7message\xa2hi"), 1, false, V("hi")},
        /* ["e", <bin 00 ff>, "ignored"] */
        {V("\x93\xa1"
           "e"
           "\xc4\x02\x00\xff\xa7ignored"),
         1, true, V("\x00\xff")},
        /* {"a": [1, 2.5]} */
        {V(EV_ARG("\x81\xa1"
                  "a"
                  "\x92\x01\xcb\x40\x04\x00\x00\x00\x00\x00\x00")),
         1, false, V("{\"a\":[1,2.5]}")},
        /* 42, null, true */
        {V(EV_ARG("\x2a")), 1, false, V("42")},
        {V(EV_ARG("\xc0")), 1, false, V("null")},
        {V(EV_ARG("\xc3")), 1, false, V("true")},
        /* [<bin 01>]: a bin inside, as Buffer.toJSON() */
        {V(EV_ARG("\x91\xc4\x01\x01")), 1, false, V("[{\"type\":\"Buffer\",\"data\":[1]}]")},
        /* "": an empty text message */
        {V(EV_ARG("\xa0")), 1, false, V("")},
        /* "a\xff" "b\xc3": invalid UTF-8 in a str becomes U+FFFD (a text frame is UTF-8) */
        {V(EV_ARG("\xa4"
                  "a\xff"
                  "b\xc3")),
         1, false,
         V("a\xef\xbf\xbd"
           "b\xef\xbf\xbd")},
        /* ["e"]: no argument, nothing to send */
        {V("\x91\xa1"
           "e"),
         0, false, V("")},
        /* not an array; an empty array; truncated */
        {V("\xa1"
           "e"),
         SIOC_EPROTO, false, V("")},
        {V("\x90"), SIOC_EPROTO, false, V("")},
        {V(EV_ARG("\xa5hi")), SIOC_EPROTO, false, V("")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf out;
        buf_init(&out, 0);
        bool binary = !cases[i].binary;
        size_t map_len;
        uint8_t *p = test_guard_copy(cases[i].mp, cases[i].len, &map_len);
        int rc = ws_routes_message_frame(p, cases[i].len, &out, &binary);
        test_guard_free(p, cases[i].len, map_len);
        CHECK(rc == cases[i].rc);
        if (rc != cases[i].rc)
            fprintf(stderr, "  case %zu: rc %d\n", i, rc);
        if (rc == 1) {
            CHECK(binary == cases[i].binary);
            CHECK_MEM(out.data, out.len, cases[i].out, cases[i].out_len);
        }
        buf_deinit(&out);
    }
}

#undef EV_ARG
#undef V

int main(void)
{
    RUN(test_parse_valid);
    RUN(test_parse_errors);
    RUN(test_parse_limits);
    RUN(test_match);
    RUN(test_message_args);
    RUN(test_message_frame);
    return test_summary("test_ws_routes");
}
