/* test_envelope.c: sioc envelopes (DESIGN.md 3.2, 3.4; replies: test_envelope_reply.c): exact
 * encodings written out by hand, round trips of every entry kind, keys/fields in other orders and
 * unknown ones, every rejection, truncation at every offset; decoders also run on guard-page
 * copies of their input. */
#include "tests/unit/envelope_test.h"

static bool node_info_equal(const struct envelope_node_info *a, const struct envelope_node_info *b)
{
    return slice_eq(a->epoch, b->epoch) && slice_eq(a->address, b->address) &&
           a->started == b->started && a->sockets == b->sockets;
}

/* ---- guard-page decoding: every decoder runs on the input as given and on copies that end at
 * an unreadable page; both runs must agree, and a success must equal `want` (if given). ---- */

#define MAX_KV 32

struct guarded_kv {
    struct slice kv[MAX_KV];
    uint8_t *mem[MAX_KV];
    size_t map_len[MAX_KV];
    size_t n;
};

static void guard_kv(struct guarded_kv *g, const struct slice *kv, size_t n)
{
    if (n > MAX_KV) {
        fprintf(stderr, "guard_kv: too many slices\n");
        exit(2);
    }
    g->n = n;
    for (size_t i = 0; i < n; i++) {
        g->mem[i] = test_guard_copy(kv[i].p, kv[i].len, &g->map_len[i]);
        g->kv[i] = (struct slice){g->mem[i], kv[i].len};
    }
}

static void unguard_kv(struct guarded_kv *g)
{
    for (size_t i = 0; i < g->n; i++)
        test_guard_free(g->mem[i], g->kv[i].len, g->map_len[i]);
}

static int up_fields(const struct slice *kv, size_t n, const struct envelope_up *want)
{
    struct envelope_up a, b;
    struct guarded_kv g;
    int rc = envelope_up_from_fields(kv, n, &a);
    guard_kv(&g, kv, n);
    CHECK(envelope_up_from_fields(g.kv, n, &b) == rc);
    if (rc == SIOC_OK && want != NULL) {
        CHECK(up_equal(&a, want));
        CHECK(up_equal(&b, want));
    }
    unguard_kv(&g);
    return rc;
}

static int reg_fields(const struct slice *kv, size_t n, const struct envelope_reg *want)
{
    struct envelope_reg a, b;
    struct guarded_kv g;
    int rc = envelope_reg_from_fields(kv, n, &a);
    guard_kv(&g, kv, n);
    CHECK(envelope_reg_from_fields(g.kv, n, &b) == rc);
    if (rc == SIOC_OK && want != NULL) {
        CHECK(reg_equal(&a, want));
        CHECK(reg_equal(&b, want));
    }
    unguard_kv(&g);
    return rc;
}

static long up_map(const uint8_t *p, size_t len, const struct envelope_up *want)
{
    struct envelope_up a, b;
    size_t map_len;
    long rc = envelope_up_decode_map(p, len, &a);
    uint8_t *g = test_guard_copy(p, len, &map_len);
    CHECK(envelope_up_decode_map(g, len, &b) == rc);
    CHECK(rc < 0 || (size_t)rc == len);
    if (rc >= 0 && want != NULL) {
        CHECK(up_equal(&a, want));
        CHECK(up_equal(&b, want));
    }
    test_guard_free(g, len, map_len);
    return rc;
}

static long node_map(const uint8_t *p, size_t len, const struct envelope_node_info *want)
{
    struct envelope_node_info a, b;
    size_t map_len;
    long rc = envelope_node_info_decode(p, len, &a);
    uint8_t *g = test_guard_copy(p, len, &map_len);
    CHECK(envelope_node_info_decode(g, len, &b) == rc);
    CHECK(rc < 0 || (size_t)rc == len);
    if (rc >= 0 && want != NULL) {
        CHECK(node_info_equal(&a, want));
        CHECK(node_info_equal(&b, want));
    }
    test_guard_free(g, len, map_len);
    return rc;
}

/* ---- field-list editing: start from a valid encoding, change one thing ---- */

static size_t kv_copy(struct slice *dst, const struct envelope_fields *f)
{
    memcpy(dst, f->kv, f->n * sizeof *dst);
    return f->n;
}

static size_t kv_remove(struct slice *kv, size_t n, const char *field)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (slice_eq(kv[i], sl(field))) {
            memmove(kv + i, kv + i + 2, (n - i - 2) * sizeof *kv);
            return n - 2;
        }
    }
    return n;
}

/* Replaces the value of `field`, or appends the pair if absent. */
static size_t kv_set(struct slice *kv, size_t n, const char *field, struct slice value)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (slice_eq(kv[i], sl(field))) {
            kv[i + 1] = value;
            return n;
        }
    }
    kv[n] = sl(field);
    kv[n + 1] = value;
    return n + 2;
}

/* ---- fixtures ---- */

