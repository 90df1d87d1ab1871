"""Fixtures for the interop suite. AMQP_URL names the broker under test
(interop/run sets it to a freshly started ferretmq, or leaves yours alone)."""
import os
import time
import uuid

import pika
import pytest


@pytest.fixture(scope="session")
def url():
    u = os.environ.get("AMQP_URL")
    if not u:
        pytest.exit("AMQP_URL is not set; run the suite through interop/run", returncode=2)
    return u


@pytest.fixture
def connect(url):
    opened = []

    def _connect(**kw):
        params = pika.URLParameters(url)
        for k, v in kw.items():
            setattr(params, k, v)
        c = pika.BlockingConnection(params)
        opened.append(c)
        return c

    yield _connect
    for c in opened:
        if c.is_open:
            try:
                c.close()
            except Exception:
                pass


@pytest.fixture
def conn(connect):
    return connect()


@pytest.fixture
def ch(conn):
    return conn.channel()


@pytest.fixture
def names(connect):
    """Unique entity names per test, deleted afterwards, so runs against a
    shared RabbitMQ do not collide."""
    made = {"queues": [], "exchanges": []}
    tag = uuid.uuid4().hex[:8]

    class Names:
        def queue(self, base="q"):
            n = f"interop.{base}.{tag}"
            made["queues"].append(n)
            return n

        def exchange(self, base="x"):
            n = f"interop.{base}.{tag}"
            made["exchanges"].append(n)
            return n

    yield Names()
    c = connect()
    for q in made["queues"]:
        ch = c.channel()
        try:
            ch.queue_delete(q)
        except Exception:
            pass
    for x in made["exchanges"]:
        ch = c.channel()
        try:
            ch.exchange_delete(x)
        except Exception:
            pass


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Poll until predicate() is truthy; fail after the deadline (no bare sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def depth(channel, queue):
    return channel.queue_declare(queue, passive=True).method.message_count


def soft_error_code(fn):
    """Run fn, expecting the broker to close the channel; return the reply code."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        fn()
    return e.value.reply_code


def hard_error_code(fn):
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        fn()
    return e.value.reply_code


def get_one(channel, queue, auto_ack=True):
    """Basic.Get until a message is there (publishes are asynchronous)."""
    def attempt():
        m = channel.basic_get(queue, auto_ack=auto_ack)
        return m if m[0] else None
    return wait_for(attempt, what=f"a message on {queue}")
