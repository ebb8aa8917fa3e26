// test_polling_nonsticky.mjs: issue 18, long-polling without sticky sessions. Two gateways on
// one Redis (plus the test worker, tests/integration/worker.py) behind (a) a small HTTP proxy in
// this file that sends every request, and every upgrade, to the other gateway than the one
// before (the worst a load balancer can do), and (b) HAProxy with the shipped
// deploy/haproxy/haproxy.cfg switched to `balance roundrobin` without the cookie. A request for
// a session of the other gateway is forwarded to it over Redis (gateway/eio_forward.h) and
// answered as the owner would: socket.io-client 4.8 (polling only, and polling + upgrade) and
// 2.x (Engine.IO v3, allow-eio3) connect, emit with acks, receive room broadcasts and
// disconnect, with no "Session ID unknown"; a raw upgrade sent to the non-owner gets the owner's
// 101 and probe and carries the session; JSONP (v3) and two concurrent GETs get exactly the
// owner's answers; when the owner is killed, the other gateway answers its sessions' requests
// with that error within the bound. Every test fails with `--forward no`
// (SIOC_TEST_FORWARD=no runs them so).
import { io } from "socket.io-client";
import ioV2 from "socket.io-client-v2";
import { spawn, spawnSync } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  assert,
  assertEqual,
  createRunner,
  freePort,
  get,
  post,
  rawHttp,
  rawWebSocket,
  repo,
  sleep,
  startProcess,
  startRedis,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const GATEWAY = process.env.SIOC_GATEWAY || "build/sioc-gateway";
const CFG = path.join(repo, "deploy/haproxy/haproxy.cfg");
const { test, run } = createRunner("test_polling_nonsticky");

