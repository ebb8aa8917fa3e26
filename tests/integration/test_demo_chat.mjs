// test_demo_chat.mjs: issue 11, the demo chat of deploy/demo end to end, on the cluster `make run`
// starts: a private redis-server, sioc-broker, two gateways (gw1, gw2: --auth backend
// --namespaces /,/chat --static deploy/demo/public --client-js ...) and two processes of
// deploy/demo/chat_worker.py, with pages in headless Chromium on both gateways, once over
// WebSocket and once polling only.
// SIOC_DEMO_SCREENSHOT=FILE also saves a screenshot of two chat pages side by side.
import { writeFileSync } from "node:fs";
import { createClient } from "redis";
import { io } from "socket.io-client";
import path from "node:path";
import {
  BROKER,
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  get,
  post,
  repo,
  sleep,
  startProcess,
  startRedis,
  startServer,
  within,
} from "./lib/harness.mjs";

const WAIT = 8000; // bound of every wait for something a page should show
// A closed page's socket must leave the online lists. Over polling the gateway usually sees the
// aborted GET at once, but not always: then the ping timeout ends the session, so the gateways
// run with short pings and what follows a close may take PING * 2 (plus Chromium's slowness).
const PING = 4000;
const GONE_WAIT = 2 * PING + WAIT;

const stoppers = []; // stop() of everything started, in start order
const redis = await startRedis();
stoppers.push(redis);
const { test, run } = createRunner("test_demo_chat");
let ok = false;
let browser = null;
let workers = []; // two from the start: they share the upstream streams' consumer group

function startWorker(env = {}) {
  return startProcess("/usr/bin/python3", ["deploy/demo/chat_worker.py", ...(env.SIOC_REDIS_URL ? [] : ["--redis", redis.url])],
    "chat worker ready", { env: { ...process.env, ...env } });
}

function gatewayArgs(node) {
  return ["--redis", redis.url, "--node-id", node, "--auth", "backend", "--namespaces", "/,/chat",
    "--static", path.join(repo, "deploy/demo/public"),
    "--client-js", path.join(repo, "node_modules/socket.io-client/dist/socket.io.min.js"), "--log-level", "warn",
    "--ping-interval", String(PING), "--ping-timeout", String(PING)];
}

// ---- pages ----
const pageErrors = [];

// Opens the chat on a gateway in its own browser context; `sockets` records WebSockets it opens.
async function openChat(gw, query = "") {
  const context = await browser.newContext({ viewport: { width: 900, height: 620 } });
  const page = await context.newPage();
  page.sockets = [];
  page.on("websocket", (ws) => page.sockets.push(ws.url()));
  page.on("pageerror", (err) => pageErrors.push(err.message));
  await page.goto(`http://127.0.0.1:${gw.port}/${query}`, { timeout: WAIT });
  return page;
}

async function login(page, name) {
  await page.fill("#name", name);
  await page.click("#login button");
}

async function enter(gw, name, query) {
  const page = await openChat(gw, query);
  await login(page, name);
  await shows(page, "#me", name);
  return page;
}

function waitFor(page, what, fn, arg, ms = WAIT) {
  return page.waitForFunction(fn, arg, { timeout: ms }).catch(async (err) => {
    const [online, log] = await page.evaluate(() => ["#online", "#log"].map((s) => document.querySelector(s).innerText))
      .catch(() => ["?", "?"]);
    throw new Error(`${what}: ${err.message.split("\n")[0]}\n  online: ${online}\n  log: ${log}`);
  });
}

// Waits until the element's text is `want`.
function shows(page, selector, want) {
  return waitFor(page, `${selector} = ${want}`, ([s, w]) => document.querySelector(s).textContent === w, [selector, want]);
}

function logHas(page, text, ms = WAIT) {
  return waitFor(page, `a log line with "${text}"`,
    (t) => [...document.querySelectorAll("#log li")].some((li) => li.textContent.includes(t)), text, ms);
}

