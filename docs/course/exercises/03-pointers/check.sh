#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) and checks what swap() and sum() do.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" || fail "it does not compile (read the first error above)"
out=$("$WORK/prog") || fail "the program exited with status $?"
expected=$'swapped: 2 1\nsum: 10'
[ "$out" = "$expected" ] || fail "it printed:
$out
expected:
$expected"
echo "passed: 03-pointers"
