#!/usr/bin/env bash
# The whole seed study, snc against PyTorch, side by side: models/siamese.yaml, 4 switch settings x
# 20 rounds x 25 epochs, every round evaluated on the test set after every epoch and on the training
# set as --eval-train says (what `snrun study` records; default never). snc runs `snrun study` (worker processes, JIT); PyTorch runs the same
# network (bench/torch_siamese.py's Branch/Siamese/loss) in the same layout: the same number of
# worker processes with the same threads each. Prints both wall times, the ratio torch/snc and both
# tables. Run it on an otherwise idle machine; see docs/study.md.
#
#   bash bench/study_bench.sh                     # 20 rounds, jobs = cores, 1 thread per job
#   bash bench/study_bench.sh --rounds 5 --jobs 1 --threads 2
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=20 epochs=25 seed=1 jobs=$(nproc) threads=1 model=models/siamese.yaml skip_torch=0 torch_rounds= eval_train=never
build=${SNC_BUILD_DIR:-build}
python=${PYTHON:-/usr/bin/python3}

usage() {
  cat <<EOF
usage: bash bench/study_bench.sh [options]

options:
  --rounds R      rounds per setting (default 20)
  --epochs E      epochs per round (default 25)
  --seed S        study seed (default 1)
  --jobs J        worker processes for both (default: nproc = $(nproc))
  --threads T     threads per worker for both (default 1)
  --torch-rounds N  PyTorch runs only N rounds per setting and its study time is extrapolated
                  to R rounds (marked as such); PyTorch on this machine's Debian build can take
                  minutes per round
  --eval-train W  every|end|never: when both evaluate the training set (default never, as snrun study)
  --snc-only      skip PyTorch
  -h, --help      this help

environment: SNC_BUILD_DIR (default build), PYTHON (default /usr/bin/python3, with python3-torch)
EOF
}
posint() { [[ $2 =~ ^[0-9]+$ ]] && (($2 >= 1)) || { echo "study_bench.sh: $1 takes an integer >= 1, got '$2'" >&2; exit 2; }; }
while (($#)); do
  case $1 in
    --rounds|--epochs|--seed|--jobs|--threads|--torch-rounds)
      (($# >= 2)) || { echo "study_bench.sh: $1 needs a value" >&2; exit 2; }
      [[ $1 == --seed ]] || posint "$1" "$2"
      v=${1#--}; declare "${v//-/_}=$2"; shift 2 ;;
    --eval-train)
      (($# >= 2)) && [[ $2 =~ ^(every|end|never)$ ]] || { echo "study_bench.sh: --eval-train takes every, end or never" >&2; exit 2; }
      eval_train=$2; shift 2 ;;
    --snc-only) skip_torch=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "study_bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

snrun=$build/snrun
[[ -x $snrun ]] || { echo "study_bench.sh: $snrun not built (cmake -S . -B $build && cmake --build $build)" >&2; exit 1; }
if ((!skip_torch)); then
  "$python" -c 'import torch' 2>/dev/null ||
    { echo "study_bench.sh: $python has no torch (python3-torch; bash tools/deps.sh --extras), or use --snc-only" >&2; exit 1; }
  [[ -f bench/torch_siamese.py ]] || { echo "study_bench.sh: bench/torch_siamese.py is missing" >&2; exit 1; }
fi
tmp=$(mktemp -d /tmp/study_bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds x 4 settings x $epochs epochs, $jobs jobs x $threads threads"

# --- snc --------------------------------------------------------------------------------------------
t0=$(date +%s.%N)
"$snrun" study "$model" --rounds "$rounds" --epochs "$epochs" --seed "$seed" --jobs "$jobs" --threads "$threads" \
  --eval-train "$eval_train" --out "$tmp/snc" --no-plots --no-progress > "$tmp/snc.txt"
t1=$(date +%s.%N)
snc_s=$(echo "$t1 - $t0" | bc -l)

# --- PyTorch: the same study, the same layout -------------------------------------------------------
cat > "$tmp/torch_study.py" <<'EOF'
"""One worker of the PyTorch study: rounds i, i+J, i+2J, ... of the (setting, round) list."""
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import torch
import torch.nn.functional as F
import torch_siamese as ts

worker, jobs, threads, rounds, epochs, seed = (int(a) for a in sys.argv[2:8])
eval_train = sys.argv[8]
torch.set_num_threads(threads)
torch.set_num_interop_threads(threads)
train_img, train_lab = ts.load_pool(ts.DATA, "train")
test_img, test_lab = ts.load_pool(ts.DATA, "t10k")
settings = [(False, False), (False, True), (True, False), (True, True)]   # (sharing, aux), as snrun's order


def evaluate(model, x, t1h, ca, cb, t, aux):
    model.eval()
    with torch.no_grad():
        compare, _, _ = model(x)
        loss = ts.loss_fn(model, x, t1h, ca, cb, aux).item()
        acc = (compare.argmax(1) == t).float().mean().item()
    model.train()
    return loss, acc


def run(sharing, aux, rseed):
    torch.manual_seed(rseed)
    rng = np.random.default_rng(rseed)
    tr = ts.make_pairs(train_img, train_lab, ts.TRAIN_PAIRS, rng)
    te = ts.make_pairs(test_img, test_lab, ts.TEST_PAIRS, rng)
    mean, std = float(tr[0].mean()), float(tr[0].std())
    sets = []
    for pair, target, classes in (tr, te):
        x = torch.from_numpy(np.ascontiguousarray((pair - mean) / std, dtype=np.float32))
        sets.append((x, F.one_hot(torch.from_numpy(target), 2).float(),
                     F.one_hot(torch.from_numpy(classes[:, 0]), 10).float(),
                     F.one_hot(torch.from_numpy(classes[:, 1]), 10).float(), torch.from_numpy(target)))
    (x, t1h, ca, cb, t), test = sets
    model = ts.Siamese(sharing=sharing)
    opt = torch.optim.Adam(model.parameters(), lr=ts.LR)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(ts.TRAIN_PAIRS)
        for s in range(0, ts.TRAIN_PAIRS, ts.BATCH):
            b = perm[s:s + ts.BATCH]
            opt.zero_grad(set_to_none=True)
            ts.loss_fn(model, x[b], t1h[b], ca[b], cb[b], aux).backward()
            opt.step()
        if eval_train == "every" or (eval_train == "end" and epoch == epochs - 1):
            evaluate(model, x, t1h, ca, cb, t, aux)       # the training set, as snrun study --eval-train
        _, acc = evaluate(model, *test, aux)
    return acc


jobs_list = [(k, r) for k in range(len(settings)) for r in range(rounds)]
for k, r in jobs_list[worker::jobs]:
    t0 = time.perf_counter()
    acc = run(*settings[k], seed * 1000 + r)
    print(k, r, acc, time.perf_counter() - t0, flush=True)
EOF
torch_s= torch_note=
torch_rounds=${torch_rounds:-$rounds}
((torch_rounds <= rounds)) || torch_rounds=$rounds
if ((!skip_torch)); then
  t0=$(date +%s.%N)
  pids=()
  for ((w = 0; w < jobs; w++)); do
    "$python" "$tmp/torch_study.py" "$PWD/bench" "$w" "$jobs" "$threads" "$torch_rounds" "$epochs" "$seed" "$eval_train" > "$tmp/torch.$w" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(date +%s.%N)
  torch_s=$(echo "($t1 - $t0) * $rounds / $torch_rounds" | bc -l)
  ((torch_rounds == rounds)) || torch_note=" (extrapolated from $torch_rounds round(s) per setting: $(printf %.1f "$(echo "$t1 - $t0" | bc -l)") s)"
fi

# --- report -----------------------------------------------------------------------------------------
echo
echo "snc (snrun study):"
sed -n '/^setting/,/^[0-9]* rounds, /p' "$tmp/snc.txt"
if [[ -n $torch_s ]]; then
  echo
  echo "PyTorch (same network, the test set evaluated every epoch, the training set: $eval_train; $jobs x $threads):"
  cat "$tmp"/torch.* | awk '
    BEGIN { split("none,aux_loss,weight_sharing,weight_sharing + aux_loss", name, ",") }
    { n[$1]++; s[$1] += $3; q[$1] += $3 * $3; sec[$1] += $4 }
    END {
      printf "%-26s  rounds  test accuracy        time/round\n", "setting"
      for (k = 0; k < 4; k++) if (n[k]) {
        m = s[k] / n[k]; v = n[k] > 1 ? (q[k] - n[k] * m * m) / (n[k] - 1) : 0; if (v < 0) v = 0
        printf "%-26s  %6d  %6.2f%% ± %5.2f     %6.2f s\n", name[k + 1], n[k], 100 * m, 100 * sqrt(v), sec[k] / n[k]
      }
    }'
fi
echo
printf 'study time: snc %.1f s' "$snc_s"
if [[ -n $torch_s ]]; then
  printf ', PyTorch %.1f s%s, ratio torch/snc %.2f' "$torch_s" "$torch_note" "$(echo "$torch_s / $snc_s" | bc -l)"
fi
printf '  (%d rounds x 4 settings x %d epochs, %d jobs x %d threads, --eval-train %s; load at the end %s)\n' \
  "$rounds" "$epochs" "$jobs" "$threads" "$eval_train" "$(cut -d' ' -f1-3 /proc/loadavg)"
