#!/usr/bin/env bash
# Configures and builds snc into build/ (or $SNC_BUILD_DIR), installing Debian packages first when
# run as root (tools/deps.sh). Extra arguments go to cmake's configure step. SNC_BUILD_TARGETS="snc snrun"
# builds only those targets (tools/quickstart.sh: the two tools, not the test programs, in half the time).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
build=${SNC_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=${SNC_BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
targets=()
for t in ${SNC_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
