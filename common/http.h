/* http.h: HTTP/1.1 codec for the gateway (RFC 9112 message syntax, RFC 9110 semantics): a
 * resumable request-head parser, request framing (Content-Length / chunked, keep-alive,
 * WebSocket upgrade detection), a push body decoder, target/query helpers with the decoding
 * rules of engine.io 6 (WHATWG URLSearchParams), and a response writer. Pure: no sockets, no
 * allocation except into a caller's `struct buf`. Routing, timeouts and status choice are the
 * gateway's.
 *
 * Strictness (all deviations answer 400 unless noted):
 *  - Lines end in CRLF only; a bare LF or bare CR anywhere in the head is rejected (RFC 9112
 *    2.2 allows either; llhttp in Node 20 also requires CR before LF). Empty lines (CRLF)
 *    before the request line are ignored (RFC 9112 2.2) but count toward max_head.
 *  - Exactly one SP between method, target and version (RFC 9112 3).
 *  - Method and field names are RFC 9110 5.6.2 tokens; whitespace before ':' is rejected
 *    (RFC 9112 5.1); obs-fold, and whitespace before the first field, are rejected (RFC 9112
 *    5.2, 2.2).
 *  - Field values: VCHAR, obs-text (0x80-0xFF), SP and HTAB only; NUL, other controls and DEL
 *    are rejected (RFC 9110 5.5). Leading and trailing SP/HTAB are trimmed.
 *  - Target: VCHAR and obs-text, not validated further (nginx and llhttp also accept raw
 *    0x80-0xFF); it is passed on raw.
 *  - Versions other than HTTP/1.0 and HTTP/1.1 give SIOC_ENOTSUP (answer 505).
 */
#ifndef SIOC_HTTP_H
#define SIOC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* ---- limits ---- */
#define HTTP_MAX_HEAD_DEFAULT (16 * 1024) /* bytes of request line + fields + final CRLF */
#define HTTP_MAX_HEADERS 64               /* field lines per request (array size, default) */
#define HTTP_MAX_CHUNK_LINE 4096          /* chunk-size line incl. extensions (RFC 9112 7.1.1) */
#define HTTP_MAX_TRAILERS 8192            /* bytes of the trailer section (RFC 9112 7.1.2) */

struct http_limits {
    size_t max_head;    /* 0 = HTTP_MAX_HEAD_DEFAULT; clamped to 1 GiB */
    size_t max_headers; /* 0 or > HTTP_MAX_HEADERS = HTTP_MAX_HEADERS */
};

/* ---- request head ---- */
struct http_header {
    struct slice name;  /* as sent (case preserved); compare with http_header_find */
    struct slice value; /* without leading/trailing SP/HTAB; may be empty */
};

struct http_request {
    struct slice method; /* case-sensitive token (RFC 9110 9.1), e.g. "GET" */
    struct slice target; /* raw request-target, e.g. "/socket.io/?EIO=4&t=x" */
    int minor_version;   /* 0 (HTTP/1.0) or 1 (HTTP/1.1) */
    size_t header_count;
    struct http_header headers[HTTP_MAX_HEADERS];
};

/* Parser state. Fields are private; it remembers how far it got and where things are as
 * offsets, so the caller's buffer may move between calls. */
struct http_parser {
    unsigned state;
    size_t pos; /* bytes of the buffer already examined */
    size_t max_head;
    size_t max_headers;
    int result; /* head length once done, or the sticky error */
    unsigned version_index;
    uint8_t version_major, version_minor;
    uint32_t method_start, method_end, target_start, target_end;
    size_t field_count;
    struct {
        uint32_t name, name_end, value, value_end;
    } fields[HTTP_MAX_HEADERS];
};

/* Prepares a parser for one request head. `limits` may be NULL (defaults). Allocates nothing. */
void http_parser_init(struct http_parser *ps, const struct http_limits *limits);
/* The most bytes worth handing to http_request_parse: its head limit (after clamping) plus the
 * two bytes that let it tell "too big" from "not finished". */
size_t http_parser_window(const struct http_parser *ps);
/* Forgets the current request, keeping the limits; use before parsing the next (pipelined)
 * request. */
