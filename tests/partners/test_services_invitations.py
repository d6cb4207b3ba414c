from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone

from communications.constants import Channel, Kind
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from partners import services
from partners.constants import MemberStatus
from partners.models import Invitation, Member, User
from tests.loyalty.test_ledger_concurrency import run_together
from tests.partners.factories import (
    NEW_PASSWORD,
    PASSWORD,
    AccountManagerFactory,
    InvitationFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    invitation_for_a_new_person,
    role,
)

pytestmark = pytest.mark.django_db


def test_owner_invites_a_sales_rep_who_accepts_and_waits_for_approval(django_capture_on_commit_callbacks, mailoutbox):
    owner = OwnerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_send(
            partner=owner.partner, email="New.Rep@Example.com", role=role("sales"), invited_by=owner.user
        )

    assert invitation.member.status == MemberStatus.INVITED
    assert invitation.member.user.email == "new.rep@example.com"
    assert [mail.to for mail in mailoutbox] == [["new.rep@example.com"]]
    # The message's link (in the e-mail, or behind its short link) is the sign-up link.
    assert invitation.token in Delivery.objects.get(kind=Kind.INVITATION, channel=Channel.EMAIL).link

    member = services.invitation_accept(token=invitation.token, user=invitation.member.user)
    assert member.status == MemberStatus.PENDING_APPROVAL

    services.member_approve(member=member, actor=owner.user)
    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE
    assert member.joined_at is not None
    assert list(member.status_changes.values_list("to_status", flat=True)) == [
        MemberStatus.ACTIVE,
        MemberStatus.PENDING_APPROVAL,
        MemberStatus.INVITED,
    ]


def test_invitation_from_program_manager_activates_at_acceptance():
    partner = PartnerFactory()
    invitation = services.invitation_send(
        partner=partner, email="boss@dealer.example", role=role("owner"), invited_by=ProgramManagerFactory()
    )
    member = services.invitation_accept(token=invitation.token, user=invitation.member.user)
    assert member.status == MemberStatus.ACTIVE


def test_invitation_link_works_once():
    owner = OwnerFactory()
    invitation = services.invitation_send(
        partner=owner.partner, email="rep@example.com", role=role("sales"), invited_by=owner.user
    )
    services.invitation_accept(token=invitation.token, user=invitation.member.user)
    with pytest.raises(ApplicationError, match="already been used"):
        services.invitation_accept(token=invitation.token, user=invitation.member.user)


def test_resend_replaces_the_old_link():
    owner = OwnerFactory()
    first = services.invitation_send(
        partner=owner.partner, email="rep@example.com", role=role("sales"), invited_by=owner.user
    )
    second = services.invitation_resend(member=first.member, actor=owner.user)
    with pytest.raises(ApplicationError, match="replaced or cancelled"):
        services.invitation_get_by_token(first.token)
    assert services.invitation_get_by_token(second.token).pk == second.pk


def test_inviting_an_active_member_of_the_same_partner_is_refused_and_changes_nothing():
    owner = OwnerFactory()
    colleague = MemberFactory(partner=owner.partner)
    before = (Member.objects.count(), Invitation.objects.count(), User.objects.count())
    with pytest.raises(ApplicationError, match="already on the team"):
        services.invitation_send(
            partner=owner.partner,
            email=colleague.user.email.upper(),
            role=role("sales"),
            invited_by=owner.user,
        )
    assert (Member.objects.count(), Invitation.objects.count(), User.objects.count()) == before


def test_owner_cannot_invite_to_another_partner():
    owner = OwnerFactory()
    other = PartnerFactory()
    with pytest.raises(ApplicationError, match="Only the partner's owner"):
        services.invitation_send(partner=other, email="x@example.com", role=role("sales"), invited_by=owner.user)
    assert not Member.objects.filter(partner=other).exists()


def test_owner_cannot_approve_another_partners_member():
    owner = OwnerFactory()
    stranger = MemberFactory(status=MemberStatus.PENDING_APPROVAL)
    with pytest.raises(ApplicationError):
        services.member_approve(member=stranger, actor=owner.user)
    stranger.refresh_from_db()
    assert stranger.status == MemberStatus.PENDING_APPROVAL


