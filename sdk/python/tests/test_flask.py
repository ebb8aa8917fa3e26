"""sioc.flask against a real gateway (build/sioc-gateway, auth backend) and a private
redis-server, with python-socketio clients: Flask-SocketIO programs keep their handlers."""

import os
import subprocess
import tempfile
import threading
import time
import unittest

import flask
import socketio as sio_client
import socketio.exceptions as socketio_exceptions

import sioc
from sioc.flask import (ConnectionRefusedError, Namespace, SocketIO, call, close_room, disconnect,
                        emit, join_room, leave_room, rooms, send)
from test_worker_redis import RedisCase

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
GATEWAY = os.path.join(REPO, "build", "sioc-gateway")


class Gateway:
    """build/sioc-gateway on a free port, stopped by pid."""

    def __init__(self, redis_url, *extra):
        self.dir = tempfile.mkdtemp(prefix="sioc-flask-test-")
        port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen(
            [GATEWAY, "--redis", redis_url, "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--namespaces", "/,/chat,/class", "--auth", "backend", "--auth-timeout", "3000",
             "--log-level", "warn", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        port = ""
        while time.monotonic() < deadline and not port.endswith("\n"):
            time.sleep(0.02)
            if os.path.exists(port_file):
                with open(port_file) as f:
                    port = f.read()
        self.url = "http://127.0.0.1:%d" % int(port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stderr.close()


def build_app(test):
    """The Flask-SocketIO program under test: only its import line names sioc."""
    app = flask.Flask("flask-test")
    app.secret_key = "test"
    socketio = SocketIO(app, message_queue=test.url, name="flask-test", pool_size=8)
    seen = test.seen

    @socketio.on("connect")
    def on_connect(auth):
        if auth and auth.get("refuse") == "false":
            return False
        if auth and auth.get("refuse") == "raise":
            raise ConnectionRefusedError("go away", {"why": "test"})
        if auth and auth.get("refuse") == "python-socketio":  # what flask_socketio exports
            raise socketio_exceptions.ConnectionRefusedError("not you", {"why": "psio"})
        flask.session["connected_as"] = (auth or {}).get("user", "anon")
        emit("welcome", {"sid": flask.request.sid})
        return (auth or {}).get("user")  # sioc: a user id becomes the socket's user

    @socketio.on("whoami")
    def whoami():
        r = flask.request
        return {"sid": r.sid, "namespace": r.namespace, "event": r.event["message"],
                "args": dict(r.args), "header": r.headers.get("X-Test"),
                "remote": r.remote_addr, "session": flask.session.get("connected_as")}

    @socketio.on("remember")
    def remember(value):
        flask.session["value"] = value
        return "stored"

    @socketio.on("recall")
    def recall():
        return flask.session.get("value")

    @socketio.on("two")
    def two(a, b):
        return a, b  # a tuple: two ack arguments

    @socketio.on("message")
    def message(data):
        send(data)                   # back to the sender, event 'message'
        send({"j": data}, json=True)

    @socketio.on("slow")
    def slow(label):
        emit("progress", "start to process...")
        socketio.sleep(1.0)
        emit("progress", "processed")
        return label

    @socketio.on("fast")
    def fast():
        return "fast"

    @socketio.on("ask_me")
    def ask_me(question):
        def answered(*answer):  # runs later, in this socket's request context
            seen.append(("callback", flask.request.sid, answer))
        emit("question", question, callback=answered)
        return "asked"

    @socketio.on("ask_other")
    def ask_other(other_sid):
        return call("question", "from a worker", to=other_sid, timeout=5)

    @socketio.on("join", namespace="/chat")
    def on_join(data):
        join_room(data["room"])
        send(data["name"] + " has entered the room.", to=data["room"])
        return rooms()

    @socketio.on("leave", namespace="/chat")
    def on_leave(data):
        leave_room(data["room"])
        send(data["name"] + " has left the room.", to=data["room"])

    @socketio.on("say", namespace="/chat")
    def say(data):
        emit("said", data["text"], to=data["room"], include_self=data.get("self", True))

    @socketio.on("shout", namespace="/chat")
    def shout(text):
        emit("shouted", text, broadcast=True)

    @socketio.on("close", namespace="/chat")
    def close(room):
        close_room(room)

    @socketio.on("kick")
    def kick():
        disconnect()

    @socketio.on("fail")
    def fail():
        raise ValueError("boom")

    @socketio.on("fail", namespace="/chat")
    def fail_chat():
        raise KeyError("chat boom")

    @socketio.on_error()
    def on_error(e):
        seen.append(("error /", flask.request.event["message"], str(e)))
        return "handled: " + str(e)

    @socketio.on_error_default
    def on_error_default(e):
        seen.append(("error default", flask.request.namespace, repr(e)))
        return "default"

    @socketio.on("background")
    def background():
        def task(n):
            socketio.sleep(0.1)
            socketio.emit("from_task", n)   # outside any handler: everyone in '/'
        socketio.start_background_task(task, 7)

    class ClassNamespace(Namespace):
        def on_connect(self):
            seen.append(("class connect", flask.request.sid))

        def on_hello(self, data):
            self.emit("hello_back", data)
            return "class"

        def on_both(self):
            return "class"

    socketio.on_namespace(ClassNamespace("/class"))

    @socketio.on("both", namespace="/class")
    def both():
        return "decorator"  # decorator handlers win over class methods

    return app, socketio


EVENTS = ("hello_back", "question", "welcome", "message", "said", "shouted", "from_task", "to_user")


class FlaskApi(RedisCase):

    def setUp(self):
        super().setUp()
        self.seen = []
        self.gw = Gateway(self.url)
        self.app, self.socketio = build_app(self)
        self.thread = threading.Thread(target=self.socketio.run, args=(self.app,), daemon=True)
        self.thread.start()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.disconnect()
        self.socketio.stop()
        self.thread.join(10)
        self.gw.stop()
        super().tearDown()

    def client(self, namespaces=("/",), transports=("websocket",), auth=None, query="",
               headers=None):
        c = sio_client.Client(reconnection=False)
        c.got = []
        for nsp in namespaces:
            for event in EVENTS:
                c.on(event, (lambda ev: lambda *args: c.got.append((ev, args)))(event),
                     namespace=nsp)
        c.connect(self.gw.url + "/" + query, namespaces=list(namespaces),
                  transports=list(transports), auth=auth, headers=headers or {},
                  wait_timeout=5)
        self.clients.append(c)
        return c

    def wait_for(self, cond, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.02)
        return False

    def test_request_context_session_and_acks(self):
        for transports in (["websocket"], ["polling"]):
            c = self.client(transports=transports, auth={"user": "alice"}, query="?room=r1",
                            headers={"X-Test": "yes"})
            self.assertTrue(self.wait_for(lambda: any(e == "welcome" for e, _ in c.got)))
            info = c.call("whoami", timeout=5)
            self.assertEqual(info["sid"], c.get_sid("/"))
            self.assertEqual(info["namespace"], "/")
            self.assertEqual(info["event"], "whoami")
            self.assertEqual(info["args"]["room"], "r1")
            self.assertEqual(info["header"], "yes")
            self.assertEqual(info["remote"], "127.0.0.1")
            self.assertEqual(info["session"], "alice")  # set in connect, seen in every event
            self.assertEqual(c.call("remember", [1, "two"], timeout=5), "stored")
            self.assertEqual(c.call("recall", timeout=5), [1, "two"])
            self.assertEqual(c.call("two", ("x", 2), timeout=5), ("x", 2))
            self.assertIsNotNone(self.r.hget("sioc:sock:sioc-flask-test:" + c.get_sid("/"),
                                              "session"))
            c.send("hi")
            self.assertTrue(self.wait_for(lambda: ("message", ("hi",)) in c.got and
                                          ("message", ({"j": "hi"},)) in c.got))
            c.disconnect()
        # the socket's state is removed at disconnect
        self.assertTrue(self.wait_for(lambda: not list(self.r.scan_iter("sioc:sock:*"))))

    def test_emits_are_immediate_and_sockets_concurrent(self):
        a = self.client()
        b = self.client()
        times = {}
        a.on("progress", lambda msg: times.setdefault(msg, time.monotonic()))
        done = threading.Event()
        a.emit("slow", "L", callback=lambda label: (times.setdefault("ack", time.monotonic()),
                                                     done.set()))
        self.assertTrue(self.wait_for(lambda: "start to process..." in times, 3))
        self.assertEqual(b.call("fast", timeout=5), "fast")
        fast_done = time.monotonic()
        self.assertTrue(done.wait(5))
        # another client's ack did not wait for the slow handler (a bound on the time instead
        # would fail on a loaded machine)
        self.assertLess(fast_done, times["processed"], "the fast ack waited for the slow handler")
        # the first emit was sent at once, not held until the handler ended
        self.assertGreater(times["processed"] - times["start to process..."], 0.9)
        self.assertGreaterEqual(times["ack"], times["processed"])

    def test_callbacks_and_calls(self):
        a = self.client()
        b = self.client()
        a.on("question", lambda q: ("yes", q))   # the client's ack: two arguments
        b.on("question", lambda q: "b says " + q)
        self.assertEqual(a.call("ask_me", "ready?", timeout=5), "asked")
        self.assertTrue(self.wait_for(lambda: ("callback", a.get_sid("/"), ("yes", "ready?"))
                                      in self.seen))
        # a handler asks another socket and waits for its answer (any gateway, via Redis)
        self.assertEqual(a.call("ask_other", b.get_sid("/"), timeout=8), "b says from a worker")
        # outside handlers: socketio.call to a socket, and the error when it has left
        self.assertEqual(self.socketio.call("question", "direct", to=b.get_sid("/"), timeout=5),
                         "b says direct")
        gone = b.get_sid("/")
        b.disconnect()
        time.sleep(0.3)
        with self.assertRaises(sioc.CallError):
            self.socketio.call("question", "anyone?", to=gone, timeout=5)

    def test_connect_refused_and_user(self):
        # The three refusals side by side: after a CONNECT_ERROR, python-socketio's connect()
        # waits its whole wait_timeout for other namespaces before it raises.
        cases = (("false", "Connection rejected by server"),
                 ("raise", {"message": "go away", "data": {"why": "test"}}),
                 ("python-socketio", {"message": "not you", "data": {"why": "psio"}}))
        raised = {}
        errors = {how: [] for how, _ in cases}

        def refused(how):
            c = sio_client.Client(reconnection=False)
            c.on("connect_error", errors[how].append)
            try:
                c.connect(self.gw.url, transports=["websocket"], auth={"refuse": how},
                          wait_timeout=5)
                raised[how] = None
            except Exception as e:  # noqa: BLE001 (checked below, in the test's thread)
                raised[how] = e

        threads = [threading.Thread(target=refused, args=(how,)) for how, _ in cases]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for how, error in cases:
            self.assertIsInstance(raised.get(how), sio_client.exceptions.ConnectionError, how)
            self.assertTrue(self.wait_for(lambda: errors[how]), how)
            got = errors[how][0]
            if isinstance(error, str):
                got = got.get("message") if isinstance(got, dict) else got
            self.assertEqual(got, error)
        c = self.client(auth={"user": "bob"})
        self.assertTrue(self.wait_for(lambda: any(e == "welcome" for e, _ in c.got)))
        self.socketio.emit("to_user", "hi bob", to="user:bob")  # the gateway's user room
        self.assertTrue(self.wait_for(lambda: ("to_user", ("hi bob",)) in c.got))

    def test_rooms_broadcasts_and_close_room(self):
        a = self.client(namespaces=["/chat"])
        b = self.client(namespaces=["/chat"])
        c = self.client(namespaces=["/chat"])
        for cl, name in ((a, "a"), (b, "b")):
            got = cl.call("join", {"room": "r", "name": name}, namespace="/chat", timeout=5)
            self.assertEqual(got[0], cl.get_sid("/chat"))
        self.assertTrue(self.wait_for(lambda: ("message", ("b has entered the room.",)) in a.got))
        a.emit("say", {"room": "r", "text": "one", "self": False}, namespace="/chat")
        self.assertTrue(self.wait_for(lambda: ("said", ("one",)) in b.got))
        c.emit("shout", "all", namespace="/chat")
        self.assertTrue(self.wait_for(lambda: all(("shouted", ("all",)) in x.got
                                                  for x in (a, b, c))))
        self.assertNotIn(("said", ("one",)), a.got)  # include_self=False
        self.assertNotIn(("said", ("one",)), c.got)  # not in the room
        b.emit("leave", {"room": "r", "name": "b"}, namespace="/chat")
        self.assertTrue(self.wait_for(lambda: ("message", ("b has left the room.",)) in a.got))
        c.emit("close", "r", namespace="/chat")
        time.sleep(0.3)
        c.emit("say", {"room": "r", "text": "after close"}, namespace="/chat")
        time.sleep(0.5)
        self.assertNotIn(("said", ("after close",)), a.got)

    def test_errors_namespaces_disconnect_and_background(self):
        c = self.client(namespaces=["/", "/chat", "/class"])
        self.assertEqual(c.call("fail", timeout=5), "handled: boom")
        self.assertEqual(c.call("fail", namespace="/chat", timeout=5), "default")
        self.assertIn(("error /", "fail", "boom"), self.seen)
        other = self.client(namespaces=["/class"])
        self.assertEqual(c.call("hello", "x", namespace="/class", timeout=5), "class")
        # Namespace.emit is socketio.emit in the namespace: everyone in it, as Flask-SocketIO
        self.assertTrue(self.wait_for(lambda: ("hello_back", ("x",)) in c.got and
                                      ("hello_back", ("x",)) in other.got))
        self.assertEqual(c.call("both", namespace="/class", timeout=5), "decorator")
        self.assertIn(("class connect", c.get_sid("/class")), self.seen)
        c.emit("background")
        self.assertTrue(self.wait_for(lambda: ("from_task", (7,)) in c.got))
        c.emit("kick")
        self.assertTrue(self.wait_for(lambda: c.get_sid("/") is None, 5))


if __name__ == "__main__":
    unittest.main()


class FlaskConfiguration(unittest.TestCase):
    """Options as Flask-SocketIO programs pass them (no Redis needed)."""

    def test_application_factory_and_flask_socketio_options(self):
        socketio = SocketIO(logger=True, engineio_logger=True, cors_allowed_origins="*")

        @socketio.on("e", namespace="/only")
        def handler():
            pass

        app = flask.Flask("factory")
        socketio.init_app(app, message_queue="redis://10.0.0.9:6380/2", shards=3)
        self.assertEqual(socketio.worker.redis_url, "redis://10.0.0.9:6380/2")
        self.assertEqual(socketio.worker.shards, 3)
        self.assertEqual(socketio.worker.namespaces, ["/only"])  # not "/": no handler there
