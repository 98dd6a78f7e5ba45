#!/usr/bin/env bash
# Durable creates over HTTP against a raw fsync probe on the same disk, in one run.
#
#   scripts/bench-durable.sh                 # 30 s per phase
#   DURATION=60 scripts/bench-durable.sh
#
# Phases (all on loopback, data and probe file in the same directory, BENCH_DIR):
#   1. create, paced   PACED_CONNECTIONS (default 20) wrk connections, each waiting PACE_MS
#                      (default 8) ms between requests (on average: exponential pauses,
#                      PACE_DIST=exp; PACE_DIST=fixed for a fixed pause): about 2,000
#                      durable creates/s,
#                      `inregion serve --durability full` (every create fsynced);
#   2. fsync probe     a loop of 2 KiB pwrite + fdatasync on a file beside the database,
#                      paced at the rate of store commits (fsyncs) the server did in
#                      phase 1 (from /metrics), for as long: the disk alone;
#   3. get one, paced  as phase 1, reading one binding: the same HTTP path without a
#                      write, i.e. what the machine itself adds (wrk shares its cores);
#   4. create, saturated   CONNECTIONS (default 64) connections without pacing.
#   Phases 1 and 2 alternate in ROUNDS (default 5) slices of DURATION / ROUNDS each, so
#   that both see the same disk when its speed drifts (other tenants, builds); their
#   percentiles are over all slices (wrk's per-slice quantiles weighted by requests; the
#   probe's every sample).
#   The probe is reported twice: each fdatasync's own time (the target's yardstick), and
#   the time from when each write was due to when it was durable. A paced loop that
#   stalls 50 ms counts the stall once in the first view, while every request that
#   arrives at the server during such a stall waits for it; the second view counts it
#   for every write due meanwhile, as an open-loop client would (wrk2's correction).
# Between the two, a model: an ideal group commit fed the creates' arrival rate whose
# every commit takes one of the probe's measured fsyncs and nothing else
# (scripts/group_commit_model.py): how far the disk alone puts any durable server from
# the probe, so that create/ideal is what this server adds. And the server's own split
# of the paced rounds from /metrics: each write's wait in the queue (behind the batch in
# flight) and the commits' durations.
# Printed at the end: p50/p99/p99.9 of both and the ratios create/probe (targets: p99 and
# p99.9 <= 2x the probe's), ideal/probe and create/ideal, the saturated rate (target
# >= 5,000/s), and one JSON line.
# Absolute milliseconds on a shared VM disk mean little; the ratios are the figure.
#
# Environment: DURATION (seconds, default 30), ROUNDS (default 5), BENCH_DIR (default target/bench-durable:
# the repository's disk; /tmp may be a tmpfs elsewhere), WORKERS (server threads,
# default 2), SKIP_BUILD=1, BIN (a built `inregion` to measure instead: an A/B of two
# commits), SERVE_ARGS (extra flags, e.g. "--durability process"),
# SERVER_CPUS and CLIENT_CPUS (taskset CPU lists, e.g. 1 and 0: the server and the load
# (wrk, the probe) on separate cores instead of sharing every core; default: unpinned),
# RT_PRIORITY (e.g. 10: the server's threads and the probe run SCHED_FIFO at that
# priority during phases 1-3, wrk at the normal policy, so that the load generator cannot
# preempt either side of the comparison: on a machine of two cores, what a load generator
# on another machine would give; needs root or CAP_SYS_NICE; the saturated phase runs at
# the normal policy, where a real-time server would starve wrk).
# Traffic goes to 127.0.0.1 only; wrk is installed from Debian's packages if missing.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
ROUNDS=${ROUNDS:-5}
SLICE=$(( DURATION / ROUNDS > 2 ? DURATION / ROUNDS : 2 ))
CONNECTIONS=${CONNECTIONS:-64}
PACED_CONNECTIONS=${PACED_CONNECTIONS:-20}
PACE_MS=${PACE_MS:-8}
# Exponential pauses: see write_lua in scripts/lib.sh. PACE_DIST=fixed gives the
# figures of sessions up to 19 (connections in step, bursts of PACED_CONNECTIONS).
export PACE_DIST=${PACE_DIST:-exp}
WORKERS=${WORKERS:-2}
TARGET=${CARGO_TARGET_DIR:-target}
BENCH_DIR=${BENCH_DIR:-$TARGET/bench-durable}
ACCOUNT=023e105f4ecef8ad9ca31a8372d0c353
TOKEN=bench-token-00000000000000000000000000
PREFIX=b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3

