/* test_envelope_reply.c: directed replies on P:node:<node> (DESIGN.md 3.3, docs/contracts.md
 * "Calls"): exact encodings, round trips, keys in other orders and unknown ones, every rejection,
 * list limits, truncation at every offset, the broker's snapshot request, the call results the
 * gateway publishes (decoded by the broker); decoders also run on guard-page copies of their
 * input. */
#include "tests/unit/envelope_test.h"

static void test_reply_exact_bytes(void)
{
    static const uint8_t ack_args[] = {0x91, 0xa2, 'o', 'k'};
    static const uint8_t emit[] = {0x91, 0x92, 0xa4, 'n', 'e', 'w', 's', 0x01};
    static const uint8_t join[] = {0x91, 0xa2, 'r', '1'};
    static const uint8_t leave[] = {0x91, 0xa2, 'r', '2'};
    struct envelope_reply r = {
        .t = ENVELOPE_REPLY,
        .nsp = sl("/"),
        .sid = sl("s1"),
        .has_ack = true,
        .ack_id = 3,
        .ack_args = {ack_args, sizeof ack_args},
        .emit = {{emit, sizeof emit}, 1},
        .join = {{join, sizeof join}, 1},
        .leave = {{leave, sizeof leave}, 1},
        .disconnect = true,
    };
    struct buf b;
    buf_init(&b, 0);
    CHECK(envelope_reply_encode(&r, &b) == SIOC_OK);
    CHECK_HEX(b.data, b.len,
              "88 a1 74 a5 7265706c79 a3 6e7370 a1 2f a3 736964 a2 7331 "
              "a3 61636b 82 a2 6964 03 a4 61726773 91 a2 6f6b "
              "a4 656d6974 91 92 a4 6e657773 01 a4 6a6f696e 91 a2 7231 a5 6c65617665 91 a2 7232 "
              "aa 646973636f6e6e656374 c3");
    CHECK(reply_map(b.data, b.len, &r) == (long)b.len);

    buf_reset(&b);
    struct envelope_reply c = {
        .t = ENVELOPE_REPLY_CONNECT,
        .rid = sl("r9"),
        .ok = false,
        .has_error = true,
        .error_message = sl("no"),
    };
    CHECK(envelope_reply_encode(&c, &b) == SIOC_OK);
    CHECK_HEX(b.data, b.len,
              "84 a1 74 a7 636f6e6e656374 a3 726964 a2 7239 a2 6f6b c2 "
              "a5 6572726f72 81 a7 6d657373616765 a2 6e6f");
    CHECK(reply_map(b.data, b.len, &c) == (long)b.len);

    /* a minimal reply: only t, nsp, sid; disconnect false is omitted */
    buf_reset(&b);
    struct envelope_reply m = {.t = ENVELOPE_REPLY, .nsp = sl("/"), .sid = sl("s")};
    CHECK(envelope_reply_encode(&m, &b) == SIOC_OK);
    CHECK_HEX(b.data, b.len, "83 a1 74 a5 7265706c79 a3 6e7370 a1 2f a3 736964 a1 73");
    CHECK(reply_map(b.data, b.len, &m) == (long)b.len);
    buf_deinit(&b);
}

/* A worker's call (docs/contracts.md "Calls"): exact bytes, round trip, every truncation, and
 * the rejections; then the result the gateway publishes. */
