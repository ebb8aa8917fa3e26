"""sioc.flask_sockets and Worker.send against a private redis-server: upstream entries written as
a gateway writes those of a plain WebSocket route (DESIGN.md §2 ws-routes, §3.2: event
``message`` with one argument), the replies read back from ``P:node:<node>`` and the adapter
channels. The same surface against real gateways: tests/integration/test_ws_examples.mjs."""

import json
import logging
import threading
import time
import unittest

import flask
import msgpack

import sioc
from sioc.flask_sockets import HandlerMoved, Sockets, WebSocketError
from test_flask import Gateway
from test_worker_redis import RedisCase


def hs(url):
    return msgpack.packb({"address": "127.0.0.1", "headers": {"Origin": "http://page"},
                          "query": {}, "url": url, "time": 0, "secure": False})


class SocketsCase(RedisCase):

    def setUp(self):
        super().setUp()
        self.running = []
        self.app = flask.Flask("sockets-test")

    def tearDown(self):
        for s, t in self.running:
            s.stop()
            t.join(10)
        super().tearDown()

    def start(self, sockets):
        t = threading.Thread(target=sockets.run, daemon=True)
        t.start()
        self.running.append((sockets, t))
        deadline = time.monotonic() + 5
        while not sockets.worker._ready and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(sockets.worker._ready)

    def sockets(self, **kw):
        kw.setdefault("group", "g")
        kw.setdefault("consumer", "c1")
        return Sockets(self.app, message_queue=self.url, **kw)

    def xadd(self, nsp, sid, kind, node="n1", uid="", rid=None, url=None, data=None, shards=1):
        fields = {"v": "1", "type": kind, "nsp": nsp, "sid": sid, "node": node, "uid": uid,
                  "ts": str(int(time.time() * 1000))}
        if kind == "connect":
            fields.update(auth=msgpack.packb(None), hs=hs(url if url is not None else nsp))
            if rid is not None:
                fields["rid"] = rid
        elif kind == "event":
            fields.update(event="message", args=msgpack.packb([data], use_bin_type=True))
        else:
            fields["reason"] = "transport close"
        self.r.xadd("sioc:up:%s:%d" % (nsp, sioc.protocol.shard_of(sid, shards)), fields)

    def replies(self, ps, n, timeout=5.0):
        """The next n messages, decoded: (channel, map)."""
        return [(c, msgpack.unpackb(d, raw=False)) for c, d in self.messages(ps, n, timeout)]

    def wait_for(self, cond, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.02)
        return False


