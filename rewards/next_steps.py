"""Rewards' step on the home page (partners.next_steps): redeem, when the person can afford something now."""

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loyalty.selectors.programs import current_program
from partners.constants import MemberStatus
from partners.next_steps import SPEND, NextStep
from rewards import selectors
from rewards.constants import PaidBy


def redeem_steps(*, request, viewer) -> list[NextStep]:
    member = viewer.member
    program = current_program(request)
    if member is None or member.status != MemberStatus.ACTIVE or program is None:
        return []
    balances = selectors.balances(viewer=viewer, program=program)
    affordable = selectors.catalogue(
        member=member,
        program=program,
        max_points=balances[PaidBy.MEMBER],
        max_company_points=balances[PaidBy.COMPANY],
    )
    # Only what can be had now: units left, or free codes for a code reward (catalogue() counts them).
    units_left = Q(stock__isnull=True) | Q(stock__gt=0)
    in_stock = Q(uses_codes=False) & units_left | Q(uses_codes=True, free_codes__gt=0)
    affordable = affordable.filter(in_stock).count()
    if not affordable:
        return []
    return [
        NextStep(
            title=_("Redeem a reward"),
            text=ngettext("You can afford %(count)d reward now.", "You can afford %(count)d rewards now.", affordable)
            % {"count": affordable},
            url=reverse("catalogue") + "?affordable=1",
            link=_("See what I can afford"),
            priority=SPEND,
        )
    ]
