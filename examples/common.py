"""Shared wiring for the order-service example (from the project's notes).

Every service owns one durable queue bound to the durable fanout exchange
`orders`; it consumes at its own pace with a prefetch, acks what it handled and
nacks what failed.
"""
import argparse
import json
import os
import sys

import pika

EXCHANGE = "orders"


def args(description, **extra):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/"))
    for name, (kind, default, help_) in extra.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default, help=help_)
    return p.parse_args()


def connect(url):
    return pika.BlockingConnection(pika.URLParameters(url))


def declare_service_queue(channel, queue):
    """The exchange and this service's durable queue, bound to it."""
    channel.exchange_declare(exchange=EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_bind(exchange=EXCHANGE, queue=queue)


def publish_event(channel, event):
    channel.basic_publish(
        exchange=EXCHANGE,
        routing_key="",
        body=json.dumps(event),
        properties=pika.BasicProperties(delivery_mode=2, content_type="application/json"),
    )


def say(line):
    print(line, flush=True)


class Stopper:
    """Stop consuming after N handled messages (0 = never); for tests and demos."""

    def __init__(self, channel, limit):
        self.channel, self.limit, self.count = channel, limit, 0

    def handled(self):
        self.count += 1
        if self.limit and self.count >= self.limit:
            self.channel.stop_consuming()


def run_consumer(name, queue, prefetch, handle, exit_after=0, url=None):
    """Consume `queue` with `handle(channel, event)`; ack on success, nack on failure."""
    connection = connect(url)
    channel = connection.channel()
    declare_service_queue(channel, queue)
    channel.basic_qos(prefetch_count=prefetch)
    stopper = Stopper(channel, exit_after)

    def on_message(ch, method, properties, body):
        try:
            event = json.loads(body)
            handle(ch, event)
            ch.basic_ack(delivery_tag=method.delivery_tag)
        except Exception as e:  # the notes: reject what failed, do not requeue forever
            say(f"{name}: failed: {e!r}")
            ch.basic_nack(delivery_tag=method.delivery_tag, requeue=False)
        stopper.handled()

    channel.basic_consume(queue=queue, on_message_callback=on_message)
    say(f"{name}: waiting for messages on {queue}")
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        pass
    finally:
        if connection.is_open:
            connection.close()
    return 0
