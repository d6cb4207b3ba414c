"""Referrals through the API (loyalty.api.referrals): members read theirs, owners their team's, a CRM its partners'
and reports a deal won, which converts the referral and pays the referrer once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.constants import ReferralStatus
from loyalty.models import PointsAccount, Referral, ReferralEvent
from loyalty.services import referrals as services
from partners.constants import PartnerKind
from tests.integrations.helpers import problem
from tests.loyalty.factories import ProgramFactory
from tests.loyalty.factories_referrals import ReferralFactory, referral_rule
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory

pytestmark = pytest.mark.django_db

REFERRALS = "/api/v1/referrals/"


def referral_url(referral) -> str:
    return f"{REFERRALS}{referral.pk}/"


def conversion_url(referral) -> str:
    return f"{REFERRALS}{referral.pk}/conversion/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def points_of(program, member) -> int:
    account = PointsAccount.objects.filter(program=program, member=member).first()
    return account.available if account else 0


@pytest.fixture
def program():
    """People's API calls act in it (the first active program); a converted referral pays its referrer 500."""
    program = ProgramFactory()
    referral_rule(program, points=500)
    return program


@pytest.fixture
def crm(program, machine):
    http, _client = machine(program=program, scopes=["referrals:write"])
    return http


# Reading -----------------------------------------------------------------------------------------------------------


def test_members_see_their_own_owners_their_teams_clients_their_partners(program, person_api, crm):
    owner = OwnerFactory()
    rep, colleague = MemberFactory(partner=owner.partner), MemberFactory(partner=owner.partner)
    mine = ReferralFactory(program=program, member=rep)
    theirs = ReferralFactory(program=program, member=colleague)
    strangers = ReferralFactory(program=program)
    ReferralFactory(program=ProgramFactory(), member=rep)  # another program's

    assert ids(person_api(rep.user).get(REFERRALS)) == [mine.pk]
    assert ids(person_api(owner.user).get(REFERRALS)) == [theirs.pk, mine.pk]
    assert ids(crm.get(REFERRALS)) == [strangers.pk, theirs.pk, mine.pk]


def test_a_distributors_client_sees_its_dealers_referrals_only(program, machine):
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    ours = ReferralFactory(program=program, member=MemberFactory(partner=PartnerFactory(parent=distributor)))
    other = ReferralFactory(program=program, status=ReferralStatus.QUALIFIED)
    http, _ = machine(program=program, distributor=distributor, scopes=["referrals:write"])

    assert ids(http.get(REFERRALS)) == [ours.pk]
    problem(http.get(referral_url(other)), 404, "not_found")
    problem(http.post(conversion_url(other), {}, format="json"), 404, "not_found")
    other.refresh_from_db()
    assert other.status == ReferralStatus.QUALIFIED


def test_a_duplicate_says_when_its_prospect_was_first_referred_and_only_clients_learn_which(program, person_api, crm):
    first = ReferralFactory(program=program, company_id="DE1")
    member = MemberFactory()
    duplicate = ReferralFactory(program=program, member=member, company_id="DE1", duplicate_of=first)

    row = crm.get(REFERRALS).json()["results"][0]
    own = person_api(member.user).get(REFERRALS).json()["results"][0]

    assert row | {"created_at": "", "first_referred_at": ""} == {
        "id": duplicate.pk, "status": "submitted", "company_name": duplicate.company_name, "company_id": "DE1",
        "contact_name": duplicate.contact_name, "contact_email": duplicate.contact_email, "contact_phone": "",
        "need": "Water softeners for twelve hotels", "member": member.pk, "member_name": member.user.full_name,
        "partner": member.partner_id, "duplicate_of": first.pk, "first_referred_at": "", "existing_partner": None,
        "deal_amount": None, "reason": "", "created_at": "", "decided_at": None,
    }  # fmt: skip
    assert row["first_referred_at"] is not None
    assert own == row | {"duplicate_of": None}


