"""Codec tests without Redis: upstream entry decoding, reply and emitter bytes, dispatch."""

import json
import logging
import os
import unittest

import msgpack

import sioc
from sioc import protocol
from sioc.emitter import encode_broadcast
from sioc.protocol import ProtocolError, UnsupportedError

GOLDEN = os.path.join(os.environ.get("SIOC_SHARED_DATA", os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "..", "shared", "data")),
    "adapter-golden", "captures.json")

HS = {"address": "127.0.0.1", "headers": {"host": "x"}, "query": {"EIO": "4"},
      "url": "/socket.io/?EIO=4", "time": "t", "secure": False}


def event_fields(**over):
    """An event entry as redis-py's XREADGROUP returns it: bytes field -> bytes value."""
    f = {b"v": b"1", b"type": b"event", b"nsp": b"/", b"sid": b"sidA", b"node": b"n1",
         b"uid": b"", b"ts": b"1700000000000", b"event": b"echo",
         b"args": msgpack.packb(["hi", 1, 2.5, b"\x00\xff", {"k": None}], use_bin_type=True),
         b"ack": b"12"}
    for k, v in over.items():
        if v is None:
            f.pop(k.encode(), None)
        else:
            f[k.encode()] = v
    return f


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


class DecodeStream(unittest.TestCase):
    def test_event(self):
        e = protocol.decode_stream_entry(b"1700000000000-0", event_fields())
        self.assertEqual((e.id, e.type, e.nsp, e.sid, e.node, e.uid, e.ts, e.event, e.ack),
                         ("1700000000000-0", "event", "/", "sidA", "n1", "", 1700000000000,
                          "echo", 12))
        self.assertEqual(e.args, ["hi", 1, 2.5, b"\x00\xff", {"k": None}])
        self.assertIsInstance(e.args[3], bytes)

    def test_event_without_ack(self):
        e = protocol.decode_stream_entry(b"1-0", event_fields(ack=None))
        self.assertIsNone(e.ack)

    def test_connect_with_rid_and_disconnect(self):
        f = {b"v": b"1", b"type": b"connect", b"nsp": b"/chat", b"sid": b"s", b"node": b"n",
             b"uid": b"42", b"ts": b"5", b"auth": msgpack.packb({"token": "t"}),
             b"hs": msgpack.packb(HS), b"rid": b"r1", b"future": b"ignored"}
        e = protocol.decode_stream_entry(b"2-0", f)
        self.assertEqual((e.type, e.nsp, e.uid, e.auth, e.hs, e.rid),
                         ("connect", "/chat", "42", {"token": "t"}, HS, "r1"))
        f = {b"v": b"1", b"type": b"disconnect", b"nsp": b"/", b"sid": b"s", b"node": b"n",
             b"uid": b"", b"ts": b"0", b"reason": b"client namespace disconnect"}
        e = protocol.decode_stream_entry(b"3-0", f)
        self.assertEqual((e.type, e.reason), ("disconnect", "client namespace disconnect"))

    def test_nil_auth(self):
        f = {b"v": b"1", b"type": b"connect", b"nsp": b"/", b"sid": b"s", b"node": b"n",
             b"uid": b"", b"ts": b"1", b"auth": b"\xc0", b"hs": msgpack.packb(HS)}
        e = protocol.decode_stream_entry(b"2-0", f)
        self.assertIsNone(e.auth)
        self.assertIsNone(e.rid)

    def test_malformed(self):
        bad = [
            event_fields(ack=b"01"), event_fields(ack=b"+1"), event_fields(ack=b"12a"),
            event_fields(ack=b"18446744073709551616"), event_fields(ts=b""),
            event_fields(ts=None), event_fields(sid=b""), event_fields(node=None),
            event_fields(nsp=b"chat"), event_fields(args=b"\x91"),  # truncated
            event_fields(args=msgpack.packb({"a": 1})),  # not an array
            event_fields(args=b"\x90\x90"),  # trailing bytes
            event_fields(event=b"\xff\xfe"),  # not UTF-8
            event_fields(event=None), event_fields(v=None), event_fields(uid=None),
        ]
        for f in bad:
            with self.assertRaises(ProtocolError, msg=repr(f)):
                protocol.decode_stream_entry(b"1-0", f)
        with self.assertRaises(ProtocolError):
            protocol.decode_stream_entry(b"1-0", None)  # a trimmed pending entry
        with self.assertRaises(ProtocolError):  # connect needs hs and auth
            protocol.decode_stream_entry(b"1-0", {b"v": b"1", b"type": b"connect", b"nsp": b"/",
                                                  b"sid": b"s", b"node": b"n", b"uid": b"",
                                                  b"ts": b"1", b"auth": b"\xc0"})

    def test_unsupported(self):
        for f in (event_fields(v=b"2"), event_fields(type=b"upgrade")):
            with self.assertRaises(UnsupportedError):
                protocol.decode_stream_entry(b"1-0", f)

    def test_u64_max(self):
        e = protocol.decode_stream_entry(b"1-0", event_fields(ack=b"18446744073709551615"))
        self.assertEqual(e.ack, 2 ** 64 - 1)


