/* sio_transport.c: how a Socket.IO client's packets leave (encoded once into Engine.IO frames)
 * and how it is closed, whatever carries it: an Engine.IO session or a plain WebSocket connection
 * (ws-routes, where an event leaves as its first argument: common/ws_routes.h). The lowest part of
 * the Socket.IO layer: it calls the transports only (eio_server.h, plain_ws.h), never sio_server.c.
 */
#include <stdbool.h>

#include "common/error.h"
#include "common/ws_routes.h"
#include "gateway/plain_ws.h"
#include "gateway/sio_internal.h"

void sio_client_close(struct sio_client *c, unsigned ws_code, const char *reason)
{
    if (c->plain != NULL)
        plain_ws_conn_close(c->plain, ws_code, reason);
    else
        eio_session_close(c->session, reason);
}

struct gw_frame *sio_plain_frame(struct sio_server *srv, struct slice data, int *rc)
{
    bool binary = false;
    buf_reset(&srv->plain_text);
    int n = ws_routes_message_frame(data.p, data.len, &srv->plain_text, &binary);
    if (n <= 0) {
        *rc = n;
        return NULL;
    }
    const uint8_t *p = srv->plain_text.data;
    size_t len = srv->plain_text.len;
    struct gw_frame *f = binary ? gw_frame_new_binary(p, len) : gw_frame_new_plain_text(p, len);
    *rc = f != NULL ? SIOC_OK : SIOC_ENOMEM;
    return f;
}

int sio_plain_send_event(struct sio_client *c, struct slice data)
{
    int rc;
    struct gw_frame *f = sio_plain_frame(c->srv, data, &rc);
    if (f == NULL)
        return rc; /* 0: an event without an argument sends nothing */
    plain_ws_conn_send(c->plain, f);
    gw_frame_unref(f);
    return SIOC_OK;
}

int sio_encode_frames(struct sio_server *srv, enum sio_version version,
                      const struct sio_packet *pkt, struct gw_frame *frames[MAX_FRAMES])
{
    struct slice bins[SIO_MAX_ATTACHMENTS];
    buf_reset(&srv->text);
    int n = sio_packet_encode(version, pkt, &srv->text, bins, SIO_MAX_ATTACHMENTS);
    if (n < 0)
        return n;
    int count = 0;
    frames[count++] = gw_frame_new_text('4', srv->text.data, srv->text.len);
    for (int i = 0; i < n; i++)
        frames[count++] = gw_frame_new_binary(bins[i].p, bins[i].len);
    for (int i = 0; i < count; i++) {
        if (frames[i] == NULL) {
            for (int k = 0; k < count; k++)
                gw_frame_unref(frames[k]);
            return SIOC_ENOMEM;
        }
    }
    return count;
}

void sio_unref_frames(struct gw_frame **frames, int n)
{
    for (int i = 0; i < n; i++)
        gw_frame_unref(frames[i]);
}
