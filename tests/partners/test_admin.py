import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty.common.admin import INLINE_ROW_LIMIT
from loyalty.common.errors import ApplicationError
from partners import services
from partners.admin_forms import PartnerAdminForm
from partners.constants import DEFAULT_ROLES, MemberStatus, PartnerKind, PartnerStatus, StaffRole
from partners.models import Invitation, Member, MemberStatusChange, Partner, PartnerStatusChange, User
from partners.selectors_admin import program_overview
from tests.helpers import messages_of
from tests.partners.factories import (
    AccountManagerFactory,
    InvitationFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    RegionFactory,
    RoleFactory,
    UserFactory,
    role,
)

pytestmark = pytest.mark.django_db

# The most queries each page may make. The same bound must hold at 3 rows and at 40 rows.
CHANGELIST_QUERIES = {
    "partner": 10,
    "member": 10,
    "invitation": 9,
    "user": 8,
    "region": 6,
    "role": 6,
}
PARTNER_CHANGE_QUERIES = 11
MEMBER_CHANGE_QUERIES = 8


@pytest.fixture(autouse=True)
def default_roles():
    """The six roles the migration seeds (a transactional test elsewhere may have flushed them)."""
    return [role(code) for code, _name, _is_owner in DEFAULT_ROLES]


def changelist(model: str) -> str:
    return reverse(f"admin:partners_{model}_changelist")


def run_action(client, model: str, action: str, objects, **extra):
    data = {"action": action, "_selected_action": [obj.pk for obj in objects], **extra}
    return client.post(changelist(model), data, follow=True)


# Access ---------------------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_partner_staff_cannot_open_the_back_office(client):
    owner = OwnerFactory()
    client.force_login(owner.user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_account_manager_cannot_open_the_back_office(client):
    client.force_login(AccountManagerFactory())
    response = client.get(changelist("partner"))
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={changelist('partner')}"


def test_account_manager_marked_as_staff_by_mistake_still_sees_no_partner_data(am_staff_client):
    PartnerFactory(name="Secret Water Ltd")
    index = am_staff_client.get("/admin/")
    assert index.status_code == 200
    assert "Secret Water" not in index.text
    assert am_staff_client.get(changelist("partner")).status_code == 403


def test_program_manager_without_superuser_flag_runs_the_back_office(client):
    client.force_login(UserFactory(staff_role=StaffRole.PROGRAM_MANAGER, is_staff=True))
    assert client.get(changelist("partner")).status_code == 200
    assert client.get(changelist("member")).status_code == 200


# Index ----------------------------------------------------------------------------------------------


def test_index_is_branded(pm_client):
    response = pm_client.get("/admin/")
    assert "<title>The program today | Partner Loyalty back office</title>" in response.text
    assert "Partner Loyalty — back office" in response.text


def counts(rows) -> list[tuple[str, int]]:
    return [(row.value, row.count) for row in rows]


def test_index_shows_what_the_program_looks_like_today(pm_client):
    manager = AccountManagerFactory()
    PartnerFactory(status=PartnerStatus.PROSPECT)
    PartnerFactory(status=PartnerStatus.SUSPENDED, account_manager=manager)
    PartnerFactory(status=PartnerStatus.CLOSED)  # closed: needs no account manager
    active = PartnerFactory(status=PartnerStatus.ACTIVE, account_manager=manager)
    OwnerFactory(partner=active)
    MemberFactory.create_batch(2, partner=active, role=role("engineer"))
    MemberFactory(partner=active, status=MemberStatus.PENDING_APPROVAL, joined_at=None)
    MemberFactory(partner=active, status=MemberStatus.LEFT)
    InvitationFactory(member__partner=active)
    InvitationFactory(member__partner=active, expires_at=timezone.now() - timedelta(days=1))
    InvitationFactory(member__partner=active, revoked_at=timezone.now())

    response = pm_client.get("/admin/")

    overview = response.context["overview"]
    assert counts(overview.partners_by_status) == [("prospect", 1), ("active", 1), ("suspended", 1), ("closed", 1)]
    assert overview.partners_total == 4
    assert overview.partners_without_account_manager == 1
    assert counts(overview.members_by_status) == [("invited", 3), ("pending_approval", 1), ("active", 3), ("left", 1)]
    assert overview.members_total == 8
    assert [(row.name, row.count) for row in overview.active_members_by_role] == [
        ("Owner / manager", 1),
        ("Sales rep", 0),
        ("Engineer / installer", 2),
        ("Foreman", 0),
        ("Purchasing", 0),
        ("Logistics", 0),
    ]
    assert (overview.pending_approvals, overview.open_invitations, overview.expired_invitations) == (1, 1, 1)
    assert 'id="overview-pending-approvals">1</strong>' in response.text
    assert 'id="overview-no-account-manager">1</strong>' in response.text


def test_index_numbers_cost_four_queries_whatever_the_size(django_assert_num_queries):
    for partner in PartnerFactory.create_batch(5):
        MemberFactory.create_batch(3, partner=partner)
        InvitationFactory(member__partner=partner)
    with django_assert_num_queries(4):
        program_overview()


def test_index_link_to_partners_without_account_manager_lists_exactly_them(pm_client):
    lonely = PartnerFactory(name="Lonely Ltd", status=PartnerStatus.PROSPECT)
    PartnerFactory(status=PartnerStatus.CLOSED)
    PartnerFactory(account_manager=AccountManagerFactory())
    response = pm_client.get(changelist("partner") + "?account_manager=none&status__in=prospect,active,suspended")
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [lonely]


# Query counts of the pages --------------------------------------------------------------------------


def make_partners(rows: int) -> None:
    managers = AccountManagerFactory.create_batch(3)
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR, account_manager=managers[0])
    for index in range(rows - 1):
        partner = PartnerFactory(parent=distributor, account_manager=managers[index % 3])
        MemberFactory(partner=partner, status=MemberStatus.PENDING_APPROVAL, joined_at=None)
        OwnerFactory(partner=partner)


