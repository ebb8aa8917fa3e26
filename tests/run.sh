#!/usr/bin/env bash
# run.sh: runs every test that `make` built, each with a time bound, and adds up the
# "<name>: N passed, M failed" lines they print. Ends with the plain total line.
#   unit tests     build/asan/tests/test_*           (AddressSanitizer + UBSan)
#   fuzz replays   build/asan/fuzz/replay_<x> over tests/fuzz/corpus/<x>/ (1 test each)
#   layer check    scripts/check-layers.sh
#   format check   scripts/check-format.sh (one test per C file)
#   call loops     scripts/check-calls.py (no two source files call each other in a loop)
#   net tests      build/asan/net-tests/test_* (libevent/hiredis runtime, real redis-server)
#   integration    tests/integration/test_*.sh and test_*.mjs (node; real peers from npm)
#
# Test files run side by side, SIOC_TEST_JOBS at a time (default: nproc; 1 runs them one after
# the other). Every test binds random free loopback ports and private temporary directories, so
# files are independent. A file whose source carries the marker line "test-run: alone" (in a
# comment, with the reason) runs with nothing else beside it: benchmarks whose numbers or rates
# the file checks, and files that check the whole work tree. One line per file is printed in
# the order below, the ones marked alone last (a line waits for the files before it), the failed
# ones with their log's tail.
set -u
cd "$(dirname "$0")/.." || exit 2
export SIOC_SHARED_DATA=${SIOC_SHARED_DATA:-$(cd .. && pwd)/shared/data}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

jobs_max=${SIOC_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
if ! [[ $jobs_max =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: SIOC_TEST_JOBS must be a positive number of parallel test files, not '$jobs_max'" >&2
    exit 2
fi
log_dir=build/test-logs
mkdir -p "$log_dir"
res_dir=$(mktemp -d "${TMPDIR:-/tmp}/sioc-run.XXXXXX") || exit 2
# on exit (an interrupted run): stop the files still running, through their timeout (which
# takes the file's process group down with it)
cleanup() {
    local f
    for f in "$res_dir"/*.pid; do
        [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
    done
    wait
    rm -rf "$res_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the list: name, time bound, alone (0/1), command ----
names=()
limits=()
alone=()
cmds=()
# add NAME LIMIT SOURCE CMD...: SOURCE is the file whose "test-run: alone" line marks it (or -)
add() {
    local name=$1 limit=$2 src=$3 solo=0
    shift 3
    [ "$src" != - ] && [ -f "$src" ] && grep -q 'test-run: alone' "$src" && solo=1
    names+=("$name")
    limits+=("$limit")
    alone+=("$solo")
    cmds+=("$(printf '%q ' "$@")")
}
for t in build/asan/tests/test_*; do
    [ -x "$t" ] || continue
    add "unit/$(basename "$t")" 600 "tests/unit/$(basename "$t").c" "$t"
done
for r in build/asan/fuzz/replay_*; do
    [ -x "$r" ] || continue
    name=${r##*/replay_}
    add "fuzz-replay/$name" 600 - "$r" "tests/fuzz/corpus/$name"
done
add "check-layers" 30 - scripts/check-layers.sh
add "check-format" 120 - scripts/check-format.sh
add "check-calls" 60 - scripts/check-calls.py
for t in build/asan/net-tests/test_*; do
    [ -x "$t" ] || continue
    add "net/$(basename "$t")" 600 "tests/net/$(basename "$t").c" "$t"
done
for t in tests/integration/test_*.sh; do
    [ -x "$t" ] || continue
    add "integration/$(basename "$t" .sh)" 600 "$t" "$t"
done
for t in tests/integration/test_*.mjs; do
    [ -f "$t" ] || continue
    add "integration/$(basename "$t" .mjs)" 600 "$t" node "$t"
done

# run_one I: runs command I with its bound into its log; writes "passed failed rc seconds" to
# $res_dir/I (renamed into place, so a reader never sees half of it). A summary line from the
# command counts as its result; without one, exit status 0 is 1 passed, anything else 1 failed.
run_one() {
    local i=$1 name=${names[$1]} limit=${limits[$1]}
    local log="$log_dir/${name//\//_}.log" start end rc line p f
    start=$(date +%s.%N)
    eval "timeout -k 5 $limit ${cmds[$i]}" >"$log" 2>&1 </dev/null &
    echo $! >"$res_dir/$i.pid"
    wait $!
    rc=$?
    rm -f "$res_dir/$i.pid"
    end=$(date +%s.%N)
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
    echo "$p $f $rc $(awk "BEGIN{print $end - $start}")" >"$res_dir/$i.tmp"
    mv "$res_dir/$i.tmp" "$res_dir/$i"
}

total_pass=0
total_fail=0
failed_names=()
# report I: the summary line of file I (and its log's tail when it failed)
report() {
    local i=$1 name=${names[$1]} p f rc secs
    read -r p f rc secs <"$res_dir/$i"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    printf '%-40s %5d passed %3d failed  %6.1fs\n' "$name" "$p" "$f" "$secs"
    if [ "$f" -ne 0 ]; then
        failed_names+=("$name")
        [ "$rc" -eq 124 ] && echo "  (timed out after ${limits[$i]}s)"
        sed -e 's/^/  | /' "$log_dir/${name//\//_}.log" | tail -n 40
    fi
}

# ---- the order: the list above, the files marked alone last (together, so that the pool
# drains once for them, not once for each)
order=()
for i in "${!names[@]}"; do [ "${alone[$i]}" -eq 0 ] && order+=("$i"); done
for i in "${!names[@]}"; do [ "${alone[$i]}" -eq 1 ] && order+=("$i"); done

# ---- the pool: start while there is room, wait for any one to end, print in that order ----
count=${#order[@]}
next=0    # the next file to start
shown=0   # the next file to print
run=()    # the files running now
solo_on=0 # 1 while a file marked alone runs
while [ "$shown" -lt "$count" ]; do
    while [ "$next" -lt "$count" ] && [ "$solo_on" -eq 0 ]; do
        i=${order[$next]}
        if [ "${alone[$i]}" -eq 1 ]; then
            [ ${#run[@]} -eq 0 ] || break
            solo_on=1
        elif [ ${#run[@]} -ge "$jobs_max" ]; then
            break
        fi
        run_one "$i" &
        run+=("$i")
        next=$((next + 1))
    done
    if [ ${#run[@]} -gt 0 ]; then
        wait -n
        gone=$? # 127: no child left, so any file still without a result ended without one
        still=()
        for i in "${run[@]}"; do
            if [ ! -f "$res_dir/$i" ] && [ "$gone" -eq 127 ]; then
                echo "run.sh: ${names[$i]} ended without a result" >&2
                echo "0 1 1 0" >"$res_dir/$i"
            fi
            if [ -f "$res_dir/$i" ]; then
                [ "${alone[$i]}" -eq 1 ] && solo_on=0
            else
                still+=("$i")
            fi
        done
        run=("${still[@]}")
    fi
    while [ "$shown" -lt "$count" ] && [ -f "$res_dir/${order[$shown]}" ]; do
        report "${order[$shown]}"
        shown=$((shown + 1))
    done
done

echo
if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
