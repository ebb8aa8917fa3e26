#!/bin/sh
# check-format.sh: every C file in the repository is as `make fmt` (clang-format with
# .clang-format) leaves it. Prints one "check-format: N passed, M failed" line for tests/run.sh
# (one test per file); a file that would change is named with clang-format's first complaints.
cd "$(dirname "$0")/.." || exit 2
files=$(git ls-files '*.c' '*.h')
total=$(echo "$files" | wc -l)
out=$(clang-format --dry-run $files 2>&1)
bad=$(printf "%s\n" "$out" | grep -oE '^[^:]+\.[ch]:[0-9]+:[0-9]+: (warning|error)' | cut -d: -f1 | sort -u)
fail=$(echo "$bad" | grep -c .)
for f in $bad; do
    echo "not formatted (run make fmt): $f" >&2
done
[ "$fail" -gt 0 ] && printf "%s\n" "$out" | head -n 20 >&2
echo "check-format: $((total - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
