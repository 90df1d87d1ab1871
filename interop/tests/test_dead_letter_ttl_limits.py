"""Dead-lettering, TTL and length limits as RabbitMQ does them: the same
x-death headers, the same reply codes for bad arguments."""
import datetime

import pika
import pytest

from conftest import depth, get_one, soft_error_code, wait_for


def dlx_setup(ch, names, **queue_args):
    dlx, dlq, src = names.exchange("dlx"), names.queue("dlq"), names.queue("src")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(src, arguments={"x-dead-letter-exchange": dlx, **queue_args})
    return dlx, dlq, src


def death(props):
    (d,) = props.headers["x-death"]
    return d


def test_rejected_message_is_dead_lettered_with_x_death(ch, names):
    dlx, dlq, src = dlx_setup(ch, names)
    ch.basic_publish("", src, b"bad", pika.BasicProperties(expiration="60000", headers={"h": 1}))
    m = get_one(ch, src, auto_ack=False)
    ch.basic_reject(m[0].delivery_tag, requeue=False)
    method, props, body = get_one(ch, dlq)
    assert body == b"bad"
    assert method.exchange == dlx and method.routing_key == src
    d = death(props)
    assert d["count"] == 1 and d["reason"] == "rejected" and d["queue"] == src
    assert d["exchange"] == "" and d["routing-keys"] == [src]
    assert d["original-expiration"] == "60000"
    assert isinstance(d["time"], datetime.datetime)
    assert props.expiration is None
    assert props.headers["h"] == 1
    assert props.headers["x-first-death-reason"] == "rejected"
    assert props.headers["x-first-death-queue"] == src
    assert props.headers["x-first-death-exchange"] == ""


def test_nack_without_requeue_dead_letters_and_ack_does_not(ch, names):
    dlx, dlq, src = dlx_setup(ch, names)
    for b in (b"1", b"2"):
        ch.basic_publish("", src, b)
    m1 = get_one(ch, src, auto_ack=False)
    m2 = get_one(ch, src, auto_ack=False)
    ch.basic_ack(m1[0].delivery_tag)
    ch.basic_nack(m2[0].delivery_tag, requeue=False)
    assert get_one(ch, dlq)[2] == b"2"
    assert ch.basic_get(dlq)[0] is None


def test_queue_ttl_expires_and_dead_letters_with_routing_key(ch, names):
    dlx, dlq, src = names.exchange("dlx"), names.queue("dlq"), names.queue("src")
    ch.exchange_declare(dlx, "direct")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx, "expired-key")
    ch.queue_declare(src, arguments={"x-dead-letter-exchange": dlx, "x-message-ttl": 50,
                                     "x-dead-letter-routing-key": "expired-key"})
    ch.basic_publish("", src, b"late")
    method, props, body = get_one(ch, dlq)
    assert body == b"late" and method.routing_key == "expired-key"
    d = death(props)
    assert d["reason"] == "expired" and d["queue"] == src and d["routing-keys"] == [src]
    assert depth(ch, src) == 0


def test_per_message_expiration(ch, names):
    dlx, dlq, src = dlx_setup(ch, names)
    ch.basic_publish("", src, b"short", pika.BasicProperties(expiration="30"))
    method, props, body = get_one(ch, dlq)
    assert body == b"short"
    assert death(props)["original-expiration"] == "30"


def test_max_length_drops_the_head_into_the_dlx(ch, names):
    dlx, dlq, src = dlx_setup(ch, names, **{"x-max-length": 2})
    ch.confirm_delivery()
    for b in (b"a", b"b", b"c"):
        ch.basic_publish("", src, b)
    assert depth(ch, src) == 2
    method, props, body = get_one(ch, dlq)
    assert body == b"a" and death(props)["reason"] == "maxlen"
    assert get_one(ch, src)[2] == b"b"


def test_max_length_bytes(ch, names):
    q = names.queue()
    ch.queue_declare(q, arguments={"x-max-length-bytes": 10})
    ch.confirm_delivery()
    for b in (b"12345", b"67890", b"abcde"):
        ch.basic_publish("", q, b)
    assert depth(ch, q) == 2
    assert get_one(ch, q)[2] == b"67890"


def test_reject_publish_nacks_confirming_publishers(ch, names):
    q = names.queue()
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", q, b"refused")
    assert depth(ch, q) == 1


