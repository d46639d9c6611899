#!/usr/bin/env bash
# snc against PyTorch, side by side: the seed siamese network (models/siamese.yaml), same data sizes,
# batch, epochs, seed and thread count, each run R times alternately; prints the median training-step
# seconds of each, the ratio torch/snc, snc's JIT compile time, the achieved GFLOP/s of the training
# step against this machine's measured FMA peak, and both test accuracies. See bench/README.md.
#
#   bash bench/train_bench.sh                      # 2 threads, 25 epochs, seed 1, 5 repeats
#   bash bench/train_bench.sh --threads 1 --repeat 5
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 repeat=5 epochs=25 seed=1 backend=jit model=models/siamese.yaml rebuild=0 tune=
build=${SNC_BUILD_DIR:-build}
python=${PYTHON:-/usr/bin/python3}

usage() {
  cat <<EOF
usage: bash bench/train_bench.sh [options]

Trains models/siamese.yaml with snrun and the same network with PyTorch (bench/torch_siamese.py),
alternately, and reports medians. Run it on an otherwise idle machine.

options:
  --threads N     threads for both (default 2)
  --repeat R      runs of each (default 5: on a shared VM one run in three or four can be 40-60% slow);
                  the table reports the median, and the fastest run of each on a line of its own
  --epochs E      epochs per run (default 25)
  --seed S        run seed for both (default 1)
  --backend B     snrun backend (default jit; ref for the reference executor)
  --rebuild       run an incremental build of snc/snrun in $build/ even when the binaries exist
  --tune          first search this machine's kernel schedules for the benchmark's configuration
                  (snrun train --tune, both builds, the --threads given; a few seconds) and keep them
                  in the tuning cache; without it the runs use whatever the cache holds, else defaults
  -h, --help      this help

environment: PYTHON (default /usr/bin/python3, the interpreter with python3-torch), CC (default cc),
SNC_BUILD_DIR (default build).
EOF
}

die() { echo "train_bench.sh: $*" >&2; exit 1; }
posint() { [[ $2 =~ ^[0-9]+$ ]] && (($2 >= 1)) || { echo "train_bench.sh: $1 takes an integer >= 1, got '$2'" >&2; exit 2; }; }

while (($#)); do
  case $1 in
    --threads|--repeat|--epochs|--seed|--backend)
      (($# >= 2)) || { echo "train_bench.sh: $1 needs a value" >&2; exit 2; }
      case $1 in
        --threads) posint "$1" "$2"; threads=$2 ;;
        --repeat) posint "$1" "$2"; repeat=$2 ;;
        --epochs) posint "$1" "$2"; epochs=$2 ;;
        --seed) [[ $2 =~ ^[0-9]+$ ]] || { echo "train_bench.sh: --seed takes a non-negative integer, got '$2'" >&2; exit 2; }; seed=$2 ;;
        --backend) backend=$2 ;;
      esac
      shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    --tune) tune=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "train_bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# --- PyTorch first: the peer is required, fail before anything long -------------------------------
[[ -x $python ]] || python=$(command -v python3 || true)
[[ -n $python ]] || die "no python3 found; PyTorch (python3-torch) is needed: run 'bash tools/deps.sh --extras' as root"
torch_version=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null) ||
  die "PyTorch is missing for $python: install python3-torch ('bash tools/deps.sh --extras' as root), or set PYTHON to an interpreter that has torch"
torch_blas=$("$python" -c 'import re, torch; m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show()); print(m.group(1) if m else "?")' 2>/dev/null || echo "?")
# Debian's torch is built against the generic BLAS interface: which libblas.so.3 it gets is the system's choice
libblas=$(readlink -f "/usr/lib/$(uname -m)-linux-gnu/libblas.so.3" 2>/dev/null || true)
if [[ -n $libblas ]] && pkg=$(dpkg -S "$libblas" 2>/dev/null); then libblas="$libblas from ${pkg%%:*}"; fi

