/* redis_log.c: see redis_log.h. */
#include "gateway/redis_log.h"

#include "common/net/log.h"

void redis_log_event(struct log *log, const char *link, enum redis_link_event ev,
                     const char *detail)
{
    static const char *const names[] = {
        [REDIS_LINK_EV_CONNECTED] = "redis.connected",
        [REDIS_LINK_EV_DISCONNECTED] = "redis.disconnected",
        [REDIS_LINK_EV_CONNECT_FAILED] = "redis.connect_failed",
        [REDIS_LINK_EV_CONNECT_TIMEOUT] = "redis.connect_timeout",
        [REDIS_LINK_EV_HANDSHAKE_ERROR] = "redis.handshake_error",
        [REDIS_LINK_EV_LIVENESS_TIMEOUT] = "redis.liveness_timeout",
        [REDIS_LINK_EV_QUEUE_FULL] = "redis.queue_full",
        [REDIS_LINK_EV_SLOT_MAP] = "redis.slot_map",
        [REDIS_LINK_EV_REDIRECT] = "redis.redirect",
        [REDIS_LINK_EV_SHARD_LOST] = "redis.shard_lost",
    };
    enum log_level level = ev == REDIS_LINK_EV_CONNECTED || ev == REDIS_LINK_EV_SLOT_MAP
                               ? LOG_LEVEL_INFO
                               : LOG_LEVEL_WARN;
    log_write(log, level, names[ev], "link=%s %s", link, detail != NULL ? detail : "");
}
