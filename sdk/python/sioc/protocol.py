"""Encoders and decoders for the sioc Redis envelopes a worker reads and writes.

Pure functions, no Redis I/O. The contracts are DESIGN.md 3.2 (upstream entries) and 3.3
(directed replies), with the choices recorded in docs/contracts.md:

* Stream entries (``XREADGROUP``) are field/value byte strings: ``v`` is ``b"1"``; ``ts`` and
  ``ack`` are canonical decimal text (digits only, no sign, no leading zero, < 2**64); ``args``,
  ``auth`` and ``hs`` are MessagePack (``args`` an array, ``hs`` a map).
* Upstream pubsub messages are one MessagePack map with the same keys; there ``v``, ``ts`` and
  ``ack`` are MessagePack integers.
* Replies on ``P:node:<node>`` are one MessagePack map each, keys in the fixed order
  ``t, nsp, sid, ack{id,args}, emit, join, leave, disconnect`` or
  ``t, rid, ok, uid, rooms, data, error{message,data}``; absent optionals are left out.

Anything that breaks these rules raises :class:`ProtocolError`; an entry from a newer peer
(unknown ``v`` or ``type``) raises its subclass :class:`UnsupportedError`. Unknown fields are
ignored (forward compatibility).
"""

import msgpack

from .cluster_keys import is_cluster_prefix, spread_tag

__all__ = [
    "ProtocolError", "UnsupportedError", "Entry", "Reply", "ABSENT",
    "decode_stream_entry", "decode_pubsub_entry", "encode_connect_reply",
    "stream_key", "pubsub_channel", "node_channel", "shard_of", "pack", "unpack",
    "MAX_LIST",
]

MAX_LIST = 1024  # items in one reply's emit, join, leave or rooms list (docs/contracts.md)
_U64_MAX = 2 ** 64 - 1
_TYPES = ("connect", "event", "disconnect")


class ProtocolError(ValueError):
    """An upstream entry or message that does not follow the contract (skip it)."""


class UnsupportedError(ProtocolError):
    """An entry with an unknown version or type, written by a newer peer (skip it)."""


def pack(value):
    """MessagePack as sioc writes it: str as str, bytes as bin, floats as float64."""
    return msgpack.packb(value, use_bin_type=True)


def unpack(data):
    """Decodes exactly one MessagePack value (trailing bytes are an error)."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as exc:
        raise ProtocolError("bad MessagePack: %s" % exc) from None


# ---- key names and sharding ----

def stream_key(prefix, nsp, shard, shards=None):
    """``P:up:<nsp>:<shard>``, the upstream stream of one shard of a namespace; on a Redis
    Cluster (prefix ``{P}``) ``P:up:<nsp>:{<tag>}`` (cluster_keys.spread_tag of ``shards``)."""
    if is_cluster_prefix(prefix):
        if shards is None:
            raise ValueError("a cluster stream key needs the number of shards")
        return "%s:up:%s:{%s}" % (prefix[1:-1], nsp, spread_tag(shard, shards))
    return "%s:up:%s:%d" % (prefix, nsp, shard)


def pubsub_channel(prefix, nsp):
    """``P:up:<nsp>``, the upstream channel in ``upstream pubsub`` mode."""
    return "%s:up:%s" % (prefix, nsp)


def node_channel(prefix, node):
    """``P:node:<node>``, where a gateway node listens for directed replies."""
    return "%s:node:%s" % (prefix, node)


def shard_of(sid, shards):
    """The gateway's shard choice: ``fnv1a32(sid) % shards``."""
    h = 0x811C9DC5
    for b in sid.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h % shards


# ---- upstream entries ----

class Entry:
    """One decoded upstream entry. ``id`` is the stream id (``None`` in pubsub mode)."""

    __slots__ = ("id", "type", "nsp", "sid", "node", "uid", "ts", "event", "args", "ack",
                 "auth", "hs", "rid", "reason", "recovered")

    def __init__(self, **kw):
        for name in self.__slots__:
            setattr(self, name, kw.get(name))

    def __repr__(self):
        return "Entry(%s)" % ", ".join(
            "%s=%r" % (n, getattr(self, n)) for n in self.__slots__
            if getattr(self, n) is not None)


