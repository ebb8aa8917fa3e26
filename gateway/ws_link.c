/* ws_link.c: WebSocket connection rules over an upgraded connection (see ws_link.h). */
#include "gateway/ws_link.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/ws.h"

/* Why a link is closing (ws_link.end); the first cause wins. */
enum link_end { LINK_OPEN, LINK_LOCAL, LINK_PEER_CLOSE, LINK_PROTOCOL_ERROR };

static void link_free(struct ws_link *link)
{
    buf_deinit(&link->message);
    buf_deinit(&link->control);
    free(link);
}

/* Sends a close frame and closes the connection after it; the link ends in close_cb. */
static void write_close(struct ws_link *link, unsigned code, const char *reason, enum link_end why,
                        int err)
{
    if (link->end != LINK_OPEN)
        return;
    link->end = (uint8_t)why;
    link->err = (int8_t)err;
    struct buf frame;
    buf_init(&frame, 0);
    size_t len = reason != NULL ? strlen(reason) : 0;
    if (len > WS_CLOSE_REASON_MAX) {
        /* RFC 6455 5.5: the payload is at most 125 bytes; cut at a character boundary */
        size_t n = 0; /* the last character start at or before the limit (reason[limit] exists) */
        for (size_t i = 0; i <= WS_CLOSE_REASON_MAX; i++) {
            if (((uint8_t)reason[i] & 0xC0) != 0x80)
                n = i;
        }
        len = n;
    }
    ws_write_close(&frame, code, (const uint8_t *)reason, len);
    http_conn_write(link->conn, frame.data, frame.len);
    buf_deinit(&frame);
    http_conn_close(link->conn, true);
}

void ws_link_close_reason(struct ws_link *link, unsigned code, const char *reason)
{
    write_close(link, code, reason, LINK_LOCAL, SIOC_OK);
}

void ws_link_close(struct ws_link *link, unsigned code)
{
    ws_link_close_reason(link, code, NULL);
}

void ws_link_disown(struct ws_link *link)
{
    link->handler = NULL;
    link->ctx = NULL;
}

/* One event from the parser. Returns false when the link is closing (the rest of the input is
 * dropped). */
static bool event(struct ws_link *link, const struct ws_event *ev)
{
    switch (ev->type) {
    case WS_EVENT_TEXT:
    case WS_EVENT_BINARY:
        if (link->handler != NULL && link->handler->on_message != NULL)
            link->handler->on_message(link->ctx, link, ev->data, ev->len,
                                      ev->type == WS_EVENT_BINARY);
        buf_deinit(&link->message); /* DESIGN.md §4: an idle connection keeps no buffer */
        return link->end == LINK_OPEN;
    case WS_EVENT_PING: {
        /* RFC 6455 5.5.2. The pong counts against the connection's output limits
         * (http_server.h): a client that floods pings and reads nothing stops being read. */
        struct buf pong;
        buf_init(&pong, 0);
        ws_write_frame(&pong, WS_OP_PONG, true, ev->data, ev->len);
        http_conn_write(link->conn, pong.data, pong.len);
        buf_deinit(&pong);
        buf_deinit(&link->control);
        return true;
    }
    case WS_EVENT_CLOSE:
        /* RFC 6455 5.5.1: echo the code */
        write_close(link, ev->close_code, NULL, LINK_PEER_CLOSE, SIOC_OK);
        return false;
    case WS_EVENT_PONG:
        buf_deinit(&link->control);
        if (link->handler != NULL && link->handler->on_pong != NULL)
            link->handler->on_pong(link->ctx, link);
        return link->end == LINK_OPEN;
    default: buf_deinit(&link->control); return true;
    }
}

static size_t data_cb(void *ctx, struct http_conn *conn, const uint8_t *p, size_t len)
{
    (void)conn;
    struct ws_link *link = ctx;
    size_t used = 0;
    while (used < len && link->end == LINK_OPEN) {
        struct ws_event ev;
        size_t consumed = 0;
        int rc = ws_parser_feed(&link->parser, p + used, len - used, &consumed, &ev);
        used += consumed;
        if (rc == SIOC_EAGAIN)
            return used;
        if (rc != SIOC_OK) {
            /* RFC 6455 7.4.1 */
            write_close(link, ws_error_close_code(rc), NULL, LINK_PROTOCOL_ERROR, rc);
            break;
        }
        if (!event(link, &ev))
            break;
    }
    if (link->end != LINK_OPEN) {
        buf_deinit(&link->message); /* a partial message, or a close frame's payload */
        buf_deinit(&link->control);
    }
    return len; /* all of it, or the link is closing: nothing more is read */
}

/* The connection ended (after our close, the peer's, or on its own): the link ends with it. */
static void close_cb(void *ctx, struct http_conn *conn, const char *reason)
{
    (void)conn;
    struct ws_link *link = ctx;
    static const char *const reasons[] = {
        [LINK_LOCAL] = "local close",
        [LINK_PEER_CLOSE] = "transport close",
        [LINK_PROTOCOL_ERROR] = "parse error",
    };
    if (link->handler != NULL && link->handler->on_close != NULL)
        link->handler->on_close(link->ctx, link, link->err,
                                link->end != LINK_OPEN ? reasons[link->end] : reason);
    link_free(link);
}

static void drained_cb(void *ctx, struct http_conn *conn)
{
    (void)ctx;
    (void)conn;
}

bool ws_link_request_valid(const struct http_server_request *req)
{
    const struct http_header *key = http_header_find(req->head, "Sec-WebSocket-Key", NULL);
    const struct http_header *version = http_header_find(req->head, "Sec-WebSocket-Version", NULL);
    return key != NULL && version != NULL &&
           ws_client_key_valid((const char *)key->value.p, key->value.len) &&
           ws_version_valid((const char *)version->value.p, version->value.len);
}

struct ws_link *ws_link_accept(struct http_conn *conn, const struct http_server_request *req,
                               size_t max_message, const uint8_t *extra, size_t extra_len,
                               const struct ws_link_handler *handler, void *ctx)
{
    struct ws_link *link = calloc(1, sizeof *link);
    if (link == NULL) {
        http_conn_close(conn, false);
        return NULL;
    }
    link->conn = conn;
    link->handler = handler;
    link->ctx = ctx;
    buf_init(&link->message, max_message);
    buf_init(&link->control, 0);
    ws_parser_init(&link->parser, &link->message, &link->control, max_message, 0);
    const struct http_header *key = http_header_find(req->head, "Sec-WebSocket-Key", NULL);
    struct buf head;
    buf_init(&head, 0);
    ws_write_handshake_response(&head, (const char *)key->value.p, key->value.len,
                                (const char *)extra, extra_len);
    struct http_conn_owner owner = {data_cb, drained_cb, close_cb, link};
    http_conn_upgrade(conn, &owner);
    http_conn_write(conn, head.data, head.len);
    buf_deinit(&head);
    return link;
}
