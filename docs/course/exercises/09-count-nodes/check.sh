#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) and runs it with a 256 KiB stack, where recursion
# 200,000 deep cannot fit.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" || fail "it does not compile (read the first error above)"
set +e
out=$(ulimit -s 256 && "$WORK/prog" 2>&1)
status=$?
set -e
[ $status -lt 128 ] || fail "it crashed (signal $((status - 128))): a recursive walk overflows the stack
$out"
[ $status -eq 0 ] || fail "wrong count, or marks or values left behind:
$out"
echo "$out"
echo "passed: 09-count-nodes"