def _decimal(raw, name):
    if not isinstance(raw, bytes) or not raw or not raw.isdigit() or len(raw) > 20 \
            or (raw[0:1] == b"0" and len(raw) > 1):
        raise ProtocolError("%s is not canonical decimal text: %r" % (name, raw))
    value = int(raw)
    if value > _U64_MAX:
        raise ProtocolError("%s overflows u64" % name)
    return value


def _text(raw, name):
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except (UnicodeDecodeError, AttributeError):
        raise ProtocolError("%s is not UTF-8 text" % name) from None


def _check(e):
    """Checks the contract rules shared by both upstream forms; returns e."""
    if not e.nsp.startswith("/"):
        raise ProtocolError("nsp does not start with '/': %r" % e.nsp)
    if not e.sid or not e.node:
        raise ProtocolError("empty sid or node")
    if e.type == "event":
        if not isinstance(e.args, list):
            raise ProtocolError("args is not an array")
    elif e.type == "connect":
        if e.hs is not None and not isinstance(e.hs, dict):
            raise ProtocolError("hs is not a map")
        if e.rid is not None and not e.rid:
            raise ProtocolError("empty rid")
    return e


def _need(fields, name):
    if name not in fields:
        raise ProtocolError("missing field %r" % name)
    return fields[name]


def decode_stream_entry(entry_id, fields):
    """Decodes one stream entry as redis-py returns it (``{b"field": b"value"}``)."""
    if not isinstance(fields, dict):
        raise ProtocolError("entry has no fields (trimmed?)")
    f = {}
    for k, v in fields.items():
        if isinstance(k, str):
            k = k.encode("utf-8")
        if isinstance(v, str):
            v = v.encode("utf-8")
        f[k] = v
    if _need(f, b"v") != b"1":
        raise UnsupportedError("unknown version %r" % f[b"v"])
    etype = _text(_need(f, b"type"), "type")
    if etype not in _TYPES:
        raise UnsupportedError("unknown type %r" % etype)
    e = Entry(id=_text(entry_id, "id"), type=etype,
              nsp=_text(_need(f, b"nsp"), "nsp"), sid=_text(_need(f, b"sid"), "sid"),
              node=_text(_need(f, b"node"), "node"), uid=_text(_need(f, b"uid"), "uid"),
              ts=_decimal(_need(f, b"ts"), "ts"))
    if etype == "event":
        e.event = _text(_need(f, b"event"), "event")
        e.args = unpack(_need(f, b"args"))
        if b"ack" in f:
            e.ack = _decimal(f[b"ack"], "ack")
    elif etype == "connect":
        e.auth = unpack(_need(f, b"auth"))
        e.hs = unpack(_need(f, b"hs"))
        if b"rid" in f:
            e.rid = _text(f[b"rid"], "rid")
        e.recovered = f.get(b"recovered") == b"1"
    else:
        e.reason = _text(_need(f, b"reason"), "reason")
    return _check(e)


def _int_field(m, name, required):
    if name not in m:
        if required:
            raise ProtocolError("missing key %r" % name)
        return None
    v = m[name]
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _U64_MAX:
        raise ProtocolError("%s is not a u64 integer" % name)
    return v


def _str_field(m, name, required=True):
    if name not in m:
        if required:
            raise ProtocolError("missing key %r" % name)
        return None
    if not isinstance(m[name], str):
        raise ProtocolError("%s is not a string" % name)
    return m[name]


def decode_pubsub_entry(data):
    """Decodes one upstream pubsub message (a MessagePack map; v, ts, ack as integers)."""
    m = unpack(data)
    if not isinstance(m, dict):
        raise ProtocolError("message is not a map")
    if "v" not in m:
        raise ProtocolError("missing key 'v'")
    if m["v"] != 1 or isinstance(m["v"], bool):
        raise UnsupportedError("unknown version %r" % (m["v"],))
    etype = _str_field(m, "type")
    if etype not in _TYPES:
        raise UnsupportedError("unknown type %r" % etype)
    e = Entry(type=etype, nsp=_str_field(m, "nsp"), sid=_str_field(m, "sid"),
              node=_str_field(m, "node"), uid=_str_field(m, "uid"),
              ts=_int_field(m, "ts", True))
    if etype == "event":
        e.event = _str_field(m, "event")
        if "args" not in m:
            raise ProtocolError("missing key 'args'")
        e.args = m["args"]
        e.ack = _int_field(m, "ack", False)
    elif etype == "connect":
        if "auth" not in m or "hs" not in m:
            raise ProtocolError("missing key 'auth' or 'hs'")
        e.auth, e.hs = m["auth"], m["hs"]
        e.rid = _str_field(m, "rid", required=False)
        e.recovered = m.get("recovered") == 1
    else:
        e.reason = _str_field(m, "reason")
    return _check(e)


