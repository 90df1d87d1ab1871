#!/usr/bin/env bash
# Quorum queues on three nodes, ferretmq and RabbitMQ one after the other
# on this machine (bench/clusters.sh), the same bench/quorum_bench.rs runs
# against each: publishers through the queue's leader, then spread over the
# three nodes. Prints one JSON line per run. Build first:
#   cargo build --release --bin ferretmq --example quorum-bench
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench="$here/target/release/examples/quorum-bench"
secs=${SECONDS_PER_RUN:-10}
run() {
  local name=$1 p=$2; shift 2
  local uris=()
  for port in "$@"; do uris+=(--uri "amqp://guest:guest@127.0.0.1:$port/%2f"); done
  printf '%s %s: ' "$name" "$p"
  "$bench" "${uris[@]}" --seconds "$secs" --publishers 4 --window 500
}
for broker in rabbitmq ferretmq; do
  "$here/bench/clusters.sh" "$broker" start >/dev/null
  if [ "$broker" = rabbitmq ]; then ports=(5701 5702 5703); else ports=(5681 5682 5683); fi
  run "$broker" leader "${ports[0]}"
  run "$broker" spread "${ports[@]}"
  "$here/bench/clusters.sh" "$broker" stop
done
