#!/usr/bin/env bash
# Starts throwaway dev instances (managed PostgreSQL, fsync on) and runs the
# standard signet-bench scenarios against them, one JSON line per scenario.
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
work=$(mktemp -d /tmp/signet-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME [signet-server dev flags...] -> prints the base URL
start() {
  local name=$1; shift
  local port=$(( 20000 + RANDOM % 20000 ))
  mkdir -p "$work/$name"
  bin/signet-server dev --listen 127.0.0.1:$port --data-dir "$work/$name" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "server $name did not become healthy:" >&2; cat "$work/$name.log" >&2; exit 1; }
  echo "http://127.0.0.1:$port"
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), mode $mode" >&2
base=$(start main)
printf 'ca:\n  ct: none\n' >"$work/noct.yaml"
noct=$(start noct --config "$work/noct.yaml")
for run in $(seq 1 $runs); do
  bin/signet-bench --target "$base" --scenarios timestamp,ca,append,read,search --concurrency 64 --duration "$duration"
  bin/signet-bench --target "$noct" --scenarios ca --concurrency 64 --duration "$duration" | sed 's/"scenario":"ca"/"scenario":"ca-no-ct"/'
  bin/signet-bench --target "$base" --scenarios append --rate 1000 --duration "$duration"
done
# Signing cost per signer type (file vs PKCS#11 in SoftHSM2), without HTTP.
go test ./timestamp/ -run '^$' -bench '^BenchmarkStamp$' -benchtime "$duration" | grep '^Benchmark' >&2
