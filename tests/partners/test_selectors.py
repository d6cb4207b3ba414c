import pytest
from django.http import Http404

from partners import selectors
from partners.constants import MemberStatus, PartnerKind, PartnerStatus
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    RegionFactory,
    UserFactory,
    role,
)

pytestmark = pytest.mark.django_db


def _emails(members) -> list[str]:
    return sorted(m.user.email for m in members)


# team_list --------------------------------------------------------------------------------------------


def test_team_list_for_an_owner_holds_only_their_partners_people():
    owner = OwnerFactory(user__email="owner@a.example")
    MemberFactory(partner=owner.partner, user__email="rep@a.example")
    MemberFactory(user__email="rep@b.example")

    members = selectors.team_list(viewer=owner.user)

    assert _emails(members) == ["owner@a.example", "rep@a.example"]


def test_team_list_for_a_plain_member_holds_only_themselves():
    member = MemberFactory(user__email="me@a.example")
    MemberFactory(partner=member.partner, user__email="colleague@a.example")

    assert _emails(selectors.team_list(viewer=member.user)) == ["me@a.example"]


def test_team_list_for_an_account_manager_holds_their_portfolio_only():
    manager = AccountManagerFactory()
    MemberFactory(partner__account_manager=manager, user__email="mine@a.example")
    MemberFactory(user__email="other@b.example")

    assert _emails(selectors.team_list(viewer=manager)) == ["mine@a.example"]


def test_team_list_for_a_program_manager_can_be_limited_to_one_partner(program_manager):
    first = MemberFactory(user__email="a@a.example")
    MemberFactory(user__email="b@b.example")

    members = selectors.team_list(viewer=program_manager, partner=first.partner)

    assert _emails(members) == ["a@a.example"]


def test_team_list_for_a_user_without_membership_is_empty():
    MemberFactory()

    assert list(selectors.team_list(viewer=UserFactory())) == []


def test_team_list_hides_people_who_left_unless_asked_for():
    owner = OwnerFactory(user__email="owner@a.example")
    MemberFactory(partner=owner.partner, status=MemberStatus.LEFT, user__email="gone@a.example")

    assert _emails(selectors.team_list(viewer=owner.user)) == ["owner@a.example"]
    assert _emails(selectors.team_list(viewer=owner.user, status=MemberStatus.LEFT)) == ["gone@a.example"]


def test_team_list_searches_name_and_email_and_filters_status_and_role():
    owner = OwnerFactory(user__email="owner@a.example", user__full_name="Olga Owner")
    MemberFactory(partner=owner.partner, user__email="anna@a.example", user__full_name="Anna Berg")
    MemberFactory(
        partner=owner.partner,
        user__email="ben@a.example",
        user__full_name="Ben Stone",
        role=role("engineer"),
        status=MemberStatus.PENDING_APPROVAL,
    )

    assert _emails(selectors.team_list(viewer=owner.user, search="berg")) == ["anna@a.example"]
    assert _emails(selectors.team_list(viewer=owner.user, search="BEN@A")) == ["ben@a.example"]
    assert _emails(selectors.team_list(viewer=owner.user, search="anna berg")) == ["anna@a.example"]
    assert _emails(selectors.team_list(viewer=owner.user, status=MemberStatus.PENDING_APPROVAL)) == ["ben@a.example"]
    assert _emails(selectors.team_list(viewer=owner.user, role="owner")) == ["owner@a.example"]


def test_team_list_puts_people_waiting_for_approval_first():
    owner = OwnerFactory(user__full_name="Aaron Owner")
    MemberFactory(partner=owner.partner, user__full_name="Zoe Pending", status=MemberStatus.PENDING_APPROVAL)
    MemberFactory(partner=owner.partner, user__full_name="Mia Invited", status=MemberStatus.INVITED, joined_at=None)

    names = [m.user.full_name for m in selectors.team_list(viewer=owner.user)]

    assert names == ["Zoe Pending", "Mia Invited", "Aaron Owner"]


def test_team_counts_counts_each_status_of_one_partner():
    owner = OwnerFactory()
    MemberFactory(partner=owner.partner, status=MemberStatus.PENDING_APPROVAL)
    MemberFactory(partner=owner.partner, status=MemberStatus.PENDING_APPROVAL)
    MemberFactory(partner=owner.partner, status=MemberStatus.INVITED, joined_at=None)
    MemberFactory(partner=owner.partner, status=MemberStatus.LEFT)
    MemberFactory(status=MemberStatus.PENDING_APPROVAL)  # another partner

    counts = selectors.team_counts(viewer=owner.user, partner=owner.partner)

    assert counts == {"invited": 1, "pending_approval": 2, "active": 1, "left": 1}


