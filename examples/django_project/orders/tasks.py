"""Jobs of the example Django project. Models are imported inside the jobs, so this module
can be imported before django.setup() (the worker's post_fork hook runs it)."""

import os

import upnext

worker = upnext.Worker("django-example", concurrency=20)


@worker.task(retries=2, retry_delay=0.5)
def process_order(order_id: int) -> dict:
    from orders.models import Order

    order = Order.objects.get(id=order_id)  # the row exists: it was submitted on commit
    order.status = "processed"
    order.processed_by = f"worker pid {os.getpid()}"
    order.save()
    return {"order_id": order.id, "item": order.item}
