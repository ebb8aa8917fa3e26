"""Worker.call to a room or a user (issue 18, acks from any backend): two real gateways
(build/sioc-gateway, JWT users), a broker (build/sioc-broker: the registry mirror the rooms are
read from), a private redis-server and python-socketio clients on both gateways."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest

import socketio as sio_client

import sioc
from test_worker_redis import RedisCase

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class Server:
    """A sioc binary on a free port (--port-file), stopped by pid."""

    def __init__(self, binary, *args):
        self.dir = tempfile.mkdtemp(prefix="sioc-calls-test-")
        port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen(
            [os.path.join(REPO, "build", binary), "--listen", "127.0.0.1:0", "--port-file",
             port_file, "--log-level", "warn", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        port = ""
        while time.monotonic() < deadline and not port.endswith("\n"):
            time.sleep(0.02)
            if os.path.exists(port_file):
                with open(port_file) as f:
                    port = f.read()
        if not port.endswith("\n"):
            self.stop()
            raise RuntimeError("%s did not start" % binary)
        self.url = "http://127.0.0.1:%d" % int(port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)


def jwt(sub):
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    body = "%s.%s" % (b64({"alg": "HS256", "typ": "JWT"}), b64({"sub": sub, "exp": int(time.time()) + 600}))
    sig = hmac.new(b"s", body.encode(), hashlib.sha256).digest()
    return body + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


class CallRooms(RedisCase):

    def setUp(self):
        super().setUp()
        self.servers = []
        self.clients = []
        self.release = threading.Event()
        self.broker = self.server("sioc-broker", "--redis", self.url)
        self.gateways = [self.server("sioc-gateway", "--redis", self.url, "--node-id", node,
                                     "--auth", "jwt", "--jwt-secret", "s")
                         for node in ("callA", "callB")]
        self.w = sioc.Worker(redis_url=self.url, namespaces=["/"], group="calls-test",
                             consumer="c1")
        self.workers.append(self.w)

    def tearDown(self):
        self.release.set()
        for c in self.clients:
            c.disconnect()
        for s in self.servers:
            s.stop()
        super().tearDown()

    def server(self, binary, *args):
        s = Server(binary, *args)
        self.servers.append(s)
        return s

    def client(self, gateway, user, answer):
        """A python-socketio client whose 'ask' handler returns answer(data) (None: silent)."""
        c = sio_client.Client(reconnection=False)
        if answer is not None:
            c.on("ask", answer)
        else:
            c.on("ask", lambda data: self.release.wait(10))  # answers only after the test
        c.connect(self.gateways[gateway].url, transports=["websocket"], auth={"token": jwt(user)},
                  wait_timeout=5)
        self.clients.append(c)
        sid = c.get_sid("/")
        self.wait_for(lambda: self.r.hget("sioc:sid:" + sid, "node") is not None)
        return c, sid

    def wait_for(self, cond, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.02)
        self.fail("condition not met within %s s" % timeout)

    def test_user_on_two_gateways_and_a_room(self):
        _, a = self.client(0, "u1", lambda data: "a:" + data)
        _, b = self.client(1, "u1", lambda data: ("b", data))
        _, c = self.client(1, "u2", lambda data: None)  # acknowledges with no argument
        # a user room: the user's sockets on both gateways answer
        got = self.w.call("ask", "hi", to="user:u1", timeout=5)
        self.assertEqual(got, sorted([(a, "a:hi"), (b, ("b", "hi"))]))
        # a room joined by the SDK (published to each socket's gateway, read back from the mirror)
        for sid in (a, b, c):
            self.w.join_room(sid, "team")
        self.wait_for(lambda: self.r.scard("sioc:room:/:team") == 3)
        got = self.w.call("ask", "all", to="team", timeout=5)
        self.assertEqual(got, sorted([(a, "a:all"), (b, ("b", "all")), (c, None)]))
        # rooms and sids in a list, duplicates asked once
        got = self.w.call("ask", "x", to=["user:u2", a, "team"], namespace="/", timeout=5)
        self.assertEqual([sid for sid, _ in got], sorted([a, b, c]))
        # one sid: the ack itself, as before
        self.assertEqual(self.w.call("ask", "one", to=b, timeout=5), ("b", "one"))

    def test_silent_socket_timeout_carries_the_answers(self):
        _, a = self.client(0, "t1", lambda data: "ok")
        _, silent = self.client(1, "t1", None)
        start = time.monotonic()
        with self.assertRaises(sioc.CallTimeout) as caught:
            self.w.call("ask", "?", to="user:t1", timeout=1.5)
        self.assertGreaterEqual(time.monotonic() - start, 1.4)
        self.assertEqual(caught.exception.results, [(a, "ok")])
        self.assertEqual(caught.exception.missing, [silent])
        self.assertIsInstance(caught.exception, TimeoutError)

    def test_empty_and_unknown_targets(self):
        self.assertEqual(self.w.call("ask", "?", to=["nobody-here"], timeout=2), [])
        with self.assertRaises(sioc.CallError):
            self.w.call("ask", "?", to="nobody-here", timeout=2)


if __name__ == "__main__":
    unittest.main()
