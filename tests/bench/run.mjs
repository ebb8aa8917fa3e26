// run.mjs: the benchmark driver of issue 6 (`make bench`, `make bench-smoke`).
// Runs scenarios S1-S6 against the sioc gateway and Node socket.io 4.8 on this machine, each
// repetition with fresh server processes, the two servers interleaved (order alternating per
// repetition), then reports medians as JSON (tests/bench/results/<date>.json) and a Markdown
// table `metric | sioc | node | ratio` (same name, .md). Ratio = how many times better sioc is
// (node/sioc for costs and latencies, sioc/node for rates): > 1 means sioc wins.
//   node tests/bench/run.mjs [--smoke] [--reps N] [--only S1,S4] [--s3-seconds N] [--out DIR]
//                            [--servers sioc] (one side only, e.g. to compare two sioc builds)
//                            [--tls] (issue 16: both servers on https/wss with one ECDSA P-256
//                            certificate made here, the load generator verifying it; the metrics
//                            say "over TLS", S2 adds a resumed-session connect; <date>-tls-lg.*)
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir, cpus, totalmem, release } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, sleep, start, stop, waitFor } from "./procs.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const B = (p) => join(ROOT, p);
const argv = process.argv.slice(2);
const flag = (n) => argv.includes(`--${n}`);
const opt = (n, d) => (argv.indexOf(`--${n}`) >= 0 ? argv[argv.indexOf(`--${n}`) + 1] : d);
const SMOKE = flag("smoke");
const REPS = Number(opt("reps", SMOKE ? 1 : 3));
const ONLY = opt("only", "S1,S2,S4,S3,S5,S6").split(",");
const S3_SECONDS = Number(opt("s3-seconds", SMOKE ? 1 : 20));
const OUT = opt("out", B("tests/bench/results"));
const SERVERS = opt("servers", "sioc,node").split(",");
const TMP = mkdtempSync(join(tmpdir(), "sioc-bench-"));
const log = (...a) => console.error("[bench]", ...a);
const TLS = flag("tls");

// --tls: a CA and a certificate for 127.0.0.1 (as tls_bench.mjs makes them)
function makeCert() {
  const T = (n) => join(TMP, n);
  const ossl = (...a) => execFileSync("openssl", a, { stdio: ["ignore", "pipe", "pipe"] });
  ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
    T("ca.key"), "-out", T("ca.pem"), "-days", "2", "-subj", "/CN=bench CA", "-addext",
    "basicConstraints=critical,CA:TRUE");
  ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", T("srv.key"),
    "-out", T("srv.csr"), "-subj", "/CN=bench");
  writeFileSync(T("ext"), "subjectAltName=IP:127.0.0.1\n");
  ossl("x509", "-req", "-in", T("srv.csr"), "-CA", T("ca.pem"), "-CAkey", T("ca.key"), "-CAcreateserial",
    "-days", "1", "-extfile", T("ext"), "-out", T("srv.crt"));
  writeFileSync(T("srv.pem"), readFileSync(T("srv.crt")) + readFileSync(T("ca.pem")));
}
if (TLS) makeCert();
const tlsServerArgs = TLS ? ["--tls-cert", join(TMP, "srv.pem"), "--tls-key", join(TMP, "srv.key")] : [];
// metric names over TLS: "S1 over TLS: gateway RSS per idle WSS connection ..."
const tlsName = (k) => (TLS ? k.replace(/^(S\d+) /, "$1 over TLS: ").replace(/\bWS\b/g, "WSS") : k);

let redis = null;
let redisPort = 0;
function redisCli(...a) {
  return spawnSync("redis-cli", ["-p", String(redisPort), ...a], { encoding: "utf8" });
}

