/* test_http.c: the HTTP/1.1 codec. Every request stream (head + body, pipelined) is driven
 * through a small connection simulator fed whole, split at every offset and one byte at a time
 * (each parse call gets a fresh copy of the bytes, so stale pointers show up under ASan); the
 * logs must be identical. Heads and bodies also end at guard pages. Rejections, framing rules,
 * query vectors (checked against Node's URLSearchParams) and the exact bytes of Node's
 * responses from the reference transcripts. */
#include "common/error.h"
#include "common/http.h"
#include "tests/unit/test.h"

/* ---- connection simulator ---- */

static void log_slice(struct buf *log, struct slice s)
{
    buf_append(log, s.p, s.len);
}

static void log_request(struct buf *log, const struct http_request *req)
{
    log_slice(log, req->method);
    buf_append_byte(log, ' ');
    log_slice(log, req->target);
    buf_append_cstr(log, req->minor_version ? " 1.1" : " 1.0");
    for (size_t i = 0; i < req->header_count; i++) {
        buf_append_byte(log, '|');
        log_slice(log, req->headers[i].name);
        buf_append_byte(log, '=');
        log_slice(log, req->headers[i].value);
    }
    buf_append_byte(log, '\n');
}

static void log_rc(struct buf *log, const char *what, int rc)
{
    buf_append_cstr(log, what);
    buf_append_i64(log, rc);
    buf_append_byte(log, '\n');
}

/* Delivers in[0..n) in pieces ending at cuts[0] < cuts[1] < ... (the last must be n) and
 * processes heads and bodies as a gateway connection would. Returns the log (caller frees). */
static struct buf drive(const uint8_t *in, size_t n, const size_t *cuts, size_t ncuts,
                        uint64_t max_payload, const struct http_limits *limits)
{
    struct buf log;
    buf_init(&log, 0);
    CHECK(ncuts > 0 && cuts[ncuts - 1] == n);
    struct http_parser ps;
    struct http_request req;
    struct http_body body;
    http_parser_init(&ps, limits);
    size_t start = 0;
    bool in_body = false, stopped = false;
    for (size_t k = 0; k < ncuts && !stopped; k++) {
        size_t avail = cuts[k];
        for (;;) {
            if (!in_body) {
                /* a fresh, exact-size copy: the parser must keep offsets, not pointers */
                size_t have = avail - start;
                uint8_t *copy = malloc(have ? have : 1);
                memcpy(copy, in + start, have);
                int rc = http_request_parse(&ps, copy, have, &req);
                if (rc == SIOC_EAGAIN) {
                    free(copy);
                    break;
                }
                if (rc < 0) {
                    log_rc(&log, "head error ", rc);
                    free(copy);
                    stopped = true;
                    break;
                }
                log_request(&log, &req);
                struct http_framing f;
                int frc = http_request_framing(&req, &f);
                free(copy);
                if (frc != SIOC_OK) {
                    log_rc(&log, "framing error ", frc);
                    stopped = true;
                    break;
                }
                buf_append_cstr(&log, f.body == HTTP_BODY_NONE     ? "none"
                                      : f.body == HTTP_BODY_LENGTH ? "length "
                                                                   : "chunked");
                if (f.body == HTTP_BODY_LENGTH)
                    buf_append_u64(&log, f.content_length);
                buf_append_cstr(&log, f.keep_alive ? " keep-alive" : " close");
                buf_append_cstr(&log, f.upgrade ? " upgrade\n" : "\n");
                start += (size_t)rc;
                int brc = http_body_init(&body, &f, max_payload);
                if (brc != SIOC_OK) {
                    log_rc(&log, "body init error ", brc);
                    stopped = true;
                    break;
                }
                buf_append_cstr(&log, "body[");
                in_body = true;
            }
            struct slice data;
            size_t used;
            int rc = http_body_decode(&body, in + start, avail - start, &data, &used);
            CHECK(used <= avail - start);
            CHECK(data.len == 0 ||
                  (data.p >= in + start && data.p + data.len <= in + start + used));
            start += used;
            log_slice(&log, data);
            if (rc == SIOC_OK) {
                buf_append_cstr(&log, "]\n");
                in_body = false;
                http_parser_reset(&ps);
                continue;
            }
            if (rc != SIOC_EAGAIN) {
                log_rc(&log, "] body error ", rc);
                stopped = true;
                break;
            }
            if (start == avail)
                break;
        }
    }
    if (!stopped) {
        buf_append_cstr(&log, in_body ? "(in body)" : "(between requests)");
        buf_append_u64(&log, start);
    }
    return log;
}

