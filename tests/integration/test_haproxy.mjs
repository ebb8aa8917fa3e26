// test_haproxy.mjs: issue 11, the shipped deploy/haproxy/haproxy.cfg for real. A test copy is
// made from it programmatically (only the listen addresses and the server list change: the
// compose file's DNS-discovered `server-template` becomes three loopback gateways) and run with
// `haproxy -db` in front of two gateways (build/sioc-gateway, a private redis-server, the test
// worker tests/integration/worker.py) plus a third gateway whose Redis is unreachable (its
// /readyz says 503, so the /readyz health check must keep it out). Then: polling without the
// sticky cookie breaks (400 Session ID unknown), with it every request works; socket.io-client
// polling-only clients (cookie jar: withCredentials) and WebSocket clients work through it; a
// gateway stopped with SIGTERM loses its clients, which reconnect through HAProxy to the other
// one and work again. Also the health check commands of deploy/Dockerfile and
// docker-compose.yml run against the live processes.
import { io } from "socket.io-client";
import { spawn, spawnSync } from "node:child_process";
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
  repo,
  sleep,
  startProcess,
  startRedis,
  startServer,
  within,
} from "./lib/harness.mjs";

const GATEWAY = process.env.SIOC_GATEWAY || "build/sioc-gateway";
const CFG = process.env.SIOC_HAPROXY_CFG || path.join(repo, "deploy/haproxy/haproxy.cfg");
const clientJs = path.join(repo, "node_modules/socket.io-client/dist/socket.io.min.js");
const { test, run } = createRunner("test_haproxy");

// ---- the test copy of the shipped configuration ----