// ---- server set-ups: each returns { pids: [...], aux: [...], urls: [...], procs: [...] } ----
async function startSioc(nodes, withWorker) {
  redisCli("flushall");
  const procs = [];
  const aux = [redis.pid];
  if (withWorker) {
    const w = start(B("build/bench/worker"), ["--port", redisPort], "worker");
    procs.push(w);
    await waitFor(() => w.out.includes("worker ready"), 5000, "worker");
    aux.push(w.pid);
  }
  const urls = [];
  const pids = [];
  for (let i = 0; i < nodes; i++) {
    const pf = join(TMP, `gw${i}.port`);
    rmSync(pf, { force: true });
    const g = start(B("build/sioc-gateway"), ["--listen", "127.0.0.1:0", "--port-file", pf,
      "--redis", `redis://127.0.0.1:${redisPort}`, "--log-level", "warn", "--node-id", `bench${i}`,
      ...tlsServerArgs],
    `gateway${i}`);
    procs.push(g);
    await waitFor(() => existsSync(pf) && readFileSync(pf, "utf8").trim() !== "", 5000, "gateway");
    urls.push(`127.0.0.1:${readFileSync(pf, "utf8").trim()}`);
    pids.push(g.pid);
  }
  return { pids, aux, urls, procs };
}

async function startNode(nodes, withRedis) {
  redisCli("flushall");
  const procs = [];
  const urls = [];
  const pids = [];
  for (let i = 0; i < nodes; i++) {
    const pf = join(TMP, `node${i}.port`);
    rmSync(pf, { force: true });
    const a = [B("tests/bench/node_server.mjs"), "--port-file", pf, ...tlsServerArgs];
    if (withRedis) a.push("--redis", `redis://127.0.0.1:${redisPort}`);
    const n = start(process.execPath, a, `node${i}`);
    procs.push(n);
    await waitFor(() => existsSync(pf) && readFileSync(pf, "utf8").trim() !== "", 10000, "node");
    urls.push(`127.0.0.1:${readFileSync(pf, "utf8").trim()}`);
    pids.push(n.pid);
  }
  return { pids, aux: withRedis ? [redis.pid] : [], urls, procs };
}

async function loadgen(setup, args, timeoutS) {
  const a = ["--url", setup.urls.join(","), "--server-pid", setup.pids.join(",")];
  if (setup.aux.length) a.push("--aux-pid", setup.aux.join(","));
  if (TLS) a.push("--tls-ca", join(TMP, "ca.pem"));
  const lg = start(B("build/bench/loadgen"), [...a, ...args.map(String)], "loadgen");
  const t = setTimeout(() => lg.kill("SIGKILL"), timeoutS * 1000);
  const code = await lg.exited;
  clearTimeout(t);
  const line = lg.out.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`loadgen gave no result (exit ${code}): ${lg.out.slice(-500)}`);
  return JSON.parse(line);
}

// ---- scenarios: each returns a flat object of named metrics for one run ----
const sz = (full, smoke) => (SMOKE ? smoke : full);

function fanoutSummary(r) {
  const steps = r.steps || [];
  if (!steps.length) return {};
  // Saturation: the best delivery rate among steps that delivered everything in time; the
  // step that broke (loss or backlog) ends the sweep and only counts if none was clean.
  const clean = steps.filter((s) => s.lost === 0 && s.disconnects === 0 &&
    s.elapsed_s <= 1.5 * r._duration);
  const pool = clean.length ? clean : steps;
  const best = pool.reduce((a, s) => (s.deliveries_per_s > a.deliveries_per_s ? s : a));
  const first = steps[0];
  const lostBefore = steps.slice(0, -1).reduce((n, s) => n + s.lost, 0);
  return {
    deliveries_per_s: best.deliveries_per_s,
    cpu_us_per_delivery: best.cpu_us_per_delivery,
    p50_us_low_rate: first.p50_us,
    p99_us_low_rate: first.p99_us,
    p99_us_at_max: best.p99_us,
    lost_before_saturation: lostBefore,
  };
}

const SCENARIOS = [];
const scen = (id, name, servers, run) => SCENARIOS.push({ id, name, servers, run });

