/* redis_slots.c: key slots, redirections, routes and the slot map of redis_slots.h. */
#include "common/redis_slots.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "common/redis_proto.h"

uint16_t redis_crc16(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned redis_key_slot(const void *key, size_t len)
{
    const char *k = key;
    const char *open = memchr(k, '{', len);
    if (open != NULL) {
        size_t after = (size_t)(open - k) + 1;
        const char *close = memchr(open + 1, '}', len - after);
        if (close != NULL && close > open + 1)
            return redis_crc16(open + 1, (size_t)(close - open - 1)) & (REDIS_SLOTS - 1);
    }
    return redis_crc16(k, len) & (REDIS_SLOTS - 1);
}

/* Parses a decimal spanning exactly s[0..n) into [0, max]. */
static bool parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

enum redis_redirect_kind redis_redirect_parse(const char *text, size_t len,
                                              struct redis_redirect *out)
{
    memset(out, 0, sizeof(*out));
    enum redis_redirect_kind kind;
    size_t skip;
    if (len > 6 && memcmp(text, "MOVED ", 6) == 0) {
        kind = REDIS_REDIRECT_MOVED;
        skip = 6;
    } else if (len > 4 && memcmp(text, "ASK ", 4) == 0) {
        kind = REDIS_REDIRECT_ASK;
        skip = 4;
    } else {
        return REDIS_REDIRECT_NONE;
    }
    const char *p = text + skip, *end = text + len;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    unsigned long slot, port;
    if (sp == NULL || !parse_uint(p, (size_t)(sp - p), REDIS_SLOTS - 1, &slot))
        return REDIS_REDIRECT_NONE;
    const char *addr = sp + 1, *colon = NULL;
    for (const char *q = addr; q < end; q++)
        if (*q == ':')
            colon = q;
    size_t hostlen = colon != NULL ? (size_t)(colon - addr) : 0;
    if (colon == NULL || hostlen >= sizeof(out->host) || memchr(addr, '\0', hostlen) != NULL ||
        !parse_uint(colon + 1, (size_t)(end - colon - 1), 65535, &port) || port == 0)
        return REDIS_REDIRECT_NONE;
    memcpy(out->host, addr, hostlen);
    out->host[hostlen] = '\0';
    out->kind = kind;
    out->slot = (unsigned)slot;
    out->port = (int)port;
    return kind;
}

/* ---- routes ---- */

static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static bool name_in(const char *s, size_t n, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (name_is(s, n, names[i]))
            return true;
    return false;
}

/* EVAL script numkeys key... : the first key, if any. */
static enum redis_route_kind route_script(int argc, const char *const *argv, const size_t *lens,
                                          int *index)
{
    unsigned long numkeys;
    if (argc < 3 || !parse_uint(argv[2], lens[2], 1000000, &numkeys) ||
        numkeys > (unsigned long)(argc - 3))
        return REDIS_ROUTE_REFUSE;
    if (numkeys == 0)
        return REDIS_ROUTE_ANY;
    *index = 3;
    return REDIS_ROUTE_KEY;
}

/* XREAD/XREADGROUP ... STREAMS key... id...: the first key. */
static enum redis_route_kind route_streams(int argc, const char *const *argv, const size_t *lens,
                                           int *index)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (name_is(argv[i], lens[i], "STREAMS")) {
            *index = i + 1;
            return REDIS_ROUTE_KEY;
        }
    }
    return REDIS_ROUTE_ANY; /* Redis answers the syntax error */
}

enum redis_route_kind redis_command_route(int argc, const char *const *argv, const size_t *lens,
                                          int *index)
{
    static const char *const keyless[] = {
        "PING",  "SCRIPT",  "CLUSTER", "INFO",  "TIME",     "ASKING", "READONLY", "FUNCTION",
        "HELLO", "COMMAND", "CONFIG",  "DEBUG", "FLUSHALL", "DBSIZE", "ECHO",     NULL};
    static const char *const subkeyed[] = {"XINFO", "XGROUP", "OBJECT", "MEMORY", NULL};
    *index = 0;
    if (argc < 1)
        return REDIS_ROUTE_REFUSE;
    const char *name = argv[0];
    size_t n = lens[0];
    if (name_is(name, n, "EVAL") || name_is(name, n, "EVALSHA") || name_is(name, n, "FCALL") ||
        name_is(name, n, "EVAL_RO") || name_is(name, n, "EVALSHA_RO") ||
        name_is(name, n, "FCALL_RO"))
        return route_script(argc, argv, lens, index);
    if (name_is(name, n, "XREAD") || name_is(name, n, "XREADGROUP"))
        return route_streams(argc, argv, lens, index);
    if (name_is(name, n, "PUBLISH"))
        return REDIS_ROUTE_HOME;
    if (name_is(name, n, "PUBSUB")) {
        bool sharded = argc >= 3 && (name_is(argv[1], lens[1], "SHARDNUMSUB") ||
                                     name_is(argv[1], lens[1], "SHARDCHANNELS"));
        if (!sharded)
            return REDIS_ROUTE_HOME;
        *index = 2;
        return REDIS_ROUTE_KEY;
    }
    if (name_in(name, n, keyless) || argc < 2)
        return REDIS_ROUTE_ANY;
    if (name_in(name, n, subkeyed)) {
        if (argc < 3)
            return REDIS_ROUTE_ANY;
        *index = 2;
        return REDIS_ROUTE_KEY;
    }
    *index = 1; /* XADD, SET, HSET, SADD, SPUBLISH, ...: the key (or shard channel) comes first */
    return REDIS_ROUTE_KEY;
}

