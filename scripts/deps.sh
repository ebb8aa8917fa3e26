#!/bin/sh
# deps.sh (`make deps`): installs what sioc needs to build and test, only when it is missing:
# Debian packages via apt-get (as root), and the npm test peers via `npm ci` from the committed
# package-lock.json. Idempotent; silent and fast when everything is present.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential pkg-config clang libclang-rt-14-dev clang-format clang-tidy cppcheck
libevent-dev libhiredis-dev libmsgpack-dev libssl-dev zlib1g-dev
redis-server nodejs npm chromium
python3 python3-socketio python3-requests python3-websocket python3-redis python3-msgpack
curl ca-certificates procps psmisc"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    # Node and npm may come from outside Debian (e.g. a NodeSource or nvm install): accept them.
    if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        missing=$(echo "$missing" | tr ' ' '\n' | grep -vxE 'nodejs|npm' | tr '\n' ' ')
    fi
fi
missing=$(echo "$missing" | tr -s ' ' | sed 's/^ //; s/ $//')
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing Debian packages: $missing (run 'make deps' as root)" >&2
        exit 1
    fi
    echo "deps: installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm test peers: reinstall only when the lock file changed since the last install.
if [ -f package-lock.json ]; then
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "deps: npm ci"
        npm ci --no-audit --no-fund --loglevel=error >/dev/null
    fi
fi
