"""The Worker: consumes upstream entries, runs the application's handlers, publishes replies.

Delivery (``upstream='stream'``, the default): the worker joins consumer group ``group`` on every
``P:up:<nsp>:<shard>`` stream (created with MKSTREAM if missing) and reads with XREADGROUP. For
each entry it runs the handler, publishes what is left to publish (the ack) and only then XACKs
the entry. This is **at-least-once**: a worker that dies or loses Redis between reading and XACK
leaves the entry pending; it is read again by the same consumer name (pending entries are
replayed first at start and after a reconnect) or taken over by the next process that leases its
stream. A handler can thus run twice for one entry; ``worker.request.id`` (the stream id) is the
idempotency key. A handler that raises, and a malformed entry, are logged and acknowledged (never
retried, never fatal).

Concurrency and order: handlers run on a pool of ``pool_size`` threads. The events of one socket
are handled one at a time, in the order the client sent them (pool.KeyedPool); events of
different sockets run concurrently, so a handler that blocks delays only its own socket. Across
processes of one group, each stream is leased to one process at a time (leases.ShardLeases) and
every event of a socket is in one stream, so the order holds there too; the gateways'
``upstream-shards`` (and ``shards`` here) is how many processes can share the work.

The group defaults to ``sioc-<name>``, ``name`` being the application's name (by default the
file name of the program that runs): two different applications on one Redis never take each
other's events; two processes of one application share them.

With ``upstream='pubsub'`` the worker SUBSCRIBEs ``P:up:<nsp>`` instead: at-most-once, no acks,
and every worker subscribed receives every entry.

Effects of a handler: in an event handler, ``emit``/``send`` to the sender, ``join_room``,
``leave_room``, ``disconnect`` and broadcasts are published when called, in call order (as
Flask-SocketIO does); the return value (the ack) goes last. In a ``connect`` handler they wait
for the handler's answer (the socket is not connected before it), and go right after it.
"""

import contextvars
import inspect
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict

import redis as redis_lib
from redis.cluster import RedisCluster

from . import protocol
from .calls import Calls, CallError, CallTimeout
from .emitter import (RECOVERY_GRACE_MS, RECOVERY_SCRIPT, RECOVERY_STREAM_MAXLEN, Recoverable,
                      ShardChannel, check_adapter, encode_broadcast, encode_recoverable,
                      encode_sharded_broadcast, encode_sharded_sockets_leave, spublish)
from .exceptions import is_refusal
from .leases import ShardLeases
from .cluster_keys import cluster_prefix
from .pool import KeyedPool
from .redis_tls import client_from_url
from .protocol import ProtocolError, Reply, UnsupportedError

__all__ = ["Worker", "Request"]

_SID_CACHE_MAX = 100000
CLUSTER_POLL_MS = 20  # a worker reading several streams on a Redis Cluster polls them this often
MAX_CALL_SOCKETS = 10000  # sockets one call() to rooms may ask (as the broker's ack emits)
_SOCKETS_LEAVE = 3  # @socket.io/redis-adapter request type REMOTE_LEAVE
_NOTHING = protocol.ABSENT


class Request:
    """What a handler may want to know about the entry it handles (``worker.request``)."""

    __slots__ = ("id", "type", "sid", "namespace", "uid", "node", "ts", "event", "args",
                 "auth", "handshake", "rid", "reason")

    def __init__(self, entry):
        self.id = entry.id            # stream id (idempotency key); None in pubsub mode
        self.type = entry.type        # 'connect' | 'event' | 'disconnect'
        self.sid = entry.sid
        self.namespace = entry.nsp
        self.uid = entry.uid          # '' when anonymous
        self.node = entry.node
        self.ts = entry.ts            # ms since the epoch, set by the gateway
        self.event = entry.event
        self.args = entry.args
        self.auth = entry.auth
        self.handshake = entry.hs     # address, headers, query, url, time, secure
        self.rid = entry.rid
        self.reason = entry.reason


class _Context:
    """What the handler of one entry has done so far.

    ``publish``: set for event entries handled by the consuming loop, whose effects are
    published when called; otherwise (connect handlers, :meth:`Worker.dispatch` alone) the
    sender's effects accumulate in ``reply`` and everything else in ``outbox``.
    """

    def __init__(self, entry, publish=None):
        self.entry = entry
        self.request = Request(entry)
        self.reply = Reply(entry.nsp, entry.sid)
        self.can_reply = entry.type != "disconnect"  # the socket is gone after a disconnect
        self.publish = publish if entry.type == "event" else None
        self.outbox = []  # (channel, bytes) published after the reply, in call order
        self.after = []   # after_reply() callbacks: run once the messages are published

    def owns(self, sid, nsp):
        return sid == self.entry.sid and nsp == self.entry.nsp


def _positional(fn):
    """(number of positional parameters, name of the second one); many for *args."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 3, None
    params = []
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return 99, None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            params.append(p.name)
    return len(params), (params[1] if len(params) > 1 else None)


def _ack_args(result):
    """Return value → ack arguments: None → [], tuple → its items, anything else → [it]."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


def _ack_value(args):
    """Ack arguments → what call() returns: None for none, the value for one, else a tuple."""
    if not args:
        return None
    return args[0] if len(args) == 1 else tuple(args)


def _refusal(exc):
    """(message[, data]) from a ConnectionRefusedError, as python-socketio reads its args."""
    error_args = getattr(exc, "error_args", None)  # python-socketio's: {"message"[, "data"]}
    if isinstance(error_args, dict) and "message" in error_args:
        if "data" in error_args:
            return (str(error_args["message"]), error_args["data"])
        return (str(error_args["message"]),)
    args = exc.args
    if not args:
        return ("Connection rejected by server",)
    if len(args) == 1:
        return (str(args[0]),)
    if len(args) == 2:
        return (str(args[0]), args[1])
    return (str(args[0]), list(args[1:]))


