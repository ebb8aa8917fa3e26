// scenarios.mjs: the scenarios of the fault suite (issue 10), each a function of a profile (sizes
// and bounds: PROFILES.full for `make chaos`, PROFILES.bounded for test_faults.mjs). Each returns
// a row: what was measured (figures() of lib.mjs plus its own numbers), notes in words, and
// checks (target, ok, detail) that test_faults.mjs asserts and the table reports.
import { io } from "socket.io-client";
import {
  Load,
  cpuTicks,
  figures,
  floodNeverRead,
  killBroker,
  killGateway,
  openConnections,
  pings,
  recorderView,
  restartBroker,
  brokerLog,
  rssBaseline,
  rssKb,
  sleep,
  startCluster,
  statusOf,
  stopCluster,
  stuckReader,
  until,
  wsUpgrade,
} from "./lib.mjs";
import { get, rawWebSocket, within } from "../integration/lib/harness.mjs";

export const PROFILES = {
  // make chaos: at size (about 6 minutes on 2 shared cores)
  full: {
    name: "full",
    clients: 200,
    rate: 5,
    warmup: 3000,
    after: 4000,
    drain: 20000,
    nodeTimeout: 6000, // the default
    checkInterval: 200,
    redisDown: 3000,
    stopShort: 5000,
    brokerDown: 2000,
    churn: 20,
    slow: { size: 65536, everyMs: 10, maxMs: 15000 },
    pipeline: 200000,
    floodMs: 3000,
    pings: 1000000,
    namespaces: 20000,
    fd: { nofile: 1024, conns: 1500 },
    overflow: { clients: 200, rate: 5, payload: 4096, down: 10000, ping: 2000, recoveryMs: 15000 },
    bounds: { recoveryMs: 10000, reconnectMs: 5000, memoryMb: 24 },
  },
  // tests/integration/test_faults.mjs (make test): small, whole file well under 90 s
  bounded: {
    name: "bounded",
    clients: 16,
    rate: 10,
    warmup: 600,
    after: 700,
    drain: 5000,
    nodeTimeout: 2000,
    checkInterval: 100,
    redisDown: 700,
    stopShort: 2000,
    brokerDown: 800,
    churn: 4,
    slow: { size: 65536, everyMs: 5, maxMs: 6000 },
    pipeline: 20000,
    floodMs: 1000,
    pings: 200000,
    namespaces: 2000,
    fd: { nofile: 256, conns: 320 },
    // all on gwA (one gateway's 8 MiB link queue + 1 MiB overflow is what has to fill), large
    // events so that the Python worker has few to handle afterwards
    overflow: { clients: 16, rate: 12, payload: 32768, down: 4000, ping: 1000, oneGateway: true, drain: 15000, recoveryMs: 10000 },
    bounds: { recoveryMs: 5000, reconnectMs: 3000, memoryMb: 24 },
  },
};

const mb = (kb) => +(kb / 1024).toFixed(1);
const sec = (ms) => (ms === null || ms === undefined ? "–" : ms === Infinity ? "never" : `${(ms / 1000).toFixed(2)} s`);

