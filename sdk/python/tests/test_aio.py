"""sioc.AsyncWorker against a real gateway: the seeds' python-socketio AsyncServer program
(async handlers that await sio.emit / sio.enter_room) runs unchanged but for its import."""

import asyncio
import threading
import time

import socketio as sio_client

import sioc
from test_flask import Gateway
from test_worker_redis import RedisCase


class AsyncWorkerCase(RedisCase):

    def setUp(self):
        super().setUp()
        self.gw = Gateway(self.url)
        sio = self.sio = sioc.AsyncWorker(self.url, name="aio-test", pool_size=8)
        self.connected = []

        @sio.event
        async def connect(sid, environ):
            self.connected.append((sid, environ["address"]))

        @sio.event
        async def message(sid, data):  # the seed's handler, as written for AsyncServer
            await sio.emit("response", {"data": f"Server received: {data}"}, room=sid)

        @sio.event
        async def slow(sid, label):
            await sio.sleep(1.0)
            return label

        @sio.event
        async def fast(sid):
            return "fast"

        @sio.event
        async def join(sid, room):
            await sio.enter_room(sid, room)
            await sio.emit("joined", sid, room=room)
            return sio.request.sid == sid  # the entry's context follows the coroutine

        @sio.event
        def plain(sid):  # a plain function still works
            return "plain"

        @sio.event
        async def ask(sid):
            return await sio.call("question", "sure?", to=sid, timeout=5)

        self.thread = threading.Thread(target=sio.run, daemon=True)
        self.thread.start()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.disconnect()
        self.sio.stop()
        self.thread.join(10)
        self.sio.close()
        self.gw.stop()
        super().tearDown()

    def client(self):
        c = sio_client.Client(reconnection=False)
        c.got = []
        for event in ("response", "joined"):
            c.on(event, (lambda ev: lambda *a: c.got.append((ev, a)))(event))
        c.connect(self.gw.url, transports=["websocket"], wait_timeout=5)
        self.clients.append(c)
        return c

    def wait_for(self, cond, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not cond():
            time.sleep(0.02)
        return cond()

    def test_seed_program_and_concurrency(self):
        a, b = self.client(), self.client()
        self.assertTrue(self.wait_for(lambda: len(self.connected) == 2))
        self.assertEqual(self.connected[0][1], "127.0.0.1")
        a.emit("message", "hello")
        self.assertTrue(self.wait_for(
            lambda: ("response", ({"data": "Server received: hello"},)) in a.got))
        self.assertEqual(a.call("plain", timeout=5), "plain")
        # a coroutine that sleeps delays only its own socket; two sleep side by side
        results = {}
        start = time.monotonic()
        for c, label in ((a, "A"), (b, "B")):
            c.emit("slow", label, callback=lambda got, label=label: results.setdefault(
                label, time.monotonic() - start))
        time.sleep(0.1)
        c = self.client()
        self.assertEqual(c.call("fast", timeout=5), "fast")
        fast_done = time.monotonic() - start
        self.assertTrue(self.wait_for(lambda: len(results) == 2, 5))
        self.assertLess(fast_done, min(results.values()))  # did not wait for the sleepers
        self.assertLess(max(results.values()), 1.8)  # not 2 s: they overlapped
        self.assertTrue(a.call("join", "r1", timeout=5))
        self.assertTrue(b.call("join", "r1", timeout=5))
        self.assertTrue(self.wait_for(lambda: ("joined", (b.get_sid(),)) in a.got))
        a.on("question", lambda q: "yes: " + q)
        self.assertEqual(a.call("ask", timeout=8), "yes: sure?")