/* Runs `in` whole, at every two-piece split and one byte at a time; every log must equal the
 * whole-feed log, which must equal `want`. */
static void check_stream_max(const char *in, size_t n, const char *want, uint64_t max_payload,
                             const struct http_limits *limits)
{
    const uint8_t *p = (const uint8_t *)in;
    size_t whole_cut[1] = {n};
    struct buf whole = drive(p, n, whole_cut, 1, max_payload, limits);
    CHECK_STR(whole.data, whole.len, want);
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t k = 1; k < n; k++) {
        size_t two[2] = {k, n};
        struct buf split = drive(p, n, two, 2, max_payload, limits);
        CHECK_MEM(split.data, split.len, whole.data, whole.len);
        buf_deinit(&split);
    }
    for (size_t k = 0; k < n; k++)
        cuts[k] = k + 1;
    struct buf bytewise = drive(p, n, cuts, n, max_payload, limits);
    CHECK_MEM(bytewise.data, bytewise.len, whole.data, whole.len);
    buf_deinit(&bytewise);
    free(cuts);
    buf_deinit(&whole);
}

#define STREAM(in, want) check_stream_max((in), sizeof(in) - 1, (want), 1000, NULL)

/* ---- valid requests ---- */

static void test_polling_get(void)
{
    STREAM("GET /socket.io/?EIO=4&transport=polling&t=txXZGwX HTTP/1.1\r\nHost: 127.0.0.1:37349\r\n"
           "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n",
           "GET /socket.io/?EIO=4&transport=polling&t=txXZGwX 1.1|Host=127.0.0.1:37349|Accept=*/*"
           "|Accept-Encoding=gzip, deflate|Connection=keep-alive\n"
           "none keep-alive\nbody[]\n(between requests)154");
}

static void test_polling_post(void)
{
    STREAM(
        "POST /socket.io/?EIO=4&transport=polling&sid=yKu4RTveNx0qIRXcAAAA&t=qbI4ghw HTTP/1.1\r\n"
        "Host: 127.0.0.1:37349\r\nAccept: */*\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        "Connection: keep-alive\r\nContent-Length: 41\r\n\r\n"
        "40{\"token\":\"abc\"}\x1e"
        "40/chat,{\"token\":\"xyz\"}",
        "POST /socket.io/?EIO=4&transport=polling&sid=yKu4RTveNx0qIRXcAAAA&t=qbI4ghw 1.1"
        "|Host=127.0.0.1:37349|Accept=*/*|Content-Type=text/plain;charset=UTF-8"
        "|Connection=keep-alive|Content-Length=41\n"
        "length 41 keep-alive\nbody[40{\"token\":\"abc\"}\x1e"
        "40/chat,{\"token\":\"xyz\"}]\n"
        "(between requests)249");
}

static void test_chunked_post(void)
{
    STREAM("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           "4;name=value;q=\"quoted; ok\"\r\nWiki\r\n"
           "5 ; ext\r\npedia\r\n"
           "E\r\n in\r\n\r\nchunks.\r\n"
           "0;last\r\nExpires: never\r\nX-Trailer:  v \r\n\r\n",
           "POST /x 1.1|Host=h|Transfer-Encoding=chunked\nchunked keep-alive\n"
           "body[Wikipedia in\r\n\r\nchunks.]\n(between requests)169");
}

static void test_websocket_upgrade(void)
{
    STREAM("GET /socket.io/?EIO=4&transport=websocket&sid=lORjVavr-11tr7WlAAAA HTTP/1.1\r\n"
           "Host: 127.0.0.1:43621\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: OU2W4m/zqjl5s/lYVa3gPw==\r\n"
           "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
           "GET /socket.io/?EIO=4&transport=websocket&sid=lORjVavr-11tr7WlAAAA 1.1"
           "|Host=127.0.0.1:43621|Connection=Upgrade|Upgrade=websocket|Sec-WebSocket-Version=13"
           "|Sec-WebSocket-Key=OU2W4m/zqjl5s/lYVa3gPw=="
           "|Sec-WebSocket-Extensions=permessage-deflate; client_max_window_bits\n"
           "none keep-alive upgrade\nbody[]\n(between requests)285");
    /* Firefox sends "keep-alive, Upgrade"; case and list position do not matter */
    STREAM("GET /ws HTTP/1.1\r\nHost: h\r\nconnection: keep-alive, UPGRADE\r\nupgrade: "
           "WebSocket\r\n\r\n",
           "GET /ws 1.1|Host=h|connection=keep-alive, UPGRADE|upgrade=WebSocket\n"
           "none keep-alive upgrade\nbody[]\n(between requests)82");
    /* Upgrade without Connection: upgrade is not an upgrade (RFC 9110 7.8) */
    STREAM("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
           "GET /ws 1.1|Host=h|Upgrade=websocket\nnone keep-alive\nbody[]\n(between requests)49");
}