// The test copy of the shipped HAProxy configuration, as test_haproxy.mjs makes it (loopback
// addresses instead of Docker's DNS), then switched to round-robin without the cookie.
function replaceOnce(text, re, replacement, what) {
  const n = (text.match(new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g")) || []).length;
  if (n !== 1) throw new Error(`haproxy.cfg: expected one ${what}, found ${n}`);
  return text.replace(re, replacement);
}
function roundRobinConfig(shipped, { lbPort, statsPort, servers }) {
  let cfg = shipped;
  cfg = replaceOnce(cfg, /^(\s*)bind :8080$/m, `$1bind 127.0.0.1:${lbPort}`, "bind :8080");
  cfg = replaceOnce(cfg, /^(\s*)bind :8404$/m, `$1bind 127.0.0.1:${statsPort}`, "bind :8404");
  cfg = replaceOnce(cfg, /^(\s*default-server .*) resolvers docker resolve-prefer ipv4$/m, "$1", "default-server ... resolvers docker");
  cfg = replaceOnce(cfg, /^(\s*)server-template gw \d+ gateway:3000$/m,
    (_, indent) => servers.map((port, i) => `${indent}server gw${i + 1} 127.0.0.1:${port}`).join("\n"), "server-template");
  cfg = replaceOnce(cfg, /^(\s*)balance leastconn$/m, "$1balance roundrobin", "balance leastconn");
  cfg = replaceOnce(cfg, /^\s*cookie SIOCSRV .*\n/m, "", "cookie SIOCSRV");
  cfg = replaceOnce(cfg, /^\s*dynamic-cookie-key .*\n/m, "", "dynamic-cookie-key");
  return cfg;
}

// ---- the alternating proxy: request n goes to gateway n % 2 ----

function alternatingProxy(ports) {
  let next = 0;
  const seen = { requests: 0, upgrades: 0, statuses: [] };
  const server = http.createServer((req, res) => {
    const port = ports[next++ % ports.length];
    seen.requests++;
    const up = http.request(
      { host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (r) => {
        seen.statuses.push(r.statusCode);
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.on("upgrade", (req, socket, head) => {
    const port = ports[next++ % ports.length];
    seen.upgrades++;
    const up = net.connect(port, "127.0.0.1", () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(raw + "\r\n");
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port, seen })));
}

// ---- processes ----

const stoppers = [];
async function stopAll() {
  for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => {});
}
const forward = process.env.SIOC_TEST_FORWARD || "yes"; // "no": the check that the tests fail
const gwArgs = (redisUrl, node, extra = []) => [
  "--redis", redisUrl, "--node-id", node, "--namespaces", "/", "--allow-eio3", "yes",
  "--ping-interval", "1000", "--ping-timeout", "3000", "--drain-timeout", "2000",
  "--forward", forward, "--forward-timeout", "3000", "--log-level", "info", ...extra,
];
let redis, gwA, gwB, worker, proxy;
try {
  redis = await startRedis();
  stoppers.push(() => redis.stop());
  gwA = await startServer(GATEWAY, gwArgs(redis.url, "gwA"));
  stoppers.push(() => gwA.stop());
  gwB = await startServer(GATEWAY, gwArgs(redis.url, "gwB"));
  stoppers.push(() => gwB.stop());
  worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", redis.url, "--namespaces", "/"], "worker ready");
  stoppers.push(() => worker.stop());
  proxy = await alternatingProxy([gwA.port, gwB.port]);
  stoppers.push(async () => proxy.server.close());
  // both gateways follow each other's channels before the first client
  await until("gateways subscribed", async () => {
    const a = (await get(gwA.port, "/readyz")).status, b = (await get(gwB.port, "/readyz")).status;
    return a === 200 && b === 200;
  }, 10000);
} catch (err) {
  console.log(`setup failed: ${err && err.stack ? err.stack : err}`);
  await stopAll();
  console.log("test_polling_nonsticky: 0 passed, 1 failed");
  process.exit(1);
}

// ---- helpers ----

const clients = [];
function connect(url, opts) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  clients.push(socket);
  return within(10000, new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => reject(new Error(`connect_error: ${e.message} ${e.description ? JSON.stringify(e.description.message || e.description) : ""}`)));
  }), "connect");
}
const emitAck = (socket, ...args) => within(8000, new Promise((resolve) => socket.emit(...args, (...a) => resolve(a))), `ack of ${args[0]}`);

function collect(socket, event) {
  const got = [];
  socket.on(event, (...a) => got.push(a));
  return got;
}

async function metric(gw, name) {
  const body = (await get(gw.port, "/metrics")).body;
  const m = new RegExp(`^${name} (\\d+)`, "m").exec(body);
  return m ? Number(m[1]) : 0;
}

// Connect, ack, a room broadcast of 20 messages in order, another client's message through the
// room, disconnect: every step must go through both gateways.
async function conversation(url, opts, label) {
  for (const s of clients.splice(0)) s.disconnect ? s.disconnect() : s.close(); // a failed test's
  const a = await connect(url, opts);
  const b = await connect(url, opts);
  const errors = [];
  for (const s of [a, b]) {
    s.io.engine.on("error", (e) => errors.push(String(e)));
    s.on("disconnect", (reason) => reason !== "io client disconnect" && errors.push(`disconnect: ${reason}`));
  }
  assertEqual(JSON.stringify(await emitAck(a, "ack", "x", 1)), JSON.stringify(["x", 1]), `${label}: ack`);
  assertEqual((await emitAck(a, "join", "r1"))[0], "r1", `${label}: join a`);
  assertEqual((await emitAck(b, "join", "r1"))[0], "r1", `${label}: join b`);
  const gotA = collect(a, "room_msg"), gotB = collect(b, "room_msg");
  for (let i = 0; i < 20; i++) await emitAck((i % 2 ? a : b), "room_msg", "r1", i);
  await until(`${label}: 20 room messages on both`, async () => gotA.length === 20 && gotB.length === 20, 8000);
  assertEqual(JSON.stringify(gotA.map((x) => x[0])), JSON.stringify([...Array(20).keys()]), `${label}: order on a`);
  assertEqual(JSON.stringify(gotB.map((x) => x[0])), JSON.stringify([...Array(20).keys()]), `${label}: order on b`);
  // a few heartbeats through the proxy (ping-interval 1 s): the session survives idle time
  await sleep(2500);
  assertEqual(JSON.stringify(await emitAck(b, "echo", "after idle")), JSON.stringify(["after idle"]), `${label}: after idle`);
  assertEqual(errors.join("; "), "", `${label}: no transport error`);
  const transports = [a.io.engine.transport.name, b.io.engine.transport.name];
  a.disconnect();
  b.disconnect();
  await until(`${label}: sockets gone`, async () => (await metric(gwA, "sioc_sockets")) + (await metric(gwB, "sioc_sockets")) === 0, 8000);
  return transports;
}

test("polling only, every request to the other gateway: connect, acks, room broadcasts, disconnect", async () => {
  const before = proxy.seen.statuses.length;
  const transports = await conversation(`http://127.0.0.1:${proxy.port}`, { transports: ["polling"] }, "polling");
  assertEqual(transports.join(), "polling,polling", "transports");
  const statuses = proxy.seen.statuses.slice(before);
  assert(statuses.length > 40, `many polling requests went through the proxy (${statuses.length})`);
  assertEqual(statuses.filter((s) => s !== 200).length, 0, `every answer 200 (${statuses.filter((s) => s !== 200)})`);
  const forwarded = (await metric(gwA, "sioc_eio_forwarded_total")) + (await metric(gwB, "sioc_eio_forwarded_total"));
  assert(forwarded >= statuses.length / 3, `about half of the requests were forwarded (${forwarded} of ${statuses.length})`);
});

test("polling then upgrade, the upgrade to the other gateway: the WebSocket is tunnelled to the owner", async () => {
  const transports = await conversation(`http://127.0.0.1:${proxy.port}`, { transports: ["polling", "websocket"] }, "upgrade");
  assertEqual(transports.join(), "websocket,websocket", "both upgraded");
  assert(proxy.seen.upgrades >= 2, "upgrades went through the proxy");
});

test("an upgrade sent to the other gateway: 101 and the probe from the owner, then the session runs on the tunnel", async () => {
  const hs = await get(gwA.port, "/socket.io/?EIO=4&transport=polling");
  const q = `/socket.io/?EIO=4&transport=polling&sid=${JSON.parse(hs.body.slice(1)).sid}`;
  assertEqual((await post(gwA.port, q, "40")).status, 200, "CONNECT");
  assert((await get(gwA.port, q)).body.startsWith("40"), "CONNECT answer");
  const ws = await rawWebSocket(gwB.port, q.replace("transport=polling", "transport=websocket"));
  try {
    assertEqual(ws.status, 101, `the owner's 101 through gwB: ${ws.response}`);
    assert(/sec-websocket-accept/i.test(ws.response), "with its accept key");
    ws.text("2probe");
    assertEqual((await ws.next()).text, "3probe", "probe answered by the owner");
    ws.text("5");
    ws.text('421["ack","tunnel"]');
    let frame;
    do frame = await ws.next(5000); while (frame && frame.text === "2" && (ws.text("3"), true));
    assertEqual(frame && frame.text, '431["tunnel"]', "the ack over the tunnel");
    const tunnelled = await metric(gwB, "sioc_eio_forwarded_total");
    assert(tunnelled > 0, "gwB forwarded it");
  } finally {
    ws.close();
  }
  await until("the tunnelled session closed on its owner", async () => (await metric(gwA, "sioc_sockets")) === 0, 8000);
});

test("Engine.IO v3 (socket.io-client 2.x, allow-eio3) polling through the alternating proxy", async () => {
  const url = `http://127.0.0.1:${proxy.port}`;
  const mk = () => ioV2(url, { forceNew: true, reconnection: false, transports: ["polling"] });
  for (const s of clients.splice(0)) s.disconnect ? s.disconnect() : s.close(); // a failed test's
  await until("no sockets left", async () => (await metric(gwA, "sioc_sockets")) + (await metric(gwB, "sioc_sockets")) === 0, 8000);
  const a = mk(), b = mk();
  clients.push(a, b);
  const connected = (s) => within(10000, new Promise((r, j) => { s.once("connect", r); s.once("connect_error", j); }), "v2 connect");
  await Promise.all([connected(a), connected(b)]);
  const ack = (s, ...args) => within(8000, new Promise((r) => s.emit(...args, (...x) => r(x))), "v2 ack");
  assertEqual(JSON.stringify(await ack(a, "ack", "v3", 2)), JSON.stringify(["v3", 2]), "v3 ack");
  await ack(a, "join", "r3");
  await ack(b, "join", "r3");
  const got = [];
  a.on("room_msg", (x) => got.push(x));
  for (let i = 0; i < 10; i++) await ack(b, "room_msg", "r3", i);
  await until("v3: 10 room messages", async () => got.length === 10, 8000);
  assertEqual(JSON.stringify(got), JSON.stringify([...Array(10).keys()]), "v3 order");
  await sleep(2500); // v3 clients ping: their pings go through both gateways too
  assertEqual(JSON.stringify(await ack(b, "echo", "v3 idle")), JSON.stringify(["v3 idle"]), "v3 after idle");
  a.close();
  b.close();
  await until("v3 sockets gone", async () => (await metric(gwA, "sioc_sockets")) + (await metric(gwB, "sioc_sockets")) === 0, 8000);
});

test("JSONP (Engine.IO v3) through the other gateway: the POSTed event and its ack, wrapped as the owner wraps them", async () => {
  const hs = await get(gwA.port, "/socket.io/?EIO=3&transport=polling&j=0");
  assertEqual(hs.status, 200, "JSONP handshake");
  const sid = /sid\\?":\\?"([A-Za-z0-9_-]{20})/.exec(hs.body)[1];
  const q = `/socket.io/?EIO=3&transport=polling&j=0&sid=${sid}`;
  const packet = '421["ack","j"]';
  const body = `d=${encodeURIComponent(`${packet.length}:${packet}`)}`;
  const posted = await post(gwB.port, q, body, "Content-Type: application/x-www-form-urlencoded\r\n");
  assertEqual([posted.status, posted.body], [200, "ok"], "forwarded JSONP POST");
  let all = "";
  await until("the ack through the other gateway", async () => {
    const r = await get(gwB.port, q);
    assertEqual(r.status, 200, `forwarded JSONP GET: ${r.body}`);
    assert(r.body.startsWith("___eio[0](\"") && r.body.endsWith("\");"), `JSONP wrapping: ${r.body}`);
    all += r.body;
    return all.includes('431[\\"j\\"]');
  }, 8000, { every: 1 });
  await post(gwB.port, q, `d=${encodeURIComponent("1:1")}`, "Content-Type: application/x-www-form-urlencoded\r\n");
});

test("HAProxy with the shipped configuration in round-robin without the cookie", async () => {
  const lbPort = await freePort(), statsPort = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "sioc-rr-"));
  const cfg = roundRobinConfig(readFileSync(CFG, "utf8"), { lbPort, statsPort, servers: [gwA.port, gwB.port] });
  assert(!/cookie/.test(cfg.replace(/#.*$/gm, "")), "no cookie left in the test copy");
  writeFileSync(path.join(dir, "haproxy.cfg"), cfg);
  const check = spawnSync("haproxy", ["-c", "-f", path.join(dir, "haproxy.cfg")], { encoding: "utf8" });
  assertEqual(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
  let log = "";
  const hp = spawn("haproxy", ["-f", path.join(dir, "haproxy.cfg"), "-db"], { stdio: ["ignore", "pipe", "pipe"] });
  hp.stdout.on("data", (d) => (log += d));
  hp.stderr.on("data", (d) => (log += d));
  const exited = new Promise((r) => hp.on("exit", r));
  try {
    await until("haproxy up", async () => (await get(lbPort, "/haproxy-health").catch(() => ({}))).status === 200, 10000);
    await until("both servers up", async () => {
      const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
      return csv.split("\n").filter((l) => l.startsWith("sioc_gateways,gw") && l.includes(",UP,")).length === 2;
    }, 15000);
    const url = `http://127.0.0.1:${lbPort}`;
    assertEqual((await conversation(url, { transports: ["polling"] }, "haproxy polling")).join(), "polling,polling", "polling");
    assertEqual((await conversation(url, {}, "haproxy upgrade")).join(), "websocket,websocket", "upgraded");
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
    const names = csv.split("\n")[0].replace(/^# /, "").split(",");
    const row = csv.split("\n").find((l) => l.startsWith("sioc_gateways,BACKEND")).split(",");
    assertEqual(row[names.indexOf("hrsp_4xx")], "0", "no 4xx answer through HAProxy");
  } finally {
    hp.kill("SIGTERM");
    await within(5000, exited, "haproxy exit").catch(() => hp.kill("SIGKILL"));
    rmSync(dir, { recursive: true, force: true });
  }
});

test("two concurrent GETs of one session through the other gateway: answered as the owner answers them locally (400, close)", async () => {
  const hold = (port, q) => rawHttp(port, `GET ${q} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, { timeoutMs: 6000 });
  const outcome = async (via) => {
    const hs = await get(gwA.port, "/socket.io/?EIO=4&transport=polling");
    const q = `/socket.io/?EIO=4&transport=polling&sid=${JSON.parse(hs.body.slice(1)).sid}`;
    const first = hold(via, q); // held by gwA: nothing queued before the ping
    await sleep(300);
    const second = await hold(via, q);
    const r1 = await first;
    const after = await get(via, q);
    return [r1.status, r1.body, second.status, after.status, after.body];
  };
  const local = await outcome(gwA.port);
  assertEqual(local.slice(0, 3), [200, "1", 400], "locally: the first GET gets the close packet, the second 400");
  assertEqual(await outcome(gwB.port), local, "forwarded: the same answers");
});

test("forward-max: a gateway with one forwarded request in flight answers the next one 503, and says so", async () => {
  const gwD = await startServer(GATEWAY, gwArgs(redis.url, "gwD", ["--forward-max", "1", "--ping-interval", "3000"]));
  try {
    await until("gwD ready", async () => (await get(gwD.port, "/readyz")).status === 200, 10000);
    const session = async () => {
      const hs = await get(gwA.port, "/socket.io/?EIO=4&transport=polling");
      return `/socket.io/?EIO=4&transport=polling&sid=${JSON.parse(hs.body.slice(1)).sid}`;
    };
    const q1 = await session(), q2 = await session();
    const held = rawHttp(gwD.port, `GET ${q1} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, { timeoutMs: 8000 });
    await sleep(300);
    const refused = await post(gwD.port, q2, "3");
    assertEqual([refused.status, refused.body], [503, "forwarding limit reached\n"], "over forward-max");
    await until("the forward_limit log line", () => /eio\.forward_limit/.test(gwD.log()), 5000);
    assertEqual((await held).status, 200, "the request in flight is answered");
    assertEqual((await post(gwD.port, q2, "3")).body, "ok", "room again once it was answered");
  } finally {
    await gwD.stop();
  }
});

test("owner killed: its sessions' requests get 400 Session ID unknown from the other gateway within the bound", async () => {
  const gwC = await startServer(GATEWAY, gwArgs(redis.url, "gwC"));
  let killed = false;
  try {
    await until("gwC ready", async () => (await get(gwC.port, "/readyz")).status === 200, 10000);
    const hs = await get(gwC.port, "/socket.io/?EIO=4&transport=polling");
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const q = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    // through gwA first: forwarded, answered by gwC (the pending ping or a noop)
    const first = await get(gwA.port, q);
    assertEqual(first.status, 200, `forwarded GET before the kill: ${first.body}`);
    // held by gwC (nothing to send yet)
    const held = rawHttp(gwA.port, `GET ${q} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, { timeoutMs: 9000 });
    await sleep(200);
    process.kill(gwC.pid, "SIGKILL");
    killed = true;
    const t0 = Date.now();
    const r = await within(4000 + 3000, held, "the held GET's answer");
    assertEqual(r.status, 400, `held GET after the kill: ${r.body}`);
    assertEqual(r.body, '{"code":1,"message":"Session ID unknown"}', "body");
    const nobody = await get(gwA.port, "/socket.io/?EIO=4&transport=polling&sid=zzzzAAAAAAAAAAAAAAAA");
    assertEqual([nobody.status, nobody.body], [400, '{"code":1,"message":"Session ID unknown"}'], "a tag nobody has");
    const later = await get(gwA.port, q);
    assertEqual(later.status, 400, "a new request after the kill");
    assertEqual(later.body, '{"code":1,"message":"Session ID unknown"}', "new request body");
    assert(Date.now() - t0 < 6000, `answered within the bound (${Date.now() - t0} ms)`);
    await until("gwA logged the failed forward", () => /eio\.forward_failed/.test(gwA.log()), 5000);
  } finally {
    if (!killed) await gwC.stop();
  }
});

await run();
for (const s of clients) s.disconnect ? s.disconnect() : s.close();
await stopAll();
