#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) against the library and checks what it prints.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" || fail "it does not compile (read the first error above)"
out=$("$WORK/prog") || fail "the program exited with status $? (a value left alive?)"
expected=$'c = 7\ngrad of a = 1'
[ "$out" = "$expected" ] || fail "it printed:
$out
expected:
$expected"
echo "passed: 01-first-program"