# --- snc: reuse the build, or build it ---------------------------------------------------------------
snrun=$build/snrun snc=$build/snc
if [[ ! -x $snrun || ! -x $snc ]]; then
  echo "building snc in $build/ (tools/build.sh) ..."
  SNC_BUILD_DIR=$build bash tools/build.sh >/dev/null || die "build failed: run 'bash tools/build.sh' to see why"
elif ((rebuild)) || ! "$snrun" train --help 2>&1 | grep -q -- "--threads"; then
  echo "updating the build in $build/ ..."
  cmake --build "$build" --target snc snrun -j"$(nproc)" >/dev/null || die "build failed: run 'cmake --build $build' to see why"
fi
[[ -x $snrun && -x $snc ]] || die "$build/snrun or $build/snc missing after the build"
"$snrun" train --help 2>&1 | grep -q -- "--threads" || die "$snrun has no --threads option (too old?); try --rebuild"
if [[ $backend == jit ]] && ! "$snrun" train --help 2>&1 | grep -q "jit"; then
  die "$snrun has no JIT backend; use --backend ref or rebuild"
fi

# --- FLOPs of one training run, from snc check ----------------------------------------------------
# the issue's benchmark configuration: batch 100 (the model's default is 25, tuned for accuracy) and
# the PyTorch peer's lr
sets=(--set batch=100 --set lr=0.005)
check=$("$snc" check "$model" "${sets[@]}") || die "snc check $model failed"
fwd=$(sed -n 's/^forward FLOPs: \([0-9,]*\) per sample.*/\1/p' <<<"$check" | tr -d ,)
pairs=$(sed -n 's/^data: .*, \([0-9]*\) train \/ .*/\1/p' <<<"$check")
batch=$(sed -n 's/^training: .*, batch \([0-9]*\),.*/\1/p' <<<"$check")
[[ -n $fwd && -n $pairs && -n $batch ]] || die "cannot read forward FLOPs / training pairs / batch from 'snc check $model'"
run_flop=$((fwd * 3 * epochs * pairs))

# --- FMA peak ---------------------------------------------------------------------------------------
mkdir -p "$build/bench"
if grep -qw avx512f /proc/cpuinfo; then isa_flags="-mavx512f -mfma"
elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then isa_flags="-mavx2 -mfma"
else die "this CPU has neither avx512f nor avx2+fma; fma_peak.c has no scalar fallback"; fi
# shellcheck disable=SC2086
${CC:-cc} -O2 $isa_flags -fopenmp bench/fma_peak.c -o "$build/bench/fma_peak" || die "cannot compile bench/fma_peak.c"

logs=$(mktemp -d "${TMPDIR:-/tmp}/snc-bench.XXXXXX")
load() { cut -d' ' -f1 /proc/loadavg; }
load0=$(load)
if awk -v l="$load0" 'BEGIN { exit !(l > 1.0) }'; then
  echo "warning: load average $load0 > 1 at the start: the machine is busy, timings will be pessimistic" >&2
fi

"$build/bench/fma_peak" "$threads" >"$logs/fma_peak.txt" || die "fma_peak failed"
peak1=$(awk '$1 == "peak_gflops_per_thread" { print $2 }' "$logs/fma_peak.txt")
case $threads in
  1) peakn=$peak1 ;;
  2) peakn=$(awk '$1 == "peak_gflops_2threads" { print $2 }' "$logs/fma_peak.txt") ;;
  *) peakn=$(awk -v k="peak_gflops_${threads}threads" '$1 == k { print $2 }' "$logs/fma_peak.txt") ;;
esac
peak2=$(awk '$1 == "peak_gflops_2threads" { print $2 }' "$logs/fma_peak.txt")
isa=$(awk '$1 == "isa" { print $2 }' "$logs/fma_peak.txt")

