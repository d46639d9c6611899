#!/usr/bin/env bash
# The layout's rules, checked (docs/architecture.md, "Layout"); CI runs it before the tests.
#   1. No arrow up: every public header in include/snc/ belongs to one part, and a file may include
#      only headers of its own part or of parts below it:
#        compiler < runtime/data < runtime/jit < runtime/backend < runtime/dist < runtime/train
#                 < runtime/study < tools/cli (and tests, examples, bench: anything)
#      A folder's private headers (quoted names without "snc/") stay in that folder.
#   2. No source file (.c, .h, .inc under compiler/, runtime/, include/, tools/, tests/, examples/,
#      bench/) longer than 800 lines.
# Exit 0 when both hold; otherwise one line per violation (file:line: what) and exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A level_of_part=([compiler]=0 [data]=1 [jit]=2 [backend]=3 [dist]=4 [train]=5 [study]=6 [cli]=7)
# the part each public header belongs to (a new header must be added here)
declare -A part_of_header=(
  [arena.h]=compiler [error.h]=compiler [file.h]=compiler [rng.h]=compiler [ir.h]=compiler
  [ops.def]=compiler [kernel.h]=compiler [frontend.h]=compiler [autodiff.h]=compiler
  [codegen.h]=compiler [target.h]=compiler [program.h]=compiler [onnx.h]=compiler
  [data.h]=data
  [jit.h]=jit
  [backend.h]=backend
  [dist.h]=dist
  [train.h]=train
  [study.h]=study
)

bad=0
fail() { echo "$1"; bad=1; }

for h in include/snc/*; do
  name=$(basename "$h")
  [[ -n "${part_of_header[$name]:-}" ]] || fail "$h: public header not assigned to a part (add it to tools/check_layout.sh)"
done

part_of_file() { # the part a source file sits in, or "" for tests, examples, bench (no rule)
  case "$1" in
    compiler/*|include/*) echo compiler ;;
    runtime/*) local p=${1#runtime/}; echo "${p%%/*}" ;;
    tools/cli/*) echo cli ;;
    *) echo "" ;;
  esac
}

while IFS= read -r f; do
  part=$(part_of_file "$f")
  if [[ -n "$part" ]]; then
    [[ -n "${level_of_part[$part]:-}" ]] || { fail "$f: runtime folder '$part' has no place in the layering (tools/check_layout.sh)"; continue; }
    mine=${level_of_part[$part]}
    if [[ "$f" == include/snc/* ]]; then
      part=${part_of_header[$(basename "$f")]:-compiler}
      mine=${level_of_part[$part]}
    fi
    while IFS=: read -r line inc; do
      hdr=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$inc")
      if [[ "$hdr" == snc/* ]]; then
        hp=${part_of_header[${hdr#snc/}]:-}
        [[ -n "$hp" ]] || { fail "$f:$line: includes unknown public header $hdr"; continue; }
        ((${level_of_part[$hp]} <= mine)) ||
          fail "$f:$line: arrow up: $part includes $hdr of runtime/$hp (only its own part and parts below)"
      elif [[ "$part" != compiler && "$part" != cli && "$hdr" != */* ]]; then
        [[ -f "$(dirname "$f")/$hdr" ]] || fail "$f:$line: private header $hdr is not in its own folder"
      elif [[ "$part" != compiler && "$part" != cli && "$hdr" == ../* ]]; then
        fail "$f:$line: reaches into another folder's private header $hdr"
      fi
    done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
  fi
  n=$(wc -l <"$f")
  ((n <= 800)) || fail "$f: $n lines (at most 800: split it by purpose)"
done < <(find compiler runtime include tools tests examples bench -type f \( -name '*.c' -o -name '*.h' -o -name '*.inc' \) | sort)

if ((bad)); then
  echo "check_layout: FAILED"
  exit 1
fi
echo "check_layout: ok ($(find compiler runtime include tools -type f \( -name '*.c' -o -name '*.h' -o -name '*.inc' \) | wc -l) files: no arrow up, none over 800 lines)"
