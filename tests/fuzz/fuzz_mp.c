/* fuzz_mp.c: the MessagePack reader never reads past its input, never trusts a count the input
 * cannot hold, and agrees with itself: skipping a value consumes exactly what reading its items
 * one by one consumes, and re-writing the items with the writer reproduces a value that
 * validates to the same size (the writer picks the smallest forms, so it may be shorter). */
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-writes one value item by item; returns SIOC_OK or the reader's error. */
static int rewrite(struct mp_reader *r, struct buf *out)
{
    uint64_t pending = 1;
    while (pending > 0) {
        struct mp_item it;
        int rc = mp_read(r, &it);
        if (rc != SIOC_OK)
            return rc;
        pending--;
        switch (it.kind) {
        case MP_NIL: mp_write_nil(out); break;
        case MP_BOOL: mp_write_bool(out, it.boolean); break;
        case MP_UINT: mp_write_uint(out, it.u); break;
        case MP_INT: mp_write_int(out, it.i); break;
        case MP_FLOAT: mp_write_float64(out, it.f); break;
        case MP_STR: mp_write_str(out, it.data, it.len); break;
        case MP_BIN: mp_write_bin(out, it.data, it.len); break;
        case MP_EXT: mp_write_nil(out); break;
        case MP_ARRAY:
            mp_write_array(out, it.len);
            pending += it.len;
            break;
        case MP_MAP:
            mp_write_map(out, it.len);
            pending += (uint64_t)it.len * 2;
            break;
        }
    }
    return SIOC_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t consumed = 0;
    int rc = mp_validate(data, size, &consumed);
    if (rc != SIOC_OK)
        return 0;
    if (consumed > size)
        __builtin_trap();
    struct mp_reader r;
    mp_reader_init(&r, data, size);
    struct buf out;
    buf_init(&out, 1 << 20);
    if (rewrite(&r, &out) != SIOC_OK || r.pos != consumed)
        __builtin_trap();
    if (out.err == SIOC_OK) {
        size_t again = 0;
        if (mp_validate(out.data, out.len, &again) != SIOC_OK || again != out.len)
            __builtin_trap();
    }
    buf_deinit(&out);
    return 0;
}
