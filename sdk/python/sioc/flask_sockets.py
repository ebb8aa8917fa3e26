"""Flask-Sockets' API on a sioc cluster: plain WebSocket endpoints served by the gateways.

    from flask import Flask
    from sioc.flask_sockets import Sockets        # was: from flask_sockets import Sockets

    app = Flask(__name__)
    sockets = Sockets(app)

    @sockets.route('/test')
    def echo_socket(ws):
        while not ws.closed:
            message = ws.receive()
            ws.send('received' + message)

    sockets.run(app)      # was: pywsgi.WSGIServer(('', 5000), app, handler_class=...).serve_forever()

The WebSocket connections are the gateways' (option ``ws-routes``, DESIGN.md §2): a route's
path is a gateway path mapped to a namespace, each message a client sends reaches this process as
an upstream ``message`` event, and what ``ws.send`` sends goes back through Redis to the gateway
that holds the connection. ``sockets.ws_routes()`` is the ``--ws-routes`` value the gateways need
(``run`` logs it): ``/test`` → ``/test=/test``; a route with one variable, ``/ws/<username>``,
→ ``/ws/{user}=/ws``: the gateway makes that part of the URL the connection's user (so it is in
the room ``user:<name>``), and the handler gets it as its keyword argument ``username``.

Each connection's handler runs in a thread of its own (a greenlet under eventlet/gevent
monkey-patching) for as long as the connection lives in this process, inside the app's request
context built from the WebSocket handshake (``request.path``, ``request.args``,
``request.headers``, ``request.environ['wsgi.websocket']`` is ``ws``, so gevent-websocket's
``@app.route`` handlers that take only the URL's variables work here too). At most
``max_handlers`` (1000) run at once in a process; a connection beyond that is refused (closed)
and logged. When the handler returns, the connection is closed, as with Flask-Sockets.

Several processes share the connections: a gateway writes each connection's messages to one of
``upstream-shards`` streams, and each stream is read by one process at a time (sioc.leases). A
process that takes a stream over (another one stopped, or the streams were shared anew) starts a
handler for each connection of it when its next message comes: the handler runs again from its
start (its URL variables and handshake are kept in Redis, ``<prefix>:sock:<group>:<sid>``), and
in the process that gave the stream up ``receive()`` raises :class:`HandlerMoved` (the handler
ends; the connection stays open). Messages a handler has not read yet when its process dies are
lost (at-most-once from the queue on); those not yet read from Redis are not.

Differences from Flask-Sockets besides: ``sockets.send(msg)`` (every connection of the route,
on every gateway), ``sockets.send(msg, skip=ws)`` (all but one), ``sockets.user(name).send(msg)``
and ``sockets.room(name).send(msg)`` replace lists and dicts of connections kept in memory;
``ws.join(room)`` / ``ws.leave(room)``. See docs/migrating-from-flask-sockets.md.
"""

import collections
import inspect
import logging
import queue
import re
import threading
import time
import urllib.parse

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect, Rule

from . import protocol
from .exceptions import ConnectionRefusedError
from .flask import SocketIO, _fallback_app, _serve_pages
from .protocol import Reply
from .worker import Worker

__all__ = ["Sockets", "WebSocket", "WebSocketError", "HandlerMoved", "Room"]

MAX_HANDLERS = 1000     # handlers (connections) one process runs at once, by default
MAX_QUEUE = 1000        # messages waiting for one handler's receive(), by default
STATE_TTL = 86400       # seconds the Redis copy of a connection's handshake lives
_CLOSED_MEMORY = 10000  # connections closed here whose disconnect has not arrived yet
_END = object()         # queue item: the connection closed
_MOVED = object()       # queue item: the connection is handled by another process now
_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")


class WebSocketError(Exception):
    """gevent-websocket's ``WebSocketError``: ``receive`` or ``send`` on a closed connection."""


class HandlerMoved(BaseException):
    """Raised by ``receive()`` in a process that no longer handles the connection (its stream
    went to another process, or this process stops): the handler ends, the connection stays
    open and its next message starts the handler in the process that handles it now. A
    BaseException, so that ``except Exception`` in a handler does not keep it looping."""