now() { date +%s.%N; }
part() { awk -v w="$1" -v a="$2" -v b="$3" -v c="$4" -v d="$5" 'BEGIN { printf "%.3f", w - a - b - c - d }'; }
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (!NR) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# the training step's build alone: snrun's "compiled MODEL: N kernels, ..., T s" line (the evaluation
# build has a line of its own, "compiled MODEL for evaluation ...")
step_build() { sed -n '/^compiled .* for evaluation/d; s/^compiled .*, \([0-9.]*\) s$/\1/p' "$1" | head -1; }
snc_t="" cold_step=""
snc_s="" snc_c="" snc_a="" torch_s="" torch_a="" snc_fallback=0
snc_w="" snc_e="" snc_d="" torch_w="" torch_e="" torch_d="" torch_i=""
snc_o="" snc_r="" torch_o="" torch_r="" # per run: the rest of the whole command, and whole / steps
echo "logs: $logs"
# the compiled-module cache: one cold compile (--no-cache), then every timed run loads the code from
# the cache (warm), as a user's second run does; the warm-up run fills the cache
cold=
if ((tune)); then
  [[ $backend == jit ]] || die "--tune needs --backend jit"
  "$snrun" train "$model" "${sets[@]}" --threads "$threads" --epochs 1 --seed "$seed" --tune >"$logs/snc_tune.txt" 2>&1 ||
    { tail -20 "$logs/snc_tune.txt" >&2; die "snrun --tune failed (log: $logs/snc_tune.txt)"; }
fi
if "$snrun" train --help 2>&1 | grep -q -- "--no-cache"; then
  "$snrun" train "$model" "${sets[@]}" --backend "$backend" --threads "$threads" --epochs 1 --seed "$seed" --no-cache \
    >"$logs/snc_cold.txt" 2>&1 || { tail -20 "$logs/snc_cold.txt" >&2; die "snrun failed (log: $logs/snc_cold.txt)"; }
  cold=$(sed -n 's/^time: .*compile \([0-9.]*\) s.*/\1/p' "$logs/snc_cold.txt")
  cold_step=$(step_build "$logs/snc_cold.txt")
  "$snrun" train "$model" "${sets[@]}" --backend "$backend" --threads "$threads" --epochs 1 --seed "$seed" \
    >"$logs/snc_warmup.txt" 2>&1 || die "snrun failed (log: $logs/snc_warmup.txt)"
