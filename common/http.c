/* http.c: HTTP/1.1 codec (RFC 9112 message syntax, RFC 9110 field semantics): a resumable
 * request-head parser with explicit states, framing decisions, a push body decoder for
 * Content-Length and chunked bodies, WHATWG-compatible query decoding and a response writer.
 * No I/O and no allocation beyond the caller's struct buf; the strictness choices are listed
 * in http.h. */
#include "common/http.h"

#include <string.h>

#include "common/error.h"
#include "common/hex.h"

/* Character classes: CLASS_TOKEN = tchar (RFC 9110 5.6.2); CLASS_VCHAR = VCHAR / obs-text
 * (RFC 9110 5.5 field-vchar; also what we accept in a request-target). */
#define CLASS_TOKEN 1
#define CLASS_VCHAR 2

static const uint8_t char_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 3, 2, 3, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2,
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 3, 2, 3, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static bool is_token(uint8_t c)
{
    return (char_class[c] & CLASS_TOKEN) != 0;
}
static bool is_vchar(uint8_t c)
{
    return (char_class[c] & CLASS_VCHAR) != 0;
}
static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Returns the first index in [pos, end) whose byte is not in `cls`, or end. */
static size_t skip_class(const uint8_t *p, size_t pos, size_t end, uint8_t cls)
{
    while (pos < end && (char_class[p[pos]] & cls) != 0)
        pos++;
    return pos;
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool equals_nocase(struct slice s, const char *lit, size_t lit_len)
{
    if (s.len != lit_len)
        return false;
    for (size_t i = 0; i < lit_len; i++)
        if (lower(s.p[i]) != lower((uint8_t)lit[i]))
            return false;
    return true;
}

/* ================================ request head ================================ */

enum head_state {
    H_START,    /* before the request line; empty lines are skipped */
    H_START_LF, /* CR of an empty leading line seen */
    H_METHOD,
    H_TARGET_START, /* after the SP following the method */
    H_TARGET,
    H_VERSION, /* "HTTP/" DIGIT "." DIGIT, version_index counts bytes */
    H_LINE_CR, /* request line must end here */
    H_LINE_LF,
    H_FIELD_START, /* start of a field line or of the final CRLF */
    H_NAME,
    H_VALUE_START, /* skipping OWS after ':' */
    H_VALUE,
    H_FIELD_LF,
    H_END_LF,
    H_DONE,
    H_FAILED,
};

#define MAX_HEAD_CLAMP ((size_t)1 << 30) /* offsets are stored as uint32_t */

void http_parser_init(struct http_parser *ps, const struct http_limits *limits)
{
    size_t max_head = limits != NULL ? limits->max_head : 0;
    size_t max_headers = limits != NULL ? limits->max_headers : 0;
    memset(ps, 0, offsetof(struct http_parser, fields));
    ps->max_head = max_head == 0               ? HTTP_MAX_HEAD_DEFAULT
                   : max_head > MAX_HEAD_CLAMP ? MAX_HEAD_CLAMP
                                               : max_head;
    ps->max_headers =
        max_headers == 0 || max_headers > HTTP_MAX_HEADERS ? HTTP_MAX_HEADERS : max_headers;
    ps->state = H_START;
}

void http_parser_reset(struct http_parser *ps)
{
    struct http_limits limits = {ps->max_head, ps->max_headers};
    http_parser_init(ps, &limits);
}

static void fill_request(const struct http_parser *ps, const uint8_t *buf, struct http_request *req)
{
    req->method = (struct slice){buf + ps->method_start, ps->method_end - ps->method_start};
    req->target = (struct slice){buf + ps->target_start, ps->target_end - ps->target_start};
    req->minor_version = ps->version_minor;
    req->header_count = ps->field_count;
    for (size_t i = 0; i < ps->field_count; i++) {
        req->headers[i].name =
            (struct slice){buf + ps->fields[i].name, ps->fields[i].name_end - ps->fields[i].name};
        req->headers[i].value = (struct slice){buf + ps->fields[i].value,
                                               ps->fields[i].value_end - ps->fields[i].value};
    }
}

static int head_fail(struct http_parser *ps, int err)
{
    ps->state = H_FAILED;
    ps->result = err;
    return err;
}

size_t http_parser_window(const struct http_parser *ps)
{
    return ps->max_head + 2;
}

int http_request_parse(struct http_parser *ps, const uint8_t *buf, size_t len,
                       struct http_request *req)
{
    if (ps->state == H_FAILED)
        return ps->result;
    if (ps->state == H_DONE) {
        fill_request(ps, buf, req);
        return ps->result;
    }
    /* Never look past max_head: a head that has not ended by then is too big (431), whatever
     * follows. */
    size_t end = len < ps->max_head ? len : ps->max_head;
    size_t pos = ps->pos;
    unsigned state = ps->state;
    size_t n = ps->field_count;

    while (pos < end) {
        uint8_t c = buf[pos];
        switch (state) {
        case H_START:
            /* RFC 9112 2.2: a server SHOULD ignore at least one empty line before the
             * request line (clients once sent an extra CRLF after a POST body). */
            if (c == '\r') {
                state = H_START_LF;
                break;
            }
            if (!is_token(c))
                return head_fail(ps, SIOC_EPROTO);
            ps->method_start = (uint32_t)pos;
            state = H_METHOD;
            continue;
        case H_START_LF:
            if (c != '\n')
                return head_fail(ps, SIOC_EPROTO);
            state = H_START;
            break;
        case H_METHOD:
            /* RFC 9112 3: method SP request-target SP HTTP-version; method is a token */
            if (is_token(c)) {
                pos = skip_class(buf, pos + 1, end, CLASS_TOKEN);
                continue;
            }
            if (c != ' ')
                return head_fail(ps, SIOC_EPROTO);
            ps->method_end = (uint32_t)pos;
            state = H_TARGET_START;
            break;
        case H_TARGET_START:
            if (!is_vchar(c))
                return head_fail(ps, SIOC_EPROTO);
            ps->target_start = (uint32_t)pos;
            state = H_TARGET;
            continue;
        case H_TARGET:
            if (is_vchar(c)) {
                pos = skip_class(buf, pos + 1, end, CLASS_VCHAR);
                continue;
            }
            if (c != ' ')
                return head_fail(ps, SIOC_EPROTO);
            ps->target_end = (uint32_t)pos;
            state = H_VERSION;
            break;
        case H_VERSION: {
            /* RFC 9112 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive */
            unsigned i = ps->version_index++;
            if (i < 5) {
                if (c != (uint8_t) "HTTP/"[i])
                    return head_fail(ps, SIOC_EPROTO);
            } else if (i == 6) {
                if (c != '.')
                    return head_fail(ps, SIOC_EPROTO);
            } else {
                if (c < '0' || c > '9')
                    return head_fail(ps, SIOC_EPROTO);
                if (i == 5)
                    ps->version_major = (uint8_t)(c - '0');
                else
                    ps->version_minor = (uint8_t)(c - '0');
            }
            if (i == 7) {
                if (ps->version_major != 1 || ps->version_minor > 1)
                    return head_fail(ps, SIOC_ENOTSUP);
                state = H_LINE_CR;
            }
            break;
        }
        case H_LINE_CR:
            if (c != '\r')
                return head_fail(ps, SIOC_EPROTO);
            state = H_LINE_LF;
            break;
        case H_LINE_LF:
        case H_FIELD_LF:
            /* RFC 9112 2.2: a bare CR (not followed by LF) is invalid; we reject it */
            if (c != '\n')
                return head_fail(ps, SIOC_EPROTO);
            if (state == H_FIELD_LF)
                ps->field_count = ++n;
            state = H_FIELD_START;
            break;
        case H_FIELD_START:
            if (c == '\r') {
                state = H_END_LF;
                break;
            }
            /* RFC 9112 5.2: obs-fold (a line starting with SP/HTAB) is rejected with 400;
             * RFC 9112 2.2: so is whitespace between the request line and the first field. */
            if (!is_token(c))
                return head_fail(ps, SIOC_EPROTO);
            if (n == ps->max_headers)
                return head_fail(ps, SIOC_ETOOBIG);
            ps->fields[n].name = (uint32_t)pos;
            state = H_NAME;
            continue;
        case H_NAME:
            if (is_token(c)) {
                pos = skip_class(buf, pos + 1, end, CLASS_TOKEN);
                continue;
            }
            /* RFC 9112 5.1: no whitespace between field name and colon (400) */
            if (c != ':')
                return head_fail(ps, SIOC_EPROTO);
            ps->fields[n].name_end = (uint32_t)pos;
            state = H_VALUE_START;
            break;
        case H_VALUE_START:
            /* RFC 9112 5.1: OWS around the value is not part of it */
            if (is_ows(c))
                break;
            ps->fields[n].value = ps->fields[n].value_end = (uint32_t)pos;
            state = H_VALUE;
            continue;
        case H_VALUE:
            if (is_vchar(c)) {
                pos = skip_class(buf, pos + 1, end, CLASS_VCHAR);
                ps->fields[n].value_end = (uint32_t)pos;
                continue;
            }
            if (is_ows(c))
                break;
            /* RFC 9110 5.5: NUL, CR, LF and other controls are invalid in a value */
            if (c != '\r')
                return head_fail(ps, SIOC_EPROTO);
            state = H_FIELD_LF;
            break;
        case H_END_LF:
            if (c != '\n')
                return head_fail(ps, SIOC_EPROTO);
            ps->pos = pos + 1;
            ps->state = H_DONE;
            ps->result = (int)(pos + 1);
            fill_request(ps, buf, req);
            return ps->result;
        default: return head_fail(ps, SIOC_EINVAL);
        }
        pos++;
    }
    ps->pos = pos;
    ps->state = state;
    if (pos >= ps->max_head)
        return head_fail(ps, SIOC_ETOOBIG);
    return SIOC_EAGAIN;
}

const struct http_header *http_header_find(const struct http_request *req, const char *name,
                                           const struct http_header *after)
{
    size_t name_len = strlen(name);
    size_t i = after != NULL ? (size_t)(after - req->headers) + 1 : 0;
    for (; i < req->header_count; i++)
        if (equals_nocase(req->headers[i].name, name, name_len))
            return &req->headers[i];
    return NULL;
}

/* Takes the next element of a comma-separated list (RFC 9110 5.6.1) from *list, trimmed of
 * OWS; empty elements are skipped as the RFC requires. Returns false at the end. */
static bool list_next(struct slice *list, struct slice *element)
{
    while (list->len > 0) {
        const uint8_t *comma = memchr(list->p, ',', list->len);
        size_t n = comma != NULL ? (size_t)(comma - list->p) : list->len;
        struct slice e = {list->p, n};
        list->p += comma != NULL ? n + 1 : n;
        list->len -= comma != NULL ? n + 1 : n;
        while (e.len > 0 && is_ows(e.p[0])) {
            e.p++;
            e.len--;
        }
        while (e.len > 0 && is_ows(e.p[e.len - 1]))
            e.len--;
        if (e.len > 0) {
            *element = e;
            return true;
        }
    }
    return false;
}

bool http_list_has_token(struct slice list, const char *token)
{
    size_t token_len = strlen(token);
    struct slice e;
    while (list_next(&list, &e)) {
        const uint8_t *semi = memchr(e.p, ';', e.len);
        if (semi != NULL)
            e.len = (size_t)(semi - e.p);
        while (e.len > 0 && is_ows(e.p[e.len - 1]))
            e.len--;
        if (equals_nocase(e, token, token_len))
            return true;
    }
    return false;
}

bool http_header_has_token(const struct http_request *req, const char *name, const char *token)
{
    for (const struct http_header *h = http_header_find(req, name, NULL); h != NULL;
         h = http_header_find(req, name, h))
        if (http_list_has_token(h->value, token))
            return true;
    return false;
}

/* ================================ framing ================================ */

/* Content-Length = 1*DIGIT (RFC 9110 8.6); a list of identical values is accepted. */
static int parse_content_length(const struct http_request *req, bool *have, uint64_t *length)
{
    *have = false;
    *length = 0;
    for (const struct http_header *h = http_header_find(req, "content-length", NULL); h != NULL;
         h = http_header_find(req, "content-length", h)) {
        struct slice list = h->value, e;
        if (list.len == 0)
            return SIOC_EPROTO;
        while (list_next(&list, &e)) {
            uint64_t v = 0;
            for (size_t i = 0; i < e.len; i++) {
                if (e.p[i] < '0' || e.p[i] > '9')
                    return SIOC_EPROTO;
                unsigned d = (unsigned)(e.p[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                    return SIOC_EPROTO;
                v = v * 10 + d;
            }
            if (*have && v != *length)
                return SIOC_EPROTO;
            *have = true;
            *length = v;
        }
        /* a value of only commas and whitespace has no element at all */
        if (!*have)
            return SIOC_EPROTO;
    }
    return SIOC_OK;
}

int http_request_framing(const struct http_request *req, struct http_framing *out)
{
    memset(out, 0, sizeof *out);
    /* RFC 9112 3.2: 400 for an HTTP/1.1 request without Host or with more than one */
    if (req->minor_version == 1) {
        const struct http_header *host = http_header_find(req, "host", NULL);
        if (host == NULL || http_header_find(req, "host", host) != NULL)
            return SIOC_EPROTO;
    }
    bool have_length;
    uint64_t length;
    int rc = parse_content_length(req, &have_length, &length);
    if (rc != SIOC_OK)
        return rc;
    const struct http_header *te = http_header_find(req, "transfer-encoding", NULL);
    if (te != NULL) {
        /* RFC 9112 6.1: TE in HTTP/1.0 means faulty framing; RFC 9112 6.3: TE with
         * Content-Length is a smuggling attempt; both are refused outright. */
        if (req->minor_version == 0 || have_length)
            return SIOC_EPROTO;
        size_t codings = 0, chunked = 0;
        bool last_chunked = false;
        for (; te != NULL; te = http_header_find(req, "transfer-encoding", te)) {
            struct slice list = te->value, e;
            while (list_next(&list, &e)) {
                last_chunked = equals_nocase(e, "chunked", 7);
                codings++;
                chunked += last_chunked;
            }
        }
        /* RFC 9112 6.3: chunked must be the final coding of a request, applied once (7) */
        if (!last_chunked || chunked != 1)
            return SIOC_EPROTO;
        /* RFC 9112 6.1: other codings are unknown to us: 501 */
        if (codings > 1)
            return SIOC_ENOTSUP;
        out->body = HTTP_BODY_CHUNKED;
    } else if (have_length) {
        out->body = HTTP_BODY_LENGTH;
        out->content_length = length;
    }
    /* RFC 9112 9.3: "close" ends the connection; 1.1 persists by default, 1.0 only with
     * keep-alive (RFC 9112 C.2.2). */
    if (http_header_has_token(req, "connection", "close"))
        out->keep_alive = false;
    else
        out->keep_alive =
            req->minor_version == 1 || http_header_has_token(req, "connection", "keep-alive");
    /* RFC 9110 7.8: Upgrade only counts when listed in Connection (7.6.1) */
    out->upgrade = http_header_has_token(req, "connection", "upgrade") &&
                   http_header_has_token(req, "upgrade", "websocket");
    return SIOC_OK;
}

/* ================================ body ================================ */

enum body_state {
    B_LENGTH,     /* Content-Length body: `remaining` bytes */
    B_SIZE_START, /* RFC 9112 7.1: chunk-size = 1*HEXDIG */
    B_SIZE,
    B_SIZE_WS, /* BWS before ';' of a chunk-ext */
    B_EXT,     /* chunk-ext, skipped up to CR */
    B_SIZE_LF,
    B_DATA,
    B_DATA_CR,
    B_DATA_LF,
    B_TRAILER_START, /* RFC 9112 7.1.2: trailer-section = *( field-line CRLF ) */
    B_TRAILER_NAME,
    B_TRAILER_VALUE,
    B_TRAILER_LF,
    B_END_LF,
    B_DONE,
    B_FAILED,
};

int http_body_init(struct http_body *b, const struct http_framing *framing, uint64_t max_payload)
{
    memset(b, 0, sizeof *b);
    b->max_payload = max_payload;
    switch (framing->body) {
    case HTTP_BODY_LENGTH:
        if (max_payload != 0 && framing->content_length > max_payload) {
            b->state = B_FAILED;
            b->error = SIOC_ETOOBIG;
            return SIOC_ETOOBIG;
        }
        b->remaining = framing->content_length;
        b->state = b->remaining > 0 ? B_LENGTH : B_DONE;
        break;
    case HTTP_BODY_CHUNKED: b->state = B_SIZE_START; break;
    default: b->state = B_DONE; break;
    }
    return SIOC_OK;
}

static int body_fail(struct http_body *b, int err, size_t pos, size_t *consumed)
{
    b->state = B_FAILED;
    b->error = err;
    *consumed = pos;
    return err;
}

int http_body_decode(struct http_body *b, const uint8_t *p, size_t len, struct slice *data,
                     size_t *consumed)
{
    *data = (struct slice){p, 0};
    *consumed = 0;
    if (b->state == B_FAILED)
        return b->error;
    size_t pos = 0;
    while (b->state != B_DONE && pos < len) {
        uint8_t c = p[pos];
        int digit;
        switch (b->state) {
        case B_LENGTH:
        case B_DATA: {
            size_t n = len - pos;
            if ((uint64_t)n > b->remaining)
                n = (size_t)b->remaining;
            *data = (struct slice){p + pos, n};
            b->remaining -= n;
            b->total += n;
            if (b->remaining == 0)
                b->state = b->state == B_LENGTH ? B_DONE : B_DATA_CR;
            *consumed = pos + n;
            /* one data run per call keeps the output a single slice */
            return b->state == B_DONE ? SIOC_OK : SIOC_EAGAIN;
        }
        case B_SIZE_START:
            b->line_len = 0;
            b->remaining = 0;
            if (hex_digit_value(c) < 0)
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            b->state = B_SIZE;
            continue;
        case B_SIZE:
            digit = hex_digit_value(c);
            if (digit >= 0) {
                if (b->remaining > (UINT64_MAX >> 4))
                    return body_fail(b, SIOC_EPROTO, pos, consumed);
                b->remaining = (b->remaining << 4) | (uint64_t)digit;
                /* refuse before any of the chunk is delivered, so nothing gets buffered */
                if (b->max_payload != 0 && b->remaining > b->max_payload - b->total)
                    return body_fail(b, SIOC_ETOOBIG, pos, consumed);
            } else if (c == ';') {
                b->state = B_EXT;
            } else if (is_ows(c)) {
                b->state = B_SIZE_WS;
            } else if (c == '\r') {
                b->state = B_SIZE_LF;
            } else {
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            }
            break;
        case B_SIZE_WS:
            if (c == ';')
                b->state = B_EXT;
            else if (!is_ows(c))
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            break;
        case B_EXT:
            /* extensions are ignored (RFC 9112 7.1.1) but may not hide a bare CR/LF or NUL */
            if (c == '\r')
                b->state = B_SIZE_LF;
            else if (!is_vchar(c) && !is_ows(c))
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            break;
        case B_SIZE_LF:
            if (c != '\n')
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            b->state = b->remaining == 0 ? B_TRAILER_START : B_DATA;
            break;
        case B_DATA_CR:
            if (c != '\r')
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            b->state = B_DATA_LF;
            break;
        case B_DATA_LF:
            if (c != '\n')
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            b->state = B_SIZE_START;
            break;
        case B_TRAILER_START:
            if (c == '\r')
                b->state = B_END_LF;
            else if (is_token(c)) /* SP/HTAB here would be obs-fold */
                b->state = B_TRAILER_NAME;
            else
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            break;
        case B_TRAILER_NAME:
            if (c == ':')
                b->state = B_TRAILER_VALUE;
            else if (!is_token(c))
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            break;
        case B_TRAILER_VALUE:
            if (c == '\r')
                b->state = B_TRAILER_LF;
            else if (!is_vchar(c) && !is_ows(c))
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            break;
        case B_TRAILER_LF:
            if (c != '\n')
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            b->state = B_TRAILER_START;
            break;
        case B_END_LF:
            if (c != '\n')
                return body_fail(b, SIOC_EPROTO, pos, consumed);
            b->state = B_DONE;
            break;
        default: return body_fail(b, SIOC_EINVAL, pos, consumed);
        }
        /* bound what we read without delivering: the size line and the trailer section */
        if (b->state >= B_SIZE && b->state <= B_SIZE_LF && ++b->line_len > HTTP_MAX_CHUNK_LINE)
            return body_fail(b, SIOC_ETOOBIG, pos, consumed);
        if (b->state >= B_TRAILER_START && b->state <= B_END_LF &&
            ++b->trailer_len > HTTP_MAX_TRAILERS)
            return body_fail(b, SIOC_ETOOBIG, pos, consumed);
        pos++;
    }
    *consumed = pos;
    return b->state == B_DONE ? SIOC_OK : SIOC_EAGAIN;
}

/* ================================ target and query ================================ */

void http_target_split(struct slice target, struct slice *path, struct slice *query)
{
    size_t i = 0;
    while (i < target.len && target.p[i] != '?' && target.p[i] != '#')
        i++;
    *path = (struct slice){target.p, i};
    *query = (struct slice){target.p + i, 0};
    if (i < target.len && target.p[i] == '?') {
        const uint8_t *q = target.p + i + 1;
        size_t rest = target.len - i - 1;
        const uint8_t *hash = memchr(q, '#', rest);
        /* the fragment is not part of the query (RFC 3986 3.4, WHATWG URL) */
        *query = (struct slice){q, hash != NULL ? (size_t)(hash - q) : rest};
    }
}

/* Decodes one byte of `in` at *i (WHATWG percent-decode: only "%" HEXDIG HEXDIG decodes). */
static uint8_t decode_byte(struct slice in, size_t *i, bool plus_is_space)
{
    uint8_t c = in.p[(*i)++];
    if (c == '+' && plus_is_space)
        return ' ';
    if (c == '%' && *i + 1 < in.len) {
        int hi = hex_digit_value(in.p[*i]), lo = hex_digit_value(in.p[*i + 1]);
        if (hi >= 0 && lo >= 0) {
            *i += 2;
            return (uint8_t)(hi << 4 | lo);
        }
    }
    return c;
}

int http_percent_decode(struct slice in, bool plus_is_space, struct buf *out)
{
    if (!buf_reserve(out, in.len))
        return out->err;
    for (size_t i = 0; i < in.len;) {
        size_t start = i;
        while (i < in.len && in.p[i] != '%' && !(plus_is_space && in.p[i] == '+'))
            i++;
        buf_append(out, in.p + start, i - start);
        if (i < in.len)
            buf_append_byte(out, decode_byte(in, &i, plus_is_space));
    }
    return out->err;
}

void http_query_iter_init(struct http_query_iter *it, struct slice query)
{
    it->rest = query;
}

bool http_query_next(struct http_query_iter *it, struct slice *name, struct slice *value)
{
    while (it->rest.len > 0) {
        const uint8_t *amp = memchr(it->rest.p, '&', it->rest.len);
        size_t n = amp != NULL ? (size_t)(amp - it->rest.p) : it->rest.len;
        struct slice pair = {it->rest.p, n};
        it->rest.p += amp != NULL ? n + 1 : n;
        it->rest.len -= amp != NULL ? n + 1 : n;
        if (pair.len == 0)
            continue;
        const uint8_t *eq = memchr(pair.p, '=', pair.len);
        if (eq == NULL) {
            *name = pair;
            *value = (struct slice){pair.p + pair.len, 0};
        } else {
            *name = (struct slice){pair.p, (size_t)(eq - pair.p)};
            *value = (struct slice){eq + 1, pair.len - name->len - 1};
        }
        return true;
    }
    return false;
}

static bool decoded_equals(struct slice raw, const char *s, size_t s_len)
{
    size_t i = 0, j = 0;
    while (i < raw.len && j < s_len)
        if (decode_byte(raw, &i, true) != (uint8_t)s[j++])
            return false;
    return i == raw.len && j == s_len;
}

int http_query_get(struct slice query, const char *name, struct buf *out)
{
    size_t name_len = strlen(name);
    struct http_query_iter it;
    struct slice n, v, found = {NULL, 0};
    bool have = false;
    http_query_iter_init(&it, query);
    while (http_query_next(&it, &n, &v)) {
        if (decoded_equals(n, name, name_len)) {
            found = v;
            have = true;
        }
    }
    if (!have)
        return 0;
    int rc = http_percent_decode(found, true, out);
    return rc != SIOC_OK ? rc : 1;
}

/* ================================ response writer ================================ */

const char *http_reason(int status)
{
    /* the phrases of Node's http.STATUS_CODES, so responses match the reference byte for byte */
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void set_invalid(struct buf *b)
{
    if (b->err == SIOC_OK)
        b->err = SIOC_EINVAL;
}

void http_write_status_line(struct buf *b, int status)
{
    /* RFC 9112 4: status-code = 3DIGIT */
    if (status < 100 || status > 999) {
        set_invalid(b);
        return;
    }
    buf_append_cstr(b, "HTTP/1.1 ");
    buf_append_u64(b, (uint64_t)status);
    buf_append_byte(b, ' ');
    buf_append_cstr(b, http_reason(status));
    buf_append(b, "\r\n", 2);
}

void http_write_header(struct buf *b, const char *name, const char *value)
{
    size_t name_len = strlen(name), value_len = strlen(value);
    /* RFC 9110 5.1, 5.5: a CR or LF in a reflected value would split the response */
    if (name_len == 0 || skip_class((const uint8_t *)name, 0, name_len, CLASS_TOKEN) != name_len) {
        set_invalid(b);
        return;
    }
    for (size_t i = 0; i < value_len; i++) {
        if (!is_vchar((uint8_t)value[i]) && !is_ows((uint8_t)value[i])) {
            set_invalid(b);
            return;
        }
    }
    buf_append(b, name, name_len);
    buf_append(b, ": ", 2);
    buf_append(b, value, value_len);
    buf_append(b, "\r\n", 2);
}

void http_write_header_u64(struct buf *b, const char *name, uint64_t value)
{
    size_t name_len = strlen(name);
    if (name_len == 0 || skip_class((const uint8_t *)name, 0, name_len, CLASS_TOKEN) != name_len) {
        set_invalid(b);
        return;
    }
    buf_append(b, name, name_len);
    buf_append(b, ": ", 2);
    buf_append_u64(b, value);
    buf_append(b, "\r\n", 2);
}

void http_write_response_head(struct buf *b, int status, const struct http_field *fields, size_t n)
{
    http_write_status_line(b, status);
    for (size_t i = 0; i < n; i++)
        http_write_header(b, fields[i].name, fields[i].value);
    buf_append(b, "\r\n", 2);
}

void http_write_chunk(struct buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    /* RFC 9112 7.1: chunk-size in hex, lowercase as Node writes it */
    char hex[2 * sizeof(size_t)];
    size_t i = sizeof hex;
    for (size_t v = n; v != 0; v >>= 4)
        hex[--i] = "0123456789abcdef"[v & 15];
    buf_append(b, hex + i, sizeof hex - i);
    buf_append(b, "\r\n", 2);
    buf_append(b, data, n);
    buf_append(b, "\r\n", 2);
}

void http_write_chunk_end(struct buf *b)
{
    buf_append(b, "0\r\n\r\n", 5);
}
