"""Declare, delete, bind and purge with RabbitMQ's reply codes."""
import pika

from conftest import depth, get_one, soft_error_code


def test_server_named_queue(ch):
    q = ch.queue_declare("", exclusive=True).method.queue
    assert q.startswith("amq.gen-")


def test_redeclare_with_other_properties_is_406(conn, names):
    q = names.queue()
    ch = conn.channel()
    ch.queue_declare(q)
    assert soft_error_code(lambda: ch.queue_declare(q, durable=True)) == 406
    ch = conn.channel()
    assert soft_error_code(lambda: ch.queue_declare(q, arguments={"x-max-length": 10})) == 406
    x = names.exchange()
    ch = conn.channel()
    ch.exchange_declare(x, "direct")
    assert soft_error_code(lambda: ch.exchange_declare(x, "topic")) == 406
    ch = conn.channel()
    assert soft_error_code(lambda: ch.exchange_declare(x, "direct", durable=True)) == 406


def test_passive_declares_of_missing_entities_are_404(conn, names):
    ch = conn.channel()
    assert soft_error_code(lambda: ch.queue_declare(names.queue(), passive=True)) == 404
    ch = conn.channel()
    assert soft_error_code(lambda: ch.exchange_declare(names.exchange(), passive=True)) == 404
    ch = conn.channel()
    assert soft_error_code(lambda: ch.queue_bind(names.queue(), "amq.direct", "k")) == 404


def test_reserved_names_are_403(conn):
    ch = conn.channel()
    assert soft_error_code(lambda: ch.queue_declare("amq.mine")) == 403
    ch = conn.channel()
    assert soft_error_code(lambda: ch.exchange_declare("amq.mine", "direct")) == 403
    ch = conn.channel()
    assert soft_error_code(lambda: ch.exchange_delete("amq.direct")) == 403
    ch = conn.channel()
    assert soft_error_code(lambda: ch.queue_bind("x", "", "k")) in (403, 404)


def test_exclusive_queue_is_405_for_others_and_goes_with_its_owner(connect, names):
    c1, c2 = connect(), connect()
    q = names.queue()
    c1.channel().queue_declare(q, exclusive=True)
    assert soft_error_code(lambda: c2.channel().queue_declare(q)) == 405
    assert soft_error_code(lambda: c2.channel().basic_consume(q, lambda *a: None)) == 405
    c1.close()
    assert soft_error_code(lambda: c2.channel().queue_declare(q, passive=True)) == 404


def test_delete_if_empty_if_unused_purge(conn, names):
    q = names.queue()
    ch = conn.channel()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"1")
    ch.basic_publish("", q, b"2")
    assert soft_error_code(lambda: ch.queue_delete(q, if_empty=True)) == 406
    ch = conn.channel()
    ch.basic_consume(q, lambda *a: None)
    ch2 = conn.channel()
    assert soft_error_code(lambda: ch2.queue_delete(q, if_unused=True)) == 406
    ch.close()
    ch3 = conn.channel()
    assert ch3.queue_purge(q).method.message_count == 2
    assert ch3.queue_delete(q).method.message_count == 0


def test_auto_delete_queue_goes_with_its_last_consumer(conn, names):
    q = names.queue()
    ch = conn.channel()
    ch.queue_declare(q, auto_delete=True)
    tag = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(tag)
    assert soft_error_code(lambda: conn.channel().queue_declare(q, passive=True)) == 404


def test_declare_ok_counts(conn, names):
    q = names.queue()
    ch = conn.channel()
    ch.queue_declare(q)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"1")
    ch.basic_publish("", q, b"2")
    ok = conn.channel().queue_declare(q).method
    assert (ok.message_count, ok.consumer_count) == (2, 0)


def test_unbind_stops_routing(ch, names):
    q, x = names.queue(), names.exchange()
    ch.queue_declare(q)
    ch.exchange_declare(x, "direct")
    ch.queue_bind(q, x, "k")
    ch.confirm_delivery()
    ch.basic_publish(x, "k", b"1")
    ch.queue_unbind(q, x, "k")
    ch.basic_publish(x, "k", b"2")
    assert depth(ch, q) == 1
