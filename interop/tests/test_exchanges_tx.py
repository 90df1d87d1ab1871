"""Exchange-to-exchange bindings, alternate exchanges and transactions."""
import pika

from conftest import depth, get_one, soft_error_code


def test_exchange_to_exchange_binding(ch, names):
    src, mid, q = names.exchange("src"), names.exchange("mid"), names.queue()
    ch.exchange_declare(src, "topic")
    ch.exchange_declare(mid, "fanout")
    ch.queue_declare(q)
    ch.exchange_bind(destination=mid, source=src, routing_key="a.#")
    ch.exchange_bind(destination=src, source=mid)  # a cycle
    ch.queue_bind(q, mid)
    ch.queue_bind(q, src, "a.b")
    ch.confirm_delivery()
    ch.basic_publish(src, "a.b", b"1")
    ch.basic_publish(src, "x.y", b"2")
    assert depth(ch, q) == 1
    ch.exchange_unbind(destination=mid, source=src, routing_key="a.#")
    ch.basic_publish(src, "a.c", b"3")
    assert depth(ch, q) == 1


def test_alternate_exchange(ch, names):
    ae, main, routed, unrouted = names.exchange("ae"), names.exchange("main"), names.queue("r"), names.queue("u")
    ch.exchange_declare(ae, "fanout")
    ch.exchange_declare(main, "direct", arguments={"alternate-exchange": ae})
    for q in (routed, unrouted):
        ch.queue_declare(q)
    ch.queue_bind(routed, main, "k")
    ch.queue_bind(unrouted, ae)
    ch.confirm_delivery()
    ch.basic_publish(main, "k", b"1")
    ch.basic_publish(main, "other", b"2")
    assert depth(ch, routed) == 1
    assert depth(ch, unrouted) == 1


def test_tx_publish_commit_rollback(conn, names):
    q = names.queue()
    ch = conn.channel()
    obs = conn.channel()
    ch.queue_declare(q)
    ch.tx_select()
    ch.basic_publish("", q, b"1")
    assert depth(obs, q) == 0
    ch.tx_commit()
    assert depth(obs, q) == 1
    ch.basic_publish("", q, b"2")
    ch.tx_rollback()
    assert depth(obs, q) == 1


def test_tx_ack_rollback_leaves_message_unacked(conn, names):
    q = names.queue()
    ch = conn.channel()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"1")
    ch.tx_select()
    m = get_one(ch, q, auto_ack=False)
    ch.basic_ack(m[0].delivery_tag)
    ch.tx_rollback()
    ch.basic_ack(m[0].delivery_tag)
    ch.tx_commit()
    ch.basic_recover(requeue=True)
    assert ch.basic_get(q)[0] is None


def test_tx_commit_without_select_is_406(conn):
    ch = conn.channel()
    assert soft_error_code(lambda: ch.tx_commit()) == 406


def test_confirm_on_tx_channel_is_406(conn):
    ch = conn.channel()
    ch.tx_select()
    assert soft_error_code(lambda: ch.confirm_delivery()) == 406
