"""Order service: publishes ORDER_CREATED and listens for PAYMENT_COMPLETED.

    python examples/order_service.py --orders 3 --wait

creates three orders (persistent messages, publisher confirms: the broker has
them once this returns) and, with --wait, stays until every one is paid.
"""
import json
import sys
import time
import uuid
from datetime import datetime, timezone

from common import EXCHANGE, args, connect, declare_service_queue, publish_event, say


def main():
    a = args(
        "Create orders and track their payment",
        orders=(int, 1, "how many orders to create"),
        wait=(int, 0, "1: wait until every created order is paid"),
        timeout=(float, 120.0, "seconds to wait for payments"),
    )
    connection = connect(a.url)
    channel = connection.channel()
    # Listen for payment updates on our own durable queue.
    declare_service_queue(channel, "order_updates")
    channel.confirm_delivery()

    run = uuid.uuid4().hex[:8]
    pending = set()
    for i in range(a.orders):
        order_id = f"order_{run}_{i}"
        publish_event(channel, {
            "order_id": order_id,
            "customer_email": f"customer{i}@example.com",
            "product_id": f"sku-{i % 5}",
            "quantity": 1 + i % 3,
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "event_type": "ORDER_CREATED",
        })
        pending.add(order_id)
        say(f"order: created {order_id}")
    if not a.wait:
        connection.close()
        return 0

    deadline = time.monotonic() + a.timeout

    def on_update(ch, method, properties, body):
        event = json.loads(body)
        if event.get("event_type") == "PAYMENT_COMPLETED" and event.get("order_id") in pending:
            pending.discard(event["order_id"])
            say(f"order: {event['order_id']} paid {event['amount']}")
        ch.basic_ack(delivery_tag=method.delivery_tag)
        if not pending:
            ch.stop_consuming()

    channel.basic_consume(queue="order_updates", on_message_callback=on_update)
    while pending and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.5)
    channel.cancel()
    connection.close()
    if pending:
        say(f"order: {len(pending)} orders still unpaid")
        return 1
    say("order: all orders paid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