fi
for ((r = 1; r <= repeat; r++)); do
  # (a) snc
  log=$logs/snc_$r.txt
  t0=$(now)
  "$snrun" train "$model" "${sets[@]}" --backend "$backend" --threads "$threads" --epochs "$epochs" --seed "$seed" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "snrun failed (log: $log)"; }
  wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
  steps=$(sed -n 's/^time: training steps \([0-9.]*\) s.*/\1/p' "$log")
  comp=$(sed -n 's/^time: .*compile \([0-9.]*\) s.*/\1/p' "$log")
  [[ -n $comp ]] || comp=$(sed -n 's/^compiled .*, \([0-9.]*\) s$/\1/p' "$log")
  snc_t+=" $(step_build "$log")"
  if [[ -z $steps ]]; then steps=$wall; snc_fallback=1; fi
  acc=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$log" | tail -1)
  ev=$(sed -n 's/^time: .*, evaluation \([0-9.]*\) s.*/\1/p' "$log")
  da=$(sed -n 's/^time: .*, data \([0-9.]*\) s.*/\1/p' "$log")
  snc_s+=" $steps" snc_c+=" ${comp:-}" snc_a+=" ${acc:-}" snc_w+=" $wall" snc_e+=" ${ev:-}" snc_d+=" ${da:-}"
  if [[ -n $ev && -n $da && -n $comp ]]; then
    snc_o+=" $(part "$wall" "$comp" "$steps" "$ev" "$da")" snc_r+=" $(awk -v w="$wall" -v s="$steps" 'BEGIN { print w / s }')"
  fi
  printf "run %d/%d  snc   : training steps %8.3f s   compile %-9s test accuracy %s%%   (whole command %.2f s, load %s)\n" \
    "$r" "$repeat" "$steps" "$([[ -n $comp ]] && echo "$comp s" || echo n/a)" "${acc:-?}" "$wall" "$(load)"
  # (b) PyTorch
  log=$logs/torch_$r.txt
  t0=$(now)
  "$python" bench/torch_siamese.py --threads "$threads" --epochs "$epochs" --seed "$seed" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "bench/torch_siamese.py failed (log: $log)"; }
  wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
  steps=$(awk '$1 == "seconds" { print $2 }' "$log")
  acc=$(awk '$1 == "accuracy" { printf "%.2f", 100 * $2 }' "$log")
  torch_w+=" $wall" torch_e+=" $(awk '$1 == "eval_seconds" { print $2 }' "$log")"
  torch_d+=" $(awk '$1 == "setup_seconds" { print $2 }' "$log")" torch_i+=" $(awk '$1 == "import_seconds" { print $2 }' "$log")"
  [[ -n $steps && -n $acc ]] || die "no 'seconds'/'accuracy' lines from bench/torch_siamese.py (log: $log)"
  torch_s+=" $steps" torch_a+=" $acc"
  te1=$(awk '$1 == "eval_seconds" { print $2 }' "$log") td1=$(awk '$1 == "setup_seconds" { print $2 }' "$log")
  if [[ -n $te1 && -n $td1 ]]; then
    torch_o+=" $(part "$wall" 0 "$steps" "$te1" "$td1")" torch_r+=" $(awk -v w="$wall" -v s="$steps" 'BEGIN { print w / s }')"
  fi
  printf "run %d/%d  torch : training steps %8.3f s                     test accuracy %s%%   (whole command %.2f s, load %s)\n" \
    "$r" "$repeat" "$steps" "$acc" "$wall" "$(load)"
done

ms=$(median <<<"$snc_s") mt=$(median <<<"$torch_s") mc=$(median <<<"$snc_c")
ma=$(median <<<"$snc_a") mta=$(median <<<"$torch_a")
gf() { awk -v f="$run_flop" -v s="$1" 'BEGIN { printf "%.1f", f / s / 1e9 }'; }
pct() { awk -v g="$1" -v p="$peakn" 'BEGIN { if (p > 0) printf "%.1f%%", 100 * g / p; else print "n/a" }'; }
gs=$(gf "$ms") gt=$(gf "$mt")

echo
echo "== snc vs PyTorch: $model, $epochs epochs x $pairs training pairs, batch $batch, $threads thread(s), seed $seed, median of $repeat"
echo "machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores; load at start $load0"
echo "FMA peak ($isa, bench/fma_peak.c): $peak1 GFLOP/s per thread, $peak2 GFLOP/s on 2 threads; for $threads thread(s): $peakn GFLOP/s"
echo "PyTorch $torch_version (BLAS $torch_blas${libblas:+: $libblas}) via $python; snc: $snrun --backend $backend"
if [[ $backend == jit ]]; then # which kernel schedules the timed runs had (docs/jit.md, "Schedules")
  sl=$(sed -n 's/^schedules: \([0-9]* of [0-9]*\) kernel shapes from the tuning cache.*/\1/p' "$logs/snc_1.txt" | head -1)
  if [[ -n $sl ]]; then
    how="$sl shapes from the tuning cache of this machine and $threads thread(s)"
    ((tune)) && how+=", searched by --tune just now"
  else
    how="the built-in defaults (no tuning cache for $threads thread(s); --tune searches)"
  fi
  echo "kernel schedules: $how"
fi
echo "FLOPs per run: $(sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$fwd") forward FLOPs per pair (snc check) x 3 (forward + backward) x $epochs epochs x $pairs pairs = $(awk -v f="$run_flop" 'BEGIN { printf "%.2f", f / 1e9 }') GFLOP"
echo "time: training steps only (forward, backward, optimizer; snc's own 'training steps' figure, PyTorch's perf_counter around its epoch loop);"
echo "      excluded: data preparation, JIT compile, evaluation (all in the whole-command table below)"
if ((snc_fallback)); then
  echo "NOTE: this snrun prints no 'time: training steps' line: snc's seconds are the WHOLE command (data, compile, per-epoch evaluation)"
