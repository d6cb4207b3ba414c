import pytest

from loyalty.common.errors import ApplicationError
from partners import services
from partners.constants import MemberStatus
from partners.models import Invitation, Member, User

from .factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory, role

pytestmark = pytest.mark.django_db


def test_owner_invites_a_sales_rep_who_accepts_and_waits_for_approval(django_capture_on_commit_callbacks, mailoutbox):
    owner = OwnerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.invitation_send(
            partner=owner.partner, email="New.Rep@Example.com", role=role("sales"), invited_by=owner.user
        )

    assert invitation.member.status == MemberStatus.INVITED
    assert invitation.member.user.email == "new.rep@example.com"
    assert len(mailoutbox) == 1
    assert invitation.token in mailoutbox[0].body

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
