#!/usr/bin/env bash
# Runs one libFuzzer harness of tests/fuzz for a given time (docs/robustness.md).
#   tools/fuzz.sh yaml 600        # the YAML front end through autodiff, 10 minutes
#   tools/fuzz.sh idx 600         # the IDX reader
#   tools/fuzz.sh ckpt 600        # the checkpoint (safetensors) reader and loader
#   tools/fuzz.sh journal 600     # the study journal (snrun study --resume)
#   tools/fuzz.sh onnx 600        # the ONNX importer (snc import) and the front end on its text
#   tools/fuzz.sh npy 600         # the .npy reader (snrun infer)
#   tools/fuzz.sh all 600         # each of them in turn
# Builds build-fuzz (clang-19, -DSNC_FUZZ=ON; SNC_FUZZ_BUILD_DIR to change it) when needed. Starts
# from the committed seeds (tests/fuzz/corpus/<harness>) plus what earlier runs found
# (build-fuzz/corpus/<harness>, not committed). Findings (crash-*, leak-*, timeout-*, oom-*) land in
# build-fuzz/artifacts/<harness>/: fix the bug, then copy the input to tests/fuzz/regressions/<harness>/
# so that test_fuzz_regress replays it in every normal test run. Runs under nice; extra arguments
# go to libFuzzer (e.g. -jobs=2).
set -euo pipefail
cd "$(dirname "$0")/.."
harness=${1:-}
secs=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
if [[ "$harness" == all ]]; then
  for h in yaml idx ckpt journal onnx npy; do bash "$0" "$h" "$secs" "$@"; done
  exit 0
fi
case "$harness" in
  yaml) max_len=8192 ;;
  idx) max_len=4096 ;;
  ckpt) max_len=4096 ;;
  journal) max_len=16384 ;;
  onnx) max_len=16384 ;;
  npy) max_len=4096 ;;
  *) echo "usage: tools/fuzz.sh yaml|idx|ckpt|journal|onnx|npy|all SECONDS [libFuzzer options]" >&2; exit 2 ;;
esac
build=${SNC_FUZZ_BUILD_DIR:-build-fuzz}
cc=${SNC_FUZZ_CC:-clang-19}
command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (tools/deps.sh --extras installs clang-19)" >&2; exit 1; }
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  # OpenMP: the libgomp snc links with gcc (clang-19 finds no OpenMP of its own without libomp-19-dev)
  gomp=$(gcc -print-file-name=libgomp.so)
  cmake -S . -B "$build" -DSNC_FUZZ=ON -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOpenMP_C_FLAGS=-fopenmp=libgomp -DOpenMP_C_LIB_NAMES=gomp -DOpenMP_gomp_LIBRARY="$gomp" >/dev/null
fi
nice -n 10 cmake --build "$build" --target "fuzz_$harness" -j"$(nproc)" >/dev/null
work="$build/corpus/$harness"
art="$build/artifacts/$harness"
mkdir -p "$work" "$art"
log="$build/fuzz_$harness.log"
echo "fuzz: $harness for ${secs} s (log $log, findings in $art/)"
set +e
# -timeout: an input taking 10 s is a hang; -rss_limit_mb: libFuzzer's default, stated
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  nice -n 10 "$build/fuzz_$harness" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
  -print_final_stats=1 -artifact_prefix="$art/" "$@" "$work" "tests/fuzz/corpus/$harness" >"$log" 2>&1
rc=$?
set -e
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
echo "fuzz: $harness: ${execs:-?} executions, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) files, exit $rc"
if [[ $rc -ne 0 ]]; then
  grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 >&2
  exit 1
fi
