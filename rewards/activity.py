"""What members redeemed, for communications' campaign segments and reach (registered in apps.py through
communications.hooks): the ids of the members as a QuerySet, used there as a subquery."""

from datetime import datetime

from django.db.models import QuerySet

from rewards.models import RedemptionOrder


def members_who_redeemed(*, program_id: int, since: datetime | None, until: datetime | None) -> QuerySet:
    """Members who placed a reward order in the window (whatever became of it)."""
    orders = RedemptionOrder.objects.filter(program_id=program_id)
    if since is not None:
        orders = orders.filter(created_at__gte=since)
    if until is not None:
        orders = orders.filter(created_at__lt=until)
    return orders.values("member_id")
