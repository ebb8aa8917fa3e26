"""Worker against a private redis-server: entries written as a gateway does, replies read back."""

import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import msgpack
import redis

import sioc
from sioc.emitter import encode_broadcast

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HS = msgpack.packb({"address": "127.0.0.1", "headers": {}, "query": {"EIO": "4"},
                    "url": "/socket.io/?EIO=4&transport=websocket", "time": "now",
                    "secure": False})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisCase(unittest.TestCase):
    """Starts a redis-server of its own for every test and kills it afterwards."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sioc-sdk-test-")
        for _ in range(5):  # a port can be taken between free_port() and the bind
            self.port = free_port()
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.dir],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ping(5.0):
                break
            self._kill()
        else:
            self.fail("redis-server did not answer PING")
        self.url = "redis://127.0.0.1:%d" % self.port
        self.r = redis.Redis.from_url(self.url, socket_timeout=5)
        self.workers = []
        self.subs = []
        logging.getLogger("sioc").setLevel(logging.ERROR)

    def _wait_ping(self, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return True
            except redis.exceptions.RedisError:
                time.sleep(0.02)
        return False

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)

    def tearDown(self):
        logging.getLogger("sioc").setLevel(logging.NOTSET)
        for ps in self.subs:
            ps.close()
        for w in self.workers:
            w.close()
        self.r.close()
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- helpers ----

    def worker(self, **kw):
        kw.setdefault("namespaces", ["/", "/chat"])
        kw.setdefault("group", "workers")
        kw.setdefault("consumer", "c1")
        w = sioc.Worker(redis_url=self.url, **kw)
        self.workers.append(w)
        w.setup()
        return w

    def subscribe(self, *patterns):
        ps = self.r.pubsub()
        ps.psubscribe(*patterns)
        got = 0
        deadline = time.monotonic() + 5
        while got < len(patterns) and time.monotonic() < deadline:
            m = ps.get_message(timeout=0.1)
            if m and m["type"] == "psubscribe":
                got += 1
        self.assertEqual(got, len(patterns))
        self.subs.append(ps)
        return ps

    def messages(self, ps, n, timeout=3.0):
        """The next n messages as (channel, raw bytes); fewer if the timeout passes."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            m = ps.get_message(timeout=0.1)
            if m and m["type"] == "pmessage":
                out.append((m["channel"].decode(), m["data"]))
        return out

    def xadd_event(self, event, args, sid="sid1", node="n1", nsp="/", ack=None, shard=0,
                   uid=""):
        fields = {"v": "1", "type": "event", "nsp": nsp, "sid": sid, "node": node, "uid": uid,
                  "ts": str(int(time.time() * 1000)), "event": event,
                  "args": msgpack.packb(args, use_bin_type=True)}
        if ack is not None:
            fields["ack"] = str(ack)
        return self.r.xadd("sioc:up:%s:%d" % (nsp, shard), fields)

    def xadd_connect(self, auth, sid="sid1", node="n1", nsp="/", rid=None):
        fields = {"v": "1", "type": "connect", "nsp": nsp, "sid": sid, "node": node, "uid": "",
                  "ts": str(int(time.time() * 1000)), "auth": msgpack.packb(auth), "hs": HS}
        if rid is not None:
            fields["rid"] = rid
        return self.r.xadd("sioc:up:%s:0" % nsp, fields)

    def run_until(self, w, n, timeout=3.0):
        handled = 0
        deadline = time.monotonic() + timeout
        while handled < n and time.monotonic() < deadline:
            handled += w.run_once(100)
        self.assertEqual(handled, n)

    def pending(self, key="sioc:up:/:0"):
        return self.r.xpending(key, "workers")["pending"]


