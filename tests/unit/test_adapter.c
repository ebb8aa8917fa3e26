/* test_adapter.c: the Redis adapter codec against the golden captures of real Node peers
 * (data/adapter-golden/captures.json: every capture decodes to its "decoded" fields and
 * re-encodes byte for byte), the PROTOCOL.md 3.4/3.6/3.9 examples, channels, uid2, and
 * malformed input (wrong types, truncation at every offset from a guard page, lying counts). */
#include "common/adapter.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"
#include "tests/unit/mp_nav.h"
#include "tests/unit/test.h"

static struct slice S(const char *s) {
    struct slice v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static bool
slice_eq(struct slice a, const char *s)
{
    return a.len == strlen(s) && memcmp(a.p, s, a.len) == 0;
}

/* Captures show bins as {"$bin":"hex"}; render ours the same way. */
static int bin_as_dollar(void *ctx, const uint8_t *p, size_t n, struct buf *out)
{
    (void)ctx;
    buf_append_cstr(out, "{\"$bin\":\"");
    for (size_t i = 0; i < n; i++) {
        char h[3];
        snprintf(h, sizeof h, "%02x", p[i]);
        buf_append(out, h, 2);
    }
    buf_append_cstr(out, "\"}");
    return SIOC_OK;
}

/* Checks that two msgpack values render to the same JSON text. */
#define CHECK_SAME_VALUE(got, want) check_same_value(__FILE__, __LINE__, (got), (want))
static void check_same_value(const char *file, int line, struct slice got, struct slice want)
{
    struct buf a, b;
    struct mp_reader r;
    struct json_write_opts opts = {bin_as_dollar, NULL};
    buf_init(&a, 0);
    buf_init(&b, 0);
    mp_reader_init(&r, got.p, got.len);
    int ea = json_from_msgpack(&r, &opts, &a);
    mp_reader_init(&r, want.p, want.len);
    int eb = json_from_msgpack(&r, &opts, &b);
    if (ea != SIOC_OK || eb != SIOC_OK)
        test_fail(file, line, "json_from_msgpack failed");
    test_check_mem(file, line, a.data, a.len, b.data, b.len);
    buf_deinit(&a);
    buf_deinit(&b);
}

static void check_rooms(const struct adapter_rooms *got, struct slice want_or_none, bool has)
{
    if (!has) {
        CHECK(got->count == 0);
        return;
    }
    CHECK(got->count == mp_count(want_or_none));
    for (uint32_t i = 0; i < got->count && i < mp_count(want_or_none); i++) {
        struct slice w;
        CHECK(mp_at(want_or_none, i, &w));
        struct slice ws = mp_str(w);
        CHECK_MEM(got->names[i].p, got->names[i].len, ws.p, ws.len);
    }
}

static void check_opts(const struct adapter_opts *o, struct slice want)
{
    struct slice v;
    bool has = mp_find(want, "rooms", &v);
    check_rooms(&o->rooms, v, has);
    has = mp_find(want, "except", &v);
    check_rooms(&o->except, v, has);
    has = mp_find(want, "flags", &v);
    CHECK(o->has_flags == has);
    struct slice f;
    bool hv = has && mp_find(v, "volatile", &f);
    CHECK(o->flags.is_volatile == hv);
    bool hc = has && mp_find(v, "compress", &f);
    CHECK(o->flags.has_compress == hc);
    if (hc)
        CHECK(o->flags.compress == (f.p[0] == 0xc3));
    bool ht = has && mp_find(v, "timeout", &f);
    CHECK(o->flags.has_timeout == ht);
    if (ht)
        CHECK(o->flags.timeout == (double)mp_int(f));
}

static void check_packet(const struct adapter_packet *p, struct slice want)
{
    struct slice v;
    CHECK(mp_find(want, "type", &v) && p->type == mp_int(v));
    CHECK(mp_find(want, "nsp", &v) && slice_eq(mp_str(v), "") == false);
    struct slice nsp = mp_str(v);
    CHECK_MEM(p->nsp.p, p->nsp.len, nsp.p, nsp.len);
    CHECK(mp_find(want, "data", &v));
    CHECK_SAME_VALUE(p->data, v);
}

static void check_opt_str(bool has, struct slice got, struct slice map, const char *key)
{
    struct slice v;
    bool want = mp_find(map, key, &v);
    CHECK(has == want);
    if (has && want) {
        struct slice s = mp_str(v);
        CHECK_MEM(got.p, got.len, s.p, s.len);
    }
}

static void capture_broadcast(const uint8_t *in, size_t n, struct slice decoded)
{
    struct adapter_broadcast m;
    struct slice v;
    CHECK(adapter_broadcast_decode(in, n, &m) == (int)n);
    CHECK(mp_at(decoded, 0, &v));
    struct slice uid = mp_str(v);
    CHECK_MEM(m.uid.p, m.uid.len, uid.p, uid.len);
    CHECK(mp_at(decoded, 1, &v));
    check_packet(&m.packet, v);
    CHECK(mp_at(decoded, 2, &v));
    check_opts(&m.opts, v);

    struct buf out;
    buf_init(&out, 0);
    if (slice_eq(m.uid, "emitter"))
        adapter_broadcast_encode_emitter(&out, &m);
    else
        adapter_broadcast_encode(&out, &m);
    CHECK(out.err == SIOC_OK);
    CHECK_MEM(out.data, out.len, in, n);
    buf_deinit(&out);
}

static void capture_request(const uint8_t *in, size_t n, struct slice d)
{
    struct adapter_request q;
    struct buf scratch, out;
    struct slice v;
    buf_init(&scratch, 0);
    buf_init(&out, 0);
    CHECK(adapter_request_decode(in, n, &scratch, &q) == (int)n);
    CHECK(mp_find(d, "type", &v) && q.type == mp_int(v));
    check_opt_str(q.has_uid, q.uid, d, "uid");
    check_opt_str(q.has_request_id, q.request_id, d, "requestId");
    check_opt_str(q.has_sid, q.sid, d, "sid");
    check_opt_str(q.has_room, q.room, d, "room");
    CHECK(q.has_opts == mp_find(d, "opts", &v));
    if (q.has_opts)
        check_opts(&q.opts, v);
    CHECK(q.has_rooms == mp_find(d, "rooms", &v));
    check_rooms(&q.rooms, v, q.has_rooms);
    CHECK(q.has_close == mp_find(d, "close", &v));
    if (q.has_close)
        CHECK(q.close == (v.p[0] == 0xc3));
    CHECK(q.has_data == mp_find(d, "data", &v));
    if (q.has_data)
        CHECK_SAME_VALUE(q.data, v);
    CHECK(q.has_packet == mp_find(d, "packet", &v));
    if (q.has_packet)
        check_packet(&q.packet, v);
    /* nothing in the capture went unread */
    CHECK(mp_count(d) == 1u + q.has_uid + q.has_request_id + q.has_opts + q.has_rooms +
                             q.has_close + q.has_data + q.has_packet + q.has_sid + q.has_room);

    CHECK(adapter_request_encode(&out, &q) == SIOC_OK);
    CHECK_MEM(out.data, out.len, in, n);
    buf_deinit(&scratch);
    buf_deinit(&out);
}

static void capture_response(const uint8_t *in, size_t n, struct slice d)
{
    struct adapter_response s;
    struct buf scratch, out;
    struct slice v;
    buf_init(&scratch, 0);
    buf_init(&out, 0);
    CHECK(adapter_response_decode(in, n, &scratch, &s) == (int)n);
    CHECK(s.has_type == mp_find(d, "type", &v));
    if (s.has_type)
        CHECK(s.type == mp_int(v));
    check_opt_str(s.has_request_id, s.request_id, d, "requestId");
    CHECK(s.has_sockets == mp_find(d, "sockets", &v));
    if (s.has_sockets) {
        CHECK_SAME_VALUE(s.sockets, v);
        CHECK(s.sockets_count == mp_count(v));
        CHECK(s.sockets_fetch);
    }
    CHECK(s.has_rooms == mp_find(d, "rooms", &v));
    if (s.has_rooms) {
        CHECK_SAME_VALUE(s.rooms, v);
        CHECK(s.rooms_count == mp_count(v));
    }
    CHECK(s.has_client_count == mp_find(d, "clientCount", &v));
    if (s.has_client_count)
        CHECK((int64_t)s.client_count == mp_int(v));
    CHECK(s.has_data == mp_find(d, "data", &v));
    if (s.has_data)
        CHECK_SAME_VALUE(s.data, v);
    CHECK(s.has_packet == mp_find(d, "packet", &v));
    if (s.has_packet)
        CHECK_SAME_VALUE(s.packet, v);
    CHECK(mp_count(d) == (uint32_t)s.has_type + s.has_request_id + s.has_sockets + s.has_rooms +
                             s.has_client_count + s.has_data + s.has_packet);

    CHECK(adapter_response_encode(&out, &s) == SIOC_OK);
    CHECK_MEM(out.data, out.len, in, n);
    buf_deinit(&scratch);
    buf_deinit(&out);
}

enum channel_kind { CH_BROADCAST, CH_REQUEST, CH_RESPONSE };

static int decode_as(enum channel_kind kind, const uint8_t *in, size_t n)
{
    struct buf scratch;
    buf_init(&scratch, 0);
    int rc;
    if (kind == CH_BROADCAST) {
        struct adapter_broadcast m;
        rc = adapter_broadcast_decode(in, n, &m);
    } else if (kind == CH_REQUEST) {
        struct adapter_request q;
        rc = adapter_request_decode(in, n, &scratch, &q);
    } else {
        struct adapter_response s;
        rc = adapter_response_decode(in, n, &scratch, &s);
    }
    buf_deinit(&scratch);
    return rc;
}

static void test_golden_captures(void)
{
    char path[4096];
    size_t flen;
    snprintf(path, sizeof path, "%s/adapter-golden/captures.json", test_shared_data());
    uint8_t *file = test_read_file(path, &flen);
    CHECK(file != NULL);
    if (file == NULL)
        return;
    struct buf doc;
    buf_init(&doc, 0);
    CHECK(json_to_msgpack(file, flen, &doc) == SIOC_OK);
    struct slice root = {doc.data, doc.len}, caps;
    CHECK(mp_find(root, "captures", &caps));
    uint32_t count = mp_count(caps), done = 0;
    CHECK(count >= 30);
    for (uint32_t i = 0; i < count; i++) {
        struct slice c, ch, hex, dec, bytes;
        CHECK(mp_at(caps, i, &c));
        CHECK(mp_find(c, "channel", &ch) && mp_find(c, "hex", &hex) &&
              mp_find(c, "decoded", &dec) && mp_find(c, "bytes", &bytes));
        struct slice chan = mp_str(ch), hx = mp_str(hex);
        struct buf in;
        buf_init(&in, 0);
        if (hx.p != NULL) {
            char tmp[8192];
            uint8_t raw[4096];
            CHECK(hx.len < sizeof tmp);
            memcpy(tmp, hx.p, hx.len);
            tmp[hx.len] = '\0';
            buf_append(&in, raw, test_unhex(tmp, raw));
        } else {
            /* note: "the bytes are the compact UTF-8 JSON of decoded, key order as shown" */
            struct mp_reader r;
            mp_reader_init(&r, dec.p, dec.len);
            CHECK(json_from_msgpack(&r, NULL, &in) == SIOC_OK);
        }
        CHECK((int64_t)in.len == mp_int(bytes));
        enum channel_kind kind = CH_BROADCAST;
        if (chan.len > 18 && memcmp(chan.p, "socket.io-request#", 18) == 0)
            kind = CH_REQUEST;
        else if (chan.len > 19 && memcmp(chan.p, "socket.io-response#", 19) == 0)
            kind = CH_RESPONSE;
        else
            CHECK(chan.len > 10 && memcmp(chan.p, "socket.io#", 10) == 0);

        size_t map_len;
        uint8_t *g = test_guard_copy(in.data, in.len, &map_len);
        if (kind == CH_BROADCAST) {
            capture_broadcast(g, in.len, dec);
            /* the channel names the room without decoding (PROTOCOL.md 3.3 step 1) */
            struct slice room, nsp, r0 = {NULL, 0};
            CHECK(mp_at(dec, 1, &nsp) && mp_find(nsp, "nsp", &nsp));
            CHECK(adapter_channel_room(chan, S("socket.io"), mp_str(nsp), &room) == SIOC_OK);
            struct slice opts, rooms;
            CHECK(mp_at(dec, 2, &opts) && mp_find(opts, "rooms", &rooms));
            if (mp_count(rooms) == 1)
                CHECK(mp_at(rooms, 0, &r0));
            struct slice want = mp_str(r0);
            CHECK_MEM(room.p, room.len, want.p, want.len);
        } else if (kind == CH_REQUEST) {
            capture_request(g, in.len, dec);
        } else {
            capture_response(g, in.len, dec);
        }
        /* every proper prefix ends at the guard page and is rejected */
        for (size_t cut = 0; cut < in.len; cut++) {
            size_t ml;
            uint8_t *t = test_guard_copy(in.data, cut, &ml);
            CHECK(decode_as(kind, t, cut) < 0);
            test_guard_free(t, cut, ml);
        }
        test_guard_free(g, in.len, map_len);
        buf_deinit(&in);
        done++;
    }
    CHECK(done == count);
    buf_deinit(&doc);
    free(file);
}

/* ---- PROTOCOL.md examples ---- */

static void check_hex(const struct buf *b, const char *hex)
{
    uint8_t want[4096];
    size_t n = test_unhex(hex, want);
    CHECK_MEM(b->data, b->len, want, n);
}

static void init_broadcast(struct adapter_broadcast *m, const char *uid, struct slice data)
{
    memset(m, 0, sizeof *m);
    m->uid = S(uid);
    m->packet.type = 2;
    m->packet.data = data;
    m->packet.nsp = S("/");
}

static void test_protocol_broadcast_examples(void)
{
    struct adapter_broadcast m;
    struct buf b, data;
    buf_init(&b, 0);
    buf_init(&data, 0);

    /* io.emit("hello","world") */
    uint8_t in[512];
    size_t n = test_unhex(
        "93 a6 6c50394e4a4a 83 a4 74797065 02 a4 64617461 92 a5 68656c6c6f a5 776f726c64 "
        "a3 6e7370 a1 2f 83 a5 726f6f6d73 90 a6 657863657074 90 a5 666c616773 80",
        in);
    CHECK(adapter_broadcast_decode(in, n, &m) == (int)n);
    CHECK(slice_eq(m.uid, "lP9NJJ") && slice_eq(m.packet.nsp, "/") && m.packet.type == 2);
    CHECK(m.packet.data.len == 13 && m.packet.data.p == in + 20);
    CHECK(m.opts.rooms.count == 0 && m.opts.except.count == 0 && m.opts.has_flags);
    adapter_broadcast_encode(&b, &m);
    CHECK_MEM(b.data, b.len, in, n);

    /* io.to("room1").emit("r",1,{a:2}) */
    buf_reset(&b);
    mp_write_array(&data, 3);
    mp_write_cstr(&data, "r");
    mp_write_uint(&data, 1);
    mp_write_map(&data, 1);
    mp_write_cstr(&data, "a");
    mp_write_uint(&data, 2);
    init_broadcast(&m, "lP9NJJ", (struct slice){data.data, data.len});
    m.opts.rooms.count = 1;
    m.opts.rooms.names[0] = S("room1");
    adapter_broadcast_encode(&b, &m);
    check_hex(&b,
              "93a66c50394e4a4a83a47479706502a46461746193a1720181a16102a36e7370a12f83a5726f6f6d73"
              "91a5726f6f6d31a665786365707490a5666c61677380");
    buf_reset(&b);
    adapter_broadcast_channel(&b, S("socket.io"), S("/"), &m.opts.rooms);
    CHECK_STR(b.data, b.len, "socket.io#/#room1#");

    /* io.volatile.compress(false).emit("vol",1.5,-3,300,70000) */
    buf_reset(&b);
    buf_reset(&data);
    mp_write_array(&data, 5);
    mp_write_cstr(&data, "vol");
    mp_write_number(&data, 1.5);
    mp_write_number(&data, -3);
    mp_write_number(&data, 300);
    mp_write_number(&data, 70000);
    init_broadcast(&m, "lP9NJJ", (struct slice){data.data, data.len});
    m.opts.flags.is_volatile = true;
    m.opts.flags.has_compress = true;
    m.opts.flags.compress = false;
    adapter_broadcast_encode(&b, &m);
    check_hex(
        &b, "93a66c50394e4a4a83a47479706502a46461746195a3766f6ccb3ff8000000000000fdcd012cce00011170"
            "a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677382a8766f6c6174696c65c3a8636f"
            "6d7072657373c2");
    CHECK(adapter_broadcast_decode(b.data, b.len, &m) == (int)b.len);
    CHECK(m.opts.flags.is_volatile && m.opts.flags.has_compress && !m.opts.flags.compress);

    /* emitter.to(["a","b"]).except("c").volatile.compress(true).emit("e3",Buffer[9,9]) */
    buf_reset(&b);
    buf_reset(&data);
    mp_write_array(&data, 2);
    mp_write_cstr(&data, "e3");
    mp_write_bin(&data, "\x09\x09", 2);
    init_broadcast(&m, "ignored", (struct slice){data.data, data.len});
    m.opts.rooms.count = 2;
    m.opts.rooms.names[0] = S("a");
    m.opts.rooms.names[1] = S("b");
    m.opts.except.count = 1;
    m.opts.except.names[0] = S("c");
    m.opts.flags.is_volatile = m.opts.flags.has_compress = m.opts.flags.compress = true;
    adapter_broadcast_encode_emitter(&b, &m);
    check_hex(
        &b, "93a7656d697474657283a47479706502a46461746192a26533c4020909a36e7370a12f83a5726f6f6d73"
            "92a161a162a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c3a665786365707491a163");
    CHECK(adapter_broadcast_decode(b.data, b.len, &m) == (int)b.len);
    CHECK(slice_eq(m.uid, "emitter") && m.opts.rooms.count == 2 && m.opts.except.count == 1 &&
          slice_eq(m.opts.except.names[0], "c"));
    buf_reset(&b);
    adapter_broadcast_channel(&b, S("socket.io"), S("/"), &m.opts.rooms);
    CHECK_STR(b.data, b.len, "socket.io#/#");

    buf_deinit(&b);
    buf_deinit(&data);
}

/* PROTOCOL.md 3.6 captured exchange, and 3.9 emitter requests. */
static void test_protocol_request_examples(void)
{
    struct buf b, scratch, data;
    struct adapter_request q;
    struct adapter_response s;
    buf_init(&b, 0);
    buf_init(&scratch, 0);
    buf_init(&data, 0);

    mp_write_array(&data, 2);
    mp_write_cstr(&data, "ack-me");
    mp_write_cstr(&data, "please");
    memset(&q, 0, sizeof q);
    q.type = ADAPTER_BROADCAST;
    q.has_uid = q.has_request_id = q.has_packet = q.has_opts = true;
    q.uid = S("lP9NJJ");
    q.request_id = S("iusCMh");
    q.packet.type = 2;
    q.packet.data = (struct slice){data.data, data.len};
    q.packet.nsp = S("/");
    q.opts.has_flags = q.opts.flags.has_timeout = true;
    q.opts.flags.timeout = 1000;
    CHECK(adapter_request_encode(&b, &q) == SIOC_OK);
    check_hex(&b,
              "85a3756964a66c50394e4a4aa9726571756573744964a6697573434d68a47479706507a67061636b6574"
              "83a47479706502a46461746192a661636b2d6d65a6706c65617365a36e7370a12fa46f70747383a5726f"
              "6f6d7390a665786365707490a5666c61677381a774696d656f7574cd03e8");
    CHECK(adapter_request_decode(b.data, b.len, &scratch, &q) == (int)b.len);
    CHECK(q.type == 7 && q.opts.flags.has_timeout && q.opts.flags.timeout == 1000);

    memset(&s, 0, sizeof s);
    s.has_type = s.has_request_id = s.has_client_count = true;
    s.type = ADAPTER_BROADCAST_CLIENT_COUNT;
    s.request_id = S("iusCMh");
    s.client_count = 1;
    buf_reset(&b);
    CHECK(adapter_response_encode(&b, &s) == SIOC_OK);
    CHECK_STR(b.data, b.len, "{\"type\":8,\"requestId\":\"iusCMh\",\"clientCount\":1}");
    s.client_count = 0; /* PROTOCOL.md 3.5: sent even when N=0 */
    buf_reset(&b);
    CHECK(adapter_response_encode(&b, &s) == SIOC_OK);
    CHECK_STR(b.data, b.len, "{\"type\":8,\"requestId\":\"iusCMh\",\"clientCount\":0}");

    memset(&s, 0, sizeof s);
    s.has_type = s.has_request_id = s.has_packet = true;
    s.type = ADAPTER_BROADCAST_ACK;
    s.request_id = S("iusCMh");
    buf_reset(&data);
    mp_write_cstr(&data, "client-ack");
    s.packet = (struct slice){data.data, data.len};
    buf_reset(&b);
    CHECK(adapter_response_encode(&b, &s) == SIOC_OK);
    check_hex(
        &b, "83a47479706509a9726571756573744964a6697573434d68a67061636b6574aa636c69656e742d61636b");
    /* the client acked with no argument: notepack drops the undefined packet */
    s.has_packet = false;
    buf_reset(&b);
    CHECK(adapter_response_encode(&b, &s) == SIOC_OK);
    check_hex(&b, "82a47479706509a9726571756573744964a6697573434d68");
    CHECK(adapter_response_decode(b.data, b.len, &scratch, &s) == (int)b.len);
    CHECK(s.has_type && s.type == 9 && !s.has_packet && slice_eq(s.request_id, "iusCMh"));

    /* SSE ack response, always on the shared channel */
    memset(&s, 0, sizeof s);
    s.has_type = s.has_request_id = s.has_data = true;
    s.type = ADAPTER_SERVER_SIDE_EMIT;
    s.request_id = S("PZLPgQ");
    s.data = (struct slice){(const uint8_t *)"\x93\x01\xc3\xc0", 4};
    buf_reset(&b);
    CHECK(adapter_response_encode(&b, &s) == SIOC_OK);
    CHECK_STR(b.data, b.len, "{\"type\":6,\"requestId\":\"PZLPgQ\",\"data\":[1,true,null]}");

    static const char *const emitter[] = {
        "{\"type\":2,\"opts\":{\"rooms\":[\"room1\"],\"except\":[]},\"rooms\":[\"room5\"]}",
        "{\"type\":4,\"opts\":{\"rooms\":[\"room1\"],\"except\":[]},\"close\":true}",
        "{\"uid\":\"emitter\",\"type\":6,\"data\":[\"hello\",{\"x\":1}]}",
        /* legacy sid-targeted forms */
        "{\"uid\":\"abcdef\",\"requestId\":\"xyzXYZ\",\"type\":2,\"sid\":\"s1\",\"room\":\"r\"}",
        "{\"uid\":\"abcdef\",\"requestId\":\"xyzXYZ\",\"type\":4,\"sid\":\"s1\",\"close\":false}",
        "{\"uid\":\"abcdef\",\"requestId\":\"xyzXYZ\",\"type\":0,\"rooms\":[\"a\",\"\xc3\xa9\\n\"]}",
    };
    for (size_t i = 0; i < sizeof emitter / sizeof emitter[0]; i++) {
        const uint8_t *in = (const uint8_t *)emitter[i];
        size_t n = strlen(emitter[i]);
        CHECK(adapter_request_decode(in, n, &scratch, &q) == (int)n);
        buf_reset(&b);
        CHECK(adapter_request_encode(&b, &q) == SIOC_OK);
        CHECK_MEM(b.data, b.len, in, n);
    }
    CHECK(adapter_request_decode((const uint8_t *)emitter[0], strlen(emitter[0]), &scratch, &q) >
          0);
    CHECK(!q.has_uid && !q.has_request_id && q.type == 2 && q.has_opts && q.rooms.count == 1 &&
          slice_eq(q.rooms.names[0], "room5") && slice_eq(q.opts.rooms.names[0], "room1"));
    CHECK(adapter_request_decode((const uint8_t *)emitter[1], strlen(emitter[1]), &scratch, &q) >
          0);
    CHECK(q.type == 4 && q.has_close && q.close && !q.has_uid);

    buf_deinit(&b);
    buf_deinit(&scratch);
    buf_deinit(&data);
}

/* Receivers accept any key order, missing fields and unknown keys (PROTOCOL.md 3.3, 3.13 #3). */
static void test_broadcast_tolerance(void)
{
    static const struct {
        const char *hex;
        int type;
        const char *nsp;
        size_t rooms, except;
        bool has_flags, is_volatile;
    } cases[] = {
        /* old emitter: [uid, {type,data,nsp}, {rooms, flags:{volatile, json, broadcast}}] */
        {"93 a7656d6974746572 83 a474797065 02 a464617461 91 a161 a36e7370 a12f "
         "82 a5726f6f6d73 91 a172 a5666c616773 83 a8766f6c6174696c65 c3 a46a736f6e c3 a962726f6164636173"
         "74 c3",
         2, "/", 1, 0, true, true},
        /* packet without nsp, keys reversed, opts empty map, extra 4th element, type 5 */
        {"94 a3756964 82 a464617461 90 a474797065 05 80 c0", 5, "/", 0, 0, false, false},
        /* unknown keys (id, non-string key) are skipped; nil nsp means "/" */
        {"93 a3756964 85 a26964 07 01 92 01 02 a474797065 03 a464617461 90 a36e7370 c0 "
         "82 a6657863657074 92 a178 a179 a5666c616773 c0",
         3, "/", 0, 2, false, false},
        /* repeated key: last wins (JS object semantics) */
        {"93 a3756964 84 a474797065 02 a464617461 90 a36e7370 a12f a36e7370 a52f63686174 "
         "81 a5726f6f6d73 91 a178",
         2, "/chat", 1, 0, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t in[512];
        size_t n = test_unhex(cases[i].hex, in);
        size_t ml;
        uint8_t *g = test_guard_copy(in, n, &ml);
        struct adapter_broadcast m;
        CHECK(adapter_broadcast_decode(g, n, &m) == (int)n);
        CHECK(m.packet.type == cases[i].type);
        CHECK(slice_eq(m.packet.nsp, cases[i].nsp));
        CHECK(m.opts.rooms.count == cases[i].rooms && m.opts.except.count == cases[i].except);
        CHECK(m.opts.has_flags == cases[i].has_flags);
        CHECK(m.opts.flags.is_volatile == cases[i].is_volatile);
        test_guard_free(g, n, ml);
    }
}

static void test_broadcast_malformed(void)
{
    static const struct {
        const char *hex;
        int err;
    } cases[] = {
        {"", SIOC_EPROTO},
        {"c1", SIOC_EPROTO},
        {"92 a178 80", SIOC_EPROTO},                                            /* two elements */
        {"83 a178 80 80", SIOC_EPROTO},                                         /* not an array */
        {"93 01 83 a474797065 02 a464617461 90 a36e7370 a12f 80", SIOC_EPROTO}, /* uid not str */
        {"93 a178 82 a464617461 90 a36e7370 a12f 80", SIOC_EPROTO},             /* no packet type */
        {"93 a178 81 a474797065 02 80", SIOC_EPROTO},                           /* no data */
        {"93 a178 82 a474797065 04 a464617461 90 80", SIOC_EPROTO},             /* type 4 */
        {"93 a178 82 a474797065 a132 a464617461 90 80", SIOC_EPROTO},           /* type as string */
        {"93 a178 82 a474797065 cb4000cccccccccccd a464617461 90 80", SIOC_EPROTO}, /* 2.1 */
        {"93 a178 82 a474797065 02 a464617461 a178 80", SIOC_EPROTO}, /* data not array */
        {"93 a178 82 a474797065 02 a464617461 90 c0", SIOC_EPROTO},   /* opts nil */
        {"93 a178 82 a474797065 02 a464617461 90 81 a5726f6f6d73 91 01",
         SIOC_EPROTO},                                                                /* room int */
        {"93 a178 82 a474797065 02 a464617461 90 81 a5726f6f6d73 a178", SIOC_EPROTO}, /* str */
        {"93 a178 82 a474797065 02 a464617461 90 81 a5666c616773 81 a8766f6c6174696c65 01",
         SIOC_EPROTO}, /* volatile: 1 */
        {"93 a178 82 a474797065 02 a464617461 90 81 a5666c616773 81 a774696d656f7574 a131",
         SIOC_EPROTO},                                                    /* timeout "1" */
        {"93 a178 82 a474797065 02 a464617461 90 80 00", SIOC_EPROTO},    /* trailing byte */
        {"93 a178 82 a474797065 02 a464617461 dd ffffffff", SIOC_EPROTO}, /* lying count */
        {"dd ffffffff a178", SIOC_EPROTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t in[512];
        size_t n = test_unhex(cases[i].hex, in);
        size_t ml;
        uint8_t *g = test_guard_copy(in, n, &ml);
        struct adapter_broadcast m;
        int rc = adapter_broadcast_decode(g, n, &m);
        if (rc != cases[i].err)
            fprintf(stderr, "case %zu: got %d\n", i, rc);
        CHECK(rc == cases[i].err);
        test_guard_free(g, n, ml);
    }
}

/* ADAPTER_MAX_ROOMS names fit; one more is SIOC_ETOOBIG. */
static void test_room_cap(void)
{
    for (uint32_t n = ADAPTER_MAX_ROOMS; n <= ADAPTER_MAX_ROOMS + 1; n++) {
        struct buf b;
        buf_init(&b, 0);
        mp_write_array(&b, 3);
        mp_write_cstr(&b, "u");
        mp_write_map(&b, 2);
        mp_write_cstr(&b, "type");
        mp_write_uint(&b, 2);
        mp_write_cstr(&b, "data");
        mp_write_array(&b, 0);
        mp_write_map(&b, 1);
        mp_write_cstr(&b, "except");
        mp_write_array(&b, n);
        for (uint32_t i = 0; i < n; i++)
            mp_write_cstr(&b, "r");
        struct adapter_broadcast m;
        int rc = adapter_broadcast_decode(b.data, b.len, &m);
        CHECK(n == ADAPTER_MAX_ROOMS ? rc == (int)b.len && m.opts.except.count == n
                                     : rc == SIOC_ETOOBIG);
        buf_deinit(&b);
    }
}

static void test_request_malformed(void)
{
    static const struct {
        const char *text;
        int err;
    } cases[] = {
        {"{", SIOC_EPROTO},
        {"{}", SIOC_EPROTO}, /* no type */
        {"{\"type\":\"1\",\"requestId\":\"x\"}", SIOC_EPROTO},
        {"{\"type\":1.5,\"requestId\":\"x\"}", SIOC_EPROTO},
        {"{\"type\":1}", SIOC_EPROTO},                     /* ALL_ROOMS without requestId */
        {"{\"type\":7,\"requestId\":\"x\"}", SIOC_EPROTO}, /* BROADCAST without packet */
        {"{\"type\":12,\"requestId\":\"x\"}", SIOC_ENOTSUP},
        {"{\"type\":-1}", SIOC_ENOTSUP},
        {"{\"type\":2,\"uid\":5}", SIOC_EPROTO},
        {"{\"type\":2,\"rooms\":[1]}", SIOC_EPROTO},
        {"{\"type\":2,\"rooms\":\"r\"}", SIOC_EPROTO},
        {"{\"type\":2,\"opts\":[]}", SIOC_EPROTO},
        {"{\"type\":2,\"opts\":{\"except\":[null]}}", SIOC_EPROTO},
        {"{\"type\":4,\"close\":1}", SIOC_EPROTO},
        {"{\"type\":6,\"data\":\"x\"}", SIOC_EPROTO},
        {"{\"type\":6} x", SIOC_EPROTO},
        {"{\"type\":6,}", SIOC_EPROTO},
        {"\x81\xa4type", SIOC_EPROTO}, /* truncated msgpack */
        {"\x92\x01\x02", SIOC_EPROTO}, /* msgpack array */
    };
    struct buf scratch;
    buf_init(&scratch, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].text), ml;
        uint8_t *g = test_guard_copy(cases[i].text, n, &ml);
        struct adapter_request q;
        int rc = adapter_request_decode(g, n, &scratch, &q);
        if (rc != cases[i].err)
            fprintf(stderr, "case %zu: got %d\n", i, rc);
        CHECK(rc == cases[i].err);
        test_guard_free(g, n, ml);
    }
    /* the scratch limit applies to the JSON path */
    struct buf small;
    buf_init(&small, 8);
    struct adapter_request q;
    const char *big = "{\"uid\":\"abcdefghijklmnop\",\"type\":1,\"requestId\":\"x\"}";
    CHECK(adapter_request_decode((const uint8_t *)big, strlen(big), &small, &q) == SIOC_ETOOBIG);
    buf_deinit(&small);
    buf_deinit(&scratch);
}

static void test_response_malformed(void)
{
    static const struct {
        const char *text;
        int err;
    } cases[] = {
        {"{\"sockets\":[]}", SIOC_EPROTO}, /* no requestId */
        {"{\"requestId\":\"x\",\"sockets\":[\"a\",{}]}", SIOC_EPROTO},
        {"{\"requestId\":\"x\",\"sockets\":[{},\"a\"]}", SIOC_EPROTO},
        {"{\"requestId\":\"x\",\"sockets\":{}}", SIOC_EPROTO},
        {"{\"requestId\":\"x\",\"rooms\":[\"a\",2]}", SIOC_EPROTO},
        {"{\"type\":8,\"requestId\":\"x\"}", SIOC_EPROTO},
        {"{\"type\":8,\"requestId\":\"x\",\"clientCount\":-1}", SIOC_EPROTO},
        {"{\"type\":8,\"requestId\":\"x\",\"clientCount\":\"3\"}", SIOC_EPROTO},
        {"{\"type\":3,\"requestId\":\"x\"}", SIOC_ENOTSUP},
        {"{\"requestId\":7}", SIOC_EPROTO},
        {"[1]", SIOC_EPROTO},
    };
    struct buf scratch;
    buf_init(&scratch, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].text), ml;
        uint8_t *g = test_guard_copy(cases[i].text, n, &ml);
        struct adapter_response s;
        int rc = adapter_response_decode(g, n, &scratch, &s);
        if (rc != cases[i].err)
            fprintf(stderr, "case %zu: got %d\n", i, rc);
        CHECK(rc == cases[i].err);
        test_guard_free(g, n, ml);
    }
    /* legacy join answer {requestId} and the SOCKETS id list */
    struct adapter_response s;
    const char *ok = "{\"requestId\":\"x\",\"sockets\":[\"a\",\"b\"]}";
    CHECK(adapter_response_decode((const uint8_t *)ok, strlen(ok), &scratch, &s) ==
          (int)strlen(ok));
    CHECK(s.has_sockets && !s.sockets_fetch && s.sockets_count == 2);
    ok = "{\"requestId\":\"x\"}";
    CHECK(adapter_response_decode((const uint8_t *)ok, strlen(ok), &scratch, &s) ==
          (int)strlen(ok));
    CHECK(!s.has_sockets && !s.has_type);
    buf_deinit(&scratch);
}