# ---- replies ----

class Reply:
    """A ``{"t":"reply"}`` message being accumulated for one socket.

    The gateway applies it in the order join, leave, ack, emit, disconnect, whatever order the
    handler called things in.
    """

    __slots__ = ("nsp", "sid", "ack", "emit", "join", "leave", "disconnect")

    def __init__(self, nsp, sid):
        self.nsp = nsp
        self.sid = sid
        self.ack = None      # (id, [args]) or None
        self.emit = []       # [[event, arg, ...], ...]
        self.join = []
        self.leave = []
        self.disconnect = False

    def empty(self):
        return (self.ack is None and not self.emit and not self.join and not self.leave
                and not self.disconnect)

    def _map(self, ack, emit, join, leave, disconnect):
        m = {"t": "reply", "nsp": self.nsp, "sid": self.sid}
        if ack is not None:
            m["ack"] = {"id": ack[0], "args": list(ack[1])}
        if emit:
            m["emit"] = emit
        if join:
            m["join"] = join
        if leave:
            m["leave"] = leave
        if disconnect:
            m["disconnect"] = True
        return pack(m)

    def encode(self):
        """Returns the list of messages to publish (``[]`` when empty).

        Normally one message. Lists longer than the 1024-item limit are split over several
        messages that keep the gateway's order: join chunks, leave chunks, then ack and emit,
        disconnect in the last one.
        """
        if self.empty():
            return []
        if max(len(self.emit), len(self.join), len(self.leave)) <= MAX_LIST:
            return [self._map(self.ack, self.emit, self.join, self.leave, self.disconnect)]
        out = []
        n = MAX_LIST
        for i in range(0, len(self.join), n):
            out.append(self._map(None, None, self.join[i:i + n], None, False))
        for i in range(0, len(self.leave), n):
            out.append(self._map(None, None, None, self.leave[i:i + n], False))
        chunks = [self.emit[i:i + n] for i in range(0, len(self.emit), n)] or [[]]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            out.append(self._map(self.ack if i == 0 else None, chunk, None, None,
                                 self.disconnect and last))
        return out


ABSENT = object()  # "leave this optional key out" (None would be encoded as nil)


def encode_call(nsp, sid, call_id, channel, event, args):
    """A reply that asks the gateway to emit ``event`` to one socket with an ack id and publish
    the client's answer on ``channel`` (docs/contracts.md "Calls")."""
    return pack({"t": "reply", "nsp": nsp, "sid": sid,
                 "call": {"id": call_id, "to": channel, "emit": [event] + list(args)}})


def decode_call_result(data):
    """``{"t":"ack","id","nsp","sid","args"|"error"}`` → (id, args list or None, error or None).
    Raises ProtocolError for anything else."""
    m = unpack(data)
    if not isinstance(m, dict) or m.get("t") != "ack" or not isinstance(m.get("id"), str):
        raise ProtocolError("not a call result")
    if isinstance(m.get("args"), list):
        return m["id"], m["args"], None
    return m["id"], None, str(m.get("error") or "call failed")


def encode_connect_reply(rid, ok, uid=None, rooms=None, data=ABSENT, error=None):
    """The answer to a connect entry that carried ``rid`` (auth ``backend``).

    ``error`` is ``None`` or ``(message, data)`` where data may be left out
    (pass a 1-tuple ``(message,)``). Keys: t, rid, ok, uid, rooms, data, error{message,data}.
    """
    m = {"t": "connect", "rid": rid, "ok": bool(ok)}
    if uid is not None:
        m["uid"] = uid
    if rooms:
        if len(rooms) > MAX_LIST:
            raise ValueError("more than %d rooms in a connect reply" % MAX_LIST)
        m["rooms"] = list(rooms)
    if data is not ABSENT:
        m["data"] = data
    if error is not None:
        err = {"message": str(error[0])}
        if len(error) > 1:
            err["data"] = error[1]
        m["error"] = err
    return pack(m)
