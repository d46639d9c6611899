#!/usr/bin/env bash
# Builds snc with AddressSanitizer + UndefinedBehaviorSanitizer (-DSNC_SANITIZE=ON) in build-asan
# (SNC_ASAN_BUILD_DIR to change it) and runs the test suite there, leaks checked (LeakSanitizer).
# The JIT'd code is not instrumented; everything else is. Used by CI (.ci/run); docs/robustness.md.
#   tools/sanitize.sh            the whole suite
#   tools/sanitize.sh -R REGEX   ctest options pass through (e.g. a subset)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SNC_ASAN_BUILD_DIR:-build-asan}
cmake -S . -B "$build" -DSNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
