"""Reads of paid club membership: the tiers a partner can join for a yearly fee, a partner's paid years, the one
running today and the last day paid; and, for the tier evaluation, the tier each partner holds by paying.

Terms of a partner follow each other without a gap (a renewal starts the day after the term it renews; a lapsed
membership is joined again from the day it is paid), and at most one is ahead of today. So the last day paid is the
latest `ends_on`, and a partner is a paying member on a day when a term covers it.

What a person sees is scoped by partners/visibility.py: a partner's people see their own partner's memberships,
staff those of the partners they may see.
"""

from dataclasses import dataclass
from datetime import date

from django.db.models import QuerySet

from loyalty.models import ClubMembership, PartnerTier, PointsAccount, Program, Tier
from partners.models import Partner
from partners.visibility import partners_for, viewer_for

HISTORY_SHOWN = 20  # paid years shown on the club page (one a year: decades of history)


@dataclass(frozen=True)
class PaidTier:
    """The tier a partner holds by a paid term running on the day asked about, and the last day paid (the end of the
    renewal when it renewed ahead)."""

    tier_id: int
    paid_until: date


def paid_tiers(*, program: Program, today: date, partner_ids: list[int] | None = None) -> dict[int, PaidTier]:
    """{partner id: PaidTier} of the partners (all, or `partner_ids`) with a paid term running on `today`; one
    query whatever the number of partners."""
    rows = ClubMembership.objects.filter(program=program, ends_on__gte=today)
    if partner_ids is not None:
        rows = rows.filter(partner_id__in=partner_ids)
    terms: dict[int, list[tuple[int, date, date]]] = {}
    for partner_id, tier_id, starts_on, ends_on in rows.order_by("partner_id", "starts_on").values_list(
        "partner_id", "tier_id", "starts_on", "ends_on"
    ):
        terms.setdefault(partner_id, []).append((tier_id, starts_on, ends_on))
    paid = {}
    for partner_id, rows_of_partner in terms.items():
        running = next((row for row in rows_of_partner if row[1] <= today), None)
        if running is None:
            continue  # only a term ahead (never made by the service: a renewal follows a running term)
        tier_id = running[0]
        last = max(ends_on for term_tier, _starts, ends_on in rows_of_partner if term_tier == tier_id)
        paid[partner_id] = PaidTier(tier_id=tier_id, paid_until=last)
    return paid


def latest_membership(*, program: Program, partner: Partner) -> ClubMembership | None:
    """The partner's latest paid term (running, ahead, or ended), with its tier; None if it never paid."""
    return (
        ClubMembership.objects.select_related("tier")
        .filter(program=program, partner=partner)
        .order_by("-ends_on", "-pk")
        .first()
    )


def held_tier(*, program: Program, partner: Partner) -> Tier | None:
    """The tier the partner holds now (by qualifying or paying), None before its first evaluation."""
    row = PartnerTier.objects.select_related("tier").filter(program=program, partner=partner).first()
    return row.tier if row is not None else None


def company_available(*, program: Program, partner: Partner) -> int:
    """The points available on the partner's company account (0 before it has one)."""
    account = PointsAccount.objects.filter(program=program, partner=partner, member=None).first()
    return account.available if account is not None else 0


def joinable_tier_get(*, program: Program, tier_id: int) -> Tier:
    """A tier of the program partners can join for a fee; raises Tier.DoesNotExist otherwise."""
    tier = Tier.objects.get(program=program, pk=tier_id)
    if not tier.joinable:
        raise Tier.DoesNotExist
    return tier


def joinable_tiers(*, program: Program) -> list[Tier]:
    """The program's tiers partners can join for a yearly fee, lowest rank first."""
    tiers = Tier.objects.filter(program=program).order_by("rank")
    return [tier for tier in tiers if tier.joinable]


def membership_list(*, viewer, program: Program, partner: Partner | None = None) -> QuerySet[ClubMembership]:
    """The paid terms the viewer may see (of `partner` when given), latest first, with their tier and who paid."""
    rows = ClubMembership.objects.filter(program=program, partner__in=partners_for(viewer))
    if partner is not None:
        rows = rows.filter(partner=partner)
    return rows.select_related("tier", "bought_by__user", "recorded_by").order_by("-ends_on", "-pk")


@dataclass(frozen=True)
class ClubOverview:
    """What the club page shows a partner's person: the tier the company holds (None before its first evaluation),
    the joinable tiers with their fees, the paid years (latest first), the latest term, the one running today, the
    last day paid, and the company account's available points (None when the viewer may not see it)."""

    partner: Partner
    held: PartnerTier | None
    tiers: list[Tier]
    history: list[ClubMembership]
    latest: ClubMembership | None
    current: ClubMembership | None
    paid_until: date | None
    company_available: int | None

    @property
    def held_by_payment(self) -> bool:
        """The tier the company holds is the one it pays for (it may also qualify for it)."""
        return self.held is not None and self.current is not None and self.held.tier_id == self.current.tier_id

    @property
    def renewed_ahead(self) -> ClubMembership | None:
        """The paid year that starts after today (a renewal made early), if any."""
        return (
            self.latest
            if self.latest is not None and self.current is not None and self.latest != self.current
            else None
        )


def club_overview(*, viewer, program: Program, today: date) -> ClubOverview | None:
    """The club page of the viewer's partner; None for someone who is not a partner's person. Four queries: the
    tiers, the paid years, the tier held and (for who sees the company's points) the company account."""
    viewer = viewer_for(viewer)
    if viewer.member is None or program is None:
        return None
    partner = viewer.member.partner
    tiers = joinable_tiers(program=program)
    history = list(membership_list(viewer=viewer, program=program, partner=partner)[:HISTORY_SHOWN])
    latest = history[0] if history else None
    current = next((term for term in history if term.starts_on <= today <= term.ends_on), None)
    held = PartnerTier.objects.select_related("tier").filter(program=program, partner=partner).first()
    available = company_available(program=program, partner=partner) if viewer.sees_company else None
    return ClubOverview(
        partner=partner,
        held=held,
        tiers=tiers,
        history=history,
        latest=latest,
        current=current,
        paid_until=latest.ends_on if current is not None else None,
        company_available=available,
    )
