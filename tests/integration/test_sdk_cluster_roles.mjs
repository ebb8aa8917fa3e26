// test_sdk_cluster_roles.mjs: the Python SDK's Redis Cluster client after a master's kill -9
// (lib/redis_cluster.mjs, six nodes). redis-py 4.3 kept the promoted replica's old role in its
// node cache (no MOVED reply comes from a dead master to correct it): SCRIPT LOAD, sent to every
// primary, missed it, and the stream leases' EVALSHA failed with NOSCRIPT for ever, so a worker
// never read its streams again (test_redis_cluster.mjs's kill -9 case, 1 run in 8).
// sioc.redis_tls makes the roles follow CLUSTER SLOTS. Helper: cluster_leases.py.
import { spawn } from "node:child_process";
import { assert, assertEqual, createRunner, until, within } from "./lib/harness.mjs";
import { startRedisCluster } from "./lib/redis_cluster.mjs";

const { test, run } = createRunner("test_sdk_cluster_roles");
const cluster = await startRedisCluster();
process.on("exit", () => {
  for (const n of cluster.nodes) {
    try {
      process.kill(n.pid, "SIGKILL");
    } catch {}
  }
});

let py;
let out = "";
const lines = () => out.split("\n");
async function ask() {
  const before = lines().filter((l) => l.startsWith("tick ")).length;
  py.stdin.write("\n");
  await until("the helper's answer", () => lines().filter((l) => l.startsWith("tick ")).length > before, 40000, { every: 50 });
  const roles = lines().filter((l) => l.startsWith("roles ")).pop();
  const tick = lines().filter((l) => l.startsWith("tick ")).pop();
  return { roles, tick };
}

test("the SDK's client knows the replicas and holds the lease of slot 0's stream", async () => {
  py = spawn("/usr/bin/python3", ["tests/integration/cluster_leases.py", cluster.url], { stdio: ["pipe", "pipe", "pipe"] });
  py.stdout.on("data", (d) => (out += d));
  py.stderr.on("data", (d) => (out += d));
  await within(30000, until("helper ready", () => out.includes("ready"), 30000, { every: 50 }), "helper ready");
  const { roles, tick } = await ask();
  assertEqual(tick, "tick ok sioc:up:/:{0.1}", `tick: ${out.slice(-800)}`);
  assertEqual((roles.match(/:replica/g) || []).length, 3, `three replicas known: ${roles}`);
}, 40000);

test("kill -9 of slot 0's master: the promoted replica is a primary to the SDK; the lease scripts run there", async () => {
  const m = await cluster.masterOf(0);
  await cluster.node(m.port).kill();
  await until("the replica is master of slot 0", async () => (await cluster.masterOf(0))?.port === m.replica, 20000, { every: 100 });
  const { roles, tick } = await ask();
  assertEqual(tick, "tick ok sioc:up:/:{0.1}", `tick after the failover (${roles})`);
  assert(roles.includes(` ${m.replica}:primary`) || roles.startsWith(`roles ${m.replica}:primary`), `promoted ${m.replica}: ${roles}`);
  assert(!roles.includes(`${m.port}:`), `the dead master is gone: ${roles}`);
}, 60000);

await run();
py?.stdin.end();
await within(10000, new Promise((r) => (py.exitCode !== null ? r() : py.on("exit", r))), "helper exit").catch(() => py.kill("SIGKILL"));
await cluster.stop();
