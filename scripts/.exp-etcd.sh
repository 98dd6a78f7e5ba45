#!/usr/bin/env bash
# Durable creates and reads through `inregion serve` replicas on a 3-member etcd cluster,
# beside the SQLite default and a raw fsync probe, all on the same disk, in one run.
#
#   scripts/bench-etcd.sh                    # 15 s per phase, about 3 minutes
#   DURATION=30 scripts/bench-etcd.sh
#
# Setup: a 3-member etcd cluster on loopback (data directories under BENCH_DIR), two
# `serve --store etcd://... --etcd-prefix P` replicas on one prefix, one `serve --data`
# (SQLite, --durability full).
# Phases (DURATION each):
#   sqlite create paced     PACED_CONNECTIONS wrk connections, PACE_MS pause each;
#   sqlite create saturated CONNECTIONS connections, no pause;
#   etcd create paced x1    as above, through replica A;
#   etcd create paced x2    PACED_CONNECTIONS through A and as many through B at once
#                           (two wrk processes; rates summed, latency the worse of the two);
#   etcd create sat x1 / x2 CONNECTIONS through A, then CONNECTIONS through each;
#   fsync probe             3 processes (one per member), each a loop of 2 KiB pwrite +
#                           fdatasync on a preallocated file beside the data, paced at the
#                           WAL fsync rate one member did in "etcd create paced x1" (from
#                           etcd's /metrics): the disk alone under the cluster's fsync load;
#   get one / list 25       paced, through A and B at once (and SQLite after, alone).
# Printed at the end: a table (rate, p50, p99, p99.9, errors, p50 and p99 as ratios to the
# probe's) and one JSON line. On a shared VM disk the ratios are the figure.
#
# Environment: DURATION (s, default 15), CONNECTIONS (64), PACED_CONNECTIONS (10),
# PACE_MS (10), WORKERS (server threads, 2), BENCH_DIR (default target/bench-etcd: the
# repository's disk), SKIP_BUILD=1, BIN (an inregion binary; default target/release),
# INREGION_ETCD (an etcd 3.4/3.5 binary; default target/tools/etcd-3.4.23, installed
# with `apt-get download etcd-server` + `dpkg -x` when missing, as the tests do),
# STORES ("sqlite etcd" by default; "sqlite" skips the etcd phases).
# Traffic goes to 127.0.0.1 only; wrk is installed from Debian's packages if missing.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-64}
PACED_CONNECTIONS=${PACED_CONNECTIONS:-10}
PACE_MS=${PACE_MS:-10}
WORKERS=${WORKERS:-2}
STORES=${STORES:-sqlite etcd}
TARGET=${CARGO_TARGET_DIR:-target}
BENCH_DIR=${BENCH_DIR:-$TARGET/bench-etcd}
ACCOUNT=023e105f4ecef8ad9ca31a8372d0c353
TOKEN=bench-token-00000000000000000000000000
PREFIX=b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3
has_etcd() { [[ " $STORES " == *" etcd "* ]]; }

if ! command -v wrk >/dev/null; then
  echo "wrk not found: installing the Debian package" >&2
  apt-get install -y -qq wrk >/dev/null
fi
if [[ -z "${BIN:-}" ]]; then
  if [[ -z "${SKIP_BUILD:-}" ]]; then cargo build --release -q -p inregion; fi
  BIN="$TARGET/release/inregion"
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# etcd: $INREGION_ETCD, else target/tools/etcd-3.4.23, else apt-get download (no root
# needed with package lists) into a staging directory renamed into place.
etcd_version() { "$1" --version 2>/dev/null | sed -n 's/^etcd Version: //p'; }
find_etcd() {
  if [[ -n "${INREGION_ETCD:-}" ]]; then echo "$INREGION_ETCD"; return; fi
  local tools="$TARGET/tools" bin="$TARGET/tools/etcd-3.4.23/usr/bin/etcd"
  if [[ -n "$(etcd_version "$bin")" ]]; then echo "$bin"; return; fi
  mkdir -p "$tools"
  local stage
  stage=$(mktemp -d "$tools/.etcd-install-XXXXXX")
  (cd "$stage" && apt-get download -q etcd-server >&2) || {
    echo "apt-get download etcd-server failed: run apt-get update, or set INREGION_ETCD" >&2
    rm -rf "$stage"; exit 1; }
  dpkg -x "$stage"/etcd-server_*.deb "$stage/root"
  local v
  v=$(etcd_version "$stage/root/usr/bin/etcd")
  [[ "$v" == 3.4.* || "$v" == 3.5.* ]] || { echo "etcd $v: need 3.4 or 3.5" >&2; exit 1; }
  mv -T "$stage/root" "$tools/etcd-$v" 2>/dev/null || true
  rm -rf "$stage"
  echo "$tools/etcd-$v/usr/bin/etcd"
}

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
WORK=$(cd "$BENCH_DIR" && pwd)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

