"""A minimal raw AMQP 0-9-1 peer for sending what no well-behaved client sends.

Only the handful of methods the bad-input tests need are encoded here; real
clients (pika) cover everything else.
"""
import os
import socket
import struct
from urllib.parse import urlparse, unquote

FRAME_END = b"\xce"


def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("B", len(b)) + b


def longstr(b):
    return struct.pack(">I", len(b)) + b


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + FRAME_END


def method(channel, class_id, method_id, args=b""):
    return frame(1, channel, struct.pack(">HH", class_id, method_id) + args)


def header(channel, body_size, class_id=60, flags=0):
    return frame(2, channel, struct.pack(">HHQH", class_id, 0, body_size, flags))


def body(channel, data):
    return frame(3, channel, data)


def channel_open(ch):
    return method(ch, 20, 10, shortstr(""))


def basic_publish(ch, exchange="", routing_key="", mandatory=False):
    return method(ch, 60, 40, struct.pack(">H", 0) + shortstr(exchange) + shortstr(routing_key) + bytes([1 if mandatory else 0]))


def basic_ack(ch, tag, multiple=False):
    return method(ch, 60, 80, struct.pack(">QB", tag, 1 if multiple else 0))


def queue_declare(ch, name, durable=False, exclusive=False, auto_delete=False):
    bits = (2 if durable else 0) | (4 if exclusive else 0) | (8 if auto_delete else 0)
    return method(ch, 50, 10, struct.pack(">H", 0) + shortstr(name) + bytes([bits]) + struct.pack(">I", 0))


