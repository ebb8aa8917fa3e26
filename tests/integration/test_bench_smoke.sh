#!/usr/bin/env bash
# test_bench_smoke.sh: keeps the benchmark harness from rotting (issue 6). Runs every scenario
# of tests/bench/run.mjs with tiny sizes against the real gateway and Node socket.io, and passes
# when every metric of every scenario came out as a number for both servers. Speed is not
# checked: benchmarks are not tests. Then S1 and S4 again over TLS (run.mjs --tls). Needs build/bench/loadgen, build/bench/worker and
# build/sioc-gateway (make all builds them).
# test-run: alone (tests/run.sh): two servers under load with fixed time bounds (55 s, 40 s) for
# every scenario; beside other test files they would miss them.
set -u
cd "$(dirname "$0")/../.." || exit 2
for b in build/bench/loadgen build/bench/worker build/sioc-gateway; do
    if [ ! -x "$b" ]; then
        echo "missing $b (run make)"
        echo "test_bench_smoke: 0 passed, 1 failed"
        exit 1
    fi
done
out=$(mktemp)
timeout -k 5 55 node tests/bench/run.mjs --smoke >"$out" 2>"$out.err"
rc=$?
# One table row per metric: | metric | sioc | node | ratio |
rows=$(grep -c '^| S[0-9]' "$out")
missing=$(grep '^| S[0-9]' "$out" | awk -F'|' '$3 ~ /^ *-? *$/ || $4 ~ /^ *-? *$/' | wc -l)
failed_runs=$(grep -c 'FAILED' "$out.err")
scenarios=$(grep '^| S[0-9]' "$out" | awk '{print $2}' | sort -u | tr '\n' ' ')
pass=$((rows - missing))
fail=$((missing + failed_runs))
if [ "$rc" -ne 0 ] || [ "$rows" -eq 0 ] || [ "$scenarios" != "S1 S2 S3 S4 S5 S6 " ]; then
    fail=$((fail + 1))
    echo "run.mjs exit $rc, scenarios with numbers: $scenarios"
fi
if [ "$fail" -ne 0 ]; then
    tail -n 30 "$out.err"
    grep '^| S[0-9]' "$out" | awk -F'|' '$3 ~ /^ *-? *$/ || $4 ~ /^ *-? *$/'
fi
# The same over TLS (issue 16: the load generator's --tls, both servers on https/wss), S1 and S4.
timeout -k 5 40 node tests/bench/run.mjs --smoke --tls --only S1,S4 >"$out" 2>"$out.err"
rc=$?
rows=$(grep -c '^| S[0-9] over TLS' "$out")
missing=$(grep '^| S[0-9]' "$out" | awk -F'|' '$3 ~ /^ *-? *$/ || $4 ~ /^ *-? *$/' | wc -l)
failed_runs=$(grep -c 'FAILED' "$out.err")
scenarios=$(grep '^| S[0-9] over TLS' "$out" | awk '{print $2}' | sort -u | tr '\n' ' ')
pass=$((pass + rows - missing))
if [ "$rc" -ne 0 ] || [ "$scenarios" != "S1 S2 S4 " ] || [ "$missing" -ne 0 ] || [ "$failed_runs" -ne 0 ]; then
    fail=$((fail + 1 + missing + failed_runs))
    echo "run.mjs --tls exit $rc, scenarios with numbers: $scenarios"
    tail -n 30 "$out.err"
fi
rm -f "$out" "$out.err"
echo "test_bench_smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
