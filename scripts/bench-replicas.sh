#!/usr/bin/env bash
# Replicas on one database (replicas.advertise_url): appends and reads with
# the load spread over 1, 2 and 3 replicas, then the leader killed with
# SIGKILL under appends and the failover gap reported. A production
# instance (admin init's keys; CA and CT off: the CA needs an OIDC issuer) on a
# PostgreSQL of its own, fsync on. One JSON line per scenario.
#   BENCH_MODE=fast (default): 5 s per scenario; full: 30 s, three runs.
# Called by scripts/bench.sh; runs alone too (after make build).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${BENCH_MODE:-fast}
case $mode in
  fast) duration=5s; failover=15s; runs=1 ;;
  full) duration=30s; failover=30s; runs=3 ;;
  *) echo "BENCH_MODE must be fast or full" >&2; exit 2 ;;
esac
work=$(mktemp -d /tmp/signet-bench-replicas-XXXXXX)
pids=()
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pg_run "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work" "$work/pg"
pg_run "$pgbin/initdb" -D "$work/pg" -U signet --auth=trust -E UTF8 --locale=C >/dev/null
pg_run "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories='$work/pg' -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
pg_run "$pgbin/createdb" -h "$work/pg" -U signet signet
export DATABASE_URL="host=$work/pg user=signet dbname=signet sslmode=disable"

export SIGNET_KEY_PASSWORD=bench
bin/signet-server admin init --dir "$work/etc" --organization Bench --hostname bench.example.com --yes >/dev/null
printf 'components:\n  ca: false\n  ct: false\n' >>"$work/etc/signet.yaml"

ports=() urls=() rpids=()
# replica I: starts replica I and waits until it answers.
replica() {
  local i=$1 port=$(( 20000 + RANDOM % 20000 ))
  SIGNET_LISTEN=127.0.0.1:$port SIGNET_REPLICAS_ADVERTISE_URL=http://127.0.0.1:$port SIGNET_METRICS_LISTEN=127.0.0.1:0 \
    bin/signet-server run --config "$work/etc/signet.yaml" >"$work/replica$i.log" 2>&1 &
  pids+=($!); rpids[$i]=$!
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "replica $i did not become healthy:" >&2; cat "$work/replica$i.log" >&2; exit 1; }
  urls[$i]=http://127.0.0.1:$port
}

# cpu PID: the CPU seconds the process has used.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
echo "# replicas: $(nproc) cores, mode $mode; replica 1 leads" >&2
for n in 1 2 3; do
  replica $n
  spread=$(IFS=,; echo "${urls[*]}")
  for run in $(seq 1 $runs); do
    bin/signet-bench --target "${urls[1]}" --spread "$spread" --scenarios append,read,search --concurrency 64 --duration "$duration" |
      sed "s/\"scenario\":\"\([a-z]*\)\"/\"scenario\":\"\1-replicas-$n\"/"
  done
  if [ "$n" -ge 2 ]; then
    # Where reads cost CPU: the same reads through the leader only, then
    # through the followers only, with each process's CPU seconds.
    followers=$(IFS=,; echo "${urls[*]:2}") # replicas 2..n
    for via in leader followers; do
      spread=${urls[1]}; [ $via = followers ] && spread=$followers
      before=(); for i in $(seq 1 $n); do before[$i]=$(cpu "${rpids[$i]}"); done
      # Set-up (sampling the entries to read) through the same replicas.
      line=$(bin/signet-bench --target "${spread%%,*}" --spread "$spread" --scenarios read --concurrency 64 --duration "$duration" --warmup 0s)
      used=""; sep=""
      for i in $(seq 1 $n); do
        used="$used$sep$(awk -v a="$(cpu "${rpids[$i]}")" -v b="${before[$i]}" 'BEGIN { printf "%.2f", a - b }')"; sep=,
      done
      echo "$line" | sed "s/\"scenario\":\"read\"/\"scenario\":\"read-via-$via-replicas-$n\",\"cpu_s_by_replica\":[$used]/"
    done
  fi
done
# The leader (replica 1) killed under appends through the two others.
for run in $(seq 1 $runs); do
  leader=$("$pgbin/psql" "$DATABASE_URL" -Atc "SELECT address FROM signet_writer_lease")
  for i in 1 2 3; do [ "${urls[$i]}" = "$leader" ] && victim=$i; done
  others=()
  for i in 1 2 3; do [ "$i" != "$victim" ] && others+=("${urls[$i]}"); done
  bin/signet-bench --target "${others[0]}" --spread "$(IFS=,; echo "${others[*]}")" --scenarios append --concurrency 64 \
      --duration "$failover" --kill-pid "${rpids[$victim]}" --kill-after 2s |
    sed 's/"scenario":"append"/"scenario":"append-leader-killed"/'
  wait "${rpids[$victim]}" 2>/dev/null || true
  replica "$victim" # back, as a follower
done