class Peer:
    """A connected, opened AMQP connection driven frame by frame."""

    def __init__(self, url=None, timeout=10.0, frame_max=131072):
        u = urlparse(url or os.environ["AMQP_URL"])
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 5672), timeout=timeout)
        self.buf = b""
        self.user = unquote(u.username or "guest")
        self.password = unquote(u.password or "guest")
        vhost = unquote(u.path[1:]) if u.path and len(u.path) > 1 else "/"
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self.expect_method(0, 10, 10)  # start
        caps = b"\x0ccapabilities" + b"F" + longstr(b"\x1cauthentication_failure_closet\x01")
        props = struct.pack(">I", len(caps)) + caps
        resp = b"\x00" + self.user.encode() + b"\x00" + self.password.encode()
        self.send(method(0, 10, 11, props + shortstr("PLAIN") + longstr(resp) + shortstr("en_US")))
        tune = self.expect_method(0, 10, 30)
        channel_max, server_frame_max, heartbeat = struct.unpack(">HIH", tune[:8])
        self.frame_max = min(frame_max, server_frame_max)
        self.send(method(0, 10, 31, struct.pack(">HIH", channel_max, self.frame_max, 0)))
        self.send(method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00"))
        self.expect_method(0, 10, 41)

    def send(self, data):
        self.sock.sendall(data)

    def read_frame(self):
        """Next frame as (type, channel, payload), or None when the peer closed the socket."""
        while True:
            if len(self.buf) >= 7:
                ftype, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= size + 8:
                    payload = self.buf[7:7 + size]
                    self.buf = self.buf[size + 8:]
                    return ftype, ch, payload
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def next_method(self):
        """Next method frame as (channel, class, method, args), skipping heartbeats and content."""
        while True:
            f = self.read_frame()
            if f is None:
                return None
            ftype, ch, payload = f
            if ftype == 1:
                cls, mth = struct.unpack(">HH", payload[:4])
                return ch, cls, mth, payload[4:]

    def expect_method(self, ch, cls, mth):
        m = self.next_method()
        assert m is not None, f"socket closed while waiting for {cls}.{mth}"
        assert m[:3] == (ch, cls, mth), f"expected {cls}.{mth} on {ch}, got {m[:3]} {m[3][:80]!r}"
        return m[3]

    def open_channel(self, ch=1):
        self.send(channel_open(ch))
        self.expect_method(ch, 20, 11)

    def expect_close(self):
        """Wait for a Channel.Close or Connection.Close; return (scope, code, text, class, method)."""
        while True:
            m = self.next_method()
            assert m is not None, "socket closed without a Close method"
            ch, cls, mth, args = m
            if (cls, mth) in ((10, 50), (20, 40)):
                code = struct.unpack(">H", args[:2])[0]
                n = args[2]
                text = args[3:3 + n].decode()
                c, mm = struct.unpack(">HH", args[3 + n:7 + n])
                scope = "connection" if cls == 10 else "channel"
                if scope == "connection":
                    self.send(method(0, 10, 51))
                else:
                    self.send(method(ch, 20, 41))
                return scope, code, text, c, mm

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- Additions for test_parity.py: field tables, properties, a tunable handshake. ---

def _field_value(v):
    """Encode one field value; the type follows the Python type (str -> S, bytes -> x)."""
    if isinstance(v, bool):
        return b"t" + bytes([1 if v else 0])
    if isinstance(v, int):
        return b"l" + struct.pack(">q", v)
    if isinstance(v, str):
        return b"S" + longstr(v.encode())
    if isinstance(v, bytes):
        return b"x" + longstr(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, (list, tuple)):
        items = b"".join(_field_value(i) for i in v)
        return b"A" + struct.pack(">I", len(items)) + items
    raise TypeError(f"no field type for {v!r}")


def table(d):
    """A field table from a dict (insertion order is kept on the wire)."""
    items = b"".join(shortstr(k) + _field_value(v) for k, v in d.items())
    return struct.pack(">I", len(items)) + items


def decode_table(data):
    """A field table as a list of (key, type_char, value), in wire order; nested tables
    decode the same way, arrays to lists of (type_char, value)."""
    (n,) = struct.unpack(">I", data[:4])
    out, pos, end = [], 4, 4 + n
    while pos < end:
        klen = data[pos]
        key = data[pos + 1:pos + 1 + klen].decode()
        pos += 1 + klen
        t, v, pos = _decode_value(data, pos)
        out.append((key, t, v))
    return out


def _decode_value(data, pos):
    t = chr(data[pos])
    pos += 1
    fixed = {"t": ">B", "b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I",
             "l": ">q", "L": ">Q", "f": ">f", "d": ">d", "T": ">Q"}
    if t in fixed:
        fmt = fixed[t]
        (v,) = struct.unpack(fmt, data[pos:pos + struct.calcsize(fmt)])
        return t, (bool(v) if t == "t" else v), pos + struct.calcsize(fmt)
    if t in "Sx":
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        return t, data[pos + 4:pos + 4 + n], pos + 4 + n
    if t == "F":
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        return t, decode_table(data[pos:pos + 4 + n]), pos + 4 + n
    if t == "A":
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        items, p, end = [], pos + 4, pos + 4 + n
        while p < end:
            it, iv, p = _decode_value(data, p)
            items.append((it, iv))
        return t, items, end
    if t == "D":
        return t, (data[pos], struct.unpack(">i", data[pos + 1:pos + 5])[0]), pos + 5
    if t == "V":
        return t, None, pos
    raise ValueError(f"unknown field type {t!r}")


def header_with(channel, body_size, headers=None, expiration=None):
    """A Basic content header carrying headers and/or expiration."""
    flags, props = 0, b""
    if headers is not None:
        flags |= 1 << 13
        props += table(headers)
    if expiration is not None:
        flags |= 1 << 8
        props += shortstr(expiration)
    return frame(2, channel, struct.pack(">HHQH", 60, 0, body_size, flags) + props)


def publish_message(ch, exchange, routing_key, data=b"", mandatory=False, headers=None, expiration=None):
    """Basic.Publish plus its header (with properties) and one body frame."""
    out = basic_publish(ch, exchange, routing_key, mandatory) + header_with(ch, len(data), headers, expiration)
    return out + (body(ch, data) if data else b"")


def confirm_select(ch):
    return method(ch, 85, 10, b"\x00")


def connection_close(code=200, text="bye", class_id=0, method_id=0):
    return method(0, 10, 50, struct.pack(">H", code) + shortstr(text) + struct.pack(">HH", class_id, method_id))


def heartbeat():
    return frame(8, 0, b"")


def close_args(args):
    """(code, text, class_id, method_id) from the arguments of a Channel.Close or Connection.Close."""
    code = struct.unpack(">H", args[:2])[0]
    n = args[2]
    c, m = struct.unpack(">HH", args[3 + n:7 + n])
    return code, args[3:3 + n].decode(), c, m


class TunedPeer(Peer):
    """Like Peer, but the handshake is under control: channel_max (None: accept the
    server's) and heartbeat sent in Tune-Ok; keeps Connection.Start's fields as
    server_properties_raw (bytes), mechanisms, locales, version and Tune as tune."""

    def __init__(self, url=None, timeout=10.0, channel_max=None, heartbeat=0):
        u = urlparse(url or os.environ["AMQP_URL"])
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 5672), timeout=timeout)
        self.buf = b""
        self.user = unquote(u.username or "guest")
        self.password = unquote(u.password or "guest")
        vhost = unquote(u.path[1:]) if u.path and len(u.path) > 1 else "/"
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        start = self.expect_method(0, 10, 10)
        self.version = (start[0], start[1])
        (n,) = struct.unpack(">I", start[2:6])
        self.server_properties_raw = start[2:6 + n]
        pos = 6 + n
        (ml,) = struct.unpack(">I", start[pos:pos + 4])
        self.mechanisms = start[pos + 4:pos + 4 + ml]
        pos += 4 + ml
        (ll,) = struct.unpack(">I", start[pos:pos + 4])
        self.locales = start[pos + 4:pos + 4 + ll]
        props = table({"capabilities": {"authentication_failure_close": True}})
        resp = b"\x00" + self.user.encode() + b"\x00" + self.password.encode()
        self.send(method(0, 10, 11, props + shortstr("PLAIN") + longstr(resp) + shortstr("en_US")))
        tune = self.expect_method(0, 10, 30)
        self.tune = struct.unpack(">HIH", tune[:8])
        self.channel_max = self.tune[0] if channel_max is None else channel_max
        self.frame_max = self.tune[1]
        self.send(method(0, 10, 31, struct.pack(">HIH", self.channel_max, self.frame_max, heartbeat)))
        self.send(method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00"))
        self.expect_method(0, 10, 41)

    def recv_outcome(self, timeout):
        """What the socket does next within timeout: ('data', bytes), ('eof', b''),
        ('reset', None) or ('open', None) if nothing happened by then."""
        import select
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return ("open", None)
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            return ("reset", None)
        return ("data", d) if d else ("eof", b"")
