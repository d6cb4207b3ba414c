"""The demo program's paid club (issue #13): the top tier (Gold) can also be joined for a year for a fee in points
from the company account, and one partner has joined it, through loyalty.services.clubs as its owner would.

`seed_club_memberships(program)` runs after the rest of the demo (the companies' points are there by then); it is
idempotent (a program with a paid membership is left as it is). The payer is a partner other than the flagship (the
demo logins' company keeps its story: Silver, short of Gold, and sees the "Join Gold" offer on its club page): the
active partner below the top tier whose company account has the most points, at least the fee.
"""

from django.db.models import Exists, OuterRef

from loyalty.models import ClubMembership, PartnerTier, PointsAccount, Program, Tier
from loyalty.services import clubs
from partners import demo as partners_demo
from partners.constants import MemberStatus, PartnerStatus
from partners.models import Member

TOP_TIER_FEE_POINTS = 10_000  # a year of the top tier, paid from the company account


def seed_club_memberships(program: Program, *, today=None) -> ClubMembership | None:
    """Give the program's top tier a yearly fee in points (unless it has a fee already) and one partner a paid year of
    it; returns that membership (None when one was there already, or no partner can pay the fee)."""
    top = Tier.objects.filter(program=program).order_by("-rank").first()
    if top is None:
        return None
    if not top.joinable:
        top.join_fee_points = TOP_TIER_FEE_POINTS
        top.full_clean()
        top.save(update_fields=["join_fee_points"])
    if ClubMembership.objects.filter(program=program).exists():
        return None
    owners = Member.objects.filter(partner=OuterRef("partner"), status=MemberStatus.ACTIVE, role__is_owner=True)
    at_top = PartnerTier.objects.filter(program=program, partner=OuterRef("partner"), tier__rank__gte=top.rank)
    account = (
        PointsAccount.objects.filter(
            program=program,
            member=None,
            partner__status=PartnerStatus.ACTIVE,
            available__gte=top.join_fee_points or 0,  # a fee in money (set by hand before) is invoiced
        )
        .exclude(partner__legal_id=partners_demo.legal_id(0, 0))  # the flagship
        .filter(Exists(owners), ~Exists(at_top))
        .select_related("partner")
        .order_by("-available", "pk")
        .first()
    )
    if account is None:
        return None
    owner = (
        Member.objects.select_related("user", "role")
        .filter(partner=account.partner, status=MemberStatus.ACTIVE, role__is_owner=True)
        .order_by("pk")
        .first()
    )
    return clubs.club_join(
        program=program, partner=account.partner, tier=top, member=owner, renews_until=None, today=today
    )
