#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) and runs its harness, which fails each allocation in turn.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" || fail "it does not compile (read the first error above)"
out=$("$WORK/prog") || fail "$out"
[ "$out" = ok ] || fail "it printed '$out', expected 'ok'"
grep -q "goto" "$FILE" || fail "it passes, but write it with goto cleanup, as chapter 8 shows"
echo "passed: 08-goto-cleanup"
