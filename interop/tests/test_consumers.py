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


def test_single_active_consumer_gets_everything_until_it_leaves(connect, names):
    c1, c2 = connect(), connect()
    q = names.queue("sac")
    ch1, ch2 = c1.channel(), c2.channel()
    ch1.queue_declare(q, arguments={"x-single-active-consumer": True})
    got = {"a": [], "b": []}
    tag_a = ch1.basic_consume(q, lambda c, m, p, b: got["a"].append(b), auto_ack=True)
    ch2.basic_consume(q, lambda c, m, p, b: got["b"].append(b), auto_ack=True)
    pub = connect().channel()
    pub.confirm_delivery()
    for i in range(4):
        pub.basic_publish("", q, str(i).encode())
    wait_for(lambda: c1.process_data_events(0) or len(got["a"]) == 4, what="active consumer got all")
    c2.process_data_events(0.2)
    assert got["b"] == []
    ch1.basic_cancel(tag_a)
    for i in range(4, 6):
        pub.basic_publish("", q, str(i).encode())
    wait_for(lambda: c2.process_data_events(0) or len(got["b"]) == 2, what="next consumer took over")
    assert got["a"] == [b"0", b"1", b"2", b"3"]


def test_consumer_priority_prefers_the_higher_while_it_has_room(connect, names):
    c = connect()
    q = names.queue("cprio")
    ch = c.channel()
    ch.queue_declare(q)
    ch.basic_qos(prefetch_count=2)
    got = {"low": [], "high": []}
    ch.basic_consume(q, lambda c_, m, p, b: got["low"].append(m.delivery_tag), arguments={"x-priority": 1})
    ch.basic_consume(q, lambda c_, m, p, b: got["high"].append(m.delivery_tag), arguments={"x-priority": 10})
    pub = connect().channel()
    pub.confirm_delivery()
    for i in range(3):
        pub.basic_publish("", q, str(i).encode())
    wait_for(lambda: c.process_data_events(0) or len(got["low"]) + len(got["high"]) == 3)
    # The high-priority consumer takes what its prefetch allows; the rest spills over.
    assert len(got["high"]) == 2 and len(got["low"]) == 1


def test_single_active_consumer_argument_must_be_a_bool(conn, names):
    from conftest import soft_error_code
    assert soft_error_code(lambda: conn.channel().queue_declare(
        names.queue("sacbad"), arguments={"x-single-active-consumer": "yes"})) == 406