static void test_reply_call(void)
{
    static const uint8_t emit[] = {0x92, 0xa1, 'q', 0x07};
    struct envelope_reply r = {
        .t = ENVELOPE_REPLY,
        .nsp = sl("/"),
        .sid = sl("s1"),
        .has_call = true,
        .call_id = sl("c1"),
        .call_to = sl("ch"),
        .call_emit = {emit, sizeof emit},
    };
    struct buf b;
    buf_init(&b, 0);
    CHECK(envelope_reply_encode(&r, &b) == SIOC_OK);
    CHECK_HEX(b.data, b.len,
              "84 a1 74 a5 7265706c79 a3 6e7370 a1 2f a3 736964 a2 7331 "
              "a4 63616c6c 83 a2 6964 a2 6331 a2 746f a2 6368 a4 656d6974 92 a1 71 07");
    CHECK(reply_map(b.data, b.len, &r) == (long)b.len);
    for (size_t cut = 0; cut < b.len; cut++)
        CHECK(reply_map(b.data, cut, NULL) < 0);

    /* rejections: an emit that is not [event, ...], a missing key, an empty or too long id */
    static const uint8_t not_event[] = {0x91, 0x07};
    static const uint8_t empty[] = {0x90};
    char long_id[ENVELOPE_MAX_CALL_ID + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    struct envelope_reply bad[] = {r, r, r, r};
    bad[0].call_emit = (struct slice){not_event, sizeof not_event};
    bad[1].call_emit = (struct slice){empty, sizeof empty};
    bad[2].call_id = sl("");
    bad[3].call_id = sl(long_id);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_reset(&b);
        CHECK(envelope_reply_encode(&bad[i], &b) == SIOC_EINVAL);
    }
    /* "call" without "to" */
    buf_reset(&b);
    mp_write_map(&b, 4);
    mp_write_cstr(&b, "t");
    mp_write_cstr(&b, "reply");
    mp_write_cstr(&b, "nsp");
    mp_write_cstr(&b, "/");
    mp_write_cstr(&b, "sid");
    mp_write_cstr(&b, "s");
    mp_write_cstr(&b, "call");
    mp_write_map(&b, 2);
    mp_write_cstr(&b, "id");
    mp_write_cstr(&b, "c");
    mp_write_cstr(&b, "emit");
    buf_append(&b, emit, sizeof emit);
    CHECK(reply_map(b.data, b.len, NULL) == SIOC_EPROTO);

    /* the result: args, or an error */
    static const uint8_t args[] = {0x91, 0xa2, 'o', 'k'};
    struct envelope_call_result res = {.id = sl("c1"),
                                       .nsp = sl("/"),
                                       .sid = sl("s1"),
                                       .has_args = true,
                                       .args = {args, sizeof args}};
    buf_reset(&b);
    CHECK(envelope_call_result_encode(&res, &b) == SIOC_OK);
    CHECK_HEX(b.data, b.len,
              "85 a1 74 a3 61636b a2 6964 a2 6331 a3 6e7370 a1 2f a3 736964 a2 7331 "
              "a4 61726773 91 a2 6f6b");
    struct envelope_call_result err = {
        .id = sl("c1"), .nsp = sl("/"), .sid = sl("s1"), .error = sl("disconnected")};
    buf_reset(&b);
    CHECK(envelope_call_result_encode(&err, &b) == SIOC_OK);
    CHECK_HEX(b.data, b.len,
              "85 a1 74 a3 61636b a2 6964 a2 6331 a3 6e7370 a1 2f a3 736964 a2 7331 "
              "a5 6572726f72 ac 646973636f6e6e6563746564");
    err.error = sl("");
    CHECK(envelope_call_result_encode(&err, &b) == SIOC_EINVAL);
    res.args = (struct slice){empty + 0, 0};
    CHECK(envelope_call_result_encode(&res, &b) == SIOC_EINVAL);
    buf_deinit(&b);
}

