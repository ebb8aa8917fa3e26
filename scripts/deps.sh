#!/bin/sh
# deps.sh [run|test] (`make deps-run` / `make deps`): installs what sioc needs, only when it is
# missing: Debian packages via apt-get (as root) and npm packages via `npm ci` from the committed
# package-lock.json. `run` is what `make run` needs (compilers and C libraries for the release
# build, redis-server, Python for the demo worker, the npm package that provides socket.io.js);
# `test` (the default) adds the test peers, the sanitizer/fuzz toolchain and the validators of the
# deployment files. Idempotent; silent and fast when everything is present.
# `deps.sh MODE --list` prints MODE's Debian packages and npm install command, and installs nothing.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-test}
list=${2:-}

RUN_PACKAGES="build-essential pkg-config libevent-dev libhiredis-dev libssl-dev zlib1g-dev
redis-server nodejs npm python3 python3-redis python3-msgpack procps curl"
TEST_PACKAGES="clang libclang-rt-14-dev clang-format clang-tidy cppcheck libmsgpack-dev chromium
python3-socketio python3-requests python3-websocket python3-yaml python3-flask python3-flask-socketio python3-eventlet
haproxy docker-compose nginx-light ca-certificates psmisc openssl"
case "$mode" in
run) PACKAGES=$RUN_PACKAGES ;;
test) PACKAGES="$RUN_PACKAGES $TEST_PACKAGES" ;;
*)
    echo "usage: deps.sh [run|test]" >&2
    exit 2
    ;;
esac

if [ "$list" = --list ]; then
    echo "debian:" $PACKAGES
    [ "$mode" = run ] && echo "npm: npm ci --omit=dev" || echo "npm: npm ci"
    exit 0
fi

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
        echo "deps: missing Debian packages: $missing (run 'make deps' as root, or apt-get install them)" >&2
        exit 1
    fi
    echo "deps: installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm: `run` needs only the runtime dependencies (socket.io-client, for socket.io.js); `test`
# needs the dev dependencies too. A stamp per mode, newer than the lock file, means installed.
# A full install satisfies `run`; a runtime-only install never removes a full one.
full=node_modules/.sioc-npm-test
runtime=node_modules/.sioc-npm-run
fresh() { [ -f "$1" ] && [ ! package-lock.json -nt "$1" ]; }
if [ "$mode" = test ] && ! fresh "$full"; then
    echo "deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    touch "$full" "$runtime"
elif [ "$mode" = run ] && ! fresh "$full" && ! fresh "$runtime"; then
    echo "deps: npm ci --omit=dev"
    npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null
    touch "$runtime"
fi
