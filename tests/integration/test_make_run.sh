#!/usr/bin/env bash
# test_make_run.sh: issue 5's `make run` check: scripts/run-local.sh started in the background on
# free ports (SIOC_RUN_PORTS, SIOC_RUN_BROKER_PORT, SIOC_RUN_REDIS_PORT), both gateways answer
# /readyz, the broker's /v1/nodes lists both, and SIGINT stops every process it started.
# Prints "test_make_run: N passed, M failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
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

gw1=$(free_port)
gw2=$(free_port)
bk=$(free_port)
rp=$(free_port)
log=$(mktemp)
# Job control: the launcher gets its own process group, so SIGINT is not ignored in it (a
# non-interactive shell starts background jobs with SIGINT ignored).
set -m
SIOC_RUN_PORTS="$gw1,$gw2" SIOC_RUN_BROKER_PORT=$bk SIOC_RUN_REDIS_PORT=$rp SIOC_REDIS_URL= \
    scripts/run-local.sh >"$log" 2>&1 &
launcher=$!
set +m

ready=1
for _ in $(seq 1 100); do
    r1=$(http_get "$gw1" /readyz; echo " $HTTP_STATUS")
    r2=$(http_get "$gw2" /readyz; echo " $HTTP_STATUS")
    nodes=$(http_get "$bk" /v1/nodes)
    if [[ $r1 == *" 200" && $r2 == *" 200" && $nodes == *'"node":"gw1","alive":true'* && $nodes == *'"node":"gw2","alive":true'* ]]; then
        ready=0
        break
    fi
    sleep 0.2
done
check "both gateways answer /readyz" "$([[ $r1 == *" 200" && $r2 == *" 200" ]]; echo $?)"
check "/v1/nodes lists gw1 and gw2 alive" "$ready"
grep -q '^\[run\]   broker' "$log"
check "prints what runs where" $?
grep -q '^\[gw1\] ' "$log" && grep -q '^\[gw2\] ' "$log" && grep -q '^\[broker\] ' "$log"
check "log lines are prefixed with the process name" $?

# every process the launcher started (its descendants), before stopping it
descendants() {
    local kids
    kids=$(pgrep -P "$1" 2>/dev/null)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}
started=$(descendants "$launcher" | sort -u | tr '\n' ' ')
[ -n "$started" ] && [ "$(echo "$started" | wc -w)" -ge 4 ]
check "launcher started redis, broker and two gateways ($(echo "$started" | wc -w) processes)" $?

kill -INT "$launcher"
stopped=1
for _ in $(seq 1 150); do
    if ! kill -0 "$launcher" 2>/dev/null; then
        stopped=0
        break
    fi
    sleep 0.1
done
check "SIGINT stops the launcher" "$stopped"
wait "$launcher" 2>/dev/null
check "launcher exits 0" $?
left=""
for p in $started; do
    kill -0 "$p" 2>/dev/null && left="$left $p($(cat /proc/"$p"/comm 2>/dev/null))"
done
check "no process left behind${left:+:$left}" "$([ -z "$left" ]; echo $?)"
http_get "$gw1" /healthz >/dev/null
check "ports released" "$([ "$HTTP_STATUS" = "000" ]; echo $?)"
grep -q '^\[run\] stopped' "$log"
check "reports the stop" $?
if [ "$fail" -gt 0 ]; then
    echo "--- launcher output"
    tail -n 40 "$log"
fi
# kill anything still there, by pid, so a failure leaves no strays
for p in $started; do kill -KILL "$p" 2>/dev/null; done
rm -f "$log"
echo "test_make_run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
