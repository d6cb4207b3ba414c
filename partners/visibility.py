"""The one place that says who may see what. Every view, API view, export and selector goes through it.

- a program manager sees everything;
- an account manager sees the partners assigned to them (their portfolio) and those partners' people;
- a partner owner (an active member in an owner role) sees their partner and its people;
- any other member sees their own partner and their own memberships only;
- a machine client of the API (an ERP, a CRM, a fulfilment vendor) sees every partner and their people, or, when it
  is bound to a distributor, that distributor and its dealers only (`integration_viewer`); what it may do with
  them is its scopes' business (integrations);
- anyone else sees nothing.

Who is looking is a `Viewer`, resolved once per request by `viewer_for(request.user)` (it is kept on the user
object the request carries, so every later call in the request gets the same one without a query). Code and
templates ask the viewer (`viewer.is_owner`, `viewer.sees_company`), never compare role or kind names.
"""

import enum
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from partners.constants import CURRENT_MEMBER_STATUSES, MemberStatus
from partners.models import Member, Partner, User


class ViewerKind(enum.Enum):
    """What kind of person is looking. A plain Enum, not a str: comparing it with a string is always False,
    so nobody can get away with `kind == "owner"`. Use the Viewer's properties instead."""

    ANONYMOUS = "anonymous"
    PROGRAM_MANAGER = "program_manager"
    ACCOUNT_MANAGER = "account_manager"
    OWNER = "owner"
    MEMBER = "member"
    NONE = "none"  # signed in, but neither staff nor a current member
    INTEGRATION = "integration"  # a machine client of the API (integration_viewer)


@dataclass(frozen=True, eq=False)
class Viewer:
    """The person looking at a page or calling a service, resolved once: who they are and what they may see.

    `member` is the user's current (pending or active) membership, whatever their kind; `partner` is its partner.
    """

    kind: ViewerKind
    user: User | AnonymousUser | None = None  # AnonymousUser (or None) when nobody is signed in
    member: Member | None = None
    partner: Partner | None = None

    # Who they are ------------------------------------------------------------------------------------

    @property
    def is_anonymous(self) -> bool:
        return self.kind is ViewerKind.ANONYMOUS

    @property
    def is_authenticated(self) -> bool:
        return self.kind is not ViewerKind.ANONYMOUS

    @property
    def is_program_manager(self) -> bool:
        return self.kind is ViewerKind.PROGRAM_MANAGER

    @property
    def is_account_manager(self) -> bool:
        return self.kind is ViewerKind.ACCOUNT_MANAGER

    @property
    def is_manager(self) -> bool:
        """One of the manufacturer's staff: an account or a program manager."""
        return self.kind in (ViewerKind.PROGRAM_MANAGER, ViewerKind.ACCOUNT_MANAGER)

    @property
    def is_owner(self) -> bool:
        """A partner's owner: an active member in an owner role."""
        return self.kind is ViewerKind.OWNER

    @property
    def is_member(self) -> bool:
        """A partner's person who is not its owner: sees only their own things."""
        return self.kind is ViewerKind.MEMBER

    @property
    def in_program(self) -> bool:
        """Takes part in the program: the manufacturer's staff or a partner's current member."""
        return self.kind not in (ViewerKind.ANONYMOUS, ViewerKind.NONE)

    # What they see -----------------------------------------------------------------------------------

    @property
    def is_integration(self) -> bool:
        """A machine client of the API; `partner` is the distributor it is bound to, if any."""
        return self.kind is ViewerKind.INTEGRATION

    @property
    def sees_everyone(self) -> bool:
        """Sees every partner and person: a program manager, a machine client bound to no distributor. Selectors
        skip their filters then (a subquery of every member would only cost time)."""
        return self.is_program_manager or (self.is_integration and self.partner is None)

    @property
    def sees_others(self) -> bool:
        """Sees other people's rows (claims, orders, points): owners their team's, managers their partners',
        machine clients their partners'."""
        return self.kind in (
            ViewerKind.PROGRAM_MANAGER, ViewerKind.ACCOUNT_MANAGER, ViewerKind.OWNER, ViewerKind.INTEGRATION
        )  # fmt: skip

    @property
    def sees_company(self) -> bool:
        """Sees company-level data (the company points account, company orders). A partner's staff do not."""
        return self.sees_others

    @property
    def portfolio(self) -> QuerySet[Partner]:
        """The partners the viewer looks after: an account manager's assigned partners, every partner for a
        program manager, none for anyone else. A fresh, lazy queryset on each access."""
        if self.is_program_manager:
            return Partner.objects.all()
        if self.is_account_manager:
            return Partner.objects.filter(account_manager=self.user)
        if self.is_integration:
            if self.partner is None:
                return Partner.objects.all()
            return Partner.objects.filter(Q(pk=self.partner.pk) | Q(parent_id=self.partner.pk))
        return Partner.objects.none()

    def owns(self, partner: Partner | int) -> bool:
        """Is the viewer the owner of this partner (an instance or its id)?"""
        partner_id = getattr(partner, "pk", partner)
        return self.is_owner and self.member.partner_id == partner_id

    def can_manage_team(self, partner: Partner | int) -> bool:
        """Invite, approve and deactivate a partner's people: its active owners and program managers."""
        return self.is_program_manager or self.owns(partner)


