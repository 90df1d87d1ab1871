"""Ack, nack, reject, recover and prefetch as RabbitMQ does them."""
import time

import pika
import pytest

from conftest import depth, get_one, soft_error_code, wait_for


def test_nack_and_reject_requeue_at_original_position(ch, names):
    q = names.queue()
    ch.queue_declare(q)
    for i in range(4):
        ch.basic_publish("", q, str(i).encode())
    m0 = get_one(ch, q, auto_ack=False)
    m1 = get_one(ch, q, auto_ack=False)
    ch.basic_nack(m1[0].delivery_tag, requeue=True)
    ch.basic_reject(m0[0].delivery_tag, requeue=True)
    seen = []
    while True:
        m = ch.basic_get(q, auto_ack=True)
        if not m[0]:
            break
        seen.append((m[2], m[0].redelivered))
    assert seen == [(b"0", True), (b"1", True), (b"2", False), (b"3", False)]


def test_ack_multiple_reject_and_recover(ch, names):
    q = names.queue()
    ch.queue_declare(q)
    for i in range(5):
        ch.basic_publish("", q, str(i).encode())
    tags = [get_one(ch, q, auto_ack=False)[0].delivery_tag for _ in range(5)]
    ch.basic_ack(tags[2], multiple=True)
    ch.basic_reject(tags[3], requeue=False)
    ch.basic_recover(requeue=True)
    m = get_one(ch, q)
    assert m[2] == b"4" and m[0].redelivered
    assert ch.basic_get(q)[0] is None


def test_unknown_delivery_tag_is_406_and_closes_only_the_channel(conn, names):
    ch = conn.channel()
    q = names.queue()
    ch.queue_declare(q)

    def bad_ack():
        ch.basic_ack(12345)
        ch.queue_declare(q, passive=True)  # the close arrives before this returns

    assert soft_error_code(bad_ack) == 406
    assert conn.is_open
    assert depth(conn.channel(), q) == 0


def test_double_ack_is_406(conn, names):
    ch = conn.channel()
    q = names.queue()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"x")
    tag = get_one(ch, q, auto_ack=False)[0].delivery_tag
    ch.basic_ack(tag)

    def again():
        ch.basic_ack(tag)
        ch.queue_declare(q, passive=True)

    assert soft_error_code(again) == 406


def test_prefetch_limits_unacked_deliveries(conn, names):
    ch = conn.channel()
    q = names.queue()
    ch.queue_declare(q)
    for i in range(10):
        ch.basic_publish("", q, str(i).encode())
    ch.basic_qos(prefetch_count=3)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
    wait_for(lambda: conn.process_data_events(0) or len(got) >= 3)
    conn.process_data_events(0.3)
    assert len(got) == 3
    ch.basic_ack(got[-1], multiple=True)
    wait_for(lambda: conn.process_data_events(0) or len(got) >= 6)
    conn.process_data_events(0.3)
    assert len(got) == 6


def test_unacked_messages_return_when_the_connection_dies(connect, names):
    c1 = connect()
    ch1 = c1.channel()
    q = names.queue()
    ch1.queue_declare(q)
    for i in range(20):
        ch1.basic_publish("", q, str(i).encode())
    c2 = connect()
    ch2 = c2.channel()
    got = []
    ch2.basic_qos(prefetch_count=5)
    ch2.basic_consume(q, lambda c, m, p, b: got.append(b))
    wait_for(lambda: c2.process_data_events(0) or len(got) >= 5)
    c2._impl._transport._sock.close()  # vanish without a goodbye
    wait_for(lambda: depth(ch1, q) == 20, what="requeue after disconnect")
    first = get_one(ch1, q)
    assert first[2] == b"0" and first[0].redelivered


def _supports_queue_consumer_timeout(conn):
    """x-consumer-timeout exists from RabbitMQ 3.12 on (and in ferretmq)."""
    props = conn._impl.server_properties
    if props.get("product") != "RabbitMQ":
        return True
    version = props.get("version", b"0")
    version = version.decode() if isinstance(version, bytes) else version
    return tuple(int(p) for p in version.split(".")[:2]) >= (3, 12)


def test_consumer_timeout_closes_the_channel_and_requeues(connect, names):
    conn = connect()
    if not _supports_queue_consumer_timeout(conn):
        pytest.skip("this RabbitMQ has no per-queue x-consumer-timeout")
    q = names.queue("timed")
    ch = conn.channel()
    ch.queue_declare(q, arguments={"x-consumer-timeout": 500})
    ch.basic_publish("", q, b"slow job")
    late = conn.channel()
    closed = []
    late._impl.add_on_close_callback(lambda _ch, reason: closed.append(reason))
    method, _, body = late.basic_get(q)
    assert body == b"slow job"
    started = time.monotonic()
    wait_for(lambda: conn.process_data_events(time_limit=0.05) or closed, timeout=90,
             what="the channel closed for its late ack")
    assert time.monotonic() - started >= 0.45
    reason = closed[0]
    assert reason.reply_code == 406
    assert reason.reply_text.startswith(
        "PRECONDITION_FAILED - delivery acknowledgement on channel")
    assert "timed out. Timeout value used: 500 ms" in reason.reply_text
    # Requeued, and the rest of the connection carries on.
    assert depth(ch, q) == 1
