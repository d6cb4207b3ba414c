"""partners.visibility.Viewer: who is looking, resolved once, asked by properties (never by a kind's name)."""

import dataclasses

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import SimpleLazyObject

from partners.constants import MemberStatus
from partners.visibility import (
    Viewer,
    ViewerKind,
    can_manage_team,
    company_partners_for,
    members_for,
    partners_for,
    viewer_for,
)
from tests.partners.factories import AccountManagerFactory, MemberFactory, OwnerFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db

PROPERTIES = (
    "is_anonymous",
    "is_authenticated",
    "is_program_manager",
    "is_account_manager",
    "is_manager",
    "is_owner",
    "is_member",
    "in_program",
    "sees_others",
    "sees_company",
)


def flags(viewer: Viewer) -> set[str]:
    """The properties that are true for this viewer."""
    return {name for name in PROPERTIES if getattr(viewer, name)}


def test_an_anonymous_visitor_is_nobody_and_sees_nothing(django_assert_num_queries):
    PartnerFactory()
    with django_assert_num_queries(0):
        viewer = viewer_for(AnonymousUser())
        assert flags(viewer) == {"is_anonymous"}
        assert (viewer.member, viewer.partner) == (None, None)
    assert viewer_for(None).is_anonymous
    assert not partners_for(viewer).exists()
    assert not members_for(viewer).exists()
    assert not viewer.portfolio.exists()


def test_a_signed_in_person_without_a_membership_takes_no_part_and_sees_nothing():
    PartnerFactory()
    MemberFactory(status=MemberStatus.LEFT, user=(user := UserFactory()))
    viewer = viewer_for(user)
    assert flags(viewer) == {"is_authenticated"}
    assert (viewer.kind, viewer.member, viewer.partner) == (ViewerKind.NONE, None, None)
    assert not partners_for(viewer).exists()
    assert not members_for(viewer).exists()


def test_a_member_sees_their_partner_and_only_their_own_membership():
    member = MemberFactory()
    MemberFactory(partner=member.partner)
    viewer = viewer_for(member.user)
    assert flags(viewer) == {"is_authenticated", "is_member", "in_program"}
    assert (viewer.member, viewer.partner) == (member, member.partner)
    assert list(partners_for(viewer)) == [member.partner]
    assert list(members_for(viewer)) == [member]
    assert not company_partners_for(viewer).exists()
    assert not viewer.portfolio.exists()
    assert not viewer.owns(member.partner) and not can_manage_team(viewer, member.partner)


def test_an_owner_waiting_for_approval_is_still_a_plain_member():
    pending = OwnerFactory(status=MemberStatus.PENDING_APPROVAL, joined_at=None)
    viewer = viewer_for(pending.user)
    assert viewer.is_member and not viewer.is_owner
    assert viewer.member == pending


def test_an_owner_sees_their_partner_its_people_and_its_company_data():
    owner = OwnerFactory()
    colleague = MemberFactory(partner=owner.partner)
    other = OwnerFactory()
    viewer = viewer_for(owner.user)
    assert flags(viewer) == {"is_authenticated", "is_owner", "in_program", "sees_others", "sees_company"}
    assert (viewer.member, viewer.partner) == (owner, owner.partner)
    assert set(members_for(viewer)) == {owner, colleague}
    assert list(company_partners_for(viewer)) == [owner.partner]
    assert viewer.owns(owner.partner) and viewer.owns(owner.partner_id) and not viewer.owns(other.partner)
    assert can_manage_team(viewer, owner.partner) and not can_manage_team(viewer, other.partner)


def test_an_account_manager_sees_their_portfolio_and_its_people():
    manager = AccountManagerFactory()
    mine = PartnerFactory(account_manager=manager)
    theirs = MemberFactory(partner=mine)
    MemberFactory()  # someone else's partner
    viewer = viewer_for(manager)
    assert flags(viewer) == {
        "is_authenticated",
        "is_account_manager",
        "is_manager",
        "in_program",
        "sees_others",
        "sees_company",
    }
    assert list(viewer.portfolio) == [mine]
    assert list(partners_for(viewer)) == list(company_partners_for(viewer)) == [mine]
    assert list(members_for(viewer)) == [theirs]
    assert not can_manage_team(viewer, mine)


def test_a_program_manager_sees_everything_and_manages_every_team(program_manager):
    members = MemberFactory.create_batch(2)
    viewer = viewer_for(program_manager)
    assert flags(viewer) == {
        "is_authenticated",
        "is_program_manager",
        "is_manager",
        "in_program",
        "sees_others",
        "sees_company",
    }
    assert set(viewer.portfolio) == set(partners_for(viewer)) == {m.partner for m in members}
    assert set(members_for(viewer)) == set(members)
    assert can_manage_team(viewer, members[0].partner)


def test_a_kind_is_never_equal_to_its_name():
    viewer = viewer_for(OwnerFactory().user)
    assert viewer.kind is ViewerKind.OWNER
    assert viewer.kind != "owner"


def test_the_viewer_is_a_frozen_value():
    viewer = viewer_for(MemberFactory().user)
    with pytest.raises(dataclasses.FrozenInstanceError):
        viewer.kind = ViewerKind.OWNER


def test_a_user_is_resolved_once_and_a_viewer_passes_through(django_assert_num_queries):
    owner = OwnerFactory()
    user = type(owner.user).objects.get(pk=owner.user.pk)
    with django_assert_num_queries(1):  # the current membership, with its partner, region and role
        viewer = viewer_for(user)
        assert viewer.partner.region.name and viewer.member.role.is_owner
    with django_assert_num_queries(0):
        assert viewer_for(user) is viewer
        assert viewer_for(viewer) is viewer
        assert viewer_for(viewer.member.user) is viewer  # the membership leads back to the same user


def test_the_lazy_request_user_is_resolved_once(django_assert_num_queries):
    member = MemberFactory()
    lazy_user = SimpleLazyObject(lambda: type(member.user).objects.get(pk=member.user.pk))
    with django_assert_num_queries(2):  # the user, then their membership
        viewer = viewer_for(lazy_user)
    with django_assert_num_queries(0):
        assert viewer_for(lazy_user) is viewer
        assert viewer_for(viewer.member.user) is viewer
