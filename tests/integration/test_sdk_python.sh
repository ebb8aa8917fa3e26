#!/usr/bin/env bash
# test_sdk_python.sh: the Python SDK's unittest suite (sdk/python/tests: codecs without Redis,
# the worker against a private redis-server). Ends with "test_sdk_python: N passed, M failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
export PYTHONDONTWRITEBYTECODE=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
PYTHONPATH=sdk/python${PYTHONPATH:+:$PYTHONPATH} timeout -k 5 170 \
    /usr/bin/python3 -m unittest discover -s sdk/python/tests -v >"$log" 2>&1
rc=$?
cat "$log"
ran=$(sed -nE 's/^Ran ([0-9]+) tests? in .*/\1/p' "$log" | tail -n 1)
ran=${ran:-0}
failed=0
summary=$(grep -E '^(OK|FAILED)( \(|$)' "$log" | tail -n 1)
for kind in failures errors unexpected\ successes; do
    n=$(sed -nE "s/.*[(, ]${kind}=([0-9]+).*/\1/p" <<<"$summary")
    failed=$((failed + ${n:-0}))
done
skipped=$(sed -nE 's/.*[(, ]skipped=([0-9]+).*/\1/p' <<<"$summary")
passed=$((ran - failed - ${skipped:-0}))
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1 # crashed, timed out or could not import: count it as one failure
fi
[ "$passed" -lt 0 ] && passed=0
echo "test_sdk_python: $passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
