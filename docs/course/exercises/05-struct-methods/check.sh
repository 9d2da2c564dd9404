#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) and checks the statistics it prints.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" || fail "it does not compile (read the first error above)"
out=$("$WORK/prog") || fail "the program exited with status $? (stats_mean of no numbers must be NaN)"
expected="n = 4, mean = 2.5, range = 3"
[ "$out" = "$expected" ] || fail "it printed '$out', expected '$expected'"
echo "passed: 05-struct-methods"
