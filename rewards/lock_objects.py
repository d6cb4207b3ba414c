"""Row locks for rewards, taken only here."""

from rewards.models import RedemptionOrder


def order_lock(pk: int) -> RedemptionOrder:
    return (
        RedemptionOrder.objects.select_for_update(of=("self",))
        .select_related("program", "member__user", "member__partner", "account")
        .get(pk=pk)
    )
