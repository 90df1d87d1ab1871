"""Publishing and consuming with pika: routing, properties, sizes, returns, confirms."""
import decimal
import datetime

import pika
import pytest

from conftest import depth, get_one, wait_for


def test_round_trip_with_every_property(ch, names):
    q = names.queue()
    ch.queue_declare(q)
    headers = {
        "str": "text ünïcode",
        "int": 42,
        "neg": -7,
        "big": 2**40,
        "bool": True,
        "dec": decimal.Decimal("12.345"),
        "ts": datetime.datetime(2024, 5, 1, 12, 0, 0),
        "list": [1, "two", {"three": 3}],
        "table": {"nested": {"deep": "yes"}},
        "bytes": b"\x00\x01\xff",
        "none": None,
    }
    props = pika.BasicProperties(
        content_type="application/json", content_encoding="utf-8", headers=headers,
        delivery_mode=2, priority=3, correlation_id="corr-1", reply_to="replies",
        expiration="60000", message_id="m-1", timestamp=1_700_000_000, type="order",
        user_id="guest", app_id="interop", cluster_id="",
    )
    ch.basic_publish("", q, b'{"a": 1}', props)
    method, got, body = get_one(ch, q)
    assert body == b'{"a": 1}'
    for field in ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id",
                  "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id"):
        assert getattr(got, field) == getattr(props, field), field
    assert got.headers == headers


def test_large_and_empty_bodies(ch, names):
    q = names.queue()
    ch.queue_declare(q)
    big = bytes(range(256)) * 20000  # ~5 MB, many frames
    ch.basic_publish("", q, big)
    ch.basic_publish("", q, b"")
    m1 = get_one(ch, q)
    m2 = get_one(ch, q)
    assert m1[2] == big
    assert m2[2] == b""


def test_direct_fanout_topic_headers_routing(ch, names):
    qs = {k: names.queue(k) for k in ("d1", "d2", "f", "tstar", "thash", "hall", "hany")}
    for q in qs.values():
        ch.queue_declare(q)
    d, f, t, h = (names.exchange(k) for k in ("direct", "fanout", "topic", "headers"))
    ch.exchange_declare(d, "direct")
    ch.exchange_declare(f, "fanout")
    ch.exchange_declare(t, "topic")
    ch.exchange_declare(h, "headers")
    ch.queue_bind(qs["d1"], d, "k")
    ch.queue_bind(qs["d2"], d, "k")
    ch.queue_bind(qs["f"], f, "ignored")
    ch.queue_bind(qs["tstar"], t, "order.*")
    ch.queue_bind(qs["thash"], t, "order.#")
    ch.queue_bind(qs["thash"], t, "#.eu")  # same queue matched twice: still one copy
    ch.queue_bind(qs["hall"], h, "", arguments={"x-match": "all", "kind": "a", "n": 1})
    ch.queue_bind(qs["hany"], h, "", arguments={"x-match": "any", "kind": "a", "n": 1})
    ch.confirm_delivery()
    ch.basic_publish(d, "k", b"1")
    ch.basic_publish(f, "x", b"2")
    ch.basic_publish(t, "order.created", b"3")
    ch.basic_publish(t, "order.created.eu", b"4")
    ch.basic_publish(t, "order", b"5")
    ch.basic_publish(h, "", b"6", pika.BasicProperties(headers={"kind": "a"}))
    ch.basic_publish(h, "", b"7", pika.BasicProperties(headers={"kind": "a", "n": 1}))
    expected = {"d1": 1, "d2": 1, "f": 1, "tstar": 1, "thash": 3, "hall": 1, "hany": 2}
    for k, n in expected.items():
        assert depth(ch, qs[k]) == n, k


def test_mandatory_unroutable_is_returned(ch, names):
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("amq.direct", "nobody-" + names.queue(), b"x", mandatory=True)


def test_publisher_confirms(ch, names):
    q = names.queue()
    ch.queue_declare(q)
    ch.confirm_delivery()
    for i in range(200):
        ch.basic_publish("", q, str(i).encode())  # raises if nacked
    assert depth(ch, q) == 200


def test_consumers_take_turns(ch, names):
    q = names.queue()
    ch.queue_declare(q)
    got = {"a": [], "b": []}
    ch.basic_consume(q, lambda c, m, p, b: got["a"].append(b), auto_ack=True)
    ch.basic_consume(q, lambda c, m, p, b: got["b"].append(b), auto_ack=True)
    for i in range(6):
        ch.basic_publish("", q, str(i).encode())
    wait_for(lambda: ch.connection.process_data_events(0) or len(got["a"]) + len(got["b"]) == 6)
    assert got["a"] == [b"0", b"2", b"4"]
    assert got["b"] == [b"1", b"3", b"5"]
