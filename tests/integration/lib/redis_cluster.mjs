// redis_cluster.mjs: a real Redis Cluster for integration tests: six
// `redis-server --cluster-enabled yes` on free loopback ports (each port + 10000, the cluster bus,
// free too) with their nodes.conf in a temp dir, joined with
// `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes` (three masters, three
// replicas), ready once every node says cluster_state:ok (bounded). Stopped by pid.
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, portAccepts, redisPing, sleep, within } from "./harness.mjs";

export const NODE_TIMEOUT_MS = 1000; // cluster-node-timeout: a dead master is failed over after it

let cliTls = []; // redis-cli's TLS flags while a TLS cluster runs (one cluster per test process)

// redis-cli -p port args...: resolves its stdout (trimmed); rejects on a non-zero exit.
export function cli(port, ...args) {
  return new Promise((resolve, reject) => {
    execFile("redis-cli", [...cliTls, "-p", String(port), ...args.map(String)], { timeout: 10000 }, (err, out) => {
      if (err) reject(new Error(`redis-cli -p ${port} ${args.join(" ")}: ${err.message}`));
      else resolve(out.trim());
    });
  });
}

async function clusterPort() {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p + 10000 <= 65535 && !(await portAccepts(p + 10000))) return p;
  }
  throw new Error("no free port pair for a cluster node");
}

async function pingable(port) {
  if (cliTls.length) return cli(port, "ping").then((r) => r === "PONG", () => false);
  return redisPing(port);
}

// However the test process exits, SIGKILL every node of `cluster` (as they are then) and every
// pid pushed onto the array this returns (the test's own gateways, brokers, workers), then run
// `also` (if given).
export function killOnExit(cluster, also = null) {
  const started = [];
  process.on("exit", () => {
    for (const pid of [...started, ...cluster.nodes.map((n) => n.pid)]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    if (also) also();
  });
  return started;
}

// Starts the cluster; resolves {nodes: [{port, pid, kill()}], url, seeds, masterOf(slotOrKey),
// keyslot(key), waitOk(ms), stop()}. With tls {cert, key, ca} every node listens with TLS only
// (clients, the cluster bus and replication; client certificates not required) and url is
// rediss-cluster://.
export async function startRedisCluster({ tls = null } = {}) {
  cliTls = tls ? ["--tls", "--cacert", tls.ca] : [];
  const tlsArgs = (port) => tls
    ? ["--port", "0", "--tls-port", String(port), "--tls-cluster", "yes", "--tls-replication", "yes",
      "--tls-cert-file", tls.cert, "--tls-key-file", tls.key, "--tls-ca-cert-file", tls.ca, "--tls-auth-clients", "no"]
    : ["--port", String(port)];
  const dir = mkdtempSync(path.join(tmpdir(), "sioc-cluster-"));
  const nodes = [];
  const stopAll = async () => {
    for (const n of nodes) await n.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 6; i++) {
      const port = await clusterPort();
      const child = spawn(
        "redis-server",
        [...tlsArgs(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
          "--cluster-enabled", "yes", "--cluster-config-file", path.join(dir, `nodes-${i}.conf`),
          "--cluster-node-timeout", String(NODE_TIMEOUT_MS), "--dir", dir,
          // replicas sync at once (the default waits 5 s): a replica that never synced cannot fail over
          "--repl-diskless-sync-delay", "0"],
        { stdio: "ignore" },
      );
      const exited = new Promise((r) => child.on("exit", r));
      const node = {
        port,
        pid: child.pid,
        alive: true,
        async kill() {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGKILL");
            await within(5000, exited, "redis-server to exit");
          }
          node.alive = false;
        },
      };
      nodes.push(node);
      const deadline = Date.now() + 5000;
      while (!(await pingable(port))) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`cluster node ${port} did not start`);
        await sleep(20);
      }
    }
    await cli(nodes[0].port, "--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas", "1", "--cluster-yes");
  } catch (err) {
    await stopAll();
    throw err;
  }
  const c = {
    nodes,
    seeds: nodes.slice(0, 2).map((n) => `127.0.0.1:${n.port}`),
    get url() {
      return `${tls ? "rediss" : "redis"}-cluster://${c.seeds.join(",")}`;
    },
    anyPort() {
      return nodes.find((n) => n.alive).port;
    },
    async keyslot(key) {
      return Number(await cli(c.anyPort(), "cluster", "keyslot", key));
    },
    // {port, replica} of the live master serving `slot` (a number) or the slot of a key.
    async masterOf(slotOrKey) {
      const slot = typeof slotOrKey === "number" ? slotOrKey : await c.keyslot(slotOrKey);
      const lines = (await cli(c.anyPort(), "cluster", "nodes")).split("\n");
      let master = null;
      for (const line of lines) {
        const f = line.split(" ");
        if (!f[2].includes("master") || f[2].includes("fail")) continue;
        for (const range of f.slice(8)) {
          const [a, b] = range.split("-").map(Number);
          if (slot >= a && slot <= (Number.isNaN(b) || b === undefined ? a : b)) master = { id: f[0], port: Number(f[1].split(":")[1].split("@")[0]) };
        }
      }
      if (!master) return null;
      const rep = lines.map((l) => l.split(" ")).find((f) => f[2].includes("slave") && !f[2].includes("fail") && f[3] === master.id);
      return { port: master.port, replica: rep ? Number(rep[1].split(":")[1].split("@")[0]) : 0 };
    },
    node(port) {
      return nodes.find((n) => n.port === port);
    },
    // every live node says cluster_state:ok and every live replica's link to its master is up
    async waitOk(ms = 20000) {
      const deadline = Date.now() + ms;
      for (;;) {
        let ok = true;
        for (const n of nodes.filter((x) => x.alive)) {
          const info = await cli(n.port, "cluster", "info").catch(() => "");
          const repl = await cli(n.port, "info", "replication").catch(() => "");
          if (!info.includes("cluster_state:ok") || (repl.includes("role:slave") && !repl.includes("master_link_status:up"))) ok = false;
        }
        if (ok) return;
        if (Date.now() > deadline) throw new Error("cluster_state:ok not reached");
        await sleep(100);
      }
    },
    stop: stopAll,
  };
  await c.waitOk();
  return c;
}