def make_members(rows: int) -> None:
    roles = [role("owner"), role("sales"), role("engineer")]
    for index in range(rows):
        MemberFactory(role=roles[index % 3])


def make_invitations(rows: int) -> None:
    inviters = ProgramManagerFactory.create_batch(2)
    for index in range(rows):
        InvitationFactory(invited_by=inviters[index % 2])


def make_users(rows: int) -> None:
    for index in range(rows - 1):  # the program manager signed in is the last row
        if index % 2:
            MemberFactory()
        else:
            UserFactory()


def make_regions(rows: int) -> None:
    for region in RegionFactory.create_batch(rows):
        PartnerFactory(region=region)


def make_roles(rows: int) -> None:
    RoleFactory.create_batch(rows - 6)  # six roles come from the migration
    MemberFactory.create_batch(2)


@pytest.mark.parametrize("rows", [3, 40])
@pytest.mark.parametrize(
    ("model", "make"),
    [
        ("partner", make_partners),
        ("member", make_members),
        ("invitation", make_invitations),
        ("user", make_users),
        ("region", make_regions),
        ("role", make_roles),
    ],
)
def test_changelist_query_count_does_not_grow_with_rows(pm_client, django_assert_max_num_queries, model, make, rows):
    make(rows if model != "role" else max(rows, 7))
    with django_assert_max_num_queries(CHANGELIST_QUERIES[model]):
        response = pm_client.get(changelist(model))
    assert response.status_code == 200
    assert response.context["cl"].result_count == (rows if model != "role" else max(rows, 7))