class SocketsSurface(SocketsCase):

    def test_echo_in_order_then_closed(self):
        """The seed's Flask-Sockets echo: messages in order, None and closed at disconnect."""
        sockets = self.sockets()
        seen = []

        @sockets.route("/test")
        def echo_socket(ws):
            while not ws.closed:
                message = ws.receive()
                seen.append((message, ws.closed, flask.request.path,
                             flask.request.headers.get("Origin")))
                ws.send("received" + message)

        self.assertEqual(sockets.ws_routes(), "/test=/test")
        ps = self.subscribe("sioc:node:*")
        self.start(sockets)
        self.xadd("/test", "s1", "connect")
        for i in range(20):
            self.xadd("/test", "s1", "event", data="m%d" % i)
        got = self.replies(ps, 20)
        self.assertEqual([m for _, m in got], [
            {"t": "reply", "nsp": "/test", "sid": "s1", "emit": [["message", "receivedm%d" % i]]}
            for i in range(20)])
        self.assertEqual({c for c, _ in got}, {"sioc:node:n1"})
        self.assertEqual(sockets.connections, 1)
        with self.assertLogs("sioc.flask_sockets", logging.INFO) as logs:
            self.xadd("/test", "s1", "disconnect")
            self.assertTrue(self.wait_for(lambda: sockets.connections == 0))
            self.assertTrue(self.wait_for(lambda: any("ended after the connection closed" in m
                                                      for m in logs.output)))
        self.assertEqual(seen[0], ("m0", False, "/test", "http://page"))
        self.assertEqual(seen[-1], (None, True, "/test", "http://page"))  # then 'received'+None
        self.assertEqual(self.messages(ps, 1, 0.5), [])  # no close sent for a closed connection
        self.assertEqual(self.r.exists("sioc:sock:g:s1"), 0)

    def test_username_from_url_or_user_binary_and_gevent_style(self):
        sockets = self.sockets()

        @sockets.route("/ws/<username>")
        def private(ws, username):
            ws.send({"me": username, "user": ws.user})
            while True:
                msg = ws.receive()
                if msg is None:
                    break
                ws.send(msg[::-1])

        @sockets.route("/room")
        def gevent_style():  # gevent-websocket's @app.route shape: no ws argument
            ws_socket = flask.request.environ.get("wsgi.websocket")
            ws_socket.join("lobby")
            ws_socket.send("joined")

        self.assertEqual(sockets.ws_routes(), "/ws/{user}=/ws,/room=/room")
        ps = self.subscribe("sioc:node:*")
        self.start(sockets)
        self.xadd("/ws", "a", "connect", uid="alice", url="/ws/alice?x=1")
        self.xadd("/ws", "b", "connect", uid="bob", url="/other")  # no match: the user
        self.xadd("/ws", "b", "event", data=b"\x00\x01\x02")
        got = {}
        for _, m in self.replies(ps, 3):
            got.setdefault(m["sid"], []).append(m["emit"][0][1])
        self.assertEqual(got, {"a": [{"me": "alice", "user": "alice"}],
                               "b": [{"me": "bob", "user": "bob"}, b"\x02\x01\x00"]})
        self.xadd("/room", "r", "connect")
        got = [m for _, m in self.replies(ps, 3)]
        # join, the send, then the close when the handler returns
        self.assertEqual(got, [{"t": "reply", "nsp": "/room", "sid": "r", "join": ["lobby"]},
                               {"t": "reply", "nsp": "/room", "sid": "r",
                                "emit": [["message", "joined"]]},
                               {"t": "reply", "nsp": "/room", "sid": "r", "disconnect": True}])
        # a message already on its way after the close starts no new handler
        self.xadd("/room", "r", "event", data="late")
        self.assertEqual(self.messages(ps, 1, 0.5), [])

    def test_bound_refuses_with_a_log_line(self):
        sockets = self.sockets(max_handlers=2)
        release = threading.Event()

        @sockets.route("/test")
        def hold(ws):
            release.wait(10)

        ps = self.subscribe("sioc:node:*")
        self.start(sockets)
        self.xadd("/test", "s1", "connect", rid="r1")
        self.xadd("/test", "s2", "connect", rid="r2")
        self.assertEqual([m["ok"] for _, m in self.replies(ps, 2)], [True, True])
        with self.assertLogs("sioc.flask_sockets", logging.WARNING) as logs:
            self.xadd("/test", "s3", "connect", rid="r3")  # auth backend: the answer refuses
            (_, refused), = self.replies(ps, 1)
            self.xadd("/test", "s4", "connect")  # accepted by the gateway: closed
            (_, closed), = self.replies(ps, 1)
        self.assertEqual((refused["rid"], refused["ok"], refused["error"]),
                         ("r3", False, {"message": "server busy (max_handlers)"}))
        self.assertEqual(closed, {"t": "reply", "nsp": "/test", "sid": "s4", "disconnect": True})
        self.assertEqual(len([m for m in logs.output if "max_handlers" in m]), 2)
        self.assertEqual(sockets.connections, 2)
        release.set()  # the handlers return: their connections are closed
        got = self.replies(ps, 2)
        self.assertEqual(sorted(m["sid"] for _, m in got), ["s1", "s2"])
        self.assertTrue(all(m.get("disconnect") for _, m in got))
        self.assertTrue(self.wait_for(lambda: sockets.connections == 0))
        self.xadd("/test", "s5", "connect", rid="r5")  # room again
        (_, ok), = self.replies(ps, 1)
        self.assertTrue(ok["ok"])

    def test_a_handler_that_stops_reading_is_closed(self):
        sockets = self.sockets(max_queue=3)
        release = threading.Event()

        @sockets.route("/test")
        def stuck(ws):
            release.wait(10)

        ps = self.subscribe("sioc:node:*")
        self.start(sockets)
        self.xadd("/test", "s1", "connect")
        with self.assertLogs("sioc.flask_sockets", logging.WARNING) as logs:
            for i in range(4):
                self.xadd("/test", "s1", "event", data=str(i))
            (_, m), = self.replies(ps, 1)
        self.assertEqual(m, {"t": "reply", "nsp": "/test", "sid": "s1", "disconnect": True})
        self.assertIn("3 messages wait for the handler (max_queue)", logs.output[0])
        release.set()
        self.assertTrue(self.wait_for(lambda: sockets.connections == 0))
        self.assertEqual(self.messages(ps, 1, 0.3), [])  # closed once

    def test_first_send_follows_the_connect_answer(self):
        sockets = self.sockets()

        @sockets.route("/test")
        def hello(ws):
            ws.send("hello")
            ws.receive()

        ps = self.subscribe("sioc:node:*")
        self.start(sockets)
        for i in range(5):
            self.xadd("/test", "s%d" % i, "connect", rid="r%d" % i, uid="u%d" % i)
        got = [m for _, m in self.replies(ps, 10)]
        for i in range(5):
            answer = [n for n, m in enumerate(got) if m.get("rid") == "r%d" % i]
            hello = [n for n, m in enumerate(got) if m.get("sid") == "s%d" % i]
            self.assertEqual(len(answer), 1)
            self.assertLess(answer[0], hello[0])
            self.assertEqual(got[answer[0]]["uid"], "u%d" % i)  # the {user} stays the user

    def test_broadcasts_skip_rooms_and_users(self):
        sockets = self.sockets()

        @sockets.route("/ws")
        def group_chat(ws):
            while True:
                msg = ws.receive()
                if msg is None:
                    break
                if msg.startswith("@"):
                    name, _, text = msg[1:].partition(" ")
                    sockets.user(name).send(text)
                else:
                    sockets.send(msg, skip=ws)

        ps = self.subscribe("socket.io#*")
        self.start(sockets)
        self.xadd("/ws", "a", "connect")
        self.xadd("/ws", "a", "event", data="hi all")
        self.xadd("/ws", "a", "event", data="@bob psst")
        (c1, m1), (c2, m2) = self.messages(ps, 2)
        self.assertEqual(c1, "socket.io#/ws#")
        self.assertEqual(msgpack.unpackb(m1, raw=False)[1]["data"], ["message", "hi all"])
        self.assertEqual(msgpack.unpackb(m1, raw=False)[2]["except"], ["a"])
        self.assertEqual(c2, "socket.io#/ws#user:bob#")
        self.assertEqual(msgpack.unpackb(m2, raw=False)[2]["rooms"], ["user:bob"])
        # outside handlers: the route must be named when there are several
        sockets.room("lobby", route="/ws").send(b"\x01")
        (c3, m3), = self.messages(ps, 1)
        self.assertEqual(c3, "socket.io#/ws#lobby#")
        self.assertEqual(msgpack.unpackb(m3, raw=False)[1]["data"], ["message", b"\x01"])

    def test_stream_taken_over_and_given_up(self):
        """When streams are shared anew, the process that gives a stream up ends the handlers of
        its connections (HandlerMoved, no close) and the one that takes it starts them at their
        next message, from the handshake kept in Redis."""
        opts = dict(shards=2, lease_ms=1500)
        first, second = self.sockets(consumer="c1", **opts), self.sockets(consumer="c2", **opts)
        ended = []
        for s in (first, second):
            @s.route("/ws/<username>")
            def chat(ws, username, s=s):
                try:
                    while True:
                        msg = ws.receive()
                        ws.send("%s:%s:%s" % (s.worker.consumer, username, msg))
                except HandlerMoved:
                    ended.append((s.worker.consumer, username))
                    raise

        sids = {}  # one connection on each of the two streams
        for n in range(100):
            sids.setdefault(sioc.protocol.shard_of("s%d" % n, 2), "s%d" % n)
        users = {sids[0]: "ann", sids[1]: "ben"}
        ps = self.subscribe("sioc:node:*")
        self.start(first)
        for sid, user in users.items():
            self.xadd("/ws", sid, "connect", uid=user, url="/ws/" + user, shards=2)
            self.xadd("/ws", sid, "event", data="1", shards=2)
        got = sorted(m["emit"][0][1] for _, m in self.replies(ps, 2))
        self.assertEqual(got, ["c1:ann:1", "c1:ben:1"])
        self.start(second)  # the two processes share the streams: c1 gives one up
        self.assertTrue(self.wait_for(lambda: len(ended) == 1 and first.connections == 1))
        self.assertEqual(self.messages(ps, 1, 0.3), [])  # no close: the connection stays
        moved = {"ann": sids[0], "ben": sids[1]}[ended[0][1]]
        for sid in users:
            self.xadd("/ws", sid, "event", data="2", shards=2)
        got = sorted(m["emit"][0][1] for _, m in self.replies(ps, 2))
        kept = [u for u in ("ann", "ben") if u != ended[0][1]][0]
        self.assertEqual(got, sorted(["c1:%s:2" % kept, "c2:%s:2" % users[moved]]))
        self.assertEqual(second.connections, 1)

    def test_errors_said_clearly(self):
        sockets = self.sockets()
        with self.assertRaises(ValueError):
            sockets.route("/a/<x>/<y>")(lambda ws, x, y: None)  # the gateway knows one {user}

        @sockets.route("/ws")
        def one(ws):
            pass
        with self.assertRaises(ValueError):  # two routes in one namespace
            sockets.route("/ws/<name>")(lambda ws, name: None)
        sockets.route("/ws/<name>", namespace="/private")(lambda ws, name: None)
        self.assertEqual(sockets.ws_routes(), "/ws=/ws,/ws/{user}=/private")
        with self.assertRaises(ValueError):
            sockets.send("x")  # which route?
        with self.assertRaises(TypeError):
            sockets.send(None, route="/ws")


