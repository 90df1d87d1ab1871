"""The retry-with-backoff example delivers each retry after its delay."""
import re
import subprocess
import sys

import pika

from test_examples import EXAMPLES


def clean(url):
    c = pika.BlockingConnection(pika.URLParameters(url))
    ch = c.channel()
    for q in ("tasks", "tasks.retry", "tasks.dead"):
        ch.queue_delete(q)
    ch.exchange_delete("tasks.dead")
    c.close()


def test_retries_follow_exponential_backoff(url):
    clean(url)
    try:
        r = subprocess.run(
            [sys.executable, str(EXAMPLES / "retry_with_backoff.py"), "--url", url,
             "--tasks", "1", "--fail-times", "3", "--base-ms", "150"],
            capture_output=True, text=True, timeout=60, cwd=EXAMPLES,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        times = [int(t) for t in re.findall(r"at (\d+) ms", r.stdout)]
        assert len(times) == 4, r.stdout
        gaps = [b - a for a, b in zip(times, times[1:])]
        for gap, delay in zip(gaps, (150, 300, 600)):
            assert delay - 20 <= gap <= delay + 500, (gaps, r.stdout)
        assert "succeeded" in r.stdout.splitlines()[-1]
    finally:
        clean(url)


def test_exhausted_retries_land_in_the_dead_letter_queue(url):
    clean(url)
    try:
        r = subprocess.run(
            [sys.executable, str(EXAMPLES / "retry_with_backoff.py"), "--url", url,
             "--tasks", "2", "--fail-times", "9", "--base-ms", "20", "--max-attempts", "3"],
            capture_output=True, text=True, timeout=60, cwd=EXAMPLES,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        c = pika.BlockingConnection(pika.URLParameters(url))
        ch = c.channel()
        assert ch.queue_declare("tasks.dead", passive=True).method.message_count == 2
        m = ch.basic_get("tasks.dead", auto_ack=True)
        (death,) = [d for d in m[1].headers["x-death"] if d["queue"] == "tasks"]
        assert death["reason"] == "rejected"
        c.close()
    finally:
        clean(url)
