// demo_chat_check.mjs URL1 URL2: what a newcomer does after `make run` (test_make_run.sh runs
// it): opens the demo page on each gateway in headless Chromium, picks two names, and checks that
// a message in the lobby goes from one page to the other, that both names are online on both
// pages, and that each page names its own gateway. Exits 0 when all of that happened (bounded
// waits), 1 otherwise; SIOC_DEMO_SCREENSHOT=FILE saves the two pages side by side.
import { chromium } from "playwright-core";

const [url1, url2] = process.argv.slice(2);
const WAIT = 10000;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
let failed = false;
try {
  const open = async (url, name) => {
    const page = await (await browser.newContext({ viewport: { width: 900, height: 620 } })).newPage();
    await page.goto(url, { timeout: WAIT });
    await page.fill("#name", name);
    await page.click("#login button");
    await page.waitForFunction((n) => document.querySelector("#me").textContent === n, name, { timeout: WAIT });
    return page;
  };
  const alice = await open(url1, "alice");
  const bob = await open(url2, "bob");
  const online = (page) => page.waitForFunction(() => {
    const names = [...document.querySelectorAll("#online li")].map((li) => li.textContent.replace(" (you)", ""));
    return names.includes("alice") && names.includes("bob");
  }, null, { timeout: WAIT });
  await online(alice);
  await online(bob);
  console.log("ok   both names online on both pages");
  await alice.fill("#to", "");
  await alice.fill("#text", "hello from gw1");
  await alice.click("#send button");
  await bob.waitForFunction(() => [...document.querySelectorAll("#log li")]
    .some((li) => li.textContent.includes("hello from gw1")), null, { timeout: WAIT });
  console.log("ok   a message from the page on gateway 1 appears on the page on gateway 2");
  const nodes = await Promise.all([alice, bob].map((p) => p.evaluate(() => document.body.innerText)));
  if (!nodes[0].includes("gw1") || !nodes[1].includes("gw2")) throw new Error("the pages do not name their gateways");
  console.log("ok   each page names its gateway (gw1, gw2)");
  if (process.env.SIOC_DEMO_SCREENSHOT) await bob.screenshot({ path: process.env.SIOC_DEMO_SCREENSHOT });
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message.split("\n")[0]}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
