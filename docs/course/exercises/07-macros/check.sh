#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) and checks what its macros compute.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" -Wno-parentheses || fail "it does not compile (read the first error above)"
out=$("$WORK/prog") || fail "the program exited with status $?"
expected="SQUARE(1 + 2) = 9, 2 * MAX(3, 4) = 8"
[ "$out" = "$expected" ] || fail "it printed '$out', expected '$expected'"
echo "passed: 07-macros"