static void test_http10(void)
{
    STREAM("GET /healthz HTTP/1.0\r\n\r\n",
           "GET /healthz 1.0\nnone close\nbody[]\n(between requests)25");
    STREAM("GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
           "GET /metrics 1.0|Connection=Keep-Alive\nnone keep-alive\nbody[]\n(between requests)49");
    STREAM("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
           "GET / 1.1|Host=h|Connection=close\nnone close\nbody[]\n(between requests)46");
}

static void test_pipelined(void)
{
    STREAM("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
           "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
           "\r\n" /* RFC 9112 2.2: an empty line before a request line is ignored */
           "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
           "GET /d HTTP/1.1\r\nHo",
           "GET /a 1.1|Host=h\nnone keep-alive\nbody[]\n"
           "POST /b 1.1|Host=h|Content-Length=3\nlength 3 keep-alive\nbody[abc]\n"
           "POST /c 1.1|Host=h|Transfer-Encoding=chunked\nchunked keep-alive\nbody[xy]\n"
           "(between requests)150");
}

static void test_header_values(void)
{
    /* OWS trimmed on both sides, inner spaces kept, empty values, obs-text kept raw */
    STREAM("OPTIONS * HTTP/1.1\r\nHost:h\r\nX-A: \t a  b \t\r\nX-Empty:\r\nX-Sp:   \r\n"
           "X-Utf8: caf\xc3\xa9\r\n\r\n",
           "OPTIONS * 1.1|Host=h|X-A=a  b|X-Empty=|X-Sp=|X-Utf8=caf\xc3\xa9\n"
           "none keep-alive\nbody[]\n(between requests)80");
}

static void test_header_find(void)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: h\r\nACCEPT: a\r\nX: 1\r\naccept: b\r\n\r\n";
    struct http_parser ps;
    struct http_request req;
    http_parser_init(&ps, NULL);
    CHECK(http_request_parse(&ps, (const uint8_t *)in, sizeof in - 1, &req) == (int)sizeof in - 1);
    const struct http_header *h = http_header_find(&req, "Accept", NULL);
    CHECK(h == &req.headers[1]);
    h = http_header_find(&req, "accept", h);
    CHECK(h == &req.headers[3]);
    CHECK(h != NULL && h->value.len == 1 && h->value.p[0] == 'b');
    CHECK(http_header_find(&req, "accept", h) == NULL);
    CHECK(http_header_find(&req, "missing", NULL) == NULL);
    CHECK(http_header_find(&req, "Hos", NULL) == NULL);
    /* a finished parser returns the same result again */
    CHECK(http_request_parse(&ps, (const uint8_t *)in, sizeof in - 1, &req) == (int)sizeof in - 1);
}

static void test_list_tokens(void)
{
    struct slice s = {(const uint8_t *)" ,keep-alive ,, Upgrade;x=1 ", 28};
    CHECK(http_list_has_token(s, "upgrade"));
    CHECK(http_list_has_token(s, "KEEP-ALIVE"));
    CHECK(!http_list_has_token(s, "close"));
    CHECK(!http_list_has_token(s, "keep"));
    struct slice e = {(const uint8_t *)"", 0};
    CHECK(!http_list_has_token(e, "close"));
}

/* ---- guard pages ---- */