static void test_reply_connect_round_trip_and_truncation(void)
{
    static const uint8_t rooms[] = {0x92, 0xa1, 'a', 0xa6, 'u', 's', 'e', 'r', ':', '1'};
    static const uint8_t data[] = {0x81, 0xa1, 'k', 0xc3};
    static const uint8_t edata[] = {0x93, 0x01, 0x02, 0x03};
    struct envelope_reply c = {
        .t = ENVELOPE_REPLY_CONNECT,
        .rid = sl("rid-77"),
        .ok = true,
        .has_uid = true,
        .uid = sl("1"),
        .rooms = {{rooms, sizeof rooms}, 2},
        .has_data = true,
        .data = {data, sizeof data},
        .has_error = true,
        .error_message = sl("m"),
        .has_error_data = true,
        .error_data = {edata, sizeof edata},
    };
    struct buf b;
    buf_init(&b, 0);
    CHECK(envelope_reply_encode(&c, &b) == SIOC_OK);
    CHECK(reply_map(b.data, b.len, &c) == (long)b.len);
    for (size_t cut = 0; cut < b.len; cut++)
        CHECK(reply_map(b.data, cut, NULL) < 0);
    buf_deinit(&b);

    static const uint8_t emit[] = {0x92, 0x91, 0xa1, 'a', 0x93, 0xa1, 'b', 0xc0, 0x90};
    static const uint8_t args[] = {0x90};
    struct envelope_reply r = {
        .t = ENVELOPE_REPLY,
        .nsp = sl("/x"),
        .sid = sl("s"),
        .has_ack = true,
        .ack_id = UINT64_MAX,
        .ack_args = {args, 1},
        .emit = {{emit, sizeof emit}, 2},
    };
    buf_init(&b, 0);
    CHECK(envelope_reply_encode(&r, &b) == SIOC_OK);
    CHECK(reply_map(b.data, b.len, &r) == (long)b.len);
    for (size_t cut = 0; cut < b.len; cut++)
        CHECK(reply_map(b.data, cut, NULL) < 0);
    buf_deinit(&b);
}

static void test_reply_any_order_unknown_ignored(void)
{
    struct buf b;
    buf_init(&b, 0);
    mp_write_map(&b, 7);
    mp_write_cstr(&b, "disconnect");
    mp_write_bool(&b, false);
    mp_write_cstr(&b, "ack");
    mp_write_map(&b, 3);
    mp_write_cstr(&b, "args");
    mp_write_array(&b, 0);
    mp_write_cstr(&b, "later");
    mp_write_nil(&b);
    mp_write_cstr(&b, "id");
    mp_write_uint(&b, 300);
    mp_write_cstr(&b, "ok"); /* a connect-only key in a reply: ignored */
    mp_write_cstr(&b, "not a bool");
    mp_write_cstr(&b, "sid");
    mp_write_cstr(&b, "S");
    mp_write_cstr(&b, "zz");
    mp_write_array(&b, 1);
    mp_write_uint(&b, 1);
    mp_write_cstr(&b, "nsp");
    mp_write_cstr(&b, "/n");
    mp_write_cstr(&b, "t");
    mp_write_cstr(&b, "reply");
    struct envelope_reply out;
    CHECK(reply_map(b.data, b.len, NULL) == (long)b.len);
    CHECK(envelope_reply_decode(b.data, b.len, &out) == (long)b.len);
    CHECK(out.t == ENVELOPE_REPLY);
    CHECK_STR(out.nsp.p, out.nsp.len, "/n");
    CHECK_STR(out.sid.p, out.sid.len, "S");
    CHECK(out.has_ack && out.ack_id == 300);
    CHECK_HEX(out.ack_args.p, out.ack_args.len, "90");
    CHECK(!out.disconnect && out.emit.raw.len == 0 && out.join.raw.len == 0);
    buf_deinit(&b);
}

/* Builds {"t":"reply","nsp":"/","sid":"s",<key>:<hex>} and decodes it. */
static long reply_with(const char *key, const char *hex)
{
    uint8_t raw[8192];
    size_t rn = test_unhex(hex, raw);
    struct buf b;
    buf_init(&b, 0);
    mp_write_map(&b, 4);
    mp_write_cstr(&b, "t");
    mp_write_cstr(&b, "reply");
    mp_write_cstr(&b, "nsp");
    mp_write_cstr(&b, "/");
    mp_write_cstr(&b, "sid");
    mp_write_cstr(&b, "s");
    mp_write_cstr(&b, key);
    buf_append(&b, raw, rn);
    long rc = reply_map(b.data, b.len, NULL);
    buf_deinit(&b);
    return rc;
}