scen("S1", "idle memory + WebSocket connect", { sioc: () => startSioc(1, false),
  node: () => startNode(1, false) }, async (s) => {
  const n = sz(10000, 50);
  const r = await loadgen(s, ["--scenario", "connect", "--transport", "websocket", "--conns", n,
    "--concurrency", 200, "--hold", sz(3, 0.3), "--timeout", 120], 200);
  if (r.failed) throw new Error(`${r.failed} connects failed: ${r.error}`);
  return { "S1 gateway RSS per idle WS connection, marginal 1,000->10,000 (B)":
      r.rss_marginal_per_conn ?? r.rss_per_conn,
    "S1 gateway RSS per idle WS connection, from process start (B)": r.rss_per_conn,
    "S1 RSS + kernel slab per idle WS connection (B)": r.total_per_conn,
    "S2 server CPU per WS connect (us)": r.cpu_us_per_connect,
    "S2 WS connects/s": r.connects_per_s };
});
scen("S2", "polling then upgrade connect", { sioc: () => startSioc(1, false),
  node: () => startNode(1, false) }, async (s) => {
  const r = await loadgen(s, ["--scenario", "connect", "--transport", "upgrade", "--conns",
    sz(10000, 50), "--concurrency", 200, "--hold", 0, "--timeout", 180], 240);
  if (r.failed) throw new Error(`${r.failed} connects failed: ${r.error}`);
  return { "S2 server CPU per polling+upgrade connect (us)": r.cpu_us_per_connect,
    "S2 polling+upgrade connects/s": r.connects_per_s };
});
if (TLS) {
  scen("S2", "WSS connect resuming a TLS session", { sioc: () => startSioc(1, false),
    node: () => startNode(1, false) }, async (s) => {
    const n = sz(5000, 30);
    const r = await loadgen(s, ["--scenario", "connect", "--transport", "websocket", "--conns", n,
      "--concurrency", 200, "--hold", 0, "--timeout", 120, "--tls-resume"], 200);
    if (r.failed) throw new Error(`${r.failed} connects failed: ${r.error}`);
    return { "S2 server CPU per WS connect, resumed TLS session (us)": r.cpu_us_per_connect,
      "S2 WS connects that resumed the TLS session (%)": (100 * r.tls_resumed) / r.connected };
  });
}
// --tls --smoke (make test): one size is enough to keep the TLS path of the harness alive
const S4_SIZES = TLS && SMOKE ? [[1000, 64]] : [[1000, 64], [5000, 64], [1000, 1024], [5000, 1024]];
for (const [recv, payload] of S4_SIZES) {
  const label = `S4 ${recv} rcv ${payload} B`;
  scen("S4", label, { sioc: () => startSioc(1, true), node: () => startNode(1, false) },
    async (s, server) => {
      const duration = sz(1.5, 0.5);
      const start0 = recv === 1000 ? 25 : 8;
      const r = await loadgen(s, ["--scenario", "fanout", "--conns", sz(recv, 20), "--room", "r",
        "--payload", payload, "--rate", sz(start0, 10), "--rate-max", sz(start0 * 512, 10),
        "--duration", duration, "--drain", sz(3, 1), "--timeout", 120,
        "--source", server === "sioc" ? `redis:127.0.0.1:${redisPort}` : "client"], 400);
      r._duration = duration;
      if (r.failed) throw new Error(`${r.failed} connects failed: ${r.error}`);
      const f = fanoutSummary(r);
      return { [`${label}: deliveries/s at saturation`]: f.deliveries_per_s,
        [`${label}: server CPU per delivery at saturation (us)`]: f.cpu_us_per_delivery,
        [`${label}: latency p50 at lowest rate (us)`]: f.p50_us_low_rate,
        [`${label}: latency p99 at lowest rate (us)`]: f.p99_us_low_rate,
        [`${label}: loss below saturation`]: f.lost_before_saturation };
    });
}
for (const rate of [2000, 10000]) {
  const label = `S3 ${rate}/s`;
  scen("S3", `echo ${rate}/s`, { sioc: () => startSioc(1, true), node: () => startNode(1, false) },
    async (s) => {
      const r = await loadgen(s, ["--scenario", "echo", "--conns", sz(100, 10), "--rate",
        sz(rate, 200), "--duration", S3_SECONDS, "--warmup", sz(2, 0.3), "--drain", 3,
        "--timeout", 60], S3_SECONDS + 90);
      if (r.failed) throw new Error(`${r.failed} connects failed: ${r.error}`);
      return { [`${label}: RTT p50 (us)`]: r.rtt.p50_us, [`${label}: RTT p99 (us)`]: r.rtt.p99_us,
        [`${label}: RTT p99.9 (us)`]: r.rtt.p999_us,
        [`${label}: server CPU per echo (us)`]: r.cpu_us_per_echo,
        [`${label}: server + Redis + worker CPU per echo (us)`]: r.cpu_us_per_echo +
          r.aux_cpu_us_per_echo,
        [`${label}: lost`]: r.lost };
    });
}
for (const rate of [100, 1000]) {
  const label = `S5 2 nodes x 2500, ${rate}/s`;
  scen("S5", label, { sioc: () => startSioc(2, false), node: () => startNode(2, true) },
    async (s) => {
      const duration = sz(3, 0.5);
      const r = await loadgen(s, ["--scenario", "fanout", "--conns", sz(5000, 20), "--rate",
        sz(rate, 20), "--duration", duration, "--drain", sz(5, 1), "--timeout", 120,
        "--source", `redis:127.0.0.1:${redisPort}`], 300);
      if (r.failed) throw new Error(`${r.failed} connects failed: ${r.error}`);
      const st = r.steps[0];
      return { [`${label}: publish->deliver p50 (us)`]: st.p50_us,
        [`${label}: publish->deliver p99 (us)`]: st.p99_us,
        [`${label}: deliveries/s`]: st.deliveries_per_s,
        [`${label}: server CPU per delivery (us)`]: st.cpu_us_per_delivery,
        [`${label}: lost after ${sz(5, 1)} s drain`]: st.lost };
    });
}
for (const n of [500, 2000]) {
  const label = `S6 ${n} polling rcv`;
  scen("S6", label, { sioc: () => startSioc(1, false), node: () => startNode(1, false) },
    async (s, server) => {
      const duration = sz(1.5, 0.5);
      const r = await loadgen(s, ["--scenario", "fanout", "--transport", "polling", "--conns",
        sz(n, 20), "--rate", sz(10, 10), "--rate-max", sz(40960, 10), "--duration", duration,
        "--drain", sz(3, 1), "--timeout", 120,
        "--source", server === "sioc" ? `redis:127.0.0.1:${redisPort}` : "client"], 400);
      r._duration = duration;
      if (r.failed) throw new Error(`${r.failed} connects failed: ${r.error}`);
      const f = fanoutSummary(r);
      return { [`${label}: deliveries/s at saturation`]: f.deliveries_per_s,
        [`${label}: server CPU per delivery at saturation (us)`]: f.cpu_us_per_delivery,
        [`${label}: loss below saturation`]: f.lost_before_saturation };
    });
}

