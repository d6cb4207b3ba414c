from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from partners.constants import (
    CURRENT_MEMBER_STATUSES,
    DEFAULT_ROLES,
    Channel,
    MemberStatus,
    PartnerKind,
    PartnerStatus,
    PayoutPolicy,
    StaffRole,
)
from partners.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET, demo_logins, legal_id, plan_block, seed_demo
from partners.models import Invitation, Member, MemberStatusChange, Partner, PartnerStatusChange, Region, User
from partners.security import totp_code

pytestmark = pytest.mark.django_db

TABLES = (Region, Partner, PartnerStatusChange, User, EmailAddress, Member, MemberStatusChange, Invitation)


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


@pytest.fixture
def seeded():
    """The channel alone (the command also adds the program: tests/demo/test_program.py)."""
    seed_demo()


def test_scale_one_is_sixty_partners_and_three_hundred_members_in_six_regions(seeded):
    assert Partner.objects.count() == 60
    assert Member.objects.count() == 300
    assert Region.objects.count() == 6
    assert 280 <= User.objects.filter(staff_role="").count() <= 300
    assert User.objects.filter(staff_role=StaffRole.PROGRAM_MANAGER, is_staff=True).count() == 2
    assert User.objects.filter(staff_role=StaffRole.ACCOUNT_MANAGER).count() == 4
    assert Region.objects.annotate(n=Count("partners")).filter(n=10).count() == 6


def test_regions_have_their_time_zones_and_germany_asks_for_marketing_consent_first(seeded):
    regions = dict(Region.objects.values_list("code", "time_zone"))
    assert regions["uk-ie"] == "Europe/London" and regions["pl"] == "Europe/Warsaw"
    assert set(Region.objects.filter(marketing_consent="opt_in").values_list("code", flat=True)) == {"de"}


def test_every_partner_kind_status_and_payout_policy_is_present(seeded):
    assert set(Partner.objects.values_list("kind", flat=True)) == set(PartnerKind.values)
    assert set(Partner.objects.values_list("status", flat=True)) == set(PartnerStatus.values)
    assert set(Partner.objects.values_list("payout_policy", flat=True)) == set(PayoutPolicy.values)
    assert Partner.objects.filter(status=PartnerStatus.ACTIVE).count() == 45


def test_dealers_buy_through_a_distributor_of_their_own_region(seeded):
    children = Partner.objects.exclude(parent=None).select_related("parent")
    assert children.filter(kind=PartnerKind.DEALER).count() >= 8
    assert all(p.parent.kind == PartnerKind.DISTRIBUTOR and p.parent.region_id == p.region_id for p in children)


def test_partners_that_are_not_prospects_joined_and_have_a_status_history(seeded):
    for partner in Partner.objects.exclude(status=PartnerStatus.PROSPECT).annotate(moves=Count("status_changes")):
        assert partner.joined_on is not None
        assert partner.moves == (1 if partner.status == PartnerStatus.ACTIVE else 2)
    assert not Partner.objects.filter(status=PartnerStatus.PROSPECT).exclude(joined_on=None).exists()


def test_every_partner_but_some_prospects_has_an_account_manager(seeded):
    unassigned = Partner.objects.filter(account_manager=None)
    assert set(unassigned.values_list("status", flat=True)) <= {PartnerStatus.PROSPECT}
    per_manager = User.objects.filter(staff_role=StaffRole.ACCOUNT_MANAGER).annotate(n=Count("managed_partners"))
    assert all(manager.n >= 5 for manager in per_manager)


def test_every_role_and_member_status_is_present(seeded):
    assert set(Member.objects.values_list("role__code", flat=True)) == {code for code, _, _ in DEFAULT_ROLES}
    assert set(Member.objects.values_list("status", flat=True)) == set(MemberStatus.values)
    by_status = dict(Member.objects.values_list("status").annotate(n=Count("id")))
    assert by_status[MemberStatus.ACTIVE] > 200
    assert by_status[MemberStatus.INVITED] >= 10
    assert by_status[MemberStatus.PENDING_APPROVAL] >= 5
    assert by_status[MemberStatus.LEFT] >= 15


def test_people_who_joined_have_phones_languages_and_preferred_channels(seeded):
    joined = Member.objects.exclude(joined_at=None)
    assert joined.exclude(phone="").count() > 0.8 * joined.count()
    assert set(joined.values_list("language", flat=True)) == {"en", "de", "fr", "pl"}
    assert set(joined.values_list("preferred_channel", flat=True)) == set(Channel.values)
    assert not joined.filter(user__full_name="").exists()


def test_every_invited_member_has_a_live_invitation_and_no_password(seeded):
    invited = Member.objects.filter(status=MemberStatus.INVITED).select_related("user").prefetch_related("invitations")
    assert invited
    for member in invited:
        assert [i.is_usable for i in member.invitations.all()] == [True]
        assert not member.user.has_usable_password()
        assert not EmailAddress.objects.filter(user=member.user).exists()