/* Builds {"t":"connect","rid":"r","ok":true,<key>:<hex>} and decodes it. */
static long connect_with(const char *key, const char *hex)
{
    uint8_t raw[256];
    size_t rn = test_unhex(hex, raw);
    struct buf b;
    buf_init(&b, 0);
    mp_write_map(&b, 4);
    mp_write_cstr(&b, "t");
    mp_write_cstr(&b, "connect");
    mp_write_cstr(&b, "rid");
    mp_write_cstr(&b, "r");
    mp_write_cstr(&b, "ok");
    mp_write_bool(&b, true);
    mp_write_cstr(&b, key);
    buf_append(&b, raw, rn);
    long rc = reply_map(b.data, b.len, NULL);
    buf_deinit(&b);
    return rc;
}

/* A list of `n` one-character strings (or [event] arrays) as MessagePack. */
static long reply_with_list(const char *key, uint32_t n, bool emits)
{
    struct buf l, b;
    buf_init(&l, 0);
    buf_init(&b, 0);
    make_list(&l, n, emits);
    mp_write_map(&b, 4);
    mp_write_cstr(&b, "t");
    mp_write_cstr(&b, strcmp(key, "rooms") == 0 ? "connect" : "reply");
    mp_write_cstr(&b, strcmp(key, "rooms") == 0 ? "rid" : "nsp");
    mp_write_cstr(&b, "/");
    mp_write_cstr(&b, strcmp(key, "rooms") == 0 ? "ok" : "sid");
    if (strcmp(key, "rooms") == 0)
        mp_write_bool(&b, true);
    else
        mp_write_cstr(&b, "s");
    mp_write_cstr(&b, key);
    buf_append(&b, l.data, l.len);
    long rc = reply_map(b.data, b.len, NULL);
    struct envelope_reply out;
    if (rc >= 0) {
        CHECK(envelope_reply_decode(b.data, b.len, &out) == rc);
        const struct envelope_list *list = strcmp(key, "emit") == 0    ? &out.emit
                                           : strcmp(key, "join") == 0  ? &out.join
                                           : strcmp(key, "leave") == 0 ? &out.leave
                                                                       : &out.rooms;
        CHECK(list->count == n);
    }
    buf_deinit(&l);
    buf_deinit(&b);
    return rc;
}