class DecodePubsub(unittest.TestCase):
    def test_event_map(self):
        m = {"v": 1, "type": "event", "nsp": "/", "sid": "s", "node": "n", "uid": "",
             "ts": 17, "event": "e", "args": [b"\x01"], "ack": 3}
        e = protocol.decode_pubsub_entry(msgpack.packb(m, use_bin_type=True))
        self.assertEqual((e.event, e.args, e.ack, e.ts, e.id), ("e", [b"\x01"], 3, 17, None))

    def test_bad_maps(self):
        base = {"v": 1, "type": "event", "nsp": "/", "sid": "s", "node": "n", "uid": "",
                "ts": 17, "event": "e", "args": []}
        for over, exc in (({"v": "1"}, UnsupportedError), ({"v": 2}, UnsupportedError),
                          ({"ts": "17"}, ProtocolError), ({"ack": -1}, ProtocolError),
                          ({"args": {}}, ProtocolError), ({"sid": ""}, ProtocolError)):
            with self.assertRaises(exc, msg=repr(over)):
                protocol.decode_pubsub_entry(msgpack.packb(dict(base, **over)))
        with self.assertRaises(ProtocolError):
            protocol.decode_pubsub_entry(b"\x93\x01\x02\x03")


class EncodeReplies(unittest.TestCase):
    def test_full_reply_key_order(self):
        r = protocol.Reply("/", "s1")
        # filled in a different order than the wire order on purpose
        r.disconnect = True
        r.leave.append("r2")
        r.emit.append(["e", 1])
        r.join.append("r1")
        r.ack = (7, ["x", b"\x01"])
        want = h("88 a174 a57265706c79"           # t: reply
                 " a36e7370 a12f"                 # nsp: /
                 " a3736964 a27331"               # sid: s1
                 " a361636b 82 a26964 07 a461726773 92 a178 c40101"  # ack {id:7,args}
                 " a4656d6974 91 92 a165 01"      # emit [[e,1]]
                 " a46a6f696e 91 a27231"          # join [r1]
                 " a56c65617665 91 a27232"        # leave [r2]
                 " aa646973636f6e6e656374 c3")    # disconnect: true
        self.assertEqual(r.encode(), [want])

    def test_ack_without_args_and_empty(self):
        r = protocol.Reply("/chat", "s1")
        self.assertEqual(r.encode(), [])
        r.ack = (5, [])
        want = h("84 a174 a57265706c79 a36e7370 a52f63686174 a3736964 a27331"
                 " a361636b 82 a26964 05 a461726773 90")
        self.assertEqual(r.encode(), [want])

    def test_float_is_float64(self):
        r = protocol.Reply("/", "s")
        r.emit.append(["f", 1.5])
        self.assertIn(h("cb3ff8000000000000"), r.encode()[0])

    def test_split_long_lists(self):
        r = protocol.Reply("/", "s")
        r.join = ["j%d" % i for i in range(1500)]
        r.emit = [["e", i] for i in range(2049)]
        r.ack = (1, [])
        r.disconnect = True
        maps = [msgpack.unpackb(m) for m in r.encode()]
        self.assertEqual(len(maps), 5)
        self.assertEqual([len(m.get("join", [])) for m in maps], [1024, 476, 0, 0, 0])
        self.assertEqual([len(m.get("emit", [])) for m in maps], [0, 0, 1024, 1024, 1])
        self.assertEqual(["ack" in m for m in maps], [False, False, True, False, False])
        self.assertEqual(["disconnect" in m for m in maps], [False] * 4 + [True])

    def test_connect_accept(self):
        got = protocol.encode_connect_reply("r9", True, uid="u1", rooms=["a"])
        want = h("85 a174 a7636f6e6e656374 a3726964 a27239 a26f6b c3"
                 " a3756964 a27531 a5726f6f6d73 91 a161")
        self.assertEqual(got, want)

    def test_connect_reject(self):
        got = protocol.encode_connect_reply("r9", False, error=("no", {"reason": "test"}))
        want = h("84 a174 a7636f6e6e656374 a3726964 a27239 a26f6b c2"
                 " a56572726f72 82 a76d657373616765 a26e6f a464617461 81 a6726561736f6e"
                 " a474657374")
        self.assertEqual(got, want)
        self.assertEqual(protocol.encode_connect_reply("r", False),
                         h("83 a174 a7636f6e6e656374 a3726964 a172 a26f6b c2"))

    def test_shard_of(self):
        self.assertEqual(protocol.shard_of("a", 2 ** 32), 0xE40C292C)  # fnv1a32("a")
        self.assertEqual(protocol.shard_of("", 1000), 0x811C9DC5 % 1000)


