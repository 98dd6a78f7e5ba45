#!/usr/bin/env bash
# Propagation figure: one `inregion serve` and one `inregion edge` process holding every
# data center of the reference data (about 340), on loopback. For each of WRITES binding
# writes (creates and deletes, alternately), the time from the API's answer until every
# data center of the node has applied the version: p50 / p99 / max, one JSON line.
#
#   scripts/bench-edge-propagation.sh            # 1,000 writes
#   WRITES=200 scripts/bench-edge-propagation.sh
#
# Environment: WRITES (default 1000), ACTIVATION (delay|edges, default edges: every
# data center also reports each version to serve's registry, as in production),
# SKIP_BUILD=1. Anchor: Cloudflare's configuration store reaches 330 cities "within
# seconds"; on loopback the target is p99 <= 100 ms.
set -euo pipefail

cd "$(dirname "$0")/.."
WRITES=${WRITES:-1000}
ACTIVATION=${ACTIVATION:-edges}
TARGET=${CARGO_TARGET_DIR:-target}
EDGE_TOKEN=bench-edge-token-0000000000000000000
DEV_TOKEN=bench-dev-token-00000000000000000000
if [[ -z "${SKIP_BUILD:-}" ]]; then
  cargo build --release -q -p inregion --bin inregion --example edge_propagation
fi
BIN="$TARGET/release/inregion"
WORK=$(mktemp -d)
cleanup() {
  for p in ${NODE:-} ${SERVE:-}; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" serve --listen 127.0.0.1:0 --in-memory --activation "$ACTIVATION" \
  --edge-token "$EDGE_TOKEN" --dev-token "$DEV_TOKEN" >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE=$!
for _ in $(seq 100); do [[ -s "$WORK/serve.out" ]] && break; sleep 0.05; done
CONTROL=$(head -1 "$WORK/serve.out" | sed 's/^inregion: listening on //')
echo "serve at $CONTROL; one edge process with every data center (--dc all)" >&2
"$BIN" edge --dc all --control "$CONTROL" --listen 127.0.0.1:0 \
  --edge-token "$EDGE_TOKEN" >"$WORK/node.out" 2>"$WORK/node.err" &
NODE=$!
for _ in $(seq 200); do [[ -s "$WORK/node.out" ]] && break; sleep 0.05; done
NODE_URL=$(head -1 "$WORK/node.out" | sed 's/^inregion edge: listening on //')
"$TARGET/release/examples/edge_propagation" "$CONTROL" "$NODE_URL" "$EDGE_TOKEN" "$DEV_TOKEN" "$WRITES"
