/* eio_cors.h: the CORS answers of the Engine.IO endpoint (PROTOCOL.md 1.10, the `cors` package
 * semantics Node's engine.io uses): which fields a response gets for a request's Origin, and the
 * preflight answer. The option is the gateway's `cors-origin`: NULL/"" (none), "*", or a comma
 * list of origins (reflected, with credentials). No state beyond the caller's buffer. */
#ifndef SIOC_GATEWAY_EIO_CORS_H
#define SIOC_GATEWAY_EIO_CORS_H

#include <stdbool.h>

#include "common/buf.h"
#include "common/net/http_server.h"

#define EIO_CORS_MAX_ORIGIN 256

/* True when `cors` is a whitelist (not empty, not "*"). */
bool eio_cors_whitelist(const char *cors);
/* True when `origin` is one of the whitelist's entries (comma list, spaces ignored). */
bool eio_cors_allows(const char *cors, struct slice origin);
/* The request's Origin header value; p == NULL when absent. Points into the request. */
struct slice eio_cors_request_origin(const struct http_server_request *req);
/* Adds the CORS fields for a request with this Origin (p == NULL: none) to fields[*n] (at most 3).
 * A reflected Origin is copied into `buf`, whose contents the fields then point to. */
void eio_cors_add(const char *cors, struct slice origin, char buf[EIO_CORS_MAX_ORIGIN],
                  struct http_field *fields, size_t *n);
/* Answers an OPTIONS preflight: 204 with the CORS fields, the allowed methods and the
 * mirrored Access-Control-Request-Headers. */
void eio_cors_preflight(const char *cors, char buf[EIO_CORS_MAX_ORIGIN], struct http_conn *conn,
                        const struct http_server_request *req);

#endif
