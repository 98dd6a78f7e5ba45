#!/usr/bin/env bash
# The tests of the crates that hold or use the workspace's only `unsafe` code —
# inregion-hint (prefetches, huge pages, streaming stores), inregion-table and
# inregion-edge: unit, property, example and doc tests — under AddressSanitizer, with the
# installed nightly toolchain (`-Zsanitizer` is nightly-only; Miri is not installed on
# the development machines). Everything is built for an explicit `--target`, so the
# flags reach this workspace's crates and their dependencies but not build scripts and
# proc macros; the standard library is the prebuilt one (not instrumented).
#
#   scripts/asan.sh                        # all three crates, debug profile
#   RELEASE=1 scripts/asan.sh              # optimized (the hot paths inlined as shipped)
#   PROPTEST_CASES=64 scripts/asan.sh      # fewer property-test cases
#   scripts/asan.sh -- --test-threads=1    # arguments after -- go to the test binaries
#
# First checks that the sanitizer works here at all (a deliberate heap overflow must be
# reported), then runs the tests; exits non-zero on any sanitizer report or failed test,
# and ends with a line `asan: N passed, M failed`. Builds into target/asan: about 70 s
# from scratch on 2 cores, of which the tests take about 15 s.
#
# What it can find: out-of-bounds and use-after-free accesses, leaks. What it cannot: the
# ordering rule of non-temporal stores (no access before the fence) is a rule of Rust's
# memory model that no sanitizer checks; inregion-hint's API enforces it by construction.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLCHAIN=${TOOLCHAIN:-nightly}
TARGET=$(rustc "+$TOOLCHAIN" -vV | sed -n 's/^host: //p')
TARGET_DIR=${ASAN_TARGET_DIR:-target/asan}
export RUSTFLAGS="${RUSTFLAGS:-} -Zsanitizer=address"
export RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -Zsanitizer=address"
# Abort on the first report (also makes leaks fail the run).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}

echo "== toolchain: $(rustc "+$TOOLCHAIN" --version), target $TARGET"

# The canary: without it, a silently ignored flag would look like a clean run.
canary="$TARGET_DIR/canary"
mkdir -p "$canary"
cat >"$canary/overflow.rs" <<'EOF'
fn main() {
    let v = vec![1u8; 8];
    let p = std::hint::black_box(v.as_ptr());
    // One byte past the allocation: AddressSanitizer must report it.
    println!("{}", unsafe { *p.add(8) });
}
EOF
rustc "+$TOOLCHAIN" -Zsanitizer=address --target "$TARGET" -o "$canary/overflow" \
  "$canary/overflow.rs"
if "$canary/overflow" >"$canary/overflow.out" 2>&1 \
  || ! grep -q "AddressSanitizer: heap-buffer-overflow" "$canary/overflow.out"; then
  echo "AddressSanitizer did not catch the canary's overflow; see $canary/overflow.out" >&2
  exit 1
fi
echo "== canary: the sanitizer reports a heap overflow"

cargo_args=()
if [[ -n "${RELEASE:-}" ]]; then
  cargo_args+=(--release)
fi
extra=()
if [[ "${1:-}" == "--" ]]; then
  shift
  extra=(-- "$@")
fi

log="$TARGET_DIR/test.log"
start=$(date +%s)
status=0
cargo "+$TOOLCHAIN" test --locked --target "$TARGET" --target-dir "$TARGET_DIR" \
  -p inregion-hint -p inregion-table -p inregion-edge "${cargo_args[@]}" "${extra[@]}" 2>&1 \
  | tee "$log" \
  || status=$?
end=$(date +%s)

if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer" "$log"; then
  echo "== sanitizer reports (see $log):" >&2
  grep -A3 "ERROR: AddressSanitizer\|ERROR: LeakSanitizer" "$log" >&2
  status=1
fi
passed=$(awk '/^test result:/ { p += $4 } END { print p + 0 }' "$log")
failed=$(awk '/^test result:/ { f += $6 } END { print f + 0 }' "$log")
echo "== AddressSanitizer run: $((end - start)) s, $(grep -c '^test result:' "$log") test binaries"
echo "asan: $passed passed, $failed failed"
exit "$status"