def test_person_active_elsewhere_cannot_accept_until_they_leave():
    current = MemberFactory()
    owner = OwnerFactory()
    invitation = services.invitation_send(
        partner=owner.partner, email=current.user.email, role=role("sales"), invited_by=owner.user
    )
    with pytest.raises(ApplicationError, match="already belongs to another partner"):
        services.invitation_accept(token=invitation.token, user=current.user)
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert Member.objects.get(pk=invitation.member_id).status == MemberStatus.INVITED


# Sign-up through an invitation (invitation_register) ---------------------------------------------------


def _sign_up_state(invitation: Invitation) -> tuple:
    user = User.objects.get(pk=invitation.member.user_id)
    invitation.refresh_from_db()
    return (
        user.full_name,
        user.has_usable_password(),
        list(EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")),
        Member.objects.get(pk=invitation.member_id).status,
        invitation.accepted_at,
    )


def test_register_sets_name_and_password_verifies_the_address_and_accepts():
    invitation = invitation_for_a_new_person()

    member = services.invitation_register(token=invitation.token, full_name="  Nina New ", password=NEW_PASSWORD)

    assert member.status == MemberStatus.PENDING_APPROVAL
    user = User.objects.get(email="newbie@aqua.example")
    assert member.user == user
    assert member.user.check_password(NEW_PASSWORD)  # the returned user carries the new password (for login)
    assert user.full_name == "Nina New"
    assert user.check_password(NEW_PASSWORD)
    assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")) == [
        ("newbie@aqua.example", True, True)
    ]
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None


def test_register_through_a_program_managers_invitation_activates_at_once():
    invitation = invitation_for_a_new_person(invited_by=ProgramManagerFactory())

    member = services.invitation_register(token=invitation.token, full_name="Bo Boss", password=NEW_PASSWORD)

    assert member.status == MemberStatus.ACTIVE


def test_register_makes_an_existing_unverified_address_verified_and_primary():
    invitation = invitation_for_a_new_person()
    user = invitation.member.user
    EmailAddress.objects.create(user=user, email="old@aqua.example", verified=True, primary=True)
    EmailAddress.objects.create(user=user, email="NEWBIE@aqua.example", verified=False, primary=False)

    services.invitation_register(token=invitation.token, full_name="Nina New", password=NEW_PASSWORD)

    assert sorted(EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")) == [
        ("NEWBIE@aqua.example", True, True),
        ("old@aqua.example", True, False),
    ]


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("12345678", ["This password is too common.", "This password is entirely numeric."]),
        ("kettle", ["This password is too short. It must contain at least 8 characters."]),
        ("newbie@aqua.example", ["The password is too similar to the email."]),
    ],
    ids=["common-numeric", "short", "like-the-email"],
)
def test_register_refuses_a_weak_password_with_the_validators_messages_and_keeps_nothing(password, expected):
    invitation = invitation_for_a_new_person()
    before = _sign_up_state(invitation)

    with pytest.raises(ApplicationError) as caught:
        services.invitation_register(token=invitation.token, full_name="Nina New", password=password)

    assert caught.value.code == "invalid_password"
    assert caught.value.extra["messages"] == expected
    assert caught.value.message == " ".join(expected)
    assert _sign_up_state(invitation) == before == ("", False, [], MemberStatus.INVITED, None)


@pytest.mark.parametrize("full_name", ["", "   ", "x" * 151], ids=["empty", "blank", "too-long"])
def test_register_refuses_a_missing_or_too_long_name(full_name):
    invitation = invitation_for_a_new_person()
    before = _sign_up_state(invitation)

    with pytest.raises(ApplicationError) as caught:
        services.invitation_register(token=invitation.token, full_name=full_name, password=NEW_PASSWORD)

    assert caught.value.code == "invalid_name"
    assert _sign_up_state(invitation) == before


@pytest.mark.parametrize(
    ("token", "invitation_fields", "code"),
    [
        ("no-such-token", {}, "unknown"),
        ("link", {"accepted_at": timezone.now()}, "used"),
        ("link", {"revoked_at": timezone.now()}, "revoked"),
        ("link", {"expires_at": timezone.now() - timedelta(days=1)}, "expired"),
    ],
    ids=["unknown", "used", "revoked", "expired"],
)
def test_register_through_an_unusable_link_is_refused_with_the_links_code(token, invitation_fields, code):
    invitation = InvitationFactory(token="link", **invitation_fields)
    User.objects.filter(pk=invitation.member.user_id).update(password="!")  # nobody has signed up yet
    before = _sign_up_state(invitation)

    with pytest.raises(ApplicationError) as caught:
        services.invitation_register(token=token, full_name="Nina New", password=NEW_PASSWORD)

    assert caught.value.code == code
    assert _sign_up_state(invitation) == before