static void test_guard_pages(void)
{
    static const char head[] = "GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: h\r\nX: y \r\n\r\n";
    size_t n = sizeof head - 1;
    /* every prefix ends at an unreadable page: EAGAIN (no over-read), the whole head parses */
    for (size_t k = 0; k <= n; k++) {
        size_t map_len;
        uint8_t *g = test_guard_copy(head, k, &map_len);
        struct http_parser ps;
        struct http_request req;
        http_parser_init(&ps, NULL);
        int rc = http_request_parse(&ps, g, k, &req);
        CHECK(k == n ? rc == (int)n : rc == SIOC_EAGAIN);
        test_guard_free(g, k, map_len);
    }
    static const char chunked[] = "3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n";
    n = sizeof chunked - 1;
    for (size_t k = 0; k <= n; k++) {
        size_t map_len;
        uint8_t *g = test_guard_copy(chunked, k, &map_len);
        struct http_framing f = {.body = HTTP_BODY_CHUNKED};
        struct http_body b;
        CHECK(http_body_init(&b, &f, 0) == SIOC_OK);
        size_t off = 0, used;
        struct slice d;
        int rc;
        do {
            rc = http_body_decode(&b, g + off, k - off, &d, &used);
            off += used;
        } while (rc == SIOC_EAGAIN && off < k);
        CHECK(k == n ? rc == SIOC_OK : rc == SIOC_EAGAIN);
        CHECK(off == k);
        test_guard_free(g, k, map_len);
    }
}

/* ---- rejections ---- */

#define REJECT(in, want) check_stream_max((in), sizeof(in) - 1, (want), 1000, NULL)

static void test_reject_garbage(void)
{
    /* a TLS ClientHello on the plain port: rejected at the first byte */
    REJECT("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "head error -2\n");
    REJECT("GET / HTTP/2.0\r\n\r\n", "head error -8\n");
    REJECT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "head error -8\n");
    REJECT("GET / HTTP/1.2\r\n\r\n", "head error -8\n");
    REJECT("GET / http/1.1\r\n\r\n", "head error -2\n");
    REJECT("GET / HTTP/1.1 \r\n\r\n", "head error -2\n");
    REJECT("GET  / HTTP/1.1\r\n\r\n", "head error -2\n");
    REJECT("GET /\r\n\r\n", "head error -2\n");
    REJECT("G(T / HTTP/1.1\r\n\r\n", "head error -2\n");
    REJECT("GET /a\x01 HTTP/1.1\r\n\r\n", "head error -2\n");
    REJECT("GET /a\x7f HTTP/1.1\r\n\r\n", "head error -2\n");
    REJECT(" GET / HTTP/1.1\r\n\r\n", "head error -2\n");
    REJECT("\n", "head error -2\n");
}

static void test_reject_line_endings(void)
{
    REJECT("GET / HTTP/1.1\nHost: h\n\n", "head error -2\n"); /* bare LF */
    REJECT("GET / HTTP/1.1\r\nHost: h\n\r\n", "head error -2\n");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", "head error -2\n"); /* bare CR */
    REJECT("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "head error -2\n");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\n\rX", "head error -2\n");
    REJECT("GET / HTTP/1.1\r\nHost: h\n\n", "head error -2\n");
    REJECT("GET / HTTP/1.1\n\n", "head error -2\n");
}

static void test_reject_fields(void)
{
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", "head error -2\n"); /* obs-fold */
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", "head error -2\n");
    REJECT("GET / HTTP/1.1\r\n Host: h\r\n\r\n", "head error -2\n");
    REJECT("GET / HTTP/1.1\r\nHost : h\r\n\r\n", "head error -2\n"); /* RFC 9112 5.1 */
    REJECT("GET / HTTP/1.1\r\n: h\r\n\r\n", "head error -2\n");
    REJECT("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", "head error -2\n");
    REJECT("GET / HTTP/1.1\r\nHost\r\n\r\n", "head error -2\n");
    REJECT("GET / HTTP/1.1\r\nX: a\x00"
           "b\r\n\r\n",
           "head error -2\n"); /* NUL */
    REJECT("GET / HTTP/1.1\r\nX: a\x1b"
           "b\r\n\r\n",
           "head error -2\n");
    REJECT("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", "head error -2\n");
}

