#!/bin/sh
# A tiny test runner: runs every tests/test_*.sh, prints PASS or FAIL per test and exits
# non-zero when any failed. Used by scripts/examples/test_suite.rhai.
status=0
for t in tests/test_*.sh; do
    name=$(basename "$t" .sh)
    if out=$(sh "$t" 2>&1); then
        echo "PASS $name"
    else
        echo "FAIL $name"
        printf '%s\n' "$out" | sed "s/^/  $name: /"
        status=1
    fi
done
exit $status
