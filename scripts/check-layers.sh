#!/bin/sh
# check-layers.sh: common/ stays pure (STYLE.md): no libevent or hiredis outside common/net/.
# Prints one "check-layers: 1 passed, 0 failed" style line for tests/run.sh.
cd "$(dirname "$0")/.." || exit 2
bad=$(grep -rlE '#include *<(event2/|hiredis)' common --include='*.[ch]' 2>/dev/null | grep -v '^common/net/')
if [ -n "$bad" ]; then
    echo "common/ must not include libevent/hiredis: $bad" >&2
    echo "check-layers: 0 passed, 1 failed"
    exit 1
fi
echo "check-layers: 1 passed, 0 failed"
