#!/usr/bin/env bash
# The main job on the bundled default: build snc, print the siamese model's graph summary, then run
# the seed's study (4 switch settings x 20 rounds x 25 epochs) and print its table and output folder.
# Extra arguments go to `snrun study` (e.g. --rounds 5, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
SNC_BUILD_TARGETS="snc snrun" bash tools/build.sh # the tools only; tools/test.sh builds the tests
build=${SNC_BUILD_DIR:-build}
"$build"/snc check models/siamese.yaml | tail -n 12
echo
exec "$build"/snrun study models/siamese.yaml --rounds 20 "$@"