// Runs body(c, load) inside a loaded cluster; body returns {faultEnd, window, notes, checks,
// extra, lostFirstExpected}. Adds the common checks and figures.
async function loaded(P, { cluster = {}, load: loadOpts = {} } = {}, body) {
  const c = await startCluster({ nodeTimeout: P.nodeTimeout, checkInterval: P.checkInterval, ...cluster });
  const load = new Load(c, { clients: P.clients, rate: P.rate, ...loadOpts });
  let r;
  let fig;
  let exits;
  try {
    await load.start();
    await sleep(P.warmup);
    r = await body(c, load);
    await sleep(P.after);
    await load.stop(P.drain);
    fig = figures(c, load, { faultEnd: r.faultEnd ?? null, window: r.window ?? null });
    if (r.post) await r.post(fig, c, load);
  } finally {
    load.close();
    exits = await stopCluster(c);
  }
  const checks = [
    { target: "0 events lost", ok: fig.lost === 0, detail: `${fig.lost} of ${fig.sent} never reached the worker${fig.lost ? ` (e.g. ${fig.lostSample.join(" ")})` : ""}` },
    { target: "0 false disconnects", ok: fig.falseDisconnects === 0,
      detail: `${fig.falseClientDisconnects} client disconnects from a live node ${JSON.stringify(fig.disconnectReasons)}, ${fig.falseNodeLost} node-lost entries for a live node` },
  ];
  if (!r.lostFirstExpected)
    checks.push({ target: "no event dropped by the cluster", ok: fig.lostFirst === 0, detail: `${fig.lostFirst} first copies lost (only a client's re-send delivered them)` });
  // events that waited out an outage are handled first: the test worker (Python SDK, one
  // consumer) needs about as long as the outage lasted for them, so a Redis outage's bound is
  // the profile's bound or the outage plus 5 s, whichever is larger
  const rBound = r.recoveryBound ?? Math.max(P.bounds.recoveryMs, (r.outageMs ?? 0) + 5000);
  if (r.faultEnd !== undefined && r.faultEnd !== null)
    checks.push({ target: `recovery within ${rBound / 1000} s`, ok: fig.recoveryMs <= rBound, detail: `recovery ${sec(fig.recoveryMs)}` });
  for (const [node, e] of Object.entries(exits.exits))
    if (!c.killed.has(node) && e.code !== 0) checks.push({ target: `${node} exits 0 on SIGTERM`, ok: false, detail: JSON.stringify(e) });
  checks.push(...(r.checks || []));
  const logs = {};
  if (checks.some((x) => !x.ok) || process.env.SIOC_CHAOS_LOGS) {
    for (const gw of c.gws) logs[gw.node] = gw.log().slice(-6000);
    logs.broker = brokerLog(c).slice(-6000);
    logs.recorder = c.recorder.output().split("\n").filter((l) => !/^[ecd] \d/.test(l)).join("\n").slice(-4000);
  }
  return {
    logs,
    load: `${P.clients} clients × ${P.rate} ev/s${loadOpts.payload ? ` × ${loadOpts.payload} B` : ""} on ${loadOpts.oneGateway ? "gwA" : "2 gateways"}` + (r.loadNote ? `, ${r.loadNote}` : ""),
    ...fig,
    notes: [...(r.notes || []), ...(fig.notesMore || []),
      ...(r.faultEnd !== undefined && r.faultEnd !== null ? [`events sent before the fault's end all seen ${sec(fig.backlogMs)} after it`] : []),
      `max event latency ${sec(fig.maxLatencyMs)}; broadcasts received ${(fig.broadcastShare * 100).toFixed(1)} %; ${fig.duplicates} duplicates`,
      ...(fig.unacked ? [`${fig.unacked} events seen by the worker but never acked to their client`] : [])],
    extra: r.extra || {},
    checks,
  };
}

function redisReady(c) {
  return until(async () => (await Promise.all(c.gws.filter((g) => !c.killed.has(g.node)).map((g) => statusOf(g.port, "/readyz"))))
    .every((s) => s === 200), 20000, 50);
}

// ---------------------------------------------------------------- Redis
async function redisKill(P) {
  return loaded(P, {}, async (c) => {
    await c.redis.kill();
    await sleep(P.redisDown);
    await c.redis.launch();
    const faultEnd = Date.now();
    await redisReady(c);
    const readyMs = Date.now() - faultEnd;
    return {
      faultEnd,
      outageMs: P.redisDown,
      loadNote: `Redis down ${P.redisDown / 1000} s`,
      notes: [`/readyz 200 again ${sec(readyMs)} after the restart`],
    };
  });
}

function redisStop(P, ms) {
  return loaded(P, {}, async (c) => {
    process.kill(c.redis.pid, "SIGSTOP");
    await sleep(ms);
    process.kill(c.redis.pid, "SIGCONT");
    const faultEnd = Date.now();
    return {
      faultEnd,
      outageMs: ms,
      loadNote: `Redis stopped ${ms / 1000} s (node-timeout ${P.nodeTimeout / 1000} s)`,
      post: async (fig) => {
        const n = (brokerLog(c).match(/node\.lost/g) || []).length;
        fig.notesMore = [`broker log: ${n} node.lost lines`];
      },
    };
  });
}

