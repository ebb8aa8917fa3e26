/* redis_slots.h: the pure parts of talking to a Redis Cluster (docs/contracts.md "Redis
 * Cluster"): the key slot (CRC16/XMODEM of the key or of its {hash tag}, mod 16384), the
 * MOVED/ASK redirection errors, which argument of a command sioc sends decides its node, the
 * slot map (slot -> master), and the slot-spreading hash tags of the upstream shard streams.
 * common/net/redis_cluster.c turns CLUSTER SLOTS replies into a map and does the I/O. */
#ifndef SIOC_COMMON_REDIS_SLOTS_H
#define SIOC_COMMON_REDIS_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_SLOTS 16384
#define REDIS_SLOT_MAP_MAX_NODES 128 /* masters one map can name */
#define REDIS_SLOT_HOST_MAX 256      /* bytes of a node's host, NUL included */

/* CRC16-CCITT (XMODEM: poly 0x1021, init 0), as Redis Cluster's keyHashSlot. */
uint16_t redis_crc16(const void *data, size_t len);

/* The slot of a key: when the key holds a '{' followed later by a '}' with at least one byte
 * between them, only those bytes (the first such tag) are hashed. Binary-safe. */
unsigned redis_key_slot(const void *key, size_t len);

enum redis_redirect_kind { REDIS_REDIRECT_NONE, REDIS_REDIRECT_MOVED, REDIS_REDIRECT_ASK };

struct redis_redirect {
    enum redis_redirect_kind kind;
    unsigned slot;
    char host[REDIS_SLOT_HOST_MAX]; /* "" when the node announced no address ("MOVED 1 :6379"):
                                     * the node that sent the error is meant */
    int port;
};

/* Parses an error reply's text: "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>"
 * (an IPv6 host is the part before the last ':'). Returns the kind; NONE for any other error or
 * a malformed one (slot >= 16384, port out of 1..65535, host too long). */
enum redis_redirect_kind redis_redirect_parse(const char *text, size_t len,
                                              struct redis_redirect *out);

/* Where a command goes on a cluster. */
enum redis_route_kind {
    REDIS_ROUTE_KEY,    /* to the master of the slot of argv[*index] (a key or a shard channel) */
    REDIS_ROUTE_HOME,   /* classic pub/sub: PUBLISH, PUBSUB CHANNELS/NUMSUB/NUMPAT: the "pub/sub
                         * home" master (the owner of slot 0), where classic subscribers are */
    REDIS_ROUTE_ANY,    /* keyless (PING, SCRIPT LOAD, EVALSHA with 0 keys, ...): any master */
    REDIS_ROUTE_REFUSE, /* cannot be routed as given: EVAL/EVALSHA with a bad key count */
};

/* The route of argv[0..argc) (lens[i] bytes each, binary-safe). Keyed: XADD XACK XAUTOCLAIM
 * XCLAIM XPENDING XINFO(sub key) XGROUP(sub key) XLEN XRANGE XREVRANGE XTRIM XDEL SET GET DEL
 * EXISTS EXPIRE PEXPIRE TTL PTTL INCR INCRBY HSET HGET HDEL HGETALL HMGET HINCRBY SADD SREM
 * SMEMBERS SCARD SISMEMBER LPUSH RPUSH LPOP LRANGE LTRIM LLEN, XREAD/XREADGROUP (the first
 * key after STREAMS), EVAL/EVALSHA/FCALL with numkeys > 0 (the first key), SPUBLISH and
 * PUBSUB SHARDNUMSUB/SHARDCHANNELS with a channel (its slot). Any other name with at least two
 * arguments is taken as keyed by argv[1]; a lone name is ANY. */
enum redis_route_kind redis_command_route(int argc, const char *const *argv, const size_t *lens,
                                          int *index);

/* slot -> master. Nodes are named by host:port; a slot no range names has no owner. */
struct redis_slot_map {
    uint8_t owner[REDIS_SLOTS]; /* index into nodes + 1; 0 = no owner */
    unsigned nnodes;
    struct redis_slot_node {
        char host[REDIS_SLOT_HOST_MAX];
        int port;
    } nodes[REDIS_SLOT_MAP_MAX_NODES];
};

/* Empties the map. */
void redis_slot_map_clear(struct redis_slot_map *map);

/* Assigns slots [first..last] to host:port (added to the node table when new). Returns the
 * node's index, or -1 (slot out of range, first > last, empty or too long host, bad port, node
 * table full): the map is then unchanged. */
int redis_slot_map_assign(struct redis_slot_map *map, unsigned first, unsigned last,
                          const char *host, int port);

/* The index of host:port in the table, or -1. */
int redis_slot_map_find(const struct redis_slot_map *map, const char *host, int port);

/* Number of slots with an owner (16384 when the cluster is fully covered). */
unsigned redis_slot_map_covered(const struct redis_slot_map *map);

/* The owner's index of `slot`, or -1. */
int redis_slot_map_owner(const struct redis_slot_map *map, unsigned slot);

/* Upstream shard streams on a cluster (DESIGN.md §3.2 as extended in docs/contracts.md): the
 * hash tag of shard `shard` of `nshards` (1..16384): the first of "<shard>.0", "<shard>.1", ...
 * whose slot lies in [shard*16384/nshards, (shard+1)*16384/nshards), so the shards' slots are
 * spread evenly over the slot space and, with masters owning even slot ranges (what
 * `redis-cli --cluster create` makes), land on different masters. Writes the NUL-terminated tag
 * (at most 16 bytes) to out; returns its length, or 0 for bad arguments or a too small buffer. */
size_t redis_spread_tag(unsigned shard, unsigned nshards, char *out, size_t outlen);

/* Key prefixes on a cluster (docs/contracts.md "Redis Cluster"): a process on a cluster uses
 * `{P}` wherever DESIGN.md §3 says P, so the registry, heartbeats, the mirror and the broker's
 * state share one slot (the broker's scripts touch them together); only the upstream streams
 * leave it (envelope_key_up_stream). Writes "{prefix}" to out; returns its length, or 0 when
 * prefix is empty, holds '{' or '}', or out is too small. */
size_t redis_cluster_prefix(const char *prefix, char *out, size_t outlen);

/* The key prefix a process uses with the Redis URL `url`: `prefix` itself for a single Redis,
 * "{prefix}" (written to buf) for a redis[s]-cluster:// URL. NULL when the prefix cannot be
 * used on a cluster (empty, or holds '{' or '}': say "key-prefix: must not contain { or } on a
 * Redis Cluster") or buf is too small. An invalid URL gives `prefix` (the URL is refused
 * elsewhere). */
const char *redis_key_prefix_for(const char *url, const char *prefix, char *buf, size_t buflen);

/* True for a prefix made by redis_cluster_prefix ("{...}"). */
bool redis_prefix_is_cluster(const char *prefix);

#endif