static const uint8_t args_hi[] = {0x92, 0xa2, 'h', 'i', 0x01};          /* ["hi",1] */
static const uint8_t auth_tok[] = {0x81, 0xa1, 't', 0xa1, 'x'};         /* {"t":"x"} */
static const uint8_t hs_map[] = {0x81, 0xa3, 'u', 'r', 'l', 0xa1, '/'}; /* {"url":"/"} */

static struct envelope_up up_event(void)
{
    return (struct envelope_up){
        .type = ENVELOPE_UP_EVENT,
        .nsp = sl("/chat"),
        .sid = sl("sid1"),
        .node = sl("gw1"),
        .uid = sl("42"),
        .ts = 1700000000000ull,
        .event = sl("msg"),
        .args = {args_hi, sizeof args_hi},
        .has_ack = true,
        .ack = 42,
    };
}

static struct envelope_up up_connect(void)
{
    return (struct envelope_up){
        .type = ENVELOPE_UP_CONNECT,
        .nsp = sl("/"),
        .sid = sl("sid2"),
        .node = sl("gw1"),
        .uid = sl(""),
        .ts = 5,
        .auth = {auth_tok, sizeof auth_tok},
        .hs = {hs_map, sizeof hs_map},
        .has_rid = true,
        .rid = sl("r-1"),
    };
}

static struct envelope_up up_disconnect(void)
{
    return (struct envelope_up){
        .type = ENVELOPE_UP_DISCONNECT,
        .nsp = sl("/"),
        .sid = sl("sid3"),
        .node = sl("gw2"),
        .uid = sl("u"),
        .ts = 0,
        .reason = sl("client namespace disconnect"),
    };
}

/* ---- 3.2 shard and keys ---- */

static void test_fnv1a32_vectors(void)
{
    CHECK(envelope_fnv1a32((const uint8_t *)"", 0) == 0x811c9dc5u);
    CHECK(envelope_fnv1a32((const uint8_t *)"a", 1) == 0xe40c292cu);
    CHECK(envelope_fnv1a32((const uint8_t *)"foobar", 6) == 0xbf9cf968u);
    CHECK(envelope_shard((const uint8_t *)"foobar", 6, 1) == 0);
    CHECK(envelope_shard((const uint8_t *)"foobar", 6, 0) == 0);
    CHECK(envelope_shard((const uint8_t *)"foobar", 6, 7) == 0xbf9cf968u % 7);
    CHECK(envelope_shard((const uint8_t *)"a", 1, 16) == 0xcu); /* 0xe40c292c & 15 */
}

static void test_key_names(void)
{
    struct buf b;
    buf_init(&b, 0);
    envelope_key_up_stream(&b, ENVELOPE_DEFAULT_PREFIX, sl("/chat"), 3, 4);
    CHECK_STR(b.data, b.len, "sioc:up:/chat:3");
    buf_reset(&b);
    /* on a Redis Cluster (prefix "{sioc}"): the prefix's braces move to the spread tag */
    envelope_key_up_stream(&b, "{sioc}", sl("/chat"), 0, 3);
    CHECK_STR(b.data, b.len, "sioc:up:/chat:{0.1}"); /* slot of "0.0" is not in [0, 5461) */
    buf_reset(&b);
    envelope_key_up_stream(&b, "{sioc}", sl("/"), 2, 3);
    CHECK(b.len > 11 && memcmp(b.data, "sioc:up:/:{2.", 13) == 0 && b.data[b.len - 1] == '}');
    buf_reset(&b);
    envelope_key_up_channel(&b, "p", sl("/"));
    CHECK_STR(b.data, b.len, "p:up:/");
    buf_reset(&b);
    envelope_key_node(&b, "sioc", sl("gw1"));
    CHECK_STR(b.data, b.len, "sioc:node:gw1");
    buf_reset(&b);
    envelope_key_hb(&b, "sioc", sl("gw1"));
    CHECK_STR(b.data, b.len, "sioc:hb:gw1");
    buf_reset(&b);
    envelope_key_nodes(&b, "sioc");
    CHECK_STR(b.data, b.len, "sioc:nodes");
    buf_reset(&b);
    envelope_key_registry(&b, "sioc");
    CHECK_STR(b.data, b.len, "sioc:registry");
    buf_reset(&b);
    envelope_key_sid(&b, "sioc", sl("abc"));
    CHECK_STR(b.data, b.len, "sioc:sid:abc");
    buf_reset(&b);
    envelope_key_user(&b, "sioc", sl("42"));
    CHECK_STR(b.data, b.len, "sioc:user:42");
    buf_reset(&b);
    envelope_key_room(&b, "sioc", sl("/"), sl("user:42"));
    CHECK_STR(b.data, b.len, "sioc:room:/:user:42");
    buf_reset(&b);
    envelope_key_node_sids(&b, "sioc", sl("gw1"));
    CHECK_STR(b.data, b.len, "sioc:node-sids:gw1");
    /* appends: the caller may build into a buffer that already holds something */
    envelope_key_nodes(&b, "x");
    CHECK_STR(b.data, b.len, "sioc:node-sids:gw1x:nodes");
    CHECK(b.err == SIOC_OK);
    buf_deinit(&b);

    buf_init(&b, 8);
    envelope_key_registry(&b, "sioc");
    CHECK(b.err == SIOC_ETOOBIG);
    buf_deinit(&b);
}

