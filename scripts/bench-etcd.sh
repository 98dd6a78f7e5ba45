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

. scripts/lib.sh
need_wrk
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

write_config "$WORK/bench.toml" "$ACCOUNT" "$PREFIX"

# serve NAME ARGS...: starts a server, sets BASE_<NAME> and URL_<NAME>.
serve() {
  local name=$1; shift
  RUST_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --config "$WORK/bench.toml" \
    --dev-token "$TOKEN" --propagation-delay 5h --workers "$WORKERS" "$@" >"$WORK/$name.out" &
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

write_lua "$WORK" "$TOKEN" "$PREFIX"

field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$1"; }
# etcd_sum METRIC: the sum of a metric over the three members.
etcd_sum() {
  local t=0 v
  for i in 0 1 2; do
    v=$(curl -s "http://127.0.0.1:$((port_base + 2 * i))/metrics" | awk -v m="$1" '$1 == m {print $2}')
    t=$(python3 -c "print($t + float('${v:-0}'))")
  done
  echo "$t"
}
RUN=0
# create NAME CONNECTIONS PACE URL...: one wrk per URL at once; NAME.out holds the
# summed rate, the worse latencies and the summed errors.
create() {
  local name=$1 conns=$2 pace=$3; shift 3
  local k=0 outs=()
  for url in "$@"; do
    RUN=$((RUN + 1)); k=$((k + 1))
    if [[ -n "$pace" ]]; then
      RUN=$RUN PACE_MS=$pace wrk -t1 -c"$conns" -d"${DURATION}s" -s "$WORK/create.lua" "$url" >"$WORK/$name.$k.out" &
    else
      RUN=$RUN wrk -t1 -c"$conns" -d"${DURATION}s" -s "$WORK/create.lua" "$url" >"$WORK/$name.$k.out" &
    fi
    outs+=("$WORK/$name.$k.out")
  done
  wait_wrk
  merge "$name" "${outs[@]}"
}
# read NAME PATH_SUFFIX URL...: paced GETs.
readp() {
  local name=$1 suffix=$2; shift 2
  local k=0 outs=()
  for url in "$@"; do
    k=$((k + 1))
    PACE_MS=$PACE_MS wrk -t1 -c"$PACED_CONNECTIONS" -d"${DURATION}s" -s "$WORK/get.lua" "$url$suffix" >"$WORK/$name.$k.out" &
    outs+=("$WORK/$name.$k.out")
  done
  wait_wrk
  merge "$name" "${outs[@]}"
}
wait_wrk() { for p in $(jobs -p); do case " ${PIDS[*]} " in *" $p "*) ;; *) wait "$p";; esac; done; }
merge() {
  local name=$1; shift
  python3 - "$@" >"$WORK/$name.out" <<'PY'
import re, sys
rows = []
for path in sys.argv[1:]:
    text = open(path).read()
    m = re.search(r"RESULT (.*)", text)
    if not m:
        sys.exit(f"no RESULT in {path}:\n{text}")
    rows.append({k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())})
print("RESULT rate=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=%d" % (
    sum(r["rate"] for r in rows), max(r["p50_ms"] for r in rows), max(r["p99_ms"] for r in rows),
    max(r["p999_ms"] for r in rows), sum(r["errors"] for r in rows)))
PY
  echo "  $name: $(cat "$WORK/$name.out")"
}

PHASES=()
echo; echo "=== SQLite (serve --data, durability full)"
create sqlite_create_paced "$PACED_CONNECTIONS" "$PACE_MS" "$URL_S"; PHASES+=(sqlite_create_paced)
create sqlite_create_sat "$CONNECTIONS" "" "$URL_S"; PHASES+=(sqlite_create_sat)
ID_S=$(curl -s "$URL_S?per_page=5" -H "Authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"][2]["id"])')
readp sqlite_get_one "/$ID_S" "$URL_S"; PHASES+=(sqlite_get_one)
readp sqlite_list_25 "?per_page=25" "$URL_S"; PHASES+=(sqlite_list_25)