class WorkerSend(RedisCase):
    """Worker.send: event ``message`` with one argument, to the sender or to any target."""

    def test_send_targets(self):
        w = self.worker(namespaces=["/ws"])

        @w.on("message", namespace="/ws")
        def message(sid, data):
            w.send(data)                                   # the sender
            w.send({"echo": data}, to="room1", skip_sid="x")  # a room but one sid
            w.send(data, broadcast=True, include_self=False)  # everyone else

        ps = self.subscribe("sioc:node:*", "socket.io#*")
        self.xadd_event("message", [b"\xff\x00"], nsp="/ws")
        self.run_until(w, 1)
        got = [(c, msgpack.unpackb(d, raw=False)) for c, d in self.messages(ps, 3)]
        self.assertEqual(got[0], ("sioc:node:n1", {"t": "reply", "nsp": "/ws", "sid": "sid1",
                                                   "emit": [["message", b"\xff\x00"]]}))
        self.assertEqual(got[1][0], "socket.io#/ws#room1#")
        self.assertEqual(got[1][1][1]["data"], ["message", {"echo": b"\xff\x00"}])
        self.assertEqual(got[1][1][2]["except"], ["x"])
        self.assertEqual(got[2][0], "socket.io#/ws#")
        self.assertEqual(got[2][1][2]["except"], ["sid1"])
        w.send("out", to="sid9", namespace="/ws")  # outside handlers: to a socket by its room
        (c, d), = self.messages(ps, 1)
        self.assertEqual(c, "socket.io#/ws#sid9#")
        self.assertEqual(msgpack.unpackb(d, raw=False)[1]["data"], ["message", "out"])

    def test_async_worker_send(self):
        w = sioc.AsyncWorker(redis_url=self.url, namespaces=["/ws"], group="workers",
                             consumer="c1")
        self.workers.append(w)
        w.setup()

        @w.on("message", namespace="/ws")
        async def message(sid, data):
            await w.send("got " + data)

        ps = self.subscribe("sioc:node:*")
        self.xadd_event("message", ["x"], nsp="/ws")
        self.run_until(w, 1)
        (_, d), = self.messages(ps, 1)
        self.assertEqual(msgpack.unpackb(d, raw=False)["emit"], [["message", "got x"]])


