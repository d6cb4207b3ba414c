"""Rewards' steps on the home page (partners.next_steps): redeem, when the person can afford something now; for
program managers, the redemption orders waiting for a decision."""

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loyalty.selectors.programs import current_program
from partners.constants import MemberStatus
from partners.next_steps import SPEND, WAITING, NextStep
from rewards import selectors
from rewards.constants import OrderStatus, PaidBy


def decide_steps(*, request, viewer) -> list[NextStep]:
    if not viewer.is_program_manager or (program := current_program(request)) is None:
        return []
    waiting = selectors.orders_for(viewer).filter(program=program, status=OrderStatus.PLACED).count()
    if not waiting:
        return []
    # The list shows exactly the orders counted: this program's, waiting for approval.
    filters = f"?status__exact={OrderStatus.PLACED}&program__id__exact={program.pk}"
    return [
        NextStep(
            title=ngettext("Decide on an order", "Decide on %(count)d orders", waiting) % {"count": waiting},
            text=_("Redemption orders of members wait for your approval."),
            url=reverse("admin:rewards_redemptionorder_changelist") + filters,
            link=_("Open the orders queue"),
            priority=WAITING,
        )
    ]


def redeem_steps(*, request, viewer) -> list[NextStep]:
    member = viewer.member
    program = current_program(request)
    if member is None or member.status != MemberStatus.ACTIVE or program is None:
        return []
    balances = selectors.balances(viewer=viewer, program=program)
    # The very rewards the catalogue's "Only what I can afford" lists (affordable and to be had now).
    affordable = selectors.catalogue(
        member=member,
        program=program,
        max_points=balances[PaidBy.MEMBER],
        max_company_points=balances[PaidBy.COMPANY],
    ).count()
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
