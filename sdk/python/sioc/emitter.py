"""Broadcasts in the Socket.IO Redis adapter format, as ``@socket.io/redis-emitter`` 5.x sends them.

A message is the MessagePack array
``["emitter", {"type": 2, "data": [event, *args], "nsp": nsp},
{"rooms": [...], "flags": {...}, "except": [...]}]`` published on ``<key>#<nsp>#<room>#`` when it
targets exactly one room, else on ``<key>#<nsp>#`` (key: the adapter key, ``socket.io`` by
default). Gateways and Node socket.io servers of the cluster deliver it to their local sockets;
a socket id is also a room, so ``rooms=[sid]`` reaches one socket wherever it is connected.
"""

from .protocol import pack

__all__ = ["EMITTER_UID", "encode_broadcast", "Emitter"]

EMITTER_UID = "emitter"  # the adapter uid redis-emitter writes; no node ignores it
_EVENT = 2               # Socket.IO packet type EVENT (binary args stay in MessagePack bin)


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

    def __init__(self, redis_client, key="socket.io"):
        self.redis = redis_client
        self.key = key

    def emit(self, event, *args, rooms=(), except_rooms=(), namespace="/", volatile=False):
        """Publishes one broadcast; returns the number of subscribers Redis reported."""
        channel, data = encode_broadcast(namespace, event, args, rooms, except_rooms,
                                         {"volatile": True} if volatile else None, self.key)
        return self.redis.publish(channel, data)
