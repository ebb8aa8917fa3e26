/* cluster.c: adapter broadcasts from Redis to local sockets (see cluster.h). */
#include "gateway/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/adapter.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/net/log.h"

#define MAX_PATTERNS 64

struct cluster {
    struct sio_server *srv;
    struct log *log;
    char *patterns[MAX_PATTERNS];
    size_t pattern_count;
    struct adapter_broadcast msg; /* decode target, reused: ~8 KB of room lists */
    uint64_t *received, *delivered, *dropped;
};

void cluster_on_message(void *ctx, struct slice pattern, struct slice channel, struct slice payload)
{
    (void)pattern;
    (void)channel;
    struct cluster *c = ctx;
    (*c->received)++;
    int rc = adapter_broadcast_decode(payload.p, payload.len, &c->msg);
    if (rc < 0) {
        (*c->dropped)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.invalid_broadcast", "channel=%.*s: %s",
                  (int)channel.len, channel.p, sioc_strerror(rc));
        return;
    }
    if (c->msg.packet.type != 2 && c->msg.packet.type != 5) {
        (*c->dropped)++; /* ack packets travel as requests (type 7), not as broadcasts */
        return;
    }
    /* PROTOCOL.md 3.3 steps 3-4: union of rooms minus except, volatile honoured; the packet is
     * re-encoded for clients (bin values become attachments) once for all recipients */
    char nsp[260];
    size_t nlen = c->msg.packet.nsp.len < sizeof nsp - 1 ? c->msg.packet.nsp.len : sizeof nsp - 1;
    memcpy(nsp, c->msg.packet.nsp.p, nlen);
    nsp[nlen] = '\0';
    struct sio_broadcast b = {
        .nsp = nsp,
        .nsp_len = nlen,
        .data = c->msg.packet.data,
        .rooms = c->msg.opts.rooms.names,
        .nrooms = c->msg.opts.rooms.count,
        .except = c->msg.opts.except.names,
        .nexcept = c->msg.opts.except.count,
        .is_volatile = c->msg.opts.flags.is_volatile,
    };
    int sent = sio_server_broadcast(c->srv, &b);
    if (sent < 0) {
        (*c->dropped)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.broadcast_failed", "nsp=%s: %s", nsp,
                  sioc_strerror(sent));
        return;
    }
    *c->delivered += (uint64_t)sent;
}

static bool add_pattern(struct cluster *c, const char *key, const char *nsp, int nsp_len)
{
    char pattern[600];
    if (nsp == NULL)
        snprintf(pattern, sizeof pattern, "%s#*", key);
    else /* PROTOCOL.md 3.2: one pattern per namespace covers the main and the room channels */
        snprintf(pattern, sizeof pattern, "%s#%.*s#*", key, nsp_len, nsp);
    if (c->pattern_count == MAX_PATTERNS || (c->patterns[c->pattern_count] = strdup(pattern)) == NULL)
        return false;
    c->pattern_count++;
    return true;
}

struct cluster *cluster_new(struct event_base *base, const struct cluster_config *cfg,
                            struct sio_server *srv, struct log *log, struct metrics *metrics)
{
    (void)base; /* the publishing connection of issue 4 */
    struct cluster *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->srv = srv;
    c->log = log;
    c->received = metrics_counter(metrics, "sioc_broadcasts_received_total",
                                  "adapter broadcasts received from Redis", NULL);
    c->delivered = metrics_counter(metrics, "sioc_broadcast_deliveries_total",
                                   "sockets a received broadcast was sent to", NULL);
    c->dropped = metrics_counter(metrics, "sioc_broadcasts_dropped_total",
                                 "received broadcasts that could not be decoded or delivered", NULL);
    bool ok = c->received && c->delivered && c->dropped;
    const char *key = cfg->adapter_key ? cfg->adapter_key : "socket.io";
    if (strcmp(cfg->namespaces, "*") == 0) {
        ok = ok && add_pattern(c, key, NULL, 0);
    } else {
        for (const char *s = cfg->namespaces; ok && *s != '\0';) {
            const char *end = strchr(s, ',');
            int n = end ? (int)(end - s) : (int)strlen(s);
            ok = add_pattern(c, key, s, n);
            s += n + (end != NULL);
        }
    }
    if (!ok) {
        cluster_free(c);
        return NULL;
    }
    return c;
}

void cluster_free(struct cluster *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->pattern_count; i++)
        free(c->patterns[i]);
    free(c);
}

size_t cluster_channels(const struct cluster *c, const char *const **channels)
{
    (void)c;
    *channels = NULL;
    return 0; /* request/response channels: issue 4 */
}

size_t cluster_patterns(const struct cluster *c, const char *const **patterns)
{
    *patterns = (const char *const *)c->patterns;
    return c->pattern_count;
}