static void test_channels(void)
{
    struct slice room;
    CHECK(adapter_channel_room(S("socket.io#/#room1#"), S("socket.io"), S("/"), &room) == SIOC_OK);
    CHECK(slice_eq(room, "room1"));
    CHECK(adapter_channel_room(S("socket.io#/#"), S("socket.io"), S("/"), &room) == SIOC_OK);
    CHECK(room.len == 0);
    CHECK(adapter_channel_room(S("socket.io#/chat#a#b#"), S("socket.io"), S("/chat"), &room) == 0);
    CHECK(slice_eq(room, "a#b"));
    CHECK(adapter_channel_room(S("socket.io#/chat#"), S("socket.io"), S("/"), &room) ==
          SIOC_EPROTO);
    CHECK(adapter_channel_room(S("socket.io#/"), S("socket.io"), S("/"), &room) == SIOC_EPROTO);
    CHECK(adapter_channel_room(S("other#/#"), S("socket.io"), S("/"), &room) == SIOC_EPROTO);

    struct buf b;
    buf_init(&b, 0);
    struct adapter_rooms *rooms = calloc(1, sizeof *rooms);
    adapter_broadcast_channel(&b, S("socket.io"), S("/chat"), rooms);
    CHECK_STR(b.data, b.len, "socket.io#/chat#");
    rooms->count = 2;
    rooms->names[0] = S("x");
    rooms->names[1] = S("y");
    buf_reset(&b);
    adapter_broadcast_channel(&b, S("socket.io"), S("/"), rooms);
    CHECK_STR(b.data, b.len, "socket.io#/#");
    buf_reset(&b);
    adapter_request_channel(&b, S("socket.io"), S("/"));
    CHECK_STR(b.data, b.len, "socket.io-request#/#");
    buf_reset(&b);
    adapter_response_channel(&b, S("socket.io"), S("/"), ADAPTER_REMOTE_FETCH, S("_T1csn"), false);
    CHECK_STR(b.data, b.len, "socket.io-response#/#");
    buf_reset(&b);
    adapter_response_channel(&b, S("socket.io"), S("/"), ADAPTER_REMOTE_FETCH, S("_T1csn"), true);
    CHECK_STR(b.data, b.len, "socket.io-response#/#_T1csn#");
    buf_reset(&b);
    adapter_response_channel(&b, S("socket.io"), S("/"), ADAPTER_SERVER_SIDE_EMIT, S("_T1csn"),
                             true);
    CHECK_STR(b.data, b.len, "socket.io-response#/#");
    buf_reset(&b);
    adapter_response_channel(&b, S("socket.io"), S("/"), ADAPTER_REMOTE_JOIN, S(""), true);
    CHECK_STR(b.data, b.len, "socket.io-response#/#");
    free(rooms);
    buf_deinit(&b);
}

