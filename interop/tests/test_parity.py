"""Parity with RabbitMQ 3.10 on edge behaviours: how a connection ends, sender-selected
distribution (CC/BCC), expiration validation, topic matching, global prefetch, declare
and unbind corner cases, channel_max, IPv6, server properties, confirms on a full queue
and policies. Every expectation here was observed on RabbitMQ 3.10.8, reply texts
verbatim.

The policy tests need BROKER_SET_POLICY and BROKER_CLEAR_POLICY (see the policy section);
they skip when those are unset.
"""
import json
import os
import shlex
import socket
import struct
import subprocess
import time
import uuid
from urllib.parse import unquote, urlparse

import pika
import pytest

import rawamqp as r
from conftest import depth, get_one, wait_for

# How long "nothing more happens" is watched for: the only way to see an absence.
QUIET = 0.5


def vhost_of(url):
    path = urlparse(url).path
    return unquote(path[1:]) if path and len(path) > 1 else "/"


def closed_by_broker(fn):
    """Run fn, expecting a Channel.Close from the broker; return (code, text)."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        fn()
    return e.value.reply_code, e.value.reply_text


def drain(channel, queue):
    """Every message in queue now, as (method, properties, body)."""
    out = []
    while True:
        m = channel.basic_get(queue, auto_ack=True)
        if m[0] is None:
            return out
        out.append(m)


def pump_until(conn, predicate, timeout=10.0, what="condition"):
    """Drive a BlockingConnection's I/O until predicate() holds (fail at the deadline)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        conn.process_data_events(time_limit=min(left, 0.1))


