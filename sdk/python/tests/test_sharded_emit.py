"""adapter="sharded": broadcasts in @socket.io/redis-adapter's createShardedAdapter format.

Encodings checked against the golden captures of real Node peers
(tests/data/sharded-golden/captures.json, the uid set to "emitter"); then a Worker and an
Emitter on a private redis-server SPUBLISH on the channel Node's computeChannel picks, read back
with a raw SSUBSCRIBE (redis-py 4.3 has none)."""

import json
import os
import socket
import time
import unittest

import msgpack

import sioc
from sioc.emitter import (Emitter, ShardChannel, encode_sharded_broadcast,
                          encode_sharded_sockets_leave, sharded_channel)
from test_worker_redis import RedisCase

CAPTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "data",
                        "sharded-golden", "captures.json")


def captures():
    with open(CAPTURES, encoding="utf-8") as f:
        return {c["label"]: c for c in json.load(f)["captures"]}


def as_emitter(cap):
    """The captured bytes with Node's uid replaced by "emitter" (JSON or MessagePack)."""
    raw = bytes.fromhex(cap["hex"])
    if raw[:1] == b"{":
        msg = json.loads(raw)
        msg["uid"] = "emitter"
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
    msg = msgpack.unpackb(raw, raw=False)
    msg["uid"] = "emitter"
    return msgpack.packb(msg, use_bin_type=True)


class ShardedEncoding(unittest.TestCase):
    def setUp(self):
        self.caps = captures()

    def check(self, label, nsp, event, args, rooms=(), except_rooms=(), flags=None,
              mode="dynamic"):
        cap = self.caps[label]
        channel, data = encode_sharded_broadcast(nsp, event, args, rooms, except_rooms, flags,
                                                 mode=mode)
        self.assertIsInstance(channel, ShardChannel)
        self.assertEqual(channel, cap["channel"])
        self.assertEqual(data, as_emitter(cap))

    def test_all(self):
        self.check("broadcast-all", "/", "hello", ["all", 1])

    def test_room_on_its_channel(self):
        self.check("broadcast-room", "/", "room-msg", [{"x": 1}], rooms=["room1"])

    def test_rooms_except_on_the_namespace_channel(self):
        self.check("broadcast-rooms-except", "/", "multi", [1.5], rooms=["room1", "room2"],
                   except_rooms=["room3"])

    def test_socket_id_stays_on_the_namespace_channel_in_dynamic(self):
        self.check("broadcast-sid", "/", "to-sid", ["s"], rooms=["kH36jOnedD82UddQAAAB"])

    def test_socket_id_on_its_channel_in_dynamic_private(self):
        self.check("private-broadcast-sid", "/", "private", [1], rooms=["ObUkqEuFlaNMBaA6AAAD"],
                   mode="dynamic-private")

    def test_volatile_and_namespace(self):
        self.check("broadcast-volatile", "/", "vol", [None], flags={"volatile": True})
        self.check("broadcast-chat", "/chat", "chat", ["hi"])

    def test_binary_is_messagepack(self):
        self.check("broadcast-binary", "/", "bin", [b"\x01\x02\x03", {"nested": b"\x04"}])

    def test_static_never_uses_a_room_channel(self):
        self.assertEqual(sharded_channel("k", "/", "static", ["room1"]), "k#/#")
        self.assertEqual(sharded_channel("k", "/", "dynamic", ["room1"], has_request=True), "k#/#")

    def test_sockets_leave(self):
        channel, data = encode_sharded_sockets_leave("/", "room3")
        self.assertEqual(channel, "socket.io#/#")
        self.assertEqual(json.loads(data), {"type": 5, "data": {
            "opts": {"rooms": ["room3"], "except": [], "flags": {}}, "rooms": ["room3"]},
            "uid": "emitter", "nsp": "/"})

    def test_bad_options_refused(self):
        with self.assertRaises(ValueError):
            sioc.Worker(redis_url="redis://127.0.0.1:1", adapter="shard")
        with self.assertRaises(ValueError):
            Emitter(None, adapter="sharded", subscription_mode="dynamic_private")


