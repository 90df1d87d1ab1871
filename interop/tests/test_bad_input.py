"""Bad input over raw frames: the reply code and scope RabbitMQ uses, and no
harm to other connections."""
import struct

import pytest

import rawamqp as r
from conftest import get_one


def outcome(url, data, open_channel=True):
    """('channel'|'connection', code) for a Close, or ('dropped', None)."""
    p = r.Peer(url)
    try:
        if open_channel:
            p.open_channel(1)
        p.send(data)
        while True:
            m = p.next_method()
            if m is None:
                return ("dropped", None)
            ch, cls, mth, args = m
            if (cls, mth) == (20, 40):
                p.send(r.method(ch, 20, 41))
                return ("channel", struct.unpack(">H", args[:2])[0])
            if (cls, mth) == (10, 50):
                p.send(r.method(0, 10, 51))
                return ("connection", struct.unpack(">H", args[:2])[0])
    finally:
        p.close()


def declare_exchange(ch, name, kind):
    return r.method(ch, 40, 10, struct.pack(">H", 0) + r.shortstr(name) + r.shortstr(kind) + b"\x00" + struct.pack(">I", 0))


def consume(ch, queue, tag):
    return r.method(ch, 60, 20, struct.pack(">H", 0) + r.shortstr(queue) + r.shortstr(tag) + b"\x00" + struct.pack(">I", 0))


CASES = {
    "unknown frame type": (r.frame(9, 1, b"xx"), ("connection", 501)),
    "bad frame end": (struct.pack(">BHI", 1, 1, 4) + b"\x00\x14\x00\x0a" + b"\x00", ("connection", 501)),
    "oversized frame": (r.frame(3, 1, b"x" * 200000), ("connection", 501)),
    "truncated method": (r.method(1, 50, 10, b"\x00"), ("connection", 501)),
    "method on unopened channel": (r.queue_declare(5, "q"), ("connection", 504)),
    "header without publish": (r.header(1, 5), ("connection", 505)),
    "body without publish": (r.body(1, b"abc"), ("connection", 505)),
    "method instead of content": (r.basic_publish(1, "", "q") + r.channel_open(1), ("connection", 505)),
    "header of another class": (r.basic_publish(1, "", "q") + r.header(1, 2, class_id=50), ("connection", 505)),
    "heartbeat on a channel": (r.frame(8, 1, b""), ("connection", 505)),
    "second channel.open": (r.channel_open(1), ("connection", 504)),
    "queue method on channel 0": (r.queue_declare(0, "q"), ("connection", 504)),
    "immediate=true": (r.method(1, 60, 40, struct.pack(">H", 0) + r.shortstr("") + r.shortstr("q") + b"\x02") + r.header(1, 0), ("connection", 540)),
    "prefetch_size": (r.method(1, 60, 10, struct.pack(">IHB", 5, 0, 0)), ("connection", 540)),
    "channel.flow active=false": (r.method(1, 20, 20, b"\x00"), ("connection", 540)),
    "recover requeue=false": (r.method(1, 60, 110, b"\x00"), ("connection", 540)),
    "unknown exchange type": (declare_exchange(1, "interop.bogus", "bogus"), ("connection", 503)),
    "consumer tag reuse": (r.queue_declare(1, "interop.tagreuse") + consume(1, "interop.tagreuse", "t") + consume(1, "interop.tagreuse", "t"), ("connection", 530)),
    "unknown delivery tag": (r.basic_ack(1, 5), ("channel", 406)),
    "publish to a missing exchange": (r.basic_publish(1, "interop.nope", "q") + r.header(1, 0), ("channel", 404)),
    "reserved queue name": (r.queue_declare(1, "amq.mine"), ("channel", 403)),
    "consume from a missing queue": (consume(1, "interop.nope", ""), ("channel", 404)),
    "empty queue name with no queue declared": (consume(1, "", ""), ("channel", 404)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(url, ch, names, name):
    data, expected = CASES[name]
    bystander = names.queue("bystander")
    ch.queue_declare(bystander)
    assert outcome(url, data) == expected
    # Another connection is undisturbed.
    ch.basic_publish("", bystander, b"ok")
    assert get_one(ch, bystander)[2] == b"ok"
    ch.queue_delete("interop.tagreuse")


@pytest.mark.parametrize("data", [
    r.method(1, 99, 10),
    r.method(1, 60, 99),
    r.basic_publish(1, "", "q") + r.header(1, 2) + r.body(1, b"abcd"),
], ids=["unknown class", "unknown method", "body longer than announced"])
def test_input_that_ends_the_connection(url, data):
    # RabbitMQ drops the socket for these; ferretmq sends a Close first.
    assert outcome(url, data)[0] in ("connection", "dropped")


def test_wrong_protocol_header_gets_the_right_one_back(url):
    import socket
    from urllib.parse import urlparse
    u = urlparse(url)
    s = socket.create_connection((u.hostname, u.port or 5672), timeout=10)
    s.sendall(b"AMQP\x01\x01\x00\x0a")
    got = b""
    while True:
        try:
            chunk = s.recv(100)
        except ConnectionResetError:  # RabbitMQ resets after writing the header
            break
        if not chunk:
            break
        got += chunk
    assert got == b"AMQP\x00\x00\x09\x01"
