"""Flask-SocketIO's API on a sioc cluster: a program moves by changing its import.

    from sioc.flask import SocketIO, emit, send, join_room, leave_room, close_room, rooms, \\
        disconnect, Namespace, ConnectionRefusedError

    socketio = SocketIO(app, message_queue="redis://127.0.0.1:6379")

    @socketio.on("my event", namespace="/test")
    def handle(data):                 # Flask-SocketIO's arguments: no sid
        emit("my response", data)     # to the sender, now
        return "ok"                   # the client's ack

    socketio.run(app)                 # runs the worker (and the app's own routes, if any)

What differs from Flask-SocketIO (see docs/migrating-from-flask-socketio.md): the sockets live on
the sioc gateways, so this process is a worker of the cluster: handlers run on a thread pool
(one socket's events in order), several processes can share the work, and ``socketio.run``
serves no Socket.IO endpoint itself. Handlers run inside the app's request context, built from
the socket's handshake (``request.args``, ``request.headers``, ``request.remote_addr``) with
``request.sid``, ``request.namespace`` and ``request.event``; ``flask.session`` is per socket and
kept in Redis (``<prefix>:sock:<group>:<sid>``), so any worker process sees it.
"""

import collections
import inspect
import logging
import os
import threading
import time
import urllib.parse

import flask
import msgpack
from flask.ctx import RequestContext
from flask.sessions import session_json_serializer

from . import protocol
from .exceptions import ConnectionRefusedError, is_refusal
from .worker import Worker

__all__ = ["SocketIO", "Namespace", "emit", "send", "join_room", "leave_room", "close_room",
           "rooms", "disconnect", "call", "ConnectionRefusedError"]

_current = threading.local()  # the SocketIO whose handler runs on this thread
STATE_CACHE_MAX = 10000       # sockets whose request environ and session a process keeps


def _arity(fn):
    """Positional parameters ``fn`` takes (many for *args)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    n = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return 99
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _SocketSession(dict):
    """``flask.session`` of one socket: a dict that knows whether a handler changed it."""

    modified = False
    permanent = False
    new = False
    accessed = True

    def _changed(self):
        self.modified = True

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key):
        super().__delitem__(key)
        self._changed()

    def clear(self):
        super().clear()
        self._changed()

    def pop(self, *args):
        self._changed()
        return super().pop(*args)

    def popitem(self):
        self._changed()
        return super().popitem()

    def setdefault(self, key, default=None):
        if key not in self:
            self._changed()
        return super().setdefault(key, default)

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self._changed()


class _SocketRequestContext(RequestContext):
    """The request context of a socket event. An event has no URL route: matching the
    handshake's path against the app's routes (and raising NotFound) would be three quarters of
    the context's cost per event, for a result no handler reads."""

    def match_request(self):
        pass


class Namespace:
    """A class-based namespace: method ``on_<event>`` handles ``<event>`` (``on_connect``,
    ``on_disconnect`` too). Decorator handlers of the same event take precedence."""

    def __init__(self, namespace=None):
        self.namespace = namespace or "/"
        self.socketio = None

    def trigger_event(self, event, *args):
        handler = getattr(self, "on_" + (event or ""), None)
        if handler is None:
            return None
        return handler(*args)

    def emit(self, event, *args, **kwargs):
        """Flask-SocketIO's ``Namespace.emit``: ``socketio.emit`` in this namespace (everyone
        in it, unless ``to``/``room``)."""
        kwargs.setdefault("namespace", self.namespace)
        return self.socketio.emit(event, *args, **kwargs)

    def send(self, data, **kwargs):
        kwargs.setdefault("namespace", self.namespace)
        return self.socketio.send(data, **kwargs)

    def close_room(self, room, namespace=None):
        return self.socketio.close_room(room, namespace=namespace or self.namespace)

    def enter_room(self, sid, room, namespace=None):
        return join_room(room, sid=sid, namespace=namespace or self.namespace)

    def leave_room(self, sid, room, namespace=None):
        return leave_room(room, sid=sid, namespace=namespace or self.namespace)

    def rooms(self, sid=None, namespace=None):
        return rooms(sid=sid, namespace=namespace or self.namespace)

    def disconnect(self, sid=None, namespace=None):
        return disconnect(sid=sid, namespace=namespace or self.namespace)


