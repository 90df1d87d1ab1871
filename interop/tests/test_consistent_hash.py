"""The x-consistent-hash exchange (RabbitMQ's rabbitmq_consistent_hash_exchange
plugin; on RabbitMQ, `rabbitmq-plugins enable rabbitmq_consistent_hash_exchange`
first, or these tests are skipped)."""
import pika
import pytest

from conftest import depth, soft_error_code


@pytest.fixture
def chx(conn, names):
    ch = conn.channel()
    x = names.exchange("chash")
    try:
        ch.exchange_declare(x, "x-consistent-hash")
    except pika.exceptions.ConnectionClosedByBroker as e:
        if e.reply_code == 503:
            pytest.skip("the broker has no x-consistent-hash exchange")
        raise
    return conn.channel(), x


def test_weights_set_shares_and_a_key_always_lands_in_one_queue(chx, names):
    ch, x = chx
    light, heavy = names.queue("light"), names.queue("heavy")
    for q, w in ((light, "1"), (heavy, "3")):
        ch.queue_declare(q)
        ch.queue_bind(q, x, w)
    ch.confirm_delivery()
    for i in range(2000):
        ch.basic_publish(x, f"order-{i}", b"")
    a, b = depth(ch, light), depth(ch, heavy)
    assert a + b == 2000
    assert 1.8 < b / a < 5, (a, b)
    ch.queue_purge(light)
    ch.queue_purge(heavy)
    for _ in range(10):
        ch.basic_publish(x, "same-key", b"")
    assert sorted([depth(ch, light), depth(ch, heavy)]) == [0, 10]


def test_hash_header(conn, names):
    ch = conn.channel()
    x = names.exchange("chash-h")
    try:
        ch.exchange_declare(x, "x-consistent-hash", arguments={"hash-header": "customer"})
    except pika.exceptions.ConnectionClosedByBroker:
        pytest.skip("the broker has no x-consistent-hash exchange")
    q1, q2 = names.queue("h1"), names.queue("h2")
    for q in (q1, q2):
        ch.queue_declare(q)
        ch.queue_bind(q, x, "1")
    ch.confirm_delivery()
    for i in range(10):
        ch.basic_publish(x, str(i), b"", pika.BasicProperties(headers={"customer": "c-42"}))
    assert sorted([depth(ch, q1), depth(ch, q2)]) == [0, 10]


def test_binding_key_must_be_an_integer(chx, names):
    ch, x = chx
    q = names.queue("chq")
    ch.queue_declare(q)
    assert soft_error_code(lambda: ch.queue_bind(q, x, "heavy")) == 406


def test_hash_header_and_property_are_exclusive(chx, conn, names):
    ch = conn.channel()
    assert soft_error_code(lambda: ch.exchange_declare(
        names.exchange("chboth"), "x-consistent-hash",
        arguments={"hash-header": "a", "hash-property": "message_id"})) == 406


def test_delayed_message_exchange(conn, names):
    """RabbitMQ needs the community rabbitmq_delayed_message_exchange plugin
    (not in Debian's package); without it this is skipped."""
    import time
    ch = conn.channel()
    x, q = names.exchange("delayed"), names.queue("delayed-out")
    try:
        ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "direct"})
    except pika.exceptions.ConnectionClosedByBroker as e:
        if e.reply_code == 503:
            pytest.skip("the broker has no x-delayed-message exchange")
        raise
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    ch.confirm_delivery()
    sent = time.monotonic()
    ch.basic_publish(x, "k", b"later", pika.BasicProperties(headers={"x-delay": 300}))
    ch.basic_publish(x, "k", b"now")
    assert get_one_after(ch, q) == (b"now", False)
    body, _ = get_one_after(ch, q)
    assert body == b"later"
    assert time.monotonic() - sent >= 0.29


def get_one_after(ch, q):
    from conftest import get_one
    m = get_one(ch, q)
    return m[2], m[0].redelivered
