/* eio_cors.c: CORS fields and preflight answers of the Engine.IO endpoint (see eio_cors.h;
 * PROTOCOL.md 1.10). */
#include "gateway/eio_cors.h"

#include "common/config.h"

#include <string.h>

bool eio_cors_whitelist(const char *cors)
{
    return cors != NULL && cors[0] != '\0' && strcmp(cors, "*") != 0;
}

bool eio_cors_allows(const char *cors, struct slice origin)
{
    if (cors == NULL || origin.len == 0 || origin.len >= EIO_CORS_MAX_ORIGIN)
        return false;
    return config_list_has(cors, (const char *)origin.p, origin.len);
}

struct slice eio_cors_request_origin(const struct http_server_request *req)
{
    const struct http_header *h = http_header_find(req->head, "Origin", NULL);
    return h != NULL ? h->value : (struct slice){NULL, 0};
}

void eio_cors_add(const char *cors, struct slice origin, char buf[EIO_CORS_MAX_ORIGIN],
                  struct http_field *fields, size_t *n)
{
    if (cors == NULL || cors[0] == '\0')
        return;
    if (!eio_cors_whitelist(cors)) {
        fields[(*n)++] = (struct http_field){"Access-Control-Allow-Origin", "*"};
        return;
    }
    /* A whitelist reflects a matching Origin, with credentials (the cors package's origin:[…]). */
    fields[(*n)++] = (struct http_field){"Vary", "Origin"};
    if (origin.p != NULL && eio_cors_allows(cors, origin)) {
        memcpy(buf, origin.p, origin.len);
        buf[origin.len] = '\0';
        fields[(*n)++] = (struct http_field){"Access-Control-Allow-Origin", buf};
    }
    fields[(*n)++] = (struct http_field){"Access-Control-Allow-Credentials", "true"};
}

void eio_cors_preflight(const char *cors, char buf[EIO_CORS_MAX_ORIGIN], struct http_conn *conn,
                        const struct http_server_request *req)
{
    struct http_field fields[8];
    size_t n = 0;
    eio_cors_add(cors, eio_cors_request_origin(req), buf, fields, &n);
    fields[n++] =
        (struct http_field){"Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE"};
    const struct http_header *want =
        http_header_find(req->head, "Access-Control-Request-Headers", NULL);
    char headers[512];
    if (want != NULL && want->value.len < sizeof headers) {
        memcpy(headers, want->value.p, want->value.len);
        headers[want->value.len] = '\0';
        fields[n++] = (struct http_field){"Access-Control-Allow-Headers", headers};
        fields[n++] = (struct http_field){"Vary", "Access-Control-Request-Headers"};
    }
    http_conn_respond(conn, 204, fields, n, NULL, 0, false);
}
