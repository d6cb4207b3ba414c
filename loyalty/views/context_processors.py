from django.utils.functional import SimpleLazyObject

from loyalty.models import PointsAccount
from loyalty.selectors.ledger import current_program, expiring_soon
from loyalty.services.tiers import tier_progress
from partners.visibility import current_membership


def points(request):
    """The program and the member's own balance for the navigation; queried only if a page shows them."""

    def balance():
        member = current_membership(getattr(request, "user", None))
        program = current_program(request)
        if member is None or program is None:
            return None
        return PointsAccount.objects.filter(program=program, member=member).first() or PointsAccount(
            program=program, member=member
        )

    def expiring():
        account = my_balance
        return expiring_soon(account=account) if account and account.pk else None

    def tier():
        # The member's partner's tier progress; None without a membership, a program or tiers in it.
        member = current_membership(getattr(request, "user", None))
        program = current_program(request)
        if member is None or program is None:
            return None
        return tier_progress(program=program, partner=member.partner)

    my_balance = SimpleLazyObject(balance)
    return {
        "program": SimpleLazyObject(lambda: current_program(request)),
        "my_balance": my_balance,
        "my_expiring": SimpleLazyObject(expiring),
        "my_tier": SimpleLazyObject(tier),
    }
