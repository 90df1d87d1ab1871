#!/usr/bin/env bash
# py-amqp (PyPI amqp) — t/integration from its sdist, unmodified.
# The tests read RABBITMQ_HOST and RABBITMQ_5672_TCP; vhost is "/" (the suite
# uses a per-xdist-worker vhost only under xdist, which is not used here).
# Deselected by default:
#  - the TLS variants (connection fixture param "tls", test_tls_connect_fails):
#    they need a TLS listener on port 5671 and the suite's t/certs, which the
#    sdist does not ship; PYAMQP_TLS=1 keeps them;
#  - test_tls_default_certs / test_tls_no_default_certs_fails: they connect to
#    tls-v1-2.badssl.com on the internet, which this workplace must not reach.
# Extra arguments go to pytest.
set -euo pipefail
SUITE=py-amqp
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_broker

fetch_sdist amqp "$AMQP_VERSION"
make_venv py-amqp "amqp==$AMQP_VERSION" "vine==$VINE_VERSION" \
  "pytest==$PYTEST_VERSION" "pytest-rerunfailures==$RERUNFAILURES_VERSION"

sel=(--deselect t/integration/test_rmq.py::test_tls_default_certs
     --deselect t/integration/test_rmq.py::test_tls_no_default_certs_fails)
if [ "${PYAMQP_TLS:-0}" != 1 ]; then
  sel+=(-k "not tls")
fi
log "amqp $AMQP_VERSION t/integration against $BROKER_HOST:$BROKER_PORT"
run_pytest py-amqp "$SRC" t/integration "${sel[@]}" "$@"
