"""Shipping service: creates a label once an order is paid."""
import sys

from common import args, run_consumer, say


def main():
    a = args("Create shipping labels", exit_after=(int, 0, "stop after this many messages"))

    def handle(channel, event):
        if event.get("event_type") == "PAYMENT_COMPLETED":
            say(f"shipping: label for {event['order_id']}")

    return run_consumer("shipping", "shipping_labels", 5, handle, a.exit_after, a.url)


if __name__ == "__main__":
    sys.exit(main())
