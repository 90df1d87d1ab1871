"""Payment service: charges each new order, then publishes PAYMENT_COMPLETED.

Consumes `payment_processing` one message at a time (prefetch 1). While it is
down, orders wait in its durable queue; restarted, it drains the backlog.
"""
import sys
import time

from common import args, publish_event, run_consumer, say


def main():
    a = args(
        "Charge orders",
        work_ms=(int, 3000, "simulated payment time per order"),
        exit_after=(int, 0, "stop after this many messages (0: run forever)"),
    )

    def handle(channel, event):
        # Everything on the fanout reaches us; only new orders are ours to charge.
        if event.get("event_type") != "ORDER_CREATED":
            return
        time.sleep(a.work_ms / 1000)
        publish_event(channel, {
            "order_id": event["order_id"],
            "event_type": "PAYMENT_COMPLETED",
            "amount": 99.99,
        })
        say(f"payment: charged {event['order_id']}")

    return run_consumer("payment", "payment_processing", 1, handle, a.exit_after, a.url)


if __name__ == "__main__":
    sys.exit(main())