static void test_epoch_format(void)
{
    uint8_t e[ENVELOPE_EPOCH_LEN];
    envelope_epoch_format(0x0123456789abcdefull, e);
    CHECK_STR(e, sizeof e, "0123456789abcdef");
    envelope_epoch_format(0, e);
    CHECK_STR(e, sizeof e, "0000000000000000");
}

/* ---- 3.2 upstream, stream form ---- */

static void test_up_event_fields_exact(void)
{
    struct envelope_up up = up_event();
    struct envelope_fields f;
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);
    static const char *const want[] = {
        "v",    "1",   "type", "event", "nsp", "/chat",         "sid",   "sid1",
        "node", "gw1", "uid",  "42",    "ts",  "1700000000000", "event", "msg"};
    size_t nwant = sizeof want / sizeof want[0];
    CHECK(f.n == nwant + 4);
    for (size_t i = 0; i < nwant && i < f.n; i++)
        CHECK_STR(f.kv[i].p, f.kv[i].len, want[i]);
    if (f.n == nwant + 4) {
        CHECK_STR(f.kv[16].p, f.kv[16].len, "args");
        CHECK_MEM(f.kv[17].p, f.kv[17].len, args_hi, sizeof args_hi);
        CHECK_STR(f.kv[18].p, f.kv[18].len, "ack");
        CHECK_STR(f.kv[19].p, f.kv[19].len, "42");
    }
    CHECK(up_fields(f.kv, f.n, &up) == SIOC_OK);

    up.has_ack = false; /* ack only when the client asked for one */
    up.ack = 0;
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);
    CHECK(f.n == 18);
    CHECK(up_fields(f.kv, f.n, &up) == SIOC_OK);
}

static void test_up_connect_disconnect_fields(void)
{
    struct envelope_up up = up_connect();
    struct envelope_fields f;
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);
    CHECK(f.n == 20);
    CHECK_STR(f.kv[3].p, f.kv[3].len, "connect");
    CHECK_STR(f.kv[11].p, f.kv[11].len, ""); /* anonymous: uid empty */
    CHECK_STR(f.kv[13].p, f.kv[13].len, "5");
    CHECK_STR(f.kv[14].p, f.kv[14].len, "auth");
    CHECK_STR(f.kv[16].p, f.kv[16].len, "hs");
    CHECK_STR(f.kv[18].p, f.kv[18].len, "rid");
    CHECK_STR(f.kv[19].p, f.kv[19].len, "r-1");
    CHECK(up_fields(f.kv, f.n, &up) == SIOC_OK);
    up.has_rid = false;
    up.rid = (struct slice){NULL, 0};
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);
    CHECK(f.n == 18);
    CHECK(up_fields(f.kv, f.n, &up) == SIOC_OK);

    /* a recovered socket's connect (docs/contracts.md "Connection state recovery") */
    up.recovered = true;
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);
    CHECK(f.n == 20);
    CHECK_STR(f.kv[18].p, f.kv[18].len, "recovered");
    CHECK_STR(f.kv[19].p, f.kv[19].len, "1");
    struct buf m;
    buf_init(&m, 0);
    CHECK(envelope_up_encode_map(&up, &m) == SIOC_OK);
    CHECK(m.len > 11 && memcmp(m.data + m.len - 11, "\xa9recovered\x01", 11) == 0);
    CHECK(m.data[0] == (0x80 | 10)); /* 7 common + auth, hs, recovered */
    buf_deinit(&m);

    up = up_disconnect();
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);
    CHECK(f.n == 16);
    CHECK_STR(f.kv[13].p, f.kv[13].len, "0");
    CHECK_STR(f.kv[14].p, f.kv[14].len, "reason");
    CHECK(up_fields(f.kv, f.n, &up) == SIOC_OK);
}

static void test_up_fields_any_order_unknown_ignored(void)
{
    struct envelope_up up = up_event();
    struct envelope_fields f;
    struct slice kv[MAX_KV];
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);
    size_t n = f.n;
    for (size_t i = 0; i < n; i += 2) { /* reverse the pairs */
        kv[i] = f.kv[n - 2 - i];
        kv[i + 1] = f.kv[n - 1 - i];
    }
    n = kv_set(kv, n, "x-trace", sl("abc"));
    n = kv_set(kv, n, "reason", sl("\xff")); /* another type's field: ignored, not checked */
    n = kv_set(kv, n, "", sl(""));
    CHECK(up_fields(kv, n, &up) == SIOC_OK);
}

