// forward_latency.mjs: issue 18, the extra latency of a polling request forwarded to the
// session's owner over Redis (gateway/eio_forward.h) against the same request sent to the
// owner itself. Two gateways (build/sioc-gateway, upstream off) on a private redis-server; for
// each of N sessions (handshake and Socket.IO CONNECT on gateway A, so A owns them):
//   - POST "3" (a pong, answered "ok") to A (local) and to B (forwarded), alternating order;
//   - GET with a packet waiting (the Socket.IO CONNECT answer; a fresh session each) to A and
//     to B.
// Keep-alive connections (one per gateway), one request at a time. Prints p50/p90/p99/max in
// microseconds per kind, as JSON on stdout and a Markdown table on stderr.
//   node tests/bench/forward_latency.mjs [--n 1000]
import http from "node:http";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const argv = process.argv.slice(2);
const N = Number(argv.indexOf("--n") >= 0 ? argv[argv.indexOf("--n") + 1] : 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TMP = mkdtempSync(join(tmpdir(), "sioc-fwd-bench-"));
const procs = [];

async function freePort() {
  const net = await import("node:net");
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

async function gateway(redisPort, node) {
  const portFile = join(TMP, `${node}.port`);
  const p = spawn(join(ROOT, "build/sioc-gateway"), ["--listen", "127.0.0.1:0", "--port-file", portFile,
    "--redis", `redis://127.0.0.1:${redisPort}`, "--node-id", node, "--upstream", "off", "--log-level", "warn",
    "--ping-interval", "60000"], { stdio: "inherit" });
  procs.push(p);
  for (let i = 0; i < 200 && !(existsSync(portFile) && readFileSync(portFile, "utf8").trim()); i++) await sleep(25);
  return Number(readFileSync(portFile, "utf8"));
}

function request(agent, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: "127.0.0.1", port, method, path, agent,
      headers: body ? { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": Buffer.byteLength(body) } : {} }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode, body: data, us: Number(process.hrtime.bigint() - t0) / 1000 }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f) => Math.round(s[Math.min(s.length - 1, Math.floor(f * s.length))]);
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: Math.round(s[s.length - 1]) };
}

try {
  const redisPort = await freePort();
  const redis = spawn("redis-server", ["--port", String(redisPort), "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  procs.push(redis);
  await sleep(300);
  const portA = await gateway(redisPort, "benchA");
  const portB = await gateway(redisPort, "benchB");
  await sleep(1000); // subscriptions
  const agentA = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const agentB = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const t = { postLocal: [], postForwarded: [], getLocal: [], getForwarded: [] };
  for (let i = 0; i < N + 20; i++) {
    const hs = await request(agentA, portA, "GET", "/socket.io/?EIO=4&transport=polling");
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const q = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const order = i % 2 ? [[agentA, portA, "Local"], [agentB, portB, "Forwarded"]] : [[agentB, portB, "Forwarded"], [agentA, portA, "Local"]];
    for (const [agent, port, kind] of order) {
      const r = await request(agent, port, "POST", q, "3");
      if (r.status !== 200) throw new Error(`POST ${kind}: ${r.status} ${r.body}`);
      if (i >= 20) t[`post${kind}`].push(r.us); // the first 20: warm-up
    }
    await request(agentA, portA, "POST", q, "1");
    for (const [agent, port, kind] of order) {
      // a session of A with a packet to collect (the CONNECT answer)
      const hs2 = await request(agentA, portA, "GET", "/socket.io/?EIO=4&transport=polling");
      const q2 = `/socket.io/?EIO=4&transport=polling&sid=${JSON.parse(hs2.body.slice(1)).sid}`;
      const c = await request(agentA, portA, "POST", q2, "40");
      if (c.status !== 200) throw new Error(`CONNECT: ${c.status}`);
      const r = await request(agent, port, "GET", q2);
      if (r.status !== 200 || !r.body.startsWith("40")) throw new Error(`GET ${kind}: ${r.status} ${r.body}`);
      if (i >= 20) t[`get${kind}`].push(r.us);
      await request(agentA, portA, "POST", q2, "1");
    }
  }
  const out = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, summary(v)]));
  console.log(JSON.stringify(out));
  console.error("| request | p50 µs | p90 µs | p99 µs | max µs |\n|---|---|---|---|---|");
  for (const [k, v] of Object.entries(out)) console.error(`| ${k} | ${v.p50} | ${v.p90} | ${v.p99} | ${v.max} |`);
} finally {
  for (const p of procs.reverse()) p.kill("SIGTERM");
  await sleep(300);
  rmSync(TMP, { recursive: true, force: true });
}