cat >"$WORK/bench.toml" <<TOML
[[prefixes]]
account = "$ACCOUNT"
id = "$PREFIX"
cidr = "2001:db8::/32"
asn = 64496
TOML

# serve NAME ARGS...: starts a server, sets BASE_<NAME> and URL_<NAME>.
serve() {
  local name=$1; shift
  RUST_LOG=${RUST_LOG_SERVE:-warn} "$BIN" serve --listen 127.0.0.1:0 --config "$WORK/bench.toml" \
    --dev-token "$TOKEN" --propagation-delay 5h --workers "$WORKERS" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  local base=""
  for _ in $(seq 200); do
    base=$(head -1 "$WORK/$name.out" 2>/dev/null | awk '/listening on/ {print $4}')
    [[ -n "$base" ]] && break
    sleep 0.1
  done
  [[ "$base" == http://127.0.0.1:* ]] || { echo "server $name did not start" >&2; exit 1; }
  printf -v "BASE_$name" %s "$base"
  printf -v "URL_$name" %s "$base/client/v4/accounts/$ACCOUNT/dls/regional_services/prefix_bindings"
  echo "server $name: $base ($*)"
}

if has_etcd; then
  ETCD=$(find_etcd)
  echo "etcd $(etcd_version "$ETCD") at $ETCD"
  port_base=$((20000 + RANDOM % 10000))
  CLUSTER=""
  for i in 0 1 2; do CLUSTER+="${CLUSTER:+,}m$i=http://127.0.0.1:$((port_base + 2 * i + 1))"; done
  ENDPOINTS=""
  CLUSTER_TOKEN="bench-$RANDOM$RANDOM"
  for i in 0 1 2; do
    cp=$((port_base + 2 * i)); pp=$((port_base + 2 * i + 1))
    ENDPOINTS+="${ENDPOINTS:+,}127.0.0.1:$cp"
    "$ETCD" --name "m$i" --data-dir "$WORK/etcd/m$i" \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "$CLUSTER" --initial-cluster-token "$CLUSTER_TOKEN" \
      --initial-cluster-state new --max-txn-ops 10000 --max-request-bytes 33554432 \
      --logger zap --log-outputs stderr </dev/null >"$WORK/etcd-m$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in 0 1 2; do
    ok=""
    for _ in $(seq 300); do
      if curl -sf "http://127.0.0.1:$((port_base + 2 * i))/health" | grep -q '"health":"true"'; then ok=1; break; fi
      sleep 0.1
    done
    [[ -n "$ok" ]] || { echo "etcd member m$i not healthy; log:" >&2; tail -20 "$WORK/etcd-m$i.log" >&2; exit 1; }
  done
  echo "etcd cluster: $ENDPOINTS, data in $WORK/etcd ($(df --output=source "$WORK" | tail -1))"
  ETCD_PREFIX="/bench-$RANDOM$RANDOM/"
  serve A --store "etcd://$ENDPOINTS" --etcd-prefix "$ETCD_PREFIX" --etcd-max-txn-ops 10000
  serve B --store "etcd://$ENDPOINTS" --etcd-prefix "$ETCD_PREFIX" --etcd-max-txn-ops 10000
fi
serve S --data "$WORK/sqlite"

cat >"$WORK/create.lua" <<LUA
local run = tonumber(os.getenv("RUN"))
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer $TOKEN"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local cidr = string.format("2001:db8:%x:%x:%x:%x::/96", run, tid, math.floor(counter / 65536), counter % 65536)
  return wrk.format(nil, nil, nil, '{"prefix_id":"$PREFIX","cidr":"' .. cidr .. '","region_key":"eu"}')
end
local pace = tonumber(os.getenv("PACE_MS") or "")
if pace then
  function delay() return pace end
end
function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rate=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, errors))
end
LUA
m() { curl -s -m 2 "$1/metrics" | grep -E "^inregion_etcd_txn_conflicts_total|^inregion_store_commit_batches_total|^inregion_store_commits_total|^inregion_etcd_watch_lag|^inregion_etcd_position" | awk '{printf "%s=%s ", $1, $2}' | sed 's/inregion_//g'; echo; }
RUN=21 wrk -t1 -c64 -d8s -s "$WORK/create.lua" "$URL_A" > $WORK/x1.out
echo "after x1: A: $(m $BASE_A)"; echo "after x1: B: $(m $BASE_B)"
RUN=22 wrk -t1 -c64 -d${D:-10}s -s "$WORK/create.lua" "$URL_A" > $WORK/xa.out & pa=$!
RUN=23 wrk -t1 -c64 -d${D:-10}s -s "$WORK/create.lua" "$URL_B" > $WORK/xb.out & pb=$!
for s in $(seq ${D:-10}); do sleep 1; echo "t=$s A: $(m $BASE_A)"; echo "t=$s B: $(m $BASE_B)"; done
wait $pa $pb
grep -E "requests in|RESULT" $WORK/x1.out $WORK/xa.out $WORK/xb.out
