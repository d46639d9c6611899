#!/usr/bin/env bash
# Data-parallel training over MPI ranks on this machine: trains models/fashion_cnn.yaml (60,000
# Fashion-MNIST images, 5 epochs, batch 100) in one process and under mpirun with 2 and 4 ranks, and
# prints test accuracy and seconds per epoch (training steps alone, and with the evaluation of the
# 60,000 training and 10,000 test images snrun does after every epoch) side by side, with the speedup
# against one process. More ranks than cores oversubscribe the machine (the table says so).
#   bash bench/mpi_bench.sh                 # 1 process x cores threads, then 1, 2 and 4 ranks
#   bash bench/mpi_bench.sh --epochs 2 --ranks "2 4"
# Needs snrun built with MPI (docs/mpi.md) and Debian's dataset-fashion-mnist. Run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=5
ranks="1 2 4"
model=models/fashion_cnn.yaml
while [[ $# -gt 0 ]]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "mpi_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
snrun=build/snrun
[[ -x $snrun ]] || bash tools/build.sh
if ! $snrun --help | grep -q "built with MPI"; then
  echo "mpi_bench: $snrun is built without MPI (install libopenmpi-dev openmpi-bin, rebuild)" >&2
  exit 1
fi
cores=$(nproc)
mpirun=(mpirun --oversubscribe)
[[ $(id -u) -eq 0 ]] && mpirun+=(--allow-run-as-root)
out=$(mktemp -d)
load=$(cut -d' ' -f1 /proc/loadavg)
echo "mpi_bench: $model, $epochs epochs, $cores cores, load $load at the start; logs in $out"

# one run: label, then the command; prints "acc steps_per_epoch epoch_seconds"
run() {
  local log="$out/$1.log"
  shift
  "$@" --epochs "$epochs" > "$log" 2>&1 || { echo "mpi_bench: failed, see $log" >&2; exit 1; }
  awk -v e="$epochs" '
    /^ *[0-9]+ +[0-9.]+ +[0-9.]+%/ { sum += $(NF-1) }
    /^final test accuracy/ { acc = $4 }
    /^time: training steps/ { steps = $4 }
    END { printf "%s %.2f %.2f\n", acc, steps / e, sum / e }' "$log"
}

printf "\n%-28s %10s %14s %16s %9s\n" "configuration" "test acc" "steps s/epoch" "epoch s (+eval)" "speedup"
base=""
line() { # label acc steps epoch
  local sp="1.00"
  [[ -n $base ]] && sp=$(awk -v a="$base" -v b="$3" 'BEGIN { printf "%.2f", a / b }')
  [[ -z $base ]] && base=$3
  printf "%-28s %10s %14s %16s %9s\n" "$1" "$2" "$3" "$4" "${sp}x"
}
read -r acc st ep < <(run single $snrun train "$model" --threads "$cores")
line "1 process x $cores threads" "$acc" "$st" "$ep"
for n in $ranks; do
  note=""
  (( n > cores )) && note=" (oversubscribed)"
  if (( n == 1 )); then
    read -r acc st ep < <(run "np1" $snrun train "$model" --threads 1)
    line "1 process x 1 thread" "$acc" "$st" "$ep"
  else
    read -r acc st ep < <(run "np$n" "${mpirun[@]}" -np "$n" $snrun train "$model" --threads 1)
    line "$n ranks x 1 thread$note" "$acc" "$st" "$ep"
  fi
done
echo "(speedup: steps time of the first line / this line; load at the end $(cut -d' ' -f1 /proc/loadavg))"
