#!/usr/bin/env bash
# amqpstorm (PyPI AMQPStorm) — amqpstorm/tests/functional/management from its
# sdist, unmodified: the functional tests of its management HTTP API client
# (overview, nodes, queues, exchanges, bindings, publish/get, connections,
# channels, users, vhosts, permissions, health checks). They read AMQP_HOST,
# AMQP_USERNAME, AMQP_PASSWORD, AMQP_URI and AMQP_HTTP_URL, and open AMQP
# connections to AMQP_HOST:5672 (no port setting): with FERRETMQ_BIN set and a
# broker elsewhere than port 5672, the suite runs in a private network
# namespace (in-netns) whose localhost:5672 and :15672 are a fresh ferretmq.
# Left out: test_api_with_inaccessible (it dials a private-range address) and
# test_api_cluster_name (it expects its maintainer's broker's name).
# A failed test is run again up to twice: once in about three CI runs one
# request came back "Remote end closed connection without response" on a
# reused keep-alive connection, with nothing in ferretmq's log (not yet
# diagnosed; see the README's management section).
# Extra arguments go to pytest.
set -euo pipefail
SUITE=amqpstorm
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
resolve_broker

fetch_sdist amqpstorm "$AMQPSTORM_VERSION"
make_venv amqpstorm "amqpstorm[management]==$AMQPSTORM_VERSION" \
  "pytest==$AMQPSTORM_PYTEST_VERSION" "pytest-rerunfailures==$RERUNFAILURES_VERSION"

if [ -z "${IN_NETNS:-}" ] && [ "$BROKER_PORT" != 5672 ] && [ -n "${FERRETMQ_BIN:-}" ]; then
  log "broker on port $BROKER_PORT: running in a network namespace with its own ferretmq"
  exec "$here/in-netns" "$0" "$@"
fi

http_port="${BROKER_HTTP_PORT:-15672}"
export AMQP_HOST="$BROKER_HOST" AMQP_USERNAME=guest AMQP_PASSWORD=guest
export AMQP_URI="amqp://guest:guest@$BROKER_HOST:5672/%2F"
export AMQP_HTTP_URL="http://$BROKER_HOST:$http_port"
t=amqpstorm/tests/functional/management
log "amqpstorm $AMQPSTORM_VERSION $t against $BROKER_HOST:5672 and :$http_port"
run_pytest amqpstorm "$SRC" "$t" --reruns 2 \
  --deselect "$t/test_api.py::ApiFunctionalTests::test_api_with_inaccessible" \
  --deselect "$t/test_api.py::ApiFunctionalTests::test_api_cluster_name" "$@"
