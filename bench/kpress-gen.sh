#!/usr/bin/env bash
# Adapter that runs kpress like the flag-driven generators of a side-by-side benchmark:
#   kpress-gen.sh closed CONNS SECS URL          constant-vus: CONNS VUs for SECS seconds
#   kpress-gen.sh rate CONNS SECS URL RATE       constant-arrival-rate: RATE/s, CONNS VUs at most
# It writes the scenario, runs kpress, and prints one JSON line (requests, errors, rps,
# duration_s, p50_ms, p99_ms) from the summary, the format bench harnesses read.
# Needs jq.
set -euo pipefail
mode=$1 conns=$2 secs=$3 url=$4 rate=${5:-0}
KPRESS=${KPRESS:-$(cd "$(dirname "$0")/.." && pwd)/target/release/kpress}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
base=${url%/}
case $mode in
  closed) executor="executor: constant-vus
    vus: $conns" ;;
  rate) executor="executor: constant-arrival-rate
    rate: $rate
    preAllocatedVUs: $conns
    maxVUs: $conns" ;;
  *) echo "mode must be closed or rate" >&2; exit 2 ;;
esac
cat > "$dir/s.yaml" <<YAML
name: bench
defaults: { baseUrl: '$base', timeout: 10s }
scenarios:
  load:
    $executor
    duration: ${secs}s
    gracefulStop: 0s
    requests: [GET /]
YAML
"$KPRESS" run "$dir/s.yaml" --progress none --summary-out "$dir/summary.json" > /dev/null
# jq, not Python: the extraction's own CPU time is charged to the generator (~10 ms
# against ~110 ms for a Python start-up).
jq -c '.metrics as $m | {requests: $m.http_req_failed.passes, errors: $m.http_req_failed.fails,
  rps: ($m.http_req_failed.passes / .duration_s), duration_s: .duration_s,
  p50_ms: $m.http_req_duration.p50, p99_ms: $m.http_req_duration.p99, mean_ms: $m.http_req_duration.mean}' "$dir/summary.json"
