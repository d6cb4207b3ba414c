import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from loyalty.services import ledger
from partners import services
from partners.constants import Channel, MemberStatus, PayoutPolicy
from partners.models import Invitation, Member, Partner, User
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import (
    NEW_PASSWORD,
    PASSWORD,
    AccountManagerFactory,
    InvitationFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    UserFactory,
    role,
)

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _rows(response) -> list[str]:
    """The <tr> elements of the body of the page's table, as HTML."""
    body = re.search(r"<tbody>(.*)</tbody>", response.content.decode(), re.S)
    return re.findall(r"<tr>.*?</tr>", body.group(1), re.S) if body else []


def _snapshot(member: Member) -> tuple:
    member.refresh_from_db()
    return member.status, member.joined_at, member.left_at, member.status_changes.count()


@pytest.fixture
def owner(client):
    owner = OwnerFactory(partner__name="Aqua Dealer Ltd", user__full_name="Olga Owner", user__email="olga@aqua.example")
    client.force_login(owner.user)
    return owner


# Home -------------------------------------------------------------------------------------------------


def test_home_asks_anonymous_visitors_to_sign_in(client):
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/"


def test_home_for_an_owner_shows_their_partner_role_and_people_waiting(client, owner):
    MemberFactory(partner=owner.partner, status=MemberStatus.PENDING_APPROVAL)
    MemberFactory(partner=owner.partner, status=MemberStatus.PENDING_APPROVAL)
    MemberFactory(status=MemberStatus.PENDING_APPROVAL)  # another partner's

    response = client.get(reverse("home"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Aqua Dealer Ltd" in html
    assert "Dealer" in html
    assert owner.partner.region.name in html
    assert "Owner / manager" in html
    assert "2 people of your company wait for your approval" in html
    assert f'href="{reverse("team")}?status=pending_approval"' in html


def test_home_for_a_pending_member_says_the_owner_must_approve(client):
    member = MemberFactory(status=MemberStatus.PENDING_APPROVAL, partner__name="Pure Water Ltd")
    client.force_login(member.user)

    response = client.get(reverse("home"))

    html = response.content.decode()
    assert "Your membership is waiting for approval." in html
    assert "The owner of Pure Water Ltd must approve you" in html
    assert "Waiting for approval" in html
    assert f'href="{reverse("team")}"' not in html


def test_home_for_an_account_manager_counts_their_partners(client):
    manager = AccountManagerFactory()
    PartnerFactory(account_manager=manager)
    PartnerFactory(account_manager=manager)
    PartnerFactory()
    client.force_login(manager)

    response = client.get(reverse("home"))

    html = response.content.decode()
    assert "2 partners in your portfolio." in html
    assert f'href="{reverse("partner_list")}"' in html


def test_home_for_a_program_manager_links_the_back_office_and_partners(client):
    PartnerFactory()
    client.force_login(ProgramManagerFactory())

    response = client.get(reverse("home"))

    html = response.content.decode()
    assert 'href="/admin/"' in html
    assert "1 partner in the program." in html
    assert f'href="{reverse("partner_list")}"' in html


def test_home_for_a_user_without_membership_explains_why_there_is_nothing(client):
    gone = MemberFactory(status=MemberStatus.LEFT, left_at=timezone.now(), partner__name="Old Dealer Ltd")
    client.force_login(gone.user)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Your account is not linked to a partner" in html
    assert "Your membership of <strong>Old Dealer Ltd</strong> ended" in html


@pytest.mark.parametrize("team_size", [3, 30])
def test_home_query_count_does_not_grow_with_the_team(client, owner, team_size, django_assert_max_num_queries):
    MemberFactory.create_batch(team_size, partner=owner.partner, status=MemberStatus.PENDING_APPROVAL)
    program = ProgramFactory(currency_name="AquaPoints")
    ledger.earn(account=ledger.member_account(program=program, member=owner), points=75, key="home")

    # session, user, the viewer's membership, the team counts, the program, the balance, expiring soon, the program's
    # tiers (none here; with tiers, the partner's metric too: tests/loyalty/test_tiers.py); the next steps: rejected
    # claims, the member's and the company's balances, the partner's tier rank and the affordable rewards; the inbox
    # bell's unread count (cached after the first page: tests/communications/test_inbox.py); the running challenges of
    # "My challenges" (tests/loyalty/test_challenge_views.py)
    with django_assert_max_num_queries(15):
        response = client.get(reverse("home"))

    html = response.content.decode()
    assert f"{team_size} people of your company wait for your approval" in html
    assert "My AquaPoints" in html


# Profile ----------------------------------------------------------------------------------------------


def test_profile_shows_the_members_current_settings(client):
    member = MemberFactory(phone="+49 30 1234567", preferred_channel=Channel.SMS, user__full_name="Rita Rep")
    client.force_login(member.user)

    response = client.get(reverse("profile"))

    html = response.content.decode()
    assert 'value="Rita Rep"' in html
    assert 'value="+49 30 1234567"' in html
    assert re.search(r'value="sms"[^>]*checked', html)


def test_profile_saves_name_phone_language_and_channel(client):
    member = MemberFactory(user__full_name="Rita Rep")
    client.force_login(member.user)

    response = client.post(
        reverse("profile"),
        {"full_name": "Rita Rep-Smith", "phone": "+48 600 100 200", "language": "pl", "preferred_channel": "sms"},
    )

    assert response.status_code == 302
    assert response.url == reverse("profile")
    member.refresh_from_db()
    member.user.refresh_from_db()
    assert (member.user.full_name, member.phone, member.language, member.preferred_channel) == (
        "Rita Rep-Smith",
        "+48 600 100 200",
        "pl",
        "sms",
    )
    assert _messages(response) == ["Your profile has been saved."]


def profile_refused(client, member, fields: dict, error: str) -> None:
    """`member` sends the profile form in English with `fields`: it comes back with `error`; `member` is reloaded."""
    client.force_login(member.user)
    response = client.post(reverse("profile"), {**fields, "language": "en"})
    assert response.status_code == 200
    assert error in response.content.decode()
    member.refresh_from_db()


def test_profile_refuses_sms_without_a_phone_and_changes_nothing(client):
    member = MemberFactory(user__full_name="Rita Rep", phone="", preferred_channel=Channel.EMAIL)
    fields = {"full_name": "Changed", "phone": "", "preferred_channel": "sms"}

    profile_refused(client, member, fields, "Add a mobile phone number to get messages by SMS.")

    member.user.refresh_from_db()
    assert (member.user.full_name, member.preferred_channel) == ("Rita Rep", Channel.EMAIL)


def test_profile_refuses_a_phone_number_with_letters(client):
    member = MemberFactory(phone="")
    fields = {"full_name": "Rita", "phone": "call me", "preferred_channel": "email"}

    profile_refused(client, member, fields, "Enter a phone number with digits only")

    assert member.phone == ""


def test_profile_of_staff_without_membership_is_read_only(client):
    manager = AccountManagerFactory(full_name="Karl Key")
    client.force_login(manager)

    response = client.get(reverse("profile"))

    html = response.content.decode()
    assert "Karl Key" in html
    assert "Profile settings (phone, language, how we reach you) apply to members of a partner" in html
    assert '<form method="post" action="/profile/"' not in html
    assert client.post(reverse("profile"), {"full_name": "X"}).status_code == 405
    manager.refresh_from_db()
    assert manager.full_name == "Karl Key"


# Team page --------------------------------------------------------------------------------------------


def test_team_lists_the_partners_people_with_the_invite_form(client, owner):
    MemberFactory(partner=owner.partner, user__email="rep@aqua.example", user__full_name="Rita Rep")
    MemberFactory(user__email="stranger@other.example")

    response = client.get(reverse("team"))

    assert response.status_code == 200
    html = response.content.decode()
    rows = _rows(response)
    assert len(rows) == 2
    assert any("rep@aqua.example" in row and "Sales rep" in row and "Active" in row for row in rows)
    assert "stranger@other.example" not in html
    assert 'id="id_email"' in html
    assert 'id="id_role"' in html
    assert ">Send invitation</button>" in html


def test_team_offers_the_actions_each_status_allows(client, owner):
    pending = MemberFactory(partner=owner.partner, status=MemberStatus.PENDING_APPROVAL, user__email="p@aqua.example")
    invited = MemberFactory(partner=owner.partner, status=MemberStatus.INVITED, user__email="i@aqua.example")
    active = MemberFactory(partner=owner.partner, user__email="a@aqua.example")

    response = client.get(reverse("team"))

    rows = {email: row for row in _rows(response) for email in re.findall(r"[\w.]+@aqua\.example", row)}
    assert ">Approve</button>" in rows["p@aqua.example"]
    assert reverse("member_deactivate", args=[pending.pk]) in rows["p@aqua.example"]
    assert reverse("invitation_resend", args=[invited.pk]) in rows["i@aqua.example"]
    assert reverse("invitation_cancel", args=[invited.pk]) in rows["i@aqua.example"]
    assert ">Approve</button>" not in rows["a@aqua.example"]
    assert reverse("member_deactivate", args=[active.pk]) in rows["a@aqua.example"]
    assert "Deactivate" not in rows["olga@aqua.example"]  # not oneself


def test_team_search_and_filters_narrow_the_table(client, owner):
    MemberFactory(partner=owner.partner, user__email="anna@aqua.example", user__full_name="Anna Berg")
    MemberFactory(
        partner=owner.partner,
        user__email="ben@aqua.example",
        role=role("engineer"),
        status=MemberStatus.PENDING_APPROVAL,
    )

    by_name = client.get(reverse("team"), {"q": "berg"})
    by_status = client.get(reverse("team"), {"status": "pending_approval"})
    by_role = client.get(reverse("team"), {"role": "engineer"})
    nothing = client.get(reverse("team"), {"q": "zzz"})

    assert [("anna@aqua.example" in r) for r in _rows(by_name)] == [True]
    assert [("ben@aqua.example" in r) for r in _rows(by_status)] == [True]
    assert [("ben@aqua.example" in r) for r in _rows(by_role)] == [True]
    assert _rows(nothing) == []
    assert "Nobody matches your search." in nothing.content.decode()


def test_team_ignores_an_unknown_filter_value(client, owner):
    response = client.get(reverse("team"), {"status": "bogus", "role": "astronaut"})

    assert response.status_code == 200
    assert len(_rows(response)) == 1


def test_team_htmx_request_renders_only_the_table(client, owner):
    MemberFactory(partner=owner.partner, user__email="anna@aqua.example", user__full_name="Anna Berg")

    response = client.get(reverse("team"), {"q": "anna"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="member-table">')
    assert "<html" not in html
    assert "Send invitation" not in html
    assert "anna@aqua.example" in html
    assert "olga@aqua.example" not in html
    assert "HX-Request" in response["Vary"]


def test_team_htmx_history_restore_gets_the_whole_page(client, owner):
    response = client.get(reverse("team"), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})

    assert "<html" in response.content.decode()


def test_team_is_paginated_by_25(client, owner):
    MemberFactory.create_batch(30, partner=owner.partner)

    first = client.get(reverse("team"))
    second = client.get(reverse("team"), {"page": 2})

    assert len(_rows(first)) == 25
    assert len(_rows(second)) == 6
    assert "Page 2 of 2" in second.content.decode()


@pytest.mark.parametrize("team_size", [3, 30])
def test_team_query_count_does_not_grow_with_the_team(client, owner, team_size, django_assert_max_num_queries):
    MemberFactory.create_batch(team_size, partner=owner.partner)
    ledger.earn(account=ledger.member_account(program=ProgramFactory(), member=owner), points=5, key="team")

    # session, user, the viewer's membership, roles, count, one page of rows and its users; the navigation's
    # program + balance and the inbox bell's unread count (cached after the first page); the page's figures added by
    # analytics (partners.hooks.provides_member_columns: tests/analytics/test_team_page.py)
    with django_assert_max_num_queries(11):
        response = client.get(reverse("team"))

    assert len(_rows(response)) == min(team_size + 1, 25)


# Team actions -----------------------------------------------------------------------------------------


def test_owner_invites_a_person(client, owner, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("team_invite"), {"email": "New.Rep@Aqua.example", "role": "engineer"})

    assert response.status_code == 302
    assert response.url == reverse("team")
    assert _messages(response) == ["Invitation sent to new.rep@aqua.example"]
    member = Member.objects.get(user__email="new.rep@aqua.example")
    assert (member.partner, member.role.code, member.status) == (owner.partner, "engineer", MemberStatus.INVITED)
    assert [m.to for m in mailoutbox] == [["new.rep@aqua.example"]]


def test_inviting_someone_already_active_in_the_team_says_so_and_changes_nothing(client, owner):
    MemberFactory(partner=owner.partner, user__email="rep@aqua.example")
    before = (Member.objects.count(), Invitation.objects.count(), User.objects.count())

    response = client.post(reverse("team_invite"), {"email": "rep@aqua.example", "role": "sales"})

    assert response.status_code == 302
    assert _messages(response) == ["rep@aqua.example is already on the team of Aqua Dealer Ltd (active)."]
    assert (Member.objects.count(), Invitation.objects.count(), User.objects.count()) == before


def test_inviting_with_an_invalid_email_shows_the_form_error_and_changes_nothing(client, owner):
    before = (Member.objects.count(), User.objects.count())

    response = client.post(reverse("team_invite"), {"email": "not-an-address", "role": "sales"})

    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert (Member.objects.count(), User.objects.count()) == before


def test_team_invite_answers_get_with_405(client, owner):
    assert client.get(reverse("team_invite")).status_code == 405


def test_owner_approves_a_person_waiting(client, owner):
    waiting = MemberFactory(partner=owner.partner, status=MemberStatus.PENDING_APPROVAL, user__full_name="Wes Wait")

    response = client.post(reverse("member_approve", args=[waiting.pk]), {"return_query": "q=wes&page=1"})

    assert response.status_code == 302
    assert response.url == reverse("team") + "?q=wes&page=1"
    assert _messages(response) == ["Wes Wait is now an active member of the team."]
    waiting.refresh_from_db()
    assert waiting.status == MemberStatus.ACTIVE


def test_approving_someone_already_active_shows_the_reason_and_changes_nothing(client, owner):
    active = MemberFactory(partner=owner.partner, user__email="a@aqua.example")
    before = _snapshot(active)

    response = client.post(reverse("member_approve", args=[active.pk]))

    assert response.url == reverse("team")
    assert _messages(response) == ["a@aqua.example is active; only people waiting for approval can be approved."]
    assert _snapshot(active) == before


def test_owner_cannot_approve_another_partners_member(client, owner):
    stranger = MemberFactory(status=MemberStatus.PENDING_APPROVAL)
    before = _snapshot(stranger)

    response = client.post(reverse("member_approve", args=[stranger.pk]))

    assert response.status_code == 404
    assert _snapshot(stranger) == before


def test_deactivate_asks_for_confirmation_first(client, owner):
    rep = MemberFactory(partner=owner.partner, user__full_name="Rita Rep")
    before = _snapshot(rep)

    response = client.get(reverse("member_deactivate", args=[rep.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Deactivate Rita Rep?" in html
    assert ">Yes, deactivate</button>" in html
    assert _snapshot(rep) == before


def test_owner_deactivates_a_member_after_confirming(client, owner):
    rep = MemberFactory(partner=owner.partner, user__full_name="Rita Rep")

    response = client.post(reverse("member_deactivate", args=[rep.pk]), {"reason": "Moved to a competitor"})

    assert response.status_code == 302
    assert _messages(response) == ["Rita Rep has been deactivated and is no longer on the team."]
    rep.refresh_from_db()
    assert rep.status == MemberStatus.LEFT
    assert rep.status_changes.first().reason == "Moved to a competitor"


def test_owner_cannot_deactivate_themselves(client, owner):
    before = _snapshot(owner)

    confirm = client.get(reverse("member_deactivate", args=[owner.pk]))
    response = client.post(reverse("member_deactivate", args=[owner.pk]))

    assert confirm.status_code == 302
    assert _messages(response) == ["You cannot deactivate yourself.", "You cannot deactivate yourself."]
    assert _snapshot(owner) == before


def test_owner_cannot_deactivate_another_partners_member(client, owner):
    stranger = MemberFactory()
    before = _snapshot(stranger)

    assert client.get(reverse("member_deactivate", args=[stranger.pk])).status_code == 404
    assert client.post(reverse("member_deactivate", args=[stranger.pk])).status_code == 404
    assert _snapshot(stranger) == before


def test_owner_resends_an_invitation_with_a_new_link(client, owner, django_capture_on_commit_callbacks, mailoutbox):
    first = services.invitation_send(
        partner=owner.partner, email="rep@aqua.example", role=role("sales"), invited_by=owner.user
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("invitation_resend", args=[first.member.pk]))

    assert response.status_code == 302
    assert _messages(response) == ["A new invitation link was sent to rep@aqua.example. The old link stops working."]
    first.refresh_from_db()
    assert first.revoked_at is not None
    assert Invitation.objects.filter(member=first.member, revoked_at=None).count() == 1
    assert len(mailoutbox) == 1


def test_resending_to_someone_who_joined_shows_the_reason_and_changes_nothing(client, owner):
    rep = MemberFactory(partner=owner.partner, user__email="rep@aqua.example")

    response = client.post(reverse("invitation_resend", args=[rep.pk]))

    assert _messages(response) == ["rep@aqua.example has already accepted the invitation."]
    assert not Invitation.objects.filter(member=rep).exists()


def test_cancel_invitation_asks_for_confirmation_then_cancels(client, owner):
    invitation = services.invitation_send(
        partner=owner.partner, email="rep@aqua.example", role=role("sales"), invited_by=owner.user
    )
    member = invitation.member

    confirm = client.get(reverse("invitation_cancel", args=[member.pk]))
    member.refresh_from_db()
    assert confirm.status_code == 200
    assert ">Yes, cancel the invitation</button>" in confirm.content.decode()
    assert member.status == MemberStatus.INVITED

    response = client.post(reverse("invitation_cancel", args=[member.pk]))

    assert response.status_code == 302
    assert _messages(response) == ["The invitation for rep@aqua.example was cancelled."]
    member.refresh_from_db()
    invitation.refresh_from_db()
    assert member.status == MemberStatus.LEFT
    assert invitation.revoked_at is not None


def test_owner_cannot_cancel_another_partners_invitation(client, owner):
    invitation = InvitationFactory()
    before = _snapshot(invitation.member)

    assert client.post(reverse("invitation_cancel", args=[invitation.member.pk])).status_code == 404
    assert client.post(reverse("invitation_resend", args=[invitation.member.pk])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert _snapshot(invitation.member) == before


# Invitation acceptance --------------------------------------------------------------------------------


def test_invitation_for_a_new_person_asks_for_name_and_password(client, new_person_invitation):
    response = client.get(reverse("invitation_accept", args=[new_person_invitation.token]))

    assert response.status_code == 200
    html = response.content.decode()
    for field_id in ("id_full_name", "id_password1", "id_password2"):
        assert f'id="{field_id}"' in html
    assert "newbie@aqua.example" in html
    assert ">Join Aqua Dealer Ltd</button>" in html


def test_new_person_accepts_sets_password_verifies_email_and_is_signed_in(client, new_person_invitation):
    url = reverse("invitation_accept", args=[new_person_invitation.token])

    response = client.post(url, {"full_name": "Nina New", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("home")
    assert _messages(response) == ["Welcome to Aqua Dealer Ltd. The owner will approve you shortly."]
    user = User.objects.get(email="newbie@aqua.example")
    assert user.full_name == "Nina New"
    assert user.check_password(NEW_PASSWORD)
    assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")) == [
        ("newbie@aqua.example", True, True)
    ]
    assert int(client.session["_auth_user_id"]) == user.pk
    member = Member.objects.get(user=user)
    assert member.status == MemberStatus.PENDING_APPROVAL
    new_person_invitation.refresh_from_db()
    assert new_person_invitation.accepted_at is not None


def test_new_person_stays_signed_in_after_joining(client, new_person_invitation):
    """The session keeps the hash of the password just chosen, so the next page is still signed in."""
    url = reverse("invitation_accept", args=[new_person_invitation.token])
    client.post(url, {"full_name": "Nina New", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert "Hello, Nina" in response.content.decode()


def test_new_person_with_a_password_like_their_email_sees_the_validator_message(client, new_person_invitation):
    url = reverse("invitation_accept", args=[new_person_invitation.token])

    response = client.post(
        url, {"full_name": "Nina New", "password1": "newbie@aqua.example", "password2": "newbie@aqua.example"}
    )

    assert response.status_code == 200
    assert "The password is too similar to the email." in response.content.decode()
    assert not User.objects.get(email="newbie@aqua.example").has_usable_password()
    assert "_auth_user_id" not in client.session


def test_invitation_from_a_program_manager_makes_the_person_active(client):
    partner = PartnerFactory(name="Pure Water Ltd")
    invitation = services.invitation_send(
        partner=partner, email="boss@pure.example", role=role("owner"), invited_by=ProgramManagerFactory()
    )

    response = client.post(
        reverse("invitation_accept", args=[invitation.token]),
        {"full_name": "Bo Boss", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert _messages(response) == ["Welcome to Pure Water Ltd."]
    assert Member.objects.get(user__email="boss@pure.example").status == MemberStatus.ACTIVE


def test_new_person_with_mismatched_passwords_sees_the_error_and_nothing_changes(client, new_person_invitation):
    url = reverse("invitation_accept", args=[new_person_invitation.token])

    response = client.post(url, {"full_name": "Nina New", "password1": NEW_PASSWORD, "password2": "something-else"})

    assert response.status_code == 200
    assert "The two passwords do not match." in response.content.decode()
    user = User.objects.get(email="newbie@aqua.example")
    assert (user.full_name, user.has_usable_password()) == ("", False)
    assert new_person_invitation.member.status == MemberStatus.INVITED
    assert not EmailAddress.objects.filter(user=user).exists()
    assert "_auth_user_id" not in client.session


def test_new_person_with_a_weak_password_sees_the_validator_message(client, new_person_invitation):
    url = reverse("invitation_accept", args=[new_person_invitation.token])

    response = client.post(url, {"full_name": "Nina New", "password1": "12345678", "password2": "12345678"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "This password is too common." in html
    assert "This password is entirely numeric." in html
    assert re.search(r'id="id_password1"[^>]*is-invalid|is-invalid[^>]*id="id_password1"', html)
    user = User.objects.get(email="newbie@aqua.example")
    assert (user.full_name, user.has_usable_password()) == ("", False)
    assert not EmailAddress.objects.filter(user=user).exists()
    assert Member.objects.get(pk=new_person_invitation.member_id).status == MemberStatus.INVITED


def test_a_failed_accept_rolls_back_the_new_password_and_email(client):
    """The person already belongs to another team: the service refuses and the sign-up is undone."""
    busy = MemberFactory(user__password="!")  # an active member elsewhere who never set a password
    busy.user.set_unusable_password()
    busy.user.save()
    owner = OwnerFactory(partner__name="Aqua Dealer Ltd")
    invitation = services.invitation_send(
        partner=owner.partner, email=busy.user.email, role=role("sales"), invited_by=owner.user
    )

    response = client.post(
        reverse("invitation_accept", args=[invitation.token]),
        {"full_name": "Bea Busy", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 409
    assert "already belongs to another partner" in response.content.decode()
    busy.user.refresh_from_db()
    assert not busy.user.has_usable_password()
    assert not EmailAddress.objects.filter(user=busy.user).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert Member.objects.get(pk=invitation.member_id).status == MemberStatus.INVITED
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("invitation_fields", "status", "text"),
    [
        ({"expires_at": timezone.now() - timedelta(days=1)}, 410, "This invitation expired on"),
        ({"accepted_at": timezone.now()}, 410, "This invitation has already been used."),
        ({"revoked_at": timezone.now()}, 410, "has been replaced or cancelled"),
    ],
    ids=["expired", "used", "revoked"],
)
def test_an_unusable_invitation_link_shows_why_and_changes_nothing(client, invitation_fields, status, text):
    invitation = InvitationFactory(token="old-link", **invitation_fields)
    before = _snapshot(invitation.member)
    url = reverse("invitation_accept", args=["old-link"])

    shown = client.get(url)
    posted = client.post(url, {"full_name": "X", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert (shown.status_code, posted.status_code) == (status, status)
    assert text in shown.content.decode()
    assert _snapshot(invitation.member) == before
    assert invitation.member.user.check_password(PASSWORD)
    assert "_auth_user_id" not in client.session


def test_an_unknown_invitation_link_is_404_with_a_friendly_page(client):
    before = (Member.objects.count(), User.objects.count())

    response = client.get(reverse("invitation_accept", args=["no-such-token"]))

    assert response.status_code == 404
    assert "This invitation link is not valid." in response.content.decode()
    assert (Member.objects.count(), User.objects.count()) == before


def test_existing_person_must_sign_in_before_joining(client):
    invitation = InvitationFactory(token="link", member__partner__name="Aqua Dealer Ltd")
    url = reverse("invitation_accept", args=["link"])

    response = client.get(url)

    assert response.status_code == 200
    assert f'href="/accounts/login/?next={url.replace("/", "%2F")}"' in response.content.decode()
    assert client.post(url).status_code == 200
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_existing_person_signed_in_joins_with_one_button(client):
    invitation = InvitationFactory(token="link", member__partner__name="Aqua Dealer Ltd")
    client.force_login(invitation.member.user)
    url = reverse("invitation_accept", args=["link"])

    page = client.get(url)
    response = client.post(url)

    assert ">Join Aqua Dealer Ltd</button>" in page.content.decode()
    assert response.url == reverse("home")
    invitation.member.refresh_from_db()
    assert invitation.member.status == MemberStatus.PENDING_APPROVAL


def test_a_different_signed_in_user_is_told_the_invitation_is_for_someone_else(client, new_person_invitation):
    client.force_login(UserFactory(email="someone@else.example"))
    url = reverse("invitation_accept", args=[new_person_invitation.token])

    shown = client.get(url)
    posted = client.post(url, {"full_name": "X", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert (shown.status_code, posted.status_code) == (403, 403)
    assert "This invitation is for another e-mail address (newbie@aqua.example)" in shown.content.decode()
    assert not User.objects.get(email="newbie@aqua.example").has_usable_password()
    assert new_person_invitation.member.status == MemberStatus.INVITED


# Partners ---------------------------------------------------------------------------------------------


def test_partner_list_for_an_account_manager_shows_their_portfolio_with_team_sizes(client):
    manager = AccountManagerFactory()
    mine = PartnerFactory(name="Mine Ltd", account_manager=manager)
    MemberFactory.create_batch(2, partner=mine)
    MemberFactory(partner=mine, status=MemberStatus.PENDING_APPROVAL)
    PartnerFactory(name="Other Ltd")
    client.force_login(manager)

    response = client.get(reverse("partner_list"))

    rows = _rows(response)
    assert len(rows) == 1
    assert "Mine Ltd" in rows[0]
    assert reverse("partner_detail", args=[mine.pk]) in rows[0]
    assert re.search(r'data-label="People"[^>]*>\s*<div>3 <span class="small">\(1 waiting\)', rows[0])


def test_partner_list_for_an_account_manager_without_partners_says_so(client):
    client.force_login(AccountManagerFactory())

    response = client.get(reverse("partner_list"))

    assert "No partners are assigned to you yet." in response.content.decode()


def test_partner_list_for_a_program_manager_filters_and_refreshes_with_htmx(client):
    PartnerFactory(name="Aqua Dealer Ltd", legal_id="DE0001")
    PartnerFactory(name="Pure Installer Ltd", legal_id="DE0002")
    client.force_login(ProgramManagerFactory())

    full = client.get(reverse("partner_list"))
    partial = client.get(reverse("partner_list"), {"q": "de0002"}, headers={"HX-Request": "true"})

    assert len(_rows(full)) == 2
    html = partial.content.decode()
    assert html.lstrip().startswith('<div id="partner-table">')
    assert "Pure Installer Ltd" in html
    assert "Aqua Dealer Ltd" not in html


@pytest.mark.parametrize("partner_count", [3, 30])
def test_partner_list_query_count_does_not_grow(client, partner_count, django_assert_max_num_queries):
    manager = AccountManagerFactory()
    for partner in PartnerFactory.create_batch(partner_count, account_manager=manager):
        MemberFactory(partner=partner)
    client.force_login(manager)

    # session, user, regions for the filter, count, the viewer's membership (navigation), one page of rows
    with django_assert_max_num_queries(6):
        response = client.get(reverse("partner_list"))

    assert len(_rows(response)) == min(partner_count, 25)


def test_partner_detail_shows_the_partner_and_its_people(client):
    manager = AccountManagerFactory()
    partner = PartnerFactory(name="Mine Ltd", legal_id="DE1234", account_manager=manager)
    MemberFactory(partner=partner, user__email="rep@mine.example")
    MemberFactory(user__email="rep@other.example")
    client.force_login(manager)

    response = client.get(reverse("partner_detail", args=[partner.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Mine Ltd" in html
    assert "DE1234" in html
    rows = _rows(response)
    assert len(rows) == 1
    assert "rep@mine.example" in rows[0]


def test_owner_sees_their_own_partner_page_but_not_another(client, owner):
    other = PartnerFactory()

    assert client.get(reverse("partner_detail", args=[owner.partner.pk])).status_code == 200
    assert client.get(reverse("partner_detail", args=[other.pk])).status_code == 404


# Layout -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url_name", "signed_in", "heading"),
    [
        ("account_login", False, "Sign In"),
        ("account_reset_password", False, "Password Reset"),
        ("account_reset_password_done", False, "Password Reset"),
        ("account_email_verification_sent", False, "Verify Your Email Address"),
        ("account_logout", True, "Sign Out"),
        ("account_change_password", True, "Change Password"),
    ],
)
def test_account_pages_use_the_site_layout(client, url_name, signed_in, heading):
    if signed_in:
        client.force_login(MemberFactory().user)

    response = client.get(reverse(url_name))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert 'href="#main">Skip to main content</a>' in html
    assert '<main id="main"' in html
    assert re.search(rf'<h1 class="h3 mb-3">\s*{heading}\s*</h1>', html)
    assert "vendor/bootstrap/bootstrap.min.css" in html


def test_messages_are_shown_as_bootstrap_alerts(client, owner):
    MemberFactory(partner=owner.partner, user__email="rep@aqua.example")

    response = client.post(reverse("team_invite"), {"email": "rep@aqua.example", "role": "sales"}, follow=True)

    assert '<div class="alert alert-danger alert-dismissible fade show"' in response.content.decode()


def test_cancel_confirmation_for_someone_who_joined_goes_back_with_the_reason(client, owner):
    rep = MemberFactory(partner=owner.partner, user__email="rep@aqua.example")

    response = client.get(reverse("invitation_cancel", args=[rep.pk]))

    assert response.url == reverse("team")
    assert _messages(response) == ["rep@aqua.example has already accepted the invitation."]


# Company settings (payout policy) ---------------------------------------------------------------------


def _policy(partner) -> str:
    return Partner.objects.get(pk=partner.pk).payout_policy


def test_team_page_and_home_link_the_company_settings(client, owner):
    team = client.get(reverse("team")).content.decode()
    home = client.get(reverse("home")).content.decode()

    assert f'href="{reverse("company")}">Company settings</a>' in team
    assert f'href="{reverse("company")}">Open company settings</a>' in home
    assert "Staff bonuses: Paid to each employee." in home


def test_company_page_shows_the_current_payout_policy_with_both_choices(client, owner):
    response = client.get(reverse("company"))

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-testid="current-payout-policy">Paid to each employee<', html)
    assert re.search(r'value="individual"[^>]*checked', html)
    assert 'value="pooled"' in html
    assert "Pooled to the company account" in html
    assert "Aqua Dealer Ltd" in html


def test_changing_the_payout_policy_asks_for_confirmation_first(client, owner):
    response = client.post(reverse("company"), {"payout_policy": "pooled"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Change how staff bonuses are paid?" in html
    assert '<input type="hidden" name="payout_policy" value="pooled">' in html
    assert '<input type="hidden" name="confirm" value="yes">' in html
    assert _policy(owner.partner) == PayoutPolicy.INDIVIDUAL


def test_owner_changes_the_payout_policy_after_confirming(client, owner):
    response = client.post(reverse("company"), {"payout_policy": "pooled", "confirm": "yes"})

    assert response.status_code == 302
    assert response.url == reverse("company")
    assert _messages(response) == ["Staff bonuses are now pooled to the company account."]
    assert _policy(owner.partner) == PayoutPolicy.POOLED
    page = client.get(reverse("company")).content.decode()
    assert re.search(r'data-testid="current-payout-policy">Pooled to the company account<', page)


def test_choosing_the_current_payout_policy_again_says_nothing_changed(client, owner):
    response = client.post(reverse("company"), {"payout_policy": "individual", "confirm": "yes"})

    assert response.url == reverse("company")
    assert _messages(response) == ["Nothing changed: staff bonuses are already paid to each employee."]
    assert _policy(owner.partner) == PayoutPolicy.INDIVIDUAL


@pytest.mark.parametrize("data", [{}, {"payout_policy": "everything-to-me", "confirm": "yes"}], ids=["none", "bad"])
def test_an_unknown_payout_policy_shows_a_message_and_changes_nothing(client, owner, data):
    updated_before = Partner.objects.get(pk=owner.partner_id).updated_at

    response = client.post(reverse("company"), data)

    assert response.url == reverse("company")
    assert _messages(response) == [
        "Choose how staff bonuses are paid: paid to each employee or pooled to the company account."
    ]
    partner = Partner.objects.get(pk=owner.partner_id)
    assert (partner.payout_policy, partner.updated_at) == (PayoutPolicy.INDIVIDUAL, updated_before)


@pytest.mark.parametrize(
    "make_viewer",
    [
        lambda partner: MemberFactory(partner=partner).user,
        lambda partner: MemberFactory(partner=partner, role=role("owner"), status=MemberStatus.PENDING_APPROVAL).user,
        lambda partner: AccountManagerFactory(),
        lambda partner: ProgramManagerFactory(),  # program managers use the back office
    ],
    ids=["member", "pending-owner", "account-manager", "program-manager"],
)
def test_only_an_active_owner_may_open_or_use_company_settings(client, make_viewer):
    partner = PartnerFactory(payout_policy=PayoutPolicy.INDIVIDUAL)
    viewer = make_viewer(partner)
    if viewer.is_account_manager:
        Partner.objects.filter(pk=partner.pk).update(account_manager=viewer)
    client.force_login(viewer)

    shown = client.get(reverse("company"))
    posted = client.post(reverse("company"), {"payout_policy": "pooled", "confirm": "yes"})

    assert (shown.status_code, posted.status_code) == (404, 404)
    assert _policy(partner) == PayoutPolicy.INDIVIDUAL


def test_another_partners_owner_changes_only_their_own_partner(client, owner):
    other_owner = OwnerFactory(partner__payout_policy=PayoutPolicy.INDIVIDUAL)
    client.force_login(other_owner.user)

    client.post(reverse("company"), {"payout_policy": "pooled", "confirm": "yes"})

    assert _policy(other_owner.partner) == PayoutPolicy.POOLED
    assert _policy(owner.partner) == PayoutPolicy.INDIVIDUAL


# Error pages ------------------------------------------------------------------------------------------


SITE_LAYOUT = (
    '<html lang="en">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    'href="#main">Skip to main content</a>',
    '<main id="main"',
    "vendor/bootstrap/bootstrap.min.css",
    "css/app.css",
    "Partner Loyalty — the channel partner program.",
)


def _assert_site_layout(html: str) -> None:
    for part in SITE_LAYOUT:
        assert part in html


def test_an_unknown_address_gets_the_site_404_page(client, settings):
    assert settings.DEBUG is False  # Django's own debug page otherwise

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    _assert_site_layout(html)
    assert re.search(r"<h1[^>]*>We cannot find this page</h1>", html)
    assert "<code>/no-such-page/</code>" in html
    assert 'href="/">Go to the home page</a>' in html
    assert f'href="{reverse("account_login")}">Sign in</a>' in html


def test_a_page_not_open_to_the_viewer_is_the_site_404_page_with_their_navigation(client, owner):
    response = client.get(reverse("partner_list"))  # account and program managers only

    assert response.status_code == 404
    html = response.content.decode()
    _assert_site_layout(html)
    assert "not open to your account" in html
    assert f'href="{reverse("team")}">Team</a>' in html  # the owner's own navigation
    assert 'href="/">Go to the home page</a>' in html
    assert "No Partner matches" not in html and "not available to you" not in html  # no internals


def test_the_403_page_uses_the_site_layout(rf):
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied
    from django.views.defaults import permission_denied

    request = rf.get("/somewhere/")
    request.user = AnonymousUser()

    response = permission_denied(request, PermissionDenied())

    assert response.status_code == 403
    html = response.content.decode()
    _assert_site_layout(html)
    assert "You cannot do this here" in html
    assert 'href="/">Go to the home page</a>' in html


@pytest.mark.parametrize(
    ("view", "status", "heading"),
    [("server_error", 500, "Something went wrong on our side"), ("bad_request", 400, "could not be understood")],
)
def test_the_500_and_400_pages_need_neither_a_request_context_nor_the_database(
    rf, django_db_blocker, view, status, heading
):
    from django.core.exceptions import SuspiciousOperation
    from django.views import defaults

    request = rf.get("/boom/")  # no user, no session: Django renders these templates without a context
    args = (SuspiciousOperation(),) if view == "bad_request" else ()
    with django_db_blocker.block():  # any query would raise here
        response = getattr(defaults, view)(request, *args)

    assert response.status_code == status
    html = response.content.decode()
    _assert_site_layout(html)
    assert heading in html
    assert 'href="/">Go to the home page</a>' in html
    assert "Sign out" not in html
