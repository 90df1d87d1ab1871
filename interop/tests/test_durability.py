"""The notes' promise across a broker restart: the payment service is down,
orders accumulate in its durable queue, the broker restarts, the payment
service comes back and drains every order. Needs BROKER_RESTART (interop/run
sets it for the ferretmq it starts)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest

from conftest import wait_for
from test_examples import EXAMPLES, clean, start, wait_ready

RESTART = os.environ.get("BROKER_RESTART")
pytestmark = pytest.mark.skipif(not RESTART, reason="BROKER_RESTART not set")


def restart_broker(url):
    subprocess.run(RESTART, shell=True, check=True, timeout=120)

    def up():
        try:
            pika.BlockingConnection(pika.URLParameters(url)).close()
            return True
        except pika.exceptions.AMQPConnectionError:
            return False
    wait_for(up, timeout=60, interval=0.2, what="broker back up")


def depth(url, queue):
    c = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return c.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        c.close()


def test_backlog_survives_a_broker_restart(url):
    clean(url)
    try:
        # The services ran before: their durable queues exist and are bound.
        c = pika.BlockingConnection(pika.URLParameters(url))
        ch = c.channel()
        ch.exchange_declare("orders", "fanout", durable=True)
        for q in ("payment_processing", "order_updates"):
            ch.queue_declare(q, durable=True)
            ch.queue_bind(q, "orders")
        c.close()
        created = subprocess.run(
            [sys.executable, str(EXAMPLES / "order_service.py"), "--url", url, "--orders", "5"],
            capture_output=True, text=True, timeout=60, cwd=EXAMPLES,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        orders = [l.split()[-1] for l in created.stdout.splitlines() if l.startswith("order: created")]
        assert len(orders) == 5
        # Nobody consumes payment_processing yet: the orders wait there.
        assert depth(url, "payment_processing") == 5

        restart_broker(url)
        assert depth(url, "payment_processing") == 5, "persistent orders survived the restart"

        payment = start(url, "payment_service.py", "--work-ms", "10", "--exit-after", "10")  # its own 5 events come back too
        wait_ready(payment, "payment")
        out, _ = payment.communicate(timeout=60)
        assert payment.returncode == 0, out
        assert sorted(l.split()[-1] for l in out.splitlines() if "charged" in l) == sorted(orders)
        wait_for(lambda: depth(url, "payment_processing") == 0, what="backlog drained")

        # The order service's own queue has every payment (and survived too).
        c = pika.BlockingConnection(pika.URLParameters(url))
        ch = c.channel()
        paid = set()
        while True:
            m = ch.basic_get("order_updates", auto_ack=True)
            if not m[0]:
                break
            e = json.loads(m[2])
            if e["event_type"] == "PAYMENT_COMPLETED":
                paid.add(e["order_id"])
        c.close()
        assert paid == set(orders)
    finally:
        clean(url)
