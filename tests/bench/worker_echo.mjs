// worker_echo.mjs: the worker benchmark of issue 12 (part of `make bench`). One Flask-SocketIO
// program (tests/bench/flask_echo.py: event "ack" acked with its arguments) runs
//   - on Flask-SocketIO 5.3 + eventlet, serving Socket.IO itself (the seeds' system), and
//   - as sioc workers (sioc.flask, the import changed) behind one gateway: 1, 2 and 4 processes.
// tests/bench/loadgen's echo (100 WebSocket clients, emit with ack at a fixed total rate) measures
// RTT and loss. Reported: the saturation throughput (highest rate of a doubling sweep whose acks
// all came back within the step, p99 < 1 s) and p50/p99 at 1,000 events/s.
//   node tests/bench/worker_echo.mjs [--smoke] [--workers 1,2,4] [--seconds S] [--out DIR]
// Writes tests/bench/results/<date>-workers.json and .md unless --smoke.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, sleep, start, stop, waitFor } from "./procs.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const B = (p) => join(ROOT, p);
const argv = process.argv.slice(2);
const flag = (n) => argv.includes(`--${n}`);
const opt = (n, d) => (argv.indexOf(`--${n}`) >= 0 ? argv[argv.indexOf(`--${n}`) + 1] : d);
const SMOKE = flag("smoke");
const WORKERS = opt("workers", SMOKE ? "1" : "1,2,4").split(",").map(Number);
const SECONDS = Number(opt("seconds", SMOKE ? 1 : 5));
const CLIENTS = SMOKE ? 10 : 100;
const RATES = SMOKE ? [100] : [250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000];
const OUT = opt("out", B("tests/bench/results"));
const SHARDS = 4;
const PY = "/usr/bin/python3";
const TMP = mkdtempSync(join(tmpdir(), "sioc-wbench-"));
const log = (...a) => console.error("[worker-bench]", ...a);

// ---- the two systems ----
async function startSioc(redisUrl, redisPid, workers) {
  spawnSync("redis-cli", ["-u", redisUrl, "flushall"]);
  const procs = [];
  const pf = join(TMP, "gw.port");
  rmSync(pf, { force: true });
  const gw = start(B("build/sioc-gateway"), ["--listen", "127.0.0.1:0", "--port-file", pf,
    "--redis", redisUrl, "--upstream-shards", SHARDS, "--log-level", "warn", "--node-id", "wbench"],
  "gateway");
  procs.push(gw);
  await waitFor(() => existsSync(pf) && readFileSync(pf, "utf8").endsWith("\n"), 5000, "gateway");
  const pids = [];
  for (let i = 0; i < workers; i++) {
    const w = start(PY, [B("tests/bench/flask_echo.py"), "sioc", redisUrl, SHARDS], `worker${i}`);
    procs.push(w);
    pids.push(w.pid);
    await waitFor(() => w.out.includes("worker ready"), 10000, "worker");
  }
  // every stream leased, each worker holding its share, before the load starts
  const cli = (...a) => spawnSync("redis-cli", ["-u", redisUrl, ...a], { encoding: "utf8" }).stdout;
  await waitFor(() => {
    const keys = cli("--scan", "--pattern", "sioc:lease:*").trim().split("\n").filter(Boolean);
    const owners = new Set(keys.map((k) => cli("get", k).trim()));
    return keys.length === SHARDS && owners.size === Math.min(workers, SHARDS);
  }, 15000, "stream leases");
  return { url: `127.0.0.1:${readFileSync(pf, "utf8").trim()}`, serverPids: [gw.pid],
    auxPids: [...pids, redisPid], procs };
}

async function startFlask() {
  const port = await freePort();
  const f = start(PY, [B("tests/bench/flask_echo.py"), "flask", port], "flask-socketio");
  await waitFor(async () => {
    const r = spawnSync("curl", ["-s", "-m", "1", `http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`],
      { encoding: "utf8" });
    return r.stdout.startsWith("0{");
  }, 15000, "Flask-SocketIO");
  return { url: `127.0.0.1:${port}`, serverPids: [f.pid], auxPids: [], procs: [f] };
}

