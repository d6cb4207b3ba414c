"""Reads a person sees on the member site. Every function takes the viewer (a partners.visibility.Viewer, or a
user) and starts from partners.visibility, so nobody can reach a row their role does not allow, whatever id they
put in a URL."""

import operator
from functools import reduce

from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    IntegerField,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.shortcuts import get_object_or_404

from partners import hooks, visibility
from partners.constants import CURRENT_MEMBER_STATUSES, MemberStatus
from partners.models import Member, Partner, Region, Role, User

# People who need the owner's attention first, then the invited, the team, and former members last.
_STATUS_ORDER = Case(
    When(status=MemberStatus.PENDING_APPROVAL, then=Value(0)),
    When(status=MemberStatus.INVITED, then=Value(1)),
    When(status=MemberStatus.ACTIVE, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)


def _search_members(qs: QuerySet[Member], search: str) -> QuerySet[Member]:
    for word in search.split():
        qs = qs.filter(Q(user__full_name__icontains=word) | Q(user__email__icontains=word))
    return qs


def team_list(
    *,
    viewer,
    partner: Partner | None = None,
    search: str = "",
    status: str = "",
    role: str = "",
) -> QuerySet[Member]:
    """The people the viewer may see, limited to one partner when given (an owner sees only their own).

    `status` is a MemberStatus value; when empty, people who left are not listed. `role` is a Role code.
    """
    qs = visibility.members_for(viewer)
    if partner is not None:
        qs = qs.filter(partner=partner)
    qs = qs.filter(status=status) if status else qs.exclude(status=MemberStatus.LEFT)
    if role:
        qs = qs.filter(role__code=role)
    qs = _search_members(qs, search)
    # Newest first within each status: sorting by name would join every user of a big team before paging.
    # Users are prefetched for the page only: joining them would join every user before the top-N sort.
    users = Prefetch("user", queryset=_users_with_email_reach())
    return qs.select_related("role", "partner").prefetch_related(users).order_by(_STATUS_ORDER, "-pk")


def _users_with_email_reach() -> QuerySet[User]:
    """Users with `email_unreachable`: true when an app above partners (communications) says e-mail to their address
    no longer arrives (hooks.provides_email_unreachable); computed in the users' own query, no query more."""
    flags = [provider() for provider in hooks.email_unreachable_providers]
    unreachable = reduce(operator.or_, flags) if flags else Value(False)
    return User.objects.annotate(email_unreachable=ExpressionWrapper(unreachable, output_field=BooleanField()))


def team_counts(*, viewer, partner: Partner) -> dict[str, int]:
    """How many of a partner's people the viewer may see, per status, in one query."""
    counts = (
        visibility.members_for(viewer)
        .filter(partner=partner)
        .aggregate(**{status.value: Count("pk", filter=Q(status=status)) for status in MemberStatus})
    )
    return {status: counts[status] for status in MemberStatus.values}


def partner_list(
    *,
    viewer,
    search: str = "",
    status: str = "",
    kind: str = "",
    region: str = "",
) -> QuerySet[Partner]:
    """The partners the viewer may see, with their current team size. `region` is a Region code."""
    qs = visibility.partners_for(viewer)
    for word in search.split():
        qs = qs.filter(Q(name__icontains=word) | Q(legal_id__icontains=word))
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if region:
        qs = qs.filter(region__code=region)
    return (
        qs.select_related("region", "account_manager")
        .annotate(
            members_count=Count("members", filter=Q(members__status__in=CURRENT_MEMBER_STATUSES)),
            pending_count=Count("members", filter=Q(members__status=MemberStatus.PENDING_APPROVAL)),
        )
        .order_by("name", "pk")
    )


def partner_count(*, viewer) -> int:
    return visibility.partners_for(viewer).count()


def partner_get(*, viewer, pk: int) -> Partner:
    """One partner the viewer may see; Http404 for any other id, so its existence is not revealed."""
    qs = visibility.partners_for(viewer).select_related("region", "parent", "account_manager")
    return get_object_or_404(qs, pk=pk)


def member_get(*, viewer, pk: int) -> Member:
    """One membership the viewer may see; Http404 for any other id."""
    qs = visibility.members_for(viewer).select_related("user", "role", "partner")
    return get_object_or_404(qs, pk=pk)


def latest_membership(*, viewer) -> Member | None:
    """The viewer's own most recent membership of any status: explains a home page without a current one."""
    viewer = visibility.viewer_for(viewer)
    if not viewer.is_authenticated:
        return None
    memberships = Member.objects.filter(user=viewer.user).select_related("partner", "role")
    return memberships.order_by("-updated_at", "-pk").first()


def role_list() -> list[Role]:
    """Roles are reference data every signed-in person may see (they appear on invitations)."""
    return list(Role.objects.order_by("sort_order", "name"))


def region_list() -> list[Region]:
    return list(Region.objects.order_by("name"))