// Replaces exactly one match of `re` (the test fails if the shipped file changed shape).
function replaceOnce(text, re, replacement, what) {
  const matches = text.match(new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g"));
  if (!matches || matches.length !== 1) throw new Error(`haproxy.cfg: expected one ${what}, found ${matches ? matches.length : 0}`);
  return text.replace(re, replacement);
}

export function testConfig(shipped, { lbPort, statsPort, servers }) {
  let cfg = shipped;
  cfg = replaceOnce(cfg, /^(\s*)bind :8080$/m, `$1bind 127.0.0.1:${lbPort}`, "bind :8080");
  cfg = replaceOnce(cfg, /^(\s*)bind :8404$/m, `$1bind 127.0.0.1:${statsPort}`, "bind :8404");
  // no Docker DNS here: the servers are fixed loopback addresses
  cfg = replaceOnce(cfg, /^(\s*default-server .*) resolvers docker resolve-prefer ipv4$/m, "$1", "default-server ... resolvers docker");
  cfg = replaceOnce(
    cfg,
    /^(\s*)server-template gw \d+ gateway:3000$/m,
    (_, indent) => servers.map((port, i) => `${indent}server gw${i + 1} 127.0.0.1:${port}`).join("\n"),
    "server-template gw N gateway:3000",
  );
  return cfg;
}

// ---- processes (every one stopped by pid at the end, or when the setup fails) ----

const stoppers = []; // in start order
async function stopAll() {
  const results = [];
  for (const stop of stoppers.splice(0).reverse()) results.push(await stop().catch((e) => ({ error: String(e) })));
  return results;
}
let haproxyLog = "";
let redis, deadRedisPort, gwA, gwB, gwNoRedis, worker, haproxy, lbPort, statsPort;
const dir = mkdtempSync(path.join(tmpdir(), "sioc-haproxy-"));
stoppers.push(async () => rmSync(dir, { recursive: true, force: true }));
const gwArgs = (redisUrl, node) => [
  "--redis", redisUrl, "--node-id", node, "--namespaces", "/",
  // short pings: a polling client makes a request pair every 500 ms
  "--ping-interval", "500", "--ping-timeout", "3000",
  // a gateway without Redis cannot flush upstream: do not wait the default 10 s for it
  "--drain-timeout", "2000",
  "--client-js", clientJs, "--log-level", "warn",
  // the cookie's job is tested here, so without forwarding (issue 18: test_polling_nonsticky.mjs
  // runs the same configuration in round-robin without the cookie, forwarding on)
  "--forward", "no",
];
try {
  redis = await startRedis();
  stoppers.push(() => redis.stop());
  deadRedisPort = await freePort(); // nothing listens there
  gwA = await startServer(GATEWAY, gwArgs(redis.url, "gwA"));
  stoppers.push(() => gwA.stop());
  gwB = await startServer(GATEWAY, gwArgs(redis.url, "gwB"));
  stoppers.push(() => gwB.stop());
  gwNoRedis = await startServer(GATEWAY, gwArgs(`redis://127.0.0.1:${deadRedisPort}`, "gwC"));
  stoppers.push(() => gwNoRedis.stop());
  worker = await startProcess(
    "/usr/bin/python3",
    ["tests/integration/worker.py", "--redis", redis.url, "--namespaces", "/"],
    "worker ready",
  );
  stoppers.push(() => worker.stop());

  lbPort = await freePort();
  statsPort = await freePort();
  const cfgPath = path.join(dir, "haproxy.cfg");
  writeFileSync(cfgPath, testConfig(readFileSync(CFG, "utf8"), { lbPort, statsPort, servers: [gwA.port, gwB.port, gwNoRedis.port] }));
  const check = spawnSync("haproxy", ["-c", "-f", cfgPath], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`haproxy -c refused the test copy:\n${check.stdout}${check.stderr}`);
  haproxy = spawn("haproxy", ["-f", cfgPath, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
  haproxy.stdout.on("data", (d) => (haproxyLog += d));
  haproxy.stderr.on("data", (d) => (haproxyLog += d));
  const haproxyExited = new Promise((r) => haproxy.on("exit", (code, signal) => r({ code, signal })));
  stoppers.push(async () => {
    if (haproxy.exitCode === null) haproxy.kill("SIGTERM");
    return within(5000, haproxyExited, "haproxy to exit").catch(() => haproxy.kill("SIGKILL"));
  });
  await within(10000, (async () => {
    for (;;) {
      if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${haproxyLog}`);
      if ((await get(lbPort, "/haproxy-health")).status === 200) return;
      await sleep(50);
    }
  })(), "haproxy to listen");
} catch (err) {
  console.log(`setup failed: ${err && err.stack ? err.stack : err}`);
  await stopAll();
  console.log("test_haproxy: 0 passed, 1 failed");
  process.exit(1);
}

const url = `http://127.0.0.1:${lbPort}`;

// ---- helpers ----

// HAProxy's statistics (the shipped stats frontend, CSV): {"<backend>/<server>": {field: value}}.
async function stats() {
  const res = await fetch(`http://127.0.0.1:${statsPort}/stats;csv`); // chunked: not rawHttp
  assertEqual(res.status, 200, "stats page");
  const lines = (await res.text()).trim().split("\n");
  const names = lines[0].replace(/^# /, "").split(",");
  const out = {};
  for (const line of lines.slice(1)) {
    const v = line.split(",");
    const row = Object.fromEntries(names.map((n, i) => [n, v[i]]));
    out[`${row.pxname}/${row.svname}`] = row;
  }
  return out;
}

async function until(what, fn, ms = 10000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) {
      const state = `gw1 ${await sockets(gwA).catch(() => "-")} sockets, gw2 ${await sockets(gwB)} sockets`;
      throw new Error(`timed out after ${ms} ms waiting for ${what} (${state})`);
    }
    await sleep(50);
  }
}

async function metric(gw, name) {
  const body = (await get(gw.port, "/metrics")).body;
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, "m").exec(body);
  return m ? Number(m[1]) : 0;
}
const sockets = (gw) => metric(gw, "sioc_sockets");

const responses4xx = async () => Number((await stats())["sioc_gateways/BACKEND"].hrsp_4xx);

function cookieOf(res) {
  const set = res.headers["set-cookie"];
  return set ? set.split(";")[0] : null;
}

const clients = [];
function connect(opts) {
  const socket = io(url, {
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
    ...opts,
  });
  clients.push(socket);
  const ready = within(10000, new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }), "connect through haproxy");
  return { socket, ready };
}

// Disconnects every client of earlier tests (also those of a failed one) and waits until the
// gateways have no socket left and HAProxy's answer counters stand still.
async function fresh() {
  for (const s of clients.splice(0)) s.disconnect();
  await until("no sockets left", async () => (await sockets(gwA)) + (await sockets(gwB)) === 0);
  let last = await responses4xx();
  await sleep(300);
  while ((await responses4xx()) !== last) {
    last = await responses4xx();
    await sleep(300);
  }
}

async function echoes(socket, n, tag) {
  for (let i = 0; i < n; i++) {
    const got = await socket.timeout(5000).emitWithAck("echo", `${tag}-${i}`, i);
    assertEqual(got, `${tag}-${i}`, "echo ack through haproxy");
  }
}

// ---- tests ----

test("health checks on /readyz: the two gateways with Redis are UP, the one without is DOWN", async () => {
  await until("gw1 and gw2 UP, gw3 DOWN", async () => {
    const s = await stats();
    return s["sioc_gateways/gw1"].status === "UP" && s["sioc_gateways/gw2"].status === "UP" &&
      s["sioc_gateways/gw3"].status === "DOWN";
  });
  // the point: the third one is alive (/healthz) but not ready
  assertEqual((await get(gwNoRedis.port, "/healthz")).status, 200, "gw3 /healthz");
  assertEqual((await get(gwNoRedis.port, "/readyz")).status, 503, "gw3 /readyz");
  const s = await stats();
  assert(/^L7/.test(s["sioc_gateways/gw3"].check_status), `gw3 fails an HTTP check (${s["sioc_gateways/gw3"].check_status})`);
});

test("other paths go to the gateways too (default backend): socket.io.js, /healthz", async () => {
  const js = await get(lbPort, "/socket.io/socket.io.js");
  assertEqual(js.status, 200, "socket.io.js through haproxy");
  assertEqual(js.body, readFileSync(clientJs, "utf8"), "the client bundle");
  assertEqual((await get(lbPort, "/healthz")).body, "ok\n", "/healthz of a gateway");
  assertEqual((await get(lbPort, "/no-such-page")).status, 404, "a gateway's 404");
});

test("polling without the sticky cookie: requests land on the other gateway, 400 Session ID unknown", async () => {
  const hs = await get(lbPort, "/socket.io/?EIO=4&transport=polling");
  assertEqual(hs.status, 200, "handshake");
  assert(/^SIOCSRV=[0-9a-f]+$/.test(cookieOf(hs) || ""), `haproxy inserts its cookie (${hs.headers["set-cookie"]})`);
  const sid = JSON.parse(hs.body.slice(1)).sid;
  let unknown = 0;
  for (let i = 0; i < 6; i++) {
    const res = await post(lbPort, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, "3");
    if (res.status === 400) {
      assertEqual(res.body, '{"code":1,"message":"Session ID unknown"}', "the other gateway's answer");
      unknown++;
    }
  }
  assert(unknown > 0, "without stickiness some requests reach a gateway that does not know the session");
});

test("polling with the cookie: 60 requests on one session, all on its gateway, no 400", async () => {
  const before = await responses4xx();
  const hs = await get(lbPort, "/socket.io/?EIO=4&transport=polling");
  const cookie = `Cookie: ${cookieOf(hs)}\r\n`;
  const sid = JSON.parse(hs.body.slice(1)).sid;
  const q = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  const connect = await post(lbPort, q, "40", `Content-Type: text/plain;charset=UTF-8\r\n${cookie}`);
  assertEqual([connect.status, connect.body], [200, "ok"], "CONNECT posted");
  const ack = await get(lbPort, q, cookie);
  assert(ack.status === 200 && ack.body.startsWith("40{\"sid\":"), `CONNECT answered: ${ack.status} ${ack.body}`);
  for (let i = 0; i < 29; i++) {
    // the gateway pings every 500 ms; answer each ping
    const poll = await get(lbPort, q, cookie);
    assertEqual([poll.status, poll.body], [200, "2"], `poll ${i}`);
    const pong = await post(lbPort, q, "3", `Content-Type: text/plain;charset=UTF-8\r\n${cookie}`);
    assertEqual([pong.status, pong.body], [200, "ok"], `pong ${i}`);
  }
  assertEqual(await responses4xx(), before, "no 4xx answer in the backend meanwhile");
  await post(lbPort, q, "1", `Content-Type: text/plain;charset=UTF-8\r\n${cookie}`);
}, 60000);

test("socket.io-client without a cookie jar cannot keep a polling session through the load balancer", async () => {
  const { socket, ready } = connect({ transports: ["polling"], reconnection: false });
  let failed = false;
  try {
    await ready;
    await socket.timeout(3000).emitWithAck("echo", "x");
  } catch {
    failed = true;
  }
  socket.disconnect();
  assert(failed, "a client that drops the cookie fails (this is what withCredentials prevents)");
});

test("socket.io-client polling-only clients (withCredentials: cookie jar) spread over both gateways and work", async () => {
  await fresh();
  const before = await responses4xx();
  const polling = [];
  for (let i = 0; i < 8; i++) polling.push(connect({ transports: ["polling"], withCredentials: true, reconnection: false }));
  await Promise.all(polling.map((c) => c.ready));
  await Promise.all(polling.map((c, i) => echoes(c.socket, 10, `p${i}`)));
  await sleep(2500); // a few ping cycles: more requests on each session
  await Promise.all(polling.map((c, i) => echoes(c.socket, 2, `q${i}`)));
  const [a, b] = [await sockets(gwA), await sockets(gwB)];
  assertEqual(a + b, 8, "every client has a socket on gw1 or gw2");
  assert(a > 0 && b > 0, `both gateways got clients (${a}, ${b})`);
  for (const c of polling) assertEqual([c.socket.connected, c.socket.io.engine.transport.name], [true, "polling"], "still connected by polling");
  assertEqual(await responses4xx(), before, "no 4xx answer in the backend");
  for (const c of polling) c.socket.disconnect();
  await until("sockets gone", async () => (await sockets(gwA)) + (await sockets(gwB)) === 0);
}, 30000);

test("WebSocket clients, and polling clients upgrading to WebSocket, work through haproxy", async () => {
  await fresh();
  const ws = [];
  for (let i = 0; i < 4; i++) ws.push(connect({ transports: ["websocket"], reconnection: false }));
  for (let i = 0; i < 4; i++) ws.push(connect({ withCredentials: true, reconnection: false }));
  await Promise.all(ws.map((c) => c.ready));
  await Promise.all(ws.map((c, i) => echoes(c.socket, 5, `w${i}`)));
  await until("the upgrades", async () => ws.every((c) => c.socket.io.engine.transport.name === "websocket"));
  await Promise.all(ws.map((c, i) => echoes(c.socket, 5, `u${i}`)));
  for (const c of ws) c.socket.disconnect();
  await until("sockets gone", async () => (await sockets(gwA)) + (await sockets(gwB)) === 0);
}, 30000);

test("the health checks of deploy/Dockerfile and docker-compose.yml pass against live processes (and fail without them)", async () => {
  const py = spawnSync("/usr/bin/python3", ["-c", "import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
    path.join(repo, "docker-compose.yml")], { encoding: "utf8" });
  assertEqual(py.status, 0, `docker-compose.yml parses: ${py.stderr}`);
  const compose = JSON.parse(py.stdout);
  const run = (argv, env = {}) => spawnSync(argv[0], argv.slice(1), { env: { ...process.env, ...env }, timeout: 10000 }).status;
  const cmdOf = (test) => {
    assertEqual(test[0], "CMD", "exec-form healthcheck");
    return test.slice(1);
  };
  const withPort = (argv, from, to) => argv.map((a) => a.replace(`/dev/tcp/127.0.0.1/${from}`, `/dev/tcp/127.0.0.1/${to}`));
  const gwCheck = cmdOf(compose.services.gateway.healthcheck.test);
  assertEqual(run(withPort(gwCheck, 3000, gwA.port)), 0, "gateway healthcheck (/readyz) on a ready gateway");
  assert(run(withPort(gwCheck, 3000, gwNoRedis.port)) !== 0, "gateway healthcheck fails without Redis");
  const broker = await startServer(process.env.SIOC_BROKER || "build/sioc-broker", ["--redis", redis.url]);
  try {
    const bkCheck = cmdOf(compose.services.broker.healthcheck.test);
    assertEqual(run(withPort(bkCheck, 8081, broker.port)), 0, "broker healthcheck (/readyz)");
  } finally {
    assertEqual((await broker.stop()).code, 0, "broker exit status");
  }
  const redisCheck = cmdOf(compose.services.redis.healthcheck.test);
  const onPort = (port) => [redisCheck[0], "-p", String(port), ...redisCheck.slice(1)]; // options before the command
  assertEqual(run(onPort(redis.port)), 0, "redis healthcheck");
  assert(run(onPort(deadRedisPort)) !== 0, "redis healthcheck fails without Redis");
  const lbCheck = cmdOf(compose.services.haproxy.healthcheck.test);
  assertEqual(run(withPort(lbCheck, 8080, lbPort)), 0, "haproxy healthcheck");
  const dockerfile = readFileSync(path.join(repo, "deploy/Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const m = /^HEALTHCHECK .*?CMD (\[.*\])\s*$/m.exec(dockerfile);
  assert(m, "deploy/Dockerfile has an exec-form HEALTHCHECK");
  const imageCheck = JSON.parse(m[1]);
  assertEqual(run(imageCheck, { SIOC_LISTEN: `0.0.0.0:${gwNoRedis.port}` }), 0, "image healthcheck (/healthz) on the port of SIOC_LISTEN");
  assert(run(imageCheck, { SIOC_LISTEN: `0.0.0.0:${deadRedisPort}` }) !== 0, "image healthcheck fails on a closed port");
});

test("SIGTERM on one gateway: its clients reconnect through haproxy to the other and work again", async () => {
  await fresh();
  const all = [];
  for (let i = 0; i < 6; i++) all.push(connect({ transports: ["polling"], withCredentials: true }));
  for (let i = 0; i < 6; i++) all.push(connect({ transports: ["websocket"] }));
  await Promise.all(all.map((c) => c.ready));
  await Promise.all(all.map((c, i) => echoes(c.socket, 2, `before${i}`)));
  const onA = await sockets(gwA);
  assert(onA > 0 && onA < 12, `clients on both gateways before (${onA} on gw1)`);
  const reconnected = all.map((c) => new Promise((resolve) => {
    c.socket.once("disconnect", (reason) => c.socket.once("connect", () => resolve(reason)));
  }));
  const stopped = await gwA.stop();
  assertEqual(stopped.code, 0, "the drained gateway exits 0");
  await until("gw1's clients back, all on gw2", async () => (await sockets(gwB)) === 12 && all.every((c) => c.socket.connected), 15000);
  const reasons = (await Promise.all(reconnected.map((p) => Promise.race([p, sleep(100).then(() => null)])))).filter((r) => r !== null);
  assertEqual(reasons.length, onA, "exactly the clients of the stopped gateway reconnected");
  // a close packet ("transport close"), or, for a polling request caught in flight while the
  // gateway went away, "transport error": both reconnect by themselves
  assert(reasons.every((r) => r === "transport close" || r === "transport error"), `they saw the transport go (${reasons})`);
  await Promise.all(all.map((c, i) => echoes(c.socket, 3, `after${i}`)));
  await until("haproxy marks gw1 DOWN", async () => (await stats())["sioc_gateways/gw1"].status.startsWith("DOWN"));
}, 40000);

// ---- run, then stop everything by pid ----
const ok = await run();
for (const s of clients) s.disconnect();
const workerOutput = worker.output();
const logs = [gwA.log(), gwB.log()];
const results = await stopAll();
const w = results.find((r) => r && "code" in r && r.code !== null && r.code !== 0);
if (!ok) {
  const lines = haproxyLog.split("\n");
  console.log(`--- haproxy log: 4xx/5xx answers and warnings ---\n${lines.filter((l) => / [45]\d\d \d+ /.test(l) || /WARNING|ALERT/.test(l)).slice(-40).join("\n")}`);
  console.log(`--- haproxy log (tail) ---\n${lines.slice(-20).join("\n")}`);
  console.log(`--- gateway logs ---\n${logs[0].slice(-2000)}\n${logs[1].slice(-2000)}`);
  console.log(`--- worker (tail) ---\n${workerOutput.split("\n").slice(-20).join("\n")}`);
}
if (w) console.log(`a process exited with ${JSON.stringify(w)}`);
process.exit(ok && !w ? 0 : 1);
