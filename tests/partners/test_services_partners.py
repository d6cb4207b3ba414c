import pytest

from loyalty.common.errors import ApplicationError
from partners import services
from partners.constants import MemberStatus, PartnerKind, PartnerStatus, PayoutPolicy
from partners.models import Member, Partner
from tests.loyalty.test_ledger_concurrency import run_together
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    RegionFactory,
    UserFactory,
    role,
)


@pytest.mark.django_db
def test_partner_create_normalises_the_legal_id():
    partner = services.partner_create(
        name="  Aqua Pure GmbH ", legal_id=" de123456789 ", kind=PartnerKind.DEALER, region=RegionFactory()
    )
    assert (partner.name, partner.legal_id, partner.status) == ("Aqua Pure GmbH", "DE123456789", PartnerStatus.PROSPECT)


@pytest.mark.django_db
def test_duplicate_legal_id_is_refused_with_the_owner_of_the_id_named():
    PartnerFactory(name="Clearwater Ltd", legal_id="GB999")
    with pytest.raises(ApplicationError, match="Legal id GB999 already belongs to Clearwater Ltd"):
        services.partner_create(name="Other", legal_id="gb999", kind=PartnerKind.DEALER, region=RegionFactory())
    assert Partner.objects.count() == 1


@pytest.mark.django_db
def test_partner_transition_records_who_and_when_and_sets_joined_on():
    partner = PartnerFactory(status=PartnerStatus.PROSPECT, joined_on=None)
    manager = ProgramManagerFactory()
    services.partner_transition(partner=partner, to=PartnerStatus.ACTIVE, actor=manager, reason="Contract signed")
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.ACTIVE
    assert partner.joined_on is not None
    change = partner.status_changes.get()
    assert (change.from_status, change.to_status, change.actor, change.reason) == (
        PartnerStatus.PROSPECT,
        PartnerStatus.ACTIVE,
        manager,
        "Contract signed",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "to"),
    [
        (PartnerStatus.CLOSED, PartnerStatus.ACTIVE),
        (PartnerStatus.PROSPECT, PartnerStatus.SUSPENDED),
        (PartnerStatus.ACTIVE, PartnerStatus.PROSPECT),
    ],
)
def test_bad_partner_moves_are_refused_and_change_nothing(start, to):
    partner = PartnerFactory(status=start)
    with pytest.raises(ApplicationError, match="cannot become"):
        services.partner_transition(partner=partner, to=to, actor=None)
    partner.refresh_from_db()
    assert partner.status == start
    assert not partner.status_changes.exists()


@pytest.mark.django_db
def test_only_account_managers_can_be_assigned():
    partner = PartnerFactory()
    with pytest.raises(ApplicationError, match="is not an account manager"):
        services.partner_assign_account_manager(partner=partner, account_manager=UserFactory())
    manager = AccountManagerFactory()
    services.partner_assign_account_manager(partner=partner, account_manager=manager)
    partner.refresh_from_db()
    assert partner.account_manager == manager


@pytest.mark.django_db
def test_owner_cannot_deactivate_themselves():
    owner = OwnerFactory()
    with pytest.raises(ApplicationError, match="cannot deactivate yourself"):
        services.member_deactivate(member=owner, actor=owner.user)
    owner.refresh_from_db()
    assert owner.status == MemberStatus.ACTIVE


@pytest.mark.django_db
def test_deactivated_member_keeps_history_and_can_be_invited_again():
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    services.member_deactivate(member=rep, actor=owner.user, reason="Left the company")
    rep.refresh_from_db()
    assert rep.status == MemberStatus.LEFT
    assert rep.left_at is not None

    invitation = services.invitation_send(
        partner=owner.partner, email=rep.user.email, role=role("engineer"), invited_by=owner.user
    )
    assert invitation.member.pk != rep.pk
    assert Member.objects.filter(user=rep.user).count() == 2


@pytest.mark.django_db
def test_profile_update_validates_and_saves():
    member = MemberFactory()
    services.member_update_profile(
        member=member, full_name="Ana Kovač", phone="+49 170 1234567", language="de", preferred_channel="sms"
    )
    member.refresh_from_db()
    assert (member.user.full_name, member.phone, member.language, member.preferred_channel) == (
        "Ana Kovač",
        "+49 170 1234567",
        "de",
        "sms",
    )
    with pytest.raises(ApplicationError):
        services.member_update_profile(
            member=member, full_name="Ana", phone="", language="xx", preferred_channel="pigeon"
        )
    member.refresh_from_db()
    assert (member.language, member.preferred_channel) == ("de", "sms")


