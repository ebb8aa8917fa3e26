// test_redis_cluster_tls.mjs: issue 17 with issue 16: a Redis Cluster that speaks TLS only
// (clients, cluster bus, replication; six nodes, lib/redis_cluster.mjs) and a gateway, the broker
// and the Python worker on rediss-cluster://<two seeds>, verifying the nodes' certificate (a
// test CA, the certificate names 127.0.0.1, the address CLUSTER SLOTS gives): an event is
// answered by the worker, the registry reaches the broker. Then a gateway trusting another CA
// is refused with the verification error in its log and never ready.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { io as ioc } from "socket.io-client";
import { BROKER, GATEWAY, assert, assertEqual, createRunner, get, startProcess, startServer, until, within } from "./lib/harness.mjs";
import { killOnExit, startRedisCluster } from "./lib/redis_cluster.mjs";

const { test, run } = createRunner("test_redis_cluster_tls");

const dir = mkdtempSync(path.join(tmpdir(), "sioc-cluster-tls-"));
const f = (name) => path.join(dir, name);
const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
for (const ca of ["a", "b"]) {
  openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `ca-${ca}.key`);
  openssl("req", "-x509", "-new", "-key", `ca-${ca}.key`, "-out", `ca-${ca}.crt`, "-days", "2", "-subj", `/CN=test CA ${ca}`);
}
openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "server.key");
openssl("req", "-new", "-key", "server.key", "-out", "server.csr", "-subj", "/CN=server");
execFileSync("sh", ["-c", "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext"], { cwd: dir });
openssl("x509", "-req", "-in", "server.csr", "-CA", "ca-a.crt", "-CAkey", "ca-a.key", "-CAcreateserial", "-days", "2",
  "-extfile", "server.ext", "-out", "server.crt");

const cluster = await startRedisCluster({ tls: { cert: f("server.crt"), key: f("server.key"), ca: f("ca-a.crt") } });
const started = killOnExit(cluster, () => rmSync(dir, { recursive: true, force: true }));

const url = cluster.url;
const gw = await startServer(GATEWAY, ["--redis", url, "--redis-tls-ca", f("ca-a.crt"), "--namespaces", "/",
  "--node-id", "tls1", "--upstream-shards", "3", "--log-level", "info"]);
started.push(gw.pid);
const tlsEnv = { SIOC_REDIS_TLS_CA: f("ca-a.crt") };
Object.assign(process.env, tlsEnv);
const broker = await startServer(BROKER, ["--redis", url, "--upstream-shards", "3", "--check-interval", "200"]);
started.push(broker.pid);
const worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", url, "--namespaces", "/",
  "--shards", "3", "--log-level", "CRITICAL"], "worker ready", { env: { ...process.env, ...tlsEnv } });
started.push(worker.pid);
for (const k of Object.keys(tlsEnv)) delete process.env[k];

const waitFor = (what, fn, ms = 15000) => until(what, fn, ms, { every: 50 });
const ready = async (port) => (await get(port, "/readyz")).status === 200;

test("gateway, broker and worker on rediss-cluster://: an event answered, the registry mirrored", async () => {
  assert(url.startsWith("rediss-cluster://"), url);
  await waitFor("gateway and broker ready", async () => (await ready(gw.port)) && (await ready(broker.port)));
  assert(/redis\.slot_map[^\n]*3 masters, 16384 slots/.test(gw.log()), `gateway log: ${gw.log()}`);
  const s = ioc(`http://127.0.0.1:${gw.port}`, { transports: ["websocket"], reconnection: false });
  try {
    await within(5000, new Promise((r) => s.once("connect", r)), "connect");
    const got = await within(15000, new Promise((r) => s.emit("echo", "over tls", (...a) => r(a))), "echo ack");
    assertEqual(got, ["over tls"], "echo ack");
    await waitFor("the socket in the broker's mirror", async () => {
      const r = await get(broker.port, "/v1/nodes");
      return r.status === 200 && r.body.includes("tls1");
    });
  } finally {
    s.close();
  }
}, 40000);

test("a gateway trusting another CA is refused (certificate verify failed) and never ready", async () => {
  const bad = await startServer(GATEWAY, ["--redis", url, "--redis-tls-ca", f("ca-b.crt"), "--namespaces", "/",
    "--node-id", "tls-bad", "--log-level", "info", "--drain-timeout", "500"]);
  try {
    await waitFor("a refused handshake in the log", () => /certificate verify failed/.test(bad.log()), 10000);
    assert(!(await ready(bad.port)), "not ready");
  } finally {
    await bad.stop();
  }
});

await run();
await worker.stop();
for (const p of [gw, broker]) await p.stop();
await cluster.stop();
