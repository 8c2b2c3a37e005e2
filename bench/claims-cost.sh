#!/usr/bin/env bash
# What custom claims cost per token, in instructions counted by Valgrind (Callgrind), so the
# figure does not move with whatever else the machine runs:
#
#   bench/claims-cost.sh            # counts of 100 and 600 tokens per variant
#   CLAIMS_COUNTS="50 250" bench/claims-cost.sh
#
# For each variant (no custom claims; five static claims; the token hook answered from its
# cache, five claims) the benchmark program issues N1 and then N2 tokens in-process after the
# same set-up and warm-up; (instructions(N2) - instructions(N1)) / (N2 - N1) is one token's
# cost. It prints each variant's instructions per token and its ratio to the no-claims figure
# of the same run, and writes them to target/claims-cost.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
read -r N1 N2 <<<"${CLAIMS_COUNTS:-100 600}"
command -v valgrind >/dev/null || { echo "claims-cost: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

EXE="$(cargo bench -p tokenmint-server --bench claims_cost --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "claims_cost" and m.get("executable"):
        print(m["executable"])')"
[ -x "$EXE" ] || { echo "claims-cost: the benchmark did not build" >&2; exit 1; }

instructions() { # VARIANT COUNT -> total instructions of the run
  TOKENMINT_CLAIMS_COST="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$EXE" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

declare -A per_token
for variant in none static hook; do
  a="$(instructions "$variant" "$N1")"
  b="$(instructions "$variant" "$N2")"
  per_token[$variant]=$(( (b - a) / (N2 - N1) ))
  echo "$variant: ${per_token[$variant]} instructions per token" >&2
done

report="target/claims-cost.md"
mkdir -p target
{
  echo "| variant | instructions per token | ratio to no claims |"
  echo "|---|---:|---:|"
  for variant in none static hook; do
    ratio="$(python3 -c "print(f'{${per_token[$variant]} / ${per_token[none]}:.3f}')")"
    case "$variant" in
      none) name="no custom claims" ;;
      static) name="5 static claims" ;;
      hook) name="token hook, cached (5 claims)" ;;
    esac
    echo "| $name | ${per_token[$variant]} | $ratio |"
  done
} | tee "$report"
