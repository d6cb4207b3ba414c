"""The one place that says who may see what. Every view, API view, export and selector goes through it.

- a program manager sees everything;
- an account manager sees the partners assigned to them and those partners' people;
- a partner owner (an active member in an owner role) sees their partner and its people;
- any other member sees their own partner and their own memberships only;
- anyone else sees nothing.
"""

from django.db.models import QuerySet

from partners.constants import CURRENT_MEMBER_STATUSES, MemberStatus
from partners.models import Member, Partner


class Viewer:
    ANONYMOUS = "anonymous"
    PROGRAM_MANAGER = "program_manager"
    ACCOUNT_MANAGER = "account_manager"
    OWNER = "owner"
    MEMBER = "member"
    NONE = "none"  # signed in, but neither staff nor a current member


def current_membership(user) -> Member | None:
    """The user's current (pending or active) membership, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    if not hasattr(user, "_current_membership"):
        user._current_membership = (
            Member.objects.select_related("partner", "partner__region", "role")
            .filter(user=user, status__in=CURRENT_MEMBER_STATUSES)
            .first()
        )
    return user._current_membership


def viewer_kind(user) -> str:
    if not getattr(user, "is_authenticated", False):
        return Viewer.ANONYMOUS
    if user.is_program_manager:
        return Viewer.PROGRAM_MANAGER
    if user.is_account_manager:
        return Viewer.ACCOUNT_MANAGER
    member = current_membership(user)
    if member is None:
        return Viewer.NONE
    if member.status == MemberStatus.ACTIVE and member.role.is_owner:
        return Viewer.OWNER
    return Viewer.MEMBER


def partners_for(user) -> QuerySet[Partner]:
    kind = viewer_kind(user)
    if kind == Viewer.PROGRAM_MANAGER:
        return Partner.objects.all()
    if kind == Viewer.ACCOUNT_MANAGER:
        return Partner.objects.filter(account_manager=user)
    if kind in (Viewer.OWNER, Viewer.MEMBER):
        return Partner.objects.filter(pk=current_membership(user).partner_id)
    return Partner.objects.none()


def members_for(user) -> QuerySet[Member]:
    kind = viewer_kind(user)
    if kind == Viewer.PROGRAM_MANAGER:
        return Member.objects.all()
    if kind == Viewer.ACCOUNT_MANAGER:
        return Member.objects.filter(partner__account_manager=user)
    if kind == Viewer.OWNER:
        return Member.objects.filter(partner_id=current_membership(user).partner_id)
    if kind == Viewer.MEMBER:
        return Member.objects.filter(user=user)
    return Member.objects.none()


def company_partners_for(user) -> QuerySet[Partner]:
    """Partners whose company-level data (the company points account, company orders) the user may see.
    Staff members see only their own things, never the company's."""
    if viewer_kind(user) == Viewer.MEMBER:
        return Partner.objects.none()
    return partners_for(user)


def can_manage_team(user, partner: Partner) -> bool:
    """Invite, approve and deactivate a partner's people: its active owners and program managers."""
    kind = viewer_kind(user)
    if kind == Viewer.PROGRAM_MANAGER:
        return True
    return kind == Viewer.OWNER and current_membership(user).partner_id == partner.pk
