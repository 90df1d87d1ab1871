"""Consumer lifecycle with pika."""
import pika

from conftest import soft_error_code, wait_for


def test_exclusive_consumer_refuses_others_with_403(connect, names):
    c1, c2 = connect(), connect()
    q = names.queue()
    ch1 = c1.channel()
    ch1.queue_declare(q)
    ch1.basic_consume(q, lambda *a: None, exclusive=True)
    assert soft_error_code(lambda: c2.channel().basic_consume(q, lambda *a: None)) == 403


def test_queue_deletion_cancels_consumers(connect, names):
    c1, c2 = connect(), connect()
    q = names.queue()
    ch1 = c1.channel()
    ch1.queue_declare(q)
    cancelled = []
    ch1.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch1.basic_consume(q, lambda *a: None)
    c2.channel().queue_delete(q)
    wait_for(lambda: c1.process_data_events(0) or cancelled, what="server-sent Basic.Cancel")
    assert cancelled == [tag]


def test_basic_get_empty_and_message_count(ch, names):
    q = names.queue()
    ch.queue_declare(q)
    assert ch.basic_get(q)[0] is None
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", q, str(i).encode())
    m = ch.basic_get(q, auto_ack=True)
    assert m[0].message_count == 2
