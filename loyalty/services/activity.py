"""What members did in the program, for communications' campaign segments and reach (registered in apps.py through
communications.hooks): each function returns the ids of the members as a QuerySet, used there as a subquery."""

from datetime import datetime

from django.db.models import QuerySet

from loyalty.constants import EntryKind
from loyalty.models import PartnerTier, PointsEntry, SalesClaim


def _within(queryset: QuerySet, since: datetime | None, until: datetime | None) -> QuerySet:
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset


def members_who_earned(*, program_id: int, since: datetime | None, until: datetime | None) -> QuerySet:
    """Members whose own account earned points (a claim, a sell-out import, a bonus) in the window."""
    entries = PointsEntry.objects.filter(
        kind=EntryKind.EARN, account__program_id=program_id, account__member__isnull=False
    )
    return _within(entries, since, until).values("account__member_id")


def members_who_claimed(*, program_id: int, since: datetime | None, until: datetime | None) -> QuerySet:
    """Members who submitted a sales claim in the window."""
    return _within(SalesClaim.objects.filter(program_id=program_id), since, until).values("member_id")


def partners_in_tiers(*, tier_ids: list[int]) -> QuerySet:
    """Partners whose current tier is one of `tier_ids`."""
    return PartnerTier.objects.filter(tier_id__in=tier_ids).values("partner_id")
