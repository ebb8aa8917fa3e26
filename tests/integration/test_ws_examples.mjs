// test_ws_examples.mjs: the plain WebSocket examples of issue 15 (the seeds' Flask-Sockets echo
// and gevent-websocket group and private chats, on sioc.flask_sockets), each on a cluster of
// its own: a private redis-server, two gateways (ws-routes, auth backend, upstream-shards 4) and
// TWO worker processes of the example. Clients on both gateways: `ws` (Node), Python's
// `websocket` module (tests/integration/ws_plain_client.py), socket.io-client in the route's
// namespace, and the examples' own pages in headless Chromium (two pages, each served by one
// worker process, on two gateways). Every process is stopped by pid; the workers must exit 0
// without a traceback.
import { io } from "socket.io-client";
import WebSocket from "ws";
import { spawn } from "node:child_process";
import path from "node:path";
import { assert, assertEqual, createRunner, launchChromium, repo, runThenStop, sleep, startRedis, startServer, until, within } from "./lib/harness.mjs";

const GATEWAY = process.env.SIOC_EXAMPLES_GATEWAY || "build/sioc-gateway";
const PYTHON = "/usr/bin/python3";
const SHARDS = 4;
const runner = createRunner("test_ws_examples");
const only = process.env.SIOC_EXAMPLES_ONLY; // e.g. gevent_ws_private_chat
const test = (name, fn, ms) => (!only || name.includes(only)) && runner.test(name, fn, ms);

// ---- processes ----

// A Python program of the repository; resolves once `readyLine` is in its output (null: at
// once). write(line) feeds its stdin; stop(): SIGTERM, bounded wait, resolves {code, signal}.
async function startPython(file, args, env, readyLine) {
  const child = spawn(PYTHON, [file, ...args], {
    cwd: repo,
    env: { ...process.env, PYTHONPATH: path.join(repo, "sdk/python"), PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  child.stdin.on("error", () => {});
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  const proc = {
    pid: child.pid,
    file,
    output: () => out,
    write: (line) => child.stdin.write(line + "\n"),
    waitFor: (what, ms = 10000) => until(`${file}: ${what}`, () => {
      if (child.exitCode !== null) throw new Error(`${file} exited: ${out}`);
      return typeof what === "string" ? out.includes(what) && [what] : what.exec(out);
    }, ms),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return within(15000, exited, `${file} to exit`).catch(() => {
        child.kill("SIGKILL");
        return { code: null, signal: "SIGKILL" };
      });
    },
  };
  if (readyLine) await proc.waitFor(readyLine, 30000); // a loaded machine starts Python slowly
  return proc;
}

const live = new Set();
process.on("exit", () => {
  for (const cl of live) cl.signalAll();
});

// redis + two gateways serving `wsRoutes` (and `namespaces`); workers are added with cl.worker().
async function cluster(namespaces, wsRoutes) {
  const redis = await startRedis();
  const args = (id) => ["--redis", redis.url, "--namespaces", namespaces, "--ws-routes", wsRoutes, "--auth", "backend",
    "--upstream-shards", String(SHARDS), "--cors-origin", "*", "--node-id", id, "--log-level", "warn", "--drain-timeout", "2000"];
  const [gw1, gw2] = await Promise.all([startServer(GATEWAY, args("gw1")), startServer(GATEWAY, args("gw2"))]);
  const workers = [];
  const closers = []; // clients, closed first
  const cl = {
    redis,
    workers,
    closers,
    http1: `http://127.0.0.1:${gw1.port}`,
    http2: `http://127.0.0.1:${gw2.port}`,
    ws1: `ws://127.0.0.1:${gw1.port}`,
    ws2: `ws://127.0.0.1:${gw2.port}`,
    signalAll() {
      for (const p of [...workers, gw1, gw2, redis]) p.stop().catch(() => {});
    },
    async worker(file, env = {}) {
      const w = await startPython(file, [], { SIOC_REDIS_URL: redis.url, SIOC_UPSTREAM_SHARDS: String(SHARDS), PORT: "", ...env }, "consuming from");
      workers.push(w);
      return w;
    },
    async stop() {
      live.delete(cl);
      for (const c of closers) await c();
      const results = await Promise.all(workers.map((w) => w.stop()));
      await Promise.all([gw1.stop(), gw2.stop()]);
      await redis.stop();
      const bad = [];
      results.forEach((r, i) => {
        const out = workers[i].output();
        if (r.code !== 0 || out.includes("Traceback")) bad.push(`${workers[i].file} (pid ${workers[i].pid}) exit ${JSON.stringify(r)}:\n${out.split("\n").slice(-25).join("\n")}`);
      });
      if (bad.length) throw new Error(`workers did not stop cleanly:\n${bad.join("\n")}`);
    },
  };
  live.add(cl);
  return cl;
}

async function withCluster(namespaces, wsRoutes, body) {
  return runThenStop(await cluster(namespaces, wsRoutes), body);
}

// Both worker processes hold leases of the group's streams (connections made now stay put).
async function leasesShared(cl, group) {
  const { createClient } = await import("redis");
  const r = createClient({ url: cl.redis.url });
  await r.connect();
  try {
    await until(`the ${group} streams leased to both worker processes`, async () => {
      const keys = await r.keys(`sioc:lease:${group}:*`);
      const owners = new Set();
      for (const k of keys) owners.add(await r.get(k));
      return keys.length === SHARDS && owners.size === 2;
    }, 15000);
  } finally {
    await r.quit();
  }
}

// ---- clients ----

// A `ws` client: got holds what arrived (a string for text, {binary: hex} for binary frames).
async function nodePlain(cl, url) {
  const ws = new WebSocket(url);
  const c = { ws, got: [], closed: null };
  ws.on("message", (data, isBinary) => c.got.push(isBinary ? { binary: Buffer.from(data).toString("hex") } : data.toString("utf8")));
  ws.on("close", (code) => (c.closed = code));
  await within(10000, new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
    ws.once("unexpected-response", (_, res) => reject(new Error(`${url}: HTTP ${res.statusCode}`)));
  }), `ws open ${url}`);
  cl.closers.push(async () => ws.close());
  return c;
}