static void test_up_fields_missing_required(void)
{
    static const char *const common[] = {"v", "type", "nsp", "sid", "node", "uid", "ts"};
    static const char *const specific[3][2] = {
        [ENVELOPE_UP_CONNECT] = {"auth", "hs"},
        [ENVELOPE_UP_EVENT] = {"event", "args"},
        [ENVELOPE_UP_DISCONNECT] = {"reason", "reason"},
    };
    struct envelope_up ups[3] = {up_connect(), up_event(), up_disconnect()};
    for (int k = 0; k < 3; k++) {
        struct envelope_fields f;
        struct slice kv[MAX_KV];
        CHECK(envelope_up_to_fields(&ups[k], &f) == SIOC_OK);
        for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
            size_t n = kv_remove(kv, kv_copy(kv, &f), common[i]);
            CHECK(n == f.n - 2);
            CHECK(up_fields(kv, n, NULL) == SIOC_EPROTO);
        }
        for (int i = 0; i < 2; i++) {
            size_t n = kv_remove(kv, kv_copy(kv, &f), specific[ups[k].type][i]);
            CHECK(n == f.n - 2);
            CHECK(up_fields(kv, n, NULL) == SIOC_EPROTO);
        }
        /* the optional ones may go */
        size_t n = kv_remove(kv, kv_copy(kv, &f), ups[k].type == ENVELOPE_UP_EVENT ? "ack" : "rid");
        CHECK(up_fields(kv, n, NULL) == SIOC_OK);
    }
    CHECK(up_fields(NULL, 0, NULL) == SIOC_EPROTO);
}

static void test_up_fields_rejections(void)
{
    struct envelope_up up = up_event();
    struct envelope_fields f;
    struct slice kv[MAX_KV];
    size_t n;
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);

    /* version */
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "v", sl("2")), NULL) == SIOC_ENOTSUP);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "v", sl("01")), NULL) == SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "v", sl("")), NULL) == SIOC_EPROTO);
    /* type */
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "type", sl("ping")), NULL) == SIOC_ENOTSUP);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "type", sl("Event")), NULL) == SIOC_ENOTSUP);
    /* ack: canonical decimal u64 */
    static const char *const bad_numbers[] = {"12a",
                                              "",
                                              "-1",
                                              "+1",
                                              "01",
                                              " 1",
                                              "1.0",
                                              "18446744073709551616",
                                              "99999999999999999999",
                                              "184467440737095516150"};
    for (size_t i = 0; i < sizeof bad_numbers / sizeof bad_numbers[0]; i++) {
        CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "ack", sl(bad_numbers[i])), NULL) ==
              SIOC_EPROTO);
        CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "ts", sl(bad_numbers[i])), NULL) ==
              SIOC_EPROTO);
    }
    struct envelope_up want = up;
    want.ack = UINT64_MAX;
    n = kv_set(kv, kv_copy(kv, &f), "ack", sl("18446744073709551615"));
    CHECK(up_fields(kv, n, &want) == SIOC_OK);
    want.ack = 0;
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "ack", sl("0")), &want) == SIOC_OK);

    /* args: exactly one MessagePack array */
    static const uint8_t not_array[] = {0x01};
    static const uint8_t trailing[] = {0x91, 0x01, 0x01};
    static const uint8_t truncated[] = {0x92, 0x01};
    static const uint8_t map[] = {0x80};
    static const uint8_t never_used[] = {0xc1};
    const struct slice bad_args[] = {{not_array, 1}, {trailing, 3},   {truncated, 2},
                                     {map, 1},       {never_used, 1}, {NULL, 0}};
    for (size_t i = 0; i < sizeof bad_args / sizeof bad_args[0]; i++)
        CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "args", bad_args[i]), NULL) == SIOC_EPROTO);
    static const uint8_t empty_array[] = {0x90};
    want = up;
    want.args = (struct slice){empty_array, 1};
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "args", want.args), &want) == SIOC_OK);

    /* identifiers */
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "nsp", sl("chat")), NULL) == SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "nsp", sl("")), NULL) == SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "sid", sl("")), NULL) == SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "node", sl("")), NULL) == SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "sid", sl("a\xc0\x80")), NULL) == SIOC_EUTF8);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "event", sl("\xed\xa0\x80")), NULL) ==
          SIOC_EUTF8);
    want = up;
    want.event = sl("");
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "event", sl("")), &want) == SIOC_OK);

    /* shape of the list */
    n = kv_copy(kv, &f);
    kv[n] = sl("sid");
    kv[n + 1] = sl("other");
    CHECK(up_fields(kv, n + 2, NULL) == SIOC_EPROTO); /* duplicate field */
    CHECK(up_fields(kv, n - 1, NULL) == SIOC_EPROTO); /* odd count */

    /* connect: hs must be a map, auth one value, rid non-empty */
    up = up_connect();
    CHECK(envelope_up_to_fields(&up, &f) == SIOC_OK);
    static const uint8_t nil[] = {0xc0};
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "hs", (struct slice){empty_array, 1}), NULL) ==
          SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "hs", (struct slice){nil, 1}), NULL) ==
          SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "auth", (struct slice){trailing, 3}), NULL) ==
          SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "auth", (struct slice){NULL, 0}), NULL) ==
          SIOC_EPROTO);
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "rid", sl("")), NULL) == SIOC_EPROTO);
    want = up;
    want.auth = (struct slice){nil, 1};
    CHECK(up_fields(kv, kv_set(kv, kv_copy(kv, &f), "auth", want.auth), &want) == SIOC_OK);
}

