// test_recovery.mjs: connection state recovery across gateways (issue 18; docs/contracts.md
// "Connection state recovery, cluster-wide"). socket.io-client 4.8 reaches two gateways through
// a test-local TCP proxy whose target the test switches; a Python worker (tests/integration/
// worker.py) answers events and a Python ticker (sioc.Worker.emit outside handlers) emits
// numbered `tick`s to a room every 20 ms. Checked: the CONNECT reply and events as Node writes
// them; after a kill -9 of the client's gateway (WebSocket and polling-only clients, twice in a
// row with auth backend), and after a transport close, the client reconnects to another gateway
// with recovered === true, the same id, user and room, and every tick exactly once and in order;
// workers see no disconnect/connect pair (a `connect` entry marked recovered, no handler), also
// when the old connection lingers half-open; after the window, or with too many missed packets,
// a clean new socket. The same kill -9 while the broker's POST /v1/emit pushes the ticks (the
// broker stores its emits for recovery as the SDK does; volatile ones carry no offset).
import net from "node:net";
import { execFileSync } from "node:child_process";
import { io as ioc } from "socket.io-client";
import {
  BROKER,
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  post,
  rawWebSocket,
  repo,
  sleep,
  startProcess,
  startRedis,
  startServer,
  until,
} from "./lib/harness.mjs";

const WINDOW = 4000;
const { test, run } = createRunner("test_recovery");

const redis = await startRedis();
const worker = await startProcess("/usr/bin/python3",
  ["tests/integration/worker.py", "--redis", redis.url, "--namespaces", "/"], "worker ready");

function gateway(node, extra = ["--recovery-window", String(WINDOW)]) {
  return startServer(GATEWAY, ["--redis", redis.url, "--node-id", node, "--log-level", "info", ...extra]);
}

