# FERRETMQ_CLUSTER=1 (with FERRETMQ_BIN): the broker the suites run against
# is node n2 of a three-node ferretmq cluster on loopback, not a node alone;
# sourced by ./run and ./in-netns, which start n2 themselves.
# shellcheck shell=bash

# Three free loopback ports, for the nodes' cluster listeners.
cluster_ports() {
  python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))'
}

# start_peers STATE: start n1 and n3 (their data and logs under STATE) on the
# ports in FERRETMQ_CLUSTER_PORTS; set N2_ARGS to the flags that make the
# node under test n2 of the same cluster, and PEER_PIDS.
start_peers() {
  local state="$1" p1 p2 p3 seeds i port
  read -r p1 p2 p3 <<< "$FERRETMQ_CLUSTER_PORTS"
  seeds="127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3"
  export FERRETMQ_CLUSTER_SECRET="${FERRETMQ_CLUSTER_SECRET:-interop-clients}"
  PEER_PIDS=()
  for i in 1 3; do
    if [ "$i" = 1 ]; then port=$p1; else port=$p3; fi
    "$FERRETMQ_BIN" --config "$(clients_config "$clients_dir")" --listen 127.0.0.1:0 \
      --no-management --no-prometheus --data-dir "$state/n$i" --log info \
      --cluster-node-name "n$i" --cluster-listen "127.0.0.1:$port" \
      --cluster-seed-nodes "$seeds" > "$state/n$i.log" 2>&1 &
    PEER_PIDS+=($!)
  done
  N2_ARGS="--cluster-node-name n2 --cluster-listen 127.0.0.1:$p2 --cluster-seed-nodes $seeds"
}

# wait_formed DATA_DIR: until the node with that data dir sees all three
# nodes running and a metadata leader (60 s at most).
wait_formed() {
  local i
  for i in $(seq 600); do
    if "$FERRETMQ_BIN" ctl --data-dir "$1" cluster_status --formatter json 2>/dev/null |
      python3 -c 'import json, sys
d = json.load(sys.stdin)
sys.exit(0 if len(d.get("running_nodes", [])) == 3 and d.get("metadata_leader") else 1)'; then
      return 0
    fi
    sleep 0.1
  done
  echo "the cluster of three did not form" >&2
  return 1
}
