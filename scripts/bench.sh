#!/usr/bin/env bash
# Starts throwaway dev instances (managed PostgreSQL, fsync on) and runs the
# standard signet-bench scenarios against them, one JSON line per scenario.
#   BENCH_MODE=fast (default): 5 s per scenario, for smoke checks
#   BENCH_MODE=full: 30 s per scenario (appends at 64 clients: 60 s, the
#     sustained-throughput target's span), three runs each; quote the median
# Then a log is filled in-process (signet-bench --fill, bulk imports) to 1M
# and to BENCH_BIG entries (fast: 20k only, full: 10M) and appends, reads of
# random entries and searches are measured at each size, with the database
# size and the server's resident memory.
# The client scenario times signet's CLI against unmodified cosign doing the
# same keyless image and blob sign+verify (BENCH_CLIENT_RUNS, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${BENCH_MODE:-fast}
case $mode in
  fast) duration=5s; append_duration=5s; runs=1; big=${BENCH_BIG:-20000}; sizes="$big" ;;
  full) duration=30s; append_duration=60s; runs=3; big=${BENCH_BIG:-10000000}; sizes="1000000 $big" ;;
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

# start NAME [signet-server dev flags...]: sets url to its base URL. Not
# called in $(...): the pid must reach the cleanup's list.
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
  url="http://127.0.0.1:$port"
}

# The memory matters as much as the cores: at 10M the database (~19 GB) and
# PostgreSQL's buffer cache must both fit for reads not to wait for the disk.
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/^MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) memory, mode $mode" >&2
start main; base=$url
printf 'ca:\n  ct: none\n' >"$work/noct.yaml"
start noct --config "$work/noct.yaml"; noct=$url
printf 'log:\n  v2:\n    enabled: true\n' >"$work/v2.yaml"
start v2 --config "$work/v2.yaml"; v2=$url
for run in $(seq 1 $runs); do
  bin/signet-bench --target "$base" --scenarios timestamp,ca,append,read,search --concurrency 64 --duration "$duration" --append-duration "$append_duration"
  bin/signet-bench --target "$noct" --scenarios ca --concurrency 64 --duration "$duration" | sed 's/"scenario":"ca"/"scenario":"ca-no-ct"/'
  bin/signet-bench --target "$base" --scenarios append --rate 1000 --duration "$duration"
  # Rekor v1 and v2 appends on one instance, one after the other: an A/B.
  bin/signet-bench --target "$v2" --scenarios append,append-v2 --concurrency 64 --duration "$duration" |
    sed 's/"scenario":"append"/"scenario":"append-v1-beside-v2"/'
  # Appends of every entry kind at 64 clients, one kind after another, each
  # entry signed before its kind's timed phase (--kinds picks some).
  bin/signet-bench --target "$base" --scenarios append-kinds --concurrency 64 --duration "$duration"
done
# The client: signet's CLI against unmodified cosign, keyless image and blob
# sign+verify against the main instance, interleaved, median of 20 each.
cosign=$(command -v cosign || echo "$(go env GOPATH)/bin/cosign")
[ -x "$cosign" ] || make cosign >&2
bin/signet-bench --client "${BENCH_CLIENT_RUNS:-20}" --target "$base" --data-dir "$work/main" --signet bin/signet --cosign "$cosign"
# The big log: grown with the server stopped, then measured.
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
for size in $sizes; do
  bin/signet-bench --fill "$size" --data-dir "$work/big"
  t0=$(date +%s%N)
  start big; big=$url
  echo "# started with $size entries in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
  for run in $(seq 1 $runs); do
    bin/signet-bench --target "$big" --scenarios append,read,search --concurrency 64 --duration "$duration" --append-duration "$append_duration" |
      sed "s/\"scenario\":\"\([a-z]*\)\"/\"scenario\":\"\1@$size\"/"
  done
  # Tiles read at random, then an auditor catching up on the whole log:
  # signet monitor from an empty state, every entry checked and matched.
  bin/signet-bench --target "$big" --scenarios tiles,bundles --concurrency 64 --duration "$duration" |
    sed "s/\"scenario\":\"\([a-z]*\)\"/\"scenario\":\"\1@$size\"/"
  curl -sf "$big/api/v1/log/publicKey" >"$work/log.pub"
  printf 'emails: [nobody@example.com]\n' >"$work/watch.yaml"
  n=$(curl -sf "$big/api/v1/log" | grep -o '"treeSize":[0-9]*' | cut -d: -f2)
  t0=$(date +%s%N)
  bin/signet --server "$big" monitor --once --watch "$work/watch.yaml" --log-key "$work/log.pub" --state "$work/monitor-$size.json" >/dev/null
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "{\"scenario\":\"monitor-catch-up@$size\",\"entries\":$n,\"duration_s\":$(awk "BEGIN{print $ms/1000}"),\"entries_per_s\":$(awk "BEGIN{printf \"%.0f\", $n*1000/$ms}")}"
  curl -s "$big/metrics" | grep -E '^(signet_database_bytes|process_resident_memory_bytes) ' >&2
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  pids=()
done
# Signing cost per signer type (file vs PKCS#11 in SoftHSM2), without HTTP.
go test ./timestamp/ -run '^$' -bench '^BenchmarkStamp$' -benchtime "$duration" | grep '^Benchmark' >&2
# Replicas on one database: 1, 2 and 3, and the leader killed.
scripts/bench-replicas.sh
