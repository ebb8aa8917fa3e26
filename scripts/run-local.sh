#!/usr/bin/env bash
# run-local.sh: `make run`'s launcher (issue 11): a private redis-server (unless SIOC_REDIS_URL is
# set), sioc-broker, the demo chat worker (deploy/demo/chat_worker.py, written with sdk/python)
# and two sioc-gateways serving the demo page and socket.io.js, from the release build. Each log
# line is prefixed with its process name. Ctrl-C (SIGINT), SIGTERM or SIGHUP, to this script or to
# the `make` that runs it, stops everything by pid: gateways first (they drain), then the worker,
# the broker and Redis. Builds nothing; writes only under build/run/.
# Environment: SIOC_REDIS_URL (redis:// or rediss://; with rediss:// the SIOC_REDIS_TLS_CA, _CERT,
# _KEY, _SERVER_NAME, _INSECURE variables reach every process as they are), SIOC_RUN_HOST
# [127.0.0.1], SIOC_RUN_PORTS [3000,3001], SIOC_RUN_BROKER_PORT [8081], SIOC_RUN_REDIS_PORT [first
# free from 6390].
set -u
cd "$(dirname "$0")/.." || exit 2

HOST=${SIOC_RUN_HOST:-127.0.0.1}
IFS=, read -r GW1_PORT GW2_PORT <<<"${SIOC_RUN_PORTS:-3000,3001}"
BROKER_PORT=${SIOC_RUN_BROKER_PORT:-8081}
NAMESPACES=/,/chat # what the demo worker serves
RUN_DIR=build/run
GATEWAY=build/sioc-gateway
BROKER=build/sioc-broker
PYTHON=/usr/bin/python3 # Debian's, which sees python3-redis and python3-msgpack
WORKER=deploy/demo/chat_worker.py
DEMO=deploy/demo/public
CLIENT_JS=node_modules/socket.io-client/dist/socket.io.min.js

fail() { # fail MESSAGE: a start-up problem the user must fix; nothing was started yet
    echo "run: $*" >&2
    exit 2
}
for f in "$GATEWAY" "$BROKER"; do
    [ -x "$f" ] || fail "$f is missing: run 'make release' (make run does it for you)"
done
[ -f "$CLIENT_JS" ] || fail "$CLIENT_JS is missing: run 'make deps-run' (npm ci --omit=dev)"
[ -x "$PYTHON" ] || fail "$PYTHON is missing: apt-get install python3 python3-redis python3-msgpack"

# A port that something already listens on ends the run before anything starts.
port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
probe_host=$HOST
[ "$HOST" = 0.0.0.0 ] && probe_host=127.0.0.1
for spec in "gateway 1:$probe_host:$GW1_PORT:SIOC_RUN_PORTS" "gateway 2:$probe_host:$GW2_PORT:SIOC_RUN_PORTS" \
    "broker:127.0.0.1:$BROKER_PORT:SIOC_RUN_BROKER_PORT"; do
    IFS=: read -r what h p var <<<"$spec"
    if port_busy "$h" "$p"; then
        fail "port $p ($what) is already in use on $h: stop what listens there (ss -ltnp 'sport = :$p') or choose other ports, e.g. $var=..."
    fi
done

# An external Redis must answer before anything starts.
if [ -n "${SIOC_REDIS_URL:-}" ]; then
    tls_args=()
    case "$SIOC_REDIS_URL" in
    redis://*) ;;
    rediss://*) # the processes read the SIOC_REDIS_TLS_* variables themselves; redis-cli needs flags
        tls_args=(--tls)
        [ -n "${SIOC_REDIS_TLS_CA:-}" ] && tls_args+=(--cacert "$SIOC_REDIS_TLS_CA")
        [ -n "${SIOC_REDIS_TLS_CERT:-}" ] && tls_args+=(--cert "$SIOC_REDIS_TLS_CERT" --key "${SIOC_REDIS_TLS_KEY:-}")
        [ -n "${SIOC_REDIS_TLS_SERVER_NAME:-}" ] && tls_args+=(--sni "$SIOC_REDIS_TLS_SERVER_NAME")
        case "${SIOC_REDIS_TLS_INSECURE:-no}" in yes | true | on | 1) tls_args+=(--insecure) ;; esac
        ;;
    *) fail "SIOC_REDIS_URL=$SIOC_REDIS_URL: make run takes a redis:// or rediss:// URL" ;;
    esac
    answer=$(timeout 3 redis-cli -u "$SIOC_REDIS_URL" "${tls_args[@]}" --no-auth-warning PING 2>&1)
    [ "$answer" = PONG ] || fail "SIOC_REDIS_URL=$SIOC_REDIS_URL is unreachable (${answer:-no answer in 3 s}): start that Redis, fix the URL, or unset SIOC_REDIS_URL to use a private redis-server"
fi

mkdir -p "$RUN_DIR/redis"
export PYTHONPYCACHEPREFIX=$PWD/$RUN_DIR/pycache # the worker's .pyc files stay under build/
export PYTHONUNBUFFERED=1

pids=()      # every process started, in start order
names=()
prefixers=() # the log prefixers' pids

# start NAME CMD...: runs CMD in its own session (so a terminal Ctrl-C reaches only this script,
# which then stops the processes in order), its output prefixed with [NAME]. The prefixer ignores
# SIGINT so the drain's last lines still get through; it ends when the process closes its output.
start() {
    local name=$1 fd
    shift
    exec {fd}> >(trap '' INT TERM; exec sed -u "s/^/[$name] /")
    prefixers+=($!)
    setsid "$@" >&"$fd" 2>&1 &
    pids+=($!)
    names+=("$name")
    exec {fd}>&- # only the process holds the pipe now: the prefixer ends with it
}