. scripts/lib.sh
need_wrk
if [[ -z "${BIN:-}" ]]; then
  if [[ -z "${SKIP_BUILD:-}" ]]; then cargo build --release -q -p inregion; fi
  BIN="$TARGET/release/inregion"
fi

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
WORK=$(cd "$BENCH_DIR" && pwd)
cleanup() {
  [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
}
trap cleanup EXIT

write_config "$WORK/bench.toml" "$ACCOUNT" "$PREFIX"

if [[ -n "${SERVER_CPUS:-}" ]]; then BIN_WRAP=(taskset -c "$SERVER_CPUS"); fi
CLIENT=()
if [[ -n "${CLIENT_CPUS:-}" ]]; then CLIENT=(taskset -c "$CLIENT_CPUS"); fi
start_server "$WORK/out" --data "$WORK/data" --config "$WORK/bench.toml" --dev-token "$TOKEN" --propagation-delay 5h --workers "$WORKERS" ${SERVE_ARGS:-}
PROBE_WRAP=()
POLICY="at the normal policy"
if [[ -n "${RT_PRIORITY:-}" ]]; then
  POLICY="SCHED_FIFO $RT_PRIORITY (phases 1-3)"
  # Every thread the server has now; threads it starts later inherit the policy.
  chrt -a -f -p "$RT_PRIORITY" "$PID" >/dev/null ||
    { echo "RT_PRIORITY: cannot make the server SCHED_FIFO (needs root or CAP_SYS_NICE)" >&2; exit 1; }
  PROBE_WRAP=(chrt -f "$RT_PRIORITY")
fi
URL="$BASE/client/v4/accounts/$ACCOUNT/dls/regional_services/prefix_bindings"
echo "server $BASE (pid $PID, $WORKERS workers, cpus ${SERVER_CPUS:-all}; load on cpus ${CLIENT_CPUS:-all}), data in $WORK/data ($(df --output=source "$WORK" | tail -1))"

write_lua "$WORK" "$TOKEN" "$PREFIX"

metric() { curl -s "$BASE/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$1"; }

echo; echo "=== 1+2. create, paced ($PACED_CONNECTIONS connections, ${PACE_MS} ms pause ($PACE_DIST): about 2,000/s), alternating with"
echo "    the fsync probe (2 KiB pwrite + fdatasync beside the database at the server's fsync rate): $ROUNDS x ${SLICE} s each"
for r in $(seq "$ROUNDS"); do
  b0=$(metric inregion_store_commit_batches_total)
  curl -s "$BASE/metrics" >"$WORK/metrics.$r.before"
  RUN=$r HIST="$WORK/create.$r.q" PACE_MS=$PACE_MS "${CLIENT[@]}" wrk -t1 -c"$PACED_CONNECTIONS" -d"${SLICE}s" -s "$WORK/create.lua" "$URL" >"$WORK/paced.$r.out"
  b1=$(metric inregion_store_commit_batches_total)
  curl -s "$BASE/metrics" >"$WORK/metrics.$r.after"
  rate=$(python3 -c "print(max(1.0, ($b1 - $b0) / $SLICE))")
  "${CLIENT[@]}" ${PROBE_WRAP[@]+"${PROBE_WRAP[@]}"} python3 scripts/fsync_probe.py "$WORK/probe.bin" "$rate" "$SLICE" "$WORK/probe.$r.lat" "$WORK/probe.$r.arr" >"$WORK/probe.$r.out"
  echo "  round $r: create $(grep RESULT "$WORK/paced.$r.out" | cut -d' ' -f2-), fsyncs $((b1 - b0)); probe $(grep RESULT "$WORK/probe.$r.out" | cut -d' ' -f2-)"
done
# Percentiles over all rounds: wrk's quantile points weighted by their share of requests,
# the probe's samples as they are.
python3 - "$WORK" "$ROUNDS" "$SLICE" <<'PY'
import sys
work, rounds, slice_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def pct(points, p):
    points.sort()
    total = sum(w for _, w in points)
    acc = 0.0
    for v, w in points:
        acc += w
        if acc >= total * p / 100:
            return v / 1e3
    return points[-1][0] / 1e3
create, probe, arrivals, requests, errors = [], [], [], 0, 0
for r in range(1, rounds + 1):
    q = [float(x) for x in open(f"{work}/create.{r}.q").read().split()]
    n, qs = q[0], q[1:]
    requests += n
    create += [(v, n * 0.001) for v in qs[:990]] + [(v, n * 0.0001) for v in qs[990:]]
    out = open(f"{work}/paced.{r}.out").read()
    errors += int(out.split("errors=")[1].split()[0])
    probe += [(float(x), 1.0) for x in open(f"{work}/probe.{r}.lat").read().split()]
    arrivals += [(float(x), 1.0) for x in open(f"{work}/probe.{r}.arr").read().split()]
span = rounds * slice_s
with open(f"{work}/paced.out", "w") as f:
    f.write("RESULT rate=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=%d\n"
            % (requests / span, pct(create, 50), pct(create, 99), pct(create, 99.9), errors))
with open(f"{work}/probe.out", "w") as f:
    f.write("RESULT rate=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=0\n"
            % (len(probe) / span, pct(probe, 50), pct(probe, 99), pct(probe, 99.9)))
# The server's own split of a write's time (from /metrics, the paced rounds only): the
# wait in the queue for its batch's commit to start, and the commits' durations.
# Percentiles are interpolated within the histogram's buckets, as Prometheus'
# histogram_quantile does; the means are exact.
def buckets(path, name):
    out = {}
    for line in open(path):
        if line.startswith(name + '_bucket{le="'):
            le = line.split('"')[1]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
        elif line.startswith(name + "_sum "):
            out["sum"] = float(line.split()[-1])
    return out
def split(name):
    total = {}
    for r in range(1, rounds + 1):
        a, b = buckets(f"{work}/metrics.{r}.before", name), buckets(f"{work}/metrics.{r}.after", name)
        for k in b:
            total[k] = total.get(k, 0.0) + b[k] - a.get(k, 0.0)
    bounds = sorted(k for k in total if k != "sum")
    n = total[bounds[-1]]
    def q(p):
        lo, below = 0.0, 0.0
        for le in bounds:
            if total[le] >= n * p / 100:
                if le == float("inf"):
                    return lo
                return lo + (le - lo) * (n * p / 100 - below) / max(total[le] - below, 1e-9)
            lo, below = le, total[le]
        return lo
    return n, total["sum"] / max(n, 1), q(50), q(99)
with open(f"{work}/split.out", "w") as f:
    for label, name in (("wait", "inregion_store_commit_wait_seconds"),
                        ("commit", "inregion_store_commit_duration_seconds")):
        n, mean, q50, q99 = split(name)
        f.write("%s n=%d mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f\n" % (label, n, mean * 1e3, q50 * 1e3, q99 * 1e3))
with open(f"{work}/arrivals.out", "w") as f:
    f.write("RESULT rate=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=0\n"
            % (len(arrivals) / span, pct(arrivals, 50), pct(arrivals, 99), pct(arrivals, 99.9)))
PY
echo "  all rounds: create $(cut -d' ' -f2- "$WORK/paced.out")"
echo "  all rounds: probe  $(cut -d' ' -f2- "$WORK/probe.out")"
echo "  all rounds: probe, from when each write was due  $(cut -d' ' -f2- "$WORK/arrivals.out" | sed 's/ errors=0//')"
# The yardstick between the two: an ideal group commit (no CPU, no HTTP) on the probe's
# fsync times, at the rate the creates arrived (scripts/group_commit_model.py).
python3 scripts/group_commit_model.py "$(field "$WORK/paced.out" rate)" "$WORK"/probe.*.lat >"$WORK/ideal.out"
echo "  ideal group commit on the probe's fsyncs at that rate  $(cut -d' ' -f2- "$WORK/ideal.out")"
echo "  server's split (means; p50/p99 interpolated in /metrics' buckets):"
sed 's/^/    /' "$WORK/split.out"

echo; echo "=== 3. get one, paced as phase 1: the HTTP path without a write (the floor on this machine)"
ID=$(curl -s "$URL?per_page=5" -H "Authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"][2]["id"])')
PACE_MS=$PACE_MS "${CLIENT[@]}" wrk -t1 -c"$PACED_CONNECTIONS" -d"${DURATION}s" -s "$WORK/get.lua" "$URL/$ID" | tee "$WORK/get.out"