static void test_up_encode_invalid(void)
{
    struct envelope_fields f;
    struct buf b;
    buf_init(&b, 0);
    static const uint8_t not_array[] = {0x01};
    struct envelope_up bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = up_event();
    bad[0].args = (struct slice){not_array, 1};
    bad[1].nsp = sl("x");
    bad[2].sid = sl("");
    bad[3].type = (enum envelope_up_type)7;
    bad[4].uid = sl("\xff");
    bad[5].args = (struct slice){NULL, 0};
    for (int i = 0; i < 6; i++) {
        CHECK(envelope_up_to_fields(&bad[i], &f) == SIOC_EINVAL);
        CHECK(envelope_up_encode_map(&bad[i], &b) == SIOC_EINVAL);
        CHECK(b.len == 0);
    }
    buf_deinit(&b);
    /* a full output buffer is reported, not ignored */
    struct envelope_up up = up_event();
    buf_init(&b, 10);
    CHECK(envelope_up_encode_map(&up, &b) == SIOC_ETOOBIG);
    buf_deinit(&b);
}

/* ---- 3.2 upstream, pubsub map form ---- */

static void test_up_map_exact_bytes(void)
{
    static const uint8_t args1[] = {0x91, 0x01};
    struct envelope_up up = {
        .type = ENVELOPE_UP_EVENT,
        .nsp = sl("/"),
        .sid = sl("s1"),
        .node = sl("n1"),
        .uid = sl(""),
        .ts = 1000,
        .event = sl("hi"),
        .args = {args1, 2},
        .has_ack = true,
        .ack = 7,
    };
    struct buf b;
    buf_init(&b, 0);
    CHECK(envelope_up_encode_map(&up, &b) == SIOC_OK);
    CHECK_HEX(b.data, b.len,
              "8a a1 76 01 a4 74797065 a5 6576656e74 a3 6e7370 a1 2f a3 736964 a2 7331 "
              "a4 6e6f6465 a2 6e31 a3 756964 a0 a2 7473 cd 03e8 a5 6576656e74 a2 6869 "
              "a4 61726773 91 01 a3 61636b 07");
    CHECK(up_map(b.data, b.len, &up) == (long)b.len);

    buf_reset(&b);
    struct envelope_up dis = up_disconnect();
    dis.reason = sl("x");
    dis.ts = 1700000000000ull;
    CHECK(envelope_up_encode_map(&dis, &b) == SIOC_OK);
    CHECK_HEX(
        b.data, b.len,
        "88 a1 76 01 a4 74797065 aa 646973636f6e6e656374 a3 6e7370 a1 2f a3 736964 a4 73696433 "
        "a4 6e6f6465 a3 677732 a3 756964 a1 75 a2 7473 cf 0000018bcfe56800 a6 726561736f6e a1 78");
    CHECK(up_map(b.data, b.len, &dis) == (long)b.len);
    buf_deinit(&b);
}

static void test_up_map_round_trips(void)
{
    struct envelope_up ups[4] = {up_event(), up_connect(), up_disconnect(), up_event()};
    ups[3].has_ack = false;
    ups[3].ack = 0;
    for (int i = 0; i < 4; i++) {
        struct buf b;
        buf_init(&b, 0);
        CHECK(envelope_up_encode_map(&ups[i], &b) == SIOC_OK);
        CHECK(up_map(b.data, b.len, &ups[i]) == (long)b.len);
        /* truncated anywhere: an error, never a crash (the guard page catches over-reads) */
        for (size_t cut = 0; cut < b.len; cut++)
            CHECK(up_map(b.data, cut, NULL) < 0);
        buf_deinit(&b);
    }
}

static void test_up_map_any_order_unknown_ignored(void)
{
    struct buf b;
    buf_init(&b, 0);
    mp_write_map(&b, 11);
    mp_write_cstr(&b, "args");
    mp_write_array(&b, 0);
    mp_write_cstr(&b, "x-new");
    mp_write_map(&b, 1); /* an unknown key with a nested value is skipped whole */
    mp_write_cstr(&b, "a");
    mp_write_array(&b, 2);
    mp_write_nil(&b);
    mp_write_nil(&b);
    mp_write_cstr(&b, "event");
    mp_write_cstr(&b, "e");
    mp_write_cstr(&b, "ts");
    mp_write_int(&b, 9);
    mp_write_cstr(&b, "uid");
    mp_write_cstr(&b, "");
    mp_write_cstr(&b, "node");
    mp_write_cstr(&b, "n");
    mp_write_cstr(&b, "sid");
    mp_write_cstr(&b, "s");
    mp_write_cstr(&b, "nsp");
    mp_write_cstr(&b, "/");
    mp_write_cstr(&b, "hs");
    mp_write_uint(&b, 5); /* a connect-only key in an event: ignored */
    mp_write_cstr(&b, "type");
    mp_write_cstr(&b, "event");
    mp_write_cstr(&b, "v");
    mp_write_uint(&b, 1);
    static const uint8_t empty[] = {0x90};
    struct envelope_up want = {
        .type = ENVELOPE_UP_EVENT,
        .nsp = sl("/"),
        .sid = sl("s"),
        .node = sl("n"),
        .uid = sl(""),
        .ts = 9,
        .event = sl("e"),
        .args = {empty, 1},
    };
    CHECK(up_map(b.data, b.len, &want) == (long)b.len);
    buf_deinit(&b);
}

