"""Broadcasts in the Socket.IO Redis adapter format, as ``@socket.io/redis-emitter`` 5.x sends them.

A message is the MessagePack array
``["emitter", {"type": 2, "data": [event, *args], "nsp": nsp},
{"rooms": [...], "flags": {...}, "except": [...]}]`` published on ``<key>#<nsp>#<room>#`` when it
targets exactly one room, else on ``<key>#<nsp>#`` (key: the adapter key, ``socket.io`` by
default). Gateways and Node socket.io servers of the cluster deliver it to their local sockets;
a socket id is also a room, so ``rooms=[sid]`` reaches one socket wherever it is connected.
"""

import time

from .protocol import pack

__all__ = ["EMITTER_UID", "encode_broadcast", "encode_recoverable", "Recoverable",
           "RECOVERY_SCRIPT", "Emitter"]

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
    """Publishes broadcasts through a redis-py client (usable without a Worker). When the
    gateways run with ``recovery-window`` (``<prefix>:rec:window`` exists, read at most every
    5 s) non-volatile broadcasts are stored for connection state recovery as they are published
    (docs/contracts.md), as ``Worker.emit`` does."""

    def __init__(self, redis_client, key="socket.io", prefix="sioc"):
        self.redis = redis_client
        self.key = key
        self.prefix = prefix
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
        """Publishes one broadcast; returns the number of subscribers Redis reported."""
        window = 0 if volatile else self._recovery_window()
        if window > 0:
            rec = encode_recoverable(namespace, event, args, rooms, except_rooms, self.key,
                                     self.prefix)
            return self.redis.eval(RECOVERY_SCRIPT, 1, rec.stream, rec.channel, rec.pre, rec.post,
                                   RECOVERY_STREAM_MAXLEN, window + RECOVERY_GRACE_MS)
        channel, data = encode_broadcast(namespace, event, args, rooms, except_rooms,
                                         {"volatile": True} if volatile else None, self.key)
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