class WorkerPlainClients(RedisCase):
    """sioc.Worker behind a real gateway's ws-routes: plain clients (python3-websocket) and a
    Socket.IO client (python-socketio) in one namespace."""

    def test_messages_and_send_reach_plain_and_socketio_clients(self):
        import socketio as sio_client
        import websocket
        gw = Gateway(self.url, "--ws-routes", "/plain=/chat,/plain/{user}=/chat")
        w = self.worker(namespaces=["/chat"], group="plain")
        got = []

        @w.on("message", namespace="/chat")
        def message(sid, data):
            got.append((sid, w.request.uid, data))
            if data == "json?":
                w.send({"a": [1, 2]})                          # JSON text
            elif isinstance(data, bytes):
                w.send(data[::-1])                             # binary
            else:
                w.send("to all: " + data, broadcast=True)      # everyone in /chat

        stop = threading.Event()
        t = threading.Thread(target=lambda: [w.run_once(100) for _ in iter(stop.is_set, True)],
                             daemon=True)
        t.start()
        plain = websocket.create_connection(gw.url.replace("http", "ws") + "/plain/ann",
                                            timeout=5)
        other = sio_client.Client(reconnection=False)
        heard = []
        other.on("message", heard.append, namespace="/chat")
        try:
            other.connect(gw.url, namespaces=["/chat"], transports=["websocket"],
                          wait_timeout=5)
            plain.send("json?")
            self.assertEqual(json.loads(plain.recv()), {"a": [1, 2]})
            plain.send_binary(b"\x01\x02")
            opcode, data = plain.recv_data()
            self.assertEqual((opcode, data), (websocket.ABNF.OPCODE_BINARY, b"\x02\x01"))
            other.send("hi", namespace="/chat")  # a Socket.IO client's message: the same entry
            self.assertEqual(plain.recv(), "to all: hi")
            self.assertTrue(self.wait_for(lambda: heard == ["to all: hi"]))
            self.assertEqual([(uid, data) for _, uid, data in got],
                             [("ann", "json?"), ("ann", b"\x01\x02"), ("", "hi")])
        finally:
            plain.close()
            other.disconnect()
            stop.set()
            t.join(5)
            gw.stop()

    def test_sockets_bound_and_user_behind_a_gateway(self):
        """Past max_handlers a plain client is closed with 1008 and the reason; the {user}
        segment is the handler's argument."""
        import websocket
        gw = Gateway(self.url, "--ws-routes", "/plain/{user}=/chat")
        sockets = Sockets(flask.Flask("gw-test"), message_queue=self.url, max_handlers=1,
                          group="plain-sockets")

        @sockets.route("/plain/<name>", namespace="/chat")
        def hello(ws, name):
            ws.send("hello " + name)
            while ws.receive() is not None:
                pass

        t = threading.Thread(target=sockets.run, daemon=True)
        t.start()
        base = gw.url.replace("http", "ws")
        try:
            first = websocket.create_connection(base + "/plain/z%C3%BC", timeout=5)
            self.assertEqual(first.recv(), "hello z\u00fc")
            second = websocket.create_connection(base + "/plain/two", timeout=5)
            opcode, data = second.recv_data(control_frame=True)
            self.assertEqual(opcode, websocket.ABNF.OPCODE_CLOSE)
            self.assertEqual((int.from_bytes(data[:2], "big"), data[2:].decode()),
                             (1008, "server busy (max_handlers)"))
            first.close()
            self.assertTrue(self.wait_for(lambda: sockets.connections == 0))
            third = websocket.create_connection(base + "/plain/three", timeout=5)
            self.assertEqual(third.recv(), "hello three")
            third.close()
        finally:
            sockets.stop()
            t.join(10)
            gw.stop()

    def wait_for(self, cond, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.02)
        return False


if __name__ == "__main__":
    unittest.main()
