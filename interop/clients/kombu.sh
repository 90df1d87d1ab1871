#!/usr/bin/env bash
# kombu (PyPI kombu) — t/integration/test_py_amqp.py from its sdist, unmodified:
# kombu's integration tests for its py-amqp transport ("pyamqp://"). They read
# RABBITMQ_HOST and RABBITMQ_5672_TCP and use guest/guest on vhost "/".
# The other files in t/integration are for redis, mongodb, sqs, kafka, pgmq.
# Extra arguments go to pytest.
set -euo pipefail
SUITE=kombu
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_broker

fetch_sdist kombu "$KOMBU_VERSION"
make_venv kombu "kombu==$KOMBU_VERSION" "amqp==$AMQP_VERSION" "vine==$VINE_VERSION" \
  "pytest==$KOMBU_PYTEST_VERSION" "pytest-rerunfailures==$KOMBU_RERUNFAILURES_VERSION"

# The suite leaves durable, fixed-name queues behind, some holding messages:
# test_publish_requeue_consume never acks, so its 4 messages go back to
# priority_requeue_test when its connection closes, and the next run reads those
# stale messages first and fails. Upstream CI gets a fresh broker each time, so
# these queues (only these) are deleted first. KOMBU_CLEAN=0 skips that.
if [ "${KOMBU_CLEAN:-1}" = 1 ]; then
  "$VENV/bin/python" - "$BROKER_HOST:$BROKER_PORT" <<'PY'
import sys, amqp
names = """test test_empty simple_queue_test direct1 rk_direct1 rk_direct2 fanout1
fanout2 topic1 topic2 topic3 ttl_test ttl_simple_queue_test priority_test
priority_requeue_test priority_simple_queue_test test_ack test_reject_no_requeue
test_reject_requeue test_requeue""".split()
with amqp.Connection(host=sys.argv[1]) as conn:
    ch = conn.channel()
    for name in names:
        ch.queue_delete(name)
PY
fi

log "kombu $KOMBU_VERSION t/integration/test_py_amqp.py against $BROKER_HOST:$BROKER_PORT"
run_pytest kombu "$SRC" t/integration/test_py_amqp.py "$@"