static void test_reply_rejections(void)
{
    CHECK(reply_with("x", "c0") >= 0);
    /* t */
    uint8_t in[256];
    size_t n = test_unhex("82 a3 6e7370 a1 2f a3 736964 a1 73", in); /* no t */
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("83 a1 74 a4 70757368 a3 6e7370 a1 2f a3 736964 a1 73", in); /* t: push */
    CHECK(reply_map(in, n, NULL) == SIOC_ENOTSUP);
    n = test_unhex("83 a1 74 01 a3 6e7370 a1 2f a3 736964 a1 73", in);
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("82 a1 74 a5 7265706c79 a3 736964 a1 73", in); /* no nsp */
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("82 a1 74 a5 7265706c79 a3 6e7370 a1 2f", in); /* no sid */
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("84 a1 74 a5 7265706c79 a3 6e7370 a1 2f a3 736964 a1 73 a1 74 a5 7265706c79",
                   in);
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO); /* duplicate t */
    n = test_unhex("83 a1 74 a5 7265706c79 a3 6e7370 a1 2f a3 736964 a1 73 c0", in);
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO); /* trailing bytes */
    CHECK(reply_map(in, n - 1, NULL) == (long)n - 1);

    /* ack */
    CHECK(reply_with("ack", "82 a2 6964 01 a4 61726773 90") >= 0);
    CHECK(reply_with("ack", "82 a2 6964 a1 31 a4 61726773 90") == SIOC_EPROTO);
    CHECK(reply_with("ack", "82 a2 6964 ff a4 61726773 90") == SIOC_EPROTO);
    CHECK(reply_with("ack", "82 a2 6964 cb 3ff8000000000000 a4 61726773 90") == SIOC_EPROTO);
    CHECK(reply_with("ack", "81 a2 6964 01") == SIOC_EPROTO);
    CHECK(reply_with("ack", "81 a4 61726773 90") == SIOC_EPROTO);
    CHECK(reply_with("ack", "82 a2 6964 01 a4 61726773 80") == SIOC_EPROTO);
    CHECK(reply_with("ack", "82 a2 6964 01 a2 6964 01") == SIOC_EPROTO);
    CHECK(reply_with("ack", "92 01 90") == SIOC_EPROTO);
    /* emit */
    CHECK(reply_with("emit", "90") >= 0);
    CHECK(reply_with("emit", "91 91 a1 65") >= 0);
    CHECK(reply_with("emit", "91 90") == SIOC_EPROTO);
    CHECK(reply_with("emit", "91 91 01") == SIOC_EPROTO);
    CHECK(reply_with("emit", "91 a1 65") == SIOC_EPROTO);
    CHECK(reply_with("emit", "91 92 a1 65") == SIOC_EPROTO);
    CHECK(reply_with("emit", "91 91 a1 ff") == SIOC_EUTF8);
    CHECK(reply_with("emit", "81 a1 65 90") == SIOC_EPROTO);
    /* join / leave / disconnect */
    CHECK(reply_with("join", "92 a1 61 a0") >= 0);
    CHECK(reply_with("join", "91 01") == SIOC_EPROTO);
    CHECK(reply_with("join", "a1 61") == SIOC_EPROTO);
    CHECK(reply_with("leave", "91 c0") == SIOC_EPROTO);
    CHECK(reply_with("leave", "91 a2 c3 28") == SIOC_EUTF8);
    CHECK(reply_with("disconnect", "c3") >= 0);
    CHECK(reply_with("disconnect", "01") == SIOC_EPROTO);
    CHECK(reply_with("disconnect", "c0") == SIOC_EPROTO);
    CHECK(reply_with("nsp", "a1 78") == SIOC_EPROTO); /* duplicate nsp */

    /* connect */
    CHECK(connect_with("uid", "a2 3432") >= 0);
    CHECK(connect_with("uid", "2a") == SIOC_EPROTO);
    CHECK(connect_with("uid", "c0") == SIOC_EPROTO);
    CHECK(connect_with("data", "c0") >= 0);
    CHECK(connect_with("data", "92 01") == SIOC_EPROTO);
    CHECK(connect_with("rooms", "91 a1 61") >= 0);
    CHECK(connect_with("rooms", "81 a1 61 01") == SIOC_EPROTO);
    CHECK(connect_with("error", "81 a7 6d657373616765 a1 78") >= 0);
    CHECK(connect_with("error", "82 a7 6d657373616765 a1 78 a4 64617461 80") >= 0);
    CHECK(connect_with("error", "81 a4 64617461 80") == SIOC_EPROTO);
    CHECK(connect_with("error", "81 a7 6d657373616765 01") == SIOC_EPROTO);
    CHECK(connect_with("error", "a1 78") == SIOC_EPROTO);
    CHECK(connect_with("ok", "c2") == SIOC_EPROTO);                   /* duplicate ok */
    n = test_unhex("82 a1 74 a7 636f6e6e656374 a3 726964 a1 72", in); /* no ok */
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("82 a1 74 a7 636f6e6e656374 a2 6f6b c3", in); /* no rid */
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("83 a1 74 a7 636f6e6e656374 a3 726964 a0 a2 6f6b c3", in); /* empty rid */
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("83 a1 74 a7 636f6e6e656374 a3 726964 a1 72 a2 6f6b a4 74727565", in);
    CHECK(reply_map(in, n, NULL) == SIOC_EPROTO); /* ok: "true" */
}

