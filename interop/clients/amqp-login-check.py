"""Exit 0 if HOST:PORT accepts an AMQP 0-9-1 PLAIN login as USER/PASSWORD on vhost /.

Usage: python3 amqp-login-check.py HOST PORT USER PASSWORD. Stdlib only; used by
amqprs.sh to warn early when the broker lacks the suite's hard-coded user."""
import socket, struct, sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def read_frame(s):
    hdr = b''
    while len(hdr) < 7:
        d = s.recv(7 - len(hdr))
        if not d:
            raise EOFError
        hdr += d
    _, _, size = struct.unpack('>BHI', hdr)
    body = b''
    while len(body) < size + 1:
        d = s.recv(size + 1 - len(body))
        if not d:
            raise EOFError
        body += d
    return body[:size]


def method(cls, mid, args):
    p = struct.pack('>HH', cls, mid) + args
    return struct.pack('>BHI', 1, 0, len(p)) + p + b'\xce'


try:
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b'AMQP\x00\x00\x09\x01')
    read_frame(s)  # Connection.Start
    resp = b'\x00' + user.encode() + b'\x00' + password.encode()
    s.sendall(method(10, 11, struct.pack('>I', 0) + b'\x05PLAIN'
                     + struct.pack('>I', len(resp)) + resp + b'\x05en_US'))
    m = read_frame(s)
    ok = m[:4] == struct.pack('>HH', 10, 30)  # Connection.Tune
    s.close()
except (OSError, EOFError):
    ok = False
sys.exit(0 if ok else 1)
