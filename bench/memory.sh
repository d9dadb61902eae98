#!/usr/bin/env bash
# Peak RSS of kpress with 1,000 connections (closed model) for 10 s and for 60 s against
# a loopback HTTP server (default: the shared harness's nginx on 127.0.0.1:18080).
# Memory must not grow with the run: the 60 s peak should be within 10 % of the 10 s one.
set -euo pipefail
URL=${URL:-http://127.0.0.1:18080}
case $URL in http://127.*|http://localhost*) ;; *) echo "loopback targets only" >&2; exit 2 ;; esac
KPRESS=${KPRESS:-$(cd "$(dirname "$0")/.." && pwd)/target/release/kpress}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for secs in 10 60; do
  cat > "$dir/s.yaml" <<YAML
name: memory
defaults: { baseUrl: '$URL', timeout: 10s }
scenarios:
  load: { executor: constant-vus, vus: 1000, duration: ${secs}s, gracefulStop: 0s, requests: [GET /] }
YAML
  /usr/bin/time -f "%M" -o "$dir/rss" "$KPRESS" run "$dir/s.yaml" --progress none --summary-out "$dir/out.json" > /dev/null
  reqs=$(python3 -c "import json;print(json.load(open('$dir/out.json'))['metrics']['http_reqs']['count'])")
  echo "{\"seconds\": $secs, \"connections\": 1000, \"peak_rss_kib\": $(cat "$dir/rss"), \"requests\": $reqs}"
done