static void test_reply_list_limits(void)
{
    CHECK(reply_with_list("join", ENVELOPE_MAX_ROOMS, false) >= 0);
    CHECK(reply_with_list("join", ENVELOPE_MAX_ROOMS + 1, false) == SIOC_ETOOBIG);
    CHECK(reply_with_list("leave", ENVELOPE_MAX_ROOMS, false) >= 0);
    CHECK(reply_with_list("leave", ENVELOPE_MAX_ROOMS + 1, false) == SIOC_ETOOBIG);
    CHECK(reply_with_list("rooms", ENVELOPE_MAX_ROOMS, false) >= 0);
    CHECK(reply_with_list("rooms", ENVELOPE_MAX_ROOMS + 1, false) == SIOC_ETOOBIG);
    CHECK(reply_with_list("emit", ENVELOPE_MAX_EMITS, true) >= 0);
    CHECK(reply_with_list("emit", ENVELOPE_MAX_EMITS + 1, true) == SIOC_ETOOBIG);
    CHECK(reply_with_list("emit", 0, true) >= 0);
}

static void test_reply_encode_invalid(void)
{
    static const uint8_t not_list[] = {0x01};
    static const uint8_t bad_emit[] = {0x91, 0x01};
    static const uint8_t args[] = {0x90};
    struct envelope_reply bad[7];
    for (int i = 0; i < 7; i++)
        bad[i] = (struct envelope_reply){.t = ENVELOPE_REPLY, .nsp = sl("/"), .sid = sl("s")};
    bad[0].join.raw = (struct slice){not_list, 1};
    bad[1].emit.raw = (struct slice){bad_emit, 2};
    bad[2].nsp = sl("");
    bad[3].has_ack = true;             /* without args */
    bad[4].t = ENVELOPE_REPLY_CONNECT; /* without rid */
    bad[5].t = (enum envelope_reply_type)9;
    bad[6].has_ack = true;
    bad[6].ack_args = (struct slice){not_list, 1};
    struct buf b;
    buf_init(&b, 0);
    for (int i = 0; i < 7; i++)
        CHECK(envelope_reply_encode(&bad[i], &b) == SIOC_EINVAL);
    CHECK(b.len == 0);
    struct envelope_reply ok = bad[6];
    ok.ack_args = (struct slice){args, 1};
    CHECK(envelope_reply_encode(&ok, &b) == SIOC_OK);
    buf_deinit(&b);
}

/* Decodes p[0..len) as given and from a guard-page copy: both must agree and consume all of a
 * success; returns the result of the first. */
static long call_result_map(const uint8_t *p, size_t len, struct envelope_call_result *out)
{
    struct envelope_call_result b;
    size_t map_len;
    long rc = envelope_call_result_decode(p, len, out);
    uint8_t *g = test_guard_copy(p, len, &map_len);
    CHECK(envelope_call_result_decode(g, len, &b) == rc);
    CHECK(rc < 0 || (size_t)rc == len);
    test_guard_free(g, len, map_len);
    return rc;
}

static bool call_result_equal(const struct envelope_call_result *a,
                              const struct envelope_call_result *b)
{
    return slice_eq(a->id, b->id) && slice_eq(a->nsp, b->nsp) && slice_eq(a->sid, b->sid) &&
           a->has_args == b->has_args && slice_eq(a->args, b->args) && slice_eq(a->error, b->error);
}

/* A call result map written key by key: `keys` and `values` (values as MessagePack hex). */
static void write_map(struct buf *b, size_t n, const char *const *keys, const char *const *hex)
{
    buf_reset(b);
    mp_write_map(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        uint8_t v[256];
        mp_write_cstr(b, keys[i]);
        buf_append(b, v, test_unhex(hex[i], v));
    }
}

