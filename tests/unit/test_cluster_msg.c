/* test_cluster_msg.c: the sharded adapter's ClusterAdapter codec against the golden captures of
 * real Node peers (tests/data/sharded-golden/captures.json, capture.mjs: every capture decodes
 * to its "decoded" fields, re-encodes byte for byte, JSON or MessagePack as Node chose, and was
 * published on the channel our publish rule names), truncation at every offset from a guard
 * page, malformed input, encoding from fields, and the subscription-mode rules. */
#include "common/cluster_msg.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"
#include "tests/unit/mp_nav.h"
#include "tests/unit/test.h"

#define GOLDEN "tests/data/sharded-golden/captures.json"

static struct slice S(const char *s) {
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

static bool
slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ---- the golden captures ---- */

/* The decoded fields against the capture's "decoded" object. */
static void check_fields(const struct cluster_msg *m, struct slice dec)
{
    struct slice v, data = {NULL, 0};
    CHECK(mp_find(dec, "type", &v) && mp_int(v) == m->type);
    CHECK(mp_find(dec, "uid", &v) && slice_eq(mp_str(v), m->uid));
    CHECK(mp_find(dec, "nsp", &v) && slice_eq(mp_str(v), m->nsp));
    if (!mp_find(dec, "data", &data))
        return;
    CHECK(mp_find(data, "requestId", &v) == m->has_request_id);
    if (m->has_request_id)
        CHECK(slice_eq(mp_str(v), m->request_id));
    struct slice opts, rooms;
    CHECK(mp_find(data, "opts", &opts) == m->has_opts);
    if (m->has_opts) {
        CHECK(mp_find(opts, "rooms", &rooms) && mp_count(rooms) == m->opts.rooms.count);
        for (uint32_t i = 0; i < m->opts.rooms.count; i++)
            CHECK(mp_at(rooms, i, &v) && slice_eq(mp_str(v), m->opts.rooms.names[i]));
        CHECK(mp_find(opts, "except", &rooms) && mp_count(rooms) == m->opts.except.count);
    }
    CHECK(mp_find(data, "rooms", &rooms) == m->has_rooms);
    if (m->has_rooms)
        CHECK(mp_count(rooms) == m->rooms.count);
    if (mp_find(data, "clientCount", &v))
        CHECK(m->has_client_count && mp_int(v) == (int64_t)m->client_count);
    if (mp_find(data, "sockets", &v))
        CHECK(m->has_sockets && mp_count(v) == mp_count(m->sockets));
    if (mp_find(data, "close", &v))
        CHECK(m->close == (v.p[0] == 0xc3));
    CHECK(mp_find(data, "packet", &v) == m->has_packet);
}

/* Re-encoding the decoded fields gives Node's bytes, in Node's encoding. */
static void check_reencode(const struct cluster_msg *m, const uint8_t *raw, size_t n)
{
    struct buf out, scratch;
    buf_init(&out, 0);
    buf_init(&scratch, 0);
    CHECK(cluster_msg_encode(&out, &scratch, m) == SIOC_OK);
    CHECK_MEM(out.data, out.len, raw, n);
    buf_deinit(&out);
    buf_deinit(&scratch);
}

/* The channel: a request or broadcast where our publish rule puts it, a response on
 * `socket.io#<nsp>#<uid>#` of some requester. */
static void check_channel(const struct cluster_msg *m, struct slice label, struct slice channel)
{
    struct buf ch;
    buf_init(&ch, 0);
    bool response = m->type == CLUSTER_MSG_FETCH_SOCKETS_RESPONSE ||
                    m->type == CLUSTER_MSG_SERVER_SIDE_EMIT_RESPONSE ||
                    m->type == CLUSTER_MSG_BROADCAST_CLIENT_COUNT ||
                    m->type == CLUSTER_MSG_BROADCAST_ACK;
    if (response) {
        cluster_msg_channel(&ch, S("socket.io"), m->nsp);
        CHECK(channel.len == ch.len + 17 && memcmp(channel.p, ch.data, ch.len) == 0 &&
              channel.p[channel.len - 1] == '#');
    } else {
        bool private = label.len > 8 && memcmp(label.p, "private-", 8) == 0;
        cluster_msg_publish_channel(&ch, S("socket.io"),
                                    private ? CLUSTER_SUB_DYNAMIC_PRIVATE : CLUSTER_SUB_DYNAMIC, m);
        CHECK_MEM(ch.data, ch.len, channel.p, channel.len);
        /* static mode: everything on the namespace channel */
        buf_reset(&ch);
        cluster_msg_publish_channel(&ch, S("socket.io"), CLUSTER_SUB_STATIC, m);
        struct buf main_ch;
        buf_init(&main_ch, 0);
        cluster_msg_channel(&main_ch, S("socket.io"), m->nsp);
        CHECK_MEM(ch.data, ch.len, main_ch.data, main_ch.len);
        buf_deinit(&main_ch);
    }
    buf_deinit(&ch);
}

static void test_golden_captures(void)
{
    size_t flen;
    uint8_t *file = test_read_file(GOLDEN, &flen);
    CHECK(file != NULL);
    if (file == NULL)
        return;
    struct buf doc, scratch;
    buf_init(&doc, 0);
    buf_init(&scratch, ADAPTER_MAX_MESSAGE);
    CHECK(json_to_msgpack(file, flen, &doc) == SIOC_OK);
    struct slice caps;
    CHECK(mp_find((struct slice){doc.data, doc.len}, "captures", &caps));
    uint32_t count = mp_count(caps), types = 0;
    CHECK(count >= 20);
    for (uint32_t i = 0; i < count; i++) {
        struct slice c, hex, dec, channel, label, bytes, enc;
        CHECK(mp_at(caps, i, &c) && mp_find(c, "hex", &hex) && mp_find(c, "decoded", &dec) &&
              mp_find(c, "channel", &channel) && mp_find(c, "label", &label) &&
              mp_find(c, "bytes", &bytes) && mp_find(c, "encoding", &enc));
        struct slice hx = mp_str(hex);
        char *tmp = malloc(hx.len + 1);
        uint8_t *raw = malloc(hx.len / 2 + 1);
        memcpy(tmp, hx.p, hx.len);
        tmp[hx.len] = '\0';
        size_t n = test_unhex(tmp, raw);
        CHECK((int64_t)n == mp_int(bytes));
        CHECK((raw[0] == '{') == slice_eq(mp_str(enc), S("json")));
        size_t map_len;
        uint8_t *g = test_guard_copy(raw, n, &map_len);
        struct cluster_msg m;
        CHECK(cluster_msg_decode(g, n, &scratch, &m) == (int)n);
        check_fields(&m, dec);
        check_reencode(&m, raw, n);
        check_channel(&m, mp_str(label), mp_str(channel));
        types |= 1u << m.type;
        for (size_t cut = 0; cut < n; cut++) {
            size_t ml;
            uint8_t *t = test_guard_copy(raw, cut, &ml);
            CHECK(cluster_msg_decode(t, cut, &scratch, &m) < 0);
            test_guard_free(t, cut, ml);
        }
        test_guard_free(g, n, map_len);
        free(tmp);
        free(raw);
    }
    /* every type a Node peer sends over the sharded adapter is in the captures */
    for (int t = CLUSTER_MSG_BROADCAST; t <= CLUSTER_MSG_BROADCAST_ACK; t++)
        CHECK(types & (1u << t));
    buf_deinit(&scratch);
    buf_deinit(&doc);
    free(file);
}

/* ---- encoding from fields ---- */

/* An empty message from `uid` in `nsp`. */
static void msg_init(struct cluster_msg *m, const char *uid, const char *nsp)
{
    memset(m, 0, sizeof *m);
    m->uid = S(uid);
    m->nsp = S(nsp);
}

/* m encodes (without error) to exactly `want`. */
#define CHECK_ENCODES(m, want) check_encodes(__FILE__, __LINE__, (m), (want))
static void check_encodes(const char *file, int line, const struct cluster_msg *m, const char *want)
{
    struct buf out, scratch;
    buf_init(&out, 0);
    buf_init(&scratch, 0);
    if (cluster_msg_encode(&out, &scratch, m) != SIOC_OK)
        test_fail(file, line, "cluster_msg_encode failed");
    test_check_mem(file, line, out.data, out.len, want, strlen(want));
    buf_deinit(&out);
    buf_deinit(&scratch);
}

static void test_encode_broadcast(void)
{
    struct cluster_msg m;
    msg_init(&m, "emitter", "/chat");
    struct buf out, scratch;
    buf_init(&out, 0);
    buf_init(&scratch, 0);
    m.type = CLUSTER_MSG_BROADCAST;
    m.event.type = 2;
    m.event.data = S("\x92\xa2hi\x01"); /* ["hi", 1] */
    m.has_opts = true;
    m.opts.rooms.count = 1;
    m.opts.rooms.names[0] = S("r1");
    m.opts.flags.is_volatile = true;
    CHECK_ENCODES(
        &m, "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"hi\",1]},\"opts\":{\"rooms\":"
            "[\"r1\"],\"except\":[],\"flags\":{\"volatile\":true}}},\"uid\":\"emitter\","
            "\"nsp\":\"/chat\"}");
    struct buf ch;
    buf_init(&ch, 0);
    cluster_msg_publish_channel(&ch, S("socket.io"), CLUSTER_SUB_DYNAMIC, &m);
    CHECK_STR(ch.data, ch.len, "socket.io#/chat#r1#");
    /* binary data: MessagePack, decodable, same fields */
    buf_reset(&out);
    m.event.data = S("\x92\xa1"
                     "b\xc4\x02\x01\x02");
    CHECK(cluster_msg_encode(&out, &scratch, &m) == SIOC_OK);
    CHECK(out.len > 0 && out.data[0] == 0x84);
    struct cluster_msg back;
    struct buf s2;
    buf_init(&s2, 0);
    CHECK(cluster_msg_decode(out.data, out.len, &s2, &back) == (int)out.len);
    CHECK(back.type == 3 && slice_eq(back.uid, S("emitter")) && back.opts.flags.is_volatile &&
          slice_eq(back.event.data, m.event.data) && slice_eq(back.opts.rooms.names[0], S("r1")));
    /* a type that never carries binary stays JSON (Buffer.toJSON) */
    buf_reset(&out);
    m.type = CLUSTER_MSG_SOCKETS_JOIN;
    m.has_rooms = true;
    m.rooms.count = 1;
    m.rooms.names[0] = S("\xc4");
    CHECK(cluster_msg_encode(&out, &scratch, &m) == SIOC_OK);
    CHECK(out.data[0] == '{');
    /* unknown type: nothing written */
    buf_reset(&out);
    m.type = 14;
    CHECK(cluster_msg_encode(&out, &scratch, &m) == SIOC_EINVAL && out.len == 0);
    m.type = CLUSTER_MSG_ADAPTER_CLOSE;
    CHECK_ENCODES(&m, "{\"type\":13,\"uid\":\"emitter\",\"nsp\":\"/chat\"}");
    buf_deinit(&s2);
    buf_deinit(&ch);
    buf_deinit(&out);
    buf_deinit(&scratch);
}

static void test_encode_responses(void)
{
    struct cluster_msg m;
    msg_init(&m, "abc", "/");
    m.has_request_id = true;
    m.request_id = S("r1");
    m.type = CLUSTER_MSG_BROADCAST_CLIENT_COUNT;
    m.client_count = 3;
    CHECK_ENCODES(&m,
                  "{\"type\":11,\"data\":{\"requestId\":\"r1\",\"clientCount\":3},\"uid\":\"abc\","
                  "\"nsp\":\"/\"}");
    m.type = CLUSTER_MSG_BROADCAST_ACK; /* no argument: no packet key */
    CHECK_ENCODES(&m,
                  "{\"type\":12,\"data\":{\"requestId\":\"r1\"},\"uid\":\"abc\",\"nsp\":\"/\"}");
    m.type = CLUSTER_MSG_SERVER_SIDE_EMIT_RESPONSE;
    m.has_packet = true;
    m.packet = S("\xc0");
    CHECK_ENCODES(&m,
                  "{\"type\":10,\"data\":{\"requestId\":\"r1\",\"packet\":null},\"uid\":\"abc\","
                  "\"nsp\":\"/\"}");
    m.type = CLUSTER_MSG_FETCH_SOCKETS_RESPONSE;
    m.sockets = S("\x90");
    CHECK_ENCODES(&m, "{\"type\":8,\"data\":{\"requestId\":\"r1\",\"sockets\":[]},\"uid\":\"abc\","
                      "\"nsp\":\"/\"}");
}

/* ---- malformed input ---- */

static int decode_text(const char *json)
{
    struct buf scratch;
    buf_init(&scratch, 0);
    struct cluster_msg m;
    int rc = cluster_msg_decode((const uint8_t *)json, strlen(json), &scratch, &m);
    buf_deinit(&scratch);
    return rc;
}

static void test_malformed(void)
{
    const char *ok = "{\"type\":2,\"uid\":\"u\",\"nsp\":\"/\"}";
    CHECK(decode_text(ok) == (int)strlen(ok));
    CHECK(decode_text("{\"type\":42,\"uid\":\"u\",\"nsp\":\"/\"}") == SIOC_ENOTSUP);
    CHECK(decode_text("{\"type\":0,\"uid\":\"u\",\"nsp\":\"/\"}") == SIOC_ENOTSUP);
    CHECK(decode_text("{\"uid\":\"u\",\"nsp\":\"/\"}") == SIOC_EPROTO);
    CHECK(decode_text("{\"type\":2,\"nsp\":\"/\"}") == SIOC_EPROTO);
    CHECK(decode_text("{\"type\":2,\"uid\":1,\"nsp\":\"/\"}") == SIOC_EPROTO);
    CHECK(decode_text("{\"type\":\"3\",\"uid\":\"u\",\"nsp\":\"/\"}") == SIOC_EPROTO);
    CHECK(decode_text("[1,2]") == SIOC_EPROTO);
    CHECK(decode_text("{not json") < 0);
    /* a broadcast without opts, or with an ack packet */
    CHECK(decode_text("{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"e\"]}},\"uid\":"
                      "\"u\",\"nsp\":\"/\"}") == SIOC_EPROTO);
    CHECK(decode_text("{\"type\":3,\"data\":{\"packet\":{\"type\":3,\"data\":[\"e\"]},\"opts\":{}},"
                      "\"uid\":\"u\",\"nsp\":\"/\"}") == SIOC_EPROTO);
    /* server-side emit: the packet is an array starting with the event name */
    CHECK(decode_text("{\"type\":9,\"data\":{\"packet\":{}},\"uid\":\"u\",\"nsp\":\"/\"}") ==
          SIOC_EPROTO);
    CHECK(decode_text("{\"type\":9,\"data\":{\"packet\":[1]},\"uid\":\"u\",\"nsp\":\"/\"}") ==
          SIOC_EPROTO);
    /* fetch without requestId; client counts out of range */
    CHECK(decode_text("{\"type\":7,\"data\":{\"opts\":{}},\"uid\":\"u\",\"nsp\":\"/\"}") ==
          SIOC_EPROTO);
    CHECK(
        decode_text("{\"type\":11,\"data\":{\"requestId\":\"r\",\"clientCount\":-1},\"uid\":\"u\","
                    "\"nsp\":\"/\"}") == SIOC_EPROTO);
    CHECK(decode_text("{\"type\":11,\"data\":{\"requestId\":\"r\",\"clientCount\":1.5},\"uid\":"
                      "\"u\",\"nsp\":\"/\"}") == SIOC_EPROTO);
    /* sockets must be maps; rooms strings; close a bool */
    CHECK(decode_text("{\"type\":8,\"data\":{\"requestId\":\"r\",\"sockets\":[1]},\"uid\":\"u\","
                      "\"nsp\":\"/\"}") == SIOC_EPROTO);
    CHECK(decode_text(
              "{\"type\":4,\"data\":{\"opts\":{},\"rooms\":[1]},\"uid\":\"u\",\"nsp\":\"/\"}") ==
          SIOC_EPROTO);
    CHECK(decode_text(
              "{\"type\":6,\"data\":{\"opts\":{},\"close\":1},\"uid\":\"u\",\"nsp\":\"/\"}") ==
          SIOC_EPROTO);
    /* null is an absent key; unknown keys are skipped */
    const char *nulls = "{\"type\":6,\"data\":{\"opts\":{\"rooms\":null,\"except\":[\"x\"]},"
                        "\"close\":null,\"more\":[1,{}]},\"uid\":\"u\",\"nsp\":\"/\",\"x\":1}";
    CHECK(decode_text(nulls) == (int)strlen(nulls));
    /* trailing bytes after MessagePack */
    const uint8_t mp[] = {0x83, 0xa4, 't', 'y',  'p', 'e', 0x02, 0xa3, 'u', 'i',
                          'd',  0xa1, 'u', 0xa3, 'n', 's', 'p',  0xa1, '/', 0x00};
    struct buf scratch;
    buf_init(&scratch, 0);
    struct cluster_msg m;
    CHECK(cluster_msg_decode(mp, sizeof mp - 1, &scratch, &m) == (int)sizeof mp - 1);
    CHECK(cluster_msg_decode(mp, sizeof mp, &scratch, &m) == SIOC_EPROTO);
    buf_deinit(&scratch);
}

/* ---- subscription modes ---- */

static void test_modes(void)
{
    enum cluster_sub_mode mode;
    CHECK(cluster_sub_mode_parse("dynamic", &mode) && mode == CLUSTER_SUB_DYNAMIC);
    CHECK(cluster_sub_mode_parse("static", &mode) && mode == CLUSTER_SUB_STATIC);
    CHECK(cluster_sub_mode_parse("dynamic-private", &mode) && mode == CLUSTER_SUB_DYNAMIC_PRIVATE);
    CHECK(!cluster_sub_mode_parse("Dynamic", &mode) && !cluster_sub_mode_parse(NULL, &mode));
    CHECK(strcmp(cluster_sub_mode_name(CLUSTER_SUB_DYNAMIC_PRIVATE), "dynamic-private") == 0);
    struct slice sid = S("kH36jOnedD82UddQAAAB"), room = S("room1");
    CHECK(cluster_msg_room_subscribed(CLUSTER_SUB_DYNAMIC, room, false));
    CHECK(!cluster_msg_room_subscribed(CLUSTER_SUB_DYNAMIC, sid, true));
    CHECK(cluster_msg_room_subscribed(CLUSTER_SUB_DYNAMIC, sid, false)); /* a public room */
    CHECK(cluster_msg_room_subscribed(CLUSTER_SUB_DYNAMIC, S("/chat#kH36jOnedD82UddQAAAB"), true));
    CHECK(cluster_msg_room_subscribed(CLUSTER_SUB_DYNAMIC_PRIVATE, sid, true));
    CHECK(!cluster_msg_room_subscribed(CLUSTER_SUB_STATIC, room, false));
    struct cluster_msg m;
    memset(&m, 0, sizeof m);
    m.type = CLUSTER_MSG_BROADCAST;
    m.opts.rooms.count = 1;
    m.opts.rooms.names[0] = sid;
    CHECK(!cluster_msg_uses_room_channel(CLUSTER_SUB_DYNAMIC, &m));
    CHECK(cluster_msg_uses_room_channel(CLUSTER_SUB_DYNAMIC_PRIVATE, &m));
    m.opts.rooms.names[0] = room;
    CHECK(cluster_msg_uses_room_channel(CLUSTER_SUB_DYNAMIC, &m));
    CHECK(!cluster_msg_uses_room_channel(CLUSTER_SUB_STATIC, &m));
    m.has_request_id = true; /* with acks: the namespace channel (serverCount counts it) */
    CHECK(!cluster_msg_uses_room_channel(CLUSTER_SUB_DYNAMIC_PRIVATE, &m));
    m.has_request_id = false;
    m.opts.rooms.count = 2;
    CHECK(!cluster_msg_uses_room_channel(CLUSTER_SUB_DYNAMIC, &m));
    m.opts.rooms.count = 1;
    m.type = CLUSTER_MSG_SOCKETS_JOIN;
    CHECK(!cluster_msg_uses_room_channel(CLUSTER_SUB_DYNAMIC, &m));
    struct buf ch;
    buf_init(&ch, 0);
    cluster_msg_sub_channel(&ch, S("pfx"), S("/a"), S("5a7ebd37f34414b1"));
    CHECK_STR(ch.data, ch.len, "pfx#/a#5a7ebd37f34414b1#");
    buf_deinit(&ch);
}

int main(void)
{
    RUN(test_golden_captures);
    RUN(test_encode_broadcast);
    RUN(test_encode_responses);
    RUN(test_malformed);
    RUN(test_modes);
    return test_summary("test_cluster_msg");
}
