// tls_bench.mjs: the TLS figures of issue 16 (`make bench`): the sioc gateway with --tls-cert vs
// Node socket.io 4.8 on https.createServer with the same certificate (ECDSA P-256, made here with
// the openssl CLI), one process each, the sioc gateway without TLS alongside:
//   T1 server RSS per idle WSS connection (Engine.IO over WebSocket, namespace "/" joined),
//      marginal from 200 to N connections
//   T2 server CPU per TLS connect (TCP accept, TLS 1.3 handshake, one ticket, close): full, and
//      resumed with the ticket of an earlier connection
//   T3 broadcast over wss to the N connections, published by @socket.io/redis-emitter at a fixed
//      rate: deliveries/s and server CPU per delivery (the Node client is the limit here: read the
//      CPU per delivery, not the rate)
// Writes tests/bench/results/<date>-tls.json and .md (metric | sioc TLS | sioc plain | node TLS |
// ratio node/sioc TLS, > 1 means sioc is better).
//   node tests/bench/tls_bench.mjs [--smoke] [--conns N] [--handshakes N] [--out DIR]
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import WebSocket from "ws";
import { freePort, sleep, start, stop, waitFor } from "./procs.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const B = (p) => join(ROOT, p);
const argv = process.argv.slice(2);
const flag = (n) => argv.includes(`--${n}`);
const opt = (n, d) => (argv.indexOf(`--${n}`) >= 0 ? argv[argv.indexOf(`--${n}`) + 1] : d);
const SMOKE = flag("smoke");
const CONNS = Number(opt("conns", SMOKE ? 260 : 3000));
const HANDSHAKES = Number(opt("handshakes", SMOKE ? 50 : 2000));
const OUT = opt("out", B("tests/bench/results"));
const TMP = mkdtempSync(join(tmpdir(), "sioc-tls-bench-"));
const log = (...a) => console.error("[tls-bench]", ...a);
const T = (n) => join(TMP, n);

// ---- certificate ----
const ossl = (...a) => execFileSync("openssl", a, { stdio: ["ignore", "pipe", "pipe"] });
ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", T("ca.key"),
  "-out", T("ca.pem"), "-days", "2", "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE");
ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", T("srv.key"), "-out",
  T("srv.csr"), "-subj", "/CN=bench");
writeFileSync(T("ext"), "subjectAltName=IP:127.0.0.1\n");
ossl("x509", "-req", "-in", T("srv.csr"), "-CA", T("ca.pem"), "-CAkey", T("ca.key"), "-CAcreateserial", "-days", "1",
  "-extfile", T("ext"), "-out", T("srv.crt"));
writeFileSync(T("srv.pem"), readFileSync(T("srv.crt")) + readFileSync(T("ca.pem")));
const ca = readFileSync(T("ca.pem"));

// ---- process figures ----
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
function cpuUs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK; // utime + stime
}
function rssBytes(pid) {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) * 1024;
}

let redisPort = 0;
async function startServer(kind) {
  const pf = T(`${kind}.port`);
  rmSync(pf, { force: true });
  const redis = `redis://127.0.0.1:${redisPort}`;
  const p = kind === "node"
    ? start(process.execPath, [B("tests/bench/node_server.mjs"), "--port-file", pf, "--redis", redis,
      "--tls-cert", T("srv.pem"), "--tls-key", T("srv.key")], kind)
    : start(B("build/sioc-gateway"), ["--listen", "127.0.0.1:0", "--port-file", pf, "--redis", redis,
      "--log-level", "warn", ...(kind === "sioc" ? ["--tls-cert", T("srv.pem"), "--tls-key", T("srv.key")] : [])], kind);
  await waitFor(() => existsSync(pf) && readFileSync(pf, "utf8").trim() !== "", 10000, kind);
  return { proc: p, pid: p.pid, port: Number(readFileSync(pf, "utf8").trim()), secure: kind !== "sioc-plain" };
}

// ---- clients ----
let delivered = 0;
function openSocket(srv) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${srv.secure ? "wss" : "ws"}://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`,
      { ca, perMessageDeflate: false });
    const t = setTimeout(() => reject(new Error("connect timeout")), 20000);
    ws.on("message", (d) => {
      const s = d.toString();
      if (s.startsWith("42")) delivered++;
      else if (s[0] === "0") ws.send("40");
      else if (s.startsWith("40")) {
        clearTimeout(t);
        resolve(ws);
      } else if (s === "2") ws.send("3");
    });
    ws.on("error", reject);
  });
}

async function openMany(srv, n, into) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      into.push(await openSocket(srv));
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
}

// One TLS connection; resolves with the ticket it got (TLS 1.3 sends it after the handshake).
function tlsConnect(port, session) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, session, maxVersion: "TLSv1.3" });
    let done = false;
    const finish = (ticket) => {
      if (done) return;
      done = true;
      const reused = s.isSessionReused();
      s.destroy();
      resolve({ ticket, reused });
    };
    s.on("session", (t) => finish(t));
    s.on("secureConnect", () => setTimeout(() => finish(null), 500));
    s.on("error", reject);
  });
}

