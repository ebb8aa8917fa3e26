#!/usr/bin/env bash
# test_make_run.sh: issue 11's `make run`, as a user runs it: `make run` in the background on free
# ports (SIOC_RUN_PORTS, SIOC_RUN_BROKER_PORT, SIOC_RUN_REDIS_PORT): it prints each URL, the demo
# page and socket.io.js answer on both gateways, the broker lists both nodes, the demo chats in
# headless Chromium across the two gateways; Ctrl-C (SIGINT to make's process group) and SIGTERM
# to make itself both stop every process it started and leave no file outside build/; a port in
# use and an unreachable SIOC_REDIS_URL end it at once with a message naming them.
# Prints "test_make_run: N passed, M failed".
# test-run: alone (tests/run.sh): it checks that no file appeared anywhere in the work tree
# outside build/ (git status --ignored), which other test files (pip, Python) do write.
set -u
cd "$(dirname "$0")/../.." || exit 2
unset MAKEFLAGS MAKELEVEL MFLAGS # a make of its own, as a user's shell would start it
pass=0
fail=0
check() { # check NAME CONDITION-STATUS
    if [ "$2" -eq 0 ]; then
        pass=$((pass + 1))
        echo "ok   $1"
    else
        fail=$((fail + 1))
        echo "FAIL $1"
    fi
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
http_get() { # http_get PORT PATH -> body; status in $HTTP_STATUS
    local out
    out=$(curl -s -m 2 -w '\n%{http_code}' "http://127.0.0.1:$1$2" 2>/dev/null)
    HTTP_STATUS=${out##*$'\n'}
    printf '%s' "${out%$'\n'*}"
}
descendants() { # every process below $1
    local kids k
    kids=$(pgrep -P "$1" 2>/dev/null)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}
# files outside build/ that git does not track (node_modules is the dependencies' own place)
stray_files() { git status --porcelain --ignored --untracked-files=all | grep -vE ' (build|node_modules)/' | sort; }

gw1=$(free_port)
gw2=$(free_port)
bk=$(free_port)
rp=$(free_port)
log=$(mktemp)
before=$(stray_files)
make_pid=""
started=""

# launch: `make run` as a job of its own process group (so SIGINT is not ignored in it: a
# non-interactive shell starts background jobs with SIGINT ignored), output in $log.
launch() {
    : >"$log"
    set -m
    SIOC_RUN_PORTS="$gw1,$gw2" SIOC_RUN_BROKER_PORT=$bk SIOC_RUN_REDIS_PORT=$rp SIOC_REDIS_URL= \
        make --no-print-directory run >"$log" 2>&1 &
    make_pid=$!
    set +m
    local i
    for i in $(seq 1 300); do # make deps-run + make release are no-ops after make test's build
        grep -q '^\[run\] sioc local cluster is up' "$log" && break
        kill -0 "$make_pid" 2>/dev/null || break
        sleep 0.1
    done
    started=$(descendants "$make_pid" | sort -u | tr '\n' ' ')
}

# stop_and_check HOW SIGNAL TARGET: send SIGNAL to TARGET, then check that make ends, every
# process it started is gone, the ports are free and no file was left outside build/.
stop_and_check() {
    local how=$1 i stopped=1 left="" p
    kill "-$2" -- "$3" 2>/dev/null
    for i in $(seq 1 200); do
        if ! kill -0 "$make_pid" 2>/dev/null; then
            stopped=0
            break
        fi
        sleep 0.1
    done
    check "$how: make ends within 20 s" "$stopped"
    wait "$make_pid" 2>/dev/null
    for p in $started; do
        kill -0 "$p" 2>/dev/null && left="$left $p($(cat /proc/"$p"/comm 2>/dev/null))"
    done
    check "$how: no process left behind${left:+:$left}" "$([ -z "$left" ]; echo $?)"
    http_get "$gw1" /healthz >/dev/null
    local h1=$HTTP_STATUS
    http_get "$bk" /healthz >/dev/null
    check "$how: ports released" "$([ "$h1" = 000 ] && [ "$HTTP_STATUS" = 000 ]; echo $?)"
    grep -q '^\[run\] stopped' "$log"
    check "$how: reports the stop" $?
    local after
    after=$(stray_files)
    check "$how: no file left outside build/" "$([ "$before" = "$after" ]; echo $?)"
    [ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")
    for p in $started; do kill -KILL "$p" 2>/dev/null; done # strays, if a check failed
}

# ---- what make run installs and builds: only what running needs ----
pkgs=$(scripts/deps.sh run --list)
[[ $pkgs == *redis-server* && $pkgs == *python3-redis* && $pkgs == *'npm ci --omit=dev'* ]] &&
    ! grep -qwE 'clang|clang-tidy|cppcheck|chromium|libclang-rt-14-dev|haproxy' <<<"$pkgs"
check "make run installs only the runtime packages and npm dependencies" $?
builds=$(make -n -B release 2>/dev/null)
[[ $builds == *sioc-gateway* && $builds == *sioc-broker* ]] && ! grep -qE 'asan|fuzz|-fsanitize' <<<"$builds"
check "make run builds only the release binaries" $?

# ---- run 1: everything answers, the demo chats, Ctrl-C stops it ----
launch
grep -q '^\[run\] sioc local cluster is up' "$log"
check "make run starts the cluster and says so" $?
grep -q "demo chat  http://127.0.0.1:$gw1/" "$log" && grep -q "demo chat  http://127.0.0.1:$gw2/" "$log" &&
    grep -q "broker     http://127.0.0.1:$bk/" "$log"
check "prints each URL and what it is" $?
prefixed=1
for _ in $(seq 1 50); do # the prefixers write as the processes log: bounded wait
    grep -q '^\[gw1\] ' "$log" && grep -q '^\[gw2\] ' "$log" && grep -q '^\[broker\] ' "$log" &&
        grep -q '^\[worker\] ' "$log" && prefixed=0 && break
    sleep 0.1
done
check "log lines are prefixed with the process name" $prefixed
[ "$(echo "$started" | wc -w)" -ge 5 ]
check "make started redis, broker, worker and two gateways ($(echo "$started" | wc -w) processes)" $?
ok=0
body=$(mktemp)
for port in "$gw1" "$gw2"; do
    status=$(curl -s -m 2 -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/")
    [ "$status" = 200 ] && grep -q '/socket.io/socket.io.js' "$body" || ok=1
    status=$(curl -s -m 2 -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/socket.io/socket.io.js")
    [ "$status" = 200 ] && grep -q 'Socket.IO v4' "$body" || ok=1
done
rm -f "$body"
check "both gateways serve the demo page and socket.io.js" $ok
nodes=$(http_get "$bk" /v1/nodes)
[[ $nodes == *'"node":"gw1","alive":true'* && $nodes == *'"node":"gw2","alive":true'* ]]
check "the broker lists gw1 and gw2 alive" $?
node tests/integration/demo_chat_check.mjs "http://127.0.0.1:$gw1/" "http://127.0.0.1:$gw2/" 2>&1 | sed 's/^/  /'
check "the demo page chats across the two gateways in Chromium" "${PIPESTATUS[0]}"
stop_and_check "Ctrl-C (SIGINT to the process group)" INT "-$make_pid"

# ---- run 2: SIGTERM to make alone ----
launch
grep -q '^\[run\] sioc local cluster is up' "$log"
check "make run starts again" $?
stop_and_check "SIGTERM to make" TERM "$make_pid"

# ---- start-up errors end it at once, naming the problem ----
/usr/bin/python3 -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(30)' "$gw2" &
holder=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$gw2") 2>/dev/null && break; sleep 0.1; done
out=$(SIOC_RUN_PORTS="$gw1,$gw2" SIOC_RUN_BROKER_PORT=$bk SIOC_RUN_REDIS_PORT=$rp timeout 60 make --no-print-directory run 2>&1)
rc=$?
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [[ $out == *"port $gw2 (gateway 2) is already in use"* ]] &&
    [[ $out != *'[gw1]'* ]]
check "a port in use ends make run at once, naming the port" $?
out=$(SIOC_RUN_PORTS="$gw1,$gw2" SIOC_RUN_BROKER_PORT=$bk SIOC_REDIS_URL="redis://127.0.0.1:$rp" timeout 60 make --no-print-directory run 2>&1)
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [[ $out == *"SIOC_REDIS_URL=redis://127.0.0.1:$rp is unreachable"* ]]
check "an unreachable SIOC_REDIS_URL ends make run at once, naming it" $?

if [ "$fail" -gt 0 ]; then
    echo "--- last make run output"
    tail -n 40 "$log"
fi
rm -f "$log"
echo "test_make_run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