class WorkerRedis(RedisCase):
    def test_groups_created(self):
        self.worker(shards=2)
        for key in ("sioc:up:/:0", "sioc:up:/:1", "sioc:up:/chat:0", "sioc:up:/chat:1"):
            self.assertEqual(self.r.xinfo_groups(key)[0]["name"], b"workers")
        self.worker(shards=2).setup()  # BUSYGROUP ignored

    def test_default_group_is_the_applications(self):
        chat = sioc.Worker(redis_url=self.url, name="chat-app")
        self.assertEqual(chat.group, "sioc-chat-app")
        other = sioc.Worker(redis_url=self.url, name="billing")
        self.assertEqual(other.group, "sioc-billing")
        for w in (chat, other):
            self.workers.append(w)
            w.setup()
        self.assertEqual(sorted(g["name"] for g in self.r.xinfo_groups("sioc:up:/:0")),
                         [b"sioc-billing", b"sioc-chat-app"])
        # two applications each get every entry, in their own group
        got = {"chat": [], "billing": []}
        chat.on("e", lambda sid, n: got["chat"].append(n))
        other.on("e", lambda sid, n: got["billing"].append(n))
        for n in range(3):
            self.xadd_event("e", [n])
        self.run_until(chat, 3)
        self.run_until(other, 3)
        self.assertEqual(got, {"chat": [0, 1, 2], "billing": [0, 1, 2]})
        self.assertEqual(sioc.worker.default_name(), sioc.worker.default_name())

    def test_echo_with_ack(self):
        w = self.worker()

        @w.on("echo")
        def echo(sid, *args):
            w.emit("echo", *args)
            return args

        ps = self.subscribe("sioc:node:*")
        self.xadd_event("echo", ["hello", {"n": 1}], ack=4)
        self.run_until(w, 1)
        (channel, emitted), (_, acked) = self.messages(ps, 2)
        self.assertEqual(channel, "sioc:node:n1")
        self.assertEqual(msgpack.unpackb(emitted), {  # published when called
            "t": "reply", "nsp": "/", "sid": "sid1", "emit": [["echo", "hello", {"n": 1}]]})
        self.assertEqual(msgpack.unpackb(acked), {  # the return value, last
            "t": "reply", "nsp": "/", "sid": "sid1",
            "ack": {"id": 4, "args": ["hello", {"n": 1}]}})
        self.assertEqual(self.pending(), 0)  # XACKed after publishing

    def test_effects_published_in_call_order(self):
        w = self.worker()

        @w.on("join", namespace="/chat")
        def join(sid, room):
            w.emit("before")
            w.join_room(sid, room)
            w.emit("joined", room, to=room)
            w.emit("after", 1)
            return True

        ps = self.subscribe("sioc:node:*", "socket.io#*")
        self.xadd_event("join", ["room1"], nsp="/chat", ack=0)
        self.run_until(w, 1)
        msgs = self.messages(ps, 6, timeout=1.0)
        base = {"t": "reply", "nsp": "/chat", "sid": "sid1"}
        self.assertEqual([c for c, _ in msgs], ["sioc:node:n1", "sioc:node:n1",
                                                "socket.io#/chat#room1#", "sioc:node:n1",
                                                "sioc:node:n1"])
        self.assertEqual(msgpack.unpackb(msgs[0][1]), dict(base, emit=[["before"]]))
        self.assertEqual(msgpack.unpackb(msgs[1][1]), dict(base, join=["room1"]))
        self.assertEqual(msgs[2][1], encode_broadcast("/chat", "joined", ["room1"], ["room1"])[1])
        self.assertEqual(msgpack.unpackb(msgs[3][1]), dict(base, emit=[["after", 1]]))
        self.assertEqual(msgpack.unpackb(msgs[4][1]), dict(base, ack={"id": 0, "args": [True]}))

    def test_binary_round_trip(self):
        w = self.worker()
        blob = bytes(range(256))

        @w.on("bin")
        def binary(sid, data, meta):
            self.assertIsInstance(data, bytes)
            w.emit("bin", data[::-1], {"nested": data[:2]})
            return data

        ps = self.subscribe("sioc:node:*")
        self.xadd_event("bin", [blob, {"len": 256}], ack=1)
        self.run_until(w, 1)
        (_, emitted), (_, acked) = self.messages(ps, 2)
        self.assertIn(b"\xc5\x01\x00" + blob, acked)  # bin 16, not str
        self.assertEqual(msgpack.unpackb(acked)["ack"], {"id": 1, "args": [blob]})
        self.assertEqual(msgpack.unpackb(emitted)["emit"],
                         [["bin", blob[::-1], {"nested": b"\x00\x01"}]])

    def test_connect_accept_and_reject_with_rid(self):
        w = self.worker()

        @w.on("connect")
        def connect(sid, auth):
            if auth and "reject" in auth:
                raise sioc.ConnectionRefusedError(auth["reject"], {"reason": "test"})
            if auth and "uid" in auth:
                w.join_room(sid, "user-lobby")
                return {"uid": auth["uid"]}
            return None

        ps = self.subscribe("sioc:node:*")
        self.xadd_connect({"reject": "go away"}, sid="a", rid="rid-a")
        self.xadd_connect({"uid": "u1"}, sid="b", rid="rid-b")
        self.xadd_connect(None, sid="c", rid="rid-c")
        self.xadd_connect({"uid": "u2"}, sid="d")  # no rid: a notification; the join still applies
        self.run_until(w, 4)
        got = [msgpack.unpackb(d) for _, d in self.messages(ps, 4, timeout=1.0)]
        got.sort(key=lambda m: m.get("rid", "z"))  # different sockets: handled concurrently
        self.assertEqual(got, [
            {"t": "connect", "rid": "rid-a", "ok": False,
             "error": {"message": "go away", "data": {"reason": "test"}}},
            {"t": "connect", "rid": "rid-b", "ok": True, "uid": "u1", "rooms": ["user-lobby"]},
            {"t": "connect", "rid": "rid-c", "ok": True},
            {"t": "reply", "nsp": "/", "sid": "d", "join": ["user-lobby"]}])

    def test_emit_to_room_and_outside_handler(self):
        w = self.worker()

        @w.on("room_msg")
        def room_msg(sid, room, text):
            w.emit("room_msg", text, room=room)

        ps = self.subscribe("socket.io#*", "sioc:node:*")
        self.xadd_event("room_msg", ["room1", "hi"])
        self.run_until(w, 1)
        w.emit("news", 1, 2.5)  # outside a handler: to everyone in "/"
        w.emit("chat-news", to="room1", namespace="/chat")
        msgs = self.messages(ps, 4, timeout=1.0)
        want_room = bytes.fromhex(
            "93a7656d697474657283a47479706502a46461746192a8726f6f6d5f6d7367a26869a36e7370a12f"
            "83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490")
        self.assertEqual(msgs, [
            ("socket.io#/#room1#", want_room),
            ("socket.io#/#", encode_broadcast("/", "news", [1, 2.5])[1]),
            ("socket.io#/chat#room1#",
             encode_broadcast("/chat", "chat-news", [], ["room1"])[1])])

    def test_malformed_entries_skipped_and_acked(self):
        w = self.worker()
        w.on("echo", lambda sid, *a: a)
        ps = self.subscribe("sioc:node:*")
        key = "sioc:up:/:0"
        self.r.xadd(key, {"v": "2", "type": "event"})                     # newer version
        self.r.xadd(key, {"v": "1", "type": "event", "nsp": "/"})         # fields missing
        self.xadd_event("echo", ["x"], ack=99)
        self.r.xadd(key, {"v": "1", "type": "event", "nsp": "/", "sid": "s", "node": "n1",
                          "uid": "", "ts": "1", "event": "echo", "args": b"\xc1",
                          "ack": "1"})                                      # bad msgpack
        self.r.xadd(key, {"v": "1", "type": "event", "nsp": "/", "sid": "s", "node": "n1",
                          "uid": "", "ts": "1", "event": "echo", "args": b"\x90",
                          "ack": "007"})                                    # bad decimal
        self.xadd_event("echo", [], ack=100)
        self.run_until(w, 6)
        got = [msgpack.unpackb(d)["ack"] for _, d in self.messages(ps, 3, timeout=1.0)]
        self.assertEqual(got, [{"id": 99, "args": ["x"]}, {"id": 100, "args": []}])
        self.assertEqual(self.pending(), 0)

    def test_shards_and_namespaces(self):
        w = self.worker(shards=3)
        w.on("ping", lambda sid: "pong", namespace="/chat")
        ps = self.subscribe("sioc:node:*")
        self.xadd_event("ping", [], sid="s2", node="n2", nsp="/chat", ack=1, shard=2)
        self.run_until(w, 1)
        (channel, data), = self.messages(ps, 1)
        self.assertEqual(channel, "sioc:node:n2")
        self.assertEqual(msgpack.unpackb(data)["ack"], {"id": 1, "args": ["pong"]})

    def test_pending_entries_replayed_after_restart(self):
        self.worker()  # creates the group
        self.xadd_event("echo", ["again"], ack=5)
        # a previous incarnation of consumer c1 read it and died before XACK
        self.r.xreadgroup("workers", "c1", {"sioc:up:/:0": ">"}, count=10)
        self.assertEqual(self.pending(), 1)
        w = self.worker()
        w.on("echo", lambda sid, *a: a)
        ps = self.subscribe("sioc:node:*")
        self.run_until(w, 1)
        (_, data), = self.messages(ps, 1)
        self.assertEqual(msgpack.unpackb(data)["ack"], {"id": 5, "args": ["again"]})
        self.assertEqual(self.pending(), 0)

    def test_idle_pending_claimed_from_dead_consumer(self):
        self.worker()
        self.xadd_event("echo", ["orphan"], ack=6)
        self.r.xreadgroup("workers", "dead", {"sioc:up:/:0": ">"}, count=10)
        w = self.worker()  # leases the stream: takes its pending entries over at once
        w.on("echo", lambda sid, *a: a)
        ps = self.subscribe("sioc:node:*")
        self.run_until(w, 1)
        (_, data), = self.messages(ps, 1)
        self.assertEqual(msgpack.unpackb(data)["ack"], {"id": 6, "args": ["orphan"]})
        self.assertEqual(self.pending(), 0)

    def test_pubsub_mode(self):
        w = self.worker(upstream="pubsub")
        w.on("echo", lambda sid, *a: a, namespace="/chat")
        ps = self.subscribe("sioc:node:*")
        m = {"v": 1, "type": "event", "nsp": "/chat", "sid": "s", "node": "n3", "uid": "",
             "ts": 1, "event": "echo", "args": [b"\x01", "t"], "ack": 8}
        self.r.publish("sioc:up:/chat", b"\xc1")  # malformed: skipped
        self.r.publish("sioc:up:/chat", msgpack.packb(m, use_bin_type=True))
        self.run_until(w, 2)
        (channel, data), = self.messages(ps, 1)
        self.assertEqual(channel, "sioc:node:n3")
        self.assertEqual(msgpack.unpackb(data)["ack"], {"id": 8, "args": [b"\x01", "t"]})

    def test_run_stop_and_redis_restart(self):
        w = self.worker(block_ms=100)
        w.on("echo", lambda sid, *a: a)
        ps = self.subscribe("sioc:node:*")
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        self.xadd_event("echo", [1], ack=1)
        self.assertEqual(len(self.messages(ps, 1)), 1)
        self.r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        self.xadd_event("echo", [2], ack=2)  # the worker reconnects and reads it
        (_, data), = self.messages(ps, 1, timeout=5)
        self.assertEqual(msgpack.unpackb(data)["ack"], {"id": 2, "args": [2]})
        w.stop()
        t.join(timeout=3)
        self.assertFalse(t.is_alive())

    def test_recovery_on_broadcasts_are_stored_once_with_their_offset(self):
        # docs/contracts.md "Connection state recovery": with P:rec:window set (a gateway with
        # recovery-window), a broadcast is XADDed to P:rec:<nsp> and published with the stream
        # id as the last element of its data; the emit to the sender becomes a broadcast to its
        # own room. Without the key the emitter bytes stay redis-emitter's.
        w = self.worker()
        ps = self.subscribe("socket.io#*")
        w.emit("plain", 1, to="room1")
        (_, data), = self.messages(ps, 1)
        self.assertEqual(msgpack.unpackb(data)[1]["data"], ["plain", 1])
        self.r.set("sioc:rec:window", "4000")
        w._recovery = (0, 0.0)  # re-read now rather than in 5 s
        w.emit("ev", 1, {"k": b"\x00"}, to="room1")
        w.emit("vol", 2, to="room1", volatile=True)  # volatile: never stored (as Node)
        self.xadd_event("echo", ["x"], sid="sidR", node="nR")
        w.on("echo", lambda sid, *a: w.emit("echo", *a))
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        msgs = self.messages(ps, 3, timeout=5)
        w.stop()
        t.join(timeout=3)
        self.assertEqual([c for c, _ in msgs], ["socket.io#/#room1#", "socket.io#/#room1#",
                                                "socket.io#/#sidR#"])
        entries = self.r.xrange("sioc:rec:/")
        self.assertEqual(len(entries), 2)
        first = msgpack.unpackb(msgs[0][1], raw=False)
        self.assertEqual(first[1]["data"], ["ev", 1, {"k": b"\x00"}, entries[0][0].decode()])
        self.assertEqual(first[2], {"rooms": ["room1"], "flags": {}, "except": []})
        self.assertEqual(msgpack.unpackb(msgs[1][1])[1]["data"], ["vol", 2])
        echo = msgpack.unpackb(msgs[2][1], raw=False)
        self.assertEqual(echo[1]["data"], ["echo", "x", entries[1][0].decode()])
        self.assertEqual(echo[2]["rooms"], ["sidR"])
        # the stored halves around the id are exactly the published bytes
        fields = entries[0][1]
        idb = entries[0][0]
        self.assertEqual(fields[b"a"] + bytes([0xa0 + len(idb)]) + idb + fields[b"b"], msgs[0][1])
        self.assertGreater(self.r.pttl("sioc:rec:/"), 4000)
        # the standalone Emitter does the same
        e = sioc.Emitter(self.r)
        self.assertEqual(e.emit("solo", 3, rooms=["room1"]), 1)
        (_, data), = self.messages(ps, 1)
        last = self.r.xrevrange("sioc:rec:/", count=1)[0][0].decode()
        self.assertEqual(msgpack.unpackb(data)[1]["data"], ["solo", 3, last])


if __name__ == "__main__":
    unittest.main()
