// test_examples.mjs: the programs of examples/ (issue 12: the seeds' Flask-SocketIO and
// python-socketio programs ported to sioc by changing imports), each on a cluster of its own: a
// private redis-server, two gateways (auth backend, upstream-shards 4, CORS *), the broker where
// rooms() is used, and TWO worker processes of the example. Clients on both gateways:
// python-socketio over WebSocket and polling-only (tests/integration/examples_clients.py),
// socket.io-client, the seed's client1.py/client2.py, and the group chat's own page in headless
// Chromium (two pages, each served by one worker process, on two gateways). Every process is
// stopped by pid with SIGTERM; the workers must exit 0 without a traceback.
import { io } from "socket.io-client";
import { spawn } from "node:child_process";
import path from "node:path";
import {
  assert,
  assertEqual,
  createRunner,
  launchChromium,
  repo,
  runThenStop,
  sleep,
  startRedis,
  startServer,
  within,
} from "./lib/harness.mjs";

const GATEWAY = process.env.SIOC_EXAMPLES_GATEWAY || "build/sioc-gateway";
const BROKER = process.env.SIOC_EXAMPLES_BROKER || "build/sioc-broker";
const CLIENT_JS = path.join(repo, "node_modules/socket.io-client/dist/socket.io.min.js");
const PYTHON = "/usr/bin/python3";
const SHARDS = 4;
const runner = createRunner("test_examples");
const only = process.env.SIOC_EXAMPLES_ONLY; // e.g. flask_long_task: run the tests whose name has it
const test = (name, fn, ms) => (!only || name.includes(only)) && runner.test(name, fn, ms);
const { run } = runner;

// ---- processes ----