static void test_reject_limits(void)
{
    /* 20 KiB header: 431 as soon as 16 KiB have gone by without the end of the head */
    size_t big = 20 * 1024;
    char *in = malloc(big + 64);
    int n = snprintf(in, 64, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(in + n, 'a', big);
    memcpy(in + n + big, "\r\n\r\n", 4);
    size_t len = (size_t)n + big + 4;
    struct http_parser ps;
    struct http_request req;
    http_parser_init(&ps, NULL);
    CHECK(http_request_parse(&ps, (uint8_t *)in, HTTP_MAX_HEAD_DEFAULT, &req) == SIOC_ETOOBIG);
    http_parser_init(&ps, NULL);
    CHECK(http_request_parse(&ps, (uint8_t *)in, HTTP_MAX_HEAD_DEFAULT - 1, &req) == SIOC_EAGAIN);
    CHECK(http_request_parse(&ps, (uint8_t *)in, len, &req) == SIOC_ETOOBIG);
    CHECK(http_request_parse(&ps, (uint8_t *)in, len, &req) == SIOC_ETOOBIG); /* sticky */
    free(in);

    /* a head of exactly max_head bytes passes; one more byte does not */
    static const char exact[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"; /* 27 bytes */
    struct http_limits lim = {27, 0};
    check_stream_max(exact, 27, "GET / 1.1|Host=h\nnone keep-alive\nbody[]\n(between requests)27",
                     0, &lim);
    lim.max_head = 26;
    check_stream_max(exact, 27, "head error -3\n", 0, &lim);

    /* 100 headers: over the 64-field limit */
    struct buf b;
    buf_init(&b, 0);
    buf_append_cstr(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 100; i++)
        buf_append_cstr(&b, "X-H: v\r\n");
    buf_append_cstr(&b, "\r\n");
    http_parser_init(&ps, NULL);
    CHECK(http_request_parse(&ps, b.data, b.len, &req) == SIOC_ETOOBIG);
    /* exactly 64 fields are fine; a lower configured limit applies */
    buf_reset(&b);
    buf_append_cstr(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 64; i++)
        buf_append_cstr(&b, "X-H: v\r\n");
    buf_append_cstr(&b, "\r\n");
    http_parser_init(&ps, NULL);
    CHECK(http_request_parse(&ps, b.data, b.len, &req) == (int)b.len);
    CHECK(req.header_count == 64);
    lim = (struct http_limits){0, 10};
    http_parser_init(&ps, &lim);
    CHECK(http_request_parse(&ps, b.data, b.len, &req) == SIOC_ETOOBIG);
    buf_deinit(&b);
}

static void test_reject_framing(void)
{
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=3|Transfer-Encoding=chunked\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=99999999999999999999999\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=18446744073709551616\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=3|Content-Length=4\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=3, 4\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=+3\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=0x3\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
           "POST / 1.1|Host=h|Transfer-Encoding=chunked, gzip\nframing error -2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
           "chunked\r\n\r\n",
           "POST / 1.1|Host=h|Transfer-Encoding=chunked|Transfer-Encoding=chunked\nframing error "
           "-2\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
           "POST / 1.1|Host=h|Transfer-Encoding=gzip, chunked\nframing error -8\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n",
           "POST / 1.1|Host=h|Transfer-Encoding=chunkedx\nframing error -2\n");
    REJECT("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / 1.0|Transfer-Encoding=chunked\nframing error -2\n");
    REJECT("GET / HTTP/1.1\r\n\r\n", "GET / 1.1\nframing error -2\n");
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
           "GET / 1.1|Host=a|host=b\nframing error -2\n");
    /* identical repeats are one length (RFC 9110 8.6); a huge but valid one is 413 at once */
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
           "POST / 1.1|Host=h|Content-Length=2, 2|Content-Length=2\nlength 2 keep-alive\nbody[ok]\n"
           "(between requests)71");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2 ,\t2,\r\n\r\nok",
           "POST / 1.1|Host=h|Content-Length=2 ,\t2,\nlength 2 keep-alive\nbody[ok]\n"
           "(between requests)54");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=18446744073709551615\nlength 18446744073709551615 "
           "keep-alive\nbody init error -3\n");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n",
           "POST / 1.1|Host=h|Content-Length=1001\nlength 1001 keep-alive\nbody init error -3\n");
}

#define CHUNKED_HEAD "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
#define CHUNKED_LOG "POST / 1.1|Host=h|Transfer-Encoding=chunked\nchunked keep-alive\nbody["

