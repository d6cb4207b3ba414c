from django.utils.functional import SimpleLazyObject

from loyalty.constants import ClaimStatus, EntryKind, EntrySource, TierMetric
from loyalty.models import PointsAccount
from loyalty.selectors.ledger import expiring_soon
from loyalty.selectors.programs import current_program
from loyalty.services.tiers import tier_progress
from partners.visibility import viewer_for

# The colour of each claim status's badge (templates/loyalty/claims/_status_badge.html). Every status has one.
CLAIM_STATUS_BADGES = {
    ClaimStatus.SUBMITTED: "text-bg-warning",
    ClaimStatus.APPROVED: "text-bg-success",
    ClaimStatus.REJECTED: "text-bg-danger",
    ClaimStatus.WITHDRAWN: "text-bg-secondary",
}
# What templates compare with (`claim.status == ClaimStatus.REJECTED`, never a string) and look up.
TEMPLATE_CONSTANTS = {
    "ClaimStatus": ClaimStatus,
    "EntryKind": EntryKind,
    "EntrySource": EntrySource,
    "TierMetric": TierMetric,
    "CLAIM_STATUS_BADGES": CLAIM_STATUS_BADGES,
}


def points(request):
    """The program and the member's own balance for the navigation; queried only if a page shows them. Also the
    program core's constants the templates compare with."""

    def member():
        return viewer_for(getattr(request, "user", None)).member

    def balance():
        me, program = member(), current_program(request)
        if me is None or program is None:
            return None
        return PointsAccount.objects.filter(program=program, member=me).first() or PointsAccount(
            program=program, member=me
        )

    def expiring():
        account = my_balance
        return expiring_soon(account=account) if account and account.pk else None

    def tier():
        # The member's partner's tier progress; None without a membership, a program or tiers in it.
        me, program = member(), current_program(request)
        if me is None or program is None:
            return None
        return tier_progress(program=program, partner=me.partner)

    my_balance = SimpleLazyObject(balance)
    return {
        "program": SimpleLazyObject(lambda: current_program(request)),
        "my_balance": my_balance,
        "my_expiring": SimpleLazyObject(expiring),
        "my_tier": SimpleLazyObject(tier),
        **TEMPLATE_CONSTANTS,
    }
