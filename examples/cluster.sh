#!/usr/bin/env bash
# cluster.sh NAMESPACES [WS_ROUTES]: a local sioc cluster for the examples, from the release build
# (make release): a private redis-server on 6390 (unless SIOC_REDIS_URL is set), sioc-broker on
# 127.0.0.1:8081, and two gateways on 127.0.0.1:3000 and :3001 serving NAMESPACES (a comma list)
# with auth backend (the workers answer connects), upstream-shards $SIOC_UPSTREAM_SHARDS [2],
# CORS * and /socket.io/socket.io.js. No worker: start the example's processes next to it with the
# same SIOC_REDIS_URL and SIOC_UPSTREAM_SHARDS. Ctrl-C stops everything (by pid).
# WS_ROUTES: the gateways' plain WebSocket routes (--ws-routes PATH=NAMESPACE,...), e.g. for
# examples/gevent_ws_private_chat: examples/cluster.sh /ws '/ws/{user}=/ws'
#   examples/cluster.sh /,/test,/socketTest
# Environment: SIOC_REDIS_URL, SIOC_UPSTREAM_SHARDS [2], SIOC_RUN_PORTS [3000,3001],
# SIOC_RUN_REDIS_PORT [6390], SIOC_RUN_BROKER_PORT [8081].
set -u
cd "$(dirname "$0")/.." || exit 2
NAMESPACES=${1:-/}
WS_ROUTES=${2:-}
SHARDS=${SIOC_UPSTREAM_SHARDS:-2}
IFS=, read -r GW1 GW2 <<<"${SIOC_RUN_PORTS:-3000,3001}"
CLIENT_JS=node_modules/socket.io-client/dist/socket.io.min.js
for f in build/sioc-gateway build/sioc-broker; do
    [ -x "$f" ] || { echo "cluster: $f is missing: run 'make deps && make release'" >&2; exit 2; }
done
[ -f "$CLIENT_JS" ] || { echo "cluster: $CLIENT_JS is missing: run 'make deps'" >&2; exit 2; }

pids=()
stop() {
    trap '' INT TERM
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do # gateways (they drain), broker, then redis
        kill -TERM "${pids[$i]}" 2>/dev/null
        wait "${pids[$i]}" 2>/dev/null
    done
    exit 0
}
trap stop INT TERM

if [ -n "${SIOC_REDIS_URL:-}" ]; then
    REDIS=$SIOC_REDIS_URL
else
    port=${SIOC_RUN_REDIS_PORT:-6390}
    mkdir -p build/run/examples-redis
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir build/run/examples-redis --loglevel warning &
    pids+=($!)
    REDIS=redis://127.0.0.1:$port
    sleep 0.3
fi
build/sioc-broker --redis "$REDIS" --listen "127.0.0.1:${SIOC_RUN_BROKER_PORT:-8081}" --log-level warn &
pids+=($!)
ws=()
[ -n "$WS_ROUTES" ] && ws=(--ws-routes "$WS_ROUTES")
for gw in "gw1:$GW1" "gw2:$GW2"; do
    build/sioc-gateway --redis "$REDIS" --namespaces "$NAMESPACES" "${ws[@]}" --auth backend \
        --upstream-shards "$SHARDS" --cors-origin '*' --client-js "$CLIENT_JS" \
        --node-id "${gw%%:*}" --listen "127.0.0.1:${gw##*:}" --log-level warn &
    pids+=($!)
done
cat <<EOF
[cluster] gateways http://127.0.0.1:$GW1 and http://127.0.0.1:$GW2, namespaces $NAMESPACES, auth backend${WS_ROUTES:+, ws-routes $WS_ROUTES}
[cluster] workers:  SIOC_REDIS_URL=$REDIS SIOC_UPSTREAM_SHARDS=$SHARDS PYTHONPATH=sdk/python /usr/bin/python3 examples/<example>/app.py
[cluster] Ctrl-C stops everything
EOF
wait
