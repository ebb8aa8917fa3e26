#!/usr/bin/env bash
# run-local.sh: `make run`'s launcher (issue 5): a private redis-server (unless SIOC_REDIS_URL is
# set), sioc-broker and two sioc-gateways from the release build, each log line prefixed with its
# process name. Ctrl-C (SIGINT) or SIGTERM stops everything by pid: gateways first (they drain),
# then the broker, then Redis. Builds nothing; writes only under build/run/.
# Environment: SIOC_REDIS_URL, SIOC_RUN_HOST [127.0.0.1], SIOC_RUN_PORTS [3000,3001],
# SIOC_RUN_BROKER_PORT [8081], SIOC_RUN_REDIS_PORT [first free from 6390], SIOC_RUN_NAMESPACES [/,/chat].
set -u
cd "$(dirname "$0")/.." || exit 2

HOST=${SIOC_RUN_HOST:-127.0.0.1}
IFS=, read -r GW1_PORT GW2_PORT <<<"${SIOC_RUN_PORTS:-3000,3001}"
BROKER_PORT=${SIOC_RUN_BROKER_PORT:-8081}
NAMESPACES=${SIOC_RUN_NAMESPACES:-/,/chat}
RUN_DIR=build/run
GATEWAY=build/sioc-gateway
BROKER=build/sioc-broker

for bin in "$GATEWAY" "$BROKER"; do
    [ -x "$bin" ] || { echo "run-local: $bin is missing; run make first" >&2; exit 2; }
done
mkdir -p "$RUN_DIR/redis"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pids=()   # every process started, in start order
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
    # reverse start order: gateways, broker, then redis (the gateways flush into it while draining)
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

if [ -n "${SIOC_REDIS_URL:-}" ]; then
    REDIS_URL=$SIOC_REDIS_URL
else
    REDIS_PORT=${SIOC_RUN_REDIS_PORT:-}
    if [ -z "$REDIS_PORT" ]; then
        for p in $(seq 6390 6410); do
            port_busy "$p" || { REDIS_PORT=$p; break; }
        done
    fi
    [ -n "$REDIS_PORT" ] || { echo "run-local: no free port for redis in 6390-6410" >&2; exit 2; }
    start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$RUN_DIR/redis" --loglevel warning
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT
    for _ in $(seq 1 50); do
        port_busy "$REDIS_PORT" && break
        sleep 0.1
    done
    port_busy "$REDIS_PORT" || { echo "run-local: redis-server did not start" >&2; stop_all; exit 1; }
fi

start broker "$BROKER" --redis "$REDIS_URL" --listen "127.0.0.1:$BROKER_PORT"
start gw1 "$GATEWAY" --redis "$REDIS_URL" --node-id gw1 --listen "$HOST:$GW1_PORT" --namespaces "$NAMESPACES"
start gw2 "$GATEWAY" --redis "$REDIS_URL" --node-id gw2 --listen "$HOST:$GW2_PORT" --namespaces "$NAMESPACES"

cat <<EOF
[run] sioc local cluster (Ctrl-C stops everything)
[run]   redis     $REDIS_URL$([ -n "${SIOC_REDIS_URL:-}" ] && echo " (SIOC_REDIS_URL)" || echo " (private, data in $RUN_DIR/redis)")
[run]   broker    http://127.0.0.1:$BROKER_PORT/v1/nodes  (pid ${pids[-3]})
[run]   gateway   http://$HOST:$GW1_PORT/socket.io/  node gw1  (pid ${pids[-2]})
[run]   gateway   http://$HOST:$GW2_PORT/socket.io/  node gw2  (pid ${pids[-1]})
[run]   namespaces $NAMESPACES
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
