#!/usr/bin/env bash
# Three-node clusters on loopback, one of each broker, for bench/quorum.sh:
#   bench/clusters.sh rabbitmq start|stop   AMQP on 127.0.0.1:5701-5703
#   bench/clusters.sh ferretmq start|stop   AMQP on 127.0.0.1:5681-5683
# Data under $BENCH_DIR (default /tmp/quorum-bench). ferretmq is the release
# build in target/release (cargo build --release first).
set -euo pipefail
dir=${BENCH_DIR:-/tmp/quorum-bench}
here=$(cd "$(dirname "$0")/.." && pwd)
# As root, not through /usr/sbin's wrappers (they switch to the rabbitmq user).
rmq=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}

rabbit() {
  local i=$1; shift
  env RABBITMQ_NODENAME="rabbit$i@localhost" RABBITMQ_NODE_PORT=570$i \
    RABBITMQ_DIST_PORT=2570$i RABBITMQ_MNESIA_BASE="$dir/rabbit$i/mnesia" \
    RABBITMQ_LOG_BASE="$dir/rabbit$i/log" RABBITMQ_PID_FILE="$dir/rabbit$i/pid" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/no-plugins" \
    RABBITMQ_CONFIG_FILE="$dir/rabbit" "$@"
}

case "$1/$2" in
  rabbitmq/start)
    mkdir -p "$dir"; echo '[].' > "$dir/no-plugins"
    echo 'loopback_users = none' > "$dir/rabbit.conf"
    for i in 1 2 3; do mkdir -p "$dir/rabbit$i"; rabbit $i "$rmq/rabbitmq-server" -detached; done
    for i in 1 2 3; do rabbit $i "$rmq/rabbitmqctl" -n "rabbit$i@localhost" wait "$dir/rabbit$i/pid" >/dev/null; done
    for i in 2 3; do
      "$rmq/rabbitmqctl" -n "rabbit$i@localhost" stop_app >/dev/null
      "$rmq/rabbitmqctl" -n "rabbit$i@localhost" join_cluster rabbit1@localhost >/dev/null
      "$rmq/rabbitmqctl" -n "rabbit$i@localhost" start_app >/dev/null
    done
    "$rmq/rabbitmqctl" -n rabbit1@localhost cluster_status | grep -A4 'Running Nodes'
    ;;
  rabbitmq/stop)
    for i in 1 2 3; do "$rmq/rabbitmqctl" -n "rabbit$i@localhost" stop >/dev/null 2>&1 || true; done
    rm -rf "$dir"/rabbit*
    ;;
  ferretmq/start)
    mkdir -p "$dir"
    printf '[cluster]\nreplicate_topology = true\n' > "$dir/ferretmq.toml"
    export FERRETMQ_CLUSTER_SECRET=bench
    export FERRETMQ_CLUSTER_SEED_NODES=127.0.0.1:25691,127.0.0.1:25692,127.0.0.1:25693
    for i in 1 2 3; do
      "$here/target/release/ferretmq" --config "$dir/ferretmq.toml" --data-dir "$dir/ferret$i" \
        --listen 127.0.0.1:568$i --management-listen 127.0.0.1:1569$i --no-prometheus \
        --cluster-node-name "n$i" --cluster-listen "127.0.0.1:2569$i" > "$dir/ferret$i.log" 2>&1 &
      echo $! > "$dir/ferret$i.pid"
    done
    "$here/target/release/ferretmq" ctl --data-dir "$dir/ferret1" await_online_nodes 3
    ;;
  ferretmq/stop)
    for i in 1 2 3; do kill "$(cat "$dir/ferret$i.pid")" 2>/dev/null || true; done
    sleep 1; rm -rf "$dir"/ferret*
    ;;
  *) echo "usage: $0 rabbitmq|ferretmq start|stop" >&2; exit 2 ;;
esac