async function logLines(page) {
  return page.$$eval("#log li", (lis) => lis.map((li) => li.textContent.trim()));
}

// Waits until the online list shows exactly `names` (sorted; "(you)" stripped).
function onlineIs(page, names, ms = WAIT) {
  return waitFor(page, `online = ${names}`, (want) => {
    const got = [...document.querySelectorAll("#online li")].map((li) => li.textContent.replace(" (you)", ""));
    return JSON.stringify(got) === JSON.stringify(want);
  }, [...names].sort(), ms);
}

async function join(page, room) {
  await page.fill("#room", room);
  await page.click("#join button");
  await shows(page, "#online-room", "#" + room);
}

async function send(page, text, to = "") {
  await page.fill("#to", to);
  await page.fill("#text", text);
  await page.click("#send button");
}

async function closeAll(...pages) {
  for (const page of pages) if (page) await page.context().close();
}

try {
  const broker = await startServer(BROKER, ["--redis", redis.url, "--log-level", "warn"]);
  stoppers.push(broker);
  let gw1 = await startServer(GATEWAY, gatewayArgs("gw1"));
  stoppers.push(gw1);
  const gw2 = await startServer(GATEWAY, gatewayArgs("gw2"));
  stoppers.push(gw2);
  workers = [await startWorker(), await startWorker()];
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });

  test("the gateways serve the page, its script and style, and the client bundle", async () => {
    for (const [file, type] of [["/", "text/html"], ["/chat.js", "application/javascript"], ["/chat.css", "text/css"],
      ["/socket.io/socket.io.js", "application/javascript"]]) {
      const res = await get(gw2.port, file);
      assertEqual(res.status, 200, `${file} status`);
      assert(res.headers["content-type"].startsWith(type), `${file} content type ${res.headers["content-type"]}`);
    }
  });

  test("auth backend asks the worker about / too: a plain client connects there", async () => {
    const socket = io(`http://127.0.0.1:${gw1.port}/`, { transports: ["websocket"], reconnection: false });
    try {
      await within(WAIT, new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      }), "connect to /");
    } finally {
      socket.close();
    }
  });

  for (const mode of ["websocket", "polling"]) {
    const query = mode === "polling" ? "?transport=polling" : "";
    const tag = mode === "polling" ? "p" : "w";
    const [alice, bob, carol] = ["alice", "bob", "carol"].map((n) => `${n}-${tag}`);
    const room = `room-${mode}`;
    const pages = {};

    test(`${mode}: names picked on gw1 and gw2; each page shows its own node and the transport`, async () => {
      pages.alice = await enter(gw1, alice, query);
      pages.bob = await enter(gw2, bob, query);
      await shows(pages.alice, "#node", "gw1");
      await shows(pages.bob, "#node", "gw2");
      for (const page of [pages.alice, pages.bob]) {
        await shows(page, "#transport", mode);
        await shows(page, "#state", "connected");
        assertEqual(await page.evaluate(() => socket.io.engine.transport.name), mode, "the client's transport");
      }
    }, 30000);

    test(`${mode}: both join a room; messages cross gateways; the online list shows both`, async () => {
      await join(pages.alice, room);
      await join(pages.bob, room);
      await logHas(pages.alice, `${bob} has entered the room.`);
      await onlineIs(pages.alice, [alice, bob]);
      await onlineIs(pages.bob, [alice, bob]);
      const text = `hello from gw1 <b>not bold</b> <img src=x onerror="window.pwned=1">`;
      await send(pages.alice, text);
      await logHas(pages.bob, `#${room} ${alice}: ${text}`);
      await send(pages.bob, "hi from gw2");
      await logHas(pages.alice, `${bob}: hi from gw2`);
      assertEqual(await pages.bob.evaluate(() => [document.querySelectorAll("#log b, #log img").length, window.pwned]),
        [0, null], "user text is shown as text");
      // a push from outside, through the broker's HTTP API, reaches the room like a message
      const push = { nsp: "/chat", event: "said", args: [{ room, name: "api", text: `pushed ${mode}` }], rooms: [room] };
      const res = await post(broker.port, "/v1/emit", JSON.stringify(push), "Content-Type: application/json\r\n");
      assertEqual(res.status, 200, `POST /v1/emit: ${res.body}`);
      await logHas(pages.alice, `#${room} api: pushed ${mode}`);
      await logHas(pages.bob, `#${room} api: pushed ${mode}`);
    });

    test(`${mode}: a private message reaches every socket of its target and a copy to the sender, nobody else`, async () => {
      pages.carol = await enter(gw1, carol, query);
      await join(pages.carol, room);
      await onlineIs(pages.alice, [alice, bob, carol]);
      pages.bob2 = await enter(gw1, bob, query); // bob's second tab, on the other gateway
      await send(pages.alice, "psst, only for bob", bob);
      await logHas(pages.bob, `${alice} → you: psst, only for bob`);
      await logHas(pages.bob2, `${alice} → you: psst, only for bob`);
      await logHas(pages.alice, `you → ${bob}: psst, only for bob`);
      // carol is in the same room and on alice's gateway: she gets the next room message, not the private one
      await send(pages.alice, "after the secret");
      await logHas(pages.carol, `${alice}: after the secret`);
      const lines = await logLines(pages.carol);
      assert(!lines.some((l) => l.includes("psst")), `carol saw the private message: ${lines}`);
      await send(pages.alice, "hello?", "nobody-here");
      await logHas(pages.alice, "nobody-here is not online");
    }, 30000);

    test(`${mode}: an empty or invalid name is refused and shown; a valid one then works`, async () => {
      const page = await openChat(gw2, query);
      for (const name of ["", "two words"]) {
        await page.evaluate(() => { document.querySelector("#login-error").textContent = ""; });
        await login(page, name);
        await waitFor(page, "the refusal", () => document.querySelector("#login-error").textContent.startsWith("Refused: pick a name"));
        await shows(page, "#state", "refused");
        assert(await page.isHidden("#chat"), "no chat for a refused name");
      }
      await login(page, `dora-${tag}`);
      await shows(page, "#me", `dora-${tag}`);
      assert(await page.isVisible("#chat"), "the chat after a valid name");
      await closeAll(page);
    }, 30000);

    test(`${mode}: leaving and closing the page tell the room and update its online list`, async () => {
      await pages.bob.click(`#rooms button.leave[title="leave #${room}"]`);
      await logHas(pages.alice, `${bob} has left the room.`);
      await onlineIs(pages.alice, [alice, carol]);
      await logHas(pages.bob, "You left the room.");
      await closeAll(pages.carol);
      await logHas(pages.alice, `${carol} has left.`, GONE_WAIT);
      await onlineIs(pages.alice, [alice]);
      if (mode === "polling") {
        assertEqual(await pages.alice.textContent("#transport"), "polling", "still polling at the end");
        assertEqual(await pages.alice.evaluate(() => socket.io.opts.transports), ["polling"], "polling only");
        assertEqual([...pages.alice.sockets, ...pages.bob.sockets], [], "no WebSocket ever opened");
      } else {
        assert(pages.alice.sockets.some((u) => u.includes("transport=websocket")), "a WebSocket was used");
      }
    }, 30000);

    test(`${mode}: close the pages`, async () => {
      const screenshot = process.env.SIOC_DEMO_SCREENSHOT;
      if (screenshot && mode === "websocket") await sideBySide(pages.alice, pages.bob, screenshot);
      await closeAll(pages.alice, pages.bob, pages.bob2);
    });
  }

  test("who is online comes from the registry: a fresh worker still lists those who came before", async () => {
    const erin = await enter(gw1, "erin", "");
    await join(erin, "after-restart");
    const stopped = await Promise.all(workers.map((w) => w.stop()));
    const out = workers.map((w) => w.output()).join("\n");
    assertEqual(stopped.map((r) => r.code), [0, 0], "the workers exit 0 on SIGTERM");
    assert(!out.includes("Traceback"), `no traceback: ${out}`);
    for (const what of ["refused ''", "connect erin", "join erin", "join alice-w", "leave bob-w", "message alice-w", "private alice-w", "disconnect carol-w"])
      assert(out.includes(what), `the worker logged "${what}"`);
    workers = [await startWorker({ SIOC_REDIS_URL: redis.url, SIOC_KEY_PREFIX: "sioc" })]; // the env fallbacks
    const frank = await enter(gw2, "frank", "");
    await join(frank, "after-restart");
    await onlineIs(frank, ["erin", "frank"]);
    await onlineIs(erin, ["erin", "frank"]);
    await closeAll(erin, frank);
  }, 30000);

  test("a page whose gateway restarts comes back by itself: welcomed again, back in its rooms", async () => {
    const gina = await enter(gw1, "gina", "");
    const hugo = await enter(gw2, "hugo", "");
    await join(gina, "comeback");
    await join(hugo, "comeback");
    await onlineIs(hugo, ["gina", "hugo"]);
    const drained = await gw1.stop();
    assertEqual(drained.code, 0, "gw1 drained and exited 0");
    await logHas(hugo, "gina has left.");
    await onlineIs(hugo, ["hugo"]);
    await shows(gina, "#state", "disconnected (transport close)");
    // same node id and port, a new process (a new epoch for the registry)
    const again = await startServer(GATEWAY, [...gatewayArgs("gw1"), "--listen", `127.0.0.1:${gw1.port}`]);
    stoppers[stoppers.indexOf(gw1)] = again;
    gw1 = again;
    await shows(gina, "#state", "connected");
    await logHas(hugo, "#comeback gina has entered the room."); // hugo joined after gina's first entry
    await onlineIs(hugo, ["gina", "hugo"]); // gina is in #comeback again, says the registry
    await send(hugo, "welcome back");
    await logHas(gina, "hugo: welcome back");
    await closeAll(gina, hugo);
  }, 40000);

  test("every page closed: no script errors, and the registry's #lobby is empty again", async () => {
    assertEqual(pageErrors, [], "page errors");
    const rc = createClient({ url: redis.url });
    await rc.connect();
    try {
      let left = [];
      for (const until = Date.now() + GONE_WAIT; Date.now() < until; await sleep(100))
        if ((left = await rc.sMembers("sioc:room:/chat:lobby")).length === 0) break;
      const who = await Promise.all(left.map((sid) => rc.hGetAll(`sioc:sid:${sid}`)));
      assertEqual(who, [], "sockets still in the lobby");
    } finally {
      await rc.quit();
    }
  }, 30000);

  ok = await run();
} catch (err) {
  console.log(`FAIL setup: ${err && err.stack ? err.stack : err}`);
  console.log("test_demo_chat: 0 passed, 1 failed");
} finally {
  if (browser) await browser.close();
  for (const worker of workers) {
    const w = await worker.stop();
    const clean = w.code === 0 && !worker.output().includes("Traceback");
    if (!clean) console.log(`worker exit ${JSON.stringify(w)}:\n${worker.output().slice(-3000)}`);
    ok = ok && clean;
  }
  for (const s of stoppers.reverse()) {
    const r = await s.stop();
    if (r && r.code !== 0) {
      console.log(`exit ${JSON.stringify(r)}${s.log ? ":\n" + s.log().slice(-3000) : ""}`);
      ok = false;
    }
  }
}
process.exit(ok ? 0 : 1);

// Saves two pages' screenshots side by side, composed in a third page (no image library needed).
async function sideBySide(left, right, file) {
  const shots = [await left.screenshot(), await right.screenshot()].map((b) => `data:image/png;base64,${b.toString("base64")}`);
  const page = await browser.newPage({ viewport: { width: 1810, height: 620 } });
  await page.setContent(`<body style="margin:0;display:flex;gap:10px;background:#888">${shots.map((s) => `<img src="${s}">`).join("")}</body>`);
  writeFileSync(file, await page.screenshot());
  await page.close();
}