class EmitterFormat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(GOLDEN) as f:
            cls.captures = {c["label"]: c for c in json.load(f)["captures"]}

    def check(self, label, nsp, args, rooms=(), except_rooms=(), flags=None):
        cap = self.captures[label]
        channel, data = encode_broadcast(nsp, args[0], args[1:], rooms, except_rooms, flags)
        self.assertEqual(channel, cap["channel"])
        self.assertEqual(data.hex(), cap["hex"])

    def test_emitter_all(self):
        self.check("emitter-all", "/", ["from-emitter", "e1"])

    def test_emitter_room(self):
        self.check("emitter-room", "/", ["emitter-room", "e2"], rooms=["room2"])

    def test_emitter_except_volatile(self):
        self.check("emitter-except-volatile", "/", ["emitter-exc", "e3"],
                   except_rooms=["room2"], flags={"volatile": True})

    def test_emitter_namespace(self):
        self.check("emitter-namespace", "/chat", ["emitter-chat", "e4"])

    def test_multi_room_channel(self):
        channel, data = encode_broadcast("/", "e", [b"\x01"], ["a", "b"])
        self.assertEqual(channel, "socket.io#/#")
        self.assertEqual(msgpack.unpackb(data), ["emitter", {"type": 2, "data": ["e", b"\x01"],
                                                             "nsp": "/"},
                                                 {"rooms": ["a", "b"], "flags": {},
                                                  "except": []}])