async function echo(setup, rate) {
  const args = ["--scenario", "echo", "--url", setup.url, "--server-pid", setup.serverPids.join(","),
    "--conns", CLIENTS, "--rate", rate, "--duration", SECONDS, "--warmup", SMOKE ? 0.3 : 1,
    "--drain", 2, "--timeout", 60];
  if (setup.auxPids.length) args.push("--aux-pid", setup.auxPids.join(","));
  const lg = start(B("build/bench/loadgen"), args, "loadgen");
  const t = setTimeout(() => lg.kill("SIGKILL"), (SECONDS + 80) * 1000);
  await lg.exited;
  clearTimeout(t);
  const line = lg.out.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`loadgen gave no result: ${lg.out.slice(-400)}`);
  const r = JSON.parse(line);
  if (r.failed) throw new Error(`${r.failed} connects failed: ${r.error}`);
  return r;
}

// One system: a doubling sweep; the saturation rate is the last step with no loss and p99 < 1 s.
async function measure(name, starter) {
  const rows = {};
  let best = null;
  for (const rate of RATES) {
    const setup = await starter();
    let r;
    try {
      r = await echo(setup, rate);
    } finally {
      for (const p of setup.procs) await stop(p);
    }
    const ok = r.lost === 0 && r.rtt.p99_us < 1e6;
    log(`${name} ${rate}/s: acked ${r.acked}/${r.sent}, p50 ${r.rtt.p50_us} us, p99 ${r.rtt.p99_us} us${ok ? "" : " (saturated)"}`);
    if (rate === 1000 || (SMOKE && rate === RATES[0]))
      Object.assign(rows, { p50: r.rtt.p50_us, p99: r.rtt.p99_us,
        cpu: r.cpu_us_per_echo + (r.aux_cpu_us_per_echo || 0) });
    if (!ok) break;
    best = rate;
  }
  return { saturation: best, ...rows };
}

async function main() {
  const redisPort = await freePort();
  const redis = start("redis-server", ["--port", redisPort, "--bind", "127.0.0.1", "--save", "",
    "--appendonly", "no"], "redis");
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  await waitFor(() => spawnSync("redis-cli", ["-p", redisPort, "ping"], { encoding: "utf8" }).stdout.trim() === "PONG", 5000, "redis");
  const results = { date: new Date().toISOString(), smoke: SMOKE, clients: CLIENTS, seconds: SECONDS,
    cores: cpus().length, systems: {} };
  let failures = 0;
  const systems = [["Flask-SocketIO 5.3 + eventlet (in-process)", startFlask],
    ...WORKERS.map((n) => [`sioc, ${n} worker process${n > 1 ? "es" : ""}`, () => startSioc(redisUrl, redis.pid, n)])];
  for (const [name, starter] of systems) {
    try {
      results.systems[name] = await measure(name, starter);
    } catch (e) {
      failures++;
      log(`${name} FAILED: ${e.message}`);
      results.systems[name] = { error: e.message };
    }
  }
  await stop(redis);
  rmSync(TMP, { recursive: true, force: true });
  const fmt = (x) => (x === null || x === undefined ? "-" : Math.round(x).toString());
  const md = ["| system | echoes/s at saturation | p50 at 1,000/s (us) | p99 at 1,000/s (us) | CPU per echo at 1,000/s: server, workers and Redis (us) |",
    "|---|---|---|---|---|",
    ...Object.entries(results.systems).map(([n, s]) =>
      `| ${n} | ${s.error ? "failed" : fmt(s.saturation)} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${fmt(s.cpu)} |`)].join("\n") + "\n";
  if (!SMOKE) {
    mkdirSync(OUT, { recursive: true });
    const base = join(OUT, `${results.date.slice(0, 19).replace(/[:T]/g, "-")}-workers`);
    writeFileSync(`${base}.json`, JSON.stringify(results, null, 1));
    writeFileSync(`${base}.md`, md);
    log(`wrote ${base}.json and .md`);
  }
  process.stdout.write(md);
  process.exitCode = failures ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