// ---------------------------------------------------------------- gateways and broker
// Waits until the mirror has no trace of `node` and the worker got a node-lost disconnect for
// each of `sids`; returns {mirrorMs, nodeLostMs, nodeLostGot} from t0.
async function watchLost(c, node, sids, t0, ms) {
  let mirrorMs = null;
  let nodeLostMs = null;
  let got = 0;
  await until(async () => {
    if (mirrorMs === null) {
      const left = await c.rc.sendCommand(["EXISTS", `sioc:node-sids:${node}`, ...sids.map((s) => `sioc:sid:${s}`)]);
      if (Number(left) === 0) mirrorMs = Date.now() - t0;
    }
    if (nodeLostMs === null) {
      const lost = new Set(recorderView(c).disconnects.filter((d) => d.reason === "node lost" && d.node === node).map((d) => d.sid));
      got = sids.filter((s) => lost.has(s)).length;
      if (got === sids.length) nodeLostMs = Date.now() - t0;
    }
    return mirrorMs !== null && nodeLostMs !== null;
  }, ms, 50);
  return { mirrorMs, nodeLostMs, got };
}

// Waits until P:node-sids:<node> of every live gateway is exactly the load's sockets there.
async function mirrorExact(c, load, t0, ms) {
  let at = null;
  await until(async () => {
    const live = load.sids();
    for (const gw of c.gws) {
      if (c.killed.has(gw.node)) continue;
      const want = live.filter((s) => s.node === gw.node).map((s) => s.sid).sort();
      const have = (await c.rc.sendCommand(["SMEMBERS", `sioc:node-sids:${gw.node}`])).sort();
      if (JSON.stringify(want) !== JSON.stringify(have)) return false;
    }
    at = Date.now() - t0;
    return true;
  }, ms, 100);
  return at;
}

async function gatewayKill(P) {
  return loaded(P, {}, async (c, load) => {
    const gwA = c.gws[0];
    const sids = load.clients.filter((cl) => cl.socket && cl.node === "gwA").map((cl) => cl.sid);
    const t0 = Date.now();
    killGateway(c, gwA);
    const w = await watchLost(c, "gwA", sids, t0, P.nodeTimeout + 10000);
    const moved = load.clients.filter((cl) => cl.disconnects.some((d) => d.node === "gwA"));
    const bound = P.nodeTimeout + 2000;
    return {
      faultEnd: t0,
      lostFirstExpected: true,
      recoveryBound: P.bounds.reconnectMs,
      loadNote: `gwA (${sids.length} clients) killed -9`,
      notes: [`mirror clean of gwA ${sec(w.mirrorMs)} after the kill`, `node lost reached the worker for ${w.got}/${sids.length} sockets in ${sec(w.nodeLostMs)}`,
        `${moved.length} clients reconnected to gwB`],
      extra: { mirrorMs: w.mirrorMs, nodeLostMs: w.nodeLostMs },
      checks: [
        { target: "node lost for every socket of the killed gateway", ok: w.got === sids.length, detail: `${w.got}/${sids.length}` },
        { target: `mirror clean within node-timeout + 2 s`, ok: w.mirrorMs !== null && w.mirrorMs <= bound, detail: sec(w.mirrorMs) },
      ],
    };
  });
}

async function brokerKill(P) {
  return loaded(P, {}, async (c, load) => {
    await killBroker(c);
    // clients come and go while the broker is down
    const churn = load.clients.filter((cl) => cl.socket).slice(0, P.churn);
    for (const cl of churn) cl.socket.close();
    await Promise.all(churn.map((cl) => load.connect(cl)));
    await sleep(P.brokerDown);
    await restartBroker(c);
    const faultEnd = Date.now();
    const exact = await mirrorExact(c, load, faultEnd, 15000);
    return {
      faultEnd,
      loadNote: `broker down ${P.brokerDown / 1000} s, ${P.churn} clients reconnect meanwhile`,
      notes: [`mirror exact ${sec(exact)} after the restart`],
      extra: { mirrorMs: exact },
      checks: [{ target: "mirror exact after the restart", ok: exact !== null, detail: sec(exact) }],
    };
  });
}