class WebSocket:
    """One remote plain WebSocket connection (gevent-websocket's ``WebSocket`` surface).

    ``receive()`` blocks for the connection's next message (str for a text frame, bytes for a
    binary one); it returns None when the connection has closed (``closed`` is then True) and
    raises :class:`WebSocketError` when called again. ``send(data)`` reaches the connection
    wherever it is: a str as a text frame, bytes as a binary frame, anything else as JSON text.
    ``close()`` closes it. Also: ``sid``, ``namespace``, ``user`` (the gateway's user, '' if
    none), ``path``, ``environ``, ``join(room)``, ``leave(room)``.
    """

    def __init__(self, sockets, namespace, sid, node, user, environ, max_queue):
        self._sockets = sockets
        self.namespace = namespace
        self.sid = sid
        self.node = node
        self.user = user
        self.environ = environ
        self.path = environ.get("PATH_INFO", "")
        self.origin = environ.get("HTTP_ORIGIN")
        self.protocol = environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL")
        self.version = "13"
        self._queue = queue.Queue(max_queue)
        self._closed = False
        self._moved = False
        self._lock = threading.Lock()

    @property
    def closed(self):
        return self._closed

    def __repr__(self):
        return "<sioc WebSocket %s %s%s>" % (self.namespace, self.sid,
                                            " closed" if self._closed else "")

    def receive(self):
        """The connection's next message; None once it has closed (see the class)."""
        if self._closed:
            if self._moved:
                raise HandlerMoved(self.sid)
            raise WebSocketError("Connection is already closed")
        item = self._queue.get()
        if item is _END or item is _MOVED:
            self._closed = True
            self._queue.put_nowait(item)  # for a second receiver, and for receive() again
            if item is _MOVED:
                self._moved = True
                raise HandlerMoved(self.sid)
            return None
        return item

    def send(self, message, binary=None):
        """Sends ``message`` to the connection (``binary`` is accepted for gevent-websocket's
        signature; the frame type follows the value: str text, bytes binary)."""
        if self._closed:
            raise WebSocketError("Socket is dead")
        if message is None:
            raise TypeError("send() needs a message (str, bytes or a JSON value), not None")
        if binary and isinstance(message, str):
            message = message.encode("utf-8")
        reply = Reply(self.namespace, self.sid)
        reply.emit = [["message", message]]
        self._sockets._reply(self.node, reply)

    def close(self, code=1000, message=b""):
        """Closes the connection (the gateway closes the WebSocket; ``code`` and ``message``
        are the gateway's to choose). receive() returns None from now on."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._sockets._closed_here(self)
        reply = Reply(self.namespace, self.sid)
        reply.disconnect = True
        self._sockets._reply(self.node, reply)
        self._end(_END)

    def join(self, room):
        """Adds the connection to ``room`` (then ``sockets.room(room).send(...)`` reaches it)."""
        self._membership(room, join=True)

    def leave(self, room):
        self._membership(room, join=False)

    def _membership(self, room, join):
        if not isinstance(room, str):
            raise TypeError("room must be a str")
        reply = Reply(self.namespace, self.sid)
        (reply.join if join else reply.leave).append(room)
        self._sockets._reply(self.node, reply)

    def _push(self, message):
        """A message for receive(); False when the handler has ``max_queue`` unread."""
        try:
            self._queue.put_nowait(message)
            return True
        except queue.Full:
            return False

    def _end(self, how):
        """Wakes receive() with the end (``_END``: closed; ``_MOVED``: handled elsewhere)."""
        while True:
            try:
                self._queue.put_nowait(how)
                return
            except queue.Full:  # a handler that stopped reading: its backlog is moot now
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass


class Room:
    """A room of a route's namespace (``sockets.room(name)``, ``sockets.user(name)``)."""

    def __init__(self, sockets, name, namespace):
        self._sockets = sockets
        self.name = name
        self.namespace = namespace

    def send(self, message, skip=None):
        """Sends ``message`` to every connection in the room, on every gateway, but ``skip``
        (a WebSocket, a sid, or a list of them)."""
        self._sockets.send(message, to=self.name, skip=skip, namespace=self.namespace)

    def __repr__(self):
        return "<sioc Room %s %s>" % (self.namespace, self.name)