ANONYMOUS = Viewer(kind=ViewerKind.ANONYMOUS)


def integration_viewer(distributor: Partner | None = None) -> Viewer:
    """The viewer of a machine client of the API: every partner, or `distributor` and its dealers."""
    return Viewer(kind=ViewerKind.INTEGRATION, partner=distributor)


def current_membership(user) -> Member | None:
    """The user's current (pending or active) membership, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    if not hasattr(user, "_current_membership"):
        member = (
            Member.objects.select_related("partner", "partner__region", "role")
            .filter(user=user, status__in=CURRENT_MEMBER_STATUSES)
            .first()
        )
        if member is not None:
            # member.user is this very user object (unwrapped from request.user's lazy object): no second query
            # for it, and the Viewer cached on it is found again through the membership.
            member.user = getattr(user, "_wrapped", user)
        user._current_membership = member
    return user._current_membership


def _resolve(user) -> Viewer:
    member = current_membership(user)
    partner = member.partner if member is not None else None
    if user.is_program_manager:
        kind = ViewerKind.PROGRAM_MANAGER
    elif user.is_account_manager:
        kind = ViewerKind.ACCOUNT_MANAGER
    elif member is None:
        kind = ViewerKind.NONE
    elif member.status == MemberStatus.ACTIVE and member.role.is_owner:
        kind = ViewerKind.OWNER
    else:
        kind = ViewerKind.MEMBER
    return Viewer(kind=kind, user=user, member=member, partner=partner)


def viewer_for(user_or_viewer) -> Viewer:
    """The Viewer of a user (a Viewer is returned as it is). Resolved at most once per user object, that is once
    per request for `request.user`: at most one query (the current membership), none for anonymous users."""
    if isinstance(user_or_viewer, Viewer):
        return user_or_viewer
    user = user_or_viewer
    if not getattr(user, "is_authenticated", False):
        return ANONYMOUS if user is None else Viewer(kind=ViewerKind.ANONYMOUS, user=user)
    viewer = getattr(user, "_viewer", None)
    if viewer is None:
        viewer = user._viewer = _resolve(user)
    return viewer


# Querysets of what a viewer may see. Each takes a Viewer or a user. ------------------------------------


def partners_for(viewer) -> QuerySet[Partner]:
    viewer = viewer_for(viewer)
    if viewer.is_manager or viewer.is_integration:
        return viewer.portfolio
    if viewer.is_owner or viewer.is_member:
        return Partner.objects.filter(pk=viewer.member.partner_id)
    return Partner.objects.none()


def members_for(viewer) -> QuerySet[Member]:
    viewer = viewer_for(viewer)
    if viewer.is_program_manager:
        return Member.objects.all()
    if viewer.is_account_manager:
        return Member.objects.filter(partner__account_manager=viewer.user)
    if viewer.is_integration:
        return Member.objects.all() if viewer.partner is None else Member.objects.filter(partner__in=viewer.portfolio)
    if viewer.is_owner:
        return Member.objects.filter(partner_id=viewer.member.partner_id)
    if viewer.is_member:
        return Member.objects.filter(user=viewer.user)
    return Member.objects.none()


def company_partners_for(viewer) -> QuerySet[Partner]:
    """Partners whose company-level data (the company points account, company orders) the viewer may see.
    Staff members see only their own things, never the company's."""
    viewer = viewer_for(viewer)
    return partners_for(viewer) if viewer.sees_company else Partner.objects.none()


def can_manage_team(viewer, partner: Partner) -> bool:
    """Invite, approve and deactivate a partner's people: its active owners and program managers."""
    return viewer_for(viewer).can_manage_team(partner)