class SocketIO:
    """Flask-SocketIO's ``SocketIO``, as a worker of a sioc cluster.

    ``message_queue``: the cluster's Redis URL (default ``$SIOC_REDIS_URL`` or
    ``redis://127.0.0.1:6379``). ``namespaces``: those this worker answers (default: the ones
    it has handlers for). Keyword options of :class:`sioc.Worker` (``key_prefix``, ``shards``,
    ``pool_size``, ``name``, ``group``, ...) are passed on; those of Flask-SocketIO that belong
    to the gateways (``cors_allowed_origins``, ``async_mode``, ``ping_interval``, ``logger``
    as a flag, ...) are accepted and ignored with a log line. The worker is created when first
    needed (``run``, ``emit``), so ``init_app(app, message_queue=...)`` may come after the
    handlers, as in an application factory.
    """

    _WORKER_OPTIONS = ("key_prefix", "shards", "group", "consumer", "name", "pool_size",
                       "upstream", "adapter_key", "count", "block_ms", "lease_ms", "start_id",
                       "client", "redis_tls_ca", "redis_tls_cert", "redis_tls_key",
                       "redis_tls_server_name", "redis_tls_insecure", "adapter",
                       "subscription_mode")

    def __init__(self, app=None, message_queue=None, namespaces=None, manage_session=True,
                 session_ttl=86400, **kwargs):
        self.logger = logging.getLogger("sioc.flask")
        self._url = None
        self._namespaces = None
        self._options = {}
        self.manage_session = manage_session
        self.session_ttl = int(session_ttl)
        self.handlers = {}           # (namespace, event) -> fn
        self.namespace_handlers = {}  # namespace -> Namespace
        self.exception_handlers = {}
        self.default_exception_handler = None
        self._worker = None
        self._worker_lock = threading.Lock()
        # sid -> [WSGI environ, session dict]: a socket's events come to this process while it
        # holds the socket's stream (sioc.leases), so the copy stays true until a take-over
        self._states = collections.OrderedDict()
        self._states_lock = threading.Lock()
        self.app = None
        self._configure(message_queue, namespaces, kwargs)
        if app is not None:
            self.init_app(app)

    def _configure(self, message_queue, namespaces, kwargs):
        if self._worker is not None and self._worker._sources:
            raise RuntimeError("the worker has started: configure it before run()")
        logger = kwargs.pop("logger", None)
        if isinstance(logger, logging.Logger):
            self.logger = self._options["logger"] = logger
        self._options.update({k: kwargs.pop(k) for k in list(kwargs)
                              if k in self._WORKER_OPTIONS})
        if kwargs:
            self.logger.info("sioc.flask: options handled by the gateways, ignored here: %s",
                             ", ".join(sorted(kwargs)))
        if message_queue is not None or self._url is None:
            self._url = (message_queue or os.environ.get("SIOC_REDIS_URL")
                         or "redis://127.0.0.1:6379")
        if namespaces is not None:
            self._namespaces = list(namespaces)
        self._worker = None  # made again, with these options, when next needed

    def init_app(self, app, message_queue=None, namespaces=None, **kwargs):
        self.app = app
        app.extensions = getattr(app, "extensions", {})
        app.extensions["socketio"] = self
        if message_queue is not None or namespaces is not None or kwargs:
            self._configure(message_queue, namespaces, kwargs)

    @property
    def worker(self):
        """The :class:`sioc.Worker` behind this SocketIO (created on first use)."""
        with self._worker_lock:
            if self._worker is None:
                self._worker = self._make_worker()
            return self._worker

    def _make_worker(self):
        handled = {nsp for nsp, _ in self.handlers} | set(self.namespace_handlers)
        namespaces = self._namespaces or sorted(handled) or ["/"]
        worker = Worker(self._url, namespaces=namespaces, **self._options)
        for nsp in namespaces:
            self._bind_namespace(worker, nsp)
        for nsp, event in self.handlers:
            if nsp in namespaces:
                self._bind_event(worker, nsp, event)
        for nsp in self.namespace_handlers:
            if nsp in namespaces:
                worker.on("*", self._catch_all(nsp), namespace=nsp)
        worker.on_takeover(lambda streams: self._forget_states())
        return worker

    # ---- registration ----

    def on(self, message, namespace=None):
        """``@socketio.on(event, namespace=...)``."""
        namespace = namespace or "/"

        def decorator(handler):
            self._register(message, handler, namespace)
            return handler

        return decorator

    def event(self, *args, **kwargs):
        """``@socketio.event`` / ``@socketio.event(namespace=...)``: named after the function."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.on(args[0].__name__)(args[0])
        return lambda handler: self.on(handler.__name__, *args, **kwargs)(handler)

    def on_event(self, message, handler, namespace=None):
        self._register(message, handler, namespace or "/")

    def on_namespace(self, namespace_handler):
        if not isinstance(namespace_handler, Namespace):
            raise ValueError("not a Namespace instance")
        namespace_handler.socketio = self
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler
        self._changed()

    def on_error(self, namespace=None):
        """``@socketio.on_error(namespace)``: the handler's exceptions go to ``fn(e)``, whose
        return value becomes the client's ack."""
        def decorator(handler):
            self.exception_handlers[namespace or "/"] = handler
            return handler
        return decorator

    def on_error_default(self, handler):
        self.default_exception_handler = handler
        return handler

    def _register(self, event, handler, namespace):
        self.handlers[(namespace, event)] = handler
        self._changed()

    def _changed(self):
        """A handler was added: the worker is made (again) with it when next needed."""
        with self._worker_lock:
            if self._worker is not None and self._worker._sources:
                raise RuntimeError("handlers must be registered before the worker runs")
            self._worker = None

    def _bind_event(self, worker, namespace, event):
        if event in ("connect", "disconnect"):
            return  # _bind_namespace's handlers call the app's

        def on_event(sid, *args):
            return self._handle(namespace, event, sid, args)
        worker.on(event, on_event, namespace=namespace)

    def _bind_namespace(self, worker, namespace):
        """Every namespace this worker answers keeps its sockets' handshake and session: its
        connect and disconnect are always handled here (the app's own handlers, if any,
        run inside)."""
        worker.on("connect", self._connect_handler(namespace), namespace=namespace)
        worker.on("disconnect", self._disconnect_handler(namespace), namespace=namespace)

    def _catch_all(self, namespace):
        def handler(event, sid, *args):
            return self._handle(namespace, event, sid, args)
        return handler

    def _lookup(self, namespace, event):
        fn = self.handlers.get((namespace, event))
        if fn is not None:
            return fn
        ns = self.namespace_handlers.get(namespace)
        return getattr(ns, "on_" + event, None) if ns is not None else None

    # ---- running handlers in the app's context ----

    def _state_key(self, sid):
        return "%s:sock:%s:%s" % (self.worker.key_prefix, self.worker.group, sid)

    def _forget_states(self, sid=None):
        with self._states_lock:
            if sid is None:
                self._states.clear()
            else:
                self._states.pop(sid, None)

    def _cached_state(self, sid, app):
        """[environ, session] of a socket: from this process's cache, else from Redis (as its
        connect stored them)."""
        with self._states_lock:
            state = self._states.get(sid)
            if state is not None:
                self._states.move_to_end(sid)
                return state
        hs, raw = self.worker.redis.hmget(self._state_key(sid), "hs", "session")
        handshake = protocol.unpack(hs) if hs else {}
        session = session_json_serializer.loads(_text(raw)) if raw else {}
        state = [self._environ(app, handshake if isinstance(handshake, dict) else {}), session]
        self._remember_state(sid, state)
        return state

    def _remember_state(self, sid, state):
        with self._states_lock:
            self._states[sid] = state
            while len(self._states) > STATE_CACHE_MAX:
                self._states.popitem(last=False)

    def _save_state(self, sid, handshake=None, session=None):
        pipe = self.worker.redis.pipeline(transaction=False)
        key = self._state_key(sid)
        if handshake is not None:
            pipe.hset(key, "hs", msgpack.packb(handshake, use_bin_type=True))
        if session is not None:
            pipe.hset(key, "session", session_json_serializer.dumps(dict(session)))
        pipe.expire(key, self.session_ttl)
        pipe.execute()

    @staticmethod
    def _environ(app, handshake):
        """The WSGI environ of a socket's handshake request (built once per socket)."""
        url = urllib.parse.urlsplit(_text(handshake.get("url", "/socket.io/")))
        headers = {_text(k): _text(v) for k, v in (handshake.get("headers") or {}).items()
                   if not isinstance(v, (list, dict))}
        builder = app.test_request_context(url.path or "/", query_string=url.query,
                                           headers=headers, environ_base={
                                               "REMOTE_ADDR": _text(handshake.get("address", ""))})
        return builder.request.environ

    def _context(self, app, environ, session):
        """The app's request context for a socket. ``session`` None: the HTTP session of the
        handshake's cookie, copied (as Flask-SocketIO does at connect)."""
        ctx = _SocketRequestContext(app, dict(environ))
        if self.manage_session:
            if session is None:
                opened = app.session_interface.open_session(app, ctx.request)
                session = dict(opened) if opened else {}
            ctx.session = _SocketSession(session)
            ctx.session.modified = bool(session)
        return ctx

    def _run(self, namespace, event, sid, args, call, handshake=None):
        """Runs ``call`` in the socket's request context. ``handshake``: at connect (the state
        is created from it), else the socket's state is looked up."""
        app = self.app or _fallback_app()
        if handshake is not None:
            state, session = [self._environ(app, handshake), {}], None
        else:
            state = self._cached_state(sid, app)
            session = state[1]
        ctx = self._context(app, state[0], session)
        previous = getattr(_current, "socketio", None)
        _current.socketio = self
        try:
            with ctx:
                flask.request.sid = sid
                flask.request.namespace = namespace
                flask.request.event = {"message": event, "args": args}
                try:
                    result = call()
                except Exception as exc:
                    if is_refusal(exc):
                        raise
                    handler = self.exception_handlers.get(namespace,
                                                          self.default_exception_handler)
                    if handler is None:
                        raise
                    result = handler(exc)
                if self.manage_session and ctx.session.modified:
                    state[1] = dict(ctx.session)
                    self._save_state(sid, session=state[1])
                if handshake is not None:
                    self._remember_state(sid, state)
                return result
        finally:
            _current.socketio = previous

    def _handle(self, namespace, event, sid, args):
        fn = self._lookup(namespace, event)
        if fn is None:
            self.worker.logger.debug("no handler for %r in %s", event, namespace)
            return None
        return self._run(namespace, event, sid, args, lambda: fn(*args))

    def _connect_handler(self, namespace):
        def connect(sid, environ, auth):
            handshake = environ if isinstance(environ, dict) else {}
            fn = self._lookup(namespace, "connect")
            self._save_state(sid, handshake=handshake)

            def call():
                if fn is None:
                    return None
                return fn(auth) if _arity(fn) >= 1 else fn()

            try:
                result = self._run(namespace, "connect", sid, (auth,), call, handshake)
            except BaseException:
                self._drop_state(sid)
                raise
            if result is False:
                self._drop_state(sid)
                return False
            if isinstance(result, (str, int)) and not isinstance(result, bool):
                return {"uid": str(result)}  # sioc: the socket's user (user room, registry)
            return result if isinstance(result, dict) else None
        return connect

    def _disconnect_handler(self, namespace):
        def disconnect_(sid, reason):
            fn = self._lookup(namespace, "disconnect")
            try:
                if fn is not None:
                    self._run(namespace, "disconnect", sid, (reason,),
                              lambda: fn(reason) if _arity(fn) >= 1 else fn())
            finally:
                self._drop_state(sid)
        return disconnect_

    def _drop_state(self, sid):
        self._forget_states(sid)
        self.worker.redis.delete(self._state_key(sid))

    # ---- what the application calls ----

    def emit(self, event, *args, namespace=None, to=None, room=None, include_self=True,
             skip_sid=None, callback=None, **kwargs):
        """Flask-SocketIO's ``socketio.emit``: to ``to``/``room``, else everyone in the
        namespace (also inside a handler). ``callback`` works for one socket (``to=sid``)."""
        target = to if to is not None else room
        nsp = namespace or "/"
        if callback is not None and isinstance(target, str):
            self.worker.emit(event, *args, to=target, namespace=nsp,
                             callback=self._in_context(nsp, target, callback))
            return
        if callback is not None:
            self.logger.warning("emit %r: callbacks need one socket (to=sid); ignored", event)
        self.worker.emit(event, *args, to=target, namespace=nsp, skip_sid=skip_sid,
                         include_self=include_self, broadcast=target is None)

    def call(self, event, data=None, to=None, sid=None, namespace=None, timeout=60, **kwargs):
        """Flask-SocketIO's ``socketio.call``: emits to one socket and returns its ack (the
        single argument, or a tuple); raises :class:`sioc.CallTimeout` after ``timeout`` s."""
        target = to or sid
        if target is None and flask.has_request_context() and hasattr(flask.request, "sid"):
            target = flask.request.sid
        args = () if data is None else (data if isinstance(data, tuple) else (data,))
        nsp = namespace or (getattr(flask.request, "namespace", None)
                            if flask.has_request_context() else None) or "/"
        return self.worker.call(event, *args, to=target, namespace=nsp, timeout=timeout)

    def _in_context(self, namespace, sid, callback):
        """A callback that runs in the socket's request context, as Flask-SocketIO runs it."""
        def run(*args):
            return self._run(namespace, "callback", sid, args, lambda: callback(*args))
        return run

    def send(self, data, json=False, namespace=None, to=None, room=None, callback=None,
             include_self=True, skip_sid=None, **kwargs):
        self.emit("message", data, namespace=namespace, to=to, room=room, callback=callback,
                  include_self=include_self, skip_sid=skip_sid)

    def close_room(self, room, namespace=None):
        """Removes every socket of the cluster from ``room`` (the adapter's socketsLeave)."""
        self.worker.close_room(room, namespace=namespace or "/")

    def start_background_task(self, target, *args, **kwargs):
        """Runs ``target(*args, **kwargs)`` on a daemon thread; returns the thread."""
        thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds=0):
        time.sleep(seconds)

    def run(self, app=None, host=None, port=None, **kwargs):
        """Runs the worker until SIGINT/SIGTERM. With an app that has routes of its own (and
        a ``port``), also serves them (werkzeug) for pages; ``/socket.io/`` is the gateways'."""
        app = app or self.app
        if app is not None and self.app is None:
            self.init_app(app)
        if app is not None and port is not None:
            server = _serve_pages(app, host or "127.0.0.1", int(port))
            self.logger.info("sioc.flask: pages of %s on http://%s:%d/", app.name,
                             host or "127.0.0.1", server.server_port)
        else:
            server = None
        try:
            self.worker.run()
        finally:
            if server is not None:
                server.shutdown()
            self.worker.close()

    def stop(self):
        self.worker.stop()


