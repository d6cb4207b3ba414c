"""Row locks for partners, taken only here, in primary-key order."""

from partners.models import Member, Partner


def partner_lock(pk: int) -> Partner:
    return Partner.objects.select_for_update().get(pk=pk)


def member_lock(pk: int) -> Member:
    return Member.objects.select_for_update(of=("self",)).select_related("partner", "role", "user").get(pk=pk)
