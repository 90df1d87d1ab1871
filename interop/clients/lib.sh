# Shared helpers for the client-suite scripts; sourced, not run.
# shellcheck shell=bash

clients_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$clients_dir/versions.env"

# Downloads, virtualenvs and the amqprs build live outside the repo (a cargo
# build under /work/main would be taken for part of ferretmq's workspace).
CACHE="${INTEROP_CLIENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferretmq-interop-clients}"
mkdir -p "$CACHE"

# Where the broker is: BROKER_HOST/BROKER_PORT, or the host and port of AMQP_URL.
resolve_broker() {
  if [ -n "${AMQP_URL:-}" ] && [ -z "${BROKER_HOST:-}${BROKER_PORT:-}" ]; then
    local rest="${AMQP_URL#*://}"
    rest="${rest#*@}"
    rest="${rest%%/*}"
    BROKER_HOST="${rest%:*}"
    if [ "$rest" != "$BROKER_HOST" ]; then BROKER_PORT="${rest##*:}"; fi
  fi
  BROKER_HOST="${BROKER_HOST:-127.0.0.1}"
  BROKER_PORT="${BROKER_PORT:-5672}"
  export BROKER_HOST BROKER_PORT
}

log() { printf '[%s] %s\n' "${SUITE:-clients}" "$*" >&2; }

# make_venv NAME REQ... : a virtualenv under the cache with exactly these pins.
make_venv() {
  local name="$1"; shift
  local venv="$CACHE/venv-$name" stamp
  stamp="$(printf '%s\n' "$@" | sha256sum | cut -c1-16)"
  if [ ! -f "$venv/.stamp-$stamp" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    touch "$venv/.stamp-$stamp"
  fi
  VENV="$venv"
}

# fetch_sdist NAME VERSION : unpacks the PyPI sdist once; sets SRC to its directory.
fetch_sdist() {
  local name="$1" version="$2" dl="$CACHE/sdist"
  SRC="$CACHE/src/$name-$version"
  if [ ! -d "$SRC" ]; then
    mkdir -p "$dl" "$CACHE/src"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
      --no-binary :all: -d "$dl" "$name==$version"
    tar xzf "$dl/$name-$version.tar.gz" -C "$CACHE/src"
  fi
}

# Prints "RESULT suite: N passed, N failed, N skipped" from a pytest junit xml.
junit_counts() {
  python3 - "$1" "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
suite, path = sys.argv[1], sys.argv[2]
root = ET.parse(path).getroot()
# pytest-rerunfailures writes one <testcase> per attempt: the last one counts.
final = {}
for tc in root.iter('testcase'):
    kinds = {c.tag for c in tc}
    outcome = 'f' if kinds & {'failure', 'error'} else 's' if 'skipped' in kinds else 'p'
    final[(tc.get('classname'), tc.get('name'))] = outcome
p = sum(v == 'p' for v in final.values())
f = sum(v == 'f' for v in final.values())
s = sum(v == 's' for v in final.values())
print(f"RESULT {suite}: {p} passed, {f} failed, {s} skipped")
PY
}

# run_pytest SUITE SRC_DIR PYTEST_ARGS... : runs pytest from the sdist root (its
# setup.cfg sets python_classes = test_*), junit into the cache, then RESULT line.
run_pytest() {
  local suite="$1" dir="$2"; shift 2
  local xml="$CACHE/$suite-junit.xml" txt="$CACHE/$suite-pytest.txt"
  rm -f "$xml"
  set +e
  (cd "$dir" && RABBITMQ_HOST="$BROKER_HOST" RABBITMQ_5672_TCP="$BROKER_PORT" \
    "$VENV/bin/python" -m pytest -p no:cacheprovider -p no:sugar -v -rfEs \
      --color=no --junitxml="$xml" "$@") 2>&1 | tee "$txt"
  set -e
  # pytest's own closing line (it also counts deselected tests and reruns).
  local closing
  closing="$(grep -E '^=+ .* in [0-9.]+s' "$txt" | tail -1 | sed -E 's/^=+ //; s/ =+$//')"
  if [ -f "$xml" ]; then
    echo "$(junit_counts "$suite" "$xml")   [pytest: $closing]"
  else
    echo "RESULT $suite: 0 passed, 1 failed, 0 skipped   [pytest ended before any result: $closing]"
  fi
}

# The config every node of the cluster starts with: with
# FERRETMQ_CLUSTER_TOPOLOGY=1, one that replicates exchanges, queues and
# bindings through the cluster's log.
clients_config() {
  if [ -n "${FERRETMQ_CLUSTER_TOPOLOGY:-}" ]; then
    echo "$1/ferretmq-topology.toml"
  else
    echo "$1/ferretmq.toml"
  fi
}
