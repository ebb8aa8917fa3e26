"""Calls: a worker asks one client for an ack and gets the answer back, from any gateway.

The worker publishes a reply with ``"call": {"id", "to", "emit"}`` to the socket's node; that
gateway emits the event with an ack id, and publishes ``{"t":"ack","id","nsp","sid","args"}``
(or ``"error"``, e.g. "disconnected") on channel ``to`` = ``<prefix>:calls:<group>:<consumer>``,
which this process subscribes to (docs/contracts.md "Calls"). ``Calls`` keeps the pending
calls and the listening thread; :meth:`sioc.Worker.call` (one socket, or every socket of a
room: one call each) and ``emit(..., callback=)`` use it.
"""

import itertools
import os
import threading
import time

import redis as redis_lib

from . import protocol

__all__ = ["Calls", "CallError", "CallTimeout"]


class CallError(Exception):
    """The call could not be answered: the socket left, or the gateway refused it."""


class CallTimeout(CallError, TimeoutError):
    """No answer within the timeout.

    For a call to several sockets (a room), ``results`` holds the answers that did arrive, as
    the call would have returned them (``(sid, value)`` pairs in sid order), and ``missing`` the
    sids that did not answer in time, as Node's ``io.timeout(ms).emit(...)`` passes its error
    and the responses it got. For a call to one socket both are empty."""

    def __init__(self, message, results=None, missing=None):
        super().__init__(message)
        self.results = list(results or [])
        self.missing = list(missing or [])


CALLBACK_TTL = 3600.0  # s: a callback whose client never answers (nor leaves) is forgotten


class _Pending:
    __slots__ = ("done", "args", "error", "callback", "expires")

    def __init__(self, callback):
        self.done = threading.Event()
        self.args = None
        self.error = None
        self.callback = callback
        self.expires = time.monotonic() + CALLBACK_TTL


class Calls:
    """Pending calls of one worker process and the thread that receives their answers.

    ``run_callback(fn, args)`` is how a callback runs (the worker queues it behind the socket's
    events). The listener starts on the first call and reconnects with backoff.
    """

    def __init__(self, redis, channel, logger, run_callback):
        self.redis = redis
        self.channel = channel
        self.logger = logger
        self._run_callback = run_callback
        self._pending = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._prefix = "%x-%x-" % (os.getpid(), int(time.time() * 1000) & 0xffffffff)
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._thread = None

    def new(self, callback=None):
        """Registers a call; returns its id (the listener is subscribed when this returns)."""
        self._start()
        call_id = self._prefix + str(next(self._ids))
        with self._lock:
            self._pending[call_id] = _Pending(callback)
        return call_id

    def wait(self, call_id, timeout):
        """The ack arguments of ``call_id`` (a list); raises CallTimeout or CallError."""
        with self._lock:
            pending = self._pending.get(call_id)
        if pending is None:
            raise CallError("unknown call")
        if not pending.done.wait(timeout):
            self.forget(call_id)
            raise CallTimeout("no ack within %s s" % timeout)
        if pending.error is not None:
            raise CallError(pending.error)
        return pending.args

    def wait_many(self, call_ids, timeout):
        """Waits until every call of ``call_ids`` is answered or ``timeout`` s have passed, then
        forgets them all. Returns ``(answers, missing)``: ``{call_id: (args or None, error or
        None)}`` for the answered ones and the list of those without an answer."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pendings = [(call_id, self._pending.get(call_id)) for call_id in call_ids]
        answers, missing = {}, []
        for call_id, pending in pendings:
            if pending is None:  # swept: cannot happen within CALLBACK_TTL
                missing.append(call_id)
            elif pending.done.wait(max(0.0, deadline - time.monotonic())):
                answers[call_id] = (pending.args, pending.error)
            else:
                missing.append(call_id)
        with self._lock:
            for call_id in call_ids:
                self._pending.pop(call_id, None)
        return answers, missing

    def forget(self, call_id):
        with self._lock:
            self._pending.pop(call_id, None)

    def stop(self):
        self._stopping.set()

    def _start(self):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="sioc-calls",
                                                daemon=True)
                self._thread.start()
        if not self._subscribed.wait(5):
            raise CallError("cannot subscribe to %s" % self.channel)

    def _listen(self):
        backoff = 0.1
        while not self._stopping.is_set():
            ps = self.redis.pubsub()
            try:
                ps.subscribe(self.channel)
                next_sweep = time.monotonic() + 5
                while not self._stopping.is_set():
                    msg = ps.get_message(timeout=0.5)
                    if msg is not None and msg["type"] == "subscribe":
                        self._subscribed.set()  # confirmed: answers cannot be missed now
                        backoff = 0.1
                    elif msg is not None and msg["type"] == "message":
                        self._deliver(msg["data"])
                    if time.monotonic() >= next_sweep:
                        self._sweep()
                        next_sweep = time.monotonic() + 5
            except redis_lib.exceptions.RedisError as exc:
                self._subscribed.clear()
                self.logger.warning("calls: redis: %s; resubscribing in %.1fs", exc, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                ps.close()

    def _sweep(self):
        now = time.monotonic()
        with self._lock:
            for call_id in [k for k, p in self._pending.items() if p.expires < now]:
                del self._pending[call_id]

    def _deliver(self, data):
        try:
            call_id, args, error = protocol.decode_call_result(data)
        except protocol.ProtocolError as exc:
            self.logger.warning("calls: malformed answer skipped: %s", exc)
            return
        with self._lock:
            pending = self._pending.get(call_id)
            if pending is not None and pending.callback is not None:
                del self._pending[call_id]  # a callback call is never waited for
        if pending is None:
            self.logger.debug("calls: answer to an unknown or expired call %s", call_id)
            return
        pending.args, pending.error = args, error
        pending.done.set()
        if pending.callback is not None:
            if error is not None:
                self.logger.info("calls: callback not called: %s", error)
            else:
                self._run_callback(pending.callback, args)
