/* redis_log.h: the log line of a redis_link event (common/net/redis_link.h) of one of the
 * gateway's links: "redis.connected: link=<name> <detail>" and so on, at info for a connection
 * or a slot map, at warn for everything else. One table for every link that logs this way. */
#ifndef SIOC_GATEWAY_REDIS_LOG_H
#define SIOC_GATEWAY_REDIS_LOG_H

#include "common/net/redis_link.h"

struct log;

/* `log` may be NULL; `detail` may be NULL. */
void redis_log_event(struct log *log, const char *link, enum redis_link_event ev,
                     const char *detail);

#endif
