// test_redis_tls.mjs: issue 16, Redis over TLS. A redis-server listening with --tls-port only
// (client certificates required, an ACL user `alice`), two sioc gateways, the broker and the
// Python SDK test worker, all on rediss://alice:...@127.0.0.1 (the gateways given the redis-tls-*
// options as flags, the broker and the worker as SIOC_REDIS_TLS_* variables). socket.io-client
// clients on each gateway: an event answered by the worker, a room broadcast across gateways,
// the broker's registry and its emit API; then a Redis restart (an event sent during the outage
// is answered after it); then a gateway trusting the wrong CA (refused with the verification
// error in its log, retried with backoff, never ready) and one with redis-tls-insecure (logged).
// Certificates are made here with the openssl CLI in a temporary directory.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { io as ioc } from "socket.io-client";
import {
  BROKER,
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  freePort,
  get,
  portAccepts,
  post,
  sleep,
  startProcess,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const { test, run } = createRunner("test_redis_tls");

// ---- certificates: CA a (trusted) and CA b (not), a server and a client certificate from a ----
const dir = mkdtempSync(path.join(tmpdir(), "sioc-rediss-"));
const f = (name) => path.join(dir, name);
function openssl(...args) {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}
function key(name) {
  openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name);
}
for (const ca of ["a", "b"]) {
  key(`ca-${ca}.key`);
  openssl("req", "-x509", "-new", "-key", `ca-${ca}.key`, "-out", `ca-${ca}.crt`, "-days", "2", "-subj", `/CN=test CA ${ca}`);
}
function cert(name, ca, san) {
  key(`${name}.key`);
  openssl("req", "-new", "-key", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  execFileSync("sh", ["-c", `printf 'subjectAltName=${san}\\n' > ${name}.ext`], { cwd: dir });
  openssl("x509", "-req", "-in", `${name}.csr`, "-CA", `ca-${ca}.crt`, "-CAkey", `ca-${ca}.key`, "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`);
}
cert("server", "a", "IP:127.0.0.1,DNS:localhost");
cert("client", "a", "DNS:client");

// ---- a TLS-only redis-server, stopped by pid, restartable on its port ----
const PASSWORD = "w0nder land";
const redisPort = await freePort();
let redisChild = null;
async function startTlsRedis() {
  redisChild = spawn("redis-server", ["--port", "0", "--tls-port", String(redisPort), "--bind", "127.0.0.1",
    "--save", "", "--appendonly", "no", "--tls-cert-file", f("server.crt"), "--tls-key-file", f("server.key"),
    "--tls-ca-cert-file", f("ca-a.crt"), "--tls-auth-clients", "yes",
    "--user", "alice", "on", `>${PASSWORD}`, "~*", "&*", "+@all", "--user", "default", "off"], { stdio: "ignore" });
  const deadline = Date.now() + 5000;
  while (!(await portAccepts(redisPort))) {
    if (Date.now() > deadline) throw new Error("redis-server --tls-port did not start");
    await sleep(20);
  }
}
async function stopTlsRedis() {
  if (redisChild && redisChild.exitCode === null && redisChild.signalCode === null) {
    const exited = new Promise((r) => redisChild.on("exit", r));
    redisChild.kill("SIGKILL");
    await within(5000, exited, "redis-server to exit");
  }
}
function redisCli(...args) {
  return execFileSync("redis-cli", ["--tls", "--cacert", f("ca-a.crt"), "--cert", f("client.crt"), "--key", f("client.key"),
    "-p", String(redisPort), "--user", "alice", "--pass", PASSWORD, "--no-auth-warning", ...args], { encoding: "utf8" }).trim();
}
// Whatever happens (a start-up failure included), nothing started here outlives the test.
const started = [];
process.on("exit", () => {
  for (const pid of [redisChild?.pid, ...started]) {
    try {
      if (pid) process.kill(pid, "SIGKILL");
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
});
await startTlsRedis();

const url = `rediss://alice:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redisPort}`;
const tlsFlags = ["--redis-tls-ca", f("ca-a.crt"), "--redis-tls-cert", f("client.crt"), "--redis-tls-key", f("client.key")];
const tlsEnv = { SIOC_REDIS_TLS_CA: f("ca-a.crt"), SIOC_REDIS_TLS_CERT: f("client.crt"), SIOC_REDIS_TLS_KEY: f("client.key") };

function gatewayArgs(node, extra = tlsFlags) {
  return ["--redis", url, ...extra, "--namespaces", "/", "--node-id", node, "--log-level", "info", "--node-timeout", "3000"];
}
const gw1 = await startServer(GATEWAY, gatewayArgs("gw1"));
started.push(gw1.pid);
const gw2 = await startServer(GATEWAY, gatewayArgs("gw2"));
started.push(gw2.pid);
// the broker and the worker read the TLS settings from the environment (SIOC_REDIS_TLS_*)
Object.assign(process.env, tlsEnv);
const broker = await startServer(BROKER, ["--redis", url, "--check-interval", "200"]);
started.push(broker.pid);
for (const k of Object.keys(tlsEnv)) delete process.env[k];
const worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", url, "--namespaces", "/"],
  "worker ready", { env: { ...process.env, ...tlsEnv } });
started.push(worker.pid);

const waitFor = (what, fn, ms = 10000) => until(what, fn, ms, { every: 50 });
const ready = async (port) => (await get(port, "/readyz")).status === 200;

const clients = [];
async function connect(port) {
  const s = ioc(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: true, reconnectionDelay: 100 });
  s.got = [];
  s.onAny((event, ...args) => s.got.push([event, ...args]));
  clients.push(s);
  await within(5000, new Promise((r) => s.once("connect", r)), "socket.io connect");
  return s;
}

// every argument of the ack (emitWithAck resolves with the first one only)
function ack(s, event, ...args) {
  return within(15000, new Promise((r) => s.emit(event, ...args, (...got) => r(got))), `${event} ack`);
}

let a, b;
test("gateways, broker and worker come up over rediss:// as ACL user alice with client certificates", async () => {
  await waitFor("both gateways ready", async () => (await ready(gw1.port)) && (await ready(gw2.port)));
  await waitFor("broker ready", () => ready(broker.port));
  const users = redisCli("CLIENT", "LIST").split("\n").map((l) => /user=(\S+)/.exec(l)?.[1]);
  // the gateways' 4 links each, the broker's 2, the worker's, redis-cli itself: all alice
  assert(users.length >= 10 && users.every((u) => u === "alice"), `CLIENT LIST users: ${users}`);
  assert(/connected: 127\.0\.0\.1:\d+|redis.connected/.test(gw1.log()), `gateway log: ${gw1.log()}`);
});

test("a client event is answered by the worker; a room broadcast crosses gateways", async () => {
  a = await connect(gw1.port);
  b = await connect(gw2.port);
  assertEqual(await ack(a, "echo", "hello", 1), ["hello", 1], "echo ack");
  await waitFor("the echo event", () => a.got.some((e) => e[0] === "echo" && e[1] === "hello"));
  assertEqual(await within(5000, a.emitWithAck("join", "r"), "join a"), "r", "join a");
  assertEqual(await within(5000, b.emitWithAck("join", "r"), "join b"), "r", "join b");
  await within(5000, a.emitWithAck("room_msg", "r", "to the room"), "room_msg");
  await waitFor("the room message on the other gateway", () => b.got.some((e) => e[0] === "room_msg" && e[1] === "to the room"));
});

test("the broker mirrors the registry and broadcasts over rediss://", async () => {
  await waitFor("room r with 2 members in the broker", async () => {
    const r = await get(broker.port, "/v1/rooms?nsp=/");
    return r.status === 200 && JSON.parse(r.body).some((x) => x.room === "r" && x.count === 2);
  });
  const r = await post(broker.port, "/v1/emit", JSON.stringify({ nsp: "/", event: "news", args: ["from broker"], rooms: ["r"] }),
    "Content-Type: application/json\r\n");
  assertEqual(r.status, 200, `emit: ${r.body}`);
  await waitFor("the broker's broadcast on both clients", () =>
    [a, b].every((s) => s.got.some((e) => e[0] === "news" && e[1] === "from broker")));
});

test("a Redis restart: links come back over TLS, an event sent during the outage is answered", async () => {
  await stopTlsRedis();
  await waitFor("gateway 1 not ready", async () => !(await ready(gw1.port)), 5000);
  const during = ack(a, "echo", "during the outage");
  await sleep(300);
  await startTlsRedis();
  const started = Date.now();
  await waitFor("gateways and broker ready again", async () =>
    (await ready(gw1.port)) && (await ready(gw2.port)) && (await ready(broker.port)), 15000);
  console.log(`ready again ${Date.now() - started} ms after the restart`);
  assertEqual(await during, ["during the outage"], "ack after restart");
  assertEqual(await within(5000, b.emitWithAck("join", "r2"), "join after restart"), "r2", "join after restart");
  await within(5000, a.emitWithAck("join", "r2"), "join a r2");
  await within(5000, b.emitWithAck("room_msg", "r2", "after"), "room_msg after");
  await waitFor("a broadcast after the restart", () => a.got.some((e) => e[0] === "room_msg" && e[1] === "after"));
}, 40000);

test("a gateway trusting the wrong CA is refused with a clear log line and retries with backoff", async () => {
  const bad = await startServer(GATEWAY, gatewayArgs("gw-bad", ["--redis-tls-ca", f("ca-b.crt"), "--redis-tls-cert", f("client.crt"),
    "--redis-tls-key", f("client.key"), "--drain-timeout", "500"]));
  try {
    await waitFor("3 refused attempts of one link", () =>
      (bad.log().match(/redis\.connect_failed[^\n]*command[^\n]*certificate verify failed/g) || []).length >= 3, 10000);
    const line = bad.log().split("\n").find((l) => l.includes("certificate verify failed"));
    console.log(`wrong CA: ${line}`);
    assert(/TLS handshake failed: certificate verify failed: \S/.test(line), line);
    assertEqual((await get(bad.port, "/readyz")).status, 503, "never ready");
  } finally {
    await bad.stop();
  }
});

test("redis-tls-insecure connects without verifying and says so in the log", async () => {
  const lax = await startServer(GATEWAY, gatewayArgs("gw-lax", ["--redis-tls-insecure", "yes", "--redis-tls-ca", f("ca-b.crt"),
    "--redis-tls-cert", f("client.crt"), "--redis-tls-key", f("client.key"), "--drain-timeout", "500"]));
  try {
    await waitFor("insecure gateway ready", () => ready(lax.port));
    assert(/redis-tls-insecure: Redis's certificate and name are NOT verified/.test(lax.log()), lax.log());
  } finally {
    await lax.stop();
  }
});

test("TLS options without a rediss:// URL are a configuration error", async () => {
  let out = "";
  try {
    execFileSync(GATEWAY, ["--redis", `redis://127.0.0.1:${redisPort}`, "--redis-tls-ca", f("ca-a.crt"), "--check-config"], { encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    out = String(e.stderr);
  }
  assert(/redis-tls-ca: needs a rediss:\/\/ URL/.test(out), out);
});

const result = await run();
for (const s of clients) s.close();
await worker.stop();
await broker.stop();
await gw1.stop();
await gw2.stop();
await stopTlsRedis();
rmSync(dir, { recursive: true, force: true });
process.exit(result ? 0 : 1);
