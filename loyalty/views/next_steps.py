"""The program core's steps on the home page (partners.next_steps): claim a sale, correct a rejected claim; for
program managers the claims waiting for a decision, for account managers their partners' claims."""

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loyalty.constants import ClaimStatus
from loyalty.models import SalesClaim
from loyalty.selectors.claims import claims_for
from loyalty.selectors.programs import current_program
from partners.constants import MemberStatus, PartnerStatus
from partners.next_steps import BROWSE, EARN, WAITING, NextStep


def claim_steps(*, request, viewer) -> list[NextStep]:
    program = current_program(request)
    if program is None or not program.is_active:
        return []
    if viewer.is_program_manager:
        waiting = SalesClaim.objects.filter(program=program, status=ClaimStatus.SUBMITTED).count()
        if not waiting:
            return []
        return [
            NextStep(
                title=ngettext("Decide on a claim", "Decide on %(count)d claims", waiting) % {"count": waiting},
                text=_("Sales claims of partners wait for your approval."),
                url=reverse("admin:loyalty_salesclaim_changelist")
                + f"?status__exact={ClaimStatus.SUBMITTED}&program__id__exact={program.pk}",
                link=_("Open the claims queue"),
                priority=WAITING,
            )
        ]
    if viewer.is_account_manager:
        waiting = claims_for(viewer).filter(program=program, status=ClaimStatus.SUBMITTED).count()
        return [
            NextStep(
                title=_("My partners' claims"),
                text=ngettext(
                    "%(count)d claim of your partners waits for the program team.",
                    "%(count)d claims of your partners wait for the program team.",
                    waiting,
                )
                % {"count": waiting}
                if waiting
                else _("The sales your partners' people claimed, and what became of them."),
                url=reverse("claim_list"),
                link=_("See their claims"),
                priority=BROWSE,
            )
        ]
    member = viewer.member
    if member is None or member.status != MemberStatus.ACTIVE or member.partner.status != PartnerStatus.ACTIVE:
        return []
    steps = []
    rejected = claims_for(viewer).filter(program=program, member=member, status=ClaimStatus.REJECTED).count()
    if rejected:
        steps.append(
            NextStep(
                title=ngettext("Correct a rejected claim", "Correct %(count)d rejected claims", rejected)
                % {"count": rejected},
                text=_("The program team said what is missing; correct the claim and send it again."),
                url=reverse("claim_list") + f"?status={ClaimStatus.REJECTED}",
                link=_("See what to correct"),
                priority=WAITING,
            )
        )
    steps.append(
        NextStep(
            title=_("Claim a sale"),
            text=_("Sold %(program)s products? Photograph the invoice and earn %(points)s for it.")
            % {"program": program.name, "points": program.currency_name},
            url=reverse("claim_new"),
            link=_("Claim a sale"),
            priority=EARN,
        )
    )
    return steps


def earning_guide_steps(*, request, viewer) -> list[NextStep]:
    """The "How to earn" page, for an active member of an active partner in a running program (no query of its own)."""
    program = current_program(request)
    member = viewer.member
    if program is None or not program.is_active or member is None or member.status != MemberStatus.ACTIVE:
        return []
    if member.partner.status != PartnerStatus.ACTIVE:
        return []
    return [
        NextStep(
            title=_("How to earn"),
            text=_("Everything that pays you now, with examples: sales, training and challenges."),
            url=reverse("how_to_earn"),
            link=_("See what pays me"),
            priority=EARN,
        )
    ]
