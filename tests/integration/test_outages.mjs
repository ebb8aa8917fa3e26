// test_outages.mjs: what a Redis outage must not cost (issue 10, docs/reliability.md "Known
// defects", fixed): no `node lost` for a live gateway, however the broker's and the gateway's
// reconnections fall (docs/contracts.md, Node liveness); pings every ping-interval while reads
// are paused for back-pressure; no worker ack lost because the gateway wrote upstream before
// its reply subscription was back. Real redis-server, broker, gateway and Python worker; faults
// made deterministic with a TCP proxy between one process and Redis (cut, refuse new
// connections, hold SUBSCRIBE commands). Every server on a random loopback port, stopped by pid.
// test-run: alone (tests/run.sh): the back-pressure case asserts ping gaps of at most 900 ms
// (ping-interval 500) while the ASan gateway takes 13 MB; beside another file a loaded CPU
// stretched them, and its pause took up to 15 s to come.
import net from "node:net";
import { io } from "socket.io-client";
import { createClient } from "redis";
import {
  BROKER,
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  freePort,
  sleep,
  startProcess,
  startRedis,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const { test, run } = createRunner("test_outages");

// A TCP proxy on a random loopback port to Redis at `target`, for faults between one process and
// Redis. cut(): every proxied connection is closed and new ones are refused (the listener is
// closed: ECONNREFUSED); open(): listening again on the same port. holdSubscribe(true): a
// connection that sends (P)SUBSCRIBE gets nothing more forwarded to Redis until
// holdSubscribe(false) (a subscriber connection that is slow to come back).
async function tcpProxy(target) {
  const port = await freePort();
  const conns = new Set();
  let server = null;
  let holding = false;
  const held = new Set();
  function listen() {
    return new Promise((resolve, reject) => {
      const srv = net.createServer((c) => {
        const u = net.connect(target, "127.0.0.1");
        const conn = { c, u, pending: [], held: false };
        conns.add(conn);
        const end = () => {
          c.destroy();
          u.destroy();
          conns.delete(conn);
          held.delete(conn);
        };
        c.on("data", (d) => {
          if (!conn.held && holding && /subscribe/i.test(d.toString("latin1"))) {
            conn.held = true;
            held.add(conn);
          }
          if (conn.held) conn.pending.push(d);
          else u.write(d);
        });
        u.on("data", (d) => c.write(d));
        for (const s of [c, u]) {
          s.on("error", end);
          s.on("close", end);
        }
      });
      srv.once("error", reject);
      srv.listen(port, "127.0.0.1", () => {
        server = srv;
        resolve();
      });
    });
  }
  await listen();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async cut() {
      const srv = server;
      server = null;
      if (srv === null) return;
      const closed = new Promise((r) => srv.close(() => r()));
      for (const conn of [...conns]) {
        conn.c.destroy();
        conn.u.destroy();
      }
      conns.clear();
      await within(3000, closed, "the proxy to close");
    },
    async open() {
      if (server === null) await listen();
    },
    holdSubscribe(on) {
      holding = on;
      if (on) return;
      for (const conn of [...held]) {
        conn.held = false;
        for (const d of conn.pending) conn.u.write(d);
        conn.pending = [];
      }
      held.clear();
    },
  };
}

function connect(port, opts = {}) {
  const s = io(`http://127.0.0.1:${port}/`, { transports: ["websocket"], forceNew: true, reconnection: false, ...opts });
  return within(5000, new Promise((res, rej) => {
    s.once("connect", () => res(s));
    s.once("connect_error", rej);
  }), "a client to connect");
}

const count = (text, re) => (text.match(re) || []).length;

// ---- 1. liveness: an outage seen by either side never reaps a live gateway ----

