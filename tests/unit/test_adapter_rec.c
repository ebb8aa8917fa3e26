/* test_adapter_rec.c: recoverable broadcasts (common/adapter_rec.h): the split form is byte for
 * byte the Python SDK's encode_recoverable (bytes captured from sdk/python/sioc/emitter.py), the
 * splice of a stream id gives exactly the emitter broadcast whose data ends with that offset
 * (what every gateway and Node peer decodes), and what may not be stored is refused. */
#include "common/adapter_rec.h"

#include "common/error.h"
#include "common/mp.h"
#include "tests/unit/test.h"

static struct slice S(const char *s) {
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

static struct adapter_broadcast *
broadcast(const char *nsp, struct slice data, const char *room, const char *except)
{
    static struct adapter_broadcast bc;
    memset(&bc, 0, sizeof bc);
    bc.uid = S("emitter");
    bc.packet = (struct adapter_packet){.type = 2, .data = data, .nsp = S(nsp)};
    if (room != NULL)
        bc.opts.rooms.names[bc.opts.rooms.count++] = S(room);
    if (except != NULL)
        bc.opts.except.names[bc.opts.except.count++] = S(except);
    bc.opts.has_flags = true;
    return &bc;
}

/* encode_recoverable("/chat", "tick", [1, "x"], ["room1"], ["sidX"]) */
static const char sdk_pre[] = "\x93\xa7"
                              "emitter\x83\xa4type\x02\xa4"
                              "data\x94\xa4tick\x01\xa1x";
static const char sdk_post[] = "\xa3nsp\xa5/chat\x83\xa5rooms\x91\xa5room1\xa5"
                               "flags\x80\xa6"
                               "except\x91\xa4sidX";

static void test_same_bytes_as_the_sdk(void)
{
    static const uint8_t data[] = "\x93\xa4tick\x01\xa1x";
    struct buf out;
    buf_init(&out, 0);
    buf_append_cstr(&out, "junk"); /* appends: the split is an index into out */
    size_t split = 0;
    CHECK(adapter_rec_encode(
              &out, broadcast("/chat", (struct slice){data, sizeof data - 1}, "room1", "sidX"),
              &split) == SIOC_OK);
    CHECK(split == 4 + sizeof sdk_pre - 1);
    CHECK_MEM(out.data + 4, split - 4, sdk_pre, sizeof sdk_pre - 1);
    CHECK_MEM(out.data + split, out.len - split, sdk_post, sizeof sdk_post - 1);
    buf_deinit(&out);

    /* an event without arguments, no rooms: data ["ev", <offset>] */
    static const uint8_t ev[] = "\x91\xa2"
                                "ev";
    static const char pre2[] = "\x93\xa7"
                               "emitter\x83\xa4type\x02\xa4"
                               "data\x92\xa2"
                               "ev";
    static const char post2[] = "\xa3nsp\xa1/\x83\xa5rooms\x90\xa5"
                                "flags\x80\xa6"
                                "except\x90";
    buf_init(&out, 0);
    CHECK(adapter_rec_encode(&out, broadcast("/", (struct slice){ev, sizeof ev - 1}, NULL, NULL),
                             &split) == SIOC_OK);
    CHECK_MEM(out.data, split, pre2, sizeof pre2 - 1);
    CHECK_MEM(out.data + split, out.len - split, post2, sizeof post2 - 1);
    buf_deinit(&out);
}

/* pre + id + post == the emitter broadcast with the offset appended to data, and it decodes so. */
static void test_splice_is_the_broadcast_with_its_offset(void)
{
    static const uint8_t data[] = "\x93\xa4tick\x01\xa1x";
    const char *id = "1764687316123-7";
    struct buf split_form, spliced, expect, want_data;
    buf_init(&split_form, 0);
    buf_init(&spliced, 0);
    buf_init(&expect, 0);
    buf_init(&want_data, 0);
    size_t split = 0;
    struct adapter_broadcast *bc =
        broadcast("/chat", (struct slice){data, sizeof data - 1}, "room1", "sidX");
    CHECK(adapter_rec_encode(&split_form, bc, &split) == SIOC_OK);
    CHECK(adapter_rec_splice(&spliced, (struct slice){split_form.data, split},
                             (struct slice){split_form.data + split, split_form.len - split},
                             S(id)) == SIOC_OK);
    mp_write_array(&want_data, 4);
    mp_write_cstr(&want_data, "tick");
    mp_write_uint(&want_data, 1);
    mp_write_cstr(&want_data, "x");
    mp_write_cstr(&want_data, id);
    bc->packet.data = (struct slice){want_data.data, want_data.len};
    adapter_broadcast_encode_emitter(&expect, bc);
    CHECK_MEM(spliced.data, spliced.len, expect.data, expect.len);

    struct adapter_broadcast back;
    CHECK(adapter_broadcast_decode(spliced.data, spliced.len, &back) == (int)spliced.len);
    CHECK_MEM(back.packet.data.p, back.packet.data.len, want_data.data, want_data.len);
    CHECK(back.opts.rooms.count == 1 && back.opts.except.count == 1 &&
          !back.opts.flags.is_volatile);

    /* an id of 32+ characters takes str8, as the script's string.char(217, n) */
    buf_reset(&spliced);
    const char *long_id = "18446744073709551615-18446744073709551615";
    CHECK(adapter_rec_splice(&spliced, S("<"), S(">"), S(long_id)) == SIOC_OK);
    CHECK(spliced.len == 1 + 2 + strlen(long_id) + 1);
    CHECK(spliced.data[1] == 0xd9 && spliced.data[2] == strlen(long_id));
    buf_reset(&spliced);
    CHECK(adapter_rec_splice(&spliced, S("<"), S(">"), S("1-1")) == SIOC_OK);
    CHECK_STR(spliced.data, spliced.len,
              "<\xa3"
              "1-1>");
    buf_reset(&spliced);
    char huge[ADAPTER_REC_MAX_ID + 2];
    memset(huge, '1', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    CHECK(adapter_rec_splice(&spliced, S("<"), S(">"), S(huge)) == SIOC_EINVAL);
    buf_deinit(&split_form);
    buf_deinit(&spliced);
    buf_deinit(&expect);
    buf_deinit(&want_data);
}

/* Volatile (or other flags), data that is not exactly one array: refused, out unchanged. */
static void test_refused(void)
{
    static const uint8_t data[] = "\x91\xa2"
                                  "ev";
    struct buf out;
    buf_init(&out, 0);
    buf_append_cstr(&out, "keep");
    size_t split = 99;
    struct adapter_broadcast *bc =
        broadcast("/", (struct slice){data, sizeof data - 1}, NULL, NULL);
    bc->opts.flags.is_volatile = true;
    CHECK(adapter_rec_encode(&out, bc, &split) == SIOC_EINVAL);
    bc->opts.flags.is_volatile = false;
    bc->opts.flags.has_timeout = true;
    CHECK(adapter_rec_encode(&out, bc, &split) == SIOC_EINVAL);
    bc->opts.flags.has_timeout = false;
    bc->packet.data = S("\xa2"
                        "ev"); /* a string, not an array */
    CHECK(adapter_rec_encode(&out, bc, &split) == SIOC_EINVAL);
    bc->packet.data = (struct slice){data, sizeof data}; /* trailing NUL byte */
    CHECK(adapter_rec_encode(&out, bc, &split) == SIOC_EINVAL);
    bc->packet.data = (struct slice){data, sizeof data - 2}; /* truncated */
    CHECK(adapter_rec_encode(&out, bc, &split) == SIOC_EINVAL);
    CHECK_STR(out.data, out.len, "keep");
    CHECK(split == 99);
    buf_deinit(&out);
}

static void test_script(void)
{
    const char *s = adapter_rec_script();
    CHECK(strstr(s, "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'a', ARGV[2], 'b', "
                    "ARGV[3])") != NULL);
    CHECK(strstr(s, "redis.call('PEXPIRE', KEYS[1], ARGV[5])") != NULL);
    CHECK(strstr(s, "redis.call('PUBLISH', ARGV[1], ARGV[2] .. hdr .. id .. ARGV[3])") != NULL);
}

int main(void)
{
    RUN(test_same_bytes_as_the_sdk);
    RUN(test_splice_is_the_broadcast_with_its_offset);
    RUN(test_refused);
    RUN(test_script);
    return test_summary("test_adapter_rec");
}
