#!/usr/bin/env bash
# Starts a throwaway dev instance (managed PostgreSQL, fsync on) and runs the
# standard signet-bench scenarios against it, one JSON line per scenario.
#   BENCH_MODE=fast (default): 5 s per scenario, for smoke checks
#   BENCH_MODE=full: 30 s per scenario, three runs each; quote the median
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${BENCH_MODE:-fast}
case $mode in
  fast) duration=5s; runs=1 ;;
  full) duration=30s; runs=3 ;;
  *) echo "BENCH_MODE must be fast or full" >&2; exit 2 ;;
esac
data=$(mktemp -d /tmp/signet-bench-XXXXXX)
port=$(( 20000 + RANDOM % 20000 ))
bin/signet-server dev --listen 127.0.0.1:$port --data-dir "$data" >"$data/server.log" 2>&1 &
server=$!
cleanup() { kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "server did not become healthy:" >&2; cat "$data/server.log" >&2; exit 1; }
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), mode $mode" >&2
for run in $(seq 1 $runs); do
  bin/signet-bench --target "http://127.0.0.1:$port" --scenarios timestamp,ca,append,read,search --concurrency 64 --duration "$duration"
  bin/signet-bench --target "http://127.0.0.1:$port" --scenarios append --rate 1000 --duration "$duration"
done
# Signing cost per signer type (file vs PKCS#11 in SoftHSM2), without HTTP.
go test ./timestamp/ -run '^$' -bench '^BenchmarkStamp$' -benchtime "$duration" | grep '^Benchmark' >&2
