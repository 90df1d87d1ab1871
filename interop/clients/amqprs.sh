#!/usr/bin/env bash
# amqprs (crates.io) — its own tests: the lib's #[cfg(test)] tests, tests/*.rs
# and the doc tests, unmodified, from the published .crate (which ships tests/
# and Cargo.lock; built with --locked).
#
# The suite hard-codes localhost:5672 and the user "user" / "bitnami" (the
# upstream CI uses the bitnami RabbitMQ image). So:
#  - the tests run in a private network namespace (unshare -n) in which
#    localhost:5672 is a socat bridge to $BROKER_HOST:$BROKER_PORT (through a
#    unix socket, the only way out of that namespace); this works for any
#    broker address, so RabbitMQ and ferretmq are reached the same way;
#  - the broker needs a user "user" with password "bitnami" and full rights on
#    vhost "/": `./prepare-rabbitmq` adds it to a RabbitMQ, ferretmq takes it
#    from its config file (`ferretmq.toml` here, which `./run` passes when it
#    starts ferretmq itself).
# Building is CPU-heavy (aws-lc-sys for the rustls dev-dependency): done once,
# niced, AMQPRS_JOBS (default 1) jobs; the build is kept in the cache.
set -euo pipefail
SUITE=amqprs
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_broker

src="$CACHE/src/amqprs-$AMQPRS_VERSION"
export CARGO_TARGET_DIR="$CACHE/amqprs-target"

if [ ! -f "$src/Cargo.toml" ]; then
  # Let cargo itself fetch (and checksum) the published .crate.
  fetchdir="$CACHE/amqprs-fetch"
  mkdir -p "$fetchdir/src" "$CACHE/src"
  cat > "$fetchdir/Cargo.toml" <<TOML
[package]
name = "amqprs-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
amqprs = "=$AMQPRS_VERSION"
[workspace]
TOML
  : > "$fetchdir/src/lib.rs"
  cargo fetch --quiet --manifest-path "$fetchdir/Cargo.toml"
  crate="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"amqprs-$AMQPRS_VERSION.crate" | head -1)"
  tar xzf "$crate" -C "$CACHE/src"
fi

cd "$src"
log "building amqprs $AMQPRS_VERSION tests (cached in $CARGO_TARGET_DIR)"
nice -n 19 cargo test --locked --quiet -j "${AMQPRS_JOBS:-1}" --no-run 2>&1 | grep -v '^ *Executable' >&2 || true

if ! python3 "$clients_dir/amqp-login-check.py" "$BROKER_HOST" "$BROKER_PORT" user bitnami; then
  log "WARNING: $BROKER_HOST:$BROKER_PORT refuses user/bitnami: the tests that connect will fail at login"
  log "  (RabbitMQ: ./prepare-rabbitmq; ferretmq: --config $clients_dir/ferretmq.toml, as ./run does with FERRETMQ_BIN)"
fi

out="$CACHE/amqprs-output.txt"
sock="$(mktemp -u /tmp/amqprs-bridge.XXXXXX.sock)"
socat "UNIX-LISTEN:$sock,fork,unlink-early" "TCP:$BROKER_HOST:$BROKER_PORT" &
bridge=$!
trap 'kill $bridge 2>/dev/null || true; rm -f "$sock"' EXIT
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done

log "running against $BROKER_HOST:$BROKER_PORT (as localhost:5672 inside a network namespace)"
set +e
unshare -n bash -c '
  ip link set lo up || exit 1
  sock="$1"; shift
  socat TCP4-LISTEN:5672,bind=127.0.0.1,fork,reuseaddr "UNIX-CONNECT:$sock" </dev/null >/dev/null 2>&1 &
  b4=$!
  socat TCP6-LISTEN:5672,bind=[::1],fork,reuseaddr "UNIX-CONNECT:$sock" </dev/null >/dev/null 2>&1 &
  b6=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 0.1; done
  "$@"
  rc=$?
  kill $b4 $b6 2>/dev/null
  exit $rc
' amqprs-netns "$sock" nice -n 10 cargo test --locked --offline -j 1 --no-fail-fast "$@" -- --color never 2>&1 | tee "$out"
set -e

awk '
  /^test .* \.\.\. ok$/ {p++} /^test .* \.\.\. FAILED$/ {f++} /^test .* \.\.\. ignored/ {s++}
  END {printf "RESULT amqprs: %d passed, %d failed, %d skipped\n", p, f, s}
' "$out"
grep -E '^test .* \.\.\. FAILED$' "$out" | sed 's/^/  FAILED: /' || true
