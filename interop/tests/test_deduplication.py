"""Message deduplication as the rabbitmq-message-deduplication plugin (and
LavinMQ) define it. A RabbitMQ without the plugin has no such exchange type:
those tests skip there."""
import pika
import pytest

from conftest import depth, wait_for


def props(dedup_id, **headers):
    return pika.BasicProperties(headers={"x-deduplication-header": dedup_id, **headers})


def dedup_exchange(conn, x, **args):
    """Declare a deduplication exchange. RabbitMQ without the plugin closes
    the connection (503, unknown exchange type): skip there."""
    ch = conn.channel()
    try:
        ch.exchange_declare(x, "x-message-deduplication", arguments=args)
    except (pika.exceptions.ChannelClosedByBroker, pika.exceptions.ConnectionClosedByBroker) as e:
        if e.reply_code == 503:
            pytest.skip("the broker has no message-deduplication plugin")
        raise
    return ch


def test_dedup_exchange_type_routes_once_and_returns_duplicates(conn, names):
    x, q1, q2 = names.exchange("dedup"), names.queue("dedup-a"), names.queue("dedup-b")
    ch = dedup_exchange(conn, x, **{"x-cache-size": 100})
    ch.confirm_delivery()
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a[2].headers["x-deduplication-header"]))
    for q in (q1, q2):
        ch.queue_declare(q)
        ch.queue_bind(q, x, "ignored")
    ch.basic_publish(x, "k", b"1", props("order-1"), mandatory=True)
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(x, "k", b"2", props("order-1"), mandatory=True)
    ch.basic_publish(x, "k", b"3", props("order-2"), mandatory=True)
    ch.basic_publish(x, "k", b"4", pika.BasicProperties(), mandatory=True)
    assert depth(ch, q1) == 3
    assert depth(ch, q2) == 3


def test_dedup_exchange_type_requires_a_cache_size(conn, names):
    x = names.exchange("dedup-nosize")
    ch = conn.channel()
    with pytest.raises((pika.exceptions.ChannelClosedByBroker,
                        pika.exceptions.ConnectionClosedByBroker)) as e:
        ch.exchange_declare(x, "x-message-deduplication")
    if e.value.reply_code == 503:
        pytest.skip("the broker has no message-deduplication plugin")
    assert e.value.reply_code == 406
    assert "x-cache-size" in e.value.reply_text


def test_dedup_queue_drops_duplicates_of_messages_it_holds(connect, conn, names):
    dedup_exchange(connect(), names.exchange("probe"), **{"x-cache-size": 1})
    q = names.queue("dedup-q")
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(q, arguments={"x-message-deduplication": True})
    for i in ("a", "a", "b"):
        ch.basic_publish("", q, b"m", props(i))
    assert depth(ch, q) == 2
    # Held until acknowledged, free again after.
    method, _, _ = ch.basic_get(q)
    ch.basic_publish("", q, b"m", props("a"))
    assert depth(ch, q) == 1
    ch.basic_ack(method.delivery_tag)
    ch.basic_publish("", q, b"m", props("a"))
    wait_for(lambda: depth(ch, q) == 2, what="a accepted again")


def test_exchange_argument_on_any_type_lavinmq_style(conn, names):
    """LavinMQ's form: x-message-deduplication on a topic exchange, with
    x-deduplication-header naming the header. The RabbitMQ plugin has only
    its exchange type, so this is ferretmq's (and LavinMQ's) alone."""
    if conn._impl.server_properties.get("product") == "RabbitMQ":
        pytest.skip("RabbitMQ deduplicates only through the plugin's exchange type")
    x, q = names.exchange("dedup-topic"), names.queue("dedup-topic")
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare(x, "topic", arguments={
        "x-message-deduplication": True, "x-cache-size": 10, "x-deduplication-header": "order-id"})
    ch.queue_declare(q)
    ch.queue_bind(q, x, "order.#")
    for oid in ("1", "1", "2"):
        ch.basic_publish(x, "order.created", b"m", pika.BasicProperties(headers={"order-id": oid}))
    assert depth(ch, q) == 2
