/* eio_polling.h: the HTTP long-polling body formats of an Engine.IO session other than plain v4
 * (PROTOCOL.md 1.5.7 JSONP, 1.12 Engine.IO v3): building a GET answer from the session's shared
 * frames, and turning a POST body into the payload to iterate. The plain v4 form (packets joined
 * by 0x1e, large frames written by reference) stays in eio_server.c, its hot path. Sessions,
 * held requests and CORS belong to eio_server.c; the codecs to common/eio.c. */
#ifndef SIOC_GATEWAY_EIO_POLLING_H
#define SIOC_GATEWAY_EIO_POLLING_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/eio.h"
#include "common/net/http_server.h"
#include "gateway/frame.h"

/* How one session's polling bodies look; fixed at its handshake, as Node fixes its transport. */
struct eio_poll_format {
    enum eio_version version;
    bool b64;          /* v3: the handshake had a non-empty `b64` (no XHR2 binary payloads) */
    const char *jsonp; /* the digits of the handshake's `j` (JSONP), or NULL */
};

/* The format of a session whose handshake had this query: `b64` non-empty (a JavaScript truthy
 * string), `j` present (even empty) means JSONP, its digits kept (owned: eio_poll_format_deinit).
 * Returns false when out of memory (nothing to free then). */
bool eio_poll_format_init(struct eio_poll_format *fmt, struct slice query,
                          enum eio_version version);
void eio_poll_format_deinit(struct eio_poll_format *fmt);

/* True for v4 without JSONP: eio_server.c's own zero-copy form. */
bool eio_poll_format_plain(const struct eio_poll_format *fmt);

/* Appends the answer to a GET carrying frames[0..n) (n >= 1) in the session's format and sets
 * *content_type (a static string): v3 text `<UTF-16 units>:<packet>…` with binary as the cached
 * `b4<base64>`; v3 XHR2 (`application/octet-stream`) when no b64, no JSONP and some frame is
 * binary; JSONP wraps the v3 or v4 text payload in `___eio[j]("…");`. Returns SIOC_OK or
 * out's error (SIOC_ENOMEM), out rolled back. Frames are borrowed. */
int eio_poll_body(struct buf *out, const struct eio_poll_format *fmt,
                  struct gw_frame *const *frames, size_t n, const char **content_type);

/* Answers a held GET (or a polling handshake) with 200 and frames[0..n), then `extra` (NULL: none),
 * in the session's format, after the caller's fields[0..nfields) (CORS; 2 more must fit). Plain
 * v4: a small body is copied into one block, a large one references the shared frames; the
 * other formats are built in one block. Returns SIOC_OK, or SIOC_ENOMEM after answering 500.
 * Frames are borrowed (references are taken for what is written by reference). */
int eio_poll_respond(struct http_conn *conn, const struct eio_poll_format *fmt,
                     struct http_field *fields, size_t nfields, struct gw_frame *const *frames,
                     size_t n, struct gw_frame *extra);

/* The payload of a POST body p[0..len) (`octet_stream`: its Content-Type is
 * application/octet-stream) and how to iterate it. JSONP bodies are decoded into `scratch` (its
 * limit bounds them) and *payload points there, valid until scratch is next modified; other
 * bodies are returned as they are. Returns SIOC_OK; SIOC_EPROTO for a JSONP body without one
 * `d` field (Node ignores such a body: answer "ok" and do nothing); SIOC_EINVAL for an XHR2 body
 * on a v4 session (PROTOCOL.md 1.5.3: 400, the session closes); or scratch's error. */
int eio_poll_post_payload(const struct eio_poll_format *fmt, const uint8_t *p, size_t len,
                          bool octet_stream, struct buf *scratch, struct slice *payload,
                          enum eio_payload_format *format);

#endif