def test_people_who_signed_up_share_one_password_hash_and_a_verified_primary_address(seeded):
    signed_up = User.objects.exclude(password="!")
    assert len(set(signed_up.values_list("password", flat=True))) == 1
    assert EmailAddress.objects.filter(verified=True, primary=True).count() == signed_up.count()


def test_some_people_left_one_partner_for_another_and_none_has_two_current_memberships(seeded):
    current = Q(memberships__status__in=CURRENT_MEMBER_STATUSES)
    people = User.objects.annotate(current=Count("memberships", filter=current), total=Count("memberships"))
    assert not people.filter(current__gt=1).exists()
    movers = people.filter(current=1, total=2)
    assert movers.count() == 6
    for mover in movers:
        old, new = sorted(mover.memberships.all(), key=lambda m: m.created_at)
        assert old.status == MemberStatus.LEFT and old.partner_id != new.partner_id
        assert old.left_at < new.created_at


def test_demo_logins_are_one_per_kind_of_user_at_one_partner_of_the_demo_account_manager(seeded):
    logins = dict(demo_logins())
    assert list(logins) == ["Program manager", "Account manager", "Partner owner", "Sales rep", "Engineer", "Foreman"]
    assert User.objects.get(email=logins["Program manager"]).is_program_manager
    account_manager = User.objects.get(email=logins["Account manager"])
    assert account_manager.is_account_manager
    members = Member.objects.select_related("role", "partner")
    staff = {who: members.get(user__email=logins[who]) for who in list(logins)[2:]}
    assert {who: m.role.code for who, m in staff.items()} == {
        "Partner owner": "owner",
        "Sales rep": "sales",
        "Engineer": "engineer",
        "Foreman": "foreman",
    }
    assert {m.status for m in staff.values()} == {MemberStatus.ACTIVE}
    assert len({m.partner_id for m in staff.values()}) == 1
    partner = staff["Partner owner"].partner
    assert partner.status == PartnerStatus.ACTIVE
    assert partner.account_manager == account_manager
    # the team page has something to approve and invitations to resend
    assert partner.members.filter(status=MemberStatus.PENDING_APPROVAL).count() == 2
    assert partner.members.filter(status=MemberStatus.INVITED).count() == 2


@pytest.mark.parametrize(("who", "email"), demo_logins())
def test_each_demo_login_signs_in_through_allauth(seeded, client, who, email):
    response = client.post(reverse("account_login"), {"login": email, "password": DEMO_PASSWORD})
    if who in ("Program manager", "Account manager"):  # staff also type the demo authenticator app's code
        assert response["Location"] == reverse("mfa_authenticate")
        response = client.post(reverse("mfa_authenticate"), {"code": totp_code(DEMO_TOTP_SECRET)})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(User.objects.get(email=email).pk)


def test_a_second_run_of_the_channel_writes_nothing(seeded, django_assert_num_queries):
    before = row_counts()

    # The command's second run (program included) is tests/demo/test_program.py's.
    with django_assert_num_queries(1):
        report = seed_demo()

    assert report.nothing_to_do
    assert row_counts() == before


def test_dry_run_writes_nothing_and_says_what_it_would_create():
    before = row_counts()
    out = StringIO()

    call_command("seed_demo", "--dry-run", stdout=out)

    assert row_counts() == before
    assert "would create" in out.getvalue()
    assert "60 partners" in out.getvalue()
    assert "300 members" in out.getvalue()
    assert "Nothing was written." in out.getvalue()


def test_scale_two_doubles_partners_and_members_and_grows_the_flagship_team():
    report = seed_demo(scale=2)

    assert report.blocks_written == 2
    assert Partner.objects.count() == 120
    assert Member.objects.count() == 600
    assert Partner.objects.get(legal_id=legal_id(0, 0)).members.count() == 24 + 6


def test_a_larger_scale_adds_only_the_missing_blocks(seeded):
    first = dict(Partner.objects.values_list("legal_id", "name"))

    report = seed_demo(scale=3)

    assert report.blocks_written == 2
    assert Partner.objects.count() == 180
    assert Member.objects.count() == 900
    assert dict(Partner.objects.filter(legal_id__in=first).values_list("legal_id", "name")) == first


def test_the_same_block_is_the_same_companies_and_people_every_time():
    now = timezone.now()
    one, two = plan_block(5, now=now), plan_block(5, now=now)

    def summary(plan):
        return (
            [(p.legal_id, p.name, p.status) for p in plan.partners],
            [(u.email, u.full_name) for u in plan.users],
            [(m.user, m.partner, m.role, m.status) for m in plan.members],
        )

    assert summary(one) == summary(two)


def test_scale_below_one_is_refused():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("seed_demo", "--scale", "0")
    assert Partner.objects.count() == 0
