"""The order-service example from the notes, end to end: every service
running, then the payment service killed while orders accumulate in its
durable queue, restarted, and draining the backlog."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest

from conftest import depth, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUEUES = ["order_updates", "payment_processing", "email_notifications", "inventory_updates", "shipping_labels"]


def start(url, script, *args):
    return subprocess.Popen(
        [sys.executable, "-u", str(EXAMPLES / script), "--url", url, *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=EXAMPLES,
    )


def wait_ready(proc, name):
    line = proc.stdout.readline()
    assert "waiting for messages" in line, f"{name} did not start: {line!r}"


def clean(url):
    c = pika.BlockingConnection(pika.URLParameters(url))
    ch = c.channel()
    for q in QUEUES:
        ch.queue_delete(q)
    ch.exchange_delete("orders")
    c.close()


@pytest.fixture
def services(url):
    clean(url)
    procs = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
    clean(url)


def test_order_flow_and_payment_backlog(url, services, ch):
    side = {}
    for name in ("email", "inventory", "shipping"):
        p = start(url, f"{name}_service.py")
        wait_ready(p, name)
        services.append(p)
        side[name] = p
    payment = start(url, "payment_service.py", "--work-ms", "20")
    wait_ready(payment, "payment")
    services.append(payment)

    first = subprocess.run(
        [sys.executable, str(EXAMPLES / "order_service.py"), "--url", url, "--orders", "3", "--wait", "1", "--timeout", "60"],
        capture_output=True, text=True, timeout=90, cwd=EXAMPLES,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "all orders paid" in first.stdout

    # The payment service crashes; orders keep coming and wait for it.
    payment.send_signal(signal.SIGKILL)
    payment.wait(timeout=10)
    orders = subprocess.Popen(
        [sys.executable, "-u", str(EXAMPLES / "order_service.py"), "--url", url, "--orders", "5", "--wait", "1", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=EXAMPLES,
    )
    services.append(orders)
    wait_for(lambda: depth(ch, "payment_processing") >= 5, timeout=30, what="backlog in payment_processing")

    restarted = start(url, "payment_service.py", "--work-ms", "20")
    wait_ready(restarted, "payment")
    services.append(restarted)
    out, _ = orders.communicate(timeout=90)
    assert orders.returncode == 0, out
    assert out.count(" paid ") == 5, out
    wait_for(lambda: depth(ch, "payment_processing") == 0, what="backlog drained")
