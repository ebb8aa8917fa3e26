"""Broadcasts in the Socket.IO Redis adapter format, as ``@socket.io/redis-emitter`` 5.x sends them.

A message is the MessagePack array
``["emitter", {"type": 2, "data": [event, *args], "nsp": nsp},
{"rooms": [...], "flags": {...}, "except": [...]}]`` published on ``<key>#<nsp>#<room>#`` when it
targets exactly one room, else on ``<key>#<nsp>#`` (key: the adapter key, ``socket.io`` by
default). Gateways and Node socket.io servers of the cluster deliver it to their local sockets;
a socket id is also a room, so ``rooms=[sid]`` reaches one socket wherever it is connected.

With ``adapter="sharded"`` (the gateways' ``adapter sharded``, ``@socket.io/redis-adapter``'s
``createShardedAdapter``) a broadcast is the ClusterAdapter message ``{"type": 3, "data":
{"packet": {"type": 2, "data": [event, *args]}, "opts": {"rooms", "except", "flags"}}, "uid":
"emitter", "nsp": nsp}``, compact JSON (MessagePack when an argument is binary), SPUBLISHed on
``<key>#<nsp>#<room>#`` when it targets exactly one room and ``subscription_mode`` is
``dynamic`` (the room not 20 characters long: Node's socket-id rule) or ``dynamic-private``, else
on ``<key>#<nsp>#`` (docs/contracts.md "Sharded adapter").
"""

import json
import time

import redis as redis_lib
from redis.cluster import RedisCluster

from .protocol import pack

__all__ = ["EMITTER_UID", "ADAPTERS", "SUBSCRIPTION_MODES", "ShardChannel", "encode_broadcast",
           "encode_sharded", "encode_sharded_broadcast", "encode_sharded_sockets_leave",
           "sharded_channel", "check_adapter", "spublish", "encode_recoverable", "Recoverable",
           "RECOVERY_SCRIPT", "Emitter"]

EMITTER_UID = "emitter"  # the adapter uid redis-emitter writes; no node ignores it
_EVENT = 2               # Socket.IO packet type EVENT (binary args stay in MessagePack bin)
ADAPTERS = ("classic", "sharded")
SUBSCRIPTION_MODES = ("dynamic", "static", "dynamic-private")
_BROADCAST = 3      # ClusterAdapter message types (socket.io-adapter 2.5)
_SOCKETS_LEAVE = 5


class ShardChannel(str):
    """A channel name published with SPUBLISH (sharded pub/sub) rather than PUBLISH."""
    __slots__ = ()


def check_adapter(adapter, subscription_mode):
    """Validates the ``adapter`` / ``subscription_mode`` pair (the gateways' options)."""
    if adapter not in ADAPTERS:
        raise ValueError("adapter must be one of %s, not %r" % ("/".join(ADAPTERS), adapter))
    if subscription_mode not in SUBSCRIPTION_MODES:
        raise ValueError("subscription_mode must be one of %s, not %r"
                         % ("/".join(SUBSCRIPTION_MODES), subscription_mode))


def spublish(client, channel, data, attempts=20):
    """SPUBLISH through a redis-py client; returns the receivers' count. On a RedisCluster the
    command goes to the master of the channel's slot: redis-py 4.3 cannot route SPUBLISH itself
    (its parser knows no keys for it). A connection error or CLUSTERDOWN (a failover under way)
    is retried against the reloaded slot map every 250 ms, ``attempts`` times at most."""
    if not isinstance(client, RedisCluster):
        return client.execute_command("SPUBLISH", channel, data)
    for attempt in range(attempts):
        try:
            node = client.get_node_from_key(channel)
            return client.execute_command("SPUBLISH", channel, data, target_nodes=node)
        except (redis_lib.exceptions.ConnectionError, redis_lib.exceptions.TimeoutError,
                redis_lib.exceptions.ClusterDownError, redis_lib.exceptions.TryAgainError,
                redis_lib.exceptions.MasterDownError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)
            try:
                client.nodes_manager.initialize()  # the slot map after the failover
            except redis_lib.exceptions.RedisError:
                pass
    return 0


