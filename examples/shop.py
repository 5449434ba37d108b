"""Crons and events: a heartbeat every 5 seconds and an order event with two handlers.

Run a worker:    upnext-gevent examples.shop:worker
Place an order:  python -m examples.place_order
"""

import upnext

worker = upnext.Worker("shop", concurrency=20)


@worker.cron("*/5 * * * * *")  # six fields: seconds first
def heartbeat() -> str:
    upnext.get_current_context().log.info("shop_alive")
    return "ok"


@worker.cron("0 3 * * 1", missed_run_policy=upnext.MissedRunPolicy.LATEST_ONLY, timeout=600)
def weekly_report() -> None:
    upnext.get_current_context().log.info("weekly_report")


order_placed = worker.event("order.placed")


@order_placed.on
def send_confirmation(order_id: str, **kwargs) -> str:
    return f"confirmation sent for {order_id}"


@order_placed.on(retries=2, timeout=30)
def reserve_stock(order_id: str, items: int = 1, **kwargs) -> dict:
    return {"order_id": order_id, "reserved": items}
