// test_faults.mjs: issue 10's fault suite, bounded (the same scenarios as `make chaos`,
// tests/chaos/scenarios.mjs, profile "bounded": 16 clients on two release gateways, short faults,
// node-timeout 2 s). Each scenario is one test asserting the issue's targets: 0 events lost (by
// the cluster: no first copy lost either, except the ones in flight to a gateway killed -9),
// 0 false disconnects (no client closed and no `node lost` for a live node), recovery within the
// stated bound, memory bounded while one client abuses a gateway, and what each scenario adds
// (node lost for every socket of a killed gateway, the mirror clean and exact, /healthz and 503
// at the file-descriptor limit, no spin). SIOC_TEST_FILTER selects scenarios by name.
// test-run: alone (tests/run.sh): the scenarios run clients with 1 s pings and node-timeout 2 s
// against ASan builds; on a CPU shared with other test files, overflow-pause's clients were closed
// by ping timeout before the pause began (a false disconnect).
import { createRunner } from "./lib/harness.mjs";
import { PROFILES, SCENARIOS } from "../chaos/scenarios.mjs";

const P = PROFILES.bounded;
const { test, run } = createRunner("test_faults");

// Scenarios that still miss a target now and then: `make chaos` runs and reports them (see
// docs/reliability.md, "Known defects"), make test leaves them out until they are fixed, so
// that a known, intermittent defect does not hide every other result.
const KNOWN_DEFECTS = {};

for (const s of SCENARIOS) {
  if (KNOWN_DEFECTS[s.id] && !process.env.SIOC_TEST_FILTER) {
    console.log(`skip ${s.id}: known defect: ${KNOWN_DEFECTS[s.id]}`);
    continue;
  }
  test(`${s.id}: ${s.title}`, async () => {
    const row = await s.run(P);
    const sec = (ms) => (ms === null || ms === undefined ? "-" : ms === Infinity ? "never" : `${(ms / 1000).toFixed(2)} s`);
    console.log(`  ${row.load}: sent ${row.sent}, lost ${row.lost} (first copies ${row.lostFirst}), false disconnects ` +
      `${row.falseDisconnects}, recovery ${sec(row.recoveryMs)}; ${row.notes.join("; ")}`);
    const missed = row.checks.filter((c) => !c.ok);
    if (missed.length) throw new Error(`missed: ${missed.map((c) => `${c.target} (${c.detail})`).join("; ")}`);
  }, 40000);
}

const ok = await run();
process.exit(ok ? 0 : 1);
