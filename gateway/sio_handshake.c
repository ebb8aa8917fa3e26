/* sio_handshake.c: per-client handshake facts and protocol v4 query auth (see sio_handshake.h). */
#include "gateway/sio_handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/http.h"
#include "common/mp.h"

uint8_t *sio_handshake_build(struct sio_handshake *hs, const struct http_server_request *req,
                             const char *peer)
{
    uint8_t *bytes = NULL;
    const struct http_request *head = req->head;
    struct buf headers, query;
    buf_init(&headers, 0);
    buf_init(&query, 0);
    mp_write_map(&headers, (uint32_t)head->header_count);
    for (size_t i = 0; i < head->header_count; i++) {
        char name[256];
        size_t n =
            head->headers[i].name.len < sizeof name ? head->headers[i].name.len : sizeof name;
        for (size_t k = 0; k < n; k++) {
            char ch = (char)head->headers[i].name.p[k];
            name[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
        mp_write_str(&headers, name, n);
        mp_write_str(&headers, head->headers[i].value.p, head->headers[i].value.len);
    }
    struct http_query_iter it;
    struct slice name, value;
    uint32_t count = 0;
    http_query_iter_init(&it, req->query);
    while (http_query_next(&it, &name, &value))
        count++;
    mp_write_map(&query, count);
    http_query_iter_init(&it, req->query);
    struct buf decoded;
    buf_init(&decoded, 0);
    while (http_query_next(&it, &name, &value)) {
        buf_reset(&decoded);
        http_percent_decode(name, true, &decoded);
        mp_write_str(&query, decoded.data ? decoded.data : (const uint8_t *)"", decoded.len);
        buf_reset(&decoded);
        http_percent_decode(value, true, &decoded);
        mp_write_str(&query, decoded.data ? decoded.data : (const uint8_t *)"", decoded.len);
    }
    buf_deinit(&decoded);
    /* the address without its port, as Node's handshake.address */
    char address[64];
    snprintf(address, sizeof address, "%s", peer);
    char *colon = strrchr(address, ':');
    if (colon != NULL && strchr(address, '.') != NULL)
        *colon = '\0';
    else if (colon != NULL && address[0] == '[') {
        *colon = '\0';
        memmove(address, address + 1, strlen(address));
        address[strlen(address) - 1] = '\0';
    }
    /* kept for the whole session (fetchSockets, workers): one exact-size block, no slack */
    size_t alen = strlen(address) + 1;
    size_t total = headers.len + query.len + head->target.len + 1 + alen;
    const char *url = "", *addr = "";
    struct slice hs_headers = {NULL, 0}, hs_query = {NULL, 0};
    if (headers.err == SIOC_OK && query.err == SIOC_OK && (bytes = malloc(total)) != NULL) {
        memcpy(bytes, headers.data, headers.len);
        memcpy(bytes + headers.len, query.data, query.len);
        char *u = (char *)bytes + headers.len + query.len;
        memcpy(u, head->target.p, head->target.len);
        u[head->target.len] = '\0';
        memcpy(u + head->target.len + 1, address, alen);
        hs_headers = (struct slice){bytes, headers.len};
        hs_query = (struct slice){bytes + headers.len, query.len};
        url = u;
        addr = u + head->target.len + 1;
    }
    buf_deinit(&headers);
    buf_deinit(&query);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    *hs = (struct sio_handshake){
        .headers = hs_headers,
        .query = hs_query,
        .url = url,
        .address = addr,
        .issued_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
        .secure = req->secure,
    };
    return bytes;
}

/* One decoded pair: offsets into the decoded bytes. */
struct query_pair {
    size_t name, name_len, value, value_len;
};

static bool same_name(const uint8_t *base, const struct query_pair *a, const struct query_pair *b)
{
    return a->name_len == b->name_len && memcmp(base + a->name, base + b->name, a->name_len) == 0;
}

int sio_query_auth(struct slice query, struct buf *out)
{
    /* socket.io 4.8's client.ts: objectFromEntries(new URL(nsp, …).searchParams.entries()): one
     * key per name, in the order names first appear, with the value of the name's last pair */
    struct query_pair pairs[SIO_QUERY_MAX_PAIRS];
    size_t n = 0;
    struct buf decoded;
    buf_init(&decoded, out->limit);
    struct http_query_iter it;
    struct slice name, value;
    http_query_iter_init(&it, query);
    while (n < SIO_QUERY_MAX_PAIRS && http_query_next(&it, &name, &value)) {
        struct query_pair *p = &pairs[n++];
        p->name = decoded.len;
        http_percent_decode(name, true, &decoded);
        p->name_len = decoded.len - p->name;
        p->value = decoded.len;
        http_percent_decode(value, true, &decoded);
        p->value_len = decoded.len - p->value;
    }
    if (decoded.err != SIOC_OK) {
        int err = decoded.err;
        buf_deinit(&decoded);
        return err;
    }
    const uint8_t *base = decoded.data ? decoded.data : (const uint8_t *)"";
    uint32_t keys = 0;
    for (size_t i = 0; i < n; i++) {
        size_t first = 0;
        while (!same_name(base, &pairs[first], &pairs[i]))
            first++;
        keys += first == i;
    }
    mp_write_map(out, keys);
    for (size_t i = 0; i < n; i++) {
        size_t first = 0, last = i;
        while (!same_name(base, &pairs[first], &pairs[i]))
            first++;
        if (first != i)
            continue; /* written with its first occurrence */
        for (size_t k = i + 1; k < n; k++) {
            if (same_name(base, &pairs[k], &pairs[i]))
                last = k;
        }
        mp_write_str(out, base + pairs[i].name, pairs[i].name_len);
        mp_write_str(out, base + pairs[last].value, pairs[last].value_len);
    }
    buf_deinit(&decoded);
    return out->err;
}