// A python3-websocket client (ws_plain_client.py); got as nodePlain's.
async function pythonPlain(cl, url) {
  const p = await startPython("tests/integration/ws_plain_client.py", [url], {}, "open");
  cl.closers.push(async () => {
    p.write("close");
    await p.stop();
  });
  return {
    p,
    get got() {
      return p.output().split("\n").filter((l) => /^(text|binary) /.test(l))
        .map((l) => (l.startsWith("text ") ? JSON.parse(l.slice(5)) : { binary: l.slice(7) }));
    },
    send: (text) => p.write(`text ${JSON.stringify(text)}`),
    sendBinary: (hex) => p.write(`binary ${hex}`),
  };
}

// socket.io-client in a route's namespace: got holds its `message` events' first argument.
async function sio(cl, url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, transports: ["websocket"], ...opts });
  const c = { socket, got: [] };
  socket.on("message", (m) => c.got.push(Buffer.isBuffer(m) ? { binary: m.toString("hex") } : m));
  cl.closers.push(async () => socket.close());
  c.error = await within(10000, new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(null));
    socket.once("connect_error", (e) => (opts.refusedOk ? resolve(e) : reject(e)));
  }), `socket.io connect ${url}`);
  return c;
}

const has = (c, m) => c.got.some((x) => JSON.stringify(x) === JSON.stringify(m));

// Sends with `send(i)` every 250 ms until `ready()` (clients connect with the 101, and are in
// their rooms once the worker has answered: auth backend).
async function probe(what, send, ready, ms = 10000) {
  let i = 0;
  await until(what, async () => {
    if (await ready()) return true;
    send(i++);
    await sleep(250);
    return ready();
  }, ms);
}