def test_the_list_filters_by_status_member_partner_and_time(program, crm):
    first, second = MemberFactory(), MemberFactory()
    old = ReferralFactory(program=program, member=first)
    qualified = ReferralFactory(program=program, member=second, status=ReferralStatus.QUALIFIED)
    Referral.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()

    assert ids(crm.get(REFERRALS, {"status": "qualified"})) == [qualified.pk]
    assert ids(crm.get(REFERRALS, {"member": first.pk})) == [old.pk]
    assert ids(crm.get(REFERRALS, {"partner": second.partner_id})) == [qualified.pk]
    assert ids(crm.get(REFERRALS, {"submitted_since": since})) == [qualified.pk]
    for bad in ({"status": "won"}, {"member": "x"}, {"submitted_since": "monday"}):
        problem(crm.get(REFERRALS, bad), 400, "invalid")


@pytest.mark.parametrize("rows", [3, 12])
def test_the_list_costs_the_same_queries_for_3_or_12_referrals(
    program, crm, person_api, django_assert_num_queries, rows
):
    owner = OwnerFactory()
    for n in range(rows):
        ReferralFactory(program=program, member=owner if n % 2 else MemberFactory(partner=owner.partner))
    as_owner = person_api(owner.user)
    crm.get(REFERRALS), as_owner.get(REFERRALS)  # the keys' last use is recorded once a minute

    with django_assert_num_queries(2):  # the key, the page
        every = crm.get(REFERRALS)
    with django_assert_num_queries(4):  # the token, the membership, the programs, the page
        team = as_owner.get(REFERRALS)

    assert len(every.json()["results"]) == len(team.json()["results"]) == rows


def test_a_referral_shows_its_history(program, person_api):
    member = MemberFactory()
    referral = ReferralFactory(program=program, member=member)
    services.referral_transition(referral=referral, to=ReferralStatus.QUALIFIED, actor=ProgramManagerFactory())

    own = person_api(member.user).get(referral_url(referral)).json()

    assert own["status"] == "qualified"
    assert [(move["from_status"], move["to_status"], move["note"]) for move in own["history"]] == [
        ("submitted", "qualified", "Qualified")
    ]


def test_another_members_referral_or_another_programs_is_404(program, person_api):
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    colleagues = ReferralFactory(program=program, member=MemberFactory(partner=owner.partner))
    strangers = ReferralFactory(program=program)
    elsewhere = ReferralFactory(program=ProgramFactory(), member=rep)

    problem(person_api(rep.user).get(referral_url(colleagues)), 404, "not_found")
    problem(person_api(owner.user).get(referral_url(strangers)), 404, "not_found")
    problem(person_api(rep.user).get(referral_url(elsewhere)), 404, "not_found")
    assert person_api(owner.user).get(referral_url(colleagues)).status_code == 200


def test_referrals_need_referrals_write(program, machine):
    http, _ = machine(program=program, scopes=["partners:read", "claims:read"])
    referral = ReferralFactory(program=program, status=ReferralStatus.QUALIFIED)

    problem(http.get(REFERRALS), 403, "missing_scope")
    problem(http.get(referral_url(referral)), 403, "missing_scope")
    problem(http.post(conversion_url(referral), {}, format="json"), 403, "missing_scope")
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.QUALIFIED


# Converting --------------------------------------------------------------------------------------------------------