void http_parser_reset(struct http_parser *ps);

/* Parses the request head at the start of buf[0..len). On every call `buf` must hold the same
 * leading bytes as before plus possibly more (it may have been moved); only new bytes are
 * examined, so feeding a head in any number of pieces costs O(head) in total and gives the same
 * result as feeding it whole.
 * Returns the head length (> 0, including the final CRLF; the body or the next pipelined
 * request starts at buf + result) and fills *req, whose slices point into `buf` and stay valid
 * while those bytes do; SIOC_EAGAIN when the head is incomplete (nothing filled);
 * SIOC_EPROTO for a malformed head (answer 400); SIOC_ETOOBIG when the head exceeds max_head
 * or has more than max_headers fields (answer 431); SIOC_ENOTSUP for an HTTP version other
 * than 1.0/1.1 (answer 505). Errors are sticky until http_parser_reset; after success, calls
 * return the same result until reset. */
int http_request_parse(struct http_parser *ps, const uint8_t *buf, size_t len,
                       struct http_request *req);

/* Case-insensitive field lookup (RFC 9110 5.1). Returns the first field named `name` after
 * `after` (NULL = from the start), or NULL. The pointer is into req->headers. */
const struct http_header *http_header_find(const struct http_request *req, const char *name,
                                           const struct http_header *after);
/* True when `list` (a comma-separated field value, RFC 9110 5.6.1) has an element equal to
 * `token`, case-insensitively; elements may carry OWS and ";params", which are ignored. */
bool http_list_has_token(struct slice list, const char *token);
/* http_list_has_token over every field named `name` (lists may be split across lines). */
bool http_header_has_token(const struct http_request *req, const char *name, const char *token);

/* ---- framing (RFC 9112 6, 9.3; RFC 9110 7.6.1 and 7.8 for upgrade) ---- */
enum http_body_kind {
    HTTP_BODY_NONE,    /* no Content-Length nor Transfer-Encoding: zero-length body */
    HTTP_BODY_LENGTH,  /* content_length bytes follow */
    HTTP_BODY_CHUNKED, /* chunked transfer coding */
};

struct http_framing {
    enum http_body_kind body;
    uint64_t content_length; /* for HTTP_BODY_LENGTH, else 0 */
    bool keep_alive;         /* the connection may serve another request after this one */
    bool upgrade;            /* Connection has token "upgrade" and Upgrade has "websocket" */
};

/* Decides how the body is delimited and whether the connection persists. Returns SIOC_OK;
 * SIOC_EPROTO for: HTTP/1.1 without exactly one Host field (RFC 9112 3.2); a Content-Length
 * that is not 1*DIGIT, overflows 64 bits, or differs between fields/list elements (identical
 * repeats are accepted, RFC 9110 8.6); both Content-Length and Transfer-Encoding (RFC 9112
 * 6.3: smuggling defense, the connection must close); Transfer-Encoding in HTTP/1.0 (RFC 9112
 * 6.1); a coding list whose final coding is not "chunked" or that repeats chunked.
 * SIOC_ENOTSUP when chunked is final but other codings precede it (answer 501). Upgrade
 * validity beyond the two tokens (method, version, keys) is the WebSocket module's job. */
int http_request_framing(const struct http_request *req, struct http_framing *out);

/* ---- body decoding (Content-Length and chunked, RFC 9112 6.2, 7.1) ---- */
struct http_body {
    unsigned state;       /* private */
    int error;            /* sticky error, once failed */
    uint64_t remaining;   /* bytes left in the body (LENGTH) or the current chunk (CHUNKED) */
    uint64_t total;       /* payload bytes delivered so far */
    uint64_t max_payload; /* 0 = unlimited */
    size_t line_len;      /* bytes of the current chunk-size line */
    size_t trailer_len;   /* bytes of the trailer section so far */
};

/* Prepares a body decoder for `framing` with a payload limit (0 = none). Returns SIOC_OK, or
 * SIOC_ETOOBIG at once when a Content-Length exceeds max_payload (answer 413 before reading). */
