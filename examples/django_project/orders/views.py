from django.db import transaction
from django.http import JsonResponse

from orders.models import Order
from orders.tasks import process_order


def create_order(request):
    """Create the order and its job in one transaction: the job is enqueued only on commit."""
    try:
        with transaction.atomic():
            order = Order.objects.create(item=request.POST.get("item", "book"))
            job = process_order.submit_on_commit(order.id)  # its id is known now; enqueued on commit
            if request.POST.get("fail"):
                raise ValueError("payment refused")
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"order_id": order.id, "job_id": job.job_id}, status=201)


def order_detail(request, order_id: int):
    order = Order.objects.get(id=order_id)
    return JsonResponse({"order_id": order.id, "status": order.status, "processed_by": order.processed_by})