// A TCP proxy to `target` (a port); target null refuses (closes) new connections. kill() closes
// every proxied connection, as a dying gateway would.
async function startProxy() {
  const conns = new Set();
  const proxy = { target: null, port: 0, conns };
  const server = net.createServer((c) => {
    if (proxy.target === null) {
      c.destroy();
      return;
    }
    const up = net.connect(proxy.target, "127.0.0.1");
    conns.add(c);
    conns.add(up);
    c.upstream = up;
    c.pipe(up);
    up.pipe(c);
    const end = () => {
      if (c.halfOpen) return; // the gateway's side stays open, silent
      c.destroy();
      up.destroy();
      conns.delete(c);
      conns.delete(up);
    };
    c.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  proxy.port = server.address().port;
  proxy.cut = () => conns.forEach((s) => s.destroy());
  // The client's side closes; the gateway's stays open and silent (a half-open connection).
  proxy.cutClientOnly = () => conns.forEach((s) => {
    if (!s.upstream) return;
    s.halfOpen = true;
    s.unpipe(s.upstream);
    s.upstream.unpipe(s);
    s.upstream.pause();
    s.destroy();
  });
  proxy.close = () => new Promise((r) => { proxy.cut(); server.close(r); });
  return proxy;
}

// A Python process emitting tick(n) to `room` every 20 ms through the SDK (recoverable when the
// gateways have recovery on), or `burst` ticks at once on SIGUSR1.
async function startTicker(room, { burst = 0 } = {}) {
  const code = `
import os, signal, sys, time, threading
sys.path.insert(0, os.path.join(${JSON.stringify(repo)}, "sdk", "python"))
import sioc
w = sioc.Worker(redis_url=${JSON.stringify(redis.url)}, namespaces=["/"])
while ${burst} >= 0 and w.redis.get("sioc:rec:window") is None:
    time.sleep(0.05)  # the gateways say recovery is on once connected to Redis
n = [0]
go = threading.Event()
signal.signal(signal.SIGUSR1, lambda *a: go.set())
print("ticker ready", flush=True)
while True:
    if ${burst} and go.is_set():
        for _ in range(${burst}):
            n[0] += 1
            w.emit("tick", n[0], to=${JSON.stringify(room)})
        print("burst done", flush=True)
        go.clear()
    if not ${burst}:
        n[0] += 1
        w.emit("tick", n[0], to=${JSON.stringify(room)})
    time.sleep(0.02)
`;
  return startProcess("/usr/bin/python3", ["-c", code], "ticker ready");
}

// A client through the proxy that joins `room` and records its ticks (value, offset).
async function client(proxy, room, transports = ["websocket"], auth = undefined) {
  const socket = ioc(`http://127.0.0.1:${proxy.port}`, {
    transports,
    auth,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
  });
  const ticks = [];
  const connects = [];
  socket.on("tick", (n, offset) => ticks.push({ n, offset }));
  socket.on("connect", () => connects.push({ id: socket.id, recovered: socket.recovered }));
  await until("first connect", () => connects.length === 1, 5000);
  const joined = await socket.timeout(5000).emitWithAck("join", room);
  assertEqual(joined, room, "join acked");
  return { socket, ticks, connects };
}

function assertConsecutive(ticks, what) {
  assert(ticks.length > 0, `${what}: no ticks`);
  for (let i = 1; i < ticks.length; i++) {
    if (ticks[i].n !== ticks[i - 1].n + 1)
      throw new Error(`${what}: tick ${ticks[i - 1].n} followed by ${ticks[i].n} (at ${i} of ${ticks.length}; ` +
        `offsets ${ticks.slice(Math.max(0, i - 3), i + 3).map((t) => `${t.n}:${t.offset}`).join(" ")})`);
  }
}

const workerLines = (re) => worker.output().split("\n").filter((l) => re.test(l));

// The set-up most cases share: one gateway per node (an id, or [id, its own arguments]; `extra`
// for the others), a proxy to the first, a ticker to `room` (none when ticker is false; {burst} as startTicker) and a client
// through the proxy. fn(s) runs with s = {gateways, proxy, ticker, c}; then everything started
// is stopped (the client, the ticker, the proxy, the gateways), also when fn or the set-up fails.
async function withScene({ nodes, room, extra, ticker = true, transports, auth }, fn) {
  const s = { gateways: [], proxy: null, ticker: null, c: null };
  try {
    for (const node of nodes)
      s.gateways.push(await (Array.isArray(node) ? gateway(node[0], node[1]) : gateway(node, extra)));
    s.proxy = await startProxy();
    s.proxy.target = s.gateways[0].port;
    if (ticker) s.ticker = await startTicker(room, ticker === true ? {} : ticker);
    s.c = await client(s.proxy, room, transports, auth);
    await fn(s);
  } finally {
    if (s.c) s.c.socket.close();
    if (s.ticker) await s.ticker.stop();
    if (s.proxy) await s.proxy.close();
    for (const g of s.gateways) await g.stop();
  }
}

// kill -9 of the gateway `from` with the proxy already pointing at `to` (the client's next
// connection goes there); its connections through the proxy die with it.
function killAndMove(proxy, from, to) {
  proxy.target = to.port;
  process.kill(from.pid, "SIGKILL");
  proxy.cut();
}

// Waits for `n` more ticks than the client has now.
async function moreTicks(c, n, what) {
  const seen = c.ticks.length;
  await until(what, () => c.ticks.length >= seen + n, 5000);
}

// The client's connection number `i` (0: the first) recovered the socket `id`.
function assertRecovered(c, i, id) {
  assertEqual(c.connects[i].recovered, true, "socket.recovered");
  assertEqual(c.connects[i].id, id, "same socket id");
}

// The client's connection number `i` is a new socket (not `id`).
function assertNewSocket(c, i, id) {
  assertEqual(c.connects[i].recovered, false, "socket.recovered");
  assert(c.connects[i].id !== id, "a new socket id");
}

test("CONNECT reply has sid and pid; recoverable events end with a string offset", () =>
  withScene({ nodes: ["rec-pid"], room: "r-pid" }, async ({ gateways: [a], c }) => {
    await until("ticks", () => c.ticks.length >= 3, 5000);
    assert(typeof c.socket._pid === "string" && c.socket._pid.length > 20 && c.socket._pid.endsWith("rec-pid"),
      `pid ${c.socket._pid}`);
    assert(/^\d+-\d+$/.test(c.ticks[0].offset), `offset ${c.ticks[0].offset}`);
    assertEqual(c.socket._lastOffset, c.ticks[c.ticks.length - 1].offset, "client keeps the last offset");
    // the bytes, as Node socket.io 4.8 with connectionStateRecovery writes them (captured:
    // 40{"sid":"<20>","pid":"<id>"} and 42["tick",1,"<offset>"])
    const ws = await rawWebSocket(a.port, "/socket.io/?EIO=4&transport=websocket");
    try {
      assert((await ws.next()).text.startsWith("0{"), "open");
      ws.text("40");
      const reply = (await ws.next()).text;
      assert(/^40\{"sid":"[A-Za-z0-9_-]{20}","pid":"[A-Za-z0-9_-]{20}rec-pid"\}$/.test(reply), `CONNECT reply ${reply}`);
      const sid = JSON.parse(reply.slice(2)).sid;
      ws.text(`42["join","r-pid"]`);
      let frame;
      do frame = (await ws.next(5000)).text; while (!frame.startsWith('42["tick"'));
      assert(/^42\["tick",\d+,"\d+-\d+"\]$/.test(frame), `event ${frame}`);
      assert(sid.length === 20, "sid");
    } finally {
      ws.close();
    }
  }));

test("kill -9 of the client's gateway: recovered on the other one, same id and room, every tick once in order", () =>
  withScene({ nodes: ["rec-a", "rec-b"], room: "r-kill" }, async ({ gateways: [a, b], proxy, c }) => {
    await until("ticks on A", () => c.ticks.length >= 5, 5000);
    const id = c.socket.id;
    killAndMove(proxy, a, b);
    await until("reconnect", () => c.connects.length === 2, 8000);
    await moreTicks(c, 10, "ticks on B");
    assertRecovered(c, 1, id);
    assert(b.log().includes("recovery.restored"), "B logged the restore");
    try {
      assertConsecutive(c.ticks, "ticks across the kill");
    } catch (e) {
      throw new Error(`${e.message}; B: ${b.log().split("\n").filter((l) => l.includes("recovery")).join(" | ")}`);
    }
    // workers: a connect entry marked recovered for that sid, no disconnect, one connect handler
    await until("recovered entry", () => workerLines(new RegExp(`^connect / ${id} .* recovered$`)).length === 1, 5000);
    assertEqual(workerLines(new RegExp(`^disconnect / ${id} `)).length, 0, "no disconnect entry");
    assertEqual(workerLines(new RegExp(`^handler connect ${id}$`)).length, 1, "connect handler ran once");
    assertEqual(workerLines(new RegExp(`^handler disconnect ${id} `)).length, 0, "no disconnect handler");
    // the worker's reply goes to the new gateway: an ack round trip
    assertEqual(await c.socket.timeout(5000).emitWithAck("ack", 7), 7, "ack through B");
  }), 30000);

// POST /v1/emit of tick(n) to `room` every 20 ms, one request after the other (so n is the
// publish order); a refused request is retried with the same n and recorded.
function startApiPusher(broker, room) {
  const p = { n: 0, stopped: false, errors: [] };
  p.done = (async () => {
    while (!p.stopped) {
      const body = JSON.stringify({ event: "tick", args: [p.n + 1], rooms: [room] });
      const res = await post(broker.port, "/v1/emit", body, "Content-Type: application/json\r\n");
      if (res.status === 200) p.n++;
      else p.errors.push(`${res.status} ${res.body}`);
      await sleep(20);
    }
  })();
  p.stop = async () => {
    p.stopped = true;
    await p.done;
  };
  return p;
}

test("kill -9 of the client's gateway while the broker's /v1/emit pushes to its room: recovered, every push once in order", async () => {
  const broker = await startServer(BROKER, ["--redis", redis.url, "--log-level", "info"]);
  let pusher = null;
  try {
    await withScene({ nodes: ["rec-api-a", "rec-api-b"], room: "r-api", ticker: false }, async ({ gateways: [a, b], proxy, c }) => {
      await until("the broker read the gateways' recovery-window", () => broker.log().includes("api.recovery"), 8000);
      // volatile emits are not stored and carry no offset (as Node)
      const vol = [];
      c.socket.on("vol", (...args) => vol.push(args));
      const res = await post(broker.port, "/v1/emit", JSON.stringify({ event: "vol", args: [1], rooms: ["r-api"], volatile: true }),
        "Content-Type: application/json\r\n");
      assertEqual(res.status, 200, `volatile emit: ${res.body}`);
      await until("volatile event", () => vol.length === 1, 5000);
      assertEqual(vol[0], [1], "a volatile event has no offset");
      pusher = startApiPusher(broker, "r-api");
      await until("ticks on A", () => c.ticks.length >= 5, 5000);
      assert(/^\d+-\d+$/.test(c.ticks[0].offset), `the broker's emit carries an offset: ${JSON.stringify(c.ticks[0])}`);
      const id = c.socket.id;
      killAndMove(proxy, a, b);
      await until("reconnect", () => c.connects.length === 2, 8000);
      assertRecovered(c, 1, id);
      await moreTicks(c, 10, "ticks on B");
      await pusher.stop();
      assertEqual(pusher.errors, [], "every /v1/emit answered 200");
      await until("every pushed tick", () => c.ticks.length >= pusher.n, 5000);
      await sleep(300); // a duplicate would arrive now
      assertEqual(c.ticks.map((t) => t.n), Array.from({ length: pusher.n }, (_, i) => i + 1),
        "every pushed tick exactly once, in order");
      assert(Number(execFileSync("redis-cli", ["-p", String(redis.port), "XLEN", "sioc:rec:/"]).toString()) >= pusher.n,
        "the broker's emits are in the stream");
    });
  } finally {
    if (pusher) await pusher.stop();
    await broker.stop();
  }
}, 40000);

test("a polling-only client: kill -9 of its gateway, recovered on the other one", () =>
  withScene({ nodes: ["rec-p1", "rec-p2"], room: "r-poll", transports: ["polling"] }, async ({ gateways: [a, b], proxy, c }) => {
    await until("ticks on A", () => c.ticks.length >= 5, 5000);
    const id = c.socket.id;
    killAndMove(proxy, a, b);
    await until("reconnect", () => c.connects.length === 2, 8000);
    await moreTicks(c, 10, "ticks on B");
    assertRecovered(c, 1, id);
    assertConsecutive(c.ticks, "ticks across the kill");
  }), 30000);

test("recovered twice (kill -9 of A, then of B), auth backend: the session and user follow the socket", () =>
  withScene({
    nodes: ["rec-h", "rec-i", "rec-j"], room: "r-twice", extra: ["--recovery-window", String(WINDOW), "--auth", "backend"],
    auth: { uid: "alice" },
  }, async ({ gateways: [a, b, c3], proxy, c }) => {
    assertEqual(await c.socket.timeout(5000).emitWithAck("whoami"), [c.socket.id, "alice"], "user on A");
    await until("ticks on A", () => c.ticks.length >= 5, 5000);
    const id = c.socket.id;
    killAndMove(proxy, a, b);
    await until("reconnect to B", () => c.connects.length === 2, 8000);
    await until("ticks on B", () => c.ticks.length >= 15, 5000);
    killAndMove(proxy, b, c3);
    await until("reconnect to C", () => c.connects.length === 3, 8000);
    await moreTicks(c, 10, "ticks on C");
    assertEqual(c.connects.map((x) => x.recovered), [false, true, true], "recovered both times");
    assertEqual(c.connects.map((x) => x.id), [id, id, id], "one socket id");
    assertConsecutive(c.ticks, "ticks across both kills");
    assertEqual(await c.socket.timeout(5000).emitWithAck("whoami"), [id, "alice"], "user on C");
    assertEqual(workerLines(new RegExp(`^handler connect ${id}$`)).length, 1, "one connect handler");
    assertEqual(workerLines(new RegExp(`^disconnect / ${id} `)).length, 0, "no disconnect entry");
  }), 30000);

test("the old connection lingers half-open on A while the client recovers on B: A reports nothing when it ends", () =>
  withScene({
    nodes: [["rec-k", ["--recovery-window", String(WINDOW), "--ping-interval", "1500", "--ping-timeout", "1000"]], "rec-l"],
    room: "r-half",
  }, async ({ gateways: [, b], proxy, c }) => {
    await until("ticks on A", () => c.ticks.length >= 5, 5000);
    const id = c.socket.id;
    proxy.target = b.port;
    proxy.cutClientOnly(); // A still has the socket until its ping timeout
    await until("reconnect to B", () => c.connects.length === 2, 8000);
    assertRecovered(c, 1, id);
    await sleep(WINDOW + 4000); // A's ping timeout, then its window: nothing may be reported
    assertEqual(workerLines(new RegExp(`^disconnect / ${id} `)).length, 0, "no disconnect entry");
    assertEqual(workerLines(new RegExp(`^handler disconnect ${id} `)).length, 0, "no disconnect handler");
    await moreTicks(c, 5, "ticks still on B");
    assertConsecutive(c.ticks, "ticks");
  }), 30000);

test("transport close then reconnect (to the other gateway) recovers; no deferred disconnect after the window", () =>
  withScene({ nodes: ["rec-c", "rec-d"], room: "r-close" }, async ({ gateways: [, b], proxy, c }) => {
    await until("ticks", () => c.ticks.length >= 5, 5000);
    const id = c.socket.id;
    proxy.target = null; // the reconnection waits a little, so ticks are missed
    c.socket.io.engine.close();
    await sleep(600);
    proxy.target = b.port;
    await until("reconnect", () => c.connects.length === 2, 8000);
    await moreTicks(c, 10, "more ticks");
    assertRecovered(c, 1, id);
    assertConsecutive(c.ticks, "ticks across the reconnect");
    await sleep(WINDOW + 2000); // A's parked session ends: it was recovered, so no disconnect
    assertEqual(workerLines(new RegExp(`^disconnect / ${id} `)).length, 0, "no disconnect entry");
    assertConsecutive(c.ticks, "ticks later");
  }), 30000);

test("after the window: recovered false, a new socket, the old one reported disconnected", () =>
  withScene({ nodes: ["rec-e", "rec-f"], room: "r-late" }, async ({ gateways: [, b], proxy, c }) => {
    await until("ticks", () => c.ticks.length >= 3, 5000);
    const id = c.socket.id;
    proxy.target = null;
    proxy.cut();
    await sleep(1000); // parked: no disconnect yet (the session may still be recovered)
    assertEqual(workerLines(new RegExp(`^handler disconnect ${id} `)).length, 0, "no disconnect while parked");
    await sleep(WINDOW + 1500);
    proxy.target = b.port;
    await until("reconnect", () => c.connects.length === 2, 8000);
    assertNewSocket(c, 1, id);
    await until("old socket's disconnect", () => workerLines(new RegExp(`^handler disconnect ${id} transport close$`)).length === 1, 5000);
    await until("new socket's connect handler", () => workerLines(new RegExp(`^handler connect ${c.connects[1].id}$`)).length === 1, 5000);
  }), 30000);

test("kill -9: a client back after the window gets a new socket, though another one's recovery keeps its gateway's sessions alive", async () => {
  const a = await gateway("rec-m");
  const b = await gateway("rec-n");
  const p1 = await startProxy();
  const p2 = await startProxy();
  p1.target = a.port;
  p2.target = a.port;
  const ticker = await startTicker("r-stale");
  const c1 = await client(p1, "r-stale");
  const c2 = await client(p2, "r-stale");
  const p3 = await startProxy();
  p3.target = a.port;
  const c3 = await client(p3, "r-stale");
  try {
    await until("ticks", () => c1.ticks.length >= 3 && c2.ticks.length >= 3, 5000);
    const id2 = c2.socket.id;
    p1.target = b.port;
    p2.target = null;
    process.kill(a.pid, "SIGKILL");
    p1.cut();
    p2.cut();
    p3.target = null;
    p3.cut();
    await until("c1 back", () => c1.connects.length === 2, 8000);
    assertEqual(c1.connects[1].recovered, true, "c1 recovered (B now refreshes A's session hash)");
    await sleep(WINDOW + 6500); // A's last beat is older than the window (+ 5 s grace)
    p2.target = b.port;
    await until("c2 back", () => c2.connects.length === 2, 8000);
    assertNewSocket(c2, 1, id2);
    // c3 never comes back: B, which keeps A's session hash alive for c1, prunes c3's session
    const hlen = () => Number(execFileSync("redis-cli", ["-p", String(redis.port), "HLEN", "sioc:rec:{rec-m}:n"]).toString());
    await until("c3's stale session pruned (only c1's left)", () => hlen() === 1, 10000, { every: 200 });
  } finally {
    c1.socket.close();
    c2.socket.close();
    c3.socket.close();
    await ticker.stop();
    await p1.close();
    await p2.close();
    await p3.close();
    await a.stop();
    await b.stop();
  }
}, 40000);

test("more missed packets than the bound: recovered false", () =>
  withScene({ nodes: ["rec-g"], room: "r-burst", ticker: { burst: 1100 } }, async ({ gateways: [a], proxy, ticker, c }) => {
    process.kill(ticker.pid, "SIGUSR1");
    await until("burst received", () => c.ticks.length >= 1100, 10000);
    const id = c.socket.id;
    proxy.target = null;
    proxy.cut();
    await sleep(300);
    process.kill(ticker.pid, "SIGUSR1"); // 1100 > RECOVERY_MAX_PACKETS while disconnected
    await until("second burst published", () => ticker.output().split("burst done").length === 3, 10000);
    proxy.target = a.port;
    await until("reconnect", () => c.connects.length === 2, 8000);
    assertNewSocket(c, 1, id);
    assert(a.log().includes("too many missed packets"), "logged why");
  }), 40000);

test("recovery-window 0 (the default): no pid, no offsets, reconnects are new sockets", () =>
  withScene({ nodes: [["rec-off", []]], room: "r-off", ticker: false }, async ({ c }) => {
    assertEqual(c.socket._pid, undefined, "no pid");
    const id = c.socket.id;
    c.socket.io.engine.close();
    await until("reconnect", () => c.connects.length === 2, 8000);
    assert(!c.connects[1].recovered, "socket.recovered");
    assert(c.connects[1].id !== id, "a new socket id");
  }));

const ok = await run();
await worker.stop();
await redis.stop();
process.exit(ok ? 0 : 1);