/* Encodes `up` as a map whose value for `key` is replaced by the raw bytes `hex`. */
static long up_map_with(const struct envelope_up *up, const char *key, const char *hex)
{
    struct buf b, out;
    uint8_t raw[64];
    size_t rn = test_unhex(hex, raw);
    buf_init(&b, 0);
    buf_init(&out, 0);
    CHECK(envelope_up_encode_map(up, &b) == SIOC_OK);
    /* rebuild: walk the pairs and swap one value */
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, b.data, b.len);
    mp_read(&r, &it);
    mp_write_map(&out, it.len);
    for (uint32_t i = 0; i < it.len; i++) {
        struct mp_item k;
        mp_read(&r, &k);
        mp_write_str(&out, k.data, k.len);
        size_t start = r.pos;
        mp_skip(&r);
        if (mp_item_is_str(&k, key))
            buf_append(&out, raw, rn);
        else
            buf_append(&out, b.data + start, r.pos - start);
    }
    long rc = up_map(out.data, out.len, NULL);
    buf_deinit(&b);
    buf_deinit(&out);
    return rc;
}

static void test_up_map_rejections(void)
{
    struct envelope_up up = up_event();
    CHECK(up_map_with(&up, "v", "a1 31") == SIOC_EPROTO); /* v is an integer in a map */
    CHECK(up_map_with(&up, "v", "02") == SIOC_ENOTSUP);
    CHECK(up_map_with(&up, "v", "cb 3ff0000000000000") == SIOC_EPROTO); /* 1.0 */
    CHECK(up_map_with(&up, "type", "a4 70696e67") == SIOC_ENOTSUP);
    CHECK(up_map_with(&up, "type", "01") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "ts", "ff") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "ts", "a1 31") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "ts", "cb 4000000000000000") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "ack", "a2 3132") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "ack", "d0 ff") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "ack", "cf ffffffffffffffff") > 0);
    CHECK(up_map_with(&up, "ack", "d3 0000000000000005") > 0);
    CHECK(up_map_with(&up, "nsp", "c4 01 2f") == SIOC_EPROTO); /* bin is not str */
    CHECK(up_map_with(&up, "sid", "c0") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "uid", "a1 ff") == SIOC_EUTF8);
    CHECK(up_map_with(&up, "args", "80") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "args", "a0") == SIOC_EPROTO);
    CHECK(up_map_with(&up, "event", "01") == SIOC_EPROTO);

    uint8_t in[64];
    size_t n;
    n = test_unhex("91 01", in); /* not a map */
    CHECK(up_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("81 01 01", in); /* non-string key */
    CHECK(up_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("82 a1 76 01 a1 76 01", in); /* duplicate key */
    CHECK(up_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("df ffffffff", in); /* lying count */
    CHECK(up_map(in, n, NULL) == SIOC_EPROTO);
    CHECK(up_map(in, 0, NULL) == SIOC_EPROTO);

    struct buf b;
    buf_init(&b, 0);
    CHECK(envelope_up_encode_map(&up, &b) == SIOC_OK);
    buf_append_byte(&b, 0xc0); /* one message is one map: trailing bytes are an error */
    CHECK(up_map(b.data, b.len, NULL) == SIOC_EPROTO);
    buf_deinit(&b);
}

/* ---- 3.3 directed replies ---- */

static void test_list_iteration(void)
{
    static const uint8_t rooms[] = {0x93, 0xa1, 'a', 0xa0, 0xa2, 'b', 'c'};
    static const uint8_t emit[] = {0x92, 0x91, 0xa1, 'x', 0x92, 0xa1, 'y', 0x81, 0xa1, 'k', 0x01};
    struct envelope_list l = {{rooms, sizeof rooms}, 3};
    struct envelope_iter it;
    struct slice s;
    envelope_iter_init(&it, &l);
    CHECK(envelope_iter_next(&it, &s));
    CHECK_STR(s.p, s.len, "a");
    CHECK(envelope_iter_next(&it, &s));
    CHECK(s.len == 0);
    CHECK(envelope_iter_next(&it, &s));
    CHECK_STR(s.p, s.len, "bc");
    CHECK(!envelope_iter_next(&it, &s));
    CHECK(!envelope_iter_next(&it, &s));

    l = (struct envelope_list){{emit, sizeof emit}, 2};
    envelope_iter_init(&it, &l);
    CHECK(envelope_iter_next(&it, &s));
    CHECK_MEM(s.p, s.len, emit + 1, 3);
    CHECK(envelope_iter_next(&it, &s));
    CHECK_MEM(s.p, s.len, emit + 4, 7);
    CHECK(!envelope_iter_next(&it, &s));

    l = (struct envelope_list){{NULL, 0}, 0}; /* absent list */
    envelope_iter_init(&it, &l);
    CHECK(!envelope_iter_next(&it, &s));
    static const uint8_t lying[] = {0x92, 0xa5, 'x'}; /* not from a decoder: still bounded */
    l = (struct envelope_list){{lying, sizeof lying}, 0};
    envelope_iter_init(&it, &l);
    CHECK(!envelope_iter_next(&it, &s));
    static const uint8_t short_list[] = {0x93, 0xa1, 'x', 0xc1};
    l = (struct envelope_list){{short_list, sizeof short_list}, 0};
    envelope_iter_init(&it, &l);
    CHECK(envelope_iter_next(&it, &s));
    CHECK(!envelope_iter_next(&it, &s));
}

/* ---- 3.4 registry and node info ---- */

static const uint8_t reg_rooms[] = {0x92, 0xa4, 's', 'i', 'd', '1', 0xa4, 'r', 'o', 'o', 'm'};

static struct envelope_reg reg_join(void)
{
    return (struct envelope_reg){
        .node = sl("gw1"),
        .epoch = sl("00ff00ff00ff00ff"),
        .seq = 17,
        .op = ENVELOPE_REG_JOIN,
        .nsp = sl("/"),
        .sid = sl("sid1"),
        .uid = sl(""),
        .rooms = {{reg_rooms, sizeof reg_rooms}, 2},
    };
}

static void test_reg_fields_exact_and_round_trip(void)
{
    struct envelope_reg e = reg_join();
    struct envelope_fields f;
    CHECK(envelope_reg_to_fields(&e, &f) == SIOC_OK);
    static const char *const want[] = {"node", "gw1", "epoch", "00ff00ff00ff00ff",
                                       "seq",  "17",  "op",    "join",
                                       "nsp",  "/",   "sid",   "sid1",
                                       "uid",  "",    "rooms"};
    CHECK(f.n == 16);
    for (size_t i = 0; i < sizeof want / sizeof want[0] && i < f.n; i++)
        CHECK_STR(f.kv[i].p, f.kv[i].len, want[i]);
    CHECK_MEM(f.kv[15].p, f.kv[15].len, reg_rooms, sizeof reg_rooms);
    CHECK(reg_fields(f.kv, f.n, &e) == SIOC_OK);

    static const char *const ops[] = {"connect", "disconnect", "join", "leave", "snapshot"};
    for (int op = 0; op < 5; op++) {
        e.op = (enum envelope_reg_op)op;
        e.seq = op == 4 ? UINT64_MAX : (uint64_t)op;
        CHECK(envelope_reg_to_fields(&e, &f) == SIOC_OK);
        CHECK_STR(f.kv[7].p, f.kv[7].len, ops[op]);
        CHECK(reg_fields(f.kv, f.n, &e) == SIOC_OK);
    }
    static const uint8_t none[] = {0x90};
    e.rooms = (struct envelope_list){{none, 1}, 0};
    CHECK(envelope_reg_to_fields(&e, &f) == SIOC_OK);
    CHECK(reg_fields(f.kv, f.n, &e) == SIOC_OK);
}

static void test_reg_rejections(void)
{
    struct envelope_reg e = reg_join();
    struct envelope_fields f;
    struct slice kv[MAX_KV];
    CHECK(envelope_reg_to_fields(&e, &f) == SIOC_OK);
    static const char *const fields[] = {"node", "epoch", "seq", "op",
                                         "nsp",  "sid",   "uid", "rooms"};
    for (size_t i = 0; i < 8; i++)
        CHECK(reg_fields(kv, kv_remove(kv, kv_copy(kv, &f), fields[i]), NULL) == SIOC_EPROTO);
    size_t n = kv_set(kv, kv_copy(kv, &f), "x", sl("y")); /* unknown field */
    CHECK(reg_fields(kv, n, &e) == SIOC_OK);

    static const char *const bad_epochs[] = {"00FF00FF00FF00FF", "00ff00ff00ff00f",
                                             "00ff00ff00ff00ff0", "", "00ff00ff00ff00fg"};
    for (size_t i = 0; i < sizeof bad_epochs / sizeof bad_epochs[0]; i++)
        CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "epoch", sl(bad_epochs[i])), NULL) ==
              SIOC_EPROTO);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "seq", sl("18446744073709551616")), NULL) ==
          SIOC_EPROTO);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "seq", sl("1e3")), NULL) == SIOC_EPROTO);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "op", sl("move")), NULL) == SIOC_ENOTSUP);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "nsp", sl("x")), NULL) == SIOC_EPROTO);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "sid", sl("")), NULL) == SIOC_EPROTO);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "node", sl("")), NULL) == SIOC_EPROTO);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "uid", sl("\x80")), NULL) == SIOC_EUTF8);
    static const uint8_t ints[] = {0x91, 0x01};
    static const uint8_t map[] = {0x80};
    static const uint8_t trailing[] = {0x90, 0x90};
    static const uint8_t truncated[] = {0x91, 0xa3, 'a'};
    const struct slice bad_rooms[] = {
        {ints, 2}, {map, 1}, {trailing, 2}, {truncated, 3}, {NULL, 0}};
    for (size_t i = 0; i < sizeof bad_rooms / sizeof bad_rooms[0]; i++)
        CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "rooms", bad_rooms[i]), NULL) ==
              SIOC_EPROTO);
    struct buf big;
    buf_init(&big, 0);
    make_list(&big, ENVELOPE_MAX_ROOMS + 1, false);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "rooms", bsl(&big)), NULL) == SIOC_ETOOBIG);
    buf_reset(&big);
    make_list(&big, ENVELOPE_MAX_ROOMS, false);
    CHECK(reg_fields(kv, kv_set(kv, kv_copy(kv, &f), "rooms", bsl(&big)), NULL) == SIOC_OK);
    buf_deinit(&big);

    struct envelope_reg bad = reg_join();
    bad.epoch = sl("short");
    CHECK(envelope_reg_to_fields(&bad, &f) == SIOC_EINVAL);
    bad = reg_join();
    bad.rooms.raw = (struct slice){NULL, 0};
    CHECK(envelope_reg_to_fields(&bad, &f) == SIOC_EINVAL);
    bad = reg_join();
    bad.op = (enum envelope_reg_op)5;
    CHECK(envelope_reg_to_fields(&bad, &f) == SIOC_EINVAL);
}