def test_reject_publish_dlx_dead_letters_the_refused_message(ch, names):
    dlx, dlq, src = dlx_setup(ch, names, **{"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
    ch.confirm_delivery()
    ch.basic_publish("", src, b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", src, b"refused")
    method, props, body = get_one(ch, dlq)
    assert body == b"refused" and death(props)["reason"] == "maxlen"


def test_retry_with_backoff_cycle_via_rejection_is_allowed(ch, names):
    """work --reject--> retry (TTL) --expire--> work: counts accumulate."""
    work_x, retry_x = names.exchange("work"), names.exchange("retry")
    work, retry = names.queue("work"), names.queue("retry")
    ch.exchange_declare(work_x, "fanout")
    ch.exchange_declare(retry_x, "fanout")
    ch.queue_declare(work, arguments={"x-dead-letter-exchange": retry_x})
    ch.queue_declare(retry, arguments={"x-dead-letter-exchange": work_x, "x-message-ttl": 30})
    ch.queue_bind(work, work_x)
    ch.queue_bind(retry, retry_x)
    ch.basic_publish(work_x, "", b"job")
    for attempt in range(1, 4):
        m = get_one(ch, work, auto_ack=False)
        if attempt > 1:
            deaths = {(d["queue"], d["reason"]): d["count"] for d in m[1].headers["x-death"]}
            assert deaths[(work, "rejected")] == attempt - 1
            assert deaths[(retry, "expired")] == attempt - 1
        ch.basic_reject(m[0].delivery_tag, requeue=False)
    m = get_one(ch, work, auto_ack=False)
    assert m[1].headers["x-death"][0]["count"] == 3


def test_expiry_cycle_without_rejection_is_dropped(ch, names):
    """A message expiring back into its own queue would loop forever: RabbitMQ drops it."""
    import time
    x, q = names.exchange("self"), names.queue("self")
    ch.exchange_declare(x, "fanout")
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": x, "x-message-ttl": 20})
    ch.queue_bind(q, x)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"loop")
    wait_for(lambda: depth(ch, q) == 0, what="the message expired")
    # Had it been republished, it would keep reappearing every 20 ms.
    samples = []
    for _ in range(15):
        samples.append(depth(ch, q))
        time.sleep(0.02)
    assert samples == [0] * 15


@pytest.mark.parametrize("args", [
    {"x-message-ttl": -1},
    {"x-message-ttl": "soon"},
    {"x-max-length": -1},
    {"x-overflow": "bogus"},
    {"x-expires": 0},
    {"x-max-priority": 300},
    {"x-dead-letter-routing-key": "k"},
])
def test_invalid_queue_arguments_are_406(conn, names, args):
    ch = conn.channel()
    assert soft_error_code(lambda: ch.queue_declare(names.queue("bad"), arguments=args)) == 406


def test_unused_queue_expires(conn, names):
    import time
    q, kept = names.queue("expiring"), names.queue("kept")
    ch = conn.channel()
    ch.queue_declare(q, arguments={"x-expires": 300})
    ch.queue_declare(kept, arguments={"x-expires": 300})
    ch.basic_consume(kept, lambda *a: None)  # in use: must stay

    def gone():
        try:
            conn.channel().queue_declare(q, passive=True)
            return False
        except pika.exceptions.ChannelClosedByBroker as e:
            assert e.reply_code == 404
            return True
    # A passive declare counts as use, so poll less often than x-expires.
    wait_for(gone, timeout=10, interval=0.6, what="unused queue deleted")
    assert conn.channel().queue_declare(kept, passive=True).method.consumer_count == 1


def test_priority_queue_delivers_higher_priorities_first(ch, names):
    q = names.queue("prio")
    ch.queue_declare(q, arguments={"x-max-priority": 5})
    ch.confirm_delivery()
    for body, prio in ((b"p1", 1), (b"none", None), (b"p5", 5), (b"p9", 9), (b"p3", 3), (b"p5b", 5)):
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))
    order = []
    while True:
        m = ch.basic_get(q, auto_ack=True)
        if not m[0]:
            break
        order.append(m[2])
    # 9 counts as the maximum, 5; FIFO within a level; no priority is 0.
    assert order == [b"p5", b"p9", b"p5b", b"p3", b"p1", b"none"]


def test_priority_queue_requeue_keeps_level_order(ch, names):
    q = names.queue("prio2")
    ch.queue_declare(q, arguments={"x-max-priority": 3})
    ch.confirm_delivery()
    for body, prio in ((b"low", 0), (b"high", 3)):
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))
    hi = get_one(ch, q, auto_ack=False)
    assert hi[2] == b"high"
    ch.basic_nack(hi[0].delivery_tag, requeue=True)
    assert get_one(ch, q)[2] == b"high"


def test_quorum_delivery_limit_dead_letters_poison_messages(ch, names):
    dlx, dlq, q = names.exchange("qdlx"), names.queue("qdlq"), names.queue("quorum")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 2,
                                                 "x-dead-letter-exchange": dlx})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"poison")
    for attempt in range(3):
        m = get_one(ch, q, auto_ack=False)
        assert m[1].headers["x-delivery-count"] == attempt
        assert m[0].redelivered == (attempt > 0)
        ch.basic_nack(m[0].delivery_tag, requeue=True)
    method, props, body = get_one(ch, dlq)
    assert body == b"poison"
    assert death(props)["reason"] == "delivery_limit"
    assert ch.basic_get(q)[0] is None


@pytest.mark.parametrize("kw,args", [
    ({"exclusive": True}, {}),
    ({}, {}),
    ({"durable": True, "auto_delete": True}, {}),
    ({"durable": True}, {"x-max-priority": 5}),
    ({"durable": True}, {"x-queue-type": "bogus"}),
], ids=["exclusive", "non-durable", "auto-delete", "max-priority", "unknown type"])
def test_quorum_queue_property_checks_are_406(conn, names, kw, args):
    ch = conn.channel()
    arguments = {"x-queue-type": "quorum", **args}
    assert soft_error_code(lambda: ch.queue_declare(names.queue("qbad"), arguments=arguments, **kw)) == 406