def test_register_refuses_a_person_who_already_has_an_account_and_leaves_their_password():
    invitation = InvitationFactory(token="link")  # the factory's user has a password
    user = invitation.member.user

    with pytest.raises(ApplicationError, match="already an account") as caught:
        services.invitation_register(token="link", full_name="Someone Else", password=NEW_PASSWORD)

    assert caught.value.code == "has_account"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not user.check_password(NEW_PASSWORD)
    assert Member.objects.get(pk=invitation.member_id).status == MemberStatus.INVITED


def test_register_is_undone_when_the_acceptance_is_refused():
    """Active on another team: invitation_accept refuses, and the name, password and address are not kept."""
    busy = MemberFactory(user__full_name="")
    User.objects.filter(pk=busy.user_id).update(password="!")
    owner = OwnerFactory()
    invitation = services.invitation_send(
        partner=owner.partner, email=busy.user.email, role=role("sales"), invited_by=owner.user
    )
    before = _sign_up_state(invitation)

    with pytest.raises(ApplicationError) as caught:
        services.invitation_register(token=invitation.token, full_name="Bea Busy", password=NEW_PASSWORD)

    assert caught.value.code == "already_member_elsewhere"
    assert _sign_up_state(invitation) == before


def test_register_works_once():
    invitation = invitation_for_a_new_person()
    services.invitation_register(token=invitation.token, full_name="Nina New", password=NEW_PASSWORD)

    with pytest.raises(ApplicationError) as caught:
        services.invitation_register(token=invitation.token, full_name="Mallory", password="other-Password-99")

    assert caught.value.code == "used"
    user = User.objects.get(email="newbie@aqua.example")
    assert (user.full_name, user.check_password(NEW_PASSWORD)) == ("Nina New", True)


@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_ups_through_one_link_register_once():
    invitation = invitation_for_a_new_person()
    outcomes = []

    def register(n):
        try:
            services.invitation_register(
                token=invitation.token, full_name=f"Person {n}", password=f"{NEW_PASSWORD}-{n}"
            )
            outcomes.append(("joined", n))
        except ApplicationError as exc:
            outcomes.append((exc.code, n))

    run_together(6, register)

    joined = [n for outcome, n in outcomes if outcome == "joined"]
    assert len(joined) == 1
    assert sorted(outcome for outcome, _ in outcomes) == ["joined"] + ["used"] * 5
    user = User.objects.get(email="newbie@aqua.example")  # the winner's name and password, nobody else's
    assert (user.full_name, user.check_password(f"{NEW_PASSWORD}-{joined[0]}")) == (f"Person {joined[0]}", True)


@pytest.mark.parametrize("staff", ["program_manager", "account_manager", "superuser"])
def test_an_owner_cannot_invite_the_programs_staff_into_their_team(staff):
    """Issue #10 walk: an owner invited the program manager, who accepted and became a sales rep of the partner
    whose claims she decides on."""
    owner = OwnerFactory()
    user = {
        "program_manager": lambda: ProgramManagerFactory(email="paula@maker.example"),
        "account_manager": lambda: AccountManagerFactory(email="paula@maker.example"),
        "superuser": lambda: User.objects.create_superuser(email="paula@maker.example", password=PASSWORD),
    }[staff]()

    with pytest.raises(ApplicationError) as refused:
        services.invitation_send(
            partner=owner.partner, email="Paula@Maker.example", role=role("sales"), invited_by=owner.user
        )

    assert refused.value.code == "staff_cannot_join"
    assert "paula@maker.example belongs to the program's staff" in refused.value.message
    assert not Member.objects.filter(user=user).exists()


def test_a_person_made_staff_after_their_invitation_cannot_accept_it():
    owner = OwnerFactory()
    invitation = services.invitation_send(
        partner=owner.partner, email="later.staff@example.com", role=role("sales"), invited_by=owner.user
    )
    user = invitation.member.user
    user.staff_role = "program_manager"
    user.save()

    with pytest.raises(ApplicationError) as refused:
        services.invitation_accept(token=invitation.token, user=user)

    assert refused.value.code == "staff_cannot_join"
    invitation.member.refresh_from_db()
    assert invitation.member.status == MemberStatus.INVITED
