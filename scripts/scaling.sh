#!/usr/bin/env bash
# Multi-core scaling of the region table and the edge: the quick comparisons of
# `inregion-bench` with their thread-scaling cases at 1, 2, 4, ... up to the machine's
# core count, in one run. Meant for a machine with many cores (the 2-core development
# VM only reaches 2).
#
#   scripts/scaling.sh                      # build, then run both comparisons
#   THREADS=1,2,4,8,16 scripts/scaling.sh   # explicit thread counts
#   BIN=path/to/inregion-bench scripts/scaling.sh   # a prebuilt binary, no build
#
# Writes machine.txt, table.jsonl and edge.jsonl to OUT (default out/scaling) and echoes
# them. Every rate in them is also measured against the baseline in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-out/scaling}
mkdir -p "$OUT"
cores=$(nproc)
if [[ -z "${THREADS:-}" ]]; then
  THREADS=1
  n=2
  while (( n <= cores )); do THREADS="$THREADS,$n"; n=$((n * 2)); done
  (( cores > 1 && (cores & (cores - 1)) != 0 )) && THREADS="$THREADS,$cores"
fi
if [[ -z "${BIN:-}" ]]; then
  cargo build --release -q -p inregion-bench
  BIN="${CARGO_TARGET_DIR:-target}/release/inregion-bench"
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cores: $cores"
  echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
  echo "threads: $THREADS"
} | tee "$OUT/machine.txt"

echo "== table (INREGION_BENCH_THREADS=$THREADS)"
INREGION_BENCH_THREADS=$THREADS "$BIN" table --quick | tee "$OUT/table.jsonl"
echo "== edge (INREGION_BENCH_THREADS=$THREADS)"
INREGION_BENCH_THREADS=$THREADS "$BIN" edge --quick | tee "$OUT/edge.jsonl"
echo "== written to $OUT"
