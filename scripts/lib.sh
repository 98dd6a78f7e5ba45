# Shared by the HTTP benchmarks and the soak (bench-api.sh, bench-durable.sh, bench-etcd.sh,
# bench-reset.sh, soak.sh); sourced, not run.

# need_wrk: installs wrk from Debian's packages when it is missing.
need_wrk() {
  if ! command -v wrk >/dev/null; then
    echo "wrk not found: installing the Debian package" >&2
    apt-get install -y -qq wrk >/dev/null
  fi
}

# write_lua DIR TOKEN PREFIX: writes DIR/create.lua and DIR/get.lua for wrk.
#   create.lua  POSTs bindings with unique CIDRs per run, thread and request
#               (2001:db8:RUN:THREAD:HI:LO::/96; RUN from the environment, default 0);
#   get.lua     GETs the URL given to wrk, with the token.
# Both: PACE_MS (environment) makes each connection wait that long before its next
# request, which caps the offered rate near connections / (PACE_MS + latency) (wrk is
# closed-loop: a paced phase measures latency at a set rate instead of at saturation);
# with PACE_DIST=exp each pause is drawn from an exponential distribution of that mean
# instead (fixed pauses let the connections fall into step: every response of one
# group commit comes back at once, so every connection asks again at once);
# at the end they print `RESULT rate= p50_ms= p99_ms= p999_ms= errors=` (wrk's own
# summary has no p99.9), and with HIST=FILE write the quantile function (0.1 % steps,
# 0.01 % past p99) after the request count, for percentiles over several runs.
write_lua() {
  local dir=$1 token=$2 prefix=$3
  local common
  common=$(cat <<'LUA'
local pace = tonumber(os.getenv("PACE_MS") or "")
if pace and os.getenv("PACE_DIST") == "exp" then
  -- Exponential pauses (mean PACE_MS, whole milliseconds as wrk takes them, same seed
  -- every run): the connections do not fall into step, so arrivals are close to those
  -- of independent clients rather than bursts of every connection at once.
  math.randomseed(1)
  function delay() return math.floor(-pace * math.log(1 - math.random()) + 0.5) end
elseif pace then
  function delay() return pace end
end
function done(summary, latency, requests)
  local hist = os.getenv("HIST")
  if hist then
    local f = io.open(hist, "w")
    f:write(summary.requests, "\n")
    for i = 1, 990 do f:write(latency:percentile(i / 10), "\n") end
    for i = 9901, 10000 do f:write(latency:percentile(i / 100), "\n") end
    f:close()
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rate=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, errors))
end
LUA
)
  cat >"$dir/create.lua" <<LUA
local run = tonumber(os.getenv("RUN") or "0")
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer $token"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local cidr = string.format("2001:db8:%x:%x:%x:%x::/96", run, tid, math.floor(counter / 65536), counter % 65536)
  return wrk.format(nil, nil, nil, '{"prefix_id":"$prefix","cidr":"' .. cidr .. '","region_key":"eu"}')
end
$common
LUA
  cat >"$dir/get.lua" <<LUA
function init(args) wrk.headers["Authorization"] = "Bearer $token" end
$common
LUA
}

# write_config FILE ACCOUNT PREFIX: a server config seeding one BYOIP prefix,
# 2001:db8::/32 (ASN 64496), for the account.
write_config() {
  cat >"$1" <<TOML
[[prefixes]]
account = "$2"
id = "$3"
cidr = "2001:db8::/32"
asn = 64496
TOML
}

# start_server OUT ARGS...: starts `$BIN serve --listen 127.0.0.1:0 ARGS...` in the
# background (RUST_LOG=warn unless set), its output in OUT; sets PID and BASE (its
# http://127.0.0.1:PORT) once it listens, or exits if it does not within 10 s.
start_server() {
  local out=$1; shift
  RUST_LOG=${RUST_LOG:-warn} ${BIN_WRAP[@]+"${BIN_WRAP[@]}"} "$BIN" serve --listen 127.0.0.1:0 "$@" >"$out" &
  PID=$!
  for _ in $(seq 100); do grep -q "listening on" "$out" 2>/dev/null && break; sleep 0.1; done
  BASE=$(head -1 "$out" | awk '{print $4}')
  [[ "$BASE" == http://127.0.0.1:* ]] || { echo "server did not start (output in $out)" >&2; exit 1; }
}

# live_bindings BASE: bindings provisioning or active, from the server's /metrics.
live_bindings() {
  curl -s "$1/metrics" | awk '/^inregion_bindings\{state="provisioning"\}/ {p=$2} /^inregion_bindings\{state="active"\}/ {a=$2} END {print p+a}'
}
