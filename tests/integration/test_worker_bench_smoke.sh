#!/usr/bin/env bash
# test_worker_bench_smoke.sh: keeps the worker benchmark (tests/bench/worker_echo.mjs, issue 12)
# from rotting: with tiny sizes, the same echo program on Flask-SocketIO + eventlet and as a sioc
# worker behind a gateway must both answer every echo. Speed is not checked (benchmarks are not
# tests). Needs build/bench/loadgen and build/sioc-gateway (make all builds them).
# test-run: alone (tests/run.sh): the smoke rate must come back whole (saturation 100), which
# a CPU shared with other test files does not always give.
set -u
cd "$(dirname "$0")/../.." || exit 2
out=$(mktemp)
timeout -k 5 120 node tests/bench/worker_echo.mjs --smoke >"$out" 2>"$out.err"
rc=$?
pass=0
fail=0
for system in "Flask-SocketIO 5.3 + eventlet" "sioc, 1 worker process"; do
    row=$(grep -F "| $system" "$out")
    # | system | saturation | p50 | p99 | cpu |: the smoke rate must have come back whole
    if [ -n "$row" ] && [ "$(echo "$row" | awk -F'|' '{gsub(/ /,"",$3); print $3}')" = 100 ]; then
        pass=$((pass + 1))
        echo "ok   $system: $row"
    else
        fail=$((fail + 1))
        echo "FAIL $system: ${row:-no row}"
    fi
done
if [ "$rc" -ne 0 ] || [ "$fail" -ne 0 ]; then
    [ "$rc" -ne 0 ] && fail=$((fail + 1))
    echo "--- worker_echo.mjs (exit $rc)"
    tail -n 30 "$out.err"
fi
rm -f "$out" "$out.err"
echo "test_worker_bench_smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