static void test_uid2(void)
{
    uint8_t rnd[6] = {0, 25, 26, 63, 64 + 62, 255};
    char out[7];
    adapter_uid2(out, rnd, 6);
    CHECK(strcmp(out, "AZa_-_") == 0);
    uint8_t all[256];
    char big[257];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    adapter_uid2(big, all, 256);
    CHECK(strlen(big) == 256 && big[52] == '0' && big[61] == '9' && big[64] == 'A');
}

/* Encoders roll back on error and reject what Node never sends. */
static void test_encode_errors(void)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_cstr(&b, "keep");
    struct adapter_request q;
    memset(&q, 0, sizeof q);
    q.type = 8;
    CHECK(adapter_request_encode(&b, &q) == SIOC_EINVAL);
    q.type = ADAPTER_SERVER_SIDE_EMIT;
    q.has_data = true;
    q.data = S("\x92\x01"); /* truncated */
    CHECK(adapter_request_encode(&b, &q) < 0);
    CHECK_STR(b.data, b.len, "keep");
    struct adapter_response s;
    memset(&s, 0, sizeof s);
    s.has_type = true;
    s.type = 2;
    CHECK(adapter_response_encode(&b, &s) == SIOC_EINVAL);
    CHECK_STR(b.data, b.len, "keep");
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_golden_captures);
    RUN(test_protocol_broadcast_examples);
    RUN(test_protocol_request_examples);
    RUN(test_broadcast_tolerance);
    RUN(test_broadcast_malformed);
    RUN(test_room_cap);
    RUN(test_request_malformed);
    RUN(test_response_malformed);
    RUN(test_channels);
    RUN(test_uid2);
    RUN(test_encode_errors);
    return test_summary("test_adapter");
}
