#!/bin/sh
# Installs the library into a temporary prefix and builds examples/c/readme_expr.c against it twice, as a
# user would: with pkg-config, and with CMake's find_package(micrograd). Each program must print
# micrograd's README numbers. Usage: install_test.sh BUILD_DIR SOURCE_DIR C_COMPILER
set -eu
build=$1 src=$2 cc=$3
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name micrograd.pc)
libdir=$(dirname "$(dirname "$pc")")
check() { # the program prints micrograd's README expression
    out=$("$@")
    echo "$out" | grep -q "24.7041" && echo "$out" | grep -q "138.8338" && echo "$out" | grep -q "645.5773" || {
        echo "unexpected output from $*: $out" >&2
        exit 1
    }
}

# pkg-config, the shared library found at run time through LD_LIBRARY_PATH
# shellcheck disable=SC2046 # the flags are words
"$cc" "$src/examples/c/readme_expr.c" -o "$prefix/readme_pc" $(PKG_CONFIG_PATH="$(dirname "$pc")" pkg-config --cflags --libs micrograd)
LD_LIBRARY_PATH="$libdir" check "$prefix/readme_pc"

# CMake's find_package, shared and static
cmake -S "$src/tests/c/consumer" -B "$prefix/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DEXAMPLE="$src/examples/c/readme_expr.c" >/dev/null
cmake --build "$prefix/consumer" >/dev/null
LD_LIBRARY_PATH="$libdir" check "$prefix/consumer/readme_expr"
check "$prefix/consumer/readme_expr_static"
echo "installed library: pkg-config and find_package(micrograd) builds print micrograd's numbers"