@pytest.mark.parametrize("rows", [3, 40])
def test_partner_change_page_query_count_does_not_grow_with_members(
    pm_client, program_manager, django_assert_max_num_queries, rows
):
    partner = PartnerFactory(
        status=PartnerStatus.PROSPECT,
        parent=PartnerFactory(kind=PartnerKind.DISTRIBUTOR),
        account_manager=AccountManagerFactory(),
    )
    OwnerFactory(partner=partner)
    MemberFactory.create_batch(rows - 1, partner=partner)
    for _ in range(rows // 2):
        services.partner_transition(partner=partner, to=PartnerStatus.ACTIVE, actor=program_manager)
        services.partner_transition(partner=partner, to=PartnerStatus.SUSPENDED, actor=program_manager)

    with django_assert_max_num_queries(PARTNER_CHANGE_QUERIES):
        response = pm_client.get(reverse("admin:partners_partner_change", args=[partner.pk]))

    assert response.status_code == 200
    shown = min(rows, INLINE_ROW_LIMIT)
    assert len(response.context["inline_admin_formsets"][0].formset.forms) == shown
    assert f"see all {rows} members" in response.text


@pytest.mark.parametrize("rows", [3, 40])
def test_member_change_page_query_count_does_not_grow_with_history(
    pm_client, program_manager, django_assert_max_num_queries, rows
):
    member = MemberFactory(status=MemberStatus.INVITED, joined_at=None)
    for _ in range(rows):
        services.invitation_resend(member=member, actor=program_manager)
        MemberStatusChange.objects.create(
            member=member, from_status=MemberStatus.INVITED, to_status=MemberStatus.INVITED, actor=program_manager
        )
    with django_assert_max_num_queries(MEMBER_CHANGE_QUERIES):
        response = pm_client.get(reverse("admin:partners_member_change", args=[member.pk]))
    assert response.status_code == 200


# Partner actions ------------------------------------------------------------------------------------


def test_activate_partners_moves_each_and_records_who_did_it(pm_client, program_manager):
    prospect = PartnerFactory(name="Alpha Ltd", status=PartnerStatus.PROSPECT, joined_on=None)
    suspended = PartnerFactory(name="Beta Ltd", status=PartnerStatus.SUSPENDED)

    response = run_action(pm_client, "partner", "activate", [prospect, suspended])

    assert messages_of(response) == ["Activated 2 partners: Alpha Ltd, Beta Ltd."]
    prospect.refresh_from_db()
    suspended.refresh_from_db()
    assert (prospect.status, suspended.status) == (PartnerStatus.ACTIVE, PartnerStatus.ACTIVE)
    assert prospect.joined_on == timezone.localdate()
    assert list(
        PartnerStatusChange.objects.order_by("partner__name").values_list("partner__name", "to_status", "actor")
    ) == [("Alpha Ltd", "active", program_manager.pk), ("Beta Ltd", "active", program_manager.pk)]


def test_suspend_refuses_a_closed_partner_and_still_suspends_the_others(pm_client):
    closed = PartnerFactory(name="Gone Ltd", status=PartnerStatus.CLOSED)
    active = PartnerFactory(name="Live Ltd", status=PartnerStatus.ACTIVE)

    response = run_action(pm_client, "partner", "suspend", [closed, active])

    assert messages_of(response) == [
        "Gone Ltd is closed and cannot become suspended.",
        "Suspended 1 partner: Live Ltd.",
    ]
    closed.refresh_from_db()
    active.refresh_from_db()
    assert (closed.status, active.status) == (PartnerStatus.CLOSED, PartnerStatus.SUSPENDED)
    assert not PartnerStatusChange.objects.filter(partner=closed).exists()


def test_activate_refuses_an_active_partner_and_changes_nothing(pm_client):
    active = PartnerFactory(name="Live Ltd", status=PartnerStatus.ACTIVE)
    response = run_action(pm_client, "partner", "activate", [active])
    assert messages_of(response) == ["Live Ltd is active and cannot become active."]
    assert not PartnerStatusChange.objects.exists()


def test_assign_account_manager_first_asks_who(pm_client):
    partner = PartnerFactory(name="Alpha Ltd")
    AccountManagerFactory(full_name="Ann Keys")
    response = run_action(pm_client, "partner", "assign_account_manager", [partner])
    assert response.status_code == 200
    assert response.templates[0].name == "admin/partners/partner/assign_account_manager.html"
    assert "Alpha Ltd — no account manager yet" in response.text
    assert '<option value="' in response.text and "Ann Keys</option>" in response.text
    partner.refresh_from_db()
    assert partner.account_manager is None


def test_assign_account_manager_sets_it_on_every_selected_partner(pm_client):
    partners = [PartnerFactory(name="Alpha Ltd"), PartnerFactory(name="Beta Ltd")]
    manager = AccountManagerFactory(full_name="Ann Keys")

    response = run_action(
        pm_client, "partner", "assign_account_manager", partners, apply="Assign", account_manager=manager.pk
    )

    assert messages_of(response) == ["Assigned Ann Keys to 2 partners: Alpha Ltd, Beta Ltd."]
    assert set(Partner.objects.values_list("account_manager", flat=True)) == {manager.pk}


def test_assign_account_manager_empty_choice_removes_it(pm_client):
    partner = PartnerFactory(name="Alpha Ltd", account_manager=AccountManagerFactory())
    response = run_action(
        pm_client, "partner", "assign_account_manager", [partner], apply="Assign", account_manager="nobody"
    )
    assert messages_of(response) == ["Removed the account manager of 1 partner: Alpha Ltd."]
    partner.refresh_from_db()
    assert partner.account_manager is None


def test_assign_account_manager_refuses_someone_who_is_not_one(pm_client):
    partner = PartnerFactory()
    not_a_manager = UserFactory()
    response = run_action(
        pm_client, "partner", "assign_account_manager", [partner], apply="Assign", account_manager=not_a_manager.pk
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "account_manager": [f"Select a valid choice. {not_a_manager.pk} is not one of the available choices."]
    }
    partner.refresh_from_db()
    assert partner.account_manager is None


def test_assign_account_manager_without_a_choice_changes_nothing(pm_client):
    manager = AccountManagerFactory()
    partner = PartnerFactory(account_manager=manager)
    response = run_action(pm_client, "partner", "assign_account_manager", [partner], apply="Assign", account_manager="")
    assert response.context["form"].errors == {"account_manager": ["This field is required."]}
    partner.refresh_from_db()
    assert partner.account_manager == manager


# Member actions -------------------------------------------------------------------------------------


def test_approve_members_activates_those_waiting(pm_client, program_manager):
    waiting = MemberFactory(user__email="wait@dealer.example", status=MemberStatus.PENDING_APPROVAL, joined_at=None)
    response = run_action(pm_client, "member", "approve", [waiting])
    assert messages_of(response) == ["Approved 1 member: wait@dealer.example."]
    waiting.refresh_from_db()
    assert waiting.status == MemberStatus.ACTIVE
    assert waiting.status_changes.get().actor == program_manager


def test_approve_refuses_invited_and_active_people_and_changes_nothing(pm_client):
    invited = MemberFactory(user__email="inv@dealer.example", status=MemberStatus.INVITED, joined_at=None)
    active = MemberFactory(user__email="act@dealer.example", status=MemberStatus.ACTIVE)

    response = run_action(pm_client, "member", "approve", [invited, active])

    assert messages_of(response) == [
        "inv@dealer.example is invited; only people waiting for approval can be approved.",
        "act@dealer.example is active; only people waiting for approval can be approved.",
    ]
    assert set(Member.objects.values_list("status", flat=True)) == {MemberStatus.INVITED, MemberStatus.ACTIVE}
    assert not MemberStatusChange.objects.exists()


def test_deactivate_members_lets_active_people_leave(pm_client):
    active = MemberFactory(user__email="act@dealer.example")
    response = run_action(pm_client, "member", "deactivate", [active])
    assert messages_of(response) == ["Deactivated 1 member: act@dealer.example."]
    active.refresh_from_db()
    assert active.status == MemberStatus.LEFT
    assert active.left_at is not None
    assert active.status_changes.get().reason == "Deactivated in the back office"


def test_deactivate_refuses_someone_who_has_not_joined(pm_client):
    invited = MemberFactory(status=MemberStatus.INVITED, joined_at=None)
    response = run_action(pm_client, "member", "deactivate", [invited])
    assert messages_of(response) == ["This person has not joined yet; cancel the invitation instead."]
    invited.refresh_from_db()
    assert invited.status == MemberStatus.INVITED


def test_resend_invitation_from_members_sends_a_fresh_link(pm_client, django_capture_on_commit_callbacks, mailoutbox):
    old = InvitationFactory(member__user__email="new@dealer.example")
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(pm_client, "member", "resend_invitation", [old.member])
    assert messages_of(response) == ["Sent a new invitation link to 1 member: new@dealer.example."]
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert Invitation.objects.filter(member=old.member, revoked_at=None).count() == 1
    assert [mail.to for mail in mailoutbox] == [["new@dealer.example"]]


def test_resend_invitation_refuses_someone_already_active(pm_client, mailoutbox):
    active = MemberFactory(user__email="act@dealer.example")
    response = run_action(pm_client, "member", "resend_invitation", [active])
    assert messages_of(response) == ["act@dealer.example has already accepted the invitation."]
    assert not Invitation.objects.exists()
    assert mailoutbox == []


def test_resend_from_invitations_sends_one_link_per_person(pm_client, django_capture_on_commit_callbacks, mailoutbox):
    first = InvitationFactory(member__user__email="new@dealer.example", revoked_at=timezone.now())
    second = InvitationFactory(member=first.member)
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(pm_client, "invitation", "resend", [first, second])
    assert messages_of(response) == ["Sent a new invitation link to 1 person: new@dealer.example."]
    assert Invitation.objects.filter(member=first.member).count() == 3
    assert [mail.to for mail in mailoutbox] == [["new@dealer.example"]]


def test_invitation_state_filter_lists_open_links_only(pm_client):
    open_link = InvitationFactory()
    InvitationFactory(expires_at=timezone.now() - timedelta(days=1))
    InvitationFactory(revoked_at=timezone.now())
    response = pm_client.get(changelist("invitation") + "?state=open")
    assert list(response.context["cl"].result_list) == [open_link]


# Inviting an owner from the partner page ------------------------------------------------------------


def test_partner_page_offers_to_invite_owner_or_staff(pm_client):
    partner = PartnerFactory()
    response = pm_client.get(reverse("admin:partners_partner_change", args=[partner.pk]))
    invite_url = reverse("admin:partners_partner_invite", args=[partner.pk])
    assert f'<a href="{invite_url}" class="addlink">Invite owner / staff</a>' in response.text


def test_invite_form_defaults_to_the_owner_role(pm_client):
    partner = PartnerFactory()
    response = pm_client.get(reverse("admin:partners_partner_invite", args=[partner.pk]))
    assert response.status_code == 200
    assert response.context["form"]["role"].value() == role("owner").pk


def test_program_manager_invites_a_partner_owner(
    pm_client, program_manager, django_capture_on_commit_callbacks, mailoutbox
):
    partner = PartnerFactory(name="Aqua Pure GmbH", status=PartnerStatus.PROSPECT)
    url = reverse("admin:partners_partner_invite", args=[partner.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = pm_client.post(url, {"email": "Boss@AquaPure.example", "role": role("owner").pk})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:partners_partner_change", args=[partner.pk])
    member = Member.objects.get(partner=partner)
    assert (member.user.email, member.role.code, member.status) == ("boss@aquapure.example", "owner", "invited")
    assert member.invitations.get().invited_by == program_manager
    assert [mail.to for mail in mailoutbox] == [["boss@aquapure.example"]]
    assert mailoutbox[0].subject == f"{program_manager} invited you to the partner program"  # its default template
    assert messages_of(response) == [
        "Invitation sent to boss@aquapure.example to join Aqua Pure GmbH as Owner / manager."
    ]


def test_inviting_an_active_member_again_shows_a_form_error_and_changes_nothing(pm_client, mailoutbox):
    owner = OwnerFactory(user__email="boss@dealer.example", partner__name="Dealer Ltd")
    before = (User.objects.count(), Member.objects.count(), Invitation.objects.count())

    response = pm_client.post(
        reverse("admin:partners_partner_invite", args=[owner.partner.pk]),
        {"email": "BOSS@dealer.example", "role": role("owner").pk},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "email": ["boss@dealer.example is already on the team of Dealer Ltd (active)."]
    }
    assert (User.objects.count(), Member.objects.count(), Invitation.objects.count()) == before
    assert mailoutbox == []


def test_inviting_to_a_closed_partner_shows_why(pm_client):
    partner = PartnerFactory(name="Gone Ltd", status=PartnerStatus.CLOSED)
    response = pm_client.post(
        reverse("admin:partners_partner_invite", args=[partner.pk]),
        {"email": "new@gone.example", "role": role("owner").pk},
    )
    assert response.context["form"].non_field_errors() == ["Gone Ltd is closed; nobody can be invited."]
    assert not Member.objects.exists()
    assert not User.objects.filter(email="new@gone.example").exists()


def test_invite_with_a_bad_email_is_refused_by_the_form(pm_client):
    partner = PartnerFactory()
    response = pm_client.post(
        reverse("admin:partners_partner_invite", args=[partner.pk]), {"email": "not-an-email", "role": role("owner").pk}
    )
    assert response.context["form"].errors == {"email": ["Enter a valid email address."]}
    assert not Member.objects.exists()


# Partner form ---------------------------------------------------------------------------------------


PARTNER_INLINES = {
    "members-TOTAL_FORMS": "0",
    "members-INITIAL_FORMS": "0",
    "status_changes-TOTAL_FORMS": "0",
    "status_changes-INITIAL_FORMS": "0",
}


def partner_form_data(**overrides) -> dict:
    data = {
        "name": "Clear Springs Ltd",
        "legal_id": "gb-123 ",
        "kind": PartnerKind.DEALER,
        "region": RegionFactory().pk,
        "status": PartnerStatus.PROSPECT,
        "payout_policy": "individual",
        "parent": "",
        "account_manager": "",
        "joined_on": "",
    }
    return {**data, **overrides}


def post_partner_change(client, partner, **overrides):
    """Send the partner's change page: partner_form_data with `overrides`, the inline forms empty."""
    url = reverse("admin:partners_partner_change", args=[partner.pk])
    return client.post(url, partner_form_data(**overrides, **PARTNER_INLINES))


def test_adding_a_partner_normalises_the_legal_id(pm_client):
    response = pm_client.post(reverse("admin:partners_partner_add"), partner_form_data(legal_id="  gb-123 "))
    assert response.status_code == 302
    partner = Partner.objects.get()
    assert (partner.name, partner.legal_id, partner.status) == ("Clear Springs Ltd", "GB-123", PartnerStatus.PROSPECT)


def test_duplicate_legal_id_names_its_owner_and_creates_nothing(pm_client):
    PartnerFactory(name="Clearwater Ltd", legal_id="GB999")
    response = pm_client.post(reverse("admin:partners_partner_add"), partner_form_data(legal_id=" gb999 "))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "legal_id": ["Legal id GB999 already belongs to Clearwater Ltd."]
    }
    assert Partner.objects.count() == 1


def test_a_new_partner_cannot_start_closed(pm_client):
    response = pm_client.post(reverse("admin:partners_partner_add"), partner_form_data(status=PartnerStatus.CLOSED))
    assert response.context["adminform"].form.errors == {
        "status": ["Select a valid choice. closed is not one of the available choices."]
    }
    assert not Partner.objects.exists()


def test_editing_a_partner_keeps_its_status_for_the_actions(pm_client):
    partner = PartnerFactory(name="Old Name", legal_id="DE1", status=PartnerStatus.ACTIVE)
    fields = {"name": "New Name", "legal_id": "de1", "region": partner.region_id, "status": PartnerStatus.CLOSED}
    response = post_partner_change(pm_client, partner, **fields)
    assert response.status_code == 302
    partner.refresh_from_db()
    assert (partner.name, partner.legal_id, partner.status) == ("New Name", "DE1", PartnerStatus.ACTIVE)


def test_a_partner_cannot_be_its_own_parent(pm_client):
    distributor = PartnerFactory(name="Big Distribution", legal_id="D1", kind=PartnerKind.DISTRIBUTOR)
    fields = {"name": "Big Distribution", "legal_id": "D1", "kind": PartnerKind.DISTRIBUTOR, "parent": distributor.pk}
    response = post_partner_change(pm_client, distributor, **fields)
    assert response.context["adminform"].form.errors == {"parent": ["A partner cannot be its own parent distributor."]}
    distributor.refresh_from_db()
    assert distributor.parent is None


def test_partner_list_counts_members_per_partner(pm_client):
    partner = PartnerFactory()
    MemberFactory.create_batch(2, partner=partner)
    MemberFactory(partner=partner, status=MemberStatus.PENDING_APPROVAL, joined_at=None)
    MemberFactory(partner=partner, status=MemberStatus.LEFT)
    response = pm_client.get(changelist("partner"))
    row = response.context["cl"].result_list[0]
    assert (row.active_members, row.pending_members) == (2, 1)


def test_member_list_filtered_by_partner_shows_only_its_people(pm_client):
    partner = PartnerFactory()
    mine = MemberFactory.create_batch(2, partner=partner)
    MemberFactory()
    response = pm_client.get(changelist("member") + f"?partner__id__exact={partner.pk}")
    assert sorted(m.pk for m in response.context["cl"].result_list) == sorted(m.pk for m in mine)


# Users ----------------------------------------------------------------------------------------------


def test_adding_a_user_stores_the_email_in_lower_case(pm_client):
    response = pm_client.post(
        reverse("admin:partners_user_add"),
        {
            "email": "Ann.Keys@Maker.example",
            "full_name": "Ann Keys",
            "staff_role": StaffRole.ACCOUNT_MANAGER,
            "usable_password": "false",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(full_name="Ann Keys")
    assert (user.email, user.staff_role, user.is_staff, user.has_usable_password()) == (
        "ann.keys@maker.example",
        StaffRole.ACCOUNT_MANAGER,
        False,
        False,
    )


def test_adding_a_user_with_an_email_in_use_in_another_case_is_refused(pm_client):
    UserFactory(email="ann@maker.example")
    response = pm_client.post(
        reverse("admin:partners_user_add"),
        {"email": "ANN@maker.example", "full_name": "", "staff_role": "", "usable_password": "false"},
    )
    assert response.context["adminform"].form.errors == {
        "email": ["A user with the e-mail ann@maker.example already exists."]
    }
    assert User.objects.filter(email__iexact="ann@maker.example").count() == 1


def test_only_program_managers_may_be_back_office_staff(pm_client):
    response = pm_client.post(
        reverse("admin:partners_user_add"),
        {
            "email": "am@maker.example",
            "full_name": "",
            "staff_role": StaffRole.ACCOUNT_MANAGER,
            "is_staff": "on",
            "usable_password": "false",
        },
    )
    assert response.context["adminform"].form.errors == {
        "is_staff": ["Only program managers may sign in to the back office."]
    }
    assert not User.objects.filter(email="am@maker.example").exists()


def test_user_page_lists_memberships(pm_client):
    member = MemberFactory(partner__name="Dealer Ltd")
    response = pm_client.get(reverse("admin:partners_user_change", args=[member.user.pk]))
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.forms[0].instance == member


# Partner and member forms save through services -----------------------------------------------------

MEMBER_INLINES = {
    "status_changes-TOTAL_FORMS": "0",
    "status_changes-INITIAL_FORMS": "0",
    "invitations-TOTAL_FORMS": "0",
    "invitations-INITIAL_FORMS": "0",
}


def columns_updated(queries, table: str) -> list[set[str]]:
    """The columns each UPDATE of the table wrote."""
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'UPDATE "{table}" SET ')]
    return [set(re.findall(r'"(\w+)" = ', sql.split(" WHERE ")[0])) for sql in updates]


def test_editing_a_partner_writes_only_the_fields_that_changed(pm_client):
    partner = PartnerFactory(name="Old Name", legal_id="DE1", status=PartnerStatus.ACTIVE)
    data = partner_form_data(name="New Name", legal_id="de1", region=partner.region_id, **PARTNER_INLINES)
    data["joined_on"] = str(partner.joined_on)
    with CaptureQueriesContext(connection) as queries:
        response = pm_client.post(reverse("admin:partners_partner_change", args=[partner.pk]), data)
    assert response.status_code == 302
    assert columns_updated(queries, "partners_partner") == [{"name", "updated_at"}]
    partner.refresh_from_db()
    assert (partner.name, partner.legal_id) == ("New Name", "DE1")


def test_a_legal_id_taken_after_the_form_checked_it_is_reported_and_nothing_changes(pm_client, monkeypatch):
    PartnerFactory(name="Clearwater Ltd", legal_id="GB999")
    partner = PartnerFactory(name="Old Name", legal_id="DE1")
    # As if another program manager saved GB999 between the form's checks and the save.
    monkeypatch.setattr(PartnerAdminForm, "clean_legal_id", lambda form: form.cleaned_data["legal_id"].upper())
    monkeypatch.setattr(PartnerAdminForm, "validate_unique", lambda form: None)
    url = reverse("admin:partners_partner_change", args=[partner.pk])
    data = partner_form_data(name="New Name", legal_id="gb999", region=partner.region_id, **PARTNER_INLINES)
    response = pm_client.post(url, data, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert messages_of(response) == ["Legal id GB999 already belongs to Clearwater Ltd."]
    partner.refresh_from_db()
    assert (partner.name, partner.legal_id) == ("Old Name", "DE1")


def test_adding_a_partner_uses_partner_create_and_logs_it(pm_client, program_manager):
    response = pm_client.post(reverse("admin:partners_partner_add"), partner_form_data(name=" Spaced Ltd "))
    partner = Partner.objects.get()
    assert response["Location"] == reverse("admin:partners_partner_changelist")
    assert partner.name == "Spaced Ltd"
    assert LogEntry.objects.get().object_id == str(partner.pk)


def test_partner_update_changes_the_payout_policy_through_its_service(program_manager, caplog):
    partner = PartnerFactory(payout_policy="individual")
    with caplog.at_level("INFO", logger="partners.services"):
        services.partner_update(partner=partner, actor=program_manager, payout_policy="pooled")
    partner.refresh_from_db()
    assert partner.payout_policy == "pooled"
    assert "Payout policy of partner" in caplog.text


@pytest.mark.parametrize(
    ("actor", "fields", "message"),
    [
        (lambda: AccountManagerFactory(), {"name": "X"}, "Only program managers can edit a partner's details."),
        (lambda: ProgramManagerFactory(), {"legal_id": " gb999"}, "Legal id GB999 already belongs to Clearwater Ltd."),
        (lambda: ProgramManagerFactory(), {"parent": "self"}, "A partner cannot be its own parent distributor."),
        (lambda: ProgramManagerFactory(), {"account_manager": "user"}, "is not an account manager."),
        (lambda: ProgramManagerFactory(), {"name": "  "}, "This field cannot be blank."),
    ],
)
def test_partner_update_refuses_bad_changes_and_changes_nothing(actor, fields, message):
    PartnerFactory(name="Clearwater Ltd", legal_id="GB999")
    partner = PartnerFactory(name="Distribution Ltd", legal_id="DE1", kind=PartnerKind.DISTRIBUTOR)
    fields = {
        name: partner if value == "self" else UserFactory() if value == "user" else value
        for name, value in fields.items()
    }
    with pytest.raises(ApplicationError, match=message):
        services.partner_update(partner=partner, actor=actor(), **fields)
    partner.refresh_from_db()
    assert (partner.name, partner.legal_id, partner.parent, partner.account_manager) == (
        "Distribution Ltd",
        "DE1",
        None,
        None,
    )


def test_partner_update_never_moves_the_status(program_manager):
    partner = PartnerFactory(status=PartnerStatus.ACTIVE)
    with pytest.raises(TypeError, match="partner_transition"):
        services.partner_update(partner=partner, actor=program_manager, status=PartnerStatus.CLOSED)
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.ACTIVE


def member_form_data(member, **overrides) -> dict:
    data = {
        "role": member.role_id,
        "phone": member.phone,
        "language": member.language,
        "preferred_channel": member.preferred_channel,
        **MEMBER_INLINES,
    }
    return {**data, **overrides}


def test_changing_a_members_role_in_the_back_office_writes_only_the_role(pm_client):
    member = MemberFactory(role=role("sales"))
    url = reverse("admin:partners_member_change", args=[member.pk])
    with CaptureQueriesContext(connection) as queries:
        response = pm_client.post(url, member_form_data(member, role=role("engineer").pk))
    assert response.status_code == 302
    assert columns_updated(queries, "partners_member") == [{"role_id", "updated_at"}]
    member.refresh_from_db()
    assert member.role.code == "engineer"


def test_changing_a_members_phone_in_the_back_office_keeps_the_role(pm_client):
    member = MemberFactory(role=role("sales"), phone="")
    url = reverse("admin:partners_member_change", args=[member.pk])
    response = pm_client.post(url, member_form_data(member, phone=" +49 30 1 "))
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.phone, member.role.code) == ("+49 30 1", "sales")


def test_the_role_of_someone_who_left_cannot_change(pm_client):
    member = MemberFactory(role=role("sales"), status=MemberStatus.LEFT)
    url = reverse("admin:partners_member_change", args=[member.pk])
    assert "role" in pm_client.get(url).context["adminform"].readonly_fields
    pm_client.post(url, member_form_data(member, role=role("engineer").pk))
    member.refresh_from_db()
    assert member.role.code == "sales"


def test_member_change_role_by_the_partners_owner():
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner, role=role("sales"))
    services.member_change_role(member=rep, role=role("foreman"), actor=owner.user)
    rep.refresh_from_db()
    assert rep.role.code == "foreman"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other_owner", "Only the partner's owner or a program manager can do this."),
        ("left", "has left"),
        ("self_demote", "You cannot give up your own owner role"),
    ],
)
def test_member_change_role_refusals_change_nothing(case, message):
    owner = OwnerFactory()
    member = {
        "other_owner": MemberFactory(role=role("sales")),
        "left": MemberFactory(partner=owner.partner, role=role("sales"), status=MemberStatus.LEFT),
        "self_demote": owner,
    }[case]
    before = member.role_id
    with pytest.raises(ApplicationError, match=message):
        services.member_change_role(member=member, role=role("engineer"), actor=owner.user)
    member.refresh_from_db()
    assert member.role_id == before