async function brokerAndGatewayKill(P) {
  return loaded(P, {}, async (c, load) => {
    const sids = load.clients.filter((cl) => cl.socket && cl.node === "gwA").map((cl) => cl.sid);
    const t0 = Date.now();
    process.kill(c.broker.pid, "SIGKILL");
    killGateway(c, c.gws[0]);
    await killBroker(c).catch(() => {});
    await sleep(P.brokerDown);
    await restartBroker(c);
    const restarted = Date.now();
    const w = await watchLost(c, "gwA", sids, restarted, P.nodeTimeout + 10000);
    const exact = await mirrorExact(c, load, restarted, 15000);
    return {
      faultEnd: t0,
      lostFirstExpected: true,
      recoveryBound: P.bounds.reconnectMs,
      loadNote: `broker and gwA killed -9, broker back after ${P.brokerDown / 1000} s`,
      notes: [`after the broker's restart: mirror clean of gwA ${sec(w.mirrorMs)}, node lost for ${w.got}/${sids.length} sockets ${sec(w.nodeLostMs)}, gwB's part exact ${sec(exact)}`],
      extra: { mirrorMs: w.mirrorMs, nodeLostMs: w.nodeLostMs, exactMs: exact },
      checks: [
        { target: "node lost for every socket of the killed gateway", ok: w.got === sids.length, detail: `${w.got}/${sids.length}` },
        { target: "mirror clean and exact after the restart", ok: w.mirrorMs !== null && exact !== null, detail: `${sec(w.mirrorMs)}, ${sec(exact)}` },
      ],
    };
  });
}

// ---------------------------------------------------------------- abusive clients
async function slowReader(P) {
  return loaded(P, {}, async (c) => {
    const gwA = c.gws[0];
    const stuck = await stuckReader(gwA.port);
    rssBaseline(c);
    const t0 = Date.now();
    const big = "s".repeat(P.slow.size);
    let pushed = 0;
    let closed = null;
    const timer = setInterval(() => {
      c.emitter.to(stuck.sid).emit("big", big);
      pushed++;
    }, P.slow.everyMs);
    await until(async () => {
      const d = recorderView(c).disconnects.find((x) => x.sid === stuck.sid);
      if (d) closed = { ms: Date.now() - t0, reason: d.reason };
      return closed;
    }, P.slow.maxMs, 50);
    clearInterval(timer);
    stuck.sock.destroy();
    const r = c.rss.get("gwA");
    const grown = mb(r.peak - r.base);
    return {
      window: [t0, Date.now()],
      loadNote: `one client on gwA stops reading, ${P.slow.size / 1024} KB pushed to it every ${P.slow.everyMs} ms`,
      notes: [closed ? `stuck client closed after ${sec(closed.ms)} (${(pushed * P.slow.size / 1048576).toFixed(1)} MB pushed), reason "${closed.reason}"` : "stuck client NOT closed",
        `gwA RSS +${grown} MB while it was open`],
      extra: { closedMs: closed && closed.ms, grownMb: grown },
      checks: [
        { target: "the stuck client is closed at its limit", ok: closed !== null, detail: closed ? `${sec(closed.ms)}, ${closed.reason}` : "still open" },
        { target: `memory bounded (< ${P.bounds.memoryMb} MB)`, ok: grown < P.bounds.memoryMb, detail: `+${grown} MB` },
      ],
    };
  });
}

async function abuseFlood(P, what, bytes, prefix, { cluster = {}, label } = {}) {
  return loaded(P, { cluster }, async (c) => {
    const gwA = c.gws[0];
    rssBaseline(c);
    const t0 = Date.now();
    const flood = await floodNeverRead(gwA.port, bytes, { prefix, ms: P.floodMs });
    await sleep(500);
    const health = await statusOf(gwA.port, "/healthz");
    const r = c.rss.get("gwA");
    r.peak = Math.max(r.peak, rssKb(gwA.pid));
    const grown = mb(r.peak - r.base);
    const open = !flood.destroyed && flood.readyState === "open";
    flood.destroy();
    return {
      window: [t0, Date.now()],
      loadNote: label,
      notes: [`gwA RSS +${grown} MB during the flood; /healthz ${health}; the abusive connection ${open ? "still open (reading paused)" : "closed"}`],
      extra: { grownMb: grown, health },
      checks: [
        { target: `memory bounded (< ${P.bounds.memoryMb} MB)`, ok: grown < P.bounds.memoryMb, detail: `+${grown} MB` },
        { target: "/healthz answers during the flood", ok: health === 200, detail: String(health) },
      ],
    };
  });
}