int http_body_init(struct http_body *b, const struct http_framing *framing, uint64_t max_payload);
/* Consumes body bytes from p[0..len) (only new bytes, not the accumulated buffer). Stores the
 * number of bytes consumed in *consumed and at most one run of payload in *data (a slice of p,
 * possibly empty; valid while p is). Returns SIOC_OK when the body is complete (bytes after
 * *consumed belong to the next request); SIOC_EAGAIN when it is not yet (call again with
 * p + *consumed, or with the next bytes once all are consumed); SIOC_EPROTO for bad chunk
 * framing (bad hex, size overflow, missing CRLF, bad trailer line); SIOC_ETOOBIG when the
 * payload would pass max_payload (checked on the chunk size, before any of its data is
 * returned: answer 413), or a chunk line / trailer section passes its limit. Errors are
 * sticky. */
int http_body_decode(struct http_body *b, const uint8_t *p, size_t len, struct slice *data,
                     size_t *consumed);

/* ---- target and query (WHATWG URL / application/x-www-form-urlencoded, as engine.io 6 reads
 * them with `new URL(req.url).searchParams`) ---- */

/* Splits a request target into path (before the first '?' or '#') and query (after the first
 * '?', up to '#'; empty if none). Both slices point into `target`. */
void http_target_split(struct slice target, struct slice *path, struct slice *query);
/* Appends the percent-decoded bytes of `in` to `out`: "%XX" (two hex digits) becomes a byte,
 * any other '%' is kept literally ("%zz", "%4" stay as they are), and '+' becomes a space when
 * `plus_is_space`. The result is raw bytes and may not be UTF-8 (Node would substitute U+FFFD;
 * validate with utf8.h). Returns out->err (SIOC_OK, SIOC_ENOMEM or SIOC_ETOOBIG). */
int http_percent_decode(struct slice in, bool plus_is_space, struct buf *out);

/* Iterates the parameters of a query string in order: pairs split on '&', then on the first
 * '='. Empty pairs ("&&") are skipped; a pair without '=' has an empty value. Slices are raw
 * (still encoded) and point into the query. */
struct http_query_iter {
    struct slice rest;
};
void http_query_iter_init(struct http_query_iter *it, struct slice query);
/* Returns true and sets *name / *value for the next parameter, false at the end. */
bool http_query_next(struct http_query_iter *it, struct slice *name, struct slice *value);
/* Finds parameter `name` (compared after decoding the raw names, '+' as space) and appends
 * its decoded value to `out`. Repeats: the LAST occurrence wins, as Object.fromEntries does
 * in engine.io 6. Returns 1 when found, 0 when absent, or a negative out->err. */
int http_query_get(struct slice query, const char *name, struct buf *out);

/* ---- response writer (RFC 9112 4, 5, 7.1) ---- */
struct http_field {
    const char *name;  /* NUL-terminated token */
    const char *value; /* NUL-terminated; no CR, LF or other control except HTAB */
};

/* The reason phrase Node's http module uses for `status` (e.g. 413 "Payload Too Large");
 * "Unknown" for codes not in the table. Static string. */
const char *http_reason(int status);
/* Appends "HTTP/1.1 <status> <reason>\r\n". */
void http_write_status_line(struct buf *b, int status);
/* Appends "<name>: <value>\r\n". An invalid name (not a token) or value (containing CR, LF or
 * another control) is a caller bug that would allow response splitting: nothing is written
 * and b->err becomes SIOC_EINVAL. */
void http_write_header(struct buf *b, const char *name, const char *value);
void http_write_header_u64(struct buf *b, const char *name, uint64_t value);
/* Appends the status line, `n` fields in order, and the blank line ending the head. The
 * caller supplies Content-Length or Transfer-Encoding among the fields. */
void http_write_response_head(struct buf *b, int status, const struct http_field *fields, size_t n);
/* Appends one chunk ("<hex size>\r\n<data>\r\n"); nothing when n == 0, since a zero-size chunk
 * would end the body. */
void http_write_chunk(struct buf *b, const void *data, size_t n);
/* Appends the last chunk with no trailers: "0\r\n\r\n". */
void http_write_chunk_end(struct buf *b);

#endif
