/* adapter_rec.c: recoverable broadcasts split around their offset (adapter_rec.h). */
#include "common/adapter_rec.h"

#include <string.h>

#include "common/error.h"
#include "common/mp.h"

/* sdk/python/sioc/emitter.py RECOVERY_SCRIPT, byte for byte (one script cached by Redis). */
static const char rec_script[] =
    "\nlocal id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'a', ARGV[2], 'b', "
    "ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
    "local n = #id\n"
    "local hdr\n"
    "if n < 32 then hdr = string.char(160 + n) else hdr = string.char(217, n) end\n"
    "return redis.call('PUBLISH', ARGV[1], ARGV[2] .. hdr .. id .. ARGV[3])\n";

const char *adapter_rec_script(void)
{
    return rec_script;
}

static bool flags_empty(const struct adapter_flags *f)
{
    return !f->is_volatile && !f->has_compress && !f->broadcast && !f->expect_single_response &&
           !f->has_timeout;
}

int adapter_rec_encode(struct buf *out, const struct adapter_broadcast *msg, size_t *split)
{
    const struct slice data = msg->packet.data;
    size_t consumed = 0;
    struct mp_reader r;
    struct mp_item head;
    mp_reader_init(&r, data.p, data.len);
    if (!flags_empty(&msg->opts.flags) || mp_validate(data.p, data.len, &consumed) != SIOC_OK ||
        consumed != data.len || mp_read(&r, &head) != SIOC_OK || head.kind != MP_ARRAY ||
        head.len == UINT32_MAX)
        return SIOC_EINVAL;
    size_t mark = out->len;
    /* [ "emitter", {type, data: [...items, <offset>], nsp}, {rooms, flags, except} ] */
    mp_write_array(out, 3);
    mp_write_cstr(out, "emitter");
    mp_write_map(out, 3);
    mp_write_cstr(out, "type");
    mp_write_uint(out, (uint64_t)msg->packet.type);
    mp_write_cstr(out, "data");
    mp_write_array(out, head.len + 1);
    buf_append(out, data.p + r.pos, data.len - r.pos);
    size_t at = out->len;
    mp_write_cstr(out, "nsp");
    mp_write_str(out, msg->packet.nsp.p, msg->packet.nsp.len);
    mp_write_map(out, 3);
    mp_write_cstr(out, "rooms");
    adapter_write_rooms(out, &msg->opts.rooms);
    mp_write_cstr(out, "flags");
    mp_write_map(out, 0);
    mp_write_cstr(out, "except");
    adapter_write_rooms(out, &msg->opts.except);
    if (out->err != SIOC_OK) {
        buf_truncate(out, mark);
        return out->err;
    }
    *split = at;
    return SIOC_OK;
}

int adapter_rec_splice(struct buf *out, struct slice pre, struct slice post, struct slice id)
{
    if (id.len > ADAPTER_REC_MAX_ID)
        return SIOC_EINVAL;
    buf_append(out, pre.p, pre.len);
    mp_write_str(out, id.p, id.len);
    buf_append(out, post.p, post.len);
    return out->err;
}
