#!/usr/bin/env bash
# The main job on the bundled default: build snc, then check the siamese model in all four switch
# settings of the seed study (graph, parameters, FLOPs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
build=${SNC_BUILD_DIR:-build}
"$build"/snc check models/siamese.yaml
for ws in false true; do
  for aux in false true; do
    printf '\n== weight_sharing=%s aux_loss=%s ==\n' "$ws" "$aux"
    "$build"/snc check models/siamese.yaml --set weight_sharing=$ws --set aux_loss=$aux | tail -n 8
  done
done
