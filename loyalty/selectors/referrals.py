"""Reads of referrals that users see, scoped through partners.visibility: a member sees their own referrals, a
partner owner their team's, an account manager their portfolio's, a program manager every referral. A duplicate
shows the day its prospect was first referred, never by whom."""

from django.db.models import F, QuerySet

from loyalty.models import Program, Referral
from partners.visibility import members_for, viewer_for


def referrals_for(viewer) -> QuerySet[Referral]:
    """Every referral the viewer (a Viewer or a user) may see (no joins; add them where the rows are shown)."""
    return Referral.objects.filter(member__in=members_for(viewer_for(viewer)))


def referral_list(*, viewer, program: Program | None, status: str = "") -> QuerySet[Referral]:
    """The referrals of one program a list page shows, newest first, each with its referrer and, for a duplicate,
    `first_referred_at` (when its prospect was first referred)."""
    if program is None:
        return Referral.objects.none()
    referrals = (
        referrals_for(viewer)
        .filter(program=program)
        .select_related("member__user")
        .annotate(first_referred_at=F("duplicate_of__created_at"))
        .order_by("-created_at", "-id")
    )
    return referrals.filter(status=status) if status else referrals
