#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) with warnings as errors and checks the areas.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" || fail "it does not compile: read the compiler's message above (which case is missing?)"
grep -q "default:" "$FILE" && fail "no default: the compiler can only name a missing case in a switch without one"
out=$("$WORK/prog") || fail "the program exited with status $?"
expected="areas: 12.5664 6 3"
[ "$out" = "$expected" ] || fail "it printed '$out', expected '$expected'"
echo "passed: 06-switch"
