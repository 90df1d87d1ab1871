"""Retries with exponential backoff, built from TTL and dead-lettering.

    tasks          the work queue; its dead-letter exchange is tasks.dead
    tasks.retry    a queue nobody consumes: a failed task waits here with a
                   per-message TTL (base * 2^attempt), then is dead-lettered
                   back to the default exchange with routing key "tasks"
    tasks.dead     where a task lands after --max-attempts failures

The worker below fails each task --fail-times times before it succeeds, and
prints when each attempt happened so the backoff can be seen (and tested).

    python examples/retry_with_backoff.py --tasks 1 --fail-times 3 --base-ms 200
"""
import json
import sys
import time

import pika

from common import args, connect, say

WORK, RETRY, DEAD = "tasks", "tasks.retry", "tasks.dead"


def declare(ch):
    ch.exchange_declare(DEAD, "fanout", durable=True)
    ch.queue_declare(DEAD, durable=True)
    ch.queue_bind(DEAD, DEAD)
    ch.queue_declare(WORK, durable=True, arguments={"x-dead-letter-exchange": DEAD})
    # Expired retries go back to the work queue through the default exchange.
    ch.queue_declare(RETRY, durable=True, arguments={
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": WORK,
    })


def main():
    a = args(
        "Retry failing tasks with exponential backoff",
        tasks=(int, 1, "tasks to submit"),
        fail_times=(int, 3, "failures before a task succeeds"),
        base_ms=(int, 1000, "delay before the first retry; doubles each time"),
        max_attempts=(int, 5, "attempts before a task is dead-lettered"),
    )
    conn = connect(a.url)
    ch = conn.channel()
    declare(ch)
    ch.confirm_delivery()
    started = time.monotonic()
    for i in range(a.tasks):
        ch.basic_publish("", WORK, json.dumps({"task": i}),
                         pika.BasicProperties(delivery_mode=2, headers={"x-attempt": 0}))
    done = set()

    def on_task(c, method, props, body):
        task = json.loads(body)["task"]
        attempt = (props.headers or {}).get("x-attempt", 0)
        at_ms = int((time.monotonic() - started) * 1000)
        if attempt < a.fail_times:
            if attempt + 1 >= a.max_attempts:
                say(f"retry: task {task} attempt {attempt} failed at {at_ms} ms; giving up")
                c.basic_reject(method.delivery_tag, requeue=False)  # to tasks.dead
                done.add(task)
            else:
                delay = a.base_ms * 2 ** attempt
                say(f"retry: task {task} attempt {attempt} failed at {at_ms} ms; retrying in {delay} ms")
                c.basic_publish("", RETRY, body, pika.BasicProperties(
                    delivery_mode=2, expiration=str(delay), headers={"x-attempt": attempt + 1}))
                c.basic_ack(method.delivery_tag)
        else:
            say(f"retry: task {task} attempt {attempt} succeeded at {at_ms} ms")
            c.basic_ack(method.delivery_tag)
            done.add(task)
        if len(done) == a.tasks:
            c.stop_consuming()

    ch.basic_qos(prefetch_count=10)
    ch.basic_consume(WORK, on_task)
    ch.start_consuming()
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
