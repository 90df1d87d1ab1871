"""The soak's load (see scripts/soak). Threads, one connection each:

- publishers: into four durable queues, half the messages persistent, with
  confirms; fast for a phase, then throttled, alternating;
- consumers: ack every message; they close and reconnect every 30 s;
- a hoarder: every other phase it takes messages without acking until the
  memory alarm blocks the publishers, then acks them all;
- churn: declares a queue, publishes into it, consumes it, deletes it, again.

Each message carries an id; the publisher records it when confirmed, a
consumer when it arrives. At the end publishing stops, every queue is
drained, and each confirmed id must have arrived."""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pika

QUEUES = [f"soak-{i}" for i in range(4)]
PHASE_S = 60
stop = threading.Event()
lock = threading.Lock()
confirmed = set()
received = set()
counts = {"published": 0, "nacked": 0, "consumed": 0, "churned": 0, "blocked": 0}


def bump(key, n=1):
    with lock:
        counts[key] += n


def connect(port, blocked_cb=None):
    params = pika.ConnectionParameters(
        "127.0.0.1", port, heartbeat=0, blocked_connection_timeout=None
    )
    c = pika.BlockingConnection(params)
    if blocked_cb:
        c.add_on_connection_blocked_callback(blocked_cb)
    return c


def fast_phase(t0):
    return int((time.time() - t0) // PHASE_S) % 2 == 0


def publisher(port, n, t0):
    c = connect(port, lambda *_: bump("blocked"))
    ch = c.channel()
    ch.confirm_delivery()
    body = os.urandom(2048)
    seq = 0
    while not stop.is_set():
        seq += 1
        mid = f"p{n}-{seq}"
        q = QUEUES[seq % len(QUEUES)]
        props = pika.BasicProperties(message_id=mid, delivery_mode=2 if seq % 2 else 1)
        try:
            ch.basic_publish("", q, body, props, mandatory=False)
            with lock:
                confirmed.add(mid)
                counts["published"] += 1
        except pika.exceptions.NackError:
            bump("nacked")
        if seq % 100 == 0:
            # A BlockingConnection runs its Connection.Blocked callback only
            # here, not while it publishes.
            c.process_data_events(time_limit=0)
        if not fast_phase(t0):
            time.sleep(0.002)
    c.close()


def consume_for(port, seconds, queue, ack=True):
    c = connect(port)
    ch = c.channel()
    ch.basic_qos(prefetch_count=100)
    deadline = time.time() + seconds
    for method, props, _ in ch.consume(queue, inactivity_timeout=0.5):
        if method is not None:
            with lock:
                received.add(props.message_id)
                counts["consumed"] += 1
            ch.basic_ack(method.delivery_tag)
        if stop.is_set() or time.time() > deadline:
            break
    ch.cancel()
    c.close()


def consumer(port, n, t0):
    while not stop.is_set():
        # Slow in the fast phase (publishers outrun it), fast in the slow one.
        consume_for(port, 30, QUEUES[n % len(QUEUES)])


def hoarder(port, t0):
    while not stop.is_set():
        if fast_phase(t0) or int((time.time() - t0) // PHASE_S) % 4 != 1:
            time.sleep(1)
            continue
        c = connect(port)
        ch = c.channel()
        tags = []
        deadline = time.time() + 20
        for method, props, _ in ch.consume(QUEUES[0], inactivity_timeout=0.5):
            if method is not None:
                with lock:
                    received.add(props.message_id)
                    counts["consumed"] += 1
                tags.append(method.delivery_tag)
            if stop.is_set() or time.time() > deadline:
                break
        if tags:
            ch.basic_ack(tags[-1], multiple=True)
        ch.cancel()
        c.close()


def churn(port):
    c = connect(port)
    ch = c.channel()
    n = 0
    while not stop.is_set():
        n += 1
        q = f"soak-churn-{n}"
        ch.queue_declare(q, auto_delete=False)
        for i in range(100):
            ch.basic_publish("", q, b"x" * 512)
        got = 0
        while got < 100:
            m, _, _ = ch.basic_get(q, auto_ack=True)
            if m is None:
                time.sleep(0.01)
                continue
            got += 1
        ch.queue_delete(q)
        bump("churned")
        time.sleep(0.05)
    c.close()


def proc_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def proc_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def drain(port):
    c = connect(port)
    ch = c.channel()
    for q in QUEUES:
        while True:
            m, props, _ = ch.basic_get(q, auto_ack=True)
            if m is None:
                break
            with lock:
                received.add(props.message_id)
                counts["consumed"] += 1
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--out", default="soak.csv")
    # Low enough that the hoarder's unacked messages cross it: the soak
    # must see the memory alarm set and cleared.
    ap.add_argument("--memory-limit", type=int, default=14 * 1024 * 1024)
    args = ap.parse_args()
    port = free_port()
    data = tempfile.mkdtemp(prefix="ferretmq-soak-")
    broker = subprocess.Popen(
        [args.bin, "--listen", f"127.0.0.1:{port}", "--data-dir", data,
         "--no-management", "--no-prometheus", "--memory-limit", str(args.memory_limit)],
        stderr=open(os.path.join(data, "broker.log"), "w"),
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        c = connect(port)
        ch = c.channel()
        for q in QUEUES:
            ch.queue_declare(q, durable=True)
        c.close()
        t0 = time.time()
        threads = [threading.Thread(target=publisher, args=(port, i, t0)) for i in range(2)]
        threads += [threading.Thread(target=consumer, args=(port, i, t0)) for i in range(4)]
        threads += [threading.Thread(target=hoarder, args=(port, t0)),
                    threading.Thread(target=churn, args=(port,))]
        for t in threads:
            t.daemon = True
            t.start()
        rows = []
        end = t0 + args.minutes * 60
        with open(args.out, "w") as out:
            out.write("seconds,rss_bytes,fds,published,nacked,consumed,churned,blocked\n")
            while time.time() < end:
                time.sleep(min(10, max(0, end - time.time())))
                with lock:
                    c = dict(counts)
                row = (int(time.time() - t0), proc_rss(broker.pid), proc_fds(broker.pid))
                rows.append(row)
                out.write(f"{row[0]},{row[1]},{row[2]},{c['published']},{c['nacked']},"
                          f"{c['consumed']},{c['churned']},{c['blocked']}\n")
                out.flush()
                print(out_line(row, c), flush=True)
        stop.set()
        for t in threads:
            t.join(60)
        drain(port)
        with lock:
            lost = confirmed - received
        # RSS after the first cycle of phases (fast, slow, hoarding) must
        # not outgrow what that cycle reached: 5 minutes of an hour-long
        # soak, the first 4 minutes of a 5-minute one.
        run_s = args.minutes * 60
        settle = 300 if args.minutes >= 25 else max(run_s / 5, min(4 * PHASE_S, run_s * 0.8))
        later = [r for r in rows if r[0] >= settle]
        base = [r for r in rows if r[0] < settle] or rows[:1]
        peak_before = max(r[1] for r in base)
        peak_after = max(r[1] for r in later) if later else peak_before
        fds_first, fds_last = rows[0][2], rows[-1][2]
        print(f"confirmed {len(confirmed)}, lost {len(lost)}, nacked {counts['nacked']}, "
              f"blocked {counts['blocked']} times, churned {counts['churned']} queues")
        print(f"RSS peak before {settle:.0f} s: {peak_before >> 20} MiB, after: {peak_after >> 20} MiB; "
              f"fds first {fds_first}, last {fds_last}")
        ok = not lost and peak_after <= peak_before * 1.1 + (8 << 20) and fds_last <= fds_first + 5
        print("soak: " + ("ok" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(30)


def out_line(row, c):
    return (f"{row[0]:5d}s rss {row[1] >> 20} MiB fds {row[2]} published {c['published']} "
            f"consumed {c['consumed']} churned {c['churned']} blocked {c['blocked']}")


if __name__ == "__main__":
    sys.exit(main())