static void test_node_info(void)
{
    struct envelope_node_info ni = {
        .epoch = sl("0123456789abcdef"),
        .address = sl("10.0.0.1:3000"),
        .started = 1700000000000ull,
        .sockets = 5,
    };
    struct buf b;
    buf_init(&b, 0);
    CHECK(envelope_node_info_encode(&ni, &b) == SIOC_OK);
    CHECK_HEX(b.data, b.len,
              "84 a5 65706f6368 b0 30313233343536373839616263646566 "
              "a7 61646472657373 ad 31302e302e302e313a33303030 "
              "a7 73746172746564 cf 0000018bcfe56800 a7 736f636b657473 05");
    CHECK(node_map(b.data, b.len, &ni) == (long)b.len);
    for (size_t cut = 0; cut < b.len; cut++)
        CHECK(node_map(b.data, cut, NULL) < 0);

    uint8_t in[256];
    size_t n =
        test_unhex("85 a7 73746172746564 01 a1 78 c0 a7 736f636b657473 00 "
                   "a5 65706f6368 b0 30313233343536373839616263646566 a7 61646472657373 a1 61",
                   in);
    struct envelope_node_info want = {sl("0123456789abcdef"), sl("a"), 1, 0};
    CHECK(node_map(in, n, &want) == (long)n);
    n = test_unhex("83 a7 73746172746564 01 a7 736f636b657473 00 "
                   "a5 65706f6368 b0 30313233343536373839616263646566",
                   in); /* no address */
    CHECK(node_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("84 a7 73746172746564 01 a7 736f636b657473 ff a7 61646472657373 a1 61 "
                   "a5 65706f6368 b0 30313233343536373839616263646566",
                   in); /* negative sockets */
    CHECK(node_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("84 a7 73746172746564 01 a7 736f636b657473 00 a7 61646472657373 a1 61 "
                   "a5 65706f6368 a4 61626364",
                   in); /* short epoch */
    CHECK(node_map(in, n, NULL) == SIOC_EPROTO);
    n = test_unhex("84 a7 73746172746564 a1 31 a7 736f636b657473 00 a7 61646472657373 a1 61 "
                   "a5 65706f6368 b0 30313233343536373839616263646566",
                   in); /* started as text */
    CHECK(node_map(in, n, NULL) == SIOC_EPROTO);

    buf_reset(&b);
    ni.address = sl("");
    CHECK(envelope_node_info_encode(&ni, &b) == SIOC_EINVAL);
    CHECK(b.len == 0);
    buf_deinit(&b);
}

/* The broker's anti-entropy request (DESIGN.md §3.4): {"t":"snapshot"}, byte for byte. */
int main(void)
{
    RUN(test_fnv1a32_vectors);
    RUN(test_key_names);
    RUN(test_epoch_format);
    RUN(test_up_event_fields_exact);
    RUN(test_up_connect_disconnect_fields);
    RUN(test_up_fields_any_order_unknown_ignored);
    RUN(test_up_fields_missing_required);
    RUN(test_up_fields_rejections);
    RUN(test_up_encode_invalid);
    RUN(test_up_map_exact_bytes);
    RUN(test_up_map_round_trips);
    RUN(test_up_map_any_order_unknown_ignored);
    RUN(test_up_map_rejections);
    RUN(test_list_iteration);
    RUN(test_reg_fields_exact_and_round_trip);
    RUN(test_reg_rejections);
    RUN(test_node_info);
    return test_summary("test_envelope");
}