class _Route:
    """One ``@sockets.route``: the Flask rule, its handler and its namespace."""

    def __init__(self, rule, handler, namespace, options):
        self.rule = rule
        self.handler = handler
        self.variables = _VARIABLE.findall(rule)
        if len(self.variables) > 1:
            raise ValueError("route %r: a gateway path has one variable at most ({user}), "
                             "this one has %d" % (rule, len(self.variables)))
        self.namespace = namespace or _default_namespace(rule)
        if not self.namespace.startswith("/"):
            raise ValueError("namespace %r does not start with '/'" % self.namespace)
        self.map = Map([Rule(rule, endpoint="ws", **options)])
        self.wants_ws = _wants_ws(handler, self.variables)

    def gateway_path(self):
        """The rule as the gateways' ws-routes write it: its variable becomes ``{user}``."""
        return _VARIABLE.sub("{user}", self.rule)

    def values(self, url, user):
        """The handler's keyword arguments: the URL's variables, else the user for the one
        variable (the gateway's ``{user}``); None when they cannot be found."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(url or "").path)  # as PATH_INFO
        if path:
            try:
                _, values = self.map.bind("localhost").match(path, method="GET")
                return values
            except (HTTPException, RequestRedirect):
                pass
        if not self.variables:
            return {}
        if len(self.variables) == 1 and user:
            return {self.variables[0]: user}
        return None


def _default_namespace(rule):
    """``/test`` → ``/test``; ``/ws/<username>`` → ``/ws`` (the part before the variable)."""
    static = rule.split("<", 1)[0].rstrip("/")
    return static or "/"


def _wants_ws(handler, variables):
    """Flask-Sockets handlers take ``ws`` first; gevent-websocket ``@app.route`` handlers take
    only the URL's variables (and read ``request.environ['wsgi.websocket']``)."""
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return True
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in variables:
            return True
    return False