if [[ -n "${RT_PRIORITY:-}" ]]; then chrt -a -o -p 0 "$PID" >/dev/null; fi
echo; echo "=== 4. create, saturated ($CONNECTIONS connections), ${DURATION} s"
RUN=$((ROUNDS + 1)) "${CLIENT[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/create.lua" "$URL" | tee "$WORK/sat.out"

read -r pr p50 p99 p999 perr <<<"$(for k in rate p50_ms p99_ms p999_ms errors; do field "$WORK/paced.out" $k; done | xargs)"
read -r qr q50 q99 q999 <<<"$(for k in rate p50_ms p99_ms p999_ms; do field "$WORK/probe.out" $k; done | xargs)"
read -r ar a50 a99 a999 <<<"$(for k in rate p50_ms p99_ms p999_ms; do field "$WORK/arrivals.out" $k; done | xargs)"
read -r i50 i99 i999 <<<"$(for k in p50_ms p99_ms p999_ms; do field "$WORK/ideal.out" $k; done | xargs)"
read -r gr g50 g99 g999 <<<"$(for k in rate p50_ms p99_ms p999_ms; do field "$WORK/get.out" $k; done | xargs)"
read -r sr serr <<<"$(for k in rate errors; do field "$WORK/sat.out" $k; done | xargs)"
echo
echo "=== summary ($(nproc) cores, $(df --output=source "$WORK" | tail -1); ${SERVE_ARGS:-durability full}; server cpus ${SERVER_CPUS:-all}, load cpus ${CLIENT_CPUS:-all}; server and probe $POLICY)"
python3 - "${RT_PRIORITY:-0}" "$pr" "$p50" "$p99" "$p999" "$perr" "$qr" "$q50" "$q99" "$q999" "$sr" "$serr" "$gr" "$g50" "$g99" "$g999" "$a50" "$a99" "$a999" "$i50" "$i99" "$i999" <<'PY'
import json, sys
rt_priority = int(sys.argv[1])
(pr, p50, p99, p999, perr, qr, q50, q99, q999, sr, serr, gr, g50, g99, g999,
 a50, a99, a999, i50, i99, i999) = map(float, sys.argv[2:])
