/* redis_proto.h: the pure parts of talking to Redis, as hiredis keeps its protocol core apart
 * from its event-loop adapters: the redis:// and rediss:// URLs of DESIGN.md §2 and the RESP
 * encoding of a command (an array of bulk strings, RESP2 "Request" format). Replies are parsed
 * by hiredis's reader in common/net/redis_conn; nothing here does I/O. */
#ifndef SIOC_COMMON_REDIS_PROTO_H
#define SIOC_COMMON_REDIS_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* Parsed form of a redis:// or rediss:// URL. Pointers point into `storage` inside the struct (valid as long
 * as the struct). */
struct redis_url {
    const char *host;     /* never NULL; "127.0.0.1" style or a name (resolved blocking!) */
    int port;             /* 1..65535, default 6379 */
    const char *user;     /* NULL unless given (Redis 6 ACL: AUTH user password) */
    const char *password; /* NULL unless given; %XX escapes decoded */
    int db;               /* 0 unless given */
    bool tls;             /* rediss://: the connection speaks TLS (redis-tls-* options) */
    char storage[512];
};

/* Parses `url` (NUL-terminated): redis[s]://[[user]:password@]host[:port][/db], host an IPv6
 * literal in brackets or a name; rediss:// sets `tls` (same default port, 6379). Returns SIOC_OK, or SIOC_EINVAL (wrong scheme, bad port or db,
 * bad or NUL %-escape, query or fragment, longer than the storage). */
int redis_url_parse(const char *url, struct redis_url *out);

/* The largest size redis_command_encode may write for these argument lengths, or 0 when it
 * would not fit in a size_t. `argc` >= 1. */
size_t redis_command_bound(int argc, const size_t *lens);
/* Writes the RESP command "*<argc>\r\n" then "$<len>\r\n<bytes>\r\n" per argument at dst (at
 * least redis_command_bound bytes); returns the bytes written. */
size_t redis_command_encode(char *dst, int argc, const char *const *argv, const size_t *lens);

#endif