function pipelineFlood(P) {
  const one = Buffer.from("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  return abuseFlood(P, "pipeline", Buffer.concat(Array(P.pipeline).fill(one)), null,
    { label: `one connection to gwA pipelines ${P.pipeline.toLocaleString("en")} GET /metrics, never reads` });
}

function pingFlood(P) {
  return abuseFlood(P, "pings", pings(P.pings), wsUpgrade(),
    { label: `one WebSocket to gwA sends ${P.pings.toLocaleString("en")} pings (${Math.round(P.pings * 131 / 1e6)} MB), never reads` });
}

async function namespaceFlood(P) {
  return loaded(P, { cluster: { namespaces: "*" } }, async (c) => {
    const gwA = c.gws[0];
    rssBaseline(c);
    const t0 = Date.now();
    const ws = await rawWebSocket(gwA.port, "/socket.io/?EIO=4&transport=websocket");
    await ws.next();
    let ok = 0;
    let refused = 0;
    const messages = {};
    const batch = 500;
    for (let i = 0; i < P.namespaces; i += batch) {
      for (let j = i; j < Math.min(P.namespaces, i + batch); j++) ws.text(`40/flood${j},`);
      // collect this batch's answers (bounded)
      while (ok + refused < Math.min(P.namespaces, i + batch)) {
        const f = await ws.next(5000).catch(() => null);
        if (f === null) break;
        if (f.text === "2") {
          ws.text("3");
          continue;
        }
        const m = /^4([04])\/[^,]*,(.*)$/s.exec(f.text);
        if (!m) continue;
        if (m[1] === "0") ok++;
        else {
          refused++;
          const msg = JSON.parse(m[2]).message;
          messages[msg] = (messages[msg] || 0) + 1;
        }
      }
    }
    const floodMs = Date.now() - t0;
    const r = c.rss.get("gwA");
    r.peak = Math.max(r.peak, rssKb(gwA.pid));
    const grown = mb(r.peak - r.base);
    // a legitimate client still gets a new namespace on the same gateway
    const legit = io(`http://127.0.0.1:${gwA.port}/legit_chat`, { forceNew: true, reconnection: false, transports: ["websocket"] });
    const legitOk = await within(5000, new Promise((res) => {
      legit.once("connect", () => res(true));
      legit.once("connect_error", (e) => res(e.message));
    }), "legit connect").catch(() => "timeout");
    legit.close();
    ws.close();
    return {
      window: [t0, Date.now()],
      loadNote: `gateways with --namespaces '*'; one client on gwA asks for ${P.namespaces.toLocaleString("en")} namespaces`,
      notes: [`${ok} accepted, ${refused} refused ${JSON.stringify(messages)} in ${sec(floodMs)}; gwA RSS +${grown} MB; a new /legit_chat afterwards: ${legitOk === true ? "connected" : legitOk}`],
      extra: { accepted: ok, refused, grownMb: grown },
      checks: [
        { target: "namespaces per connection capped", ok: ok <= 64 && ok + refused === P.namespaces, detail: `${ok} accepted, ${refused} refused` },
        { target: `memory bounded (< ${P.bounds.memoryMb} MB)`, ok: grown < P.bounds.memoryMb, detail: `+${grown} MB` },
        { target: "a legitimate namespace is still served", ok: legitOk === true, detail: String(legitOk) },
      ],
    };
  });
}

