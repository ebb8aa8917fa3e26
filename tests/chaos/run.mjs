// run.mjs: `make chaos`. Runs the fault suite (tests/chaos/scenarios.mjs) at size, one scenario
// after the other, each on its own cluster; prints one line per scenario; writes the result as
// JSON to tests/chaos/results/<UTC time>-<profile>.json and, for a complete run of the full
// profile, the table of docs/reliability.md (between its chaos-table markers).
//   node tests/chaos/run.mjs [--profile full|bounded] [--only id,id] [--no-doc] [--from-json FILE]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { execSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { repo } from "../integration/lib/harness.mjs";
import { PROFILES, SCENARIOS } from "./scenarios.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
// --from-json FILE: no run, render the table of an earlier result (e.g. after a change of the
// table's format) into docs/reliability.md
const fromJson = opt("--from-json", "");
const earlier = fromJson ? JSON.parse(readFileSync(fromJson, "utf8")) : null;
const P = earlier ? earlier.profile : PROFILES[opt("--profile", "full")];
const only = opt("--only", "");
const chosen = earlier ? [] : only ? SCENARIOS.filter((s) => only.split(",").includes(s.id)) : SCENARIOS;
const started = earlier ? new Date(earlier.started) : new Date();
const rows = earlier ? earlier.rows : [];
const sec = (ms) => (ms === null || ms === undefined ? "–" : ms === Infinity ? "never" : `${(ms / 1000).toFixed(2)} s`);

for (const s of chosen) {
  const t0 = Date.now();
  let row;
  try {
    row = await s.run(P);
  } catch (err) {
    row = { error: String(err && err.stack ? err.stack : err), checks: [{ target: "scenario ran", ok: false, detail: String(err) }], notes: [] };
  }
  row.id = s.id;
  row.title = s.title;
  row.seconds = +((Date.now() - t0) / 1000).toFixed(1);
  delete row.nodeLost; // long; summarized in notes
  rows.push(row);
  const failed = row.checks.filter((c) => !c.ok);
  console.log(`${s.id}: sent ${row.sent} lost ${row.lost} (first copies ${row.lostFirst}) false ${row.falseDisconnects} ` +
    `recovery ${sec(row.recoveryMs)} rss ${JSON.stringify(row.rss)} [${row.seconds} s] ` +
    (failed.length ? `MISSED: ${failed.map((c) => `${c.target} (${c.detail})`).join("; ")}` : "targets met"));
  for (const n of row.notes) console.log(`    ${n}`);
  if (row.error) console.log(row.error);
}

const commit = earlier ? earlier.commit : execSync("git rev-parse --short HEAD", { cwd: repo, encoding: "utf8" }).trim();
const result = earlier || {
  started: started.toISOString(),
  profile: P,
  commit,
  machine: `${os.cpus().length} × ${os.cpus()[0].model}, ${Math.round(os.totalmem() / 2 ** 30)} GB`,
  rows,
};
const dir = path.join(repo, "tests/chaos/results");
mkdirSync(dir, { recursive: true });
const file = earlier ? path.resolve(fromJson) : path.join(dir, `${started.toISOString().replace(/[:]/g, "").replace(/\..*/, "")}-${P.name}.json`);
if (!earlier) {
  writeFileSync(file, JSON.stringify(result, null, 1) + "\n");
  console.log(`wrote ${path.relative(repo, file)}`);
}

function cell(s) {
  return String(s).replace(/\|/g, "\\|").replace(/\n/g, " ");
}
function table() {
  const lines = [
    `Run of ${started.toISOString().slice(0, 16).replace("T", " ")} UTC, commit ${commit}, profile \`${P.name}\`, ${result.machine} ` +
      `(shared with other work); raw figures in \`${path.relative(repo, file)}\`.`,
    "",
    "| Scenario | Load and fault | Events sent | Lost | First copies lost | False disconnects | Recovery | Peak RSS gwA / gwB | Acks lost | Targets |",
    "|---|---|--:|--:|--:|--:|--:|--|--:|---|",
  ];
  for (const r of rows) {
    const failed = r.checks.filter((c) => !c.ok);
    const rss = r.rss ? `${r.rss.gwA.peakMb} / ${r.rss.gwB.peakMb} MB` : "–";
    lines.push(`| ${cell(r.title)} | ${cell(r.load || "")} | ${r.sent ?? "–"} | ${r.lost ?? "–"} | ${r.lostFirst ?? "–"} | ` +
      `${r.falseDisconnects ?? "–"} | ${sec(r.recoveryMs)} | ${rss} | ${r.unacked ?? "–"} | ` +
      `${failed.length ? "**missed**: " + cell(failed.map((c) => `${c.target} (${c.detail})`).join("; ")) : "met"} |`);
  }
  lines.push("", "What happened, scenario by scenario:", "");
  for (const r of rows) lines.push(`- **${cell(r.title)}** (${r.seconds} s): ${cell(r.notes.join("; "))}.`);
  return lines.join("\n");
}

if ((earlier || !only) && !args.includes("--no-doc")) {
  const doc = path.join(repo, "docs/reliability.md");
  const text = readFileSync(doc, "utf8");
  const begin = "<!-- chaos-table:begin -->";
  const end = "<!-- chaos-table:end -->";
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) {
    writeFileSync(doc, text.slice(0, a + begin.length) + "\n" + table() + "\n" + text.slice(b));
    console.log("updated docs/reliability.md");
  }
} else {
  console.log(table());
}
const missed = rows.filter((r) => r.checks.some((c) => !c.ok)).length;
console.log(`chaos: ${rows.length - missed} scenarios met their targets, ${missed} missed`);
process.exit(0);