@pytest.mark.django_db(transaction=True)
def test_concurrent_accepts_of_one_invitation_join_once():
    owner = OwnerFactory()
    invitation = services.invitation_send(
        partner=owner.partner, email="race@example.com", role=role("sales"), invited_by=owner.user
    )
    user = invitation.member.user
    outcomes = []

    def accept(_):
        try:
            services.invitation_accept(token=invitation.token, user=user)
            outcomes.append("joined")
        except ApplicationError as exc:
            outcomes.append(exc.code)

    run_together(8, accept)

    assert sorted(outcomes) == ["joined"] + ["used"] * 7
    member = Member.objects.get(pk=invitation.member_id)
    assert member.status == MemberStatus.PENDING_APPROVAL
    assert member.status_changes.filter(to_status=MemberStatus.PENDING_APPROVAL).count() == 1


# Payout policy -----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("actor_factory", [lambda p: OwnerFactory(partner=p).user, lambda p: ProgramManagerFactory()])
def test_the_owner_or_a_program_manager_sets_the_payout_policy(actor_factory):
    partner = PartnerFactory(payout_policy=PayoutPolicy.INDIVIDUAL)
    updated_before = partner.updated_at

    result = services.partner_set_payout_policy(
        partner=partner, policy=PayoutPolicy.POOLED, actor=actor_factory(partner)
    )

    assert result.payout_policy == partner.payout_policy == PayoutPolicy.POOLED
    partner.refresh_from_db()
    assert partner.payout_policy == PayoutPolicy.POOLED
    assert partner.updated_at > updated_before


@pytest.mark.django_db
def test_setting_the_current_payout_policy_again_changes_nothing():
    owner = OwnerFactory(partner__payout_policy=PayoutPolicy.POOLED)
    updated_before = Partner.objects.get(pk=owner.partner_id).updated_at

    services.partner_set_payout_policy(partner=owner.partner, policy=PayoutPolicy.POOLED, actor=owner.user)

    assert Partner.objects.get(pk=owner.partner_id).updated_at == updated_before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "actor_factory",
    [
        lambda p: MemberFactory(partner=p).user,  # a plain member of the partner
        lambda p: MemberFactory(partner=p, role=role("owner"), status=MemberStatus.PENDING_APPROVAL).user,
        lambda p: OwnerFactory().user,  # another partner's owner
        lambda p: AccountManagerFactory(),  # even the partner's own account manager: it is the owner's decision
        lambda p: UserFactory(),
    ],
    ids=["member", "pending-owner", "other-owner", "account-manager", "no-membership"],
)
def test_nobody_else_may_set_the_payout_policy(actor_factory):
    partner = PartnerFactory(payout_policy=PayoutPolicy.INDIVIDUAL)
    actor = actor_factory(partner)
    if actor.is_account_manager:
        services.partner_assign_account_manager(partner=partner, account_manager=actor)

    with pytest.raises(ApplicationError, match="Only the partner's owner") as caught:
        services.partner_set_payout_policy(partner=partner, policy=PayoutPolicy.POOLED, actor=actor)

    assert caught.value.code == "forbidden"
    assert Partner.objects.get(pk=partner.pk).payout_policy == PayoutPolicy.INDIVIDUAL


@pytest.mark.django_db
@pytest.mark.parametrize("policy", ["", "company", "POOLED", None])
def test_an_unknown_payout_policy_is_refused_and_changes_nothing(policy):
    owner = OwnerFactory(partner__payout_policy=PayoutPolicy.INDIVIDUAL)

    with pytest.raises(ApplicationError, match="Choose how staff bonuses are paid") as caught:
        services.partner_set_payout_policy(partner=owner.partner, policy=policy, actor=owner.user)

    assert caught.value.code == "invalid_policy"
    assert Partner.objects.get(pk=owner.partner_id).payout_policy == PayoutPolicy.INDIVIDUAL
