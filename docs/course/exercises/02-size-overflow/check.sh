#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) and checks that array_bytes() refuses overflowing sizes.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" || fail "it does not compile (read the first error above)"
out=$("$WORK/prog") || fail "array_bytes() accepted a size that does not fit in size_t (it printed: $out)"
[ "$out" = ok ] || fail "it printed '$out', expected 'ok'"
grep -q "__builtin_mul_overflow" "$FILE" || fail "use __builtin_mul_overflow, as src/internal.h does"
echo "passed: 02-size-overflow"