// A Python program of the repository; resolves once `readyLine` (a string or RegExp) is in its
// output. stop(): SIGTERM, bounded wait, resolves {code, signal}.
async function startPython(file, args = [], env = {}, readyLine = "consuming from") {
  const child = spawn(PYTHON, [file, ...args], {
    cwd: repo,
    env: { ...process.env, PYTHONPATH: path.join(repo, "sdk/python"), PYTHONUNBUFFERED: "1",
      PYTHONDONTWRITEBYTECODE: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const waiters = [];
  const onData = (d) => {
    out += d;
    for (const w of waiters.slice()) w();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  const proc = {
    pid: child.pid,
    exited,
    file,
    output: () => out,
    // resolves with the match of `pattern` in the output (waits up to ms)
    waitFor(pattern, ms = 10000) {
      const test = () => (typeof pattern === "string" ? (out.includes(pattern) ? [pattern] : null) : pattern.exec(out));
      return within(ms, new Promise((resolve, reject) => {
        const check = () => {
          const m = test();
          if (m) {
            waiters.splice(waiters.indexOf(check), 1);
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.splice(waiters.indexOf(check), 1);
            reject(new Error(`${file} exited: ${out}`));
          }
        };
        waiters.push(check);
        child.on("exit", check);
        check();
      }), `${file}: ${pattern}`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return within(15000, exited, `${file} to exit`).catch(() => {
        child.kill("SIGKILL");
        return { code: null, signal: "SIGKILL" };
      });
    },
  };
  if (readyLine) await proc.waitFor(readyLine);
  return proc;
}

// Clusters not stopped yet: signalled (synchronously) if the test exits early (a bound that
// expired, an exception), so that nothing it started outlives it.
const live = new Set();
process.on("exit", () => {
  for (const cl of live) cl.signalAll();
});

// redis + two gateways (+ broker) for `namespaces`; workers are added with cl.worker(...).
async function cluster(namespaces, { broker = false } = {}) {
  const redis = await startRedis();
  const gwArgs = (id) => ["--redis", redis.url, "--namespaces", namespaces, "--auth", "backend",
    "--upstream-shards", String(SHARDS), "--cors-origin", "*", "--client-js", CLIENT_JS,
    "--node-id", id, "--log-level", "warn", "--drain-timeout", "2000"];
  const [gw1, gw2] = await Promise.all([startServer(GATEWAY, gwArgs("gw1")), startServer(GATEWAY, gwArgs("gw2"))]);
  const brk = broker ? await startServer(BROKER, ["--redis", redis.url, "--log-level", "warn"]) : null;
  const workers = [];
  const clients = []; // client processes, stopped first
  const cl = {
    clients,
    signalAll() { // the synchronous part of every stop(): sends the signals
      for (const p of [...clients, ...workers, gw1, gw2, brk, redis]) if (p) p.stop().catch(() => {});
    },
    redis,
    url1: `http://127.0.0.1:${gw1.port}`,
    url2: `http://127.0.0.1:${gw2.port}`,
    workers,
    async worker(file, env = {}) {
      const w = await startPython(file, [], { SIOC_REDIS_URL: redis.url, SIOC_UPSTREAM_SHARDS: String(SHARDS), PORT: "", ...env });
      workers.push(w);
      return w;
    },
    // Stops everything; throws if a worker did not exit 0 or printed a traceback.
    async stop() {
      live.delete(cl);
      await Promise.all(clients.map((c) => c.stop()));
      const results = await Promise.all(workers.map((w) => w.stop()));
      await Promise.all([gw1.stop(), gw2.stop(), brk ? brk.stop() : null]);
      await redis.stop();
      const bad = [];
      results.forEach((r, i) => {
        const out = workers[i].output();
        if (r.code !== 0 || out.includes("Traceback")) {
          bad.push(`${workers[i].file} (pid ${workers[i].pid}) exit ${JSON.stringify(r)}:\n${out.split("\n").slice(-25).join("\n")}`);
        }
      });
      if (bad.length) throw new Error(`workers did not stop cleanly:\n${bad.join("\n")}`);
    },
  };
  live.add(cl);
  return cl;
}

let t0 = performance.now();
function step(what) {
  console.log(`     | ${((performance.now() - t0) / 1000).toFixed(1)} s: ${what}`);
}

// Runs body(cl) on a fresh cluster, then stops it; a failure carries the workers' last lines.
async function withCluster(namespaces, opts, body) {
  t0 = performance.now();
  const cl = await cluster(namespaces, opts);
  step("cluster up");
  return runThenStop(cl, body);
}

// The python-socketio scenario of examples_clients.py: resolves its output, throws on failure.
async function pythonClients(scenario, cl, ms = 30000) {
  const p = await startPython("tests/integration/examples_clients.py", [scenario, cl.url1, cl.url2], {}, null);
  cl.clients.push(p);
  const result = await within(ms, p.exited, `python-socketio clients (${scenario})`).catch(async (e) => {
    await p.stop();
    return { error: e };
  });
  const out = p.output();
  console.log(out.trimEnd().split("\n").map((l) => `     | ${l}`).join("\n"));
  if (result.error) throw result.error;
  assert(result.code === 0 && new RegExp(`${scenario}: 0 failed`).test(out), `python-socketio scenario ${scenario}`);
  return out;
}

// A promise run alongside other awaits: its rejection is kept for settled() (never unhandled).
function background(promise) {
  return promise.then((value) => ({ value }), (error) => ({ error }));
}
async function settled(wrapped) {
  const r = await wrapped;
  if (r.error) throw r.error;
  return r.value;
}

function connect(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  const ready = within(10000, new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  }), `connect to ${url}`);
  return { socket, ready };
}

function waitUntil(cond, ms, what) {
  return within(ms, (async () => {
    while (!(await cond())) await sleep(20);
  })(), what);
}

// Two distinct consumers hold the leases of the group's streams (both processes take work).
async function leasesShared(cl, group) {
  const { createClient } = await import("redis");
  const r = createClient({ url: cl.redis.url });
  await r.connect();
  try {
    await waitUntil(async () => {
      const keys = await r.keys(`sioc:lease:${group}:*`);
      const owners = new Set();
      for (const k of keys) owners.add(await r.get(k));
      return keys.length === SHARDS && owners.size === 2;
    }, 15000, `the ${group} streams leased to both worker processes`);
  } finally {
    await r.quit();
  }
}

// ---- examples ----

test("flask_group_chat: rooms, broadcast, refusal with python-socketio (ws + polling) and two Chromium pages on two gateways", async () => {
  const launching = launchChromium().catch((e) => e);  // Chromium starts slowly: alongside the cluster
  try {
    await withCluster("/", { broker: true }, async (cl) => {
      // each worker process serves the page (any free port) pointing at its own gateway
      const [w1, w2] = await Promise.all([
        cl.worker("examples/flask_group_chat/app.py", { PORT: "0", SIOC_PUBLIC_URL: cl.url1 }),
        cl.worker("examples/flask_group_chat/app.py", { PORT: "0", SIOC_PUBLIC_URL: cl.url2 })]);
      const pages = [];
      for (const w of [w1, w2]) pages.push(`http://127.0.0.1:${(await w.waitFor(/pages of \S+ on http:\/\/127\.0\.0\.1:(\d+)\//))[1]}/`);
      const py = background(pythonClients("group_chat", cl));  // alongside the browsers (other names)

      // socket.io-client without a name: refused by the connect handler
      const anon = connect(cl.url1, { transports: ["websocket"] });
      const err = await anon.ready.catch((e) => e);
      assertEqual(err.message, "Connection rejected by server", "socket.io-client without a name");
      anon.socket.close();

      step("workers up, python-socketio clients running");
      const b = await launching;
      if (b instanceof Error) throw b;
      try {
        step("chromium up");
        const [p1, p2, p3] = await Promise.all([b.newPage(), b.newPage(), b.newPage()]);
        await Promise.all([p1.goto(pages[0], { timeout: 15000 }), p2.goto(pages[1], { timeout: 15000 })]);
        const html = await p1.content();
        assert(html.includes(`${cl.url1}/socket.io/socket.io.js`), "page 1 loads socket.io.js from gateway 1");
        assert((await p2.content()).includes(cl.url2), "page 2 points at gateway 2");
        const login = async (p, name) => {
          await p.fill("#name", name);
          await p.click("#login button");
          await p.waitForFunction((n) => document.getElementById("status").textContent === "connected as " + n, name, { timeout: 10000 });
        };
        const logHas = (p, text) => p.waitForFunction((t) => [...document.querySelectorAll("#log p")].some((e) => e.textContent === t), text, { timeout: 10000 });
        step("pages loaded");
        await login(p1, "ann");
        await login(p2, "ben");
        await p1.click("#join button");
        await logHas(p1, "ann has entered the room.");
        await p2.click("#join button");
        await logHas(p1, "ben has entered the room.");
        await logHas(p2, "ben has entered the room.");
        await p2.fill("#text", "hello from ben");
        await p2.click("#emit button");
        await logHas(p1, "[lobby] ben: hello from ben");
        await p1.fill("#broadcast_data", "hi all");
        await p1.click("#broadcast button");
        await logHas(p2, "ann to everyone: hi all");
        await p2.click("#leave");
        await logHas(p1, "ben has left the room.");
        // an anonymous visitor is refused by the connect handler
        await p3.goto(pages[1], { timeout: 10000 });
        await p3.click("#login button");
        await p3.waitForFunction(() => document.getElementById("status").textContent === "refused: Connection rejected by server", null, { timeout: 10000 });
      } finally {
        await b.close();
      }
      step("browsers done");
      await settled(py);
    });
  } finally {
    const b = await launching;
    if (!(b instanceof Error)) await b.close().catch(() => {});
  }
}, 60000);

test("flask_private_chat: a message reaches only its target user, across gateways and worker processes", async () => {
  await withCluster("/", {}, async (cl) => {
    await Promise.all([cl.worker("examples/flask_private_chat/app.py"), cl.worker("examples/flask_private_chat/app.py")]);
    const py = background(pythonClients("private_chat", cl));
    await leasesShared(cl, "sioc-flask_private_chat");
    await settled(py);
    // 8 users, alternating gateways and transports, spread over the 4 streams and both processes;
    // each writes to the next one; each must get exactly one message, from the one before it
    const users = [];
    for (let i = 0; i < 8; i++) {
      const url = i % 2 ? cl.url2 : cl.url1;
      const c = connect(url, { transports: i % 4 < 2 ? ["websocket"] : ["polling"], auth: { username: `u${i}` } });
      const got = [];
      c.socket.on("private_message", (m) => got.push(m));
      users.push({ socket: await c.ready, got });
    }
    const acks = await Promise.all(users.map((u, i) =>
      u.socket.timeout(5000).emitWithAck("private_message", { receiver: `u${(i + 1) % 8}`, data: `from u${i}` })));
    assertEqual(acks, Array(8).fill("sent"), "acks");
    await waitUntil(() => users.every((u) => u.got.length >= 1), 5000, "every user's message");
    await sleep(300);
    users.forEach((u, i) => {
      const from = (i + 7) % 8;
      assertEqual(u.got, [{ sender: `u${from}`, receiver: `u${i}`, data: `from u${from}` }], `u${i}'s messages`);
    });
    for (const u of users) u.socket.close();
  });
}, 45000);

test("flask_long_task: the two messages arrive ~5 s apart while other clients' acks return in < 100 ms", async () => {
  await withCluster("/testnamespace", {}, async (cl) => {
    await Promise.all([cl.worker("examples/flask_long_task/app.py"), cl.worker("examples/flask_long_task/app.py")]);
    const a = await connect(`${cl.url1}/testnamespace`, { transports: ["websocket"] }).ready;
    const others = [await connect(`${cl.url2}/testnamespace`, { transports: ["websocket"] }).ready,
      await connect(`${cl.url1}/testnamespace`, { transports: ["polling"] }).ready];
    // timing only once both processes hold their streams (a stream that changes hands pauses)
    await leasesShared(cl, "sioc-flask_long_task");
    step("leases shared by the two processes");
    const py = background(pythonClients("long_task", cl));  // the same from python-socketio, alongside
    for (const o of others) await o.timeout(5000).emitWithAck("status");  // warm
    const got = [];
    a.on("response", (m) => got.push({ m, t: performance.now() }));
    const t0 = performance.now();
    a.emit("request_for_response", { param: "node" });
    await waitUntil(() => got.length >= 1, 2000, "start to process...");
    assertEqual(got[0].m, { code: "200", msg: "start to process...", param: "node" }, "first message");
    assert(got[0].t - t0 < 1000, `first message at once (${(got[0].t - t0).toFixed(0)} ms)`);
    const acks = [];
    for (let i = 0; i < 6; i++) {
      const o = others[i % 2];
      const s = performance.now();
      const ack = await o.timeout(5000).emitWithAck("status");
      acks.push(performance.now() - s);
      assertEqual(ack, { code: "200", msg: "idle" }, "status ack");
      await sleep(150);
    }
    console.log(`     | acks during the long task: ${acks.map((x) => x.toFixed(1)).join(", ")} ms`);
    // under 100 ms (the median: one scheduling hiccup of a loaded machine must not fail it), and
    // none anywhere near the 5 s the long handler holds its thread
    const median = [...acks].sort((x, y) => x - y)[Math.floor(acks.length / 2)];
    assert(median < 100, `other clients' acks under 100 ms: ${acks.map((x) => x.toFixed(1))}`);
    assert(Math.max(...acks) < 1000, `no ack waited for the long task: ${acks.map((x) => x.toFixed(1))}`);
    await waitUntil(() => got.length >= 2, 8000, "processed");
    assertEqual(got[1].m, { code: "200", msg: "processed", param: "node" }, "second message");
    const gap = (got[1].t - got[0].t) / 1000;
    console.log(`     | 'start to process...' after ${(got[0].t - t0).toFixed(0)} ms, 'processed' ${gap.toFixed(2)} s later`);
    // the handler sleeps 5 s between them; a loaded machine may delay either one a little
    assert(got[1].t - t0 >= 4950, `'processed' not before the 5 s (${(got[1].t - t0).toFixed(0)} ms)`);
    assert(gap >= 4.5 && gap < 6.5, `messages ~5 s apart (${gap.toFixed(2)} s)`);
    await settled(py);
    a.close();
    for (const o of others) o.close();
  });
}, 45000);

test("flask_namespaces: class-based namespaces, on_error / on_error_default, rooms", async () => {
  await withCluster("/,/test,/socketTest", {}, async (cl) => {
    await Promise.all([cl.worker("examples/flask_namespaces/app.py"), cl.worker("examples/flask_namespaces/app.py")]);
    await pythonClients("namespaces", cl);
    const s = connect(`${cl.url2}/test`, { transports: ["websocket"] });
    const connected = within(5000, new Promise((r) => s.socket.once("my_response", r)), "on_connect's emit");
    await s.ready;
    assertEqual(await connected, { data: "Connected" }, "on_connect");
    const echo = within(5000, new Promise((r) => s.socket.once("my_response", r)), "my_response");
    s.socket.emit("my_event", { from: "node" });
    assertEqual(await echo, { from: "node" }, "on_my_event");
    assertEqual(await s.socket.timeout(5000).emitWithAck("my_error_event", 7), { namespace: "/test", error: "bad data: 7" },
      "on_error('/test')");
    s.socket.close();
  });
}, 40000);

test("python_socketio_async: the AsyncServer program on AsyncWorker; the sync /chat server with the seed's client1.py/client2.py", async () => {
  await withCluster("/,/chat,/test", {}, async (cl) => {
    const clients = [];
    try {
      await Promise.all(["app.py", "app.py", "server.py", "server.py"].map((f) => cl.worker(`examples/python_socketio_async/${f}`)));
      await pythonClients("python_socketio", cl);
      const s = await connect(cl.url2, { transports: ["polling"] }).ready;
      const resp = within(5000, new Promise((r) => s.once("response", r)), "response");
      s.emit("message", "from node");
      assertEqual(await resp, { data: "Server received: from node" }, "AsyncWorker answer to socket.io-client");
      s.close();
      // the seed's clients, unchanged but for the URL: client1 on gateway 1, client2 on gateway 2
      const c1 = await startPython("examples/python_socketio_async/client1.py", [cl.url1], {}, "Room message:");
      clients.push(c1);
      const c2 = await startPython("examples/python_socketio_async/client2.py", [cl.url2], {}, "Room message:");
      clients.push(c2);
      // client2's message reached client1 in room1, across gateways (on a timeout, both clients'
      // output says what did arrive). The clients print from python-socketio's handler threads,
      // one write per piece of a print(), so another print may come between "Response from
      // server:" and its data (seen in a run beside other test files): the data, which only the
      // 'response' handler prints, after that handler's prefix.
      const fromC2 = /Response from server:[^]*?\{'data': 'Server received: This is client 2\.'\}/;
      const withOutput = (e) => {
        throw new Error(`${e.message}\n--- client1 ---\n${c1.output()}--- client2 ---\n${c2.output()}`);
      };
      await c1.waitFor(fromC2, 10000).catch(withOutput);
      await c2.waitFor(fromC2, 10000).catch(withOutput);
      assert(c1.output().includes("Connected to server") && c2.output().includes("Connected to server"), "both connected");
      const joins = (out) => (out.match(/Room message: \{'data': '\S+ has joined the room room1'\}/g) || []).length;
      await waitUntil(() => joins(c1.output()) >= 3, 5000, "client1 hears client2 join room1");
      assert(joins(c2.output()) >= 1, "client2 room message");
      const workersOut = cl.workers.map((w) => w.output()).join("\n");
      assert(workersOut.includes("Test message received: {'data': 'Hello, server!'}"), "client1's /test message handled");
      // (client1 sends to room1 right after connecting, maybe before its join: as with the seed's
      // own server, it may miss the answer to its first message; the server handled it)
      assert(/Message from \S+ in room room1: Hello, server!/.test(workersOut), "client1's /chat message handled");
    } finally {
      for (const c of clients) await c.stop();
    }
  });
}, 45000);

const ok = await run();
process.exit(ok ? 0 : 1);
