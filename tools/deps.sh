#!/usr/bin/env bash
# Installs the Debian packages snc needs, or prints the apt-get line that would.
#   tools/deps.sh            build + test dependencies
#   tools/deps.sh --test-extras  also PyTorch, which the ONNX tests compare against (CI uses this)
#   tools/deps.sh --extras   also the optional ones (PyTorch for golden files and benchmarks,
#                            clang-19 for the libFuzzer harnesses of tools/fuzz.sh)
# As root, missing packages are installed (one apt-get update, then apt-get install -y).
# As another user, the exact command is printed and the script exits 1 if anything is missing.
set -euo pipefail

pkgs=(build-essential cmake pkg-config git
      llvm-19-dev libyaml-dev libcunit1-dev zlib1g-dev libcjson-dev
      dataset-fashion-mnist libopenmpi-dev openmpi-bin # MPI: optional for the build, tested in CI
      gnuplot-nox # the study's figures (snrun study draws them when gnuplot is on PATH)
      libprotobuf-c-dev protobuf-c-compiler python3-onnx) # ONNX: protoc-c compiles python3-onnx's onnx.proto
if [[ "${1:-}" == "--test-extras" ]]; then # what CI adds for the ONNX tests against PyTorch (.ci/run)
  pkgs+=(python3-torch python3-numpy)
fi
if [[ "${1:-}" == "--extras" ]]; then
  pkgs+=(python3-torch python3-numpy hyperfine clang-19 libclang-rt-19-dev) # tools/fuzz.sh: clang-19 + its libFuzzer/ASan runtimes
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi

line="apt-get install -y ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing packages; run as root:"
  echo "  apt-get update && $line"
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