class ShardSubscriber:
    """A raw RESP connection SSUBSCRIBEd to channels; collects the smessage payloads."""

    def __init__(self, port, *channels):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        for ch in channels:
            self.sock.sendall(b"*2\r\n$10\r\nSSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(ch), ch.encode()))
        for _ in channels:
            self.read_push()

    def _line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bulk(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read_push(self):
        """One push: [kind, channel, payload-or-count]."""
        head = self._line()
        assert head[:1] == b"*", head
        out = []
        for _ in range(int(head[1:])):
            t = self._line()
            out.append(self._bulk(int(t[1:])) if t[:1] == b"$" else int(t[1:]))
        return out

    def close(self):
        self.sock.close()


class ShardedWorkerRedis(RedisCase):
    def test_worker_spublishes_room_broadcasts_on_the_room_channel(self):
        w = self.worker(adapter="sharded")
        sub = ShardSubscriber(self.port, "socket.io#/#room1#", "socket.io#/#",
                              "socket.io#/chat#")
        try:
            w.emit("news", 1, to="room1")                    # dynamic: the room's channel
            w.emit("all", b"\x01")                           # everyone: the namespace's
            w.emit("chat", to=["a", "b"], namespace="/chat")  # two rooms: the namespace's
            w.close_room("room1")                            # SOCKETS_LEAVE
            got = [sub.read_push() for _ in range(4)]
        finally:
            sub.close()
        self.assertEqual([g[0] for g in got], [b"smessage"] * 4)
        self.assertEqual(got[0][1], b"socket.io#/#room1#")
        self.assertEqual(json.loads(got[0][2]), {"type": 3, "data": {
            "packet": {"type": 2, "data": ["news", 1]},
            "opts": {"rooms": ["room1"], "except": [], "flags": {}}}, "uid": "emitter", "nsp": "/"})
        self.assertEqual(got[1][1], b"socket.io#/#")
        self.assertEqual(msgpack.unpackb(got[1][2])["data"]["packet"]["data"], ["all", b"\x01"])
        self.assertEqual(got[2][1], b"socket.io#/chat#")
        self.assertEqual(json.loads(got[2][2])["data"]["opts"]["rooms"], ["a", "b"])
        self.assertEqual(json.loads(got[3][2])["type"], 5)
        # nothing in the classic format any more
        self.assertEqual(self.r.execute_command("PUBSUB", "NUMPAT"), 0)

    def test_adapter_from_the_gateways_environment(self):
        os.environ["SIOC_ADAPTER"] = "sharded"
        os.environ["SIOC_SUBSCRIPTION_MODE"] = "static"
        try:
            w = self.worker()
        finally:
            del os.environ["SIOC_ADAPTER"], os.environ["SIOC_SUBSCRIPTION_MODE"]
        self.assertEqual((w.adapter, w.subscription_mode), ("sharded", "static"))
        sub = ShardSubscriber(self.port, "socket.io#/#")
        try:
            w.emit("x", to="room1")  # static: the namespace channel
            self.assertEqual(sub.read_push()[1], b"socket.io#/#")
        finally:
            sub.close()

    def test_flask_socketio_passes_the_adapter_on(self):
        import flask
        from sioc.flask import SocketIO
        app = flask.Flask(__name__)
        socketio = SocketIO(app, message_queue=self.url, adapter="sharded",
                            subscription_mode="dynamic-private")
        w = socketio.worker
        self.workers.append(w)
        self.assertEqual((w.adapter, w.subscription_mode), ("sharded", "dynamic-private"))
        sub = ShardSubscriber(self.port, "socket.io#/#kH36jOnedD82UddQAAAB#")
        try:
            socketio.emit("x", to="kH36jOnedD82UddQAAAB")  # dynamic-private: a sid's own channel
            self.assertEqual(sub.read_push()[1], b"socket.io#/#kH36jOnedD82UddQAAAB#")
        finally:
            sub.close()

    def test_emitter_sharded_counts_receivers(self):
        e = Emitter(self.r, adapter="sharded")
        self.assertEqual(e.emit("x", rooms=["r"]), 0)
        sub = ShardSubscriber(self.port, "socket.io#/#r#")
        try:
            deadline = time.monotonic() + 5
            while e.emit("x", rooms=["r"]) != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(sub.read_push()[1], b"socket.io#/#r#")
        finally:
            sub.close()


if __name__ == "__main__":
    unittest.main()