class Sockets:
    """Flask-Sockets' ``Sockets``, as a worker of a sioc cluster (see the module docstring).

    ``message_queue``: the cluster's Redis URL (default ``$SIOC_REDIS_URL``).
    ``max_handlers``: connections handled at once by this process (each a thread); beyond it a
    new connection is refused (closed) with a log line. ``max_queue``: messages that may wait
    for one handler's ``receive()``; beyond it the connection is closed (a handler that stopped
    reading), with a log line. ``user_room``: the gateways' ``user-room`` (``user:%s``). Other
    keyword options go to :class:`sioc.Worker` (``shards``, ``name``, ``key_prefix``,
    ``pool_size``, ...).
    """

    def __init__(self, app=None, message_queue=None, max_handlers=MAX_HANDLERS,
                 max_queue=MAX_QUEUE, user_room="user:%s", **worker_options):
        self.logger = logging.getLogger("sioc.flask_sockets")
        self.app = None
        self.url_map = Map()  # Flask-Sockets' attribute: every route's rule
        self.routes = {}      # namespace -> _Route
        self.max_handlers = int(max_handlers)
        self.max_queue = int(max_queue)
        self.user_room = user_room
        if self.max_handlers < 1 or self.max_queue < 1:
            raise ValueError("max_handlers and max_queue must be >= 1")
        self._url = message_queue
        self._options = worker_options
        self._worker = None
        self._worker_lock = threading.Lock()
        self._conns = {}  # (namespace, sid) -> (WebSocket, thread)
        self._closed = collections.OrderedDict()  # (namespace, sid) closed by its handler
        self._lock = threading.Lock()
        self._local = threading.local()  # the route whose handler runs on this thread
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        self.app = app
        app.extensions = getattr(app, "extensions", {})
        app.extensions["sockets"] = self

    # ---- routes ----

    def route(self, rule, namespace=None, **options):
        """``@sockets.route('/ws')``: the handler of the plain WebSocket path ``rule`` (Flask
        URL rule syntax, one variable at most), answered in ``namespace`` (default: the rule's
        part before its variable, ``/ws/<name>`` → ``/ws``)."""
        def decorator(handler):
            self.add_url_rule(rule, None, handler, namespace=namespace, **options)
            return handler
        return decorator

    def add_url_rule(self, rule, _=None, f=None, namespace=None, **options):
        route = _Route(rule, f, namespace, options)
        with self._worker_lock:
            if self._worker is not None and self._worker._sources:
                raise RuntimeError("routes must be added before the worker runs")
            other = self.routes.get(route.namespace)
            if other is not None:
                raise ValueError("routes %r and %r both answer namespace %s: give one of them "
                                 "namespace=" % (other.rule, rule, route.namespace))
            self.routes[route.namespace] = route
            self.url_map.add(Rule(rule, endpoint=f, **options))
            self._worker = None

    def ws_routes(self):
        """The gateways' ``--ws-routes`` value for these routes, e.g. ``/ws/{user}=/ws``."""
        return ",".join("%s=%s" % (r.gateway_path(), nsp) for nsp, r in self.routes.items())

    # ---- the worker ----

    @property
    def worker(self):
        """The :class:`sioc.Worker` behind these routes (created on first use)."""
        with self._worker_lock:
            if self._worker is None:
                self._worker = self._make_worker()
            return self._worker

    def _make_worker(self):
        if not self.routes:
            raise RuntimeError("no @sockets.route: nothing to serve")
        worker = Worker(self._url, namespaces=list(self.routes), **self._options)
        for nsp in self.routes:
            worker.on("connect", self._connect_handler(nsp), namespace=nsp)
            worker.on("message", self._message_handler(nsp), namespace=nsp)
            worker.on("disconnect", self._disconnect_handler(nsp), namespace=nsp)
        worker.on_release(self._released)
        return worker

    def _state_key(self, sid):
        return "%s:sock:%s:%s" % (self.worker.key_prefix, self.worker.group, sid)

    def _reply(self, node, reply):
        worker = self.worker
        worker._publish(worker._node_messages(node, reply))

    # ---- what the application calls ----

    def _namespace(self, route, namespace):
        if namespace is not None:
            return namespace
        if route is not None:
            for nsp, r in self.routes.items():
                if route in (r.rule, nsp):
                    return nsp
            raise ValueError("no route %r" % route)
        current = getattr(self._local, "namespace", None)
        if current is not None:
            return current
        if len(self.routes) == 1:
            return next(iter(self.routes))
        raise ValueError("several routes: say which one (route='/ws')")

    def send(self, message, to=None, skip=None, route=None, namespace=None):
        """Sends ``message`` to every connection of a route (in a handler: its own; else
        ``route``, needed when there are several), on every gateway, or only to room(s) ``to``
        (a room, a sid, a list); ``skip``: a WebSocket, a sid or a list of them left out."""
        if message is None:
            raise TypeError("send() needs a message (str, bytes or a JSON value), not None")
        nsp = self._namespace(route, namespace)
        skips = skip if isinstance(skip, (list, tuple, set, frozenset)) else \
            ([] if skip is None else [skip])
        skip_sids = [s.sid if isinstance(s, WebSocket) else s for s in skips]
        self.worker.send(message, to=to, namespace=nsp, skip_sid=skip_sids or None,
                         broadcast=to is None)

    def room(self, name, route=None):
        """The connections in room ``name`` of a route (see :meth:`send` for ``route``)."""
        return Room(self, name, self._namespace(route, None))

    def user(self, name, route=None):
        """The connections of user ``name`` (the gateways' room ``user:<name>``, option
        ``user-room``): a ``{user}`` path's value, or a JWT's user."""
        return self.room(self.user_room % name, route)

    @property
    def connections(self):
        """How many connections this process handles now."""
        with self._lock:
            return len(self._conns)

    # ---- connections ----

    def _connect_handler(self, namespace):
        def connect(sid, environ, auth):
            request = self.worker.request
            refusal = self._open(namespace, request, environ if isinstance(environ, dict) else {})
            if refusal is not None:
                if request.rid is None:  # the gateway accepted it already: close it
                    self.worker.disconnect(sid)
                    return None
                # auth backend: the gateway closes it with 1008 and this reason
                raise ConnectionRefusedError(refusal)
            return {"uid": request.uid} if request.uid else None
        return connect

    def _message_handler(self, namespace):
        def message(sid, *args):
            if not args:
                self.logger.debug("message without data from %s in %s ignored", sid, namespace)
                return
            key = (namespace, sid)
            with self._lock:
                entry = self._conns.get(key)
                closed = key in self._closed
            if closed:
                self.logger.debug("message for %s, closed here, dropped", sid)
                return
            if entry is None:
                entry = self._adopt(namespace, sid)
                if entry is None:
                    return
            ws = entry[0]
            if not ws._push(args[0]):
                self.logger.warning("sioc.flask_sockets: %s in %s: %d messages wait for the "
                                    "handler (max_queue): connection closed", sid, namespace,
                                    self.max_queue)
                ws.close()
        return message

    def _disconnect_handler(self, namespace):
        def disconnect(sid, reason):
            key = (namespace, sid)
            with self._lock:
                entry = self._conns.pop(key, None)
                self._closed.pop(key, None)
            if entry is not None:
                entry[0]._end(_END)
            self.worker.redis.delete(self._state_key(sid))
        return disconnect

    def _open(self, namespace, request, handshake):
        """A new connection (connect entry): its handler starts once the gateway has the
        worker's answer. Returns None, or why it is refused (logged)."""
        route = self.routes[namespace]
        values = route.values(handshake.get("url"), request.uid)
        if values is None:
            self.logger.warning("sioc.flask_sockets: %s in %s: no value for %s in URL %r (the "
                                "gateways' ws-routes should be %s): connection refused",
                                request.sid, namespace, route.variables, handshake.get("url"),
                                self.ws_routes())
            return "no %s in the URL" % route.variables[0]
        pipe = self.worker.redis.pipeline(transaction=False)
        key = self._state_key(request.sid)
        pipe.hset(key, mapping={"hs": protocol.pack(handshake), "uid": request.uid or ""})
        pipe.expire(key, STATE_TTL)
        pipe.execute()
        started = self._start(route, request.sid, request.node, request.uid, handshake, values,
                              defer=True)
        if started is None:
            self.worker.redis.delete(key)
            return "server busy (max_handlers)"
        self.worker.after_reply(started[1].start)
        return None

    def _adopt(self, namespace, sid):
        """A message for a connection this process has not seen connect (its stream was
        another process's): its handler starts from the handshake kept in Redis."""
        request = self.worker.request
        hs, uid = self.worker.redis.hmget(self._state_key(sid), "hs", "uid")
        handshake = protocol.unpack(hs) if hs else {}
        user = uid.decode("utf-8", "replace") if uid else request.uid
        route = self.routes[namespace]
        values = route.values(handshake.get("url") if isinstance(handshake, dict) else None, user)
        if values is None or not isinstance(handshake, dict):
            self.logger.warning("sioc.flask_sockets: %s in %s: its handshake is unknown here "
                                "(no %s): connection closed", sid, namespace,
                                self._state_key(sid))
            self.worker.disconnect(sid)
            return None
        started = self._start(route, sid, request.node, user, handshake, values, defer=False)
        if started is None:
            return None
        self.logger.info("sioc.flask_sockets: %s in %s handled here from now on", sid, namespace)
        return started

    def _start(self, route, sid, node, user, handshake, values, defer):
        """Registers the connection and makes its handler's thread (started now unless
        ``defer``); None (logged, connection refused or closed) above ``max_handlers``."""
        app = self.app or _fallback_app()
        environ = dict(SocketIO._environ(app, handshake))
        ws = WebSocket(self, route.namespace, sid, node, user or "", environ, self.max_queue)
        environ["wsgi.websocket"] = ws
        environ["wsgi.websocket_version"] = "13"
        thread = threading.Thread(target=self._serve, args=(app, route, ws, values),
                                  name="sioc-ws-%s" % sid, daemon=True)
        with self._lock:
            full = len(self._conns) >= self.max_handlers
            if not full:
                self._conns[(route.namespace, sid)] = (ws, thread)
        if full:
            self.logger.warning("sioc.flask_sockets: %d handlers run in this process "
                                "(max_handlers): connection %s in %s refused", self.max_handlers,
                                sid, route.namespace)
            if not defer:
                self.worker.disconnect(sid)
            return None
        if not defer:
            thread.start()
        return ws, thread

    def _serve(self, app, route, ws, values):
        """One connection's handler, in the app's request context; the connection is closed
        when it returns (as Flask-Sockets does)."""
        self._local.namespace = route.namespace
        try:
            with app.app_context(), app.request_context(ws.environ):
                if route.wants_ws:
                    route.handler(ws, **values)
                else:
                    route.handler(**values)
        except HandlerMoved:
            self.logger.debug("handler of %s ended here: handled elsewhere", ws.sid)
        except Exception as exc:
            if ws.closed:  # e.g. 'received' + None after receive() returned None
                self.logger.info("sioc.flask_sockets: handler %s of %s ended after the "
                                 "connection closed: %s: %s", route.handler.__name__, ws.sid,
                                 type(exc).__name__, exc)
            else:
                self.logger.exception("sioc.flask_sockets: handler %s of %s failed; closing "
                                      "the connection", route.handler.__name__, ws.sid)
        finally:
            self._local.namespace = None
            if not ws.closed:
                try:
                    ws.close()
                except Exception as exc:  # Redis away: the gateway's ping closes it later
                    self.logger.warning("close of %s not sent: %s", ws.sid, exc)
            with self._lock:
                key = (route.namespace, ws.sid)
                if key in self._conns and self._conns[key][0] is ws:
                    del self._conns[key]

    def _closed_here(self, ws):
        """The handler closed its connection: messages still on their way are dropped (no
        new handler for a connection that is closing)."""
        with self._lock:
            self._closed[(ws.namespace, ws.sid)] = True
            while len(self._closed) > _CLOSED_MEMORY:
                self._closed.popitem(last=False)

    def _released(self, streams):
        """Streams this process no longer reads: their connections' handlers end here."""
        shards = self.worker.shards
        prefix = self.worker.key_prefix
        gone = set(streams)
        with self._lock:
            moved = [key for key in self._conns
                     if protocol.stream_key(prefix, key[0], protocol.shard_of(key[1], shards))
                     in gone]
            entries = [self._conns.pop(key) for key in moved]
        for ws, _ in entries:
            ws._end(_MOVED)
        if entries:
            self.logger.info("sioc.flask_sockets: %d connections handled by another process "
                             "from now on", len(entries))

    def _end_all(self, timeout=5.0):
        """Stopping: every handler here ends (HandlerMoved); their connections stay open."""
        with self._lock:
            entries = list(self._conns.values())
            self._conns.clear()
        for ws, _ in entries:
            ws._end(_MOVED)
        deadline = time.monotonic() + timeout  # for all of them: a handler may not be reading
        for _, thread in entries:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    # ---- running ----

    def run(self, app=None, host=None, port=None, **kwargs):
        """Runs the worker until SIGINT/SIGTERM (logs the gateways' ``--ws-routes``). With an
        app that has routes of its own and a ``port``, also serves them (werkzeug), e.g. the
        page; the WebSocket paths are the gateways'."""
        app = app or self.app
        if app is not None and self.app is None:
            self.init_app(app)
        worker = self.worker
        self.logger.info("sioc.flask_sockets: routes %s; the gateways need --ws-routes '%s' "
                         "and --namespaces accepting %s (at most %d handlers here)",
                         ", ".join(r.rule for r in self.routes.values()), self.ws_routes(),
                         ",".join(self.routes), self.max_handlers)
        server = None
        if app is not None and port is not None:
            server = _serve_pages(app, host or "127.0.0.1", int(port))
            self.logger.info("sioc.flask_sockets: pages of %s on http://%s:%d/", app.name,
                             host or "127.0.0.1", server.server_port)
        try:
            worker.run()
        finally:
            if server is not None:
                server.shutdown()
            self._end_all()
            worker.close()

    def stop(self):
        self.worker.stop()
