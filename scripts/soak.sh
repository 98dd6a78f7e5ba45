#!/usr/bin/env bash
# Soak: a bounded mixed load against `inregion serve` for MINUTES minutes, then a restart
# that must find exactly the bindings the clients were told exist.
#
#   scripts/soak.sh                  # 10 minutes, 8 connections, unpaced
#   MINUTES=2 CONNECTIONS=8 scripts/soak.sh
#
# Load (CONNECTIONS client threads, each in turn): create a binding, read it, list a page
# of 25, and delete its binding created two rounds before, so that the account's
# size stays bounded while tombstones keep coming. The server runs with a short
# propagation delay (5 s) and tombstone retention (30 s): deleted bindings are purged
# during the run, so memory must stay flat. Every CHUNK seconds (default 30) one line:
# requests/s, errors (non-2xx answers and failed requests), p50/p99/p99.9, the server's
# RSS and open descriptors. At the end: errors, the RSS range after a 2-minute warm-up, and the
# restart check. Exits non-zero on any error or mismatch.
#
# Traffic goes to 127.0.0.1 only; the load generator is Python's standard library.
# Environment: MINUTES (10), CONNECTIONS (8 client threads), CHUNK (30), WORKERS (2),
# SKIP_BUILD=1, CARGO_TARGET_DIR, SERVE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-10}
CONNECTIONS=${CONNECTIONS:-8}
CHUNK=${CHUNK:-30}
WORKERS=${WORKERS:-2}
TARGET=${CARGO_TARGET_DIR:-target}
ACCOUNT=023e105f4ecef8ad9ca31a8372d0c353
TOKEN=soak-token-0000000000000000000000000000
PREFIX=b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3
. scripts/lib.sh
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --release -q -p inregion
BIN="$TARGET/release/inregion"
WORK=$(mktemp -d -p "$TARGET")
cleanup() { [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

write_config "$WORK/soak.toml" "$ACCOUNT" "$PREFIX"

start() {
  start_server "$WORK/out" --data "$WORK/data" --config "$WORK/soak.toml" --dev-token "$TOKEN" --propagation-delay 5s --tombstone-retention 30s --workers "$WORKERS" ${SERVE_ARGS:-}
}
start

# The load generator: CONNECTIONS threads, each with one kept-alive connection, each
# finishing its request in flight when the time is up, so that what the clients were
# told is exact (wrk stops mid-request, and the server commits a write whose client has
# gone: a count check after wrk can only be approximate).
python3 - "$BASE" "$PID" "$MINUTES" "$CHUNK" "$CONNECTIONS" "$TOKEN" "$ACCOUNT" "$PREFIX" >"$WORK/load.out" <<'PY' &
import http.client, json, os, sys, threading, time
base, pid, minutes, chunk, conns, token, account, prefix = sys.argv[1:9]
minutes, chunk, conns = float(minutes), float(chunk), int(conns)
host = base.split("//")[1]
path = f"/client/v4/accounts/{account}/dls/regional_services/prefix_bindings"
hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
lock = threading.Lock()
lat, errors, told = [], 0, 0
stop_at = time.monotonic() + minutes * 60

def worker(tid):
    global errors, told
    c = http.client.HTTPConnection(host, timeout=30)
    mine, n = [], 0
    def call(method, url, body=None, want=(200,)):
        global errors
        t = time.perf_counter()
        try:
            c.request(method, url, body=body, headers=hdr)
            r = c.getresponse()
            data = r.read()
            ok = r.status in want
        except Exception:
            ok, data, r = False, b"", None
            c.close()
        with lock:
            lat.append(time.perf_counter() - t)
            if not ok:
                errors += 1
        return (r.status if r else 0), data
    while time.monotonic() < stop_at:
        n += 1
        cidr = f"2001:db8:{tid:x}:{n >> 16:x}:{n & 0xffff:x}:{os.getpid() & 0xffff:x}::/96"
        st, data = call("POST", path, json.dumps({"prefix_id": prefix, "cidr": cidr, "region_key": "eu"}), (201,))
        if st == 201:
            mine.append(json.loads(data)["result"]["id"])
            with lock:
                told += 1
            call("GET", f"{path}/{mine[-1]}")
        call("GET", f"{path}?per_page=25")
        if len(mine) > 2:
            st, _ = call("DELETE", f"{path}/{mine.pop(0)}")
            if st == 200:
                with lock:
                    told -= 1

def proc(field):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field))

threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
for t in threads:
    t.start()
print(f"{'chunk':<6} {'req/s':>7} {'errors':>6} {'p50_ms':>7} {'p99_ms':>7} {'p99.9_ms':>8} {'rss_MiB':>8} {'fds':>4}", flush=True)
rss, ends, k, started = [], [], 0, time.monotonic()
while any(t.is_alive() for t in threads):
    t0 = time.monotonic()
    for t in threads:
        t.join(timeout=max(0.0, chunk - (time.monotonic() - t0)))
    with lock:
        got, lat[:] = sorted(lat), []
        errs = errors
    k += 1
    q = lambda p: got[min(len(got) - 1, int(len(got) * p))] * 1e3 if got else 0.0
    rss.append(proc("VmRSS:") / 1024)
    ends.append(time.monotonic() - started)
    print(f"{k:<6} {len(got) / max(1e-9, time.monotonic() - t0):>7.0f} {errs:>6} {q(0.5):>7.2f} {q(0.99):>7.2f} {q(0.999):>8.2f} {rss[-1]:>8.1f} {len(os.listdir(f'/proc/{pid}/fd')):>4}", flush=True)
# Warm-up: the first 2 minutes (propagation 5 s + retention 30 s + the 30 s purge
# period, with margin): after it, tombstones leave as fast as they come.
after = [r for r, e in zip(rss, ends) if e >= 120] or rss[-1:]
print(f"RESULT errors={errors} told={told} rss_warm={after[0]:.1f} rss_min={min(after):.1f} rss_max={max(after):.1f} rss_spread_pct={100 * (max(after) - min(after)) / min(after):.1f}")
PY
LOAD=$!
tail -f "$WORK/load.out" --pid "$LOAD" 2>/dev/null | grep -v '^RESULT' || true
wait "$LOAD"
read -r errors told warm rmin rmax spread <<<"$(for k in errors told rss_warm rss_min rss_max rss_spread_pct; do sed -n "s/.*[ ]$k=\([0-9.]*\).*/\1/p" "$WORK/load.out"; done | xargs)"
echo "summary: ${MINUTES} min, $CONNECTIONS connections; errors $errors; RSS after the 2-minute warm-up $rmin-$rmax MiB (spread $spread%)"
live_before=$(live_bindings "$BASE")
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
start
live_after=$(live_bindings "$BASE")
echo "restart: the clients were told $told bindings exist; the server held $live_before before the restart and $live_after after"
[[ "$errors" == 0 && "$told" == "$live_before" && "$told" == "$live_after" ]] || { echo "soak: FAILED" >&2; exit 1; }
echo "soak: ok"
