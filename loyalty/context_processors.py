from django.utils.functional import SimpleLazyObject

from partners.visibility import current_membership

from .models import PointsAccount
from .selectors import current_program


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

    return {"program": SimpleLazyObject(lambda: current_program(request)), "my_balance": SimpleLazyObject(balance)}