print(f"paced create   {pr:8.0f}/s  p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  p99.9 {p999:7.3f} ms  errors {perr:.0f}")
print(f"fsync probe    {qr:8.0f}/s  p50 {q50:7.3f} ms  p99 {q99:7.3f} ms  p99.9 {q999:7.3f} ms")
print(f"  from when due  {'':8}   p50 {a50:7.3f} ms  p99 {a99:7.3f} ms  p99.9 {a999:7.3f} ms")
print(f"ideal group commit        p50 {i50:7.3f} ms  p99 {i99:7.3f} ms  p99.9 {i999:7.3f} ms"
      f"  (no CPU, no HTTP: the probe's fsyncs at the create rate)")
print(f"paced get one  {gr:8.0f}/s  p50 {g50:7.3f} ms  p99 {g99:7.3f} ms  p99.9 {g999:7.3f} ms")
print(f"ratio create/get (the write's own cost): p99 {p99 / g99:.2f}x, p99.9 {p999 / g999:.2f}x")
print(f"ratio create/probe: p99 {p99 / q99:.2f}x (target <= 2), p99.9 {p999 / q999:.2f}x (target <= 2)")
print(f"ratio create/probe from when due (a disk stall counted for every write it delays): "
      f"p99 {p99 / a99:.2f}x, p99.9 {p999 / a999:.2f}x")
print(f"ratio ideal/probe (the disk's own floor for a group commit): p99 {i99 / q99:.2f}x, p99.9 {i999 / q999:.2f}x")
print(f"ratio create/ideal (what the server adds to the ideal): p99 {p99 / i99:.2f}x, p99.9 {p999 / i999:.2f}x")
print(f"saturated create {sr:8.0f}/s (target >= 5000), errors {serr:.0f}")
print(json.dumps({"bench": "durable-create", "paced_rate": round(pr), "p99_ratio": round(p99 / q99, 2),
                  "p999_ratio": round(p999 / q999, 2), "create_p99_ms": p99, "probe_p99_ms": q99,
                  "create_p999_ms": p999, "probe_p999_ms": q999,
                  "probe_due_p99_ms": a99, "probe_due_p999_ms": a999,
                  "ideal_p99_ms": i99, "ideal_p999_ms": i999, "get_p99_ms": g99, "get_p999_ms": g999,
                  "saturated_rate": round(sr), "rt_priority": rt_priority,
                  "errors": perr + serr}))
PY
