"""Every lock communications takes."""

from communications.models import Delivery


def delivery_lock(delivery_id: int) -> Delivery | None:
    """The delivery row, locked until the transaction ends (one sender at a time); None if it is gone."""
    return (
        Delivery.objects.select_for_update(of=("self",)).select_related("member__user").filter(pk=delivery_id).first()
    )