stopping=0
stop_all() {
    [ "$stopping" = 1 ] && return
    stopping=1
    echo "[run] stopping"
    local i n=${#pids[@]}
    # reverse start order: gateways, worker, broker, then redis (the gateways flush into it while draining)
    for ((i = n - 1; i >= 0; i--)); do
        local pid=${pids[$i]}
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null
        local t=0
        while kill -0 "$pid" 2>/dev/null && [ $t -lt 150 ]; do
            sleep 0.1
            t=$((t + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "[run] ${names[$i]} (pid $pid) did not stop in 15 s; killing it"
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    for pid in "${prefixers[@]}"; do # each ends once its process closed its output
        local t=0
        while kill -0 "$pid" 2>/dev/null && [ $t -lt 20 ]; do
            sleep 0.1
            t=$((t + 1))
        done
        kill -KILL "$pid" 2>/dev/null
    done
    wait
    echo "[run] stopped"
}
trap 'stop_all; exit 0' INT TERM HUP

# wait_http NAME URL: until URL answers 200 (10 s at most), else stop everything.
wait_http() {
    local i
    for i in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$2" 2>/dev/null)" = 200 ] && return 0
        [ "$stopping" = 1 ] && exit 0
        sleep 0.1
    done
    echo "[run] $1 did not answer $2 in 10 s; stopping" >&2
    stop_all
    exit 1
}

if [ -n "${SIOC_REDIS_URL:-}" ]; then
    REDIS_URL=$SIOC_REDIS_URL
else
    REDIS_PORT=${SIOC_RUN_REDIS_PORT:-}
    if [ -z "$REDIS_PORT" ]; then
        for p in $(seq 6390 6410); do
            port_busy 127.0.0.1 "$p" || {
                REDIS_PORT=$p
                break
            }
        done
        [ -n "$REDIS_PORT" ] || fail "no free port for redis in 6390-6410: set SIOC_RUN_REDIS_PORT or SIOC_REDIS_URL"
    elif port_busy 127.0.0.1 "$REDIS_PORT"; then
        fail "port $REDIS_PORT (SIOC_RUN_REDIS_PORT) is already in use: choose another or unset it"
    fi
    start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$RUN_DIR/redis" --loglevel warning
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT
    for _ in $(seq 1 50); do
        port_busy 127.0.0.1 "$REDIS_PORT" && break
        sleep 0.1
    done
    port_busy 127.0.0.1 "$REDIS_PORT" || {
        echo "[run] redis-server did not start on port $REDIS_PORT" >&2
        stop_all
        exit 1
    }
fi

start broker "$BROKER" --redis "$REDIS_URL" --listen "127.0.0.1:$BROKER_PORT"
start worker "$PYTHON" "$WORKER" --redis "$REDIS_URL"
gateway_args=(--redis "$REDIS_URL" --namespaces "$NAMESPACES" --auth backend
    --static "$DEMO" --client-js "$CLIENT_JS")
start gw1 "$GATEWAY" "${gateway_args[@]}" --node-id gw1 --listen "$HOST:$GW1_PORT"
start gw2 "$GATEWAY" "${gateway_args[@]}" --node-id gw2 --listen "$HOST:$GW2_PORT"
# The demo worker is ready once it holds the lease of the /chat stream (sdk/python leases.py).
worker_lease="sioc:lease:sioc-chat_worker:sioc:up:/chat:0"
for _ in $(seq 1 100); do
    [ "$(timeout 2 redis-cli -u "$REDIS_URL" --no-auth-warning EXISTS "$worker_lease" 2>/dev/null)" = 1 ] && break
    [ "$stopping" = 1 ] && exit 0
    sleep 0.1
done
wait_http broker "http://127.0.0.1:$BROKER_PORT/readyz"
wait_http gw1 "http://$probe_host:$GW1_PORT/readyz"
wait_http gw2 "http://$probe_host:$GW2_PORT/readyz"

cat <<EOF
[run] sioc local cluster is up (Ctrl-C stops everything)
[run]   demo chat  http://$probe_host:$GW1_PORT/   (gateway gw1)   open one tab on each gateway
[run]   demo chat  http://$probe_host:$GW2_PORT/   (gateway gw2)   add ?transport=polling for long-polling only
[run]   socket.io  http://$probe_host:$GW1_PORT/socket.io/, http://$probe_host:$GW2_PORT/socket.io/   namespaces $NAMESPACES, auth backend (the demo worker answers connects)
[run]   broker     http://127.0.0.1:$BROKER_PORT/v1/nodes   HTTP API (docs/api.md), e.g. curl -d '{"nsp":"/chat","event":"said","args":[{"room":"lobby","name":"api","text":"hi"}],"rooms":["lobby"]}' 127.0.0.1:$BROKER_PORT/v1/emit
[run]   metrics    http://$probe_host:$GW1_PORT/metrics, /healthz, /readyz on every gateway
[run]   redis      $REDIS_URL$([ -n "${SIOC_REDIS_URL:-}" ] && echo " (SIOC_REDIS_URL)" || echo " (private, data in $RUN_DIR/redis)")
[run]   worker     $WORKER (pid ${pids[-3]}): the demo's handlers
EOF

# Stay until a signal arrives or a process dies (then stop the rest: a half cluster misleads).
while [ "$stopping" = 0 ]; do
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "[run] ${names[$i]} (pid ${pids[$i]}) exited; stopping the others"
            stop_all
            exit 1
        fi
    done
    sleep 0.5
done