_fallback = []


def _fallback_app():
    if not _fallback:
        _fallback.append(flask.Flask("sioc"))
    return _fallback[0]


def _serve_pages(app, host, port):
    from werkzeug.serving import make_server
    server = make_server(host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- module-level functions: act on the socket whose handler runs ----

def _socketio():
    sio = getattr(_current, "socketio", None)
    if sio is None:
        raise RuntimeError("this function works only inside a sioc.flask handler; "
                           "use socketio.emit(...) elsewhere")
    return sio


def emit(event, *args, namespace=None, to=None, room=None, include_self=True, skip_sid=None,
         broadcast=False, callback=None, **kwargs):
    """Flask-SocketIO's ``emit``: to the sender (now), or to ``to``/``room``, or with
    ``broadcast=True`` to everyone in the namespace."""
    sio = _socketio()
    if len(args) == 1 and isinstance(args[0], tuple):  # Flask-SocketIO: a tuple = several args
        args = args[0]
    nsp = namespace or flask.request.namespace
    target = to if to is not None else room
    if target is None and not broadcast:
        target = flask.request.sid
    if callback is not None and not broadcast:  # Flask-SocketIO: broadcasts have no callback
        sio.worker.emit(event, *args, to=target, namespace=nsp,
                        callback=sio._in_context(nsp, target, callback))
        return
    sio.worker.emit(event, *args, to=target, namespace=nsp, skip_sid=skip_sid,
                    include_self=include_self, broadcast=broadcast and target is None)


def send(message, json=False, namespace=None, to=None, room=None, include_self=True,
         skip_sid=None, broadcast=False, callback=None, **kwargs):
    """Flask-SocketIO's ``send``: event ``message``."""
    emit("message", message, namespace=namespace, to=to, room=room, include_self=include_self,
         skip_sid=skip_sid, broadcast=broadcast, callback=callback)


def join_room(room, sid=None, namespace=None):
    sio = _socketio()
    sio.worker.join_room(sid or flask.request.sid, room,
                         namespace=namespace or flask.request.namespace)


def leave_room(room, sid=None, namespace=None):
    sio = _socketio()
    sio.worker.leave_room(sid or flask.request.sid, room,
                          namespace=namespace or flask.request.namespace)


def close_room(room, namespace=None):
    _socketio().close_room(room, namespace=namespace or flask.request.namespace)


def rooms(sid=None, namespace=None):
    """The rooms of a socket (its own sid first), from the broker's registry mirror: joins
    made moments ago may not be there yet."""
    sio = _socketio()
    sid = sid or flask.request.sid
    raw = sio.worker.redis.hget("%s:sid:%s" % (sio.worker.key_prefix, sid), "rooms")
    out = [sid]
    for r in (protocol.unpack(raw) if raw else []):
        r = _text(r)
        if r not in out:
            out.append(r)
    return out


def call(event, data=None, to=None, sid=None, namespace=None, timeout=60, **kwargs):
    """Flask-SocketIO's ``call``: emits to one socket (default: the sender) and returns its
    ack; raises :class:`sioc.CallTimeout` after ``timeout`` s."""
    return _socketio().call(event, data, to=to, sid=sid, namespace=namespace, timeout=timeout)


def disconnect(sid=None, namespace=None, silent=False):
    sio = _socketio()
    sio.worker.disconnect(sid or flask.request.sid, namespace=namespace or flask.request.namespace)