static void test_call_result_decode(void)
{
    static const uint8_t args[] = {0x92, 0xa2, 'o', 'k', 0x07};
    const struct envelope_call_result res[] = {
        {.id = sl("r1:0"),
         .nsp = sl("/chat"),
         .sid = sl("s1"),
         .has_args = true,
         .args = {args, sizeof args}},
        {.id = sl("r1:1"), .nsp = sl("/"), .sid = sl("s2"), .error = sl("disconnected")},
        {.id = sl("r1:2"),
         .nsp = sl("/"),
         .sid = sl("s3"),
         .has_args = true,
         .args = {(const uint8_t *)"\x90", 1}},
    };
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
        struct envelope_call_result out;
        buf_reset(&b);
        CHECK(envelope_call_result_encode(&res[i], &b) == SIOC_OK);
        CHECK(call_result_map(b.data, b.len, &out) == (long)b.len);
        CHECK(call_result_equal(&out, &res[i]));
        for (size_t cut = 0; cut < b.len; cut++)
            CHECK(call_result_map(b.data, cut, &out) < 0);
        buf_append_byte(&b, 0xc0); /* trailing bytes after the map */
        CHECK(call_result_map(b.data, b.len, &out) == SIOC_EPROTO);
    }

    /* any key order, unknown keys ignored (a newer gateway may add some) */
    struct envelope_call_result out;
    static const char *const k1[] = {"sid", "later", "args", "nsp", "id", "t"};
    static const char *const v1[] = {"a1 73", "c3", "91 01", "a1 2f", "a1 78", "a3 61636b"};
    write_map(&b, 6, k1, v1);
    CHECK(call_result_map(b.data, b.len, &out) == (long)b.len);
    CHECK(slice_eq(out.id, sl("x")) && slice_eq(out.sid, sl("s")) && out.has_args &&
          out.args.len == 2 && out.args.p[0] == 0x91 && out.args.p[1] == 0x01);

    /* rejections */
    static const struct {
        size_t n;
        const char *k[6];
        const char *v[6];
        long want;
    } bad[] = {
        /* both args and error; neither */
        {6,
         {"t", "id", "nsp", "sid", "args", "error"},
         {"a3 61636b", "a1 78", "a1 2f", "a1 73", "90", "a1 65"},
         SIOC_EPROTO},
        {4, {"t", "id", "nsp", "sid"}, {"a3 61636b", "a1 78", "a1 2f", "a1 73"}, SIOC_EPROTO},
        /* another kind of message, or none */
        {5,
         {"t", "id", "nsp", "sid", "args"},
         {"a5 7265706c79", "a1 78", "a1 2f", "a1 73", "90"},
         SIOC_ENOTSUP},
        {4, {"id", "nsp", "sid", "args"}, {"a1 78", "a1 2f", "a1 73", "90"}, SIOC_EPROTO},
        /* missing id, sid, nsp; empty id; nsp without '/' */
        {4, {"t", "nsp", "sid", "args"}, {"a3 61636b", "a1 2f", "a1 73", "90"}, SIOC_EPROTO},
        {4, {"t", "id", "nsp", "args"}, {"a3 61636b", "a1 78", "a1 2f", "90"}, SIOC_EPROTO},
        {4, {"t", "id", "sid", "args"}, {"a3 61636b", "a1 78", "a1 73", "90"}, SIOC_EPROTO},
        {5,
         {"t", "id", "nsp", "sid", "args"},
         {"a3 61636b", "a0", "a1 2f", "a1 73", "90"},
         SIOC_EPROTO},
        {5,
         {"t", "id", "nsp", "sid", "args"},
         {"a3 61636b", "a1 78", "a1 61", "a1 73", "90"},
         SIOC_EPROTO},
        /* args not an array, error empty or not text, an id that is a number */
        {5,
         {"t", "id", "nsp", "sid", "args"},
         {"a3 61636b", "a1 78", "a1 2f", "a1 73", "a1 61"},
         SIOC_EPROTO},
        {5,
         {"t", "id", "nsp", "sid", "error"},
         {"a3 61636b", "a1 78", "a1 2f", "a1 73", "a0"},
         SIOC_EPROTO},
        {5,
         {"t", "id", "nsp", "sid", "error"},
         {"a3 61636b", "a1 78", "a1 2f", "a1 73", "07"},
         SIOC_EPROTO},
        {5,
         {"t", "id", "nsp", "sid", "args"},
         {"a3 61636b", "07", "a1 2f", "a1 73", "90"},
         SIOC_EPROTO},
        /* a sid that is not UTF-8; a key given twice */
        {5,
         {"t", "id", "nsp", "sid", "args"},
         {"a3 61636b", "a1 78", "a1 2f", "a1 ff", "90"},
         SIOC_EUTF8},
        {6,
         {"t", "id", "nsp", "sid", "args", "id"},
         {"a3 61636b", "a1 78", "a1 2f", "a1 73", "90", "a1 79"},
         SIOC_EPROTO},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_map(&b, bad[i].n, bad[i].k, bad[i].v);
        long rc = call_result_map(b.data, b.len, &out);
        if (rc != bad[i].want)
            fprintf(stderr, "case %zu: %ld\n", i, rc);
        CHECK(rc == bad[i].want);
    }
    /* an id over ENVELOPE_MAX_CALL_ID bytes: too big to decode, refused by the encoder */
    char long_id[ENVELOPE_MAX_CALL_ID + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    struct envelope_call_result big = res[0];
    big.id = sl(long_id);
    buf_reset(&b);
    CHECK(envelope_call_result_encode(&big, &b) == SIOC_EINVAL);
    buf_reset(&b);
    mp_write_map(&b, 5);
    mp_write_cstr(&b, "t");
    mp_write_cstr(&b, "ack");
    mp_write_cstr(&b, "id");
    mp_write_cstr(&b, long_id);
    mp_write_cstr(&b, "nsp");
    mp_write_cstr(&b, "/");
    mp_write_cstr(&b, "sid");
    mp_write_cstr(&b, "s");
    mp_write_cstr(&b, "args");
    mp_write_array(&b, 0);
    CHECK(call_result_map(b.data, b.len, &out) == SIOC_ETOOBIG);
    long_id[ENVELOPE_MAX_CALL_ID] = '\0'; /* exactly the limit is fine */
    buf_reset(&b);
    big.id = sl(long_id);
    CHECK(envelope_call_result_encode(&big, &b) == SIOC_OK);
    CHECK(call_result_map(b.data, b.len, &out) == (long)b.len &&
          out.id.len == ENVELOPE_MAX_CALL_ID);
    /* not a map at all */
    CHECK(call_result_map((const uint8_t *)"\x90", 1, &out) == SIOC_EPROTO);
    CHECK(call_result_map(NULL, 0, &out) == SIOC_EPROTO);
    buf_deinit(&b);
}

