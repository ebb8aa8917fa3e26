// test_eio3_browser.mjs: issue 14's "done when": the seeds' page shape (a page that loads
// socket.io 2.2.0 and calls io()) in headless Chromium chats with a socket.io 4.x page through two
// gateways (--allow-eio3 yes) and the Python test worker (join + room_msg). The 2.2.0 bundle is
// served by the gateway from --static (tests copy node_modules/socket.io-client-v220/dist/
// socket.io.js to <static>/js/socket.io-2.2.0.js, as docs/operations.md tells operators to do);
// the 4.x page loads /socket.io/socket.io.js (--client-js). The 2.2.0 page runs with the
// default transports (polling, then the upgrade), WebSocket only, and forceJSONP (script-tag
// GETs and form POSTs of d=, the only real JSONP client there is).
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { GATEWAY, assert, assertEqual, createRunner, get, repo, startProcess, startRedis, startServer } from "./lib/harness.mjs";

const WAIT = 10000;
const staticDir = mkdtempSync(path.join(tmpdir(), "sioc-eio3-page-"));
mkdirSync(path.join(staticDir, "js"));
copyFileSync(path.join(repo, "node_modules/socket.io-client-v220/dist/socket.io.js"), path.join(staticDir, "js/socket.io-2.2.0.js"));
// One page for both clients: ?v=2 loads the 2.2.0 bundle, ?v=4 the gateway's 4.x bundle; ?opts=
// the io() options. It joins "lobby" and shows every room_msg.
writeFileSync(path.join(staticDir, "chat.html"), `<!doctype html><html><head><meta charset="utf-8">
<script>
  var v = new URLSearchParams(location.search).get("v");
  document.write('<script src="' + (v === "2" ? "/js/socket.io-2.2.0.js" : "/socket.io/socket.io.js") + '"><\\/script>');
</script></head><body><ul id="log"></ul>
<script>
  var opts = JSON.parse(new URLSearchParams(location.search).get("opts") || "{}");
  window.lines = [];
  var socket = io(opts);
  socket.on("connect", function () {
    socket.emit("join", "lobby", function () { window.joined = socket.id; });
  });
  socket.on("room_msg", function (text) {
    window.lines.push(text);
    var li = document.createElement("li");
    li.textContent = text;
    document.getElementById("log").appendChild(li);
  });
  window.say = function (text) { socket.emit("room_msg", "lobby", text); };
  window.transport = function () { return socket.io.engine.transport.name; };
</script></body></html>`);

const redis = await startRedis();
const gatewayArgs = (node) => ["--redis", redis.url, "--node-id", node, "--namespaces", "/", "--allow-eio3", "yes",
  "--static", staticDir, "--client-js", path.join(repo, "node_modules/socket.io-client/dist/socket.io.min.js"),
  "--log-level", "warn"];
const gw1 = await startServer(GATEWAY, gatewayArgs("gw1"));
const gw2 = await startServer(GATEWAY, gatewayArgs("gw2"));
const worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", redis.url, "--namespaces", "/"], "worker ready");
const { chromium } = await import("playwright-core");
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const { test, run } = createRunner("test_eio3_browser");
const pageErrors = [];

async function open(port, v, opts) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("websocket", (ws) => requests.push(ws.url()));
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // a JSONP poll is a pending <script>: the page's load event never comes, so wait for the DOM
  await page.goto(`http://127.0.0.1:${port}/chat.html?v=${v}&opts=${encodeURIComponent(JSON.stringify(opts))}`,
    { waitUntil: "domcontentloaded", timeout: WAIT });
  await page.waitForFunction(() => typeof window.joined === "string", null, { timeout: WAIT });
  return { page, context, requests };
}

test("the gateway serves the 2.2.0 bundle from --static and the 4.x one at /socket.io/socket.io.js", async () => {
  const v2 = await get(gw1.port, "/js/socket.io-2.2.0.js");
  assertEqual(v2.status, 200, "2.2.0 bundle");
  assert(v2.body.includes("2.2.0") || v2.body.length > 50000, "the 2.2.0 bundle's content");
  assertEqual((await get(gw1.port, "/socket.io/socket.io.js")).status, 200, "4.x bundle");
});

const variants = {
  "default transports (polling, then upgrade)": { opts: {}, transport: "websocket" },
  websocket: { opts: { transports: ["websocket"] }, transport: "websocket" },
  forceJSONP: { opts: { transports: ["polling"], forceJSONP: true }, transport: "polling" },
};

for (const [name, { opts, transport }] of Object.entries(variants)) {
  test(`a 2.2.0 page (${name}) on gw1 and a 4.x page on gw2 chat in one room`, async () => {
    const old = await open(gw1.port, "2", opts);
    const cur = await open(gw2.port, "4", {});
    try {
      if (transport === "websocket")
        await old.page.waitForFunction(() => window.transport() === "websocket", null, { timeout: WAIT });
      assertEqual(await old.page.evaluate(() => window.transport()), transport, "the 2.2.0 page's transport");
      if (name === "forceJSONP") {
        assert(old.requests.some((u) => /EIO=3&transport=polling.*&j=\d/.test(u)), "JSONP requests (j=)");
        assert(old.requests.some((u) => /&b64=1/.test(u)), "JSONP clients send b64=1");
      } else {
        assert(old.requests.some((u) => /EIO=3/.test(u)), "the 2.2.0 client speaks EIO=3");
      }
      const text2 = `hello from 2.2.0 (${name}) é😀\n"q"`;
      await old.page.evaluate((t) => window.say(t), text2);
      await cur.page.waitForFunction((t) => window.lines.includes(t), text2, { timeout: WAIT });
      await old.page.waitForFunction((t) => window.lines.includes(t), text2, { timeout: WAIT }); // the room includes the sender
      const text4 = `hello from 4.x to ${name}`;
      await cur.page.evaluate((t) => window.say(t), text4);
      await old.page.waitForFunction((t) => window.lines.includes(t), text4, { timeout: WAIT });
      assertEqual(await old.page.locator("#log li").last().textContent(), text4, "shown on the 2.2.0 page");
    } finally {
      await old.context.close();
      await cur.context.close();
    }
  }, 30000);
}

test("no page errors", async () => {
  assertEqual(pageErrors, [], "page errors");
});

const ok = await run();
await browser.close();
for (const p of [worker, gw1, gw2, redis]) await p.stop();
const sanitizer = /(AddressSanitizer|LeakSanitizer|runtime error)/;
for (const srv of [gw1, gw2]) {
  if (sanitizer.test(srv.log())) {
    console.log(`sanitizer report:\n${srv.log()}`);
    console.log("test_eio3_browser: 0 passed, 1 failed");
    process.exit(1);
  }
}
process.exit(ok ? 0 : 1);