static void test_reject_chunked(void)
{
    REJECT(CHUNKED_HEAD "zz\r\n", CHUNKED_LOG "] body error -2\n");
    REJECT(CHUNKED_HEAD "\r\n", CHUNKED_LOG "] body error -2\n");
    REJECT(CHUNKED_HEAD "-1\r\n", CHUNKED_LOG "] body error -2\n");
    REJECT(CHUNKED_HEAD "3\nabc\r\n", CHUNKED_LOG "] body error -2\n");       /* LF only */
    REJECT(CHUNKED_HEAD "3\r\nabcX\r\n", CHUNKED_LOG "abc] body error -2\n"); /* no CRLF */
    REJECT(CHUNKED_HEAD "3\r\nabc\n0\r\n\r\n", CHUNKED_LOG "abc] body error -2\n");
    REJECT(CHUNKED_HEAD "3 \r\nabc\r\n", CHUNKED_LOG "] body error -2\n"); /* BWS w/o ext */
    REJECT(CHUNKED_HEAD "3;a\x01\r\n", CHUNKED_LOG "] body error -2\n");
    REJECT(CHUNKED_HEAD "3;a\rb\r\n", CHUNKED_LOG "] body error -2\n");
    REJECT(CHUNKED_HEAD "0\r\n X: y\r\n\r\n", CHUNKED_LOG "] body error -2\n"); /* trailer fold */
    REJECT(CHUNKED_HEAD "0\r\nX y\r\n\r\n", CHUNKED_LOG "] body error -2\n");
    REJECT(CHUNKED_HEAD "0\r\nX: \x00\r\n\r\n", CHUNKED_LOG "] body error -2\n");
    /* body over max-payload (1000): refused on the size, before a byte of it is delivered */
    REJECT(CHUNKED_HEAD "3e8\r\n", CHUNKED_LOG "(in body)61");
    REJECT(CHUNKED_HEAD "3e9\r\n", CHUNKED_LOG "] body error -3\n");
    REJECT(CHUNKED_HEAD "2\r\nab\r\n3e7\r\n", CHUNKED_LOG "ab] body error -3\n");
    REJECT(CHUNKED_HEAD "ffffffffffffffffffffff\r\n", CHUNKED_LOG "] body error -3\n");
    /* without a payload limit, 64-bit overflow of the size is malformed */
    check_stream_max(CHUNKED_HEAD "10000000000000000\r\n", sizeof(CHUNKED_HEAD) - 1 + 19,
                     CHUNKED_LOG "] body error -2\n", 0, NULL);
    check_stream_max(CHUNKED_HEAD "000000000000000000000001\r\nx\r\n0\r\n\r\n",
                     sizeof(CHUNKED_HEAD) - 1 + 34, CHUNKED_LOG "x]\n(between requests)90", 0,
                     NULL);
}

static void test_chunked_line_limits(void)
{
    struct buf in;
    buf_init(&in, 0);
    buf_append_cstr(&in, CHUNKED_HEAD "1;");
    for (int i = 0; i < HTTP_MAX_CHUNK_LINE; i++)
        buf_append_byte(&in, 'e');
    buf_append_cstr(&in, "\r\nx\r\n0\r\n\r\n");
    size_t cut[1] = {in.len};
    struct buf log = drive(in.data, in.len, cut, 1, 0, NULL);
    CHECK_STR(log.data, log.len, CHUNKED_LOG "] body error -3\n");
    buf_deinit(&log);

    buf_reset(&in);
    buf_append_cstr(&in, CHUNKED_HEAD "0\r\n");
    for (int i = 0; i < HTTP_MAX_TRAILERS / 8 + 1; i++)
        buf_append_cstr(&in, "T: 1234\r\n");
    buf_append_cstr(&in, "\r\n");
    cut[0] = in.len;
    log = drive(in.data, in.len, cut, 1, 0, NULL);
    CHECK_STR(log.data, log.len, CHUNKED_LOG "] body error -3\n");
    buf_deinit(&log);
    buf_deinit(&in);
}

/* ---- target and query ---- */

