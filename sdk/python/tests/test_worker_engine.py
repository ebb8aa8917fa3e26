"""The worker engine against a private redis-server: handlers of different sockets run
concurrently, one socket's events run in order (also across two processes sharing a group),
a failing handler never stops the worker, SIGINT/SIGTERM finish the handlers in flight."""

import os
import signal
import subprocess
import sys
import threading
import time

import msgpack

import sioc
from sioc import protocol
from test_worker_redis import RedisCase

HERE = os.path.dirname(os.path.abspath(__file__))


class WorkerEngine(RedisCase):

    def xadd_to_shard(self, event, args, sid, shards, ack=None):
        return self.xadd_event(event, args, sid=sid, ack=ack,
                               shard=protocol.shard_of(sid, shards))

    def test_blocking_handler_delays_only_its_socket(self):
        w = self.worker(pool_size=4)
        release = threading.Event()

        @w.on("slow")
        def slow(sid):
            release.wait(5)
            return "slow done"

        @w.on("fast")
        def fast(sid):
            return "fast done"

        ps = self.subscribe("sioc:node:*")
        self.xadd_event("slow", [], sid="a", ack=1)
        self.xadd_event("fast", [], sid="b", ack=2)
        self.xadd_event("fast", [], sid="a", ack=3)  # waits behind the slow one of its socket
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        first = self.messages(ps, 1, timeout=3.0)
        self.assertEqual([msgpack.unpackb(d)["ack"]["id"] for _, d in first], [2])
        self.assertEqual(self.messages(ps, 1, timeout=0.3), [])  # a's second event still waits
        release.set()
        rest = [msgpack.unpackb(d)["ack"]["id"] for _, d in self.messages(ps, 2, timeout=3.0)]
        self.assertEqual(rest, [1, 3])
        w.stop()
        t.join(5)
        self.assertFalse(t.is_alive())

    def test_one_sockets_events_in_order_many_sockets_concurrently(self):
        w = self.worker(pool_size=8)
        seen, running, peak = [], [0], [0]
        lock = threading.Lock()

        @w.on("n")
        def n(sid, value):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.005)
            with lock:
                running[0] -= 1
                seen.append((sid, value))

        for value in range(10):
            for s in range(8):
                self.xadd_event("n", [value], sid="s%d" % s)
        self.run_until(w, 80)
        for s in range(8):
            self.assertEqual([v for sid, v in seen if sid == "s%d" % s], list(range(10)))
        self.assertGreater(peak[0], 1)  # sockets really ran side by side

    def test_failing_handler_logged_and_worker_goes_on(self):
        w = self.worker()
        w.on("boom", lambda sid: 1 / 0)
        w.on("ok", lambda sid: "fine")
        ps = self.subscribe("sioc:node:*")
        with self.assertLogs("sioc", level="ERROR") as logs:
            self.xadd_event("boom", [], ack=1)
            self.xadd_event("ok", [], ack=2)
            self.run_until(w, 2)
        self.assertIn("handler for 'boom' in / failed (sid sid1)", "\n".join(logs.output))
        got = [msgpack.unpackb(d)["ack"] for _, d in self.messages(ps, 1)]
        self.assertEqual(got, [{"id": 2, "args": ["fine"]}])
        self.assertEqual(self.pending(), 0)

    def test_programs_with_one_group_name_but_other_streams_do_not_share_leases(self):
        # two different programs that happen to be called the same (one group name): each
        # reads its own streams; the other's members do not shrink its fair share
        a = self.worker(namespaces=["/"], shards=2, group="same", consumer="a")
        b = self.worker(namespaces=["/other"], shards=2, group="same", consumer="b")
        a._leases.tick(force=True)
        self.assertEqual(a._leases.readable(), {"sioc:up:/:0", "sioc:up:/:1"})
        self.assertEqual(b._leases.readable(), {"sioc:up:/other:0", "sioc:up:/other:1"})

    def spawn(self, consumer, shards=4, lease_ms=600):
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "order_worker.py"), self.url,
                              consumer, str(shards), str(lease_ms)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(5), p.stdout.close()))
        return p

    def lease_owners(self):
        owners = {}
        for key in self.r.scan_iter("sioc:lease:sioc-order-test:*"):
            owner = self.r.get(key)  # None when the lease moved between SCAN and GET
            if owner is not None:
                owners[key.decode()] = owner.decode()
        return owners

    def test_two_processes_share_the_streams_and_keep_each_sockets_order(self):
        a, b = self.spawn("wa"), self.spawn("wb")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until the 4 streams are split between them
            owners = self.lease_owners()
            if len(owners) == 4 and set(owners.values()) == {"wa", "wb"}:
                break
            time.sleep(0.05)
        self.assertEqual(sorted(self.lease_owners().values()), ["wa", "wa", "wb", "wb"])
        sids = ["sock%d" % i for i in range(12)]
        for value in range(15):
            for sid in sids:
                self.xadd_to_shard("n", [value], sid, 4)
        deadline = time.monotonic() + 15
        while self.r.llen("order") < 180 and time.monotonic() < deadline:
            time.sleep(0.05)
        rows = [r.decode().split() for r in self.r.lrange("order", 0, -1)]
        self.assertEqual(len(rows), 180)
        for sid in sids:
            self.assertEqual([int(v) for s, v, _ in rows if s == sid], list(range(15)), sid)
            self.assertEqual(len({c for s, _, c in rows if s == sid}), 1)  # one process each
        self.assertEqual({c for _, _, c in rows}, {"wa", "wb"})
        # one process stops (SIGTERM): the other takes its streams over and serves every socket
        a.send_signal(signal.SIGTERM)
        out = a.communicate(timeout=10)[0].decode()
        self.assertEqual(a.returncode, 0, out)
        self.assertNotIn("Traceback", out)
        self.assertIn("sioc worker order-test stopped", out)
        for sid in sids:
            self.xadd_to_shard("n", [15], sid, 4)
        deadline = time.monotonic() + 10
        while self.r.llen("order") < 192 and time.monotonic() < deadline:
            time.sleep(0.05)
        rows = [r.decode().split() for r in self.r.lrange("order", 180, -1)]
        self.assertEqual(sorted(s for s, _, _ in rows), sorted(sids))
        self.assertEqual({c for _, _, c in rows}, {"wb"})
        b.send_signal(signal.SIGINT)
        out = b.communicate(timeout=10)[0].decode()
        self.assertEqual(b.returncode, 0, out)
        self.assertNotIn("Traceback", out)

    def test_clients_numbered_events_through_a_gateway_stay_in_order_across_processes(self):
        from test_flask import Gateway  # a real gateway; python-socketio clients
        import socketio as sio_client
        gw = Gateway(self.url, "--upstream-shards", "4", "--auth", "none")
        try:
            self.numbered_events_through(gw, sio_client)
        finally:
            gw.stop()  # before tearDown stops Redis (a gateway drains into Redis)

    def numbered_events_through(self, gw, sio_client):
        self.spawn("wa")
        self.spawn("wb")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and set(self.lease_owners().values()) != {"wa", "wb"}:
            time.sleep(0.05)
        owners = self.lease_owners()  # lease key ending in ":<shard>" -> process
        owner_of = {int(k.rsplit(":", 1)[1]): w for k, w in owners.items()}
        clients, busy = [], set()
        # at least 6 clients, and more until both processes own the shard of one of them (six
        # random sids all fell on one process's shards in a few runs in a hundred)
        while len(clients) < 6 or (busy != {"wa", "wb"} and len(clients) < 40):
            c = sio_client.Client(reconnection=False)
            c.connect(gw.url, transports=["websocket"], wait_timeout=5)
            clients.append(c)
            self.addCleanup(c.disconnect)
            busy.add(owner_of.get(protocol.shard_of(c.get_sid(), 4)))
        for value in range(30):  # as fast as the clients can send
            for c in clients:
                c.emit("n", value)
        total = 30 * len(clients)
        deadline = time.monotonic() + 15
        while self.r.llen("order") < total and time.monotonic() < deadline:
            time.sleep(0.05)
        rows = [r.decode().split() for r in self.r.lrange("order", 0, -1)]
        self.assertEqual(len(rows), total)
        for c in clients:
            sid = c.get_sid()
            self.assertEqual([int(v) for s, v, _ in rows if s == sid], list(range(30)), sid)
        self.assertEqual({w for _, _, w in rows}, {"wa", "wb"})  # both processes worked

    def test_sigterm_finishes_handlers_in_flight_and_logs_start(self):
        p = self.spawn("solo", shards=1)
        deadline = time.monotonic() + 10
        while not self.lease_owners() and time.monotonic() < deadline:
            time.sleep(0.05)
        for value in range(20):
            self.xadd_event("n", [value], sid="x")
        deadline = time.monotonic() + 5
        while self.r.llen("order") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
        out = p.communicate(timeout=10)[0].decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("Traceback", out)
        self.assertIn("sioc worker order-test: consuming from redis %s, namespaces /, group "
                      "sioc-order-test, 1 shard(s), consumer solo, 4 handler threads" % self.url,
                      out)
        done = [r.decode().split()[1] for r in self.r.lrange("order", 0, -1)]
        pending = self.r.xpending("sioc:up:/:0", "sioc-order-test")["pending"]
        # what was read was finished and acknowledged; the rest waits for the next worker
        self.assertEqual(pending, 0)
        lag = self.r.xinfo_groups("sioc:up:/:0")[0]["lag"]  # entries nobody has read yet
        self.assertEqual(len(done) + lag, 20)
        self.assertEqual(done, [str(v) for v in range(len(done))])