// The broker's own connection to Redis drops and comes back at once (a short Redis restart, a
// network blip): no gap between its checks long enough to count as an outage, yet the node's
// heartbeat expired meanwhile and the node is still reconnecting. The node is played by the
// test (its heartbeat and registry entries), so the timing is exact.
test("the broker's reconnection gives every node a fresh node-timeout", async () => {
  const red = await startRedis();
  const rr = createClient({ url: red.url });
  await rr.connect();
  const px = await tcpProxy(red.port);
  const bk = await startServer(BROKER, ["--redis", px.url, "--node-timeout", "1000", "--check-interval", "100", "--log-level", "info"]);
  const epoch = "00000000cafe0001";
  let beating = true;
  const beat = () => rr.sendCommand(["SET", "sioc:hb:fake1", epoch, "PX", "1000"]);
  const timer = setInterval(() => beating && beat().catch(() => {}), 150);
  try {
    await beat(); // the first command of an epoch is its heartbeat
    await rr.sendCommand(["XADD", "sioc:registry", "*", "node", "fake1", "epoch", epoch, "seq", "1", "op", "connect",
      "nsp", "/", "sid", "sid-fake1", "uid", "", "rooms", Buffer.from([0x90])]);
    const scard = () => rr.sendCommand(["SCARD", "sioc:node-sids:fake1"]);
    await until("the socket in the mirror", async () => (await scard()) === 1);
    await sleep(1500); // past any grace of the broker's start
    assert(!/node\.lost/.test(bk.log()), `no node lost while beating:\n${bk.log()}`);

    // the broker's connection drops and reconnects within ~100 ms; the node's heartbeat is gone
    beating = false;
    await rr.sendCommand(["DEL", "sioc:hb:fake1"]);
    await px.cut();
    await px.open();
    await until("the broker to reconnect", () => count(bk.log(), /command: connected/g) >= 2, 3000);
    await sleep(600); // the node comes back 600 ms after the broker, within node-timeout
    beating = true;
    await beat();
    await sleep(1500);
    assert(!/node\.lost/.test(bk.log()), `the broker declared the node lost right after its own reconnection:\n` +
      bk.log().split("\n").filter((l) => /node|redis/.test(l)).join("\n"));
    assertEqual(await scard(), 1, "the mirror kept the socket");

    // and a node that stays silent is still declared lost, node-timeout after its last beat
    beating = false;
    await until("node lost for a silent node", () => /node\.lost: node=fake1 sockets=1 why=heartbeat expired/.test(bk.log()), 4000)
      .catch((e) => { throw new Error(`${e.message}:\n${bk.log()}`); });
  } finally {
    clearInterval(timer);
    await bk.stop();
    await rr.quit();
    await red.stop();
    await px.cut();
  }
}, 30000);

// Redis stalls for longer than node-timeout and the gateway's connections drop with it (as in a
// restart); its reconnection attempts keep failing, so its back-off grows. Redis comes back
// right after one of the gateway's failed attempts: the gateway must be back (and beat) within
// the fresh node-timeout the broker gives after the stall, although the broker saw Redis first.
test("a gateway whose reconnection lags the broker's after a Redis stall is not declared lost", async () => {
  const red = await startRedis();
  const rr = createClient({ url: red.url });
  await rr.connect();
  const px = await tcpProxy(red.port);
  const bk = await startServer(BROKER, ["--redis", red.url, "--node-timeout", "1000", "--check-interval", "100", "--log-level", "info"]);
  const gw = await startServer(GATEWAY, ["--redis", px.url, "--node-timeout", "1000", "--node-id", "lag1", "--log-level", "info"]);
  let stopped = false;
  let s = null;
  try {
    s = await connect(gw.port);
    let disconnects = 0;
    s.on("disconnect", () => disconnects++);
    const scard = () => rr.sendCommand(["SCARD", "sioc:node-sids:lag1"]);
    await until("the socket in the mirror", async () => (await scard()) === 1);

    const failures = () => count(gw.log(), /registry\.redis.*Connection refused/g);
    process.kill(red.pid, "SIGSTOP");
    stopped = true;
    await px.cut();
    const t0 = Date.now();
    // six failed attempts (a default back-off would then wait 2.5-5 s before the next) and
    // 2.5 x node-timeout, so that the heartbeat has expired
    await until("six failed reconnections of the registry link", () => failures() >= 6 && Date.now() - t0 >= 2500, 15000);
    const f = failures();
    await until("one more failed reconnection", () => failures() > f, 6000);
    // the proxy first, then Redis: on a loaded machine a pause between the two would leave the
    // gateway refused for longer than node-timeout after the broker saw Redis again (the test's
    // doing, not the gateway's)
    await px.open();
    process.kill(red.pid, "SIGCONT");
    stopped = false;
    await sleep(3000);
    assert(!/node\.lost/.test(bk.log()), `the broker declared the live gateway lost:\n` +
      bk.log().split("\n").filter((l) => /node/.test(l)).join("\n") + "\n" +
      gw.log().split("\n").filter((l) => /registry/.test(l)).slice(-8).join("\n"));
    assert(!/epoch_reaped/.test(gw.log()), "the gateway was not told its epoch was reaped");
    assertEqual(await scard(), 1, "the mirror kept the socket");
    assertEqual([disconnects, s.connected], [0, true], "the client stayed connected");
  } finally {
    if (stopped) process.kill(red.pid, "SIGCONT");
    if (s) s.close();
    await gw.stop();
    await bk.stop();
    await rr.quit();
    await red.stop();
    await px.cut();
  }
}, 40000);

