/* redis_proto.h: the pure parts of talking to Redis, as hiredis keeps its protocol core apart
 * from its event-loop adapters: the redis:// and rediss:// URLs of DESIGN.md §2 and the RESP
 * encoding of a command (an array of bulk strings, RESP2 "Request" format). Replies are parsed
 * by hiredis's reader in common/net/redis_conn; nothing here does I/O. */
#ifndef SIOC_COMMON_REDIS_PROTO_H
#define SIOC_COMMON_REDIS_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#define REDIS_URL_MAX_SEEDS 16 /* seed nodes of a redis-cluster:// URL */

/* Parsed form of a redis://, rediss://, redis-cluster:// or rediss-cluster:// URL. Pointers point
 * into `storage` inside the struct (valid as long as the struct; copy with redis_url_copy). */
struct redis_url {
    const char *host;     /* never NULL; "127.0.0.1" style or a name (resolved blocking!) */
    int port;             /* 1..65535, default 6379 */
    const char *user;     /* NULL unless given (Redis 6 ACL: AUTH user password) */
    const char *password; /* NULL unless given; %XX escapes decoded */
    int db;               /* 0 unless given */
    bool tls;             /* rediss://: the connection speaks TLS (redis-tls-* options) */
    bool cluster;         /* redis[s]-cluster://: seeds of a Redis Cluster (db is always 0) */
    int nseeds;           /* >= 1; seeds[0] is host/port */
    struct redis_url_seed {
        const char *host;
        int port;
    } seeds[REDIS_URL_MAX_SEEDS];
    char storage[1024];
};

/* Parses `url` (NUL-terminated): redis[s]://[[user]:password@]host[:port][/db], host an IPv6
 * literal in brackets or a name; rediss:// sets `tls` (same default port, 6379).
 * redis-cluster://[[user]:password@]host[:port][,host[:port]...][/] (rediss-cluster:// for TLS)
 * sets `cluster` and lists up to REDIS_URL_MAX_SEEDS seed nodes (DESIGN.md §2); a cluster has
 * only db 0, so a /db other than 0 is refused. Returns SIOC_OK, or SIOC_EINVAL (wrong scheme,
 * bad port or db, bad or NUL %-escape, query or fragment, an empty seed, too many seeds, longer
 * than the storage). */
int redis_url_parse(const char *url, struct redis_url *out);

/* *dst = *src with dst's pointers into dst's own storage. */
void redis_url_copy(struct redis_url *dst, const struct redis_url *src);

/* The URL of one node of the cluster `src` (its credentials and TLS, host:port, not a cluster):
 * what a cluster link connects each master with. Returns SIOC_OK or SIOC_EINVAL (host too long
 * or empty, port out of range). */
int redis_url_node(const struct redis_url *src, const char *host, int port, struct redis_url *out);

/* The largest size redis_command_encode may write for these argument lengths, or 0 when it
 * would not fit in a size_t. `argc` >= 1. */
size_t redis_command_bound(int argc, const size_t *lens);
/* Writes the RESP command "*<argc>\r\n" then "$<len>\r\n<bytes>\r\n" per argument at dst (at
 * least redis_command_bound bytes); returns the bytes written. */
size_t redis_command_encode(char *dst, int argc, const char *const *argv, const size_t *lens);

#endif