fi
echo
printf "%-18s %12s %10s %10s %10s  %s\n" "" "seconds/run" "GFLOP/s" "% of peak" "test acc" "runs (s)"
printf "%-18s %12.3f %10s %10s %10s  %s\n" "snc ($backend)" "$ms" "$gs" "$(pct "$gs")" "$ma%" "${snc_s# }"
printf "%-18s %12.3f %10s %10s %10s  %s\n" "pytorch" "$mt" "$gt" "$(pct "$gt")" "$mta%" "${torch_s# }"
echo
awk -v t="$mt" -v s="$ms" 'BEGIN { w = (t >= s) ? "faster" : "slower"; printf "ratio torch/snc:   %.2fx (snc %s)\n", t / s, w }'
bs=$(tr ' ' '\n' <<<"$snc_s" | awk 'NF' | sort -g | head -1) bt=$(tr ' ' '\n' <<<"$torch_s" | awk 'NF' | sort -g | head -1)
echo "fastest runs:      snc $bs s ($(gf "$bs") GFLOP/s, $(pct "$(gf "$bs")") of peak), pytorch $bt s; ratio $(awk -v t="$bt" -v s="$bs" 'BEGIN { printf "%.2f", t / s }')x"
if [[ $mc == n/a ]]; then echo "snc JIT compile:   n/a (no compile time in snrun's output)"
else echo "snc JIT compile:   $mc s (median; runs: ${snc_c# }); of which the training step's build $(median <<<"$snc_t") s"; fi
echo "test accuracies:   snc ${snc_a# } %, pytorch ${torch_a# } % (different random pairs and initial weights: same sizes, same distribution)"

# --- the whole command and its parts (what a user waits for) -----------------------------------------
echo
echo "whole command (wall of the process) and its parts, seconds: each column the median of its $repeat runs"
echo "(so the parts need not add up to the whole; 'other' and whole/steps are per-run figures, then the median)"
printf "%-18s %8s %9s %8s %11s %8s %8s  %s\n" "" "whole" "compile" "steps" "evaluation" "data" "other" "whole/steps"
mw=$(median <<<"$snc_w") me=$(median <<<"$snc_e") md=$(median <<<"$snc_d")
if [[ $me != n/a ]]; then
  printf "%-18s %8.3f %9.3f %8.3f %11.3f %8.3f %8.3f  %.2f\n" "snc ($backend)" "$mw" "$mc" "$ms" "$me" "$md" \
    "$(median <<<"$snc_o")" "$(median <<<"$snc_r")"
fi
tw=$(median <<<"$torch_w")
te=$(median <<<"$torch_e") td=$(median <<<"$torch_d") ti=$(median <<<"$torch_i")
if [[ $te != n/a ]]; then
  printf "%-18s %8.3f %9s %8.3f %11.3f %8.3f %8.3f  %.2f\n" "pytorch" "$tw" "-" "$mt" "$te" "$td" \
    "$(median <<<"$torch_o")" "$(median <<<"$torch_r")"
  echo "  (pytorch: 'data' is its setup (data + model), 'other' includes importing torch, median $ti s)"
fi
echo "  evaluation: the test set after every epoch, the training set after the last (snrun train's default,"
echo "  --eval-train end; PyTorch the same, each set in one batch); snc compile: building the module and"
echo "  loading its machine code from the compiled-module cache"
echo "  data: what the run waited for; snrun draws its data on a second thread during the compile"
[[ -n $cold ]] && echo "snc JIT compile cold (--no-cache): $cold s (the training step's build ${cold_step:-n/a} s); warm (the compiled-module cache): $mc s (the training step's build $(median <<<"$snc_t") s)"
echo "logs:              $logs"