static struct slice S(const char *s) {
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

static void
check_get(const char *query, const char *name, int want_rc, const char *want)
{
    struct buf out;
    buf_init(&out, 0);
    int rc = http_query_get(S(query), name, &out);
    CHECK(rc == want_rc);
    if (want != NULL)
        CHECK_STR(out.data, out.len, want);
    buf_deinit(&out);
}

static void test_target_split(void)
{
    struct slice path, query;
    http_target_split(S("/socket.io/?EIO=4&transport=polling&t=NxYz"), &path, &query);
    CHECK_STR(path.p, path.len, "/socket.io/");
    CHECK_STR(query.p, query.len, "EIO=4&transport=polling&t=NxYz");
    http_target_split(S("/healthz"), &path, &query);
    CHECK_STR(path.p, path.len, "/healthz");
    CHECK(query.len == 0);
    http_target_split(S("/a?"), &path, &query);
    CHECK_STR(path.p, path.len, "/a");
    CHECK(query.len == 0);
    http_target_split(S("/a?x=1#frag?y=2"), &path, &query);
    CHECK_STR(query.p, query.len, "x=1");
    http_target_split(S("/a#b?c"), &path, &query);
    CHECK_STR(path.p, path.len, "/a");
    CHECK(query.len == 0);
}

/* Expected values are what `new URL(t, base).searchParams` gives in Node 20 (engine.io 6.6). */
static void test_query_vectors(void)
{
    const char *q = "EIO=4&transport=polling&t=NxYz";
    check_get(q, "EIO", 1, "4");
    check_get(q, "transport", 1, "polling");
    check_get(q, "t", 1, "NxYz");
    check_get(q, "sid", 0, "");
    check_get(q, "eio", 0, ""); /* names are case-sensitive */
    q = "a=%2F&b=a+b&c=%zz&d=&e&&=x&a=2&f=%4&g=%%41&h=b=c&%41=1&sp=%20+&u=%C3%A9&x=%ff";
    check_get(q, "a", 1, "2"); /* last occurrence wins, as Object.fromEntries */
    check_get(q, "b", 1, "a b");
    check_get(q, "c", 1, "%zz"); /* invalid escapes stay literal */
    check_get(q, "d", 1, "");
    check_get(q, "e", 1, ""); /* no '=': empty value */
    check_get(q, "", 1, "x");
    check_get(q, "f", 1, "%4");
    check_get(q, "g", 1, "%A");
    check_get(q, "h", 1, "b=c"); /* split on the first '=' only */
    check_get(q, "A", 1, "1");   /* names are decoded before comparing */
    check_get(q, "sp", 1, "  ");
    check_get(q, "u", 1, "\xc3\xa9");
    check_get(q, "x", 1, "\xff"); /* raw byte; Node would show U+FFFD */
    check_get("", "a", 0, "");
    check_get("&&&", "a", 0, "");
    check_get("a+b=1", "a b", 1, "1");

    struct buf out;
    buf_init(&out, 0);
    CHECK(http_percent_decode(S("a+b%2B%2f%"), false, &out) == SIOC_OK);
    CHECK_STR(out.data, out.len, "a+b+/%");
    buf_deinit(&out);
    buf_init(&out, 3);
    CHECK(http_percent_decode(S("abcd"), true, &out) == SIOC_ETOOBIG);
    CHECK(http_query_get(S("a=abcd"), "a", &out) == SIOC_ETOOBIG);
    buf_deinit(&out);
}

static void test_query_iter(void)
{
    struct http_query_iter it;
    struct slice n, v;
    struct buf log;
    buf_init(&log, 0);
    http_query_iter_init(&it, S("&EIO=4&&flag&=x&k=a=b&t=%41+"));
    while (http_query_next(&it, &n, &v)) {
        log_slice(&log, n);
        buf_append_byte(&log, ':');
        log_slice(&log, v);
        buf_append_byte(&log, ';');
    }
    CHECK_STR(log.data, log.len, "EIO:4;flag:;:x;k:a=b;t:%41+;");
    CHECK(!http_query_next(&it, &n, &v));
    buf_deinit(&log);
}

/* ---- responses: Node's bytes from the reference transcripts ---- */

static void test_response_400_engineio(void)
{
    /* d2-polling-errors.jsonl: GET with an unknown sid */
    static const char want[] =
        "HTTP/1.1 400 Bad Request\r\nVary: Origin\r\nAccess-Control-Allow-Credentials: true\r\n"
        "Content-Type: application/json\r\nDate: Sun, 22 Nov 2026 06:26:01 GMT\r\n"
        "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "29\r\n{\"code\":1,\"message\":\"Session ID unknown\"}\r\n0\r\n\r\n";
    const struct http_field fields[] = {
        {"Vary", "Origin"},
        {"Access-Control-Allow-Credentials", "true"},
        {"Content-Type", "application/json"},
        {"Date", "Sun, 22 Nov 2026 06:26:01 GMT"},
        {"Connection", "keep-alive"},
        {"Keep-Alive", "timeout=5"},
        {"Transfer-Encoding", "chunked"},
    };
    static const char body[] = "{\"code\":1,\"message\":\"Session ID unknown\"}";
    struct buf b;
    buf_init(&b, 0);
    http_write_response_head(&b, 400, fields, sizeof fields / sizeof fields[0]);
    http_write_chunk(&b, body, sizeof body - 1);
    http_write_chunk(&b, "", 0);
    http_write_chunk_end(&b);
    CHECK(b.err == SIOC_OK);
    CHECK_STR(b.data, b.len, want);

    /* the Content-Length form the gateway may use instead */
    buf_reset(&b);
    http_write_status_line(&b, 400);
    http_write_header(&b, "Content-Type", "application/json");
    http_write_header_u64(&b, "Content-Length", sizeof body - 1);
    buf_append_cstr(&b, "\r\n");
    buf_append_cstr(&b, body);
    CHECK_STR(b.data, b.len,
              "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
              "Content-Length: 41\r\n\r\n{\"code\":1,\"message\":\"Session ID unknown\"}");
    buf_deinit(&b);
}

static void test_response_200_polling(void)
{
    /* a-polling.jsonl: the handshake response */
    static const char want[] =
        "HTTP/1.1 200 OK\r\nVary: Origin\r\nAccess-Control-Allow-Credentials: true\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\nContent-Length: 113\r\n"
        "cache-control: no-store\r\nDate: Sun, 22 Nov 2026 06:25:49 GMT\r\n"
        "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n"
        "0{\"sid\":\"yKu4RTveNx0qIRXcAAAA\",\"upgrades\":[\"websocket\"],\"pingInterval\":2000,"
        "\"pingTimeout\":1000,\"maxPayload\":1000}";
    static const char body[] =
        "0{\"sid\":\"yKu4RTveNx0qIRXcAAAA\",\"upgrades\":[\"websocket\"],\"pingInterval\":2000,"
        "\"pingTimeout\":1000,\"maxPayload\":1000}";
    struct buf b;
    buf_init(&b, 0);
    http_write_status_line(&b, 200);
    http_write_header(&b, "Vary", "Origin");
    http_write_header(&b, "Access-Control-Allow-Credentials", "true");
    http_write_header(&b, "Content-Type", "text/plain; charset=UTF-8");
    http_write_header_u64(&b, "Content-Length", sizeof body - 1);
    http_write_header(&b, "cache-control", "no-store");
    http_write_header(&b, "Date", "Sun, 22 Nov 2026 06:25:49 GMT");
    http_write_header(&b, "Connection", "keep-alive");
    http_write_header(&b, "Keep-Alive", "timeout=5");
    buf_append_cstr(&b, "\r\n");
    buf_append(&b, body, sizeof body - 1);
    CHECK(b.err == SIOC_OK);
    CHECK_STR(b.data, b.len, want);
    buf_deinit(&b);
}

static void test_response_writer_guards(void)
{
    CHECK(strcmp(http_reason(413), "Payload Too Large") == 0);
    CHECK(strcmp(http_reason(431), "Request Header Fields Too Large") == 0);
    CHECK(strcmp(http_reason(101), "Switching Protocols") == 0);
    CHECK(strcmp(http_reason(401), "Unauthorized") == 0); /* the broker's api-key answer */
    CHECK(strcmp(http_reason(299), "Unknown") == 0);
    struct buf b;
    buf_init(&b, 0);
    http_write_header(&b, "Access-Control-Allow-Origin", "http://a\r\nSet-Cookie: x");
    CHECK(b.err == SIOC_EINVAL && b.len == 0);
    buf_reset(&b);
    http_write_header(&b, "Bad Name", "v");
    CHECK(b.err == SIOC_EINVAL && b.len == 0);
    buf_reset(&b);
    http_write_status_line(&b, 99);
    CHECK(b.err == SIOC_EINVAL);
    buf_reset(&b);
    static const uint8_t big[300] = {0};
    http_write_chunk(&b, big, sizeof big);
    CHECK(b.len == 3 + 2 + 300 + 2 && memcmp(b.data, "12c\r\n", 5) == 0);
    buf_reset(&b);
    const struct http_field f[] = {{"Content-Length", "0"}};
    http_write_response_head(&b, 204, f, 1);
    CHECK_STR(b.data, b.len, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_polling_get);
    RUN(test_polling_post);
    RUN(test_chunked_post);
    RUN(test_websocket_upgrade);
    RUN(test_http10);
    RUN(test_pipelined);
    RUN(test_header_values);
    RUN(test_header_find);
    RUN(test_list_tokens);
    RUN(test_guard_pages);
    RUN(test_reject_garbage);
    RUN(test_reject_line_endings);
    RUN(test_reject_fields);
    RUN(test_reject_limits);
    RUN(test_reject_framing);
    RUN(test_reject_chunked);
    RUN(test_chunked_line_limits);
    RUN(test_target_split);
    RUN(test_query_vectors);
    RUN(test_query_iter);
    RUN(test_response_400_engineio);
    RUN(test_response_200_polling);
    RUN(test_response_writer_guards);
    return test_summary("test_http");
}