def test_the_crm_reports_a_deal_won_and_the_referrer_is_paid_once(program, machine):
    http, client = machine(program=program, scopes=["referrals:write"])
    member = MemberFactory()
    referral = ReferralFactory(program=program, member=member, status=ReferralStatus.QUALIFIED)

    response = http.post(conversion_url(referral), {"deal_amount": "48500.00"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() | {"decided_at": ""} == {
        "id": referral.pk, "status": "converted", "deal_amount": "48500.00", "existing_partner": None, "decided_at": "",
    }  # fmt: skip
    referral.refresh_from_db()
    assert (referral.status, referral.deal_amount, referral.decided_by) == (
        ReferralStatus.CONVERTED, Decimal("48500.00"), client.created_by,
    )  # fmt: skip
    assert points_of(program, member) == 500


def test_a_referral_that_waits_is_qualified_then_converted(program, crm):
    member = MemberFactory()
    referral = ReferralFactory(program=program, member=member)

    response = crm.post(conversion_url(referral), {}, format="json")

    assert response.json()["status"] == "converted"
    assert list(referral.events.values_list("from_status", "to_status")) == [
        ("submitted", "qualified"), ("qualified", "converted"),
    ]  # fmt: skip
    assert points_of(program, member) == 500


@pytest.mark.parametrize("status", [ReferralStatus.CONVERTED, ReferralStatus.REJECTED])
def test_a_decided_referral_is_refused_and_changes_nothing(program, crm, status):
    referral = ReferralFactory(program=program, status=status)

    problem(crm.post(conversion_url(referral), {"deal_amount": "10.00"}, format="json"), 422, "bad_transition")

    referral.refresh_from_db()
    assert (referral.status, referral.deal_amount, ReferralEvent.objects.count()) == (status, None, 0)
    assert points_of(program, referral.member) == 0


def test_a_prospect_converts_once_and_the_refused_referral_stays_as_it_was(program, crm):
    first = ReferralFactory(program=program, company_id="DE42", status=ReferralStatus.QUALIFIED)
    second = ReferralFactory(program=program, company_id="DE42", duplicate_of=first)
    assert crm.post(conversion_url(first), {}, format="json").status_code == 200

    problem(crm.post(conversion_url(second), {}, format="json"), 422, "already_converted")

    second.refresh_from_db()
    assert second.status == ReferralStatus.SUBMITTED  # not left qualified: the whole conversion was undone
    assert not second.events.exists()
    assert points_of(program, second.member) == 0


def test_a_repeated_conversion_with_one_key_is_replayed(program, crm):
    referral = ReferralFactory(program=program, status=ReferralStatus.QUALIFIED)

    first = crm.post(conversion_url(referral), {"deal_amount": "100"}, format="json", HTTP_IDEMPOTENCY_KEY="won-1")
    again = crm.post(conversion_url(referral), {"deal_amount": "100"}, format="json", HTTP_IDEMPOTENCY_KEY="won-1")

    assert (first.status_code, again.status_code, again.content) == (200, 200, first.content)
    assert points_of(program, referral.member) == 500


@pytest.mark.parametrize(
    "body",
    [
        {"deal_amount": "lots"},
        {"deal_amount": "-1.00"},
        {"deal_amount": "10.001"},
        {"deal_amount": "1234567890123.00"},
        {"deal_amount": [1]},
        {"amount": "100"},
    ],
)
def test_bad_conversions_are_400_and_change_nothing(program, crm, body):
    referral = ReferralFactory(program=program, status=ReferralStatus.QUALIFIED)

    problem(crm.post(conversion_url(referral), body, format="json"), 400, "invalid")

    referral.refresh_from_db()
    assert (referral.status, referral.deal_amount) == (ReferralStatus.QUALIFIED, None)


def test_people_do_not_convert_referrals(program, person_api):
    owner = OwnerFactory()
    referral = ReferralFactory(program=program, member=owner, status=ReferralStatus.QUALIFIED)

    problem(person_api(owner.user).post(conversion_url(referral), {}, format="json"), 403, "forbidden")

    referral.refresh_from_db()
    assert referral.status == ReferralStatus.QUALIFIED


def test_a_client_whose_manager_is_no_longer_one_converts_nothing(program, machine):
    http, client = machine(program=program, scopes=["referrals:write"])
    referral = ReferralFactory(program=program, status=ReferralStatus.QUALIFIED)
    client.created_by.staff_role = ""
    client.created_by.is_superuser = False
    client.created_by.save()

    problem(http.post(conversion_url(referral), {}, format="json"), 403, "forbidden")

    referral.refresh_from_db()
    assert referral.status == ReferralStatus.QUALIFIED
