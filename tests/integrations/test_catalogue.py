"""The rewards catalogue through the API: /rewards/ and /rewards/<id>/ as the member site shows them to a person (with
whether they can redeem each now and why not), or the program's offer for a client or staff; filters, visibility
and pinned query counts."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from loyalty.services import ledger
from partners.constants import PartnerKind
from rewards.constants import LimitPeriod, PaidBy, RewardKind
from tests.integrations.helpers import problem
from tests.loyalty.factories import ProductLineFactory, ProgramFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory, role
from tests.rewards.factories import MerchandiseFactory, RewardCategoryFactory, RewardFactory

pytestmark = pytest.mark.django_db

REWARDS = "/api/v1/rewards/"


def give(program, member, points):
    ledger.earn(account=ledger.member_account(program=program, member=member), points=points, key=f"gift:{member.pk}")


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def shop(machine):
    """A program's catalogue: rewards for everyone, one for engineers only, one negotiated for another partner, one
    inactive, one reserved for the certified, one out of stock, one paid by the company; a rep of a partner."""
    http, client = machine(scopes=["rewards:read"])
    program = client.program
    rep = MemberFactory(role=role("sales"))
    category = RewardCategoryFactory(slug="home", name="Home")
    line = ProductLineFactory(code="softeners", name="Softeners")
    rewards = {
        "Mug": RewardFactory(program=program, name="Mug", points_price=100, category=category),
        "Espresso machine": MerchandiseFactory(program=program, name="Espresso machine", points_price=1200,
                                               description="For the showroom", limit_per_member=1,
                                               limit_period=LimitPeriod.YEAR),
        "Drill": RewardFactory(program=program, name="Drill", points_price=300),
        "Negotiated": RewardFactory(program=program, name="Negotiated", points_price=50),
        "Retired": RewardFactory(program=program, name="Retired", points_price=10, is_active=False),
        "Masterclass": RewardFactory(program=program, name="Masterclass", points_price=400,
                                     requires_certification=line, kind=RewardKind.SESSION),
        "Sold out": MerchandiseFactory(program=program, name="Sold out", points_price=200, stock=0),
        "Showroom display": RewardFactory(program=program, name="Showroom display", points_price=150,
                                          paid_by=PaidBy.COMPANY),
        "Elsewhere": RewardFactory(program=ProgramFactory(), name="Elsewhere", points_price=1),
    }  # fmt: skip
    rewards["Drill"].allowed_roles.set([role("engineer")])
    rewards["Negotiated"].allowed_partners.set([PartnerFactory()])
    return {"http": http, "client": client, "program": program, "rep": rep, "rewards": rewards}


MEMBERS_CATALOGUE = ["Mug", "Showroom display", "Sold out", "Masterclass", "Espresso machine"]


def test_a_member_sees_their_catalogue_cheapest_first_with_what_they_can_redeem(person_api, shop):
    give(shop["program"], shop["rep"], 250)
    http = person_api(shop["rep"].user)

    response = http.get(REWARDS, {"program": shop["program"].slug})

    assert names(response) == MEMBERS_CATALOGUE
    rows = {row["name"]: row for row in response.json()["results"]}
    mug = rows["Mug"]
    assert mug == {
        "id": shop["rewards"]["Mug"].pk, "name": "Mug", "description": "", "kind": "experience",
        "category": {"slug": "home", "name": "Home"}, "points_price": 100, "paid_by": "member", "units_left": None,
        "needs_address": False, "image_url": None, "event_starts_at": None, "event_place": "",
        "available_until": None, "requires_certification": None, "limit_per_member": None, "limit_period": "month",
        "can_redeem": True, "reasons": [],
    }  # fmt: skip
    why = {name: [reason["code"] for reason in row["reasons"]] for name, row in rows.items()}
    assert why == {
        "Mug": [],
        "Showroom display": ["owner_only"],
        "Sold out": ["out_of_stock"],
        "Masterclass": ["certificate_required", "insufficient_points"],
        "Espresso machine": ["insufficient_points"],
    }
    assert rows["Masterclass"]["requires_certification"] == "softeners"
    assert rows["Espresso machine"]["reasons"][0]["detail"] == "Not enough points: 250 available."


def test_an_owner_can_redeem_what_the_company_account_pays(person_api, shop):
    owner = OwnerFactory(partner=shop["rep"].partner)
    ledger.earn(account=ledger.partner_account(program=shop["program"], partner=owner.partner), points=500, key="c")
    http = person_api(owner.user)

    rows = {r["name"]: r for r in http.get(REWARDS, {"program": shop["program"].slug}).json()["results"]}

    assert (rows["Showroom display"]["can_redeem"], rows["Showroom display"]["reasons"]) == (True, [])


def test_a_client_sees_the_programs_offer_or_a_members_catalogue(machine, shop):
    http = shop["http"]
    rep = shop["rep"]

    offer = http.get(REWARDS)
    theirs = http.get(REWARDS, {"member": rep.pk})

    assert names(offer) == ["Negotiated", "Mug", "Showroom display", "Sold out", "Drill", "Masterclass",
                            "Espresso machine"]  # fmt: skip
    assert {(row["can_redeem"], row["reasons"]) for row in offer.json()["results"]} == {(None, None)}
    assert names(theirs) == MEMBERS_CATALOGUE
    assert theirs.json()["results"][0]["reasons"] == [
        {"code": "insufficient_points", "detail": "Not enough points: 0 available."}
    ]


def test_a_distributor_bound_client_sees_only_its_partners_negotiated_rewards_and_members(machine, shop):
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    dealer = PartnerFactory(parent=distributor)
    own_negotiated = RewardFactory(program=shop["program"], name="Ours", points_price=60)
    own_negotiated.allowed_partners.set([dealer])
    http, _ = machine(scopes=["rewards:read"], program=shop["program"], distributor=distributor)

    bound = names(http.get(REWARDS))
    unbound = names(shop["http"].get(REWARDS))

    assert ("Ours" in bound, "Negotiated" in bound) == (True, False)
    assert ("Ours" in unbound, "Negotiated" in unbound) == (True, True)
    problem(http.get(REWARDS, {"member": shop["rep"].pk}), 404, "not_found")
    problem(http.get(f"{REWARDS}{shop['rewards']['Negotiated'].pk}/"), 404, "not_found")


def test_one_reward_with_what_is_left_of_the_members_limit(person_api, shop):
    give(shop["program"], shop["rep"], 5000)
    http = person_api(shop["rep"].user)
    query = {"program": shop["program"].slug}
    espresso = shop["rewards"]["Espresso machine"]

    body = http.get(f"{REWARDS}{espresso.pk}/", query).json()

    assert (body["name"], body["units_left"], body["needs_address"], body["limit_left"]) == (
        "Espresso machine", 20, True, 1,
    )  # fmt: skip
    assert (body["can_redeem"], body["reasons"]) == (True, [])
    for hidden in ("Drill", "Negotiated", "Retired", "Elsewhere"):
        problem(http.get(f"{REWARDS}{shop['rewards'][hidden].pk}/", query), 404, "not_found")


def test_the_programs_offer_has_no_limit_left_and_no_eligibility(shop):
    body = shop["http"].get(f"{REWARDS}{shop['rewards']['Drill'].pk}/").json()

    assert (body["name"], body["can_redeem"], body["reasons"], body["limit_left"]) == ("Drill", None, None, None)


def test_staff_signed_in_on_the_site_see_the_programs_offer(shop):
    http = APIClient()
    http.force_login(ProgramManagerFactory())

    assert "Drill" in names(http.get(REWARDS, {"program": shop["program"].slug}))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "merchandise"}, ["Sold out", "Espresso machine"]),
        ({"q": "SHOWROOM"}, ["Showroom display", "Espresso machine"]),
        ({"max_price": 200}, ["Mug", "Showroom display", "Sold out"]),
        ({"category": "home"}, ["Mug"]),
        ({"paid_by": "company"}, ["Showroom display"]),
        ({"q": "   "}, MEMBERS_CATALOGUE),
    ],
)
def test_the_catalogue_filters(person_api, shop, query, expected):
    http = person_api(shop["rep"].user)

    assert names(http.get(REWARDS, {"program": shop["program"].slug, **query})) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [({"kind": "yacht"}, "kind"), ({"max_price": "cheap"}, "max_price"), ({"member": "me"}, "member")],
)
def test_bad_filters_are_400(shop, query, field):
    body = problem(shop["http"].get(REWARDS, query), 400, "invalid")

    assert body["errors"][0]["field"] == field


def test_a_client_without_rewards_read_is_refused(machine, shop):
    http, _ = machine(scopes=["balances:read"], program=shop["program"])

    problem(http.get(REWARDS), 403, "missing_scope")
    problem(http.get(f"{REWARDS}{shop['rewards']['Mug'].pk}/"), 403, "missing_scope")


def test_rewards_outside_their_window_are_not_on_offer(shop):
    RewardFactory(program=shop["program"], name="Later", available_from=timezone.now() + timedelta(days=1))
    RewardFactory(program=shop["program"], name="Over", available_until=timezone.now() - timedelta(days=1))

    offered = names(shop["http"].get(REWARDS))

    assert "Later" not in offered and "Over" not in offered


@pytest.mark.parametrize("rows", [3, 12])
def test_the_catalogue_costs_the_same_queries_for_3_or_12_rewards(machine, person_api, django_assert_num_queries, rows):
    http, client = machine(scopes=["rewards:read"])
    member = MemberFactory()
    RewardFactory.create_batch(rows - 1, program=client.program)
    MerchandiseFactory(program=client.program)
    as_member = person_api(member.user)
    query = {"program": client.program.slug}
    http.get(REWARDS), as_member.get(REWARDS, query)  # the keys' last use is recorded once a minute

    with django_assert_num_queries(2):  # the key, the page
        offer = http.get(REWARDS)
    with django_assert_num_queries(6):  # the key, the member, their user's membership, the balance, tier, the page
        theirs = http.get(REWARDS, {"member": member.pk})
    with django_assert_num_queries(6):  # the token, the membership, the programs, the balance, tier, the page
        own = as_member.get(REWARDS, query)

    assert len(offer.json()["results"]) == len(theirs.json()["results"]) == len(own.json()["results"]) == rows
