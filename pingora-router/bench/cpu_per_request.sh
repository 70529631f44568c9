#!/bin/bash
# CPU per request of Pingora proxies, interleaved (docs/go-vs-pingora.md,
# "Pingora tuning"): each proxy alone on CPU 1 with the whole core, wrk
# (1 thread, 64 connections, key globex) and the mock cells on CPU 0; 1 s of
# warm-up, then SECONDS of load; CPU = the proxy's utime + stime from
# /proc/PID/stat over wrk's request count. Robust to a busy machine where a
# throughput figure is not: it is the proxy's own time per request.
#
#   pingora-router/bench/cpu_per_request.sh ROUNDS SECONDS NAME=BINARY...
#
# A NAME starting with "floor" is run as examples/floor.rs (one upstream),
# any other as pingora-router on config/examples/demo.json.
set -euo pipefail
rounds=$1 secs=$2; shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
config=$root/config/examples/demo.json
port=28080 admin=28901 upstream=127.0.0.1:9002
taskset -c 0 "$root/bin/mockbackends" --admin 127.0.0.1:0 --config "$config" >/dev/null 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null' EXIT
sleep 1
url=http://127.0.0.1:$port/api/items
for round in $(seq "$rounds"); do
  for target in "$@"; do
    name=${target%%=*} bin=${target#*=}
    case $name in
      floor*) taskset -c 1 "$bin" --listen 127.0.0.1:$port --upstream $upstream --workers 1 >/dev/null 2>&1 & ;;
      *) taskset -c 1 "$bin" --config "$config" --listen 127.0.0.1:$port --admin 127.0.0.1:$admin \
           --access-log off --workers 1 >/dev/null 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null -H 'X-Routing-Key: globex' $url && break; sleep 0.1; done
    taskset -c 0 wrk -t1 -c64 -d1s -H 'X-Routing-Key: globex' $url >/dev/null 2>&1
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    out=$(taskset -c 0 wrk -t1 -c64 -d"${secs}s" -H 'X-Routing-Key: globex' $url 2>&1)
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    kill $pid; wait $pid 2>/dev/null || true
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="$round" -v n="$name" -v q="$reqs" -v s="$secs" -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "round %d %s %.0f req/s %.1f us/request\n", r, n, q / s, (b - a) / hz * 1e6 / q }'
  done
done
