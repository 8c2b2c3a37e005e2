#!/usr/bin/env bash
# Bounded smoke run of every fuzz target: fuzz/run.sh [SECONDS] (default 60 per target).
#
# cargo-fuzz needs nightly-only compiler flags (sanitizers, -Zsanitizer-coverage options);
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them, so no nightly toolchain is needed.
# Each target starts from its seeds in corpus/<target>/ (new inputs libFuzzer finds are added
# there under hex names, which git ignores). A crash stops the run with the reproducer under
# artifacts/<target>/ and a non-zero exit. The summary prints each target's execution count.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2; exit 1; }

targets=$(cargo fuzz list)
echo "== building the fuzz targets"
cargo fuzz build

mkdir -p logs
summary=()
failed=0
for target in $targets; do
  echo "== $target: ${seconds}s"
  log="logs/$target.log"
  status=0
  # -rss_limit_mb bounds memory per input; -max_len keeps inputs near real request sizes.
  cargo fuzz run "$target" -- \
    -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$status" -ne 0 ]; then
    failed=1
    summary+=("$target: FAILED after ${execs:-?} executions (exit $status, see fuzz/$log)")
    tail -n 30 "$log"
  else
    summary+=("$target: ${execs:-?} executions in ${seconds}s, no crash")
  fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
