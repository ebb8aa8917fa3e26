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
           "sharded_channel", "check_adapter", "spublish", "Emitter"]

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
    """Publishes broadcasts through a redis-py client (usable without a Worker)."""

    def __init__(self, redis_client, key="socket.io", adapter="classic",
                 subscription_mode="dynamic"):
        check_adapter(adapter, subscription_mode)
        self.redis = redis_client
        self.key = key
        self.adapter = adapter
        self.subscription_mode = subscription_mode

    def emit(self, event, *args, rooms=(), except_rooms=(), namespace="/", volatile=False):
        """Publishes one broadcast; returns the number of subscribers Redis reported."""
        flags = {"volatile": True} if volatile else None
        if self.adapter == "sharded":
            channel, data = encode_sharded_broadcast(namespace, event, args, rooms, except_rooms,
                                                     flags, self.key, self.subscription_mode)
            return spublish(self.redis, channel, data)
        channel, data = encode_broadcast(namespace, event, args, rooms, except_rooms, flags,
                                         self.key)
        return self.redis.publish(channel, data)
