"""Redis Cluster support of the worker SDK (docs/contracts.md "Redis Cluster"): seed URLs
``redis-cluster://host:port[,host:port...]`` (``rediss-cluster://`` for TLS) and the key layout a
cluster needs, the same as the C gateways and broker compute (common/redis_slots.c):

- every key and channel uses ``{P}`` where a single Redis uses ``P`` (``key-prefix``), so the
  registry, the mirror and the leases share one slot;
- the upstream stream of shard ``s`` of ``n`` is ``P:up:<nsp>:{<tag>}``, ``tag`` the first of
  ``"<s>.0"``, ``"<s>.1"``, ... whose slot lies in ``[s*16384/n, (s+1)*16384/n)``, so the shards
  spread over the masters.
"""

import urllib.parse

from redis.crc import key_slot

SLOTS = 16384


def is_cluster_url(url):
    return url.startswith("redis-cluster://") or url.startswith("rediss-cluster://")


def parse_cluster_url(url):
    """``(seeds, username, password, tls)`` of a cluster URL; ``seeds`` a list of (host, port).
    Raises ValueError as the C parser refuses (empty seed, bad port, a db other than 0)."""
    tls = url.startswith("rediss-cluster://")
    rest = url.split("://", 1)[1]
    if "?" in rest or "#" in rest:
        raise ValueError("no query options in a Redis URL: %r" % url)
    auth_end = rest.find("/")
    hosts, path = (rest, "") if auth_end < 0 else (rest[:auth_end], rest[auth_end + 1:])
    if path not in ("", "0"):
        raise ValueError("a Redis Cluster has only db 0: %r" % url)
    username = password = None
    if "@" in hosts:
        cred, hosts = hosts.rsplit("@", 1)
        if ":" not in cred:
            raise ValueError("credentials must be user:password@ or :password@")
        user, pw = cred.split(":", 1)
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(pw)
    seeds = []
    for part in hosts.split(","):
        if part.startswith("["):
            host, _, port = part[1:].partition("]")
            port = port[1:] if port.startswith(":") else ("" if not port else None)
        else:
            host, _, port = part.partition(":")
        if not host or port is None or (port and not port.isdigit()):
            raise ValueError("bad seed %r in %r" % (part, url))
        port = int(port) if port else 6379
        if not 1 <= port <= 65535:
            raise ValueError("bad port in %r" % url)
        seeds.append((host, port))
    return seeds, username, password, tls


def cluster_prefix(prefix):
    """``{P}``: the key prefix on a cluster."""
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError("key_prefix must not be empty or contain { or } on a Redis Cluster")
    return "{%s}" % prefix


def is_cluster_prefix(prefix):
    return len(prefix) >= 3 and prefix[0] == "{" and prefix[-1] == "}" and \
        "{" not in prefix[1:] and "}" not in prefix[:-1]


def spread_tag(shard, shards):
    """The hash tag of upstream shard ``shard`` of ``shards`` (redis_spread_tag in C)."""
    if not 0 <= shard < shards <= SLOTS:
        raise ValueError("shard %d of %d" % (shard, shards))
    lo, hi = shard * SLOTS // shards, (shard + 1) * SLOTS // shards
    k = 0
    while True:
        tag = "%d.%d" % (shard, k)
        if lo <= key_slot(tag.encode()) < hi:
            return tag
        k += 1
