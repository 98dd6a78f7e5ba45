#!/usr/bin/env bash
# Coverage-guided fuzzing of inregion's fuzz targets with cargo-fuzz (libFuzzer) and
# AddressSanitizer, on the installed nightly toolchain.
#
#   scripts/fuzz.sh 10                 # every target, 10 minutes each, one after another
#   scripts/fuzz.sh 10 api table       # only these targets
#   JOBS=2 scripts/fuzz.sh 10          # two targets at a time (one core each)
#   scripts/fuzz.sh 0.1                # 6 s each: the targets build and start (CI smoke)
#
# Targets (their bodies and oracles: crates/fuzz/src/lib.rs): ids, api, scenario_toml,
# config_toml, table, snapshot. Each run starts from the checked-in corpus fuzz/corpus/TARGET and
# writes what it discovers to fuzz/work/TARGET (ignored by git); with MERGE=1 the new
# inputs that add coverage are then merged into fuzz/corpus/TARGET (libFuzzer -merge=1).
# A crash leaves its input in fuzz/artifacts/TARGET/: copy it into
# fuzz/regressions/TARGET/ (replayed by `cargo test -p inregion-fuzz` on stable) and fix
# the bug. Edit nothing under crates/ while it runs: the merge step rebuilds.
#
# Installs cargo-fuzz (pinned) into target/tools when it is not on PATH. Prints one line
# per target: runs, executions, execs/s, coverage (libFuzzer's `cov`, edges) and corpus
# size, and exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${1:?usage: scripts/fuzz.sh MINUTES [TARGET...]}
shift
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(ids api scenario_toml config_toml table snapshot)
JOBS=${JOBS:-1}
TOOLCHAIN=${TOOLCHAIN:-nightly}
SECONDS_EACH=$(python3 -c "print(max(1, round(float('$MINUTES') * 60)))")

if ! rustc "+$TOOLCHAIN" --version >/dev/null 2>&1; then
    echo "fuzz: the $TOOLCHAIN toolchain is not installed (cargo-fuzz needs nightly)" >&2
    exit 2
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    if [ ! -x target/tools/bin/cargo-fuzz ]; then
        echo "fuzz: installing cargo-fuzz 0.13.2 into target/tools"
        cargo install --locked --quiet --root target/tools cargo-fuzz --version 0.13.2
    fi
    export PATH="$PWD/target/tools/bin:$PATH"
fi

echo "fuzz: building ${TARGETS[*]} (ASan, release)"
if [ ${#TARGETS[@]} -eq 1 ]; then
    (cd fuzz && cargo "+$TOOLCHAIN" fuzz build -O "${TARGETS[0]}")
else
    (cd fuzz && cargo "+$TOOLCHAIN" fuzz build -O)
fi

run_one() {
    local t=$1 log="fuzz/work/$1.log"
    mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
    local rc=0
    (cd fuzz && cargo "+$TOOLCHAIN" fuzz run -O "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=20 -rss_limit_mb=4096 \
        -max_len=65536 >"work/$t.log" 2>&1) || rc=$?
    local execs speed cov corp
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: $t CRASHED after ${execs:-?} executions (rc $rc); log $log, input in fuzz/artifacts/$t/"
        grep -m3 -E 'panicked|ERROR: AddressSanitizer|ERROR: libFuzzer' "$log" | sed 's/^/fuzz:   /' || true
        return 1
    fi
    echo "fuzz: $t ${SECONDS_EACH}s: ${execs:-?} executions (${speed:-?}/s), cov ${cov:-?}, corpus ${corp:-?}"
    if [ "${MERGE:-0}" = 1 ]; then
        (cd fuzz && cargo "+$TOOLCHAIN" fuzz run -O "$t" "corpus/$t" "work/$t" -- -merge=1 \
            >"work/$t.merge.log" 2>&1)
        echo "fuzz:   corpus/$t now holds $(find "fuzz/corpus/$t" -type f | wc -l) inputs"
    fi
}

failed=0
pids=()
for t in "${TARGETS[@]}"; do
    run_one "$t" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$JOBS" ]; then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
exit $failed
