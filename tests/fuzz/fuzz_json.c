/* fuzz_json.c: libFuzzer target for json.c. The input is parsed as JSON (the MessagePack must be
 * one well-formed value, and JSON.stringify form must be a fixed point: write(parse(t)) == t for
 * t = write(parse(input))), and fed to the writer as MessagePack (any text it produces must be
 * JSON that parses and writes back to itself). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_json invariant broken: %s\n", what);
        abort();
    }
}

/* Parses text, checks the MessagePack, writes it back; returns the writer's code. */
static int parse_then_write(const uint8_t *text, size_t n, struct buf *mp, struct buf *out)
{
    int rc = json_to_msgpack(text, n, mp);
    require(rc == SIOC_OK || mp->len == 0, "rollback after a parse error");
    if (rc != SIOC_OK)
        return rc;
    size_t used = 0;
    require(mp_validate(mp->data, mp->len, &used) == SIOC_OK && used == mp->len,
            "parser output is exactly one MessagePack value");
    struct mp_reader r;
    mp_reader_init(&r, mp->data, mp->len);
    rc = json_from_msgpack(&r, NULL, out);
    require(rc == SIOC_OK && r.pos == mp->len, "writer accepts the parser's output");
    return rc;
}

/* t is JSON.stringify output: it must parse, and write back to exactly itself. */
static void check_fixed_point(const uint8_t *t, size_t n)
{
    struct buf mp, again;
    buf_init(&mp, 0);
    buf_init(&again, 0);
    require(parse_then_write(t, n, &mp, &again) == SIOC_OK, "written text parses");
    require(again.len == n && memcmp(again.data, t, n) == 0, "write(parse(t)) == t");
    buf_deinit(&mp);
    buf_deinit(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    struct buf mp, text;
    buf_init(&mp, 0);
    buf_init(&text, 0);
    if (parse_then_write(data, size, &mp, &text) == SIOC_OK)
        check_fixed_point(text.data, text.len);

    buf_reset(&text);
    struct mp_reader r;
    mp_reader_init(&r, data, size);
    int rc = json_from_msgpack(&r, NULL, &text);
    require(rc == SIOC_OK || text.len == 0, "rollback after a write error");
    if (rc == SIOC_OK) {
        require(r.pos <= size, "reader stays in bounds");
        check_fixed_point(text.data, text.len);
    }
    buf_deinit(&mp);
    buf_deinit(&text);
    return 0;
}