PROBE_RATE=""
if has_etcd; then
  echo; echo "=== etcd (3 members, replicas A and B on $ETCD_PREFIX)"
  w0=$(etcd_sum etcd_disk_wal_fsync_duration_seconds_count)
  ws0=$(etcd_sum etcd_disk_wal_fsync_duration_seconds_sum)
  create etcd_create_paced_x1 "$PACED_CONNECTIONS" "$PACE_MS" "$URL_A"; PHASES+=(etcd_create_paced_x1)
  w1=$(etcd_sum etcd_disk_wal_fsync_duration_seconds_count)
  ws1=$(etcd_sum etcd_disk_wal_fsync_duration_seconds_sum)
  PROBE_RATE=$(python3 -c "print(max(1.0, ($w1 - $w0) / 3 / $DURATION))")
  WAL_MEAN_MS=$(python3 -c "d = $w1 - $w0; print(round(($ws1 - $ws0) / d * 1e3, 3) if d else 0)")
  echo "  etcd WAL fsyncs during the phase: $(python3 -c "print(int($w1 - $w0))") over 3 members (${PROBE_RATE}/s per member, mean ${WAL_MEAN_MS} ms)"
  create etcd_create_paced_x2 "$PACED_CONNECTIONS" "$PACE_MS" "$URL_A" "$URL_B"; PHASES+=(etcd_create_paced_x2)
  create etcd_create_sat_x1 "$CONNECTIONS" "" "$URL_A"; PHASES+=(etcd_create_sat_x1)
  create etcd_create_sat_x2 "$CONNECTIONS" "" "$URL_A" "$URL_B"; PHASES+=(etcd_create_sat_x2)
  ID_A=$(curl -s "$URL_A?per_page=5" -H "Authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"][2]["id"])')
  readp etcd_get_one_x2 "/$ID_A" "$URL_A" "$URL_B"; PHASES+=(etcd_get_one_x2)
  readp etcd_list_25_x2 "?per_page=25" "$URL_A" "$URL_B"; PHASES+=(etcd_list_25_x2)
fi
[[ -n "$PROBE_RATE" ]] || PROBE_RATE=$(python3 -c "print(1000.0 / $PACE_MS * $PACED_CONNECTIONS)")

echo; echo "=== fsync probe: 3 loops of 2 KiB pwrite + fdatasync, each at ${PROBE_RATE}/s, ${DURATION} s, beside the data"
for i in 0 1 2; do
  python3 scripts/fsync_probe.py "$WORK/probe$i.bin" "$PROBE_RATE" "$DURATION" "$WORK/probe$i.lat" >/dev/null &
done
wait_wrk
python3 - "$DURATION" "$WORK"/probe?.lat >"$WORK/probe.out" <<'PY'
import sys
duration = float(sys.argv[1])
lat = sorted(float(x) / 1e6 for p in sys.argv[2:] for x in open(p).read().split())
pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e3
print("RESULT rate=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=0"
      % (len(lat) / duration, pct(50), pct(99), pct(99.9)))
PY
echo "  fsync_probe: $(cat "$WORK/probe.out")"

echo
echo "=== summary ($(nproc) cores, $(df --output=source "$WORK" | tail -1), ${DURATION} s per phase, paced: $PACED_CONNECTIONS connections x ${PACE_MS} ms per URL, saturated: $CONNECTIONS per URL)"
python3 - "$WORK" "${WAL_MEAN_MS:-0}" "${PHASES[@]}" <<'PY'
import json, re, sys
work, wal_mean, phases = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
def load(name):
    m = re.search(r"RESULT (.*)", open(f"{work}/{name}.out").read())
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
probe = load("probe")
rows = {p: load(p) for p in phases}
print(f"{'phase':24} {'rate/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'errors':>7} {'p50/probe':>10} {'p99/probe':>10}")
print(f"{'fsync_probe':24} {probe['rate']:9.0f} {probe['p50_ms']:8.3f} {probe['p99_ms']:8.3f} {probe['p999_ms']:9.3f} {0:7d} {1:10.2f} {1:10.2f}")
out = {"bench": "etcd", "probe": probe, "etcd_wal_fsync_mean_ms": wal_mean}
for p, r in rows.items():
    r50 = r["p50_ms"] / probe["p50_ms"] if probe["p50_ms"] else 0
    r99 = r["p99_ms"] / probe["p99_ms"] if probe["p99_ms"] else 0
    print(f"{p:24} {r['rate']:9.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['p999_ms']:9.3f} {int(r['errors']):7d} {r50:10.2f} {r99:10.2f}")
    out[p] = dict(r, p50_ratio=round(r50, 2), p99_ratio=round(r99, 2))
def ratio(a, b):
    return round(rows[a]["rate"] / rows[b]["rate"], 2) if a in rows and b in rows and rows[b]["rate"] else None
out["sat_x2_over_x1"] = ratio("etcd_create_sat_x2", "etcd_create_sat_x1")
out["etcd_sat_over_sqlite_sat"] = ratio("etcd_create_sat_x1", "sqlite_create_sat")
if out["sat_x2_over_x1"] is not None:
    print(f"saturated creates: two replicas / one = {out['sat_x2_over_x1']}x; etcd (one replica) / SQLite = {out['etcd_sat_over_sqlite_sat']}x")
print(json.dumps(out))
PY