def _has_binary(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return True
    if isinstance(v, (list, tuple)):
        return any(_has_binary(x) for x in v)
    if isinstance(v, dict):
        return any(_has_binary(x) for x in v.values())
    return False


def encode_sharded(msg_type, nsp, data, uid=EMITTER_UID):
    """One ClusterAdapter message ``{type, data, uid, nsp}``: JSON, or MessagePack when a
    broadcast carries binary (Node's rule)."""
    msg = {"type": msg_type, "data": data, "uid": uid, "nsp": nsp}
    if msg_type == _BROADCAST and _has_binary(data):
        return pack(msg)
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def sharded_channel(key, nsp, mode, rooms=(), has_request=False):
    """The channel a sharded BROADCAST is published on (sharded-adapter.js computeChannel)."""
    if not has_request and len(rooms) == 1 and (
            mode == "dynamic-private" or (mode == "dynamic" and _utf16_len(rooms[0]) != 20)):
        return ShardChannel("%s#%s#%s#" % (key, nsp, rooms[0]))
    return ShardChannel("%s#%s#" % (key, nsp))


def encode_sharded_broadcast(nsp, event, args=(), rooms=(), except_rooms=(), flags=None,
                             key="socket.io", mode="dynamic"):
    """Returns ``(ShardChannel, message_bytes)`` for one broadcast in the sharded format."""
    if not isinstance(event, str):
        raise TypeError("event name must be a str")
    if not isinstance(nsp, str) or not nsp.startswith("/"):
        raise ValueError("namespace must start with '/'")
    rooms = list(dict.fromkeys(rooms))
    except_rooms = list(dict.fromkeys(except_rooms))
    data = {"packet": {"type": _EVENT, "data": [event] + list(args)},
            "opts": {"rooms": rooms, "except": except_rooms, "flags": dict(flags or {})}}
    return sharded_channel(key, nsp, mode, rooms), encode_sharded(_BROADCAST, nsp, data)


def encode_sharded_sockets_leave(nsp, room, key="socket.io"):
    """SOCKETS_LEAVE of every socket in ``room`` (socketsLeave), on the namespace channel."""
    data = {"opts": {"rooms": [room], "except": [], "flags": {}}, "rooms": [room]}
    return ShardChannel("%s#%s#" % (key, nsp)), encode_sharded(_SOCKETS_LEAVE, nsp, data)



def encode_broadcast(nsp, event, args=(), rooms=(), except_rooms=(), flags=None,
                     key="socket.io"):
    """Returns ``(channel, message_bytes)`` for one broadcast."""
    if not isinstance(event, str):
        raise TypeError("event name must be a str")
    if not isinstance(nsp, str) or not nsp.startswith("/"):
        raise ValueError("namespace must start with '/'")
    rooms = list(dict.fromkeys(rooms))  # unique, order kept (a JS Set)
    except_rooms = list(dict.fromkeys(except_rooms))
    msg = [EMITTER_UID,
           {"type": _EVENT, "data": [event] + list(args), "nsp": nsp},
           {"rooms": rooms, "flags": dict(flags or {}), "except": except_rooms}]
    channel = "%s#%s#" % (key, nsp)
    if len(rooms) == 1:
        channel += "%s#" % rooms[0]
    return channel, pack(msg)


class Emitter:
    """Publishes broadcasts through a redis-py client (usable without a Worker). When the
    gateways run with ``recovery-window`` (``<prefix>:rec:window`` exists, read at most every
    5 s) non-volatile broadcasts are stored for connection state recovery as they are published
    (docs/contracts.md), as ``Worker.emit`` does."""

    def __init__(self, redis_client, key="socket.io", prefix="sioc", adapter="classic",
                 subscription_mode="dynamic"):
        check_adapter(adapter, subscription_mode)
        self.redis = redis_client
        self.key = key
        self.prefix = prefix
        self.adapter = adapter
        self.subscription_mode = subscription_mode
        self._window = (0, 0.0)

    def _recovery_window(self):
        window, read_at = self._window
        now = time.monotonic()
        if read_at == 0 or now - read_at >= 5.0:
            raw = self.redis.get("%s:rec:window" % self.prefix)
            window = int(raw) if raw is not None and raw.isdigit() else 0
            self._window = (window, now)
        return window

    def emit(self, event, *args, rooms=(), except_rooms=(), namespace="/", volatile=False):
        """Publishes one broadcast; returns the number of subscribers Redis reported. With
        ``adapter="sharded"`` nothing is stored for recovery (as the broker's /v1/emit)."""
        flags = {"volatile": True} if volatile else None
        if self.adapter == "sharded":
            channel, data = encode_sharded_broadcast(namespace, event, args, rooms, except_rooms,
                                                     flags, self.key, self.subscription_mode)
            return spublish(self.redis, channel, data)
        window = 0 if volatile else self._recovery_window()
        if window > 0:
            rec = encode_recoverable(namespace, event, args, rooms, except_rooms, self.key,
                                     self.prefix)
            return self.redis.eval(RECOVERY_SCRIPT, 1, rec.stream, rec.channel, rec.pre, rec.post,
                                   RECOVERY_STREAM_MAXLEN, window + RECOVERY_GRACE_MS)
        channel, data = encode_broadcast(namespace, event, args, rooms, except_rooms, flags,
                                         self.key)
        return self.redis.publish(channel, data)


# Connection state recovery (docs/contracts.md "Connection state recovery, cluster-wide"): one
# call stores the broadcast in the namespace's stream and publishes it with the stream id as the
# last element of its data array (the offset clients keep). KEYS[1] = P:rec:<nsp>; ARGV =
# channel, pre, post, maxlen, pexpire.
RECOVERY_SCRIPT = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'a', ARGV[2], 'b', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local n = #id
local hdr
if n < 32 then hdr = string.char(160 + n) else hdr = string.char(217, n) end
return redis.call('PUBLISH', ARGV[1], ARGV[2] .. hdr .. id .. ARGV[3])
"""
RECOVERY_STREAM_MAXLEN = 100000  # gateway/recovery.h RECOVERY_STREAM_MAXLEN
RECOVERY_GRACE_MS = 5000


class Recoverable:
    """A broadcast to publish through RECOVERY_SCRIPT (``Worker._publish`` knows it)."""

    __slots__ = ("stream", "channel", "pre", "post")

    def __init__(self, stream, channel, pre, post):
        self.stream, self.channel, self.pre, self.post = stream, channel, pre, post


def _array_header(n):
    if n < 16:
        return bytes([0x90 | n])
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def encode_recoverable(nsp, event, args=(), rooms=(), except_rooms=(), key="socket.io",
                       prefix="sioc"):
    """The broadcast of :func:`encode_broadcast` (no flags: volatile ones are not stored) split
    around the place of its offset: returns a :class:`Recoverable`."""
    if not isinstance(event, str):
        raise TypeError("event name must be a str")
    if not isinstance(nsp, str) or not nsp.startswith("/"):
        raise ValueError("namespace must start with '/'")
    rooms = list(dict.fromkeys(rooms))
    except_rooms = list(dict.fromkeys(except_rooms))
    items = [event] + list(args)
    pre = (b"\x93" + pack(EMITTER_UID) + b"\x83" + pack("type") + pack(_EVENT) + pack("data")
           + _array_header(len(items) + 1) + b"".join(pack(x) for x in items))
    post = pack("nsp") + pack(nsp) + pack({"rooms": rooms, "flags": {}, "except": except_rooms})
    channel = "%s#%s#" % (key, nsp)
    if len(rooms) == 1:
        channel += "%s#" % rooms[0]
    return Recoverable("%s:rec:%s" % (prefix, nsp), channel, pre, post)
