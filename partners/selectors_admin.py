"""Reads for the back office (Django admin), which only program managers open.

Everything here is a program-wide number, so there is no viewer to scope by: the admin site itself
admits only program managers (see partners/admin.py).
"""

from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from partners.constants import MemberStatus, PartnerStatus
from partners.models import Invitation, Member, Partner, Role


@dataclass(frozen=True)
class StatusCount:
    value: str
    label: str
    count: int


@dataclass(frozen=True)
class RoleCount:
    role_id: int
    name: str
    count: int


@dataclass(frozen=True)
class ProgramOverview:
    partners_by_status: list[StatusCount]
    partners_total: int
    partners_without_account_manager: int
    members_by_status: list[StatusCount]
    members_total: int
    active_members_by_role: list[RoleCount]
    pending_approvals: int
    open_invitations: int
    expired_invitations: int


# Partners that still need looking after; a closed partner needs no account manager.
OPEN_PARTNER_STATUSES = (PartnerStatus.PROSPECT, PartnerStatus.ACTIVE, PartnerStatus.SUSPENDED)


def program_overview() -> ProgramOverview:
    """What the program looks like today, in four queries whatever its size."""
    partner_numbers = Partner.objects.aggregate(
        **{status: Count("pk", filter=Q(status=status)) for status in PartnerStatus.values},
        without_account_manager=Count("pk", filter=Q(account_manager__isnull=True, status__in=OPEN_PARTNER_STATUSES)),
    )
    member_numbers = Member.objects.aggregate(
        **{status: Count("pk", filter=Q(status=status)) for status in MemberStatus.values}
    )
    roles = Role.objects.annotate(active=Count("members", filter=Q(members__status=MemberStatus.ACTIVE))).order_by(
        "sort_order", "name"
    )
    now = timezone.now()
    invitation_numbers = Invitation.objects.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, member__status=MemberStatus.INVITED
    ).aggregate(
        open=Count("pk", filter=Q(expires_at__gt=now)),
        expired=Count("pk", filter=Q(expires_at__lte=now)),
    )
    partners_by_status = [StatusCount(s.value, s.label, partner_numbers[s.value]) for s in PartnerStatus]
    members_by_status = [StatusCount(s.value, s.label, member_numbers[s.value]) for s in MemberStatus]
    return ProgramOverview(
        partners_by_status=partners_by_status,
        partners_total=sum(row.count for row in partners_by_status),
        partners_without_account_manager=partner_numbers["without_account_manager"],
        members_by_status=members_by_status,
        members_total=sum(row.count for row in members_by_status),
        active_members_by_role=[RoleCount(role.pk, role.name, role.active) for role in roles],
        pending_approvals=member_numbers[MemberStatus.PENDING_APPROVAL],
        open_invitations=invitation_numbers["open"],
        expired_invitations=invitation_numbers["expired"],
    )