// ---- 2. pings while reading is paused for back-pressure ----

// Redis is down, one client's events fill the upstream queue, reads pause (and stay paused while
// Redis is away). Another client must still get a ping every ping-interval (here 500 ms, far
// below ping-timeout 1500 ms): the pause is the server's, the client must never have a reason
// to close. After Redis is back and reads resume, pings go on at the same pace.
test("pings keep coming every ping-interval while reads are paused for back-pressure", async () => {
  const red = await startRedis();
  const gw = await startServer(GATEWAY, ["--redis", red.url, "--node-id", "pp1", "--ping-interval", "500",
    "--ping-timeout", "1500", "--log-level", "info"]);
  const clients = [];
  try {
    const watcher = await connect(gw.port);
    const flooder = await connect(gw.port);
    clients.push(watcher, flooder);
    const pings = [];
    watcher.io.on("ping", () => pings.push(Date.now()));
    let closed = null;
    watcher.on("disconnect", (why) => (closed = why));
    await red.kill();
    const payload = "x".repeat(32768);
    for (let i = 0; i < 400; i++) flooder.emit("flood", i, payload); // 13 MB: more than the 8 MiB queue + 1 MiB overflow
    await until("reads to pause (upstream.pause)", () => /upstream\.pause/.test(gw.log()), 40000);
    const paused = Date.now();
    // a ping sent just before the pause waits up to ping-timeout for its pong; from then on
    // the pings of the pause come every ping-interval
    await sleep(1600 + 3000);
    assert(!/upstream\.resume/.test(gw.log()), "reads stayed paused while Redis was down");
    const during = pings.filter((t) => t >= paused + 1600);
    const gaps = (ts) => ts.slice(1).map((t, i) => t - ts[i]);
    assert(during.length >= 5 && Math.max(...gaps(during)) <= 900,
      `pings during the pause every ping-interval: ${during.length} pings, gaps ${gaps(during).join(", ")} ms`);
    await red.launch();
    await until("reads to resume (upstream.resume)", () => /upstream\.resume/.test(gw.log()), 15000);
    const resumed = Date.now();
    await sleep(2500);
    const after = pings.filter((t) => t >= resumed - 1000);
    assert(after.length >= 4 && Math.max(...gaps(after)) <= 1200,
      `pings after the resume: ${after.length}, gaps ${gaps(after).join(", ")} ms`);
    assertEqual([closed, watcher.connected], [null, true], "the watching client stayed connected");
  } finally {
    for (const s of clients) s.close();
    await gw.stop();
    await red.stop();
  }
}, 75000);

// ---- 3. worker acks after a Redis outage ----

