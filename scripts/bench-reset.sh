#!/usr/bin/env bash
# Reset of a server holding N bindings (default 10,000): `POST /__inregion/reset` timed
# by the server (took_ms: the one commit that clears everything and re-seeds, plus the
# clock and fault rules) and by the client (curl's total time), ROUNDS times (default 5),
# on a data directory (durability full) and in memory.
#
#   scripts/bench-reset.sh            # target: <= 50 ms with 10k bindings
#   N=50000 scripts/bench-reset.sh
#
# Bindings are loaded through the API with wrk (installed from Debian's packages if
# missing); traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
ROUNDS=${ROUNDS:-5}
TARGET=${CARGO_TARGET_DIR:-target}
ACCOUNT=023e105f4ecef8ad9ca31a8372d0c353
TOKEN=bench-token-00000000000000000000000000
ADMIN=bench-admin-token-000000000000000000000
PREFIX=b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3
. scripts/lib.sh
need_wrk
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --release -q -p inregion
BIN="$TARGET/release/inregion"
WORK=$(mktemp -d -p "$TARGET")
cleanup() { [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
write_config "$WORK/bench.toml" "$ACCOUNT" "$PREFIX"
write_lua "$WORK" "$TOKEN" "$PREFIX"

for mode in "--data $WORK/data" "--in-memory"; do
  start_server "$WORK/out" $mode --config "$WORK/bench.toml" --admin --admin-token "$ADMIN" --dev-token "$TOKEN" --propagation-delay 5h
  echo "=== $mode: $N bindings, $ROUNDS resets"
  for r in $(seq "$ROUNDS"); do
    run=0
    while (( $(live_bindings "$BASE") < N )); do
      run=$((run + 1))
      RUN=$((r * 100 + run)) wrk -t1 -c16 -d1s -s "$WORK/create.lua" "$BASE/client/v4/accounts/$ACCOUNT/dls/regional_services/prefix_bindings" >/dev/null
    done
    held=$(live_bindings "$BASE")
    t=$(curl -s -o "$WORK/reset.json" -w '%{time_total}' -X POST "$BASE/__inregion/reset" -H "X-Inregion-Admin-Token: $ADMIN")
    server_ms=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["result"]["took_ms"], 2))' "$WORK/reset.json")
    printf 'round %d: %6d bindings -> reset took %7.2f ms in the server, %7.2f ms at the client; %d left\n' \
      "$r" "$held" "$server_ms" "$(python3 -c "print($t * 1000)")" "$(live_bindings "$BASE")"
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
done