def default_name():
    """The application's name: the running program's file name without its extension."""
    main = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else "app"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.splitext(os.path.basename(main))[0])
    return stem.strip("-.") if stem.strip("-.") not in ("", "__main__") else "app"


def _rooms(target):
    if isinstance(target, (list, tuple, set, frozenset)):
        return list(target)
    return [target]


class Worker:
    """A backend worker of a sioc cluster (see the module docstring for the semantics).

    ``namespaces`` and ``shards`` must match the gateways' ``namespaces`` and
    ``upstream-shards``; ``key_prefix``, ``adapter_key``, ``adapter`` and ``subscription_mode``
    their ``key-prefix``, ``adapter-key``, ``adapter`` and ``subscription-mode`` (defaults: the
    gateways' ``SIOC_ADAPTER`` / ``SIOC_SUBSCRIPTION_MODE``, else ``classic`` / ``dynamic``):
    with ``adapter="sharded"`` broadcasts are SPUBLISHed in the sharded adapter's format. ``consumer`` defaults to ``<hostname>-<pid>``; ``group`` to
    ``sioc-<name>`` (``name``: the program's file name). ``pool_size`` threads run handlers;
    ``lease_ms`` bounds how long a stream stays with a process that stopped renewing its lease.
    """

    def __init__(self, redis_url=None, key_prefix="sioc", namespaces=("/",),
                 shards=None, group=None, consumer=None, *, name=None, pool_size=8,
                 upstream="stream", adapter_key="socket.io", count=64, block_ms=1000,
                 lease_ms=10000, start_id="0", client=None, logger=None,
                 redis_tls_ca=None, redis_tls_cert=None, redis_tls_key=None,
                 redis_tls_server_name=None, redis_tls_insecure=None, adapter=None,
                 subscription_mode=None):
        adapter = adapter or os.environ.get("SIOC_ADAPTER") or "classic"
        subscription_mode = (subscription_mode or os.environ.get("SIOC_SUBSCRIPTION_MODE")
                             or "dynamic")
        check_adapter(adapter, subscription_mode)
        if upstream not in ("stream", "pubsub"):
            raise ValueError("upstream must be 'stream' or 'pubsub'")
        if isinstance(namespaces, str):
            namespaces = [n for n in namespaces.split(",") if n]
        namespaces = list(dict.fromkeys(namespaces))
        for nsp in namespaces:
            if not nsp.startswith("/"):
                raise ValueError("namespace %r does not start with '/'" % nsp)
        redis_url = redis_url or os.environ.get("SIOC_REDIS_URL") or "redis://127.0.0.1:6379"
        if shards is None:  # the gateways' own variable for upstream-shards
            shards = os.environ.get("SIOC_UPSTREAM_SHARDS") or 1
        if int(shards) < 1:
            raise ValueError("shards must be >= 1")
        self.logger = logger or logging.getLogger("sioc")
        # rediss://: the gateways' redis-tls-* settings, as arguments or SIOC_REDIS_TLS_* (redis_tls)
        self.redis = client if client is not None else client_from_url(
            redis_url, self.logger, redis_tls_ca=redis_tls_ca, redis_tls_cert=redis_tls_cert,
            redis_tls_key=redis_tls_key, redis_tls_server_name=redis_tls_server_name,
            redis_tls_insecure=redis_tls_insecure)
        self.redis_url = redis_url if client is None else repr(client)
        # a Redis Cluster (redis-cluster:// or a RedisCluster client): every key and channel
        # uses {P} for P, the upstream streams carry spread tags (cluster_keys)
        self.cluster = isinstance(self.redis, RedisCluster)
        self.key_prefix = cluster_prefix(key_prefix) if self.cluster else key_prefix
        self.namespaces = namespaces
        self.shards = int(shards)
        self.name = name or default_name()
        self.group = group or "sioc-" + self.name
        self.consumer = consumer or "%s-%d" % (socket.gethostname(), os.getpid())
        self.pool_size = int(pool_size)
        self.upstream = upstream
        self.adapter_key = adapter_key
        self.adapter = adapter
        self.subscription_mode = subscription_mode
        self.count = count
        self.block_ms = block_ms
        self.start_id = start_id
        self._handlers = {}
        self._entry_hooks = []
        self._takeover_hooks = []
        self._release_hooks = []
        self._afters = threading.local()  # after_reply() callbacks of the entry just dispatched
        self._current = contextvars.ContextVar("sioc_entry", default=None)  # the handled entry
        self._sid_nodes = OrderedDict()  # (nsp, sid) -> node, learned from entries
        self._sid_lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = False
        self._setups = 0
        self._pubsub = None
        self._cursors = {}
        self._pool = None
        self._calls = None  # Calls, from the first call or emit with a callback
        self._calls_lock = threading.Lock()
        self._busy = {}  # stream -> entries of it submitted and not finished
        self._busy_lock = threading.Lock()
        self.lease_ms = int(lease_ms)
        self._recovery = (0, 0.0)  # (recovery-window ms, when read): P:rec:window, re-read every 5 s
        self._sources = []   # streams or channels: fixed by the first setup()
        self._leases = None  # stream mode, from the first setup()

    # ---- registration ----

    def add_namespace(self, nsp):
        """Consumes namespace ``nsp`` too (before the worker starts consuming)."""
        if not isinstance(nsp, str) or not nsp.startswith("/"):
            raise ValueError("namespace %r does not start with '/'" % (nsp,))
        if self._sources:
            raise RuntimeError("namespaces are fixed once the worker has started")
        if nsp not in self.namespaces:
            self.namespaces.append(nsp)

    def on(self, event, handler=None, namespace=None):
        """Registers ``handler`` for ``event`` ('connect', 'disconnect', '*' or an event name).

        Usable as ``@worker.on('e')``, ``@worker.on('e', namespace='/chat')`` or
        ``worker.on('e', fn)``. Handlers: ``connect(sid, auth)`` (or ``(sid)``,
        ``(sid, environ)``, ``(sid, environ, auth)``), ``disconnect(sid, reason)`` (or
        ``(sid)``), events ``(sid, *args)``, catch-all '*' ``(event, sid, *args)``.
        """
        nsp = namespace or "/"
        if nsp not in self.namespaces:
            self.logger.warning("handler for %r in namespace %s, which this worker does not "
                                "consume", event, nsp)

        def register(fn):
            self._handlers[(nsp, event)] = fn
            return fn

        return register(handler) if handler is not None else register

    def event(self, handler=None, namespace=None):
        """``@worker.event``: registers a handler under its function name."""
        if handler is not None and callable(handler):
            return self.on(handler.__name__, handler, namespace)
        return lambda fn: self.on(fn.__name__, fn, namespace)

    def on_entry(self, hook):
        """Registers ``hook(entry)``, called for every valid entry before its handler."""
        self._entry_hooks.append(hook)
        return hook

    @property
    def request(self):
        """The current entry's :class:`Request` inside a handler, else None."""
        ctx = self._current.get()
        return ctx.request if ctx is not None else None

    # ---- what handlers (and other code) call ----

    def _ctx(self):
        return self._current.get()

    def emit(self, event, *args, to=None, room=None, namespace=None, skip_sid=None,
             include_self=True, broadcast=False, volatile=False, callback=None):
        """Emits ``event`` with ``args``.

        In a handler, without ``to``/``room`` (or with ``to`` = the sender's sid) it goes to the
        sender, in the reply. With ``to``/``room`` (a room, a sid, or a list of them) or
        ``broadcast=True`` (everyone in the namespace), and always outside handlers, it is a
        broadcast in the adapter format; ``skip_sid`` and ``include_self=False`` exclude sockets.
        ``callback(*ack_args)``: the client's ack, for an emit to one socket (the sender, or
        ``to=sid``); it runs on the handler pool, after that socket's earlier events.
        """
        if not isinstance(event, str):
            raise TypeError("event name must be a str")
        ctx = self._ctx()
        target = to if to is not None else room
        nsp = namespace or (ctx.entry.nsp if ctx else "/")
        if callback is not None:
            sid = target if target is not None else (ctx.entry.sid if ctx else None)
            if broadcast or not isinstance(sid, str):
                raise ValueError("emit(callback=) needs one socket: the sender or to=<sid>")
            self._start_call(event, args, sid, nsp, callback)
            return
        if ctx is not None and not broadcast and (target is None or target == ctx.entry.sid):
            if nsp != ctx.entry.nsp:
                self.logger.warning("emit %r to the sender in another namespace (%s): dropped; "
                                    "use to= or broadcast=True", event, nsp)
            elif not ctx.can_reply:
                self.logger.debug("emit %r to a disconnected socket dropped", event)
            elif self._recovery_window() > 0:
                # with recovery on, as Node: a broadcast to the sender's own room, stored
                self._out([encode_recoverable(nsp, event, args, [ctx.entry.sid], (),
                                              self.adapter_key, self.key_prefix)])
            else:
                self._to_sender(ctx, lambda reply: reply.emit.append([event] + list(args)))
            return
        rooms = [] if target is None else _rooms(target)
        excluded = [] if skip_sid is None else _rooms(skip_sid)
        if ctx is not None and not include_self and nsp == ctx.entry.nsp:
            excluded.append(ctx.entry.sid)
        flags = {"volatile": True} if volatile else None
        if self.adapter == "sharded":
            # not stored for recovery: the recovery script publishes the classic format
            channel, data = encode_sharded_broadcast(nsp, event, args, rooms, excluded, flags,
                                                     self.adapter_key, self.subscription_mode)
        else:
            if not volatile and self._recovery_window() > 0:
                self._out([encode_recoverable(nsp, event, args, rooms, excluded,
                                              self.adapter_key, self.key_prefix)])
                return
            channel, data = encode_broadcast(nsp, event, args, rooms, excluded, flags,
                                             self.adapter_key)
        self._out([(channel, data)])

    def _recovery_window(self):
        """The gateways' recovery-window (ms, 0 = off) from ``P:rec:window``, read at most every
        5 s (docs/contracts.md "Connection state recovery"): when on, broadcasts and emits to
        the sender are stored for recovery as they are published."""
        window, read_at = self._recovery
        now = time.monotonic()
        if now - read_at < 5.0 and read_at > 0:
            return window
        try:
            raw = self.redis.get("%s:rec:window" % self.key_prefix)
            window = int(raw) if raw is not None and raw.isdigit() else 0
        except redis_lib.exceptions.RedisError:
            pass  # keep the last value
        self._recovery = (window, now)
        return window

    def call(self, event, *args, to=None, namespace=None, timeout=60):
        """Emits ``event`` to socket ``to`` (default: the sender) and waits for its ack: returns
        the ack's single argument, a tuple for several, None for none. Raises
        :class:`sioc.CallTimeout` after ``timeout`` s, :class:`sioc.CallError` if the socket
        left. Works from any worker process, whatever gateway the socket is on; not in a
        ``connect`` handler (the socket is not connected before it returns).

        ``to`` may also name a room (a user room such as ``"user:42"`` too), or be a list of
        rooms and sids: every socket in them is asked, wherever it is, and the result is a list
        of ``(sid, value)`` for the sockets that answered, in sid order (value as above). If
        some did not answer within ``timeout``, :class:`sioc.CallTimeout` is raised with
        ``results`` (the answers that came) and ``missing`` (their sids). A socket that left
        meanwhile is left out. Rooms are read from the broker's registry mirror (a running
        sioc-broker, DESIGN.md 3.4), so only sockets of sioc gateways answer; at most
        ``MAX_CALL_SOCKETS``. A string ``to`` that is neither a known socket nor a room with
        members raises :class:`sioc.CallError`; a list gives ``[]`` for empty rooms."""
        ctx = self._ctx()
        nsp = namespace or (ctx.entry.nsp if ctx else "/")
        if isinstance(to, (list, tuple, set, frozenset)):
            return self._call_many(event, args, nsp, self._room_members(nsp, list(to)), timeout)
        sid = to if to is not None else (ctx.entry.sid if ctx else None)
        if not isinstance(sid, str):
            raise ValueError("call() needs to=<sid> or to=<room> outside a handler")
        node = None
        if to is not None and not (ctx is not None and ctx.owns(sid, nsp)):
            node = self._node_of(nsp, sid)
            members = self._room_members(nsp, [sid]) if node is None else None
            if members:
                return self._call_many(event, args, nsp, members, timeout)
        call_id = self._start_call(event, args, sid, nsp, None, now=True, node=node)
        return _ack_value(self._get_calls().wait(call_id, timeout))

    def _room_members(self, nsp, names):
        """The sockets of ``nsp`` in any of ``names`` (rooms or sids) as sorted ``(sid, node)``,
        from the registry mirror (P:room:<nsp>:<room>, P:sid:<sid>). Raises CallError above
        MAX_CALL_SOCKETS (counted before duplicates are removed) or when Redis fails."""
        keys = ["%s:room:%s:%s" % (self.key_prefix, nsp, name) for name in names]
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.scard(key)
            total = sum(pipe.execute()) + len(names)
            if total > MAX_CALL_SOCKETS:
                raise CallError("%d sockets selected, more than %d" % (total, MAX_CALL_SOCKETS))
            for key in keys:
                pipe.smembers(key)
            sids = {name for name in names if isinstance(name, str)}  # a socket is in its own room
            for members in pipe.execute():
                sids.update(m.decode("utf-8", "replace") for m in members)
            sids = sorted(sids)
            for sid in sids:
                pipe.hmget("%s:sid:%s" % (self.key_prefix, sid), "node", "nsp")
            found = pipe.execute()
        except redis_lib.exceptions.RedisError as exc:
            raise CallError("cannot read the registry mirror: %s" % exc) from exc
        return [(sid, node.decode("utf-8", "replace")) for sid, (node, where) in zip(sids, found)
                if node and where is not None and where.decode("utf-8", "replace") == nsp]

    def _call_many(self, event, args, nsp, members, timeout):
        """One call per ``(sid, node)`` of ``members``; see :meth:`call`."""
        if not members:
            return []
        calls = self._get_calls()
        sids, messages = {}, []
        for sid, node in members:
            call_id = calls.new(None)
            sids[call_id] = sid
            messages.append((protocol.node_channel(self.key_prefix, node),
                             protocol.encode_call(nsp, sid, call_id, calls.channel, event, args)))
        try:
            self._publish(messages)
        except redis_lib.exceptions.RedisError:
            calls.wait_many(list(sids), 0)  # forgets them
            raise
        answers, missing = calls.wait_many(list(sids), timeout)
        results = sorted(((sids[call_id], _ack_value(ack_args))
                          for call_id, (ack_args, error) in answers.items() if error is None),
                         key=lambda pair: pair[0])
        if missing:
            raise CallTimeout("%d of %d sockets did not answer within %s s"
                              % (len(missing), len(sids), timeout), results=results,
                              missing=sorted(sids[call_id] for call_id in missing))
        return results

    def _get_calls(self):
        with self._calls_lock:
            if self._calls is None:
                channel = "%s:calls:%s:%s" % (self.key_prefix, self.group, self.consumer)
                self._calls = Calls(self.redis, channel, self.logger, lambda cb, args: cb(args))
            return self._calls

    def _start_call(self, event, args, sid, nsp, callback, now=False, node=None):
        """Publishes a call to socket ``sid`` (docs/contracts.md "Calls"); returns its id."""
        ctx = self._ctx()
        if node is None:
            node = ctx.entry.node if ctx is not None and ctx.owns(sid, nsp) else self._node_of(nsp, sid)
        if node is None:
            raise CallError("%s in %s is not a connected socket (calls and callbacks go to one "
                            "socket, by its sid)" % (sid, nsp))
        calls = self._get_calls()
        on_answer = None
        if callback is not None:
            def on_answer(ack_args):
                self._run_callback((nsp, sid), callback, ack_args)
        call_id = calls.new(on_answer)
        message = protocol.encode_call(nsp, sid, call_id, calls.channel, event, args)
        messages = [(protocol.node_channel(self.key_prefix, node), message)]
        if now or ctx is None or ctx.publish is not None:
            self._publish(messages)
        else:
            ctx.outbox.extend(messages)
        return call_id

    def _run_callback(self, key, callback, args):
        def task():
            try:
                callback(*args)
            except Exception:
                self.logger.exception("callback %r failed (sid %s)", callback, key[1])
        pool = self._pool
        if pool is not None:
            pool.submit(key, task)
        else:
            task()

    def send(self, data, to=None, room=None, namespace=None, skip_sid=None, include_self=True,
             broadcast=False, volatile=False, callback=None):
        """Event ``message`` with the one argument ``data`` (python-socketio's ``send``), to
        the same targets as :meth:`emit`. A plain WebSocket connection (the gateways'
        ``ws-routes``) gets ``data`` itself: a text frame for a str, a binary frame for bytes,
        JSON text for anything else; a Socket.IO client gets event ``message``."""
        return self.emit("message", data, to=to, room=room, namespace=namespace,
                         skip_sid=skip_sid, include_self=include_self, broadcast=broadcast,
                         volatile=volatile, callback=callback)

    def after_reply(self, fn):
        """In a handler: runs ``fn()`` once the entry's reply (for a ``connect`` handler, the
        gateway's answer) has been published, on the handler's thread; e.g. to start work that
        sends to the socket, which must not overtake the answer. Outside the consuming loop
        (:meth:`dispatch` called directly) it runs when the handler has returned."""
        ctx = self._ctx()
        if ctx is None:
            raise RuntimeError("after_reply() works only inside a handler")
        ctx.after.append(fn)

    def join_room(self, sid, room, namespace=None):
        """Adds socket ``sid`` to ``room`` (the sender: in the reply, applied before its emits)."""
        self._membership(sid, room, namespace, join=True)

    enter_room = join_room

    def leave_room(self, sid, room, namespace=None):
        """Removes socket ``sid`` from ``room``."""
        self._membership(sid, room, namespace, join=False)

    def _membership(self, sid, room, namespace, join):
        if not isinstance(room, str):
            raise TypeError("room must be a str")
        ctx = self._ctx()
        nsp = namespace or (ctx.entry.nsp if ctx else "/")

        def apply(reply):
            add, remove = (reply.join, reply.leave) if join else (reply.leave, reply.join)
            if room in remove:
                remove.remove(room)
            if room not in add:
                add.append(room)

        if ctx is not None and ctx.owns(sid, nsp):
            if ctx.can_reply:
                self._to_sender(ctx, apply)
            return
        self._to_other(sid, nsp, apply)

    def close_room(self, room, namespace=None):
        """Removes every socket of the cluster from ``room`` (the adapter's socketsLeave
        request, as @socket.io/redis-emitter sends it)."""
        ctx = self._ctx()
        nsp = namespace or (ctx.entry.nsp if ctx else "/")
        if self.adapter == "sharded":
            self._out([encode_sharded_sockets_leave(nsp, room, self.adapter_key)])
            return
        message = json.dumps({"type": _SOCKETS_LEAVE, "opts": {"rooms": [room], "except": []},
                              "rooms": [room]}, separators=(",", ":"))
        self._out([("%s-request#%s#" % (self.adapter_key, nsp), message.encode())])

    def disconnect(self, sid=None, namespace=None):
        """Disconnects socket ``sid`` (default: the sender), after the reply's emits."""
        ctx = self._ctx()
        nsp = namespace or (ctx.entry.nsp if ctx else "/")
        if sid is None:
            if ctx is None:
                raise ValueError("disconnect() outside a handler needs a sid")
            sid = ctx.entry.sid
        def apply(reply):
            reply.disconnect = True

        if ctx is not None and ctx.owns(sid, nsp):
            if ctx.can_reply:
                self._to_sender(ctx, apply)
            return
        self._to_other(sid, nsp, apply)

    def _to_sender(self, ctx, apply):
        """An effect on the sender: published now (event handlers) or into the reply."""
        if ctx.publish is None:
            apply(ctx.reply)
            return
        reply = Reply(ctx.entry.nsp, ctx.entry.sid)
        apply(reply)
        ctx.publish(self._node_messages(ctx.entry.node, reply))

    def _to_other(self, sid, nsp, apply):
        """A reply to a socket other than the sender: needs the node that holds it."""
        node = self._node_of(nsp, sid)
        if node is None:
            self.logger.warning("socket %s in %s: node unknown, join/leave/disconnect skipped",
                                sid, nsp)
            return False
        reply = Reply(nsp, sid)
        apply(reply)
        self._out(self._node_messages(node, reply))
        return True

    def _node_of(self, nsp, sid):
        with self._sid_lock:
            node = self._sid_nodes.get((nsp, sid))
        if node is not None:
            return node
        try:  # the broker's registry mirror (DESIGN.md 3.4), when a broker runs
            node, where = self.redis.hmget("%s:sid:%s" % (self.key_prefix, sid), "node", "nsp")
        except redis_lib.exceptions.RedisError:
            return None
        if not node or (where is not None and where.decode("utf-8", "replace") != nsp):
            return None
        return node.decode("utf-8", "replace")

    def _node_messages(self, node, reply):
        channel = protocol.node_channel(self.key_prefix, node)
        return [(channel, m) for m in reply.encode()]

    def _out(self, messages):
        ctx = self._ctx()
        if ctx is not None and ctx.publish is None:
            ctx.outbox.extend(messages)
        elif messages:
            self._publish(messages)

    def _publish(self, messages, ack=None):
        if self.cluster:  # redis-py refuses PUBLISH in a cluster pipeline: one by one, in order
            for item in messages:
                if isinstance(item, Recoverable):  # routed by its stream key's slot
                    self.redis.eval(RECOVERY_SCRIPT, 1, item.stream, item.channel, item.pre,
                                    item.post, RECOVERY_STREAM_MAXLEN,
                                    (self._recovery[0] or 0) + RECOVERY_GRACE_MS)
                    continue
                channel, data = item
                if isinstance(channel, ShardChannel):  # to the master of the channel's slot
                    spublish(self.redis, channel, data)
                else:
                    self.redis.publish(channel, data)
            if ack is not None:
                self.redis.xack(ack[0], self.group, ack[1])
            return
        pipe = self.redis.pipeline(transaction=False)
        for item in messages:
            if isinstance(item, Recoverable):
                # EVAL, not EVALSHA: one round trip, and no NOSCRIPT after a Redis restart
                # (redis-py's pipelined Script objects ask SCRIPT EXISTS on every execute)
                window = self._recovery[0] or 0
                pipe.eval(RECOVERY_SCRIPT, 1, item.stream, item.channel, item.pre, item.post,
                          RECOVERY_STREAM_MAXLEN, window + RECOVERY_GRACE_MS)
                continue
            channel, data = item
            if isinstance(channel, ShardChannel):  # redis-py 4.3 has no spublish()
                pipe.execute_command("SPUBLISH", channel, data)
            else:
                pipe.publish(channel, data)
        if ack is not None:
            pipe.xack(ack[0], self.group, ack[1])
        pipe.execute()

    # ---- dispatch: one entry → the messages to publish ----

    def _remember(self, entry):
        key = (entry.nsp, entry.sid)
        with self._sid_lock:
            if entry.type == "disconnect":
                self._sid_nodes.pop(key, None)
                return
            self._sid_nodes[key] = entry.node
            self._sid_nodes.move_to_end(key)
            while len(self._sid_nodes) > _SID_CACHE_MAX:
                self._sid_nodes.popitem(last=False)

    def dispatch(self, entry, publish=None):
        """Runs the handler for one decoded entry; returns the ``[(channel, bytes)]`` still to
        publish (the ack, and everything when ``publish`` is None).

        ``publish(messages)``: where an event handler's effects go when called (the consuming
        loop passes the Redis publisher); without it they are returned, so that applications
        can test their handlers without Redis. Never raises for handler errors (logged).
        """
        self._remember(entry)
        for hook in self._entry_hooks:
            try:
                hook(entry)
            except Exception:
                self.logger.exception("entry hook failed")
        if entry.type == "connect" and entry.recovered:
            return []  # the same socket continuing on another gateway: no handler runs
        ctx = _Context(entry, publish)
        token = self._current.set(ctx)
        try:
            if entry.type == "event":
                return self._on_event(ctx)
            if entry.type == "connect":
                return self._on_connect(ctx)
            return self._on_disconnect(ctx)
        finally:
            self._current.reset(token)
            if publish is None:
                self._run_afters(ctx.after)
            else:  # the consuming loop runs them once it has published (_submit)
                self._afters.pending = ctx.after

    def _run_afters(self, afters):
        for fn in afters:
            try:
                fn()
            except Exception:
                self.logger.exception("after_reply callback %r failed", fn)

    def _invoke(self, handler, *args):
        """Calls one application handler (sioc.aio runs coroutines here)."""
        return handler(*args)

    def _reply_messages(self, ctx):
        return self._node_messages(ctx.entry.node, ctx.reply)

    def _on_event(self, ctx):
        e = ctx.entry
        handler = self._handlers.get((e.nsp, e.event))
        catch_all = self._handlers.get((e.nsp, "*"))
        if handler is None and catch_all is None:
            self.logger.debug("no handler for %r in %s", e.event, e.nsp)
            return []
        try:
            if handler is not None:
                result = self._invoke(handler, e.sid, *e.args)
            else:
                result = self._invoke(catch_all, e.event, e.sid, *e.args)
            if e.ack is not None:
                ctx.reply.ack = (e.ack, _ack_args(result))
            return self._reply_messages(ctx) + ctx.outbox
        except redis_lib.exceptions.RedisError:
            raise  # an effect could not be published: the entry stays pending, replayed later
        except Exception:
            self.logger.exception("handler for %r in %s failed (sid %s)", e.event, e.nsp, e.sid)
            return []

    def _call_connect(self, handler, e):
        n, second = _positional(handler)
        if n >= 3:
            return self._invoke(handler, e.sid, e.hs, e.auth)
        if n == 2:
            return self._invoke(handler, e.sid, e.hs if second == "environ" else e.auth)
        if n == 1:
            return self._invoke(handler, e.sid)
        return self._invoke(handler)

    def _on_connect(self, ctx):
        e = ctx.entry
        handler = self._handlers.get((e.nsp, "connect"))
        ok, error, uid, rooms, data = True, None, None, [], _NOTHING
        try:
            result = self._call_connect(handler, e) if handler is not None else None
        except Exception as exc:
            if not is_refusal(exc):
                self.logger.exception("connect handler in %s failed (sid %s)", e.nsp, e.sid)
            ok, error = False, (_refusal(exc) if is_refusal(exc) else None)
            ok = False
        else:
            if result is False:  # python-socketio's answer to a connect handler's False
                ok, error = False, ("Connection rejected by server",)
            elif isinstance(result, dict):  # {"uid", "rooms", "data"}: all optional
                uid = result.get("uid")
                rooms = list(result.get("rooms") or [])
                data = result.get("data", _NOTHING)
        try:
            if e.rid is None:  # a notification: the gateway has accepted the socket already
                if not ok:
                    self.logger.warning("connect handler refused %s in %s, but the gateway "
                                        "does not wait for workers (auth != backend): ignored",
                                        e.sid, e.nsp)
                    return ctx.outbox
                return self._reply_messages(ctx) + ctx.outbox
            channel = protocol.node_channel(self.key_prefix, e.node)
            if not ok:
                return [(channel, protocol.encode_connect_reply(e.rid, False, error=error))] \
                    + ctx.outbox
            for room in ctx.reply.join:
                if room not in rooms:
                    rooms.append(room)
            ctx.reply.join = []
            first = protocol.encode_connect_reply(e.rid, True, uid=uid, rooms=rooms, data=data)
            return [(channel, first)] + self._reply_messages(ctx) + ctx.outbox
        except (TypeError, ValueError, OverflowError) as exc:
            self.logger.error("connect reply for %s not encodable: %s", e.sid, exc)
            if e.rid is None:
                return []
            return [(protocol.node_channel(self.key_prefix, e.node),
                     protocol.encode_connect_reply(e.rid, False))]

    def _on_disconnect(self, ctx):
        e = ctx.entry
        handler = self._handlers.get((e.nsp, "disconnect"))
        if handler is None:
            return []
        try:
            n, _ = _positional(handler)
            if n >= 2:
                self._invoke(handler, e.sid, e.reason)
            elif n == 1:
                self._invoke(handler, e.sid)
            else:
                self._invoke(handler)
        except Exception:
            self.logger.exception("disconnect handler in %s failed (sid %s)", e.nsp, e.sid)
            return []
        return ctx.outbox

    def _dispatch_safe(self, entry):
        try:
            return self.dispatch(entry)
        except (TypeError, ValueError, OverflowError) as exc:  # unencodable handler output
            self.logger.error("reply to %s in %s not encodable: %s", entry.sid, entry.nsp, exc)
            return []

    # ---- consuming ----

    def setup(self):
        """Creates the consumer groups and takes stream leases (stream mode) or subscribes
        (pubsub mode); logs what the worker consumes. Called again after a Redis error."""
        if not self._sources:
            self._prepare_sources()
        if self.upstream == "stream":
            for key in self._sources:
                try:
                    self.redis.xgroup_create(key, self.group, id=self.start_id, mkstream=True)
                except redis_lib.exceptions.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
            self._cursors = {key: "0" for key in self._leases.held}  # own pending first
            self._take_over(self._tick_leases(force=True))
        else:
            if self._pubsub is not None:
                self._pubsub.close()
            self._pubsub = self.redis.pubsub()
            self._pubsub.subscribe(*self._sources)
            confirmed, deadline = 0, time.monotonic() + 5
            while confirmed < len(self._sources):
                if time.monotonic() > deadline:
                    raise redis_lib.exceptions.TimeoutError("SUBSCRIBE not confirmed")
                msg = self._pubsub.get_message(timeout=0.1)
                if msg is not None and msg["type"] == "subscribe":
                    confirmed += 1
        if self._pool is None:
            self._pool = KeyedPool(self.pool_size, on_error=self._task_failed)
        self._ready = True
        self._setups += 1
        self.logger.info("sioc worker %s: %s redis %s, namespaces %s, %s, consumer %s, "
                         "%d handler threads%s", self.name,
                         "consuming from" if self._setups == 1 else "reconnected to",
                         re.sub(r"//[^@/]*@", "//***@", self.redis_url),  # no password
                         ",".join(self.namespaces),
                         ("group %s, %d shard(s)" % (self.group, self.shards))
                         if self.upstream == "stream" else "pubsub (at-most-once)",
                         self.consumer, self.pool_size, self._lease_note())

    def _prepare_sources(self):
        if not self.namespaces:
            raise ValueError("the worker consumes no namespace")
        if self.upstream == "stream":
            self._sources = [protocol.stream_key(self.key_prefix, nsp, s, self.shards)
                             for nsp in self.namespaces for s in range(self.shards)]
            self._leases = ShardLeases(self.redis, self.key_prefix, self.group, self.consumer,
                                       self._sources, self.lease_ms)
        else:
            self._sources = [protocol.pubsub_channel(self.key_prefix, nsp)
                             for nsp in self.namespaces]

    def _lease_note(self):
        if self._leases is None:
            return ""
        return ", reading %d of %d streams" % (len(self._leases.readable()), len(self._sources))

    def on_takeover(self, hook):
        """Registers ``hook(streams)``, called when this process starts reading streams another
        process may have read before: state cached per socket of those streams may be stale."""
        self._takeover_hooks.append(hook)
        return hook

    def on_release(self, hook):
        """Registers ``hook(streams)``, called when this process stops reading streams (given up
        to another process, or a lease lost): the sockets of those streams are handled
        elsewhere from now on."""
        self._release_hooks.append(hook)
        return hook

    def _tick_leases(self, force=False):
        """ShardLeases.tick; tells the on_release hooks which streams it gave up or lost."""
        before = set(self._leases.held)
        acquired = self._leases.tick(self._stream_busy, force=force)
        released = sorted(before - self._leases.held)
        for hook in self._release_hooks if released else ():
            try:
                hook(released)
            except Exception:
                self.logger.exception("release hook failed")
        return acquired

    def _take_over(self, streams):
        """Streams just leased: their pending entries (whoever read them) are read first."""
        for hook in self._takeover_hooks:
            hook(list(streams))
        for key in streams:
            start = "0-0"
            while True:
                resp = self.redis.xautoclaim(key, self.group, self.consumer, 0, start_id=start,
                                             count=self.count)  # read again below, in order
                start = resp[0].decode() if isinstance(resp[0], bytes) else resp[0]
                if start == "0-0":
                    break
            self._cursors[key] = "0"

    def _stream_busy(self, key):
        with self._busy_lock:
            return self._busy.get(key, 0) > 0

    def _task_failed(self, exc):
        self.logger.error("entry not acknowledged (it will be replayed): %s", exc)

    def run_once(self, timeout_ms=1000):
        """Waits up to ``timeout_ms`` for entries and handles what arrived (returns when their
        handlers have finished); returns how many entries were read."""
        read = self._consume(timeout_ms)
        self._pool.wait_below(1, None)
        return read

    def _consume(self, timeout_ms):
        """Reads what arrived (waiting up to ``timeout_ms``) and submits it to the pool."""
        if not self._ready:
            self.setup()
        # back-pressure: read ahead at most a few entries per handler thread
        while not self._pool.wait_below(self.pool_size * 4, 0.2):
            if self._stopping.is_set():
                return 0
        if self.upstream == "stream":
            return self._poll_stream(timeout_ms)
        return self._poll_pubsub(timeout_ms)

    def _poll_stream(self, timeout_ms):
        acquired = self._tick_leases()
        if acquired:
            self._take_over(acquired)
            self.logger.info("leased %s%s", ", ".join(acquired), self._lease_note())
        readable = self._leases.readable()
        for key in list(self._cursors):
            if key not in readable:
                del self._cursors[key]
        if self._cursors:  # pending entries of this consumer first
            try:
                if self.cluster:  # one stream per command: they are in different slots
                    resp = []
                    for key, cursor in list(self._cursors.items()):
                        resp.extend(self.redis.xreadgroup(self.group, self.consumer, {key: cursor},
                                                          count=self.count) or [])
                else:
                    resp = self.redis.xreadgroup(self.group, self.consumer, dict(self._cursors),
                                                 count=self.count) or []
            except TypeError:  # redis-py cannot parse a pending entry trimmed away meanwhile
                self.logger.warning("pending entries unreadable; skipped")
                self._cursors = {}
                resp = []
            handled = 0
            for key, entries in resp:
                key = key.decode() if isinstance(key, bytes) else key
                if not entries:
                    self._cursors.pop(key, None)
                    continue
                self._cursors[key] = entries[-1][0]
                handled += self._handle_stream(key, entries)
            if handled:
                return handled
        wake_ms = max(1, self._leases.next_tick_ms())  # renew or rebalance the leases on time
        if not readable:  # standing by: every stream is leased to other processes
            self._stopping.wait(min(timeout_ms, wake_ms) / 1000)
            return 0
        block = min(timeout_ms, wake_ms)
        if self.cluster:
            resp = self._read_cluster(readable, block)
        else:
            resp = self.redis.xreadgroup(self.group, self.consumer, {key: ">" for key in readable},
                                         count=self.count, block=block if block > 0 else None) or []
        handled = 0
        for key, entries in resp:
            key = key.decode() if isinstance(key, bytes) else key
            handled += self._handle_stream(key, entries)
        return handled

    def _read_cluster(self, readable, block):
        """XREADGROUP per stream (the streams are in different slots on a cluster): one stream
        blocks as usual; several are polled without blocking, then again every CLUSTER_POLL_MS
        until something arrives or ``block`` ms have passed."""
        streams = sorted(readable)
        if len(streams) == 1:
            return self.redis.xreadgroup(self.group, self.consumer, {streams[0]: ">"},
                                         count=self.count, block=block if block > 0 else None) or []
        deadline = time.monotonic() + block / 1000.0
        while True:
            resp = []
            for key in streams:
                resp.extend(self.redis.xreadgroup(self.group, self.consumer, {key: ">"},
                                                  count=self.count) or [])
            if resp or time.monotonic() >= deadline or self._stopping.is_set():
                return resp
            self._stopping.wait(min(CLUSTER_POLL_MS / 1000.0, max(0.0, deadline - time.monotonic())))

    def _submit(self, entry, key=None):
        """Runs ``entry``'s handler on the pool after the socket's earlier entries; then
        publishes what is left and acknowledges the entry (stream ``key``)."""
        ack = (key, entry.id) if key is not None and entry.id is not None else None
        if key is not None:
            with self._busy_lock:
                self._busy[key] = self._busy.get(key, 0) + 1

        def task():
            self._afters.pending = []
            try:
                messages = self._dispatch_safe(entry)
                if messages or ack is not None:
                    self._publish(messages, ack=ack)
                afters, self._afters.pending = self._afters.pending, []
                self._run_afters(afters)
            finally:
                if key is not None:
                    with self._busy_lock:
                        self._busy[key] -= 1

        self._pool.submit((entry.nsp, entry.sid), task)

    def _handle_stream(self, key, entries):
        for entry_id, fields in entries:
            try:
                entry = protocol.decode_stream_entry(entry_id, fields)
            except UnsupportedError as exc:
                self.logger.info("skipped entry %s on %s: %s", entry_id, key, exc)
            except ProtocolError as exc:
                self.logger.warning("malformed entry %s on %s skipped: %s", entry_id, key, exc)
            else:
                self._submit(entry, key)
                continue
            self._publish([], ack=(key, entry_id))
        return len(entries)

    def _poll_pubsub(self, timeout_ms):
        handled = 0
        deadline = time.monotonic() + max(timeout_ms, 0) / 1000
        while handled < self.count:
            remaining = deadline - time.monotonic() if handled == 0 else 0
            msg = self._pubsub.get_message(timeout=max(remaining, 0))
            if msg is None:
                if handled or time.monotonic() >= deadline:
                    break
                continue
            if msg["type"] != "message":
                continue
            handled += 1
            try:
                entry = protocol.decode_pubsub_entry(msg["data"])
            except UnsupportedError as exc:
                self.logger.info("skipped message on %s: %s", msg["channel"], exc)
                continue
            except ProtocolError as exc:
                self.logger.warning("malformed message on %s skipped: %s", msg["channel"], exc)
                continue
            self._submit(entry)
        return handled

    def _dispatch_safe(self, entry):
        try:
            return self.dispatch(entry, publish=self._publish)
        except (TypeError, ValueError, OverflowError) as exc:  # unencodable handler output
            self.logger.error("reply to %s in %s not encodable: %s", entry.sid, entry.nsp, exc)
            return []

    def run(self, handle_signals=True):
        """Consumes until :meth:`stop` (within ``block_ms``), then lets the handlers in flight
        finish, gives its stream leases up and returns. Redis errors are logged and retried
        with backoff; nothing a handler or an entry does ends the loop. Called from the main
        thread with ``handle_signals``, SIGINT and SIGTERM stop it (no traceback). A stopped
        worker stays stopped (a stop() that comes before run() makes it return at once)."""
        previous = self._install_signals() if handle_signals else {}
        backoff = 0.1
        try:
            while not self._stopping.is_set():
                try:
                    self._consume(self.block_ms)
                    backoff = 0.1
                except Exception as exc:
                    if isinstance(exc, redis_lib.exceptions.RedisError):
                        self.logger.warning("redis: %s; retrying in %.1fs", exc, backoff)
                    else:
                        self.logger.exception("worker loop error; retrying in %.1fs", backoff)
                    self._ready = False
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
            self._finish()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: self.stop())
        return previous

    def _finish(self):
        if self._pool is not None:
            pending = self._pool.pending
            if pending:
                self.logger.info("stopping: finishing %d entries in flight", pending)
            self._pool.close()
            self._pool = None
        if self._leases is not None:
            try:
                self._leases.release_all()
            except redis_lib.exceptions.RedisError as exc:
                self.logger.warning("stream leases not released (they expire): %s", exc)
        self.logger.info("sioc worker %s stopped", self.name)

    def stop(self):
        """Makes :meth:`run` return (safe from signal handlers and other threads)."""
        self._stopping.set()

    @property
    def stopped(self):
        """True once :meth:`stop` was called."""
        return self._stopping.is_set()

    def close(self):
        """Ends the handler threads and releases the Redis connections."""
        if self._calls is not None:
            self._calls.stop()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None
        self._ready = False
        self.redis.close()