// An event with an ack sent while Redis is down waits in the gateway. When Redis is back the
// gateway's subscriber connection is slow to subscribe again (the proxy holds its SUBSCRIBE):
// the event must not reach the worker before the gateway listens on P:node:<node> again, or the
// worker's ack is published to nobody (pub/sub) and the client waits forever.
test("an ack asked during a Redis outage is delivered after Redis returns", async () => {
  const red = await startRedis({ persist: true });
  const rr = createClient({ url: red.url });
  rr.on("error", () => {});
  const px = await tcpProxy(red.port);
  const gw = await startServer(GATEWAY, ["--redis", px.url, "--node-id", "ack1", "--log-level", "info"]);
  const worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", red.url, "--namespaces", "/"], "worker ready");
  let s = null;
  try {
    s = await connect(gw.port);
    assertEqual(await s.timeout(5000).emitWithAck("ack", "before"), "before", "ack before the outage");
    await red.kill();
    const answer = s.timeout(20000).emitWithAck("ack", "during");
    answer.catch(() => {});
    await sleep(300); // read by the gateway, queued for Redis
    const connected = () => count(gw.log(), /redis\.connected: link=bridge-command/g);
    const before = connected();
    px.holdSubscribe(true);
    await red.launch();
    await rr.connect();
    await until("the gateway's command link back", () => connected() > before, 10000);
    await until("the worker consuming again", async () => /cmd=xreadgroup/.test(await rr.sendCommand(["CLIENT", "LIST"])), 10000);
    await sleep(1500); // what the gateway wrote by now has been handled and acked by the worker
    px.holdSubscribe(false);
    assertEqual(await within(8000, answer, "the ack of the event sent during the outage"), "during", "ack after the outage");
  } finally {
    px.holdSubscribe(false);
    if (s) s.close();
    await worker.stop();
    await gw.stop();
    if (rr.isOpen) await rr.quit();
    await red.stop();
    await px.cut();
  }
}, 45000);

// Redis stalls (SIGSTOP) for longer than the subscriber connection's liveness timeout (3 probe
// intervals, 3 s) while an event with an ack is on its way to it. The subscription must survive
// the stall: Redis answers everything it was sent when it goes on, the worker's ack included,
// and a subscriber connection replaced meanwhile (its new SUBSCRIBE held by the proxy here)
// would not be listening yet.
test("an ack asked during a Redis stall is delivered when Redis goes on", async () => {
  const red = await startRedis();
  const px = await tcpProxy(red.port);
  const gw = await startServer(GATEWAY, ["--redis", px.url, "--node-id", "ack2", "--log-level", "info"]);
  const worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", red.url, "--namespaces", "/"], "worker ready");
  let s = null;
  let stopped = false;
  try {
    s = await connect(gw.port);
    assertEqual(await s.timeout(5000).emitWithAck("ack", "before"), "before", "ack before the stall");
    process.kill(red.pid, "SIGSTOP");
    stopped = true;
    await sleep(300);
    const answer = s.timeout(20000).emitWithAck("ack", "stalled");
    answer.catch(() => {});
    await sleep(4700); // 5 s in all: past the subscriber's liveness timeout
    px.holdSubscribe(true);
    process.kill(red.pid, "SIGCONT");
    stopped = false;
    const got = await within(4000, answer, "the ack of the event sent during the stall").catch((e) => e);
    px.holdSubscribe(false);
    assertEqual(got, "stalled", `ack after the stall (gateway: ${gw.log().split("\n").filter((l) => /liveness|bridge-sub/.test(l)).join(" | ")})`);
    assert(!/liveness_timeout/.test(gw.log()), "the subscriber connection was kept through the stall");
    assertEqual(await s.timeout(5000).emitWithAck("ack", "after"), "after", "ack after the stall");
  } finally {
    if (stopped) process.kill(red.pid, "SIGCONT");
    px.holdSubscribe(false);
    if (s) s.close();
    await worker.stop();
    await gw.stop();
    await red.stop();
    await px.cut();
  }
}, 45000);

const ok = await run();
process.exit(ok ? 0 : 1);