class Dispatch(unittest.TestCase):
    """Worker.dispatch without Redis: what one entry turns into."""

    def setUp(self):
        self.w = sioc.Worker(redis_url="redis://127.0.0.1:1", namespaces=["/", "/chat"])
        logging.getLogger("sioc").setLevel(logging.CRITICAL)

    def tearDown(self):
        logging.getLogger("sioc").setLevel(logging.NOTSET)

    def entry(self, **over):
        return protocol.decode_stream_entry(b"9-0", event_fields(**over))

    def test_one_reply_in_contract_order(self):
        w = self.w

        @w.on("echo")
        def echo(sid, *args):
            w.emit("first", 1)
            w.join_room(sid, "room1")
            w.emit("room-msg", "x", to="room1")
            w.emit("second", to=sid)
            return "ok", 2

        out = w.dispatch(self.entry())
        self.assertEqual([c for c, _ in out], ["sioc:node:n1", "socket.io#/#room1#"])
        self.assertEqual(msgpack.unpackb(out[0][1]), {
            "t": "reply", "nsp": "/", "sid": "sidA", "ack": {"id": 12, "args": ["ok", 2]},
            "emit": [["first", 1], ["second"]], "join": ["room1"]})
        self.assertEqual(list(msgpack.unpackb(out[0][1])),
                         ["t", "nsp", "sid", "ack", "emit", "join"])

    def test_no_ack_asked_return_ignored(self):
        self.w.on("echo", lambda sid, *a: "ignored")
        self.assertEqual(self.w.dispatch(self.entry(ack=None)), [])

    def test_handler_error_and_missing_handler(self):
        def boom(sid, *a):
            self.w.emit("lost")
            raise RuntimeError("x")
        self.assertEqual(self.w.dispatch(self.entry()), [])  # no handler
        self.w.on("echo", boom)
        with self.assertLogs("sioc", "ERROR") as logs:
            self.assertEqual(self.w.dispatch(self.entry()), [])
        self.assertIn("RuntimeError", "\n".join(logs.output))
        self.assertIsNone(self.w.request)

    def test_catch_all_and_request(self):
        seen = []

        @self.w.on("*")
        def any_event(event, sid, *args):
            seen.append((event, sid, self.w.request.id, len(args)))

        out = self.w.dispatch(self.entry())
        self.assertEqual(seen, [("echo", "sidA", "9-0", 5)])
        self.assertEqual(msgpack.unpackb(out[0][1])["ack"], {"id": 12, "args": []})

    def test_leave_then_join_cancel(self):
        @self.w.on("echo")
        def f(sid, *a):
            self.w.join_room(sid, "a")
            self.w.leave_room(sid, "a")
            self.w.leave_room(sid, "b")
            self.w.disconnect()
        m = msgpack.unpackb(self.w.dispatch(self.entry(ack=None))[0][1])
        self.assertEqual(m, {"t": "reply", "nsp": "/", "sid": "sidA", "leave": ["a", "b"],
                             "disconnect": True})

    def test_connect_variants(self):
        w = self.w
        f = {b"v": b"1", b"type": b"connect", b"nsp": b"/chat", b"sid": b"s", b"node": b"n",
             b"uid": b"", b"ts": b"1", b"auth": msgpack.packb({"x": 1}),
             b"hs": msgpack.packb(HS), b"rid": b"r1"}
        got = []

        @w.on("connect", namespace="/chat")
        def connect(sid, auth):
            got.append(auth)
            if auth.get("x") == 1:
                raise sioc.ConnectionRefusedError("nope", {"reason": "test"})
            w.join_room(sid, "lobby")
            w.emit("welcome")
            return {"uid": "u1"}

        out = w.dispatch(protocol.decode_stream_entry(b"1-0", f))
        self.assertEqual(got, [{"x": 1}])
        self.assertEqual(msgpack.unpackb(out[0][1]), {
            "t": "connect", "rid": "r1", "ok": False,
            "error": {"message": "nope", "data": {"reason": "test"}}})
        f[b"auth"] = msgpack.packb({})
        out = w.dispatch(protocol.decode_stream_entry(b"1-0", f))
        self.assertEqual([msgpack.unpackb(m) for _, m in out], [
            {"t": "connect", "rid": "r1", "ok": True, "uid": "u1", "rooms": ["lobby"]},
            {"t": "reply", "nsp": "/chat", "sid": "s", "emit": [["welcome"]]}])
        # python-socketio style (sid, environ) and builtin ConnectionRefusedError
        w.on("connect", lambda sid, environ: got.append(environ), namespace="/chat")
        w.dispatch(protocol.decode_stream_entry(b"1-0", f))
        self.assertEqual(got[-1], HS)

        def refuse(sid):
            raise ConnectionRefusedError("plain")
        w.on("connect", refuse, namespace="/chat")
        out = w.dispatch(protocol.decode_stream_entry(b"1-0", f))
        self.assertEqual(msgpack.unpackb(out[0][1])["error"], {"message": "plain"})
        del f[b"rid"]  # without rid a refusal is only logged
        self.assertEqual(w.dispatch(protocol.decode_stream_entry(b"1-0", f)), [])

    def test_disconnect_handler(self):
        reasons = []
        self.w.on("disconnect", lambda sid, reason: reasons.append((sid, reason)))
        f = {b"v": b"1", b"type": b"disconnect", b"nsp": b"/", b"sid": b"s", b"node": b"n",
             b"uid": b"", b"ts": b"1", b"reason": b"transport close"}
        self.assertEqual(self.w.dispatch(protocol.decode_stream_entry(b"1-0", f)), [])
        self.assertEqual(reasons, [("s", "transport close")])

    def test_recovered_connect_runs_no_handler(self):
        # a socket recovered on another gateway continues: no connect (nor disconnect) handler,
        # but replies to it now go to its new node
        calls = []
        self.w.on("connect", lambda sid, auth: calls.append(sid))
        self.w.on("disconnect", lambda sid, reason: calls.append(reason))
        f = {b"v": b"1", b"type": b"connect", b"nsp": b"/", b"sid": b"s", b"node": b"n2",
             b"uid": b"u", b"ts": b"1", b"auth": msgpack.packb({}), b"hs": msgpack.packb(HS),
             b"recovered": b"1"}
        e = protocol.decode_stream_entry(b"1-0", f)
        self.assertTrue(e.recovered)
        self.assertEqual(self.w.dispatch(e), [])
        self.assertEqual(calls, [])
        self.assertEqual(self.w._node_of("/", "s"), "n2")
        del f[b"recovered"]
        e = protocol.decode_stream_entry(b"1-0", f)
        self.assertFalse(e.recovered)
        self.w.dispatch(e)
        self.assertEqual(calls, ["s"])
        m = {"v": 1, "type": "connect", "nsp": "/", "sid": "s", "node": "n", "uid": "", "ts": 1,
             "auth": {}, "hs": HS, "recovered": 1}
        self.assertTrue(protocol.decode_pubsub_entry(msgpack.packb(m)).recovered)

    def test_unencodable_return(self):
        self.w.on("echo", lambda sid, *a: object())
        with self.assertLogs("sioc", "ERROR"):
            self.assertEqual(self.w.dispatch(self.entry()), [])

    def test_emit_other_sid_is_broadcast(self):
        @self.w.on("echo")
        def f(sid, *a):
            self.w.emit("dm", 1, to="otherSid", skip_sid="x")
            self.w.emit("all", broadcast=True, include_self=False)
        out = self.w.dispatch(self.entry(ack=None))
        self.assertEqual([c for c, _ in out], ["socket.io#/#otherSid#", "socket.io#/#"])
        self.assertEqual(msgpack.unpackb(out[0][1])[2], {"rooms": ["otherSid"], "flags": {},
                                                         "except": ["x"]})
        self.assertEqual(msgpack.unpackb(out[1][1])[2], {"rooms": [], "flags": {},
                                                         "except": ["sidA"]})

    def test_join_other_known_sid(self):
        f = event_fields(sid=b"other", node=b"n2", ack=None, event=b"noop")
        self.w.dispatch(protocol.decode_stream_entry(b"1-0", f))  # learns other -> n2

        @self.w.on("echo")
        def g(sid, *a):
            self.w.join_room("other", "r")
        out = self.w.dispatch(self.entry(ack=None))
        self.assertEqual(out[0][0], "sioc:node:n2")
        self.assertEqual(msgpack.unpackb(out[0][1]), {"t": "reply", "nsp": "/", "sid": "other",
                                                      "join": ["r"]})


if __name__ == "__main__":
    unittest.main()