async function handshakeCost(srv, n, resume) {
  const first = resume ? (await tlsConnect(srv.port)).ticket : undefined;
  let next = 0, reused = 0;
  const c0 = cpuUs(srv.pid);
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await tlsConnect(srv.port, first);
      if (r.reused) reused++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await sleep(200);
  return { cpu: (cpuUs(srv.pid) - c0) / n, reused };
}

async function run(kind, emitter) {
  const srv = await startServer(kind);
  const m = {};
  const sockets = [];
  try {
    await sleep(500);
    await openMany(srv, 200, sockets);
    await sleep(1000);
    const rss0 = rssBytes(srv.pid);
    await openMany(srv, CONNS - 200, sockets);
    await sleep(2000);
    m["T1 server RSS per idle WSS connection, marginal 200->" + CONNS + " (B)"] = (rssBytes(srv.pid) - rss0) / (CONNS - 200);
    // T3: a broadcast to every connection, rate so that about 40,000 deliveries/s are offered
    const rate = Math.max(1, Math.round((SMOKE ? 2000 : 40000) / CONNS));
    const seconds = SMOKE ? 1 : 4;
    const payload = "x".repeat(64);
    delivered = 0;
    const c0 = cpuUs(srv.pid);
    const t0 = Date.now();
    for (let i = 0; i < rate * seconds; i++) {
      emitter.emit("m", payload);
      await sleep(1000 / rate);
    }
    const want = rate * seconds * CONNS;
    let last = -1;
    const drainEnd = Date.now() + 10000;
    while (delivered < want && delivered !== last && Date.now() < drainEnd) {
      last = delivered;
      await sleep(300);
    }
    const elapsed = (Date.now() - t0) / 1000;
    m["T3 broadcast over wss, 64 B: deliveries/s (client-bound)"] = delivered / elapsed;
    m["T3 broadcast over wss, 64 B: server CPU per delivery (us)"] = (cpuUs(srv.pid) - c0) / Math.max(1, delivered);
    m["T3 broadcast over wss, 64 B: lost"] = want - delivered;
    for (const ws of sockets) ws.terminate();
    sockets.length = 0;
    await sleep(500);
    if (srv.secure) {
      const full = await handshakeCost(srv, HANDSHAKES, false);
      m["T2 server CPU per full TLS 1.3 connect (us)"] = full.cpu;
      const resumed = await handshakeCost(srv, HANDSHAKES, true);
      m["T2 server CPU per resumed TLS 1.3 connect (us)"] = resumed.cpu;
      m["T2 resumed connects that reused the session (%)"] = (100 * resumed.reused) / HANDSHAKES;
    }
  } finally {
    for (const ws of sockets) ws.terminate();
    await stop(srv.proc);
  }
  return m;
}

async function main() {
  redisPort = await freePort();
  const redis = start("redis-server", ["--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], "redis");
  const ping = () => {
    try {
      return execFileSync("redis-cli", ["-p", String(redisPort), "ping"], { stdio: ["ignore", "pipe", "ignore"] })
        .toString().trim() === "PONG";
    } catch {
      return false;
    }
  };
  await waitFor(ping, 5000, "redis");
  const rc = createClient({ url: `redis://127.0.0.1:${redisPort}` });
  await rc.connect();
  const emitter = new Emitter(rc);
  const results = { date: new Date().toISOString(), smoke: SMOKE, conns: CONNS, handshakes: HANDSHAKES, runs: {} };
  try {
    for (const kind of ["sioc", "sioc-plain", "node"]) {
      const t = Date.now();
      results.runs[kind] = await run(kind, emitter);
      log(`${kind}: ${((Date.now() - t) / 1000).toFixed(1)}s`, JSON.stringify(results.runs[kind]));
    }
  } finally {
    await rc.quit().catch(() => {});
    await stop(redis);
    rmSync(TMP, { recursive: true, force: true });
  }
  const metrics = [...new Set(Object.values(results.runs).flatMap((m) => Object.keys(m)))];
  const fmt = (x) => (x === undefined ? "-" : Math.abs(x) >= 100 ? Math.round(x).toString() : Number(x.toFixed(2)).toString());
  const rows = metrics.map((k) => {
    const s = results.runs.sioc?.[k], p = results.runs["sioc-plain"]?.[k], n = results.runs.node?.[k];
    let ratio = "";
    if (s > 0 && n > 0 && !/lost|%|client-bound/.test(k)) ratio = (/\/s$/.test(k) ? s / n : n / s).toFixed(2) + "x";
    return `| ${k} | ${fmt(s)} | ${fmt(p)} | ${fmt(n)} | ${ratio} |`;
  });
  const md = ["| metric | sioc TLS | sioc plain | node TLS | ratio |", "|---|---|---|---|---|", ...rows].join("\n") + "\n";
  if (!SMOKE || flag("out")) {
    mkdirSync(OUT, { recursive: true });
    const base = join(OUT, `${results.date.slice(0, 19).replace(/[:T]/g, "-")}-tls`);
    writeFileSync(`${base}.json`, JSON.stringify(results, null, 1));
    writeFileSync(`${base}.md`, md);
    log(`wrote ${base}.json and .md`);
  }
  process.stdout.write(md);
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