static void test_snapshot_request(void)
{
    struct envelope_reply r = {.t = ENVELOPE_SNAPSHOT_REQUEST}, out;
    struct buf b;
    buf_init(&b, 0);
    CHECK(envelope_reply_encode(&r, &b) == SIOC_OK);
    CHECK_MEM(b.data, b.len, "\x81\xa1t\xa8snapshot", 12);
    size_t map_len;
    uint8_t *g = test_guard_copy(b.data, b.len, &map_len);
    CHECK(envelope_reply_decode(g, b.len, &out) == (long)b.len &&
          out.t == ENVELOPE_SNAPSHOT_REQUEST);
    test_guard_free(g, b.len, map_len);
    /* a later broker may add keys: still a snapshot request */
    static const uint8_t more[] = "\x82\xa1t\xa8snapshot\xa6reason\xa8mismatch";
    CHECK(envelope_reply_decode(more, sizeof more - 1, &out) == (long)(sizeof more - 1) &&
          out.t == ENVELOPE_SNAPSHOT_REQUEST);
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_reply_exact_bytes);
    RUN(test_reply_call);
    RUN(test_reply_connect_round_trip_and_truncation);
    RUN(test_reply_any_order_unknown_ignored);
    RUN(test_reply_rejections);
    RUN(test_reply_list_limits);
    RUN(test_reply_encode_invalid);
    RUN(test_snapshot_request);
    RUN(test_call_result_decode);
    return test_summary("test_envelope_reply");
}
