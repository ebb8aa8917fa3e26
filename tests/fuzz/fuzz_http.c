/* fuzz_http.c: libFuzzer target for the HTTP/1.1 codec. The input is read as a stream of
 * pipelined requests (head parser, framing, body decoder) and, separately, as a bare chunked
 * body; each is fed whole and split at a position derived from the input (and byte by byte for
 * short inputs), and the results must be identical. Also checks consumed <= len, runs the
 * query iterator and decoder over every target, and feeds every parsed field back through the
 * response writer, which must accept it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http: %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void exercise_request(const struct http_request *req, struct buf *log)
{
    struct slice path, query, name, value;
    http_target_split(req->target, &path, &query);
    REQUIRE(path.len + query.len <= req->target.len);
    struct http_query_iter it;
    struct buf decoded;
    buf_init(&decoded, 0);
    http_query_iter_init(&it, query);
    while (http_query_next(&it, &name, &value)) {
        REQUIRE(name.p >= query.p && value.p + value.len <= query.p + query.len);
        REQUIRE(http_percent_decode(name, true, &decoded) == SIOC_OK);
        REQUIRE(http_percent_decode(value, true, &decoded) == SIOC_OK);
    }
    REQUIRE(decoded.len <= query.len);
    buf_deinit(&decoded);
    REQUIRE(http_query_get(query, "sid", log) >= 0);

    /* every field the parser accepts is one the writer accepts */
    struct buf out;
    buf_init(&out, 0);
    for (size_t i = 0; i < req->header_count; i++) {
        const struct http_header *h = &req->headers[i];
        char *n = strndup((const char *)h->name.p, h->name.len);
        char *v = strndup((const char *)h->value.p, h->value.len);
        REQUIRE(n != NULL && v != NULL && strlen(v) == h->value.len);
        http_write_header(&out, n, v);
        free(n);
        free(v);
    }
    REQUIRE(out.err == SIOC_OK);
    buf_deinit(&out);
}

/* Processes in[0..n) delivered in pieces ending at the given cuts; logs everything seen. */
static void run_stream(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts,
                       struct buf *log)
{
    struct http_parser ps;
    struct http_request req;
    struct http_body body;
    http_parser_init(&ps, NULL);
    size_t start = 0;
    bool in_body = false;
    for (size_t k = 0; k < ncuts; k++) {
        size_t avail = cuts[k];
        REQUIRE(avail <= n);
        for (;;) {
            if (!in_body) {
                size_t have = avail - start;
                uint8_t *copy = malloc(have ? have : 1);
                REQUIRE(copy != NULL);
                memcpy(copy, in + start, have);
                int rc = http_request_parse(&ps, copy, have, &req);
                if (rc == SIOC_EAGAIN) {
                    free(copy);
                    break;
                }
                buf_append_i64(log, rc);
                if (rc < 0) {
                    free(copy);
                    return;
                }
                REQUIRE((size_t)rc <= have);
                buf_append(log, req.method.p, req.method.len);
                buf_append(log, req.target.p, req.target.len);
                for (size_t i = 0; i < req.header_count; i++) {
                    buf_append(log, req.headers[i].name.p, req.headers[i].name.len);
                    buf_append(log, req.headers[i].value.p, req.headers[i].value.len);
                }
                exercise_request(&req, log);
                struct http_framing f;
                int frc = http_request_framing(&req, &f);
                free(copy);
                buf_append_i64(log, frc);
                if (frc != SIOC_OK)
                    return;
                buf_append_u64(log, f.content_length);
                buf_append_byte(log, (uint8_t)(f.body | f.keep_alive << 2 | f.upgrade << 3));
                start += (size_t)rc;
                if (http_body_init(&body, &f, 4096) != SIOC_OK) {
                    buf_append_cstr(log, "413");
                    return;
                }
                in_body = true;
            }
            struct slice d;
            size_t used;
            int rc = http_body_decode(&body, in + start, avail - start, &d, &used);
            REQUIRE(used <= avail - start);
            REQUIRE(d.len == 0 || (d.p >= in + start && d.p + d.len <= in + start + used));
            start += used;
            buf_append(log, d.p, d.len);
            if (rc == SIOC_OK) {
                buf_append_cstr(log, "|end|");
                in_body = false;
                http_parser_reset(&ps);
                continue;
            }
            if (rc != SIOC_EAGAIN) {
                buf_append_i64(log, rc);
                return;
            }
            if (start == avail)
                break;
        }
    }
    buf_append_u64(log, start);
}

/* Decodes in[0..n) as a chunked body delivered in the given pieces. */
static void run_chunked(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts,
                        struct buf *log)
{
    struct http_framing f = {.body = HTTP_BODY_CHUNKED};
    struct http_body b;
    REQUIRE(http_body_init(&b, &f, n / 2) == SIOC_OK);
    size_t start = 0;
    int rc = SIOC_EAGAIN;
    for (size_t k = 0; k < ncuts && rc == SIOC_EAGAIN; k++) {
        while (rc == SIOC_EAGAIN && start < cuts[k]) {
            struct slice d;
            size_t used;
            rc = http_body_decode(&b, in + start, cuts[k] - start, &d, &used);
            REQUIRE(used <= cuts[k] - start);
            start += used;
            buf_append(log, d.p, d.len);
        }
    }
    REQUIRE(b.total <= n / 2 || n / 2 == 0);
    buf_append_i64(log, rc);
    buf_append_u64(log, start);
}

typedef void (*runner_fn)(const uint8_t *, size_t, const size_t *, size_t, struct buf *);

static void compare_feeds(const uint8_t *data, size_t size, runner_fn run)
{
    struct buf whole, split;
    buf_init(&whole, 0);
    buf_init(&split, 0);
    size_t one[1] = {size};
    run(data, size, one, 1, &whole);

    /* a cut derived from the input, so the fuzzer can steer it */
    size_t cut = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        cut = cut * 131 + data[i];
    cut = size > 0 ? cut % size : 0;
    size_t two[2] = {cut, size};
    run(data, size, two, 2, &split);
    REQUIRE(split.len == whole.len && memcmp(split.data, whole.data, whole.len) == 0);

    if (size <= 256) {
        size_t cuts[256];
        for (size_t i = 0; i < size; i++)
            cuts[i] = i + 1;
        buf_reset(&split);
        run(data, size, cuts, size, &split);
        REQUIRE(split.len == whole.len && memcmp(split.data, whole.data, whole.len) == 0);
    }
    buf_deinit(&whole);
    buf_deinit(&split);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    compare_feeds(data, size, run_stream);
    compare_feeds(data, size, run_chunked);
    return 0;
}