/* ---- slot map ---- */

void redis_slot_map_clear(struct redis_slot_map *map)
{
    memset(map->owner, 0, sizeof(map->owner));
    map->nnodes = 0;
}

int redis_slot_map_find(const struct redis_slot_map *map, const char *host, int port)
{
    for (unsigned i = 0; i < map->nnodes; i++)
        if (map->nodes[i].port == port && strcmp(map->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

int redis_slot_map_assign(struct redis_slot_map *map, unsigned first, unsigned last,
                          const char *host, int port)
{
    if (first > last || last >= REDIS_SLOTS || host == NULL || host[0] == '\0' || port < 1 ||
        port > 65535 || strlen(host) >= REDIS_SLOT_HOST_MAX)
        return -1;
    int idx = redis_slot_map_find(map, host, port);
    if (idx < 0) {
        if (map->nnodes == REDIS_SLOT_MAP_MAX_NODES)
            return -1;
        idx = (int)map->nnodes++;
        snprintf(map->nodes[idx].host, sizeof(map->nodes[idx].host), "%s", host);
        map->nodes[idx].port = port;
    }
    memset(map->owner + first, idx + 1, last - first + 1);
    return idx;
}

unsigned redis_slot_map_covered(const struct redis_slot_map *map)
{
    unsigned n = 0;
    for (unsigned s = 0; s < REDIS_SLOTS; s++)
        n += map->owner[s] != 0;
    return n;
}

int redis_slot_map_owner(const struct redis_slot_map *map, unsigned slot)
{
    return slot < REDIS_SLOTS ? (int)map->owner[slot] - 1 : -1;
}

/* ---- upstream spread tags ---- */

size_t redis_spread_tag(unsigned shard, unsigned nshards, char *out, size_t outlen)
{
    if (nshards == 0 || nshards > REDIS_SLOTS || shard >= nshards || outlen < 17)
        return 0;
    unsigned lo = (unsigned)((unsigned long)shard * REDIS_SLOTS / nshards);
    unsigned hi = (unsigned)((unsigned long)(shard + 1) * REDIS_SLOTS / nshards);
    /* Each candidate hits the range with probability (hi-lo)/16384 >= 1/nshards; CRC16 over
     * distinct short strings covers every slot well within this bound. */
    for (unsigned k = 0; k < 1u << 20; k++) {
        int n = snprintf(out, outlen, "%u.%u", shard, k);
        unsigned slot = redis_key_slot(out, (size_t)n);
        if (slot >= lo && slot < hi)
            return (size_t)n;
    }
    out[0] = '\0';
    return 0;
}

/* ---- cluster key prefixes ---- */

size_t redis_cluster_prefix(const char *prefix, char *out, size_t outlen)
{
    size_t n = strlen(prefix);
    if (n == 0 || strpbrk(prefix, "{}") != NULL || n + 3 > outlen)
        return 0;
    out[0] = '{';
    memcpy(out + 1, prefix, n);
    out[n + 1] = '}';
    out[n + 2] = '\0';
    return n + 2;
}

bool redis_prefix_is_cluster(const char *prefix)
{
    size_t n = strlen(prefix);
    return n >= 3 && prefix[0] == '{' && prefix[n - 1] == '}' && strpbrk(prefix + 1, "{") == NULL &&
           memchr(prefix, '}', n - 1) == NULL;
}

const char *redis_key_prefix_for(const char *url, const char *prefix, char *buf, size_t buflen)
{
    struct redis_url u;
    if (url == NULL || redis_url_parse(url, &u) != SIOC_OK || !u.cluster)
        return prefix;
    return redis_cluster_prefix(prefix, buf, buflen) != 0 ? buf : NULL;
}
