#!/usr/bin/env bash
# Load test of `inregion serve` on loopback with wrk (Debian package `wrk`).
#
#   scripts/bench-api.sh            # 10 s per phase
#   DURATION=30s scripts/bench-api.sh
#
# The account is first filled to 10,000 bindings (untimed). Phases:
#   1. get one          GET  /dls/regional_services/prefix_bindings/{id}
#   2. list (25 items)  GET  /dls/regional_services/prefix_bindings?per_page=25
#   3. list, paced      LIST_PACED_CONNECTIONS (default 36) connections, each waiting
#                       LIST_PACE_MS (default 2) ms between requests: about 10,000 req/s
#   4. create, paced    PACED_CONNECTIONS (default 20) connections, each waiting PACE_MS
#                       (default 8) ms between requests: about 2,000 req/s
#                       (3 and 4: latency at the target rates, not at saturation;
#                       each pause drawn from an exponential distribution of that mean,
#                       PACE_DIST=exp, so that the connections do not fall into step
#                       behind one group commit; PACE_DIST=fixed for the fixed pauses of
#                       the runs before session 21)
#   5. durable create   POST /dls/regional_services/prefix_bindings (SQLite, fsync'd
#                       group commit), as 4 without pacing: the saturation rate
# After the phases, the server's own histogram of store commit times (fsync included,
# from /metrics) is printed: the disk's share of a create's latency.
# wrk prints requests/s and latency percentiles (p50/p75/p90/p99) per phase; a summary
# line per phase is printed at the end. Targets (2 cores): get >= 30,000 req/s,
# list >= 10,000 req/s, create >= 2,000 req/s, p99 <= 5 ms.
#
# Traffic goes to 127.0.0.1 only. Environment: DURATION (default 10s), CONNECTIONS
# (default 64), THREADS (wrk threads, default 1), WORKERS (server threads, default 2),
# CARGO_TARGET_DIR (default ./target), SKIP_BUILD=1 (use the existing release binary),
# SERVE_ARGS (extra `inregion serve` flags, e.g. SERVE_ARGS="--durability process" to see
# the server without a disk flush per write).
set -euo pipefail

cd "$(dirname "$0")/.."
# Exponential pauses in the paced phases: see write_lua in scripts/lib.sh.
export PACE_DIST=${PACE_DIST:-exp}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-2}
TARGET=${CARGO_TARGET_DIR:-target}
ACCOUNT=023e105f4ecef8ad9ca31a8372d0c353
TOKEN=bench-token-00000000000000000000000000
PREFIX=b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3

. scripts/lib.sh
need_wrk
if [[ -z "${SKIP_BUILD:-}" ]]; then cargo build --release -q -p inregion; fi
BIN="$TARGET/release/inregion"

WORK=$(mktemp -d)
cleanup() {
  [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

write_config "$WORK/bench.toml" "$ACCOUNT" "$PREFIX"

start_server "$WORK/out" --data "$WORK/data" --config "$WORK/bench.toml" --dev-token "$TOKEN" --propagation-delay 5h --workers "$WORKERS" ${SERVE_ARGS:-}
URL="$BASE/client/v4/accounts/$ACCOUNT/dls/regional_services/prefix_bindings"
echo "server: $BASE (pid $PID, $WORKERS workers); wrk: $THREADS thread(s), $CONNECTIONS connections, $DURATION per phase"

write_lua "$WORK" "$TOKEN" "$PREFIX"

summary=()
phase() { # name, wrk args...
  local name=$1; shift
  echo; echo "=== $name"
  wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" | tee "$WORK/wrk.out"
  local rps p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/wrk.out")
  summary+=("$(printf '%-18s %10s req/s   p99 %8s   non-2xx %s' "$name" "$rps" "$p99" "${non2xx:-0}")")
}

# Fill the account to 10,000 bindings first (untimed, 1 s steps), so that get and list
# run against the account size the targets name; the create phases come after them.
run=1
while (( $(live_bindings "$BASE") < 10000 )); do
  echo "filling: $(live_bindings "$BASE") bindings"
  RUN=$run wrk -t"$THREADS" -c4 -d1s -s "$WORK/create.lua" "$URL" >/dev/null
  run=$((run + 1))
done
GET_LIST_BINDINGS=$(live_bindings "$BASE")
echo "account holds $GET_LIST_BINDINGS bindings"

ID=$(curl -s "$URL?per_page=100" -H "Authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"][50]["id"])')
phase "get one" -H "Authorization: Bearer $TOKEN" "$URL/$ID"
phase "list (25 items)" -H "Authorization: Bearer $TOKEN" "$URL?per_page=25"

# Latency at about the target rates rather than at saturation (wrk is closed-loop: each
# connection waits PACE_MS after each response, so the rate is capped near
# connections / (PACE_MS + latency)). The paced create runs before the saturating one so
# that it does not inherit the backlog (WAL to checkpoint) the latter leaves behind.
paced() { # name, connections, pace_ms, wrk args...
  local name=$1 conns=$2 pace=$3; shift 3
  local saved=$CONNECTIONS
  CONNECTIONS=$conns
  PACE_MS=$pace phase "$name" "$@"
  CONNECTIONS=$saved
}
# about 10,000 lists/s
paced "list, paced" "${LIST_PACED_CONNECTIONS:-36}" "${LIST_PACE_MS:-2}" \
  -s "$WORK/get.lua" "$URL?per_page=25"
# about 2,000 creates/s
RUN=$run paced "create, paced" "${PACED_CONNECTIONS:-20}" "${PACE_MS:-8}" -s "$WORK/create.lua" "$URL"
run=$((run + 1))

RUN=$run phase "durable create" -s "$WORK/create.lua" "$URL"

echo; echo "=== summary ($(nproc) cores; get and list at $GET_LIST_BINDINGS bindings, $(live_bindings "$BASE") after the creates)"
printf '%s\n' "${summary[@]}"
echo; echo "=== store commits (one SQLite transaction + WAL fsync each), from /metrics"
curl -s "$BASE/metrics" | awk '
  /^inregion_store_commit_batches_total/ {b=$2} /^inregion_store_commits_total/ {c=$2}
  /^inregion_store_commit_duration_seconds_bucket/ {
    match($0, /le="[^"]*"/); le=substr($0, RSTART+4, RLENGTH-5); n[++k]=le; v[k]=$2 }
  END {
    printf "batches %d, operations %d (mean batch %.1f)\n", b, c, (b ? c / b : 0)
    for (i = 1; i <= k; i++) printf "  <= %-7s s: %6.2f%%\n", n[i], (b ? 100 * v[i] / b : 0)
  }'

