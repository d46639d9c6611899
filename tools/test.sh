#!/usr/bin/env bash
# Builds snc and runs the whole test suite (ctest). Used by the README and by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
build=${SNC_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
