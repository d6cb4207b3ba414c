"""Row locks for partners, taken only here, in primary-key order."""

from partners.models import Invitation, Member, Partner


def partner_lock(pk: int) -> Partner:
    return Partner.objects.select_for_update().get(pk=pk)


def member_lock(pk: int) -> Member:
    return Member.objects.select_for_update(of=("self",)).select_related("partner", "role", "user").get(pk=pk)


def invitation_lock(pk: int) -> Invitation:
    """One invitation, locked: two people using the same link at once take turns."""
    return Invitation.objects.select_for_update().get(pk=pk)