// ---- main ----
const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const higherBetter = (m) => /\/s\b|connects\/s|deliveries\/s/.test(m) && !/\(us\)|\(B\)/.test(m);

function versions() {
  const v = (cmd, a) => (spawnSync(cmd, a, { encoding: "utf8" }).stdout || "").trim();
  const pkg = (p) => JSON.parse(readFileSync(B(`node_modules/${p}/package.json`), "utf8")).version;
  return { node: process.version, "socket.io": pkg("socket.io"),
    "@socket.io/redis-adapter": pkg("@socket.io/redis-adapter"),
    redis_server: v("redis-server", ["--version"]).split(" ")[2] || "",
    sioc_commit: v("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]),
    cpu: cpus()[0]?.model, cores: cpus().length, mem_gb: Math.round(totalmem() / 2 ** 30),
    kernel: release() };
}

async function main() {
  redisPort = await freePort();
  redis = start("redis-server", ["--port", redisPort, "--bind", "127.0.0.1", "--save", "",
    "--appendonly", "no"], "redis");
  await waitFor(() => redisCli("ping").stdout?.trim() === "PONG", 5000, "redis");
  const results = { date: new Date().toISOString(), smoke: SMOKE, reps: REPS, versions: versions(),
    runs: {}, medians: {}, errors: [] };
  const date = results.date.slice(0, 19).replace(/[:T]/g, "-");
  const jsonPath = join(OUT, `${date}${TLS ? "-tls-lg" : ""}${SMOKE ? "-smoke" : ""}.json`);
  const mdPath = jsonPath.replace(/\.json$/, ".md");
  if (!SMOKE || flag("out")) mkdirSync(OUT, { recursive: true });
  const save = () => {
    const rows = [];
    for (const [metric, by] of Object.entries(results.medians)) {
      const s = by.sioc, n = by.node;
      let ratio = "";
      if (typeof s === "number" && typeof n === "number" && s > 0 && n > 0 && !/lost|loss|%/.test(metric))
        ratio = (higherBetter(metric) ? s / n : n / s).toFixed(2) + "x";
      const fmt = (x) => (x === null || x === undefined ? "-" :
        Math.abs(x) >= 100 ? Math.round(x).toString() : Number(x.toFixed(2)).toString());
      rows.push(`| ${metric} | ${fmt(s)} | ${fmt(n)} | ${ratio} |`);
    }
    const md = ["| metric | sioc | node | ratio |", "|---|---|---|---|", ...rows].join("\n") + "\n";
    if (!SMOKE || flag("out")) {
      writeFileSync(jsonPath, JSON.stringify(results, null, 1));
      writeFileSync(mdPath, md);
    }
    return md;
  };
  let failures = 0;
  for (const sc of SCENARIOS) {
    if (!ONLY.includes(sc.id)) continue;
    for (let rep = 0; rep < REPS; rep++) {
      const order = rep % 2 ? ["node", "sioc"] : ["sioc", "node"];
      for (const server of order.filter((s) => SERVERS.includes(s))) {
        let setup = null;
        const key = `${sc.name} / ${server}`;
        try {
          setup = await sc.servers[server]();
          await sleep(SMOKE ? 100 : 500);
          const t = Date.now();
          const m = await sc.run(setup, server);
          log(`${key} rep ${rep + 1}: ${((Date.now() - t) / 1000).toFixed(1)}s`, JSON.stringify(m));
          (results.runs[key] ||= []).push(m);
          for (const [k, v] of Object.entries(m)) {
            ((results.medians[tlsName(k)] ||= {})[`_${server}`] ||= []).push(v);
          }
        } catch (e) {
          failures++;
          results.errors.push(`${key} rep ${rep + 1}: ${e.message}`);
          log(`${key} rep ${rep + 1} FAILED: ${e.message}`);
          for (const p of setup?.procs || []) log(`  ${p.name}: ${p.out.slice(-300)}`);
        } finally {
          for (const p of setup?.procs || []) await stop(p);
          await sleep(SMOKE ? 100 : 1000); // let closed sockets leave the slab
        }
      }
    }
    for (const by of Object.values(results.medians)) {
      for (const server of ["sioc", "node"]) by[server] = median(by[`_${server}`] || []);
    }
    save();
  }
  for (const by of Object.values(results.medians)) {
    for (const server of ["sioc", "node"]) delete by[`_${server}`];
  }
  const md = save();
  await stop(redis);
  rmSync(TMP, { recursive: true, force: true });
  process.stdout.write(md);
  if (!SMOKE || flag("out")) log(`wrote ${jsonPath} and ${mdPath}`);
  const produced = Object.values(results.medians).filter((b) => b.sioc !== null && b.node !== null)
    .length;
  log(`${produced} metrics with numbers for both servers, ${failures} failed runs`);
  process.exitCode = failures ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