def pump_for(conn, seconds=QUIET):
    """Drive I/O for a while (process_data_events returns after the first event)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        conn.process_data_events(time_limit=left)


# --- 1. Closing a connection -------------------------------------------------------------

@pytest.mark.parametrize("trailing", [False, True], ids=["close alone", "close then more frames"])
def test_close_ok_and_the_socket_is_left_to_the_client(url, names, trailing):
    nowhere = names.queue("nowhere")  # never declared: a mandatory publish to it would come back
    p = r.TunedPeer(url)
    try:
        p.open_channel(1)
        data = r.connection_close()
        if trailing:
            # Sent without waiting for Close-Ok; RabbitMQ ignores it all (no Basic.Return).
            data += r.heartbeat() + r.publish_message(1, "", nowhere, b"late", mandatory=True)
        p.send(data)
        f = p.read_frame()
        assert f is not None, "no Close-Ok"
        assert (f[0], f[1], f[2][:4]) == (1, 0, struct.pack(">HH", 10, 51)), f
        assert p.buf == b""
        # RabbitMQ keeps the socket open after Close-Ok until the client closes it (or
        # ~30 s pass): nothing arrives, no EOF, no reset.
        assert p.recv_outcome(QUIET) == ("open", None)
        # The client can still send bytes: RabbitMQ reads and drops them.
        p.send(r.heartbeat())
        assert p.recv_outcome(QUIET) == ("open", None)
        # Once the client shuts its write side the broker closes at once. RabbitMQ 3.10
        # answers with a RST (its default tcp_listen_options has {linger,{true,0}}); a
        # clean EOF is the same outcome for the client, everything has been read by then.
        p.sock.shutdown(socket.SHUT_WR)
        assert p.recv_outcome(10)[0] in ("eof", "reset")
    finally:
        p.close()


# --- 2. Sender-selected distribution (CC / BCC) -----------------------------------------

@pytest.mark.parametrize("kind", ["direct", "topic"])
def test_cc_and_bcc_add_routing_keys_each_queue_once(ch, names, kind):
    x = names.exchange(kind)
    ch.exchange_declare(x, kind)
    qs = {k: names.queue(f"cc-{kind}-{k}") for k in ("main", "cc1", "cc2", "bcc", "other")}
    for q in qs.values():
        ch.queue_declare(q)
    ch.queue_bind(qs["main"], x, "main")
    ch.queue_bind(qs["main"], x, "dupe")
    ch.queue_bind(qs["cc1"], x, "cc1.*" if kind == "topic" else "cc1")
    ch.queue_bind(qs["cc2"], x, "cc2")
    ch.queue_bind(qs["bcc"], x, "bcc")
    ch.queue_bind(qs["other"], x, "other")
    ch.confirm_delivery()
    cc = ["cc1.x" if kind == "topic" else "cc1", "cc2", "dupe"]
    ch.basic_publish(x, "main", b"m", pika.BasicProperties(headers={"CC": cc, "BCC": ["bcc", "main"], "h": 1}))
    for k in ("main", "cc1", "cc2", "bcc"):
        got = drain(ch, qs[k])
        assert len(got) == 1, (k, got)  # "main" matches three ways, gets one copy
        method, props, body = got[0]
        assert body == b"m" and method.routing_key == "main" and method.exchange == x
        assert props.headers == {"CC": cc, "h": 1}  # BCC is removed, CC kept
    assert drain(ch, qs["other"]) == []


def test_cc_on_the_default_exchange_and_only_longstr_elements_count(ch, names):
    q1, q2, q3 = names.queue("cc-d1"), names.queue("cc-d2"), names.queue("cc-d3")
    for q in (q1, q2, q3):
        ch.queue_declare(q)
    ch.confirm_delivery()
    # pika sends str as longstr ('S'), int as 'I' and bytes as a byte array ('x'):
    # elements that are not longstr are skipped, no error.
    ch.basic_publish("", q1, b"m", pika.BasicProperties(headers={"CC": [1, q2, q3.encode()]}))
    assert len(drain(ch, q1)) == 1
    (got,) = drain(ch, q2)
    assert got[1].headers == {"CC": [1, q2, q3.encode()]}
    assert drain(ch, q3) == []


@pytest.mark.parametrize("headers,text", [
    ({"CC": "k"}, 'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",longstr}'),
    ({"BCC": "k"}, 'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"BCC",longstr}'),
    ({"CC": 5}, 'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",long}'),
    ({"CC": {"a": "k"}}, 'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",table}'),
], ids=["CC longstr", "BCC longstr", "CC long", "CC table"])
def test_cc_that_is_not_an_array_closes_the_channel(url, ch, names, headers, text):
    q = names.queue("cc-bad")
    ch.queue_declare(q)
    p = r.TunedPeer(url)
    try:
        p.open_channel(1)
        p.send(r.publish_message(1, "", q, b"m", headers=headers))
        assert p.expect_close() == ("channel", 406, text, 60, 40)
    finally:
        p.close()
    assert depth(ch, q) == 0  # not enqueued either


def cc_dead_letter_setup(ch, names, dlrk=None):
    x, dlx = names.exchange("cc-x"), names.exchange("cc-dlx")
    ch.exchange_declare(x, "direct")
    ch.exchange_declare(dlx, "direct")
    targets = {k: names.queue(f"cc-dl-{k}") for k in ("orig", "cc1", "cc2", "bcc", "dlk")}
    for k, q in targets.items():
        ch.queue_declare(q)
        ch.queue_bind(q, dlx, k)
    src = names.queue("cc-src")
    args = {"x-dead-letter-exchange": dlx}
    if dlrk:
        args["x-dead-letter-routing-key"] = dlrk
    ch.queue_declare(src, arguments=args)
    ch.queue_bind(src, x, "orig")
    ch.confirm_delivery()
    ch.basic_publish(x, "orig", b"m", pika.BasicProperties(headers={"CC": ["cc1", "cc2"], "BCC": ["bcc"]}))
    m = get_one(ch, src, auto_ack=False)
    assert m[1].headers == {"CC": ["cc1", "cc2"]}
    ch.basic_reject(m[0].delivery_tag, requeue=False)
    return x, dlx, src, targets


def test_dead_lettering_routes_with_the_original_cc_and_bcc_keys(ch, names):
    x, dlx, src, targets = cc_dead_letter_setup(ch, names)
    for k in ("orig", "cc1", "cc2", "bcc"):
        # BCC keys too: the message keeps them though the header was stripped.
        method, props, body = get_one(ch, targets[k])
        assert body == b"m" and method.exchange == dlx and method.routing_key == "orig"
        assert props.headers["CC"] == ["cc1", "cc2"]
        assert "BCC" not in props.headers
        (d,) = props.headers["x-death"]
        # x-death lists the publish key and the CC keys, not the BCC ones.
        assert d["routing-keys"] == ["orig", "cc1", "cc2"]
        assert (d["exchange"], d["queue"], d["reason"], d["count"]) == (x, src, "rejected", 1)
        assert ch.basic_get(targets[k])[0] is None
    assert ch.basic_get(targets["dlk"])[0] is None


def test_dead_letter_routing_key_replaces_cc_and_bcc(ch, names):
    x, dlx, src, targets = cc_dead_letter_setup(ch, names, dlrk="dlk")
    method, props, body = get_one(ch, targets["dlk"])
    assert body == b"m" and method.routing_key == "dlk"
    assert "CC" not in props.headers and "BCC" not in props.headers
    (d,) = props.headers["x-death"]
    assert d["routing-keys"] == ["orig", "cc1", "cc2"]  # still the original ones
    for k in ("orig", "cc1", "cc2", "bcc"):
        assert ch.basic_get(targets[k])[0] is None


# --- 3. Per-message expiration validation --------------------------------------------------

@pytest.mark.parametrize("expiration,why", [
    ("abc", "no_integer"),
    ("-1", "{value_negative,-1}"),
    ("", "no_integer"),
    (" 5", "no_integer"),
    ("1.5", '{leftover_string,".5"}'),
    ("0x10", '{leftover_string,"x10"}'),
    ("315360000001", "{value_too_large,315360000001}"),
])
def test_invalid_expiration_closes_the_channel(url, expiration, why):
    p = r.TunedPeer(url)
    try:
        p.open_channel(1)
        p.send(r.publish_message(1, "", "interop.nowhere", b"x", expiration=expiration))
        text = f"PRECONDITION_FAILED - invalid expiration '{expiration}': {why}"
        assert p.expect_close() == ("channel", 406, text, 60, 40)
    finally:
        p.close()


@pytest.mark.parametrize("expiration", ["0", "+5", "00012", "315360000000"])
def test_valid_expirations(ch, names, expiration):
    q = names.queue("exp-ok")
    ch.queue_declare(q)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
    assert ch.is_open


# --- 4. Topic routing edge cases -------------------------------------------------------------

TOPIC_PATTERNS = ["*", "*.#", "#.#", "#", "a.#.b", "#.a.#", "a.*", "*.a", "a.*.b", ""]
# routing key -> the patterns that match it, as RabbitMQ 3.10.8 routes. "" is no word at
# all ("*" does not match it, "#" does); "." is two empty words, which "*" matches.
TOPIC_MATCHES = {
    "": {"#.#", "#", ""},
    ".": {"*.#", "#.#", "#"},
    "a.": {"*.#", "#.#", "#", "#.a.#", "a.*"},
    ".a": {"*.#", "#.#", "#", "#.a.#", "*.a"},
    "a..b": {"*.#", "#.#", "#", "a.#.b", "#.a.#", "a.*.b"},
    "a": {"*", "*.#", "#.#", "#", "#.a.#"},
    "a.b": {"*.#", "#.#", "#", "a.#.b", "#.a.#", "a.*"},
    "a.b.c": {"*.#", "#.#", "#", "#.a.#"},
}


@pytest.mark.parametrize("key", list(TOPIC_MATCHES), ids=[repr(k) for k in TOPIC_MATCHES])
def test_topic_matching(ch, names, key):
    x = names.exchange("topic")
    ch.exchange_declare(x, "topic")
    queues = {}
    for i, pattern in enumerate(TOPIC_PATTERNS):
        q = names.queue(f"topic{i}")
        ch.queue_declare(q)
        ch.queue_bind(q, x, pattern)
        queues[pattern] = q
    ch.confirm_delivery()
    ch.basic_publish(x, key, b"k")
    got = {p for p, q in queues.items() if ch.basic_get(q, auto_ack=True)[0] is not None}
    assert got == TOPIC_MATCHES[key]


# --- 5. Global prefetch ------------------------------------------------------------------

def fill_two_queues(conn, names, n=5):
    qa, qb = names.queue("qos-a"), names.queue("qos-b")
    pub = conn.channel()
    for q in (qa, qb):
        pub.queue_declare(q)
    pub.confirm_delivery()
    for i in range(n):
        pub.basic_publish("", qa, b"a%d" % i)
        pub.basic_publish("", qb, b"b%d" % i)
    return pub, qa, qb


def test_global_prefetch_is_shared_by_the_channels_consumers(conn, names):
    pub, qa, qb = fill_two_queues(conn, names)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2, global_qos=True)
    got = []
    for q in (qa, qb):
        ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
    pump_until(conn, lambda: len(got) >= 2, what="the first two deliveries")
    pump_for(conn)
    assert len(got) == 2  # two in flight for the whole channel, not two per consumer
    for tag in got[:2]:
        ch.basic_ack(tag)
    pump_until(conn, lambda: len(got) >= 4, what="two more deliveries")
    pump_for(conn)
    assert len(got) == 4  # the shared limit is reached again
    assert depth(pub, qa) + depth(pub, qb) == 6


def test_per_consumer_prefetch_for_contrast(conn, names):
    pub, qa, qb = fill_two_queues(conn, names)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2, global_qos=False)
    got = {qa: [], qb: []}
    for q in (qa, qb):
        ch.basic_consume(q, lambda c, m, p, b, q=q: got[q].append(m.delivery_tag))
    pump_until(conn, lambda: len(got[qa]) + len(got[qb]) >= 4, what="two deliveries per consumer")
    pump_for(conn)
    assert (len(got[qa]), len(got[qb])) == (2, 2)


# --- 6. Exclusive queue redeclared by its owner ------------------------------------------

def locked_text(q, vhost):
    return (f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '{vhost}'. "
            "It could be originally declared on another connection or the exclusive property value "
            "does not match that of the original declaration.")


def test_owner_redeclaring_an_exclusive_queue_without_exclusive_is_405(url, connect, names):
    c = connect()
    q = names.queue("excl")
    c.channel().queue_declare(q, exclusive=True)
    assert closed_by_broker(lambda: c.channel().queue_declare(q)) == (405, locked_text(q, vhost_of(url)))
    assert closed_by_broker(lambda: c.channel().queue_declare(q, durable=True)) == (405, locked_text(q, vhost_of(url)))
    # Equivalence is checked before exclusivity.
    assert closed_by_broker(lambda: c.channel().queue_declare(q, exclusive=True, auto_delete=True)) == (
        406, f"PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '{q}' in vhost '{vhost_of(url)}': "
             "received 'true' but current is 'false'")
    # The owner may redeclare it exclusive, or passively.
    assert c.channel().queue_declare(q, exclusive=True).method.queue == q
    assert c.channel().queue_declare(q, passive=True).method.queue == q
    # Another connection gets the same 405, even for a passive declare.
    other = connect()
    assert closed_by_broker(lambda: other.channel().queue_declare(q, passive=True)) == (405, locked_text(q, vhost_of(url)))
    assert c.is_open and other.is_open


# --- 7. Declaring the default exchange ---------------------------------------------------

@pytest.mark.parametrize("passive", [False, True], ids=["declare", "passive"])
def test_declaring_the_default_exchange_is_403_on_the_channel(conn, passive):
    ch = conn.channel()
    assert closed_by_broker(lambda: ch.exchange_declare("", "direct", passive=passive)) == (
        403, "ACCESS_REFUSED - operation not permitted on the default exchange")
    assert ch.is_closed and conn.is_open
    assert conn.channel().is_open


def exchange_declare(ch, name, kind, passive=False):
    return r.method(ch, 40, 10, struct.pack(">H", 0) + r.shortstr(name) + r.shortstr(kind)
                    + bytes([1 if passive else 0]) + struct.pack(">I", 0))


@pytest.mark.parametrize("kind,passive,expected", [
    ("direct", False, ("channel", 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 10)),
    ("direct", True, ("channel", 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 10)),
    ("", True, ("channel", 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 10)),
    # Without passive the type is checked first.
    ("", False, ("connection", 503, "COMMAND_INVALID - invalid exchange type ''", 40, 10)),
], ids=["direct", "direct passive", "no type passive", "no type"])
def test_declaring_the_default_exchange_raw(url, kind, passive, expected):
    p = r.TunedPeer(url)
    try:
        p.open_channel(1)
        p.send(exchange_declare(1, "", kind, passive))
        assert p.expect_close() == expected
    finally:
        p.close()


# --- 8. channel_max -------------------------------------------------------------------------

def channel_max_text(n):
    return f"NOT_ALLOWED - number of channels opened ({n}) has reached the negotiated channel_max ({n})"


def test_channel_max_limits_how_many_are_open_not_their_numbers(connect):
    c = connect(channel_max=4)
    assert c._impl.params.channel_max == 4
    high = c.channel(channel_number=100)  # above channel_max: fine, only the count is checked
    assert high.is_open and high.channel_number == 100
    others = [c.channel() for _ in range(3)]  # 1, 2, 3: four open now
    assert [o.channel_number for o in others] == [1, 2, 3]
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        c.channel(channel_number=200)
    assert (e.value.reply_code, e.value.reply_text) == (530, channel_max_text(4))


def channel_open_outcome(p, n):
    p.send(r.channel_open(n))
    m = p.next_method()
    assert m is not None
    if m[1:3] == (20, 11):
        assert m[0] == n
        return "ok"
    assert (m[0], m[1], m[2]) == (0, 10, 50), m[:3]
    p.send(r.method(0, 10, 51))
    return r.close_args(m[3])


def test_channel_max_raw(url):
    p = r.TunedPeer(url, channel_max=4)
    try:
        assert [channel_open_outcome(p, n) for n in (65535, 100, 1, 2)] == ["ok"] * 4
        # Closing one frees a slot.
        p.send(r.method(2, 20, 40, struct.pack(">H", 200) + r.shortstr("") + struct.pack(">HH", 0, 0)))
        p.expect_method(2, 20, 41)
        assert channel_open_outcome(p, 7) == "ok"
        assert channel_open_outcome(p, 3) == (530, channel_max_text(4), 0, 0)
    finally:
        p.close()


# --- 9. IPv6 -----------------------------------------------------------------------------------

def test_ipv6_loopback(url):
    u = urlparse(url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip("the broker is not on this host")
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    netloc = f"{u.username or 'guest'}:{u.password or 'guest'}@[::1]:{u.port or 5672}"
    c = pika.BlockingConnection(pika.URLParameters(u._replace(netloc=netloc).geturl()))
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.confirm_delivery()
        ch.basic_publish("", q, b"v6")
        assert get_one(ch, q)[2] == b"v6"
    finally:
        c.close()


# --- 10. Server properties --------------------------------------------------------------------

CAPABILITIES = {"publisher_confirms", "exchange_exchange_bindings", "basic.nack", "consumer_cancel_notify",
                "connection.blocked", "consumer_priorities", "authentication_failure_close",
                "per_consumer_qos", "direct_reply_to"}


def test_connection_start(url):
    p = r.TunedPeer(url)
    try:
        assert p.version == (0, 9)
        assert b"PLAIN" in p.mechanisms.split()
        assert b"en_US" in p.locales.split()
        props = {k: (t, v) for k, t, v in r.decode_table(p.server_properties_raw)}
        # RabbitMQ sends exactly these; all but capabilities are longstr.
        assert set(props) == {"capabilities", "product", "version", "platform", "cluster_name",
                              "copyright", "information"}
        for k in ("product", "version", "platform", "cluster_name", "copyright", "information"):
            t, v = props[k]
            assert t == "S" and v.decode(), k
        t, caps = props["capabilities"]
        assert t == "F"
        assert {k: (ct, cv) for k, ct, cv in caps} == {k: ("t", True) for k in CAPABILITIES}
    finally:
        p.close()


# --- 11. Unbinding what is not there ------------------------------------------------------

@pytest.mark.parametrize("case", ["queue", "exchange", "both", "binding", "binding with arguments", "twice"])
def test_queue_unbind_of_missing_things_is_ok(ch, names, case):
    q, x = names.queue("ub"), names.exchange("ub")
    ch.queue_declare(q)
    ch.exchange_declare(x, "direct")
    gone_q, gone_x = names.queue("ub-gone"), names.exchange("ub-gone")
    if case == "twice":
        ch.queue_bind(q, x, "k")
        ch.queue_unbind(q, x, "k")
    queue = gone_q if case in ("queue", "both") else q
    exchange = gone_x if case in ("exchange", "both") else x
    args = {"a": 1} if case == "binding with arguments" else None
    assert ch.queue_unbind(queue, exchange, "k", arguments=args).method.NAME == "Queue.UnbindOk"
    assert ch.is_open


@pytest.mark.parametrize("case", ["destination", "source", "both", "binding", "twice"])
def test_exchange_unbind_of_missing_things_is_ok(ch, names, case):
    src, dst = names.exchange("ub-src"), names.exchange("ub-dst")
    ch.exchange_declare(src, "direct")
    ch.exchange_declare(dst, "direct")
    gone_s, gone_d = names.exchange("ub-gone-s"), names.exchange("ub-gone-d")
    if case == "twice":
        ch.exchange_bind(dst, src, "k")
        ch.exchange_unbind(dst, src, "k")
    destination = gone_d if case in ("destination", "both") else dst
    source = gone_s if case in ("source", "both") else src
    assert ch.exchange_unbind(destination, source, "k").method.NAME == "Exchange.UnbindOk"
    assert ch.is_open


@pytest.mark.parametrize("how", ["queue from default", "exchange from default", "default from exchange"])
def test_unbinding_the_default_exchange_is_403(conn, names, how):
    q, x = names.queue("ub-def"), names.exchange("ub-def")
    ch = conn.channel()
    ch.queue_declare(q)
    ch.exchange_declare(x, "direct")
    call = {
        "queue from default": lambda: ch.queue_unbind(q, "", q),
        "exchange from default": lambda: ch.exchange_unbind(x, "", "k"),
        "default from exchange": lambda: ch.exchange_unbind("", x, "k"),
    }[how]
    assert closed_by_broker(call) == (403, "ACCESS_REFUSED - operation not permitted on the default exchange")


# --- 12. Mandatory + confirms into a full reject-publish queue ------------------------------

def confirm_outcomes(p, count):
    """Read until publishes 1..count are all confirmed: ({tag: 'ack'|'nack'}, [returns])."""
    outcome, returns = {}, []
    while len(outcome) < count:
        m = p.next_method()
        assert m is not None, f"socket closed or timed out; so far {outcome} {returns}"
        ch, cls, mth, args = m
        if (cls, mth) == (60, 50):
            code = struct.unpack(">H", args[:2])[0]
            returns.append((code, args[3:3 + args[2]].decode()))
        elif (cls, mth) in ((60, 80), (60, 120)):
            tag, bits = struct.unpack(">QB", args[:9])
            kind = "ack" if mth == 80 else "nack"
            tags = [t for t in range(1, tag + 1) if t not in outcome] if bits & 1 else [tag]
            for t in tags:
                outcome[t] = kind
        else:
            raise AssertionError(f"unexpected method {cls}.{mth}")
    return outcome, returns


@pytest.mark.parametrize("overflow", ["reject-publish", "reject-publish-dlx"])
def test_mandatory_publish_into_a_full_queue_is_nacked_not_returned(url, ch, names, overflow):
    dlx, dlq, q = names.exchange("full-dlx"), names.queue("full-dlq"), names.queue("full")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": overflow, "x-dead-letter-exchange": dlx})
    p = r.TunedPeer(url)
    try:
        p.open_channel(1)
        p.send(r.confirm_select(1))
        p.expect_method(1, 85, 11)
        for b in (b"fits", b"refused", b"refused too"):
            p.send(r.publish_message(1, "", q, b, mandatory=True))
        assert confirm_outcomes(p, 3) == ({1: "ack", 2: "nack", 3: "nack"}, [])
    finally:
        p.close()
    assert depth(ch, q) == 1
    if overflow == "reject-publish-dlx":
        got = [m[2] for m in drain(ch, dlq)]
        assert got == [b"refused", b"refused too"]
    else:
        assert depth(ch, dlq) == 0


@pytest.mark.parametrize("overflow", ["reject-publish", "reject-publish-dlx"])
def test_pika_sees_a_nack_not_an_unroutable_return(conn, names, overflow):
    q = names.queue("full-pika")
    ch = conn.channel()
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": overflow})
    ch.confirm_delivery()
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish("", q, b"fits", mandatory=True)
    with pytest.raises(pika.exceptions.NackError) as e:
        ch.basic_publish("", q, b"refused", mandatory=True)
    assert not isinstance(e.value, pika.exceptions.UnroutableError)
    # For contrast, an unroutable mandatory publish is returned (then acked).
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("", names.queue("nowhere"), b"lost", mandatory=True)
    conn.process_data_events(time_limit=0)
    assert len(returned) == 1 and returned[0][1].reply_code == 312


def test_a_publish_refused_by_one_of_its_queues_is_nacked_but_kept_by_the_others(ch, names):
    x, full, other = names.exchange("full-fan"), names.queue("full-one"), names.queue("full-other")
    ch.exchange_declare(x, "fanout")
    ch.queue_declare(full, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.queue_declare(other)
    ch.queue_bind(full, x)
    ch.queue_bind(other, x)
    ch.confirm_delivery()
    ch.basic_publish(x, "", b"1")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish(x, "", b"2", mandatory=True)
    assert (depth(ch, full), depth(ch, other)) == (1, 2)


# --- 13. Policies ----------------------------------------------------------------------------
# The broker's policies are set through commands from the environment, like BROKER_RESTART:
#   BROKER_SET_POLICY    run as: $BROKER_SET_POLICY NAME PATTERN DEFINITION_JSON --apply-to queues|exchanges|all --priority N
#   BROKER_CLEAR_POLICY  run as: $BROKER_CLEAR_POLICY NAME
# (through the shell, each argument quoted), acting on AMQP_URL's vhost. For RabbitMQ:
#   BROKER_SET_POLICY="rabbitmqctl -q set_policy" BROKER_CLEAR_POLICY="rabbitmqctl -q clear_policy"
# (add "-p VHOST" after the subcommand for a vhost other than /). The command returns once
# the policy is in force for entities declared afterwards; these tests declare after setting.

SET_POLICY = os.environ.get("BROKER_SET_POLICY")
CLEAR_POLICY = os.environ.get("BROKER_CLEAR_POLICY")
needs_policies = pytest.mark.skipif(not (SET_POLICY and CLEAR_POLICY),
                                    reason="BROKER_SET_POLICY / BROKER_CLEAR_POLICY not set")


def pattern_for(*entity_names):
    """An anchored regex matching exactly these names (which are [a-z0-9.] only)."""
    return "^(" + "|".join(n.replace(".", r"\.") for n in entity_names) + ")$"


@pytest.fixture
def policy():
    made = []
    tag = uuid.uuid4().hex[:8]

    def clear(name):
        subprocess.run(f"{CLEAR_POLICY} {shlex.quote(name)}", shell=True, check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        made.remove(name)

    def set_policy(label, matches, definition, apply_to="queues", priority=0):
        name = f"interop-{label}-{tag}"
        cmd = (f"{SET_POLICY} {shlex.quote(name)} {shlex.quote(pattern_for(*matches))} "
               f"{shlex.quote(json.dumps(definition))} --apply-to {apply_to} --priority {priority}")
        subprocess.run(cmd, shell=True, check=True, timeout=60, stdout=subprocess.DEVNULL)
        made.append(name)
        return name

    set_policy.clear = clear
    yield set_policy
    for name in list(made):
        try:
            clear(name)
        except Exception:
            pass


def accepted(ch, queue, bodies):
    """Publish each body with confirms; the list of those acked."""
    out = []
    for b in bodies:
        try:
            ch.basic_publish("", queue, b)
            out.append(b)
        except pika.exceptions.NackError:
            pass
    return out


def dead_letter_target(ch, names, *keys):
    dlx, dlq = names.exchange("pol-dlx"), names.queue("pol-dlq")
    ch.exchange_declare(dlx, "direct")
    ch.queue_declare(dlq)
    for k in keys:
        ch.queue_bind(dlq, dlx, k)
    return dlx, dlq


def reject_one(ch, queue, body=b"m"):
    ch.basic_publish("", queue, body)
    m = get_one(ch, queue, auto_ack=False)
    ch.basic_reject(m[0].delivery_tag, requeue=False)


@needs_policies
def test_policy_alternate_exchange(ch, names, policy):
    x, ae, aq = names.exchange("pol-x"), names.exchange("pol-ae"), names.queue("pol-aq")
    policy("ae", [x], {"alternate-exchange": ae}, apply_to="exchanges")
    ch.exchange_declare(ae, "fanout")
    ch.queue_declare(aq)
    ch.queue_bind(aq, ae)
    ch.exchange_declare(x, "direct")
    ch.confirm_delivery()
    ch.basic_publish(x, "no-binding", b"to-ae", mandatory=True)  # not returned: the AE took it
    method, _, body = get_one(ch, aq)
    assert body == b"to-ae" and method.exchange == x and method.routing_key == "no-binding"


@needs_policies
def test_exchange_argument_beats_policy_alternate_exchange(ch, names, policy):
    x = names.exchange("pol-x")
    ae_pol, ae_arg = names.exchange("pol-ae1"), names.exchange("pol-ae2")
    q_pol, q_arg = names.queue("pol-aq1"), names.queue("pol-aq2")
    policy("ae-arg", [x], {"alternate-exchange": ae_pol}, apply_to="exchanges")
    for ae, q in ((ae_pol, q_pol), (ae_arg, q_arg)):
        ch.exchange_declare(ae, "fanout")
        ch.queue_declare(q)
        ch.queue_bind(q, ae)
    ch.exchange_declare(x, "direct", arguments={"alternate-exchange": ae_arg})
    ch.confirm_delivery()
    ch.basic_publish(x, "no-binding", b"m")
    assert get_one(ch, q_arg)[2] == b"m"
    assert depth(ch, q_pol) == 0


@needs_policies
def test_policy_message_ttl_and_dead_lettering(ch, names, policy):
    dlx, dlq = dead_letter_target(ch, names, "pol-rk")
    q = names.queue("pol-ttl")
    policy("ttl", [q], {"message-ttl": 50, "dead-letter-exchange": dlx, "dead-letter-routing-key": "pol-rk"})
    ch.queue_declare(q)
    ch.basic_publish("", q, b"late")
    method, props, body = get_one(ch, dlq)
    assert body == b"late" and method.routing_key == "pol-rk"
    (d,) = props.headers["x-death"]
    assert (d["reason"], d["queue"]) == ("expired", q)


@pytest.mark.parametrize("pol,arg", [(50, 600000), (600000, 50)], ids=["policy smaller", "argument smaller"])
@needs_policies
def test_the_smaller_message_ttl_of_policy_and_argument_applies(ch, names, policy, pol, arg):
    dlx, dlq = dead_letter_target(ch, names, "pol-rk")
    q = names.queue("pol-ttlmin")
    policy("ttlmin", [q], {"message-ttl": pol, "dead-letter-exchange": dlx, "dead-letter-routing-key": "pol-rk"})
    ch.queue_declare(q, arguments={"x-message-ttl": arg})
    ch.basic_publish("", q, b"late")
    method, props, body = get_one(ch, dlq)  # within the 10 s deadline: 50 ms applied
    assert props.headers["x-death"][0]["reason"] == "expired"


@pytest.mark.parametrize("pol,arg", [(1, None), (1, 3), (3, 1)], ids=["policy only", "policy smaller", "argument smaller"])
@needs_policies
def test_policy_max_length_and_overflow_the_smaller_length_applies(ch, names, policy, pol, arg):
    q = names.queue("pol-maxlen")
    policy("maxlen", [q], {"max-length": pol, "overflow": "reject-publish"})
    ch.queue_declare(q, arguments={"x-max-length": arg} if arg else None)
    ch.confirm_delivery()
    assert accepted(ch, q, [b"1", b"2", b"3", b"4"]) == [b"1"]
    assert depth(ch, q) == 1


@needs_policies
def test_queue_overflow_argument_beats_policy(ch, names, policy):
    q = names.queue("pol-overflow")
    policy("overflow", [q], {"max-length": 1, "overflow": "reject-publish"})
    ch.queue_declare(q, arguments={"x-overflow": "drop-head"})
    ch.confirm_delivery()
    assert accepted(ch, q, [b"1", b"2"]) == [b"1", b"2"]
    assert [m[2] for m in drain(ch, q)] == [b"2"]


@needs_policies
def test_policy_dead_letter_exchange_and_routing_key(ch, names, policy):
    dlx, dlq = dead_letter_target(ch, names, "pol-rk")
    dlx_arg, dlq_arg = names.exchange("pol-dlx-arg"), names.queue("pol-dlq-arg")
    ch.exchange_declare(dlx_arg, "direct")
    ch.queue_declare(dlq_arg)
    ch.queue_bind(dlq_arg, dlx_arg, "pol-rk")
    plain, with_arg = names.queue("pol-dl1"), names.queue("pol-dl2")
    policy("dl", [plain, with_arg], {"dead-letter-exchange": dlx, "dead-letter-routing-key": "pol-rk"})
    ch.queue_declare(plain)
    # Key by key: the queue's DLX argument wins, the policy's routing key still applies.
    ch.queue_declare(with_arg, arguments={"x-dead-letter-exchange": dlx_arg})
    reject_one(ch, plain, b"p")
    reject_one(ch, with_arg, b"a")
    method, props, body = get_one(ch, dlq)
    assert (body, method.exchange, method.routing_key) == (b"p", dlx, "pol-rk")
    method, props, body = get_one(ch, dlq_arg)
    assert (body, method.exchange, method.routing_key) == (b"a", dlx_arg, "pol-rk")
    assert depth(ch, dlq) == 0


@needs_policies
def test_dead_letter_routing_key_argument_needs_a_dlx_argument_even_with_a_policy_dlx(url, conn, names, policy):
    dlx = names.exchange("pol-dlx")
    q = names.queue("pol-rkonly")
    policy("rkonly", [q], {"dead-letter-exchange": dlx})
    ch = conn.channel()
    assert closed_by_broker(lambda: ch.queue_declare(q, arguments={"x-dead-letter-routing-key": "k"})) == (
        406, f"PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue '{q}' in vhost "
             f"'{vhost_of(url)}': routing_key_but_no_dlx_defined")


@needs_policies
def test_policy_expires_the_smaller_applies(ch, names, policy):
    plain, with_arg = names.queue("pol-exp1"), names.queue("pol-exp2")
    policy("expires", [plain, with_arg], {"expires": 200})
    ch.queue_declare(plain)
    ch.queue_declare(with_arg, arguments={"x-expires": 600000})
    ch.confirm_delivery()

    def gone(q):
        # A mandatory publish comes back once the queue is gone; unlike a declare, it
        # does not renew the queue's lease.
        try:
            ch.basic_publish("", q, b"probe", mandatory=True)
            return False
        except pika.exceptions.UnroutableError:
            return True
    wait_for(lambda: gone(plain), what=f"{plain} to expire")
    wait_for(lambda: gone(with_arg), what=f"{with_arg} to expire")


@needs_policies
def test_policy_delivery_limit_on_a_classic_queue():
    pytest.skip("RabbitMQ 3.10 applies delivery-limit to quorum queues only: a classic queue "
                "redelivers for ever, without x-delivery-count")


@needs_policies
def test_policy_delivery_limit_on_a_quorum_queue(ch, names, policy):
    dlx, dlq = names.exchange("pol-qdlx"), names.queue("pol-qdlq")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    q = names.queue("pol-quorum")
    policy("qlimit", [q], {"delivery-limit": 1, "dead-letter-exchange": dlx})
    ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum"})
    ch.confirm_delivery()
    ch.basic_publish("", q, b"poison")
    for attempt in range(2):  # limit 1: delivered twice, then dead-lettered
        m = get_one(ch, q, auto_ack=False)
        assert m[1].headers["x-delivery-count"] == attempt
        ch.basic_nack(m[0].delivery_tag, requeue=True)
    method, props, body = get_one(ch, dlq)
    assert body == b"poison" and props.headers["x-death"][0]["reason"] == "delivery_limit"
    assert ch.basic_get(q)[0] is None


@needs_policies
def test_the_higher_priority_policy_alone_applies(ch, names, policy):
    q1, q2 = names.queue("pol-prio1"), names.queue("pol-prio2")
    # Set the higher ones first: the order of setting does not matter.
    policy("prio-hi1", [q1], {"max-length": 2, "overflow": "reject-publish"}, priority=2)
    policy("prio-hi2", [q2], {"expires": 600000}, priority=2)
    policy("prio-lo", [q1, q2], {"max-length": 1, "overflow": "reject-publish"}, priority=1)
    ch.queue_declare(q1)
    ch.queue_declare(q2)
    ch.confirm_delivery()
    assert accepted(ch, q1, [b"1", b"2", b"3"]) == [b"1", b"2"]
    # Definitions are not merged: q2's policy has no max-length, so there is none.
    assert accepted(ch, q2, [b"1", b"2", b"3"]) == [b"1", b"2", b"3"]


@needs_policies
def test_a_policy_applies_to_an_existing_queue_and_clearing_it_lifts_it(ch, names, policy):
    q = names.queue("pol-later")
    ch.queue_declare(q)
    ch.confirm_delivery()
    for b in (b"1", b"2", b"3"):
        ch.basic_publish("", q, b)
    name = policy("later", [q], {"max-length": 1})
    wait_for(lambda: depth(ch, q) == 1, what="the policy's max-length to drop the head")
    policy.clear(name)

    def lifted():
        ch.basic_publish("", q, b"more")
        return depth(ch, q) >= 2
    wait_for(lifted, what="the cleared policy's limit to go")
    assert get_one(ch, q)[2] == b"3"


# --- Publishing checks: user_id ---------------------------------------------------------------

def test_a_user_id_other_than_the_users_is_refused(conn, names):
    q = names.queue("uid")
    ch = conn.channel()
    ch.queue_declare(q)
    ch.basic_publish("", q, b"own", pika.BasicProperties(user_id="guest"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_publish("", q, b"other", pika.BasicProperties(user_id="mallory"))
        ch.queue_declare(q, passive=True)
    assert e.value.reply_code == 406
    assert e.value.reply_text == (
        "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'")
    assert depth(conn.channel(), q) == 1


# --- The management API closes a connection --------------------------------------------------
# MANAGEMENT_URL names the broker's management API (interop/run sets it for the
# ferretmq it starts; for RabbitMQ, enable rabbitmq_management and set it).

MANAGEMENT_URL = os.environ.get("MANAGEMENT_URL")


def management(method, path, headers=None):
    import base64
    import urllib.error
    import urllib.request
    u = urlparse(MANAGEMENT_URL)
    req = urllib.request.Request(f"{u.scheme}://{u.hostname}:{u.port}{path}", method=method)
    auth = base64.b64encode(f"{u.username or 'guest'}:{u.password or 'guest'}".encode()).decode()
    req.add_header("Authorization", f"Basic {auth}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.skipif(not MANAGEMENT_URL, reason="MANAGEMENT_URL not set")
def test_deleting_a_connection_over_http_closes_it_with_320(connect):
    from urllib.parse import quote
    label = f"interop-conn-{uuid.uuid4().hex[:8]}"
    c = connect(client_properties={"connection_name": label})
    c.channel()
    found = []

    def listed():
        _, body = management("GET", "/api/connections/")
        found[:] = [x for x in json.loads(body)
                    if x.get("client_properties", {}).get("connection_name") == label]
        return bool(found)

    # RabbitMQ lists a new connection only once its statistics arrive.
    wait_for(listed)
    assert found[0]["user"] == "guest" and found[0]["vhost"] == "/"
    status, _ = management("DELETE", "/api/connections/" + quote(found[0]["name"], safe=""),
                           {"X-Reason": "bye now"})
    assert status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        c.process_data_events(time_limit=10)
    assert (e.value.reply_code, e.value.reply_text) == (320, "CONNECTION_FORCED - bye now")
    assert management("DELETE", "/api/connections/nobody")[0] == 404


def test_publishing_to_an_exchange_gone_meanwhile_is_404(conn, names):
    """A channel that published to an exchange before must not keep using
    it once it is deleted, or auto-deleted with its last binding."""
    pub = conn.channel()
    pub.confirm_delivery()
    admin = conn.channel()
    x, q = names.exchange("fleeting"), names.queue("fleeting")
    admin.exchange_declare(x, "fanout", auto_delete=True)
    admin.queue_declare(q)
    admin.queue_bind(q, x)
    pub.basic_publish(x, "", b"1")
    assert depth(admin, q) == 1
    admin.queue_unbind(q, x)
    code, text = closed_by_broker(lambda: pub.basic_publish(x, "", b"2"))
    assert code == 404
    assert text == f"NOT_FOUND - no exchange '{x}' in vhost '/'"
