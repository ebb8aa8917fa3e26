#!/usr/bin/env bash
# run.sh: runs every test that `make` built, each with a time bound, and adds up the
# "<name>: N passed, M failed" lines they print. Ends with the plain total line.
#   unit tests     build/asan/tests/test_*           (AddressSanitizer + UBSan)
#   fuzz replays   build/asan/fuzz/replay_<x> over tests/fuzz/corpus/<x>/ (1 test each)
#   layer check    scripts/check-layers.sh
#   format check   scripts/check-format.sh (one test per C file)
#   net tests      build/asan/net-tests/test_* (libevent/hiredis runtime, real redis-server)
#   integration    tests/integration/test_*.sh and test_*.mjs (node; real peers from npm)
set -u
cd "$(dirname "$0")/.." || exit 2
export SIOC_SHARED_DATA=${SIOC_SHARED_DATA:-$(cd .. && pwd)/shared/data}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

total_pass=0
total_fail=0
failed_names=()
log_dir=build/test-logs
mkdir -p "$log_dir"

# run_one NAME TIMEOUT CMD...: a summary line from the command counts as its result; without
# one, exit status 0 is 1 passed, anything else 1 failed.
run_one() {
    local name=$1 limit=$2
    shift 2
    local log="$log_dir/${name//\//_}.log" start end rc
    start=$(date +%s.%N)
    timeout -k 5 "$limit" "$@" >"$log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    local line p f
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
    else
        p=0 f=0
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    if [ -z "$line" ] && [ "$rc" -eq 0 ]; then
        p=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    printf '%-40s %5d passed %3d failed  %6.1fs\n' "$name" "$p" "$f" "$(awk "BEGIN{print $end - $start}")"
    if [ "$f" -ne 0 ]; then
        failed_names+=("$name")
        [ "$rc" -eq 124 ] && echo "  (timed out after ${limit}s)"
        sed -e 's/^/  | /' "$log" | tail -n 40
    fi
}

for t in build/asan/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "unit/$(basename "$t")" 600 "$t"
done
for r in build/asan/fuzz/replay_*; do
    [ -x "$r" ] || continue
    name=${r##*/replay_}
    run_one "fuzz-replay/$name" 600 "$r" "tests/fuzz/corpus/$name"
done
run_one "check-layers" 30 scripts/check-layers.sh
run_one "check-format" 120 scripts/check-format.sh
for t in build/asan/net-tests/test_*; do
    [ -x "$t" ] || continue
    run_one "net/$(basename "$t")" 600 "$t"
done
for t in tests/integration/test_*.sh; do
    [ -x "$t" ] || continue
    run_one "integration/$(basename "$t" .sh)" 600 "$t"
done
for t in tests/integration/test_*.mjs; do
    [ -f "$t" ] || continue
    run_one "integration/$(basename "$t" .mjs)" 600 node "$t"
done

echo
if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