async function fdLimit(P) {
  const prefix = ["prlimit", `--nofile=${P.fd.nofile}:${P.fd.nofile}`, "--"];
  return loaded(P, { cluster: { gwPrefix: prefix } }, async (c) => {
    const gwA = c.gws[0];
    rssBaseline(c);
    const t0 = Date.now();
    const socks = await openConnections(gwA.port, P.fd.conns);
    await sleep(300);
    const before = cpuTicks(gwA.pid);
    await sleep(1000);
    const cpuMs = (cpuTicks(gwA.pid) - before) * 10;
    const health = await statusOf(gwA.port, "/healthz");
    const hs = await statusOf(gwA.port, "/socket.io/?EIO=4&transport=polling");
    for (const s of socks) s.destroy();
    const after = await until(async () => (await statusOf(gwA.port, "/socket.io/?EIO=4&transport=polling")) === 200, 5000, 100);
    const lines = gwA.log().split("\n").filter((l) => /connection limit|accept failed|accepting again/i.test(l)).length;
    const limitLine = (gwA.log().match(/max-connections \d+[^\n]*/) || [""])[0];
    return {
      window: [t0, Date.now()],
      loadNote: `gateways at ${P.fd.nofile} fds (prlimit); ${P.fd.conns} idle connections opened to gwA`,
      notes: [`${limitLine.trim()}; at the limit gwA used ${cpuMs} ms CPU in 1 s, /healthz ${health}, a new handshake ${hs}, ${lines} log lines; handshake after release ${after ? 200 : "refused"}`],
      extra: { cpuMs, health, handshake: hs },
      checks: [
        { target: "/healthz answers at the limit", ok: health === 200, detail: String(health) },
        { target: "refused above max-connections (503)", ok: hs === 503, detail: String(hs) },
        { target: "no spin (< 300 ms CPU per s)", ok: cpuMs < 300, detail: `${cpuMs} ms` },
        { target: "served again after the episode", ok: !!after, detail: after ? "200" : "no" },
        // issue 10: accept errors "logged once per episode" (a start and an end line each for the
        // connection limit and for accept failures at most)
        { target: "logged once per episode (≤ 4 lines)", ok: lines <= 4, detail: `${lines} lines about the limit and accept failures` },
      ],
    };
  });
}

// Issue 10 item 4: Redis down long enough for the upstream queue to overflow, so that reading
// is paused, with short ping timings: the paused clients must not be closed by ping timeout.
async function overflowPause(P) {
  const o = P.overflow;
  const p = { ...P, clients: o.clients, rate: o.rate, drain: o.drain ?? P.drain };
  return loaded(p, { cluster: { gwArgs: ["--ping-interval", String(o.ping), "--ping-timeout", String(o.ping)] },
    load: { payload: o.payload, oneGateway: !!o.oneGateway } }, async (c) => {
    await c.redis.kill();
    await sleep(o.down);
    await c.redis.launch();
    const faultEnd = Date.now();
    await redisReady(c);
    const m = await Promise.all(c.gws.map(async (g) => {
      const body = (await within(3000, get(g.port, "/metrics"), "metrics").catch(() => ({ body: "" }))).body;
      const v = /sioc_upstream_overflow_total (\d+)/.exec(body);
      return v ? Number(v[1]) : 0;
    }));
    return {
      faultEnd,
      recoveryBound: o.recoveryMs, // the backlog of a full upstream queue has to be written and handled first
      loadNote: `Redis down ${o.down / 1000} s, ping-interval = ping-timeout = ${o.ping / 1000} s (upstream queue overflows, reads pause)`,
      notes: [`upstream overflow counted: ${m.join(" / ")} (gwA / gwB)`],
      checks: [],
    };
  });
}

// id, title, run(profile)
export const SCENARIOS = [
  { id: "redis-kill", title: "Redis killed -9 and restarted", run: redisKill },
  { id: "redis-stop-5s", title: "Redis SIGSTOPped for 5 s", run: (P) => redisStop(P, P.stopShort) },
  { id: "redis-stop-3nt", title: "Redis SIGSTOPped for 3 × node-timeout", run: (P) => redisStop(P, 3 * P.nodeTimeout) },
  { id: "gateway-kill", title: "A gateway killed -9", run: gatewayKill },
  { id: "broker-kill", title: "The broker killed -9 and restarted", run: brokerKill },
  { id: "broker-gateway-kill", title: "The broker and a gateway killed -9 together", run: brokerAndGatewayKill },
  { id: "slow-reader", title: "A client that stops reading", run: slowReader },
  { id: "pipeline-flood", title: "Pipelined HTTP requests never read", run: pipelineFlood },
  { id: "ping-flood", title: "WebSocket ping flood never read", run: pingFlood },
  { id: "namespace-flood", title: "Namespace flood from one client", run: namespaceFlood },
  { id: "fd-limit", title: "File-descriptor limit reached", run: fdLimit },
  { id: "overflow-pause", title: "Redis down until the upstream queue overflows (issue 10 item 4)", run: overflowPause },
];

