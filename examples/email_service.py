"""Email service: confirms orders and payments by mail (simulated).

Consumes `email_notifications` ten at a time (prefetch 10).
"""
import sys

from common import args, run_consumer, say


def main():
    a = args("Send order and payment emails", exit_after=(int, 0, "stop after this many messages"))

    def handle(channel, event):
        kind = event.get("event_type")
        if kind == "ORDER_CREATED":
            say(f"email: order confirmation for {event['order_id']} to {event['customer_email']}")
        elif kind == "PAYMENT_COMPLETED":
            say(f"email: payment receipt for {event['order_id']}")

    return run_consumer("email", "email_notifications", 10, handle, a.exit_after, a.url)


if __name__ == "__main__":
    sys.exit(main())
