"""Direct reply-to (amq.rabbitmq.reply-to): RPC without declaring a reply queue."""
import pika

from conftest import get_one, soft_error_code, wait_for


def test_rpc_round_trip(connect, names):
    client, server = connect(), connect()
    cch, sch = client.channel(), server.channel()
    q = names.queue("rpc")
    sch.queue_declare(q)
    replies = []
    cch.basic_consume("amq.rabbitmq.reply-to", lambda c, m, p, b: replies.append((b, p.correlation_id)), auto_ack=True)
    cch.basic_publish("", q, b"2+2", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="c1"))
    method, props, body = get_one(sch, q)
    assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
    sch.basic_publish("", props.reply_to, b"4", pika.BasicProperties(correlation_id=props.correlation_id))
    wait_for(lambda: client.process_data_events(0) or replies, what="the reply")
    assert replies == [(b"4", "c1")]


def test_reply_consumer_must_be_no_ack(conn):
    ch = conn.channel()
    assert soft_error_code(lambda: ch.basic_consume("amq.rabbitmq.reply-to", lambda *a: None, auto_ack=False)) == 406


def test_publishing_with_reply_to_needs_a_reply_consumer(conn, names):
    ch = conn.channel()
    ch.confirm_delivery()
    assert soft_error_code(lambda: ch.basic_publish(
        "", names.queue("x"), b"", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))) == 406


def test_pseudo_queue_can_be_declared_passively(ch):
    ch.queue_declare("amq.rabbitmq.reply-to", passive=True)
