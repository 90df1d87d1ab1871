"""Inventory service: takes ordered items out of stock."""
import sys

from common import args, run_consumer, say


def main():
    a = args("Update stock counts", exit_after=(int, 0, "stop after this many messages"))
    stock = {}

    def handle(channel, event):
        if event.get("event_type") != "ORDER_CREATED":
            return
        sku = event["product_id"]
        stock[sku] = stock.get(sku, 100) - event["quantity"]
        say(f"inventory: {sku} now {stock[sku]} ({event['order_id']})")

    return run_consumer("inventory", "inventory_updates", 10, handle, a.exit_after, a.url)


if __name__ == "__main__":
    sys.exit(main())
