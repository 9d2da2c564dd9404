#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) and checks that it computes f and frees every value.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" || fail "it does not compile (read the first error above)"
out=$("$WORK/prog") || fail "the program exited with status $?"
expected=$'f = 30\nalive at the end: 0'
[ "$out" = "$expected" ] || fail "it printed:
$out
expected:
$expected"
echo "passed: 04-leak"