async function pageUrl(worker, route) {
  const m = await worker.waitFor(/pages of \S+ on http:\/\/127\.0\.0\.1:(\d+)\//);
  return `http://127.0.0.1:${m[1]}${route}`;
}

const paragraphs = (p) => p.evaluate(() => [...document.querySelectorAll("#content_list p")].map((e) => e.innerText));

// ---- the examples ----

test("flask_sockets_echo: 'received' + message, in order, for ws, python and socket.io clients on two gateways", async () => {
  await withCluster("/test", "/test=/test", async (cl) => {
    const [w1, w2] = await Promise.all([cl.worker("examples/flask_sockets_echo/app.py"), cl.worker("examples/flask_sockets_echo/app.py")]);
    assert(w1.output().includes("--ws-routes '/test=/test'"), "the program prints the ws-routes it needs");
    await leasesShared(cl, "sioc-flask_sockets_echo");
    const clients = [];
    for (let i = 0; i < 6; i++) clients.push(await nodePlain(cl, `${i % 2 ? cl.ws2 : cl.ws1}/test`));
    const py = await pythonPlain(cl, `${cl.ws2}/test`);
    const s = await sio(cl, `${cl.http1}/test`);
    clients.forEach((c, i) => {
      for (let n = 0; n < 20; n++) c.ws.send(`c${i}m${n}`);
    });
    py.send("from python");
    s.socket.send("from socket.io");
    await until("every echo", () => clients.every((c) => c.got.length >= 20) && py.got.length >= 1 && s.got.length >= 1, 15000);
    clients.forEach((c, i) => assertEqual(c.got, Array.from({ length: 20 }, (_, n) => `receivedc${i}m${n}`), `client ${i}'s echoes, in order`));
    assertEqual(py.got, ["receivedfrom python"], "python-websocket");
    assertEqual(s.got, ["receivedfrom socket.io"], "socket.io-client (event message)");
    // one worker process stops: the other takes its streams over and starts the handlers of
    // their connections at their next message; the connections stay open
    assertEqual((await w1.stop()).code, 0, "the first worker's exit");
    clients.forEach((c, i) => c.ws.send(`c${i} after`));
    await until("every echo after the stop", () => clients.every((c) => c.got.length >= 21), 20000);
    clients.forEach((c, i) => assertEqual(c.got.slice(20), [`receivedc${i} after`], `client ${i} after the stop`));
    assert(/handled here from now on/.test(w2.output()), "the second process took connections over");
    // a client that leaves ends its handler: receive() gave None, 'received' + None: one line
    clients[0].ws.close();
    await until("the handler's end logged", () => cl.workers.some((w) => /handler echo_socket of \S+ ended after the connection closed: TypeError/.test(w.output())), 10000);
    await until("the close", () => clients[0].closed !== null, 5000);
  });
}, 60000);

test("gevent_ws_group_chat: each message reaches every other connection (ws, python, socket.io, two Chromium pages) on both gateways", async () => {
  const launching = launchChromium().catch((e) => e);
  try {
    await withCluster("/ws", "/ws=/ws", async (cl) => {
      const [w1, w2] = await Promise.all([
        cl.worker("examples/gevent_ws_group_chat/app.py", { PORT: "0", SIOC_PUBLIC_URL: cl.http1 }),
        cl.worker("examples/gevent_ws_group_chat/app.py", { PORT: "0", SIOC_PUBLIC_URL: cl.http2 })]);
      const pages = [await pageUrl(w1, "/wechat"), await pageUrl(w2, "/wechat")];
      await leasesShared(cl, "sioc-gevent_ws_group_chat");
      const a = await nodePlain(cl, `${cl.ws1}/ws`);
      const b = await pythonPlain(cl, `${cl.ws2}/ws`);
      const c = await sio(cl, `${cl.http2}/ws`);
      await probe("a's probes at b and c", (i) => a.ws.send(`probe ${i}`), () => b.got.length > 0 && c.got.length > 0);
      a.ws.send("hello from ws");
      await until("a's message at b and c", () => has(b, "hello from ws") && has(c, "hello from ws"), 10000);
      b.send("hello from python");
      await until("b's message at a and c", () => has(a, "hello from python") && has(c, "hello from python"), 10000);
      c.socket.send("hello from socket.io");  // event "message": the same upstream entry
      await until("c's message at a and b", () => has(a, "hello from socket.io") && has(b, "hello from socket.io"), 10000);
      a.ws.send(Buffer.from([0, 1, 255]));
      await until("a's binary message at b and c", () => has(b, { binary: "0001ff" }) && has(c, { binary: "0001ff" }), 10000);
      // nobody gets their own (the seed's "不给自己发消息")
      assert(!a.got.some((m) => JSON.stringify(m).includes("probe") || m === "hello from ws" || m.binary), `a got its own: ${JSON.stringify(a.got)}`);
      assert(!has(b, "hello from python") && !has(c, "hello from socket.io"), "b or c got its own");
      // the Socket.IO client and the plain clients got the same broadcasts, in the same order
      const heard = (x) => x.got.filter((m) => !(typeof m === "string" && m.startsWith("probe")));
      assertEqual(heard(b), ["hello from ws", "hello from socket.io", { binary: "0001ff" }], "python client");
      assertEqual(heard(c), ["hello from ws", "hello from python", { binary: "0001ff" }], "socket.io client");

      const br = await launching;
      if (br instanceof Error) throw br;
      const [p1, p2] = await Promise.all([br.newPage(), br.newPage()]);
      await Promise.all([p1.goto(pages[0], { timeout: 15000 }), p2.goto(pages[1], { timeout: 15000 })]);
      assert((await p1.content()).includes(`${cl.ws1}/ws`), "page 1 connects to gateway 1");
      assert((await p2.content()).includes(`${cl.ws2}/ws`), "page 2 connects to gateway 2");
      await probe("a's probes on both pages", (i) => a.ws.send(`page probe ${i}`),
        async () => (await paragraphs(p1)).length > 0 && (await paragraphs(p2)).length > 0);
      await p1.fill("#content", "hi from page 1");
      await p1.click("button");
      await p2.waitForFunction(() => [...document.querySelectorAll("#content_list p")].some((e) => e.innerText === "hi from page 1"), null, { timeout: 10000 });
      await until("page 1's message at a, b and c", () => has(a, "hi from page 1") && has(b, "hi from page 1") && has(c, "hi from page 1"), 10000);
      await p2.fill("#content", "hi from page 2");
      await p2.click("button");
      await p1.waitForFunction(() => [...document.querySelectorAll("#content_list p")].some((e) => e.innerText === "hi from page 2"), null, { timeout: 10000 });
      assert(!(await paragraphs(p1)).includes("hi from page 1"), "page 1 got its own message");
      await br.close();
    });
  } finally {
    const br = await launching;
    if (!(br instanceof Error)) await br.close().catch(() => {});
  }
}, 90000);

test("gevent_ws_private_chat: {sender, receiver, data} reaches only the receiver, by the name in the URL, across gateways and processes; two Chromium pages", async () => {
  const launching = launchChromium().catch((e) => e);
  try {
    await withCluster("/ws", "/ws/{user}=/ws", async (cl) => {
      const [w1, w2] = await Promise.all([
        cl.worker("examples/gevent_ws_private_chat/app.py", { PORT: "0", SIOC_PUBLIC_URL: cl.http1 }),
        cl.worker("examples/gevent_ws_private_chat/app.py", { PORT: "0", SIOC_PUBLIC_URL: cl.http2 })]);
      assert(w1.output().includes("--ws-routes '/ws/{user}=/ws'"), "the program prints the ws-routes it needs");
      const pages = [await pageUrl(w1, "/wechat"), await pageUrl(w2, "/wechat")];
      await leasesShared(cl, "sioc-gevent_ws_private_chat");
      const ann = await nodePlain(cl, `${cl.ws1}/ws/ann`);
      const ben = await pythonPlain(cl, `${cl.ws2}/ws/ben`);
      const cat = await nodePlain(cl, `${cl.ws2}/ws/cat`);
      const msg = (from, to, data) => JSON.stringify({ receiver: to, sender: from, data });
      await probe("ann's probes at ben", (i) => ann.ws.send(msg("ann", "ben", `probe ${i}`)), () => ben.got.length > 0);
      ann.ws.send(msg("ann", "ben", "hi ben"));
      await until("ann's message at ben", () => has(ben, msg("ann", "ben", "hi ben")), 10000);  // as sent, byte for byte
      ben.send(msg("ben", "ann", "hi ann"));
      await probe("cat's probes at ann", (i) => cat.ws.send(msg("cat", "ann", `probe ${i}`)), () => ann.got.some((m) => m.includes("\"cat\"")));
      await until("ben's message at ann", () => has(ann, msg("ben", "ann", "hi ann")), 10000);
      assertEqual(cat.got, [], "cat got nobody's message");
      assertEqual(ann.got.filter((m) => !m.includes("probe")), [msg("ben", "ann", "hi ann")], "ann's messages");
      // a Socket.IO client has no user name here: the handler has no username, the worker refuses it
      const anon = await sio(cl, `${cl.http1}/ws`, { refusedOk: true });
      assertEqual(anon.error && anon.error.message, "no username in the URL", "socket.io-client without a name");

      const br = await launching;
      if (br instanceof Error) throw br;
      const [p1, p2] = await Promise.all([br.newPage(), br.newPage()]);
      await Promise.all([p1.goto(pages[0], { timeout: 15000 }), p2.goto(pages[1], { timeout: 15000 })]);
      const login = async (p, name) => {
        await p.fill("#username", name);
        await p.click("text=登录聊天室");
        await p.waitForFunction(() => ws !== null && ws.readyState === 1, null, { timeout: 10000 });
      };
      await login(p1, "dan");
      await login(p2, "eve");
      assert((await p1.evaluate(() => ws.url)) === `${cl.ws1}/ws/dan`, "page 1 on gateway 1");
      assert((await p2.evaluate(() => ws.url)) === `${cl.ws2}/ws/eve`, "page 2 on gateway 2");
      await p1.fill("#receiver", "eve");
      await p1.fill("#content", "hello eve");
      // the first send may come before eve's connection is accepted by the worker: send until it arrives
      await until("dan's message on eve's page", async () => {
        if ((await paragraphs(p2)).includes("dan : hello eve")) return true;
        await p1.click("text=发送消息");
        await sleep(300);
        return (await paragraphs(p2)).includes("dan : hello eve");
      }, 10000);
      assert((await paragraphs(p1)).includes("hello eve : 我"), "dan's page shows what he sent");
      await p2.fill("#receiver", "dan");
      await p2.fill("#content", "hello dan");
      await p2.click("text=发送消息");
      await p1.waitForFunction(() => [...document.querySelectorAll("#content_list p")].some((e) => e.innerText === "eve : hello dan"), null, { timeout: 10000 });
      // a plain client gets the page's message too when it is the receiver
      await p2.fill("#receiver", "ann");
      await p2.fill("#content", "hello ann");
      await p2.click("text=发送消息");
      await until("eve's message at ann", () => ann.got.some((m) => m.includes("hello ann")), 10000);
      assertEqual(JSON.parse(ann.got.find((m) => m.includes("hello ann"))), { receiver: "ann", sender: "eve", data: "hello ann" }, "the page's JSON");
      assertEqual(cat.got, [], "cat still got nothing");
      await br.close();
    });
  } finally {
    const br = await launching;
    if (!(br instanceof Error)) await br.close().catch(() => {});
  }
}, 90000);

const ok = await runner.run();
process.exit(ok ? 0 : 1);