# partner_list / partner_get ---------------------------------------------------------------------------


def test_partner_list_for_an_account_manager_is_their_portfolio():
    manager = AccountManagerFactory()
    PartnerFactory(name="Mine Ltd", account_manager=manager)
    PartnerFactory(name="Theirs Ltd", account_manager=AccountManagerFactory())
    PartnerFactory(name="Nobody's Ltd")

    assert [p.name for p in selectors.partner_list(viewer=manager)] == ["Mine Ltd"]
    assert selectors.partner_count(viewer=manager) == 1


def test_partner_list_for_a_program_manager_is_every_partner(program_manager):
    PartnerFactory(name="B Ltd", account_manager=AccountManagerFactory())
    PartnerFactory(name="A Ltd")

    assert [p.name for p in selectors.partner_list(viewer=program_manager)] == ["A Ltd", "B Ltd"]


def test_partner_list_for_an_owner_is_their_partner_and_for_a_stranger_nothing():
    owner = OwnerFactory(partner__name="Own Ltd")
    PartnerFactory(name="Other Ltd")

    assert [p.name for p in selectors.partner_list(viewer=owner.user)] == ["Own Ltd"]
    assert list(selectors.partner_list(viewer=UserFactory())) == []


def test_partner_list_counts_current_people_and_those_waiting(program_manager):
    partner = PartnerFactory()
    MemberFactory(partner=partner)
    MemberFactory(partner=partner, status=MemberStatus.PENDING_APPROVAL)
    MemberFactory(partner=partner, status=MemberStatus.INVITED, joined_at=None)
    MemberFactory(partner=partner, status=MemberStatus.LEFT)

    (row,) = selectors.partner_list(viewer=program_manager)

    assert (row.members_count, row.pending_count) == (2, 1)


def test_partner_list_searches_name_and_legal_id_and_filters(program_manager):
    north = RegionFactory(code="north", name="North")
    PartnerFactory(name="Aqua Dealer", legal_id="DE111", region=north)
    PartnerFactory(name="Pure Installer", legal_id="DE222", kind=PartnerKind.INSTALLER)
    PartnerFactory(name="Clear Water", legal_id="FR333", status=PartnerStatus.SUSPENDED)
    viewer = program_manager

    def names(**filters):
        return [p.name for p in selectors.partner_list(viewer=viewer, **filters)]

    assert names(search="aqua") == ["Aqua Dealer"]
    assert names(search="de2") == ["Pure Installer"]
    assert names(kind=PartnerKind.INSTALLER) == ["Pure Installer"]
    assert names(status=PartnerStatus.SUSPENDED) == ["Clear Water"]
    assert names(region="north") == ["Aqua Dealer"]


def test_partner_get_returns_a_visible_partner_and_404s_any_other():
    manager = AccountManagerFactory()
    mine = PartnerFactory(account_manager=manager)
    other = PartnerFactory()

    assert selectors.partner_get(viewer=manager, pk=mine.pk) == mine
    with pytest.raises(Http404):
        selectors.partner_get(viewer=manager, pk=other.pk)


def test_member_get_404s_a_member_of_another_partner_for_an_owner():
    owner = OwnerFactory()
    colleague = MemberFactory(partner=owner.partner)
    stranger = MemberFactory()

    assert selectors.member_get(viewer=owner.user, pk=colleague.pk) == colleague
    with pytest.raises(Http404):
        selectors.member_get(viewer=owner.user, pk=stranger.pk)


def test_member_get_lets_a_plain_member_see_only_themselves():
    member = MemberFactory()
    colleague = MemberFactory(partner=member.partner)

    assert selectors.member_get(viewer=member.user, pk=member.pk) == member
    with pytest.raises(Http404):
        selectors.member_get(viewer=member.user, pk=colleague.pk)


def test_latest_membership_is_the_viewers_own_most_recent_one():
    gone = MemberFactory(status=MemberStatus.LEFT, partner__name="Old Ltd")
    MemberFactory(status=MemberStatus.LEFT, partner__name="Someone Else's Ltd")

    assert selectors.latest_membership(viewer=gone.user) == gone
    assert selectors.latest_membership(viewer=UserFactory()) is None
