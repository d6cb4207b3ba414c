"""Balances and statements through the API: /accounts/, /accounts/<id>/, /accounts/<id>/statement/ and
/members/<id>/balance/, each scoped as the member site is (a member their own, an owner also the company's and the
team's, a client its partners'), with pinned query counts."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from loyalty.services import ledger
from partners.constants import PartnerKind
from tests.integrations.helpers import problem
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, role

pytestmark = pytest.mark.django_db

ACCOUNTS = "/api/v1/accounts/"


def give(account, points, key, **fields):
    return ledger.earn(account=account, points=points, key=key, explanation=f"Gift {key}", **fields)


@pytest.fixture
def world(machine):
    """A client of a program; partner A (an owner, a rep, the company account) and partner B (a member), each with
    points; an account of the rep in another program."""
    http, client = machine(scopes=["balances:read"])
    program = client.program
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner, role=role("sales"))
    stranger = MemberFactory()
    accounts = {
        "owner": ledger.member_account(program=program, member=owner),
        "rep": ledger.member_account(program=program, member=rep),
        "company": ledger.partner_account(program=program, partner=owner.partner),
        "stranger": ledger.member_account(program=program, member=stranger),
    }
    for name, account in accounts.items():
        give(account, 100, f"gift:{name}")
    elsewhere = ledger.member_account(program=ProgramFactory(), member=rep)
    give(elsewhere, 999, "gift:elsewhere")
    return {"http": http, "client": client, "program": program, "owner": owner, "rep": rep, "stranger": stranger,
            "accounts": accounts, "elsewhere": elsewhere}  # fmt: skip


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_client_lists_every_account_of_its_program_with_balances(world):
    account = world["accounts"]["rep"]
    ledger.spend(account=account, points=30, key="spend:rep")
    soon = timezone.now() - timedelta(days=715)  # 24 months of validity end in about two weeks
    give(account, 50, "gift:old", earned_at=soon)
    give(account, 20, "gift:pending", available_at=timezone.now() + timedelta(days=5))

    response = world["http"].get(ACCOUNTS)

    assert ids(response) == {a.pk for a in world["accounts"].values()}
    row = next(r for r in response.json()["results"] if r["id"] == account.pk)
    first_date = row["expiring_soon"].pop("first_date")
    assert row == {
        "id": account.pk, "kind": "member", "member_id": world["rep"].pk, "partner_id": world["rep"].partner_id,
        "available": 120, "pending": 20, "lifetime_earned": 170, "redeemed": 30, "expired": 0,
        "expiring_soon": {"points": 50},
    }  # fmt: skip
    assert first_date > timezone.localdate().isoformat()
    company = next(r for r in response.json()["results"] if r["id"] == world["accounts"]["company"].pk)
    assert (company["kind"], company["member_id"], company["partner_id"]) == (
        "company", None, world["owner"].partner_id,
    )  # fmt: skip


def test_accounts_filter_by_kind_partner_and_member(world):
    http, accounts = world["http"], world["accounts"]
    partner = world["owner"].partner_id

    assert ids(http.get(ACCOUNTS, {"kind": "company"})) == {accounts["company"].pk}
    assert ids(http.get(ACCOUNTS, {"partner": partner})) == {accounts[n].pk for n in ("owner", "rep", "company")}
    assert ids(http.get(ACCOUNTS, {"member": world["stranger"].pk})) == {accounts["stranger"].pk}
    assert problem(http.get(ACCOUNTS, {"kind": "everyone"}), 400, "invalid")["errors"][0]["field"] == "kind"


def test_a_distributor_bound_client_sees_its_dealers_accounts_only(machine, world):
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    world["owner"].partner.parent = distributor
    world["owner"].partner.save(update_fields=["parent"])
    http, _ = machine(scopes=["balances:read"], program=world["program"], distributor=distributor)
    theirs, other = world["accounts"]["rep"], world["accounts"]["stranger"]

    assert ids(http.get(ACCOUNTS)) == {world["accounts"][n].pk for n in ("owner", "rep", "company")}
    assert http.get(f"{ACCOUNTS}{theirs.pk}/").status_code == 200
    problem(http.get(f"{ACCOUNTS}{other.pk}/"), 404, "not_found")
    problem(http.get(f"{ACCOUNTS}{other.pk}/statement/"), 404, "not_found")
    problem(http.get(f"/api/v1/members/{world['stranger'].pk}/balance/"), 404, "not_found")


def test_a_member_sees_their_own_account_only(person_api, world):
    http = person_api(world["rep"].user)
    accounts = world["accounts"]

    assert ids(http.get(ACCOUNTS, {"program": world["program"].slug})) == {accounts["rep"].pk}
    for name in ("owner", "company", "stranger"):
        problem(http.get(f"{ACCOUNTS}{accounts[name].pk}/", {"program": world["program"].slug}), 404, "not_found")
    problem(http.get(f"{ACCOUNTS}{world['elsewhere'].pk}/", {"program": world["program"].slug}), 404, "not_found")
    problem(http.get(f"/api/v1/members/{world['owner'].pk}/balance/"), 404, "not_found")


def test_an_owner_sees_the_company_account_and_their_teams(person_api, world):
    http = person_api(world["owner"].user)
    accounts = world["accounts"]
    query = {"program": world["program"].slug}

    assert ids(http.get(ACCOUNTS, query)) == {accounts[n].pk for n in ("owner", "rep", "company")}
    assert http.get(f"{ACCOUNTS}{accounts['company'].pk}/statement/", query).status_code == 200
    assert http.get(f"/api/v1/members/{world['rep'].pk}/balance/", query).json()["available"] == 100
    problem(http.get(f"{ACCOUNTS}{accounts['stranger'].pk}/", query), 404, "not_found")


def test_one_account_and_its_statement_newest_first(world):
    account = world["accounts"]["rep"]
    give(account, 5, "gift:later")
    ledger.spend(account=account, points=30, key="spend:rep", explanation="Espresso machine")
    http = world["http"]

    one = http.get(f"{ACCOUNTS}{account.pk}/")
    first = http.get(f"{ACCOUNTS}{account.pk}/statement/", {"limit": 2})
    second = http.get(first.json()["next"])

    assert one.json()["available"] == 75
    rows = first.json()["results"] + second.json()["results"]
    assert [(r["kind"], r["points"], r["explanation"]) for r in rows] == [
        ("spend", -30, "Espresso machine"), ("earn", 5, "Gift gift:later"), ("earn", 100, "Gift gift:rep"),
    ]  # fmt: skip
    assert set(rows[0]) == {"id", "kind", "points", "pending", "explanation", "created_at", "available_at",
                            "expires_at", "source"}  # fmt: skip
    assert second.json()["next"] is None


def test_a_members_balance_and_a_member_without_points_yet(world):
    http = world["http"]
    newcomer = MemberFactory(partner=world["owner"].partner)

    rep = http.get(f"/api/v1/members/{world['rep'].pk}/balance/").json()
    new = http.get(f"/api/v1/members/{newcomer.pk}/balance/").json()

    assert (rep["id"], rep["available"]) == (world["accounts"]["rep"].pk, 100)
    assert new == {
        "id": None, "kind": "member", "member_id": newcomer.pk, "partner_id": newcomer.partner_id, "available": 0,
        "pending": 0, "lifetime_earned": 0, "redeemed": 0, "expired": 0,
        "expiring_soon": {"points": 0, "first_date": None},
    }  # fmt: skip
    problem(http.get("/api/v1/members/987654/balance/"), 404, "not_found")


def test_a_client_without_balances_read_and_anonymous_callers_are_refused(machine, world):
    http, _ = machine(scopes=["events:write"], program=world["program"])
    account = world["accounts"]["rep"]

    for path in (ACCOUNTS, f"{ACCOUNTS}{account.pk}/", f"{ACCOUNTS}{account.pk}/statement/",
                 f"/api/v1/members/{world['rep'].pk}/balance/"):  # fmt: skip
        problem(http.get(path), 403, "missing_scope")
    problem(APIClient().get(ACCOUNTS), 401, "not_authenticated")


def test_bad_ids_limits_and_cursors_are_problems(world):
    http = world["http"]

    problem(http.get(f"{ACCOUNTS}0/"), 404, "not_found")
    problem(http.get(f"{ACCOUNTS}abc/"), 404, "not_found")
    problem(http.get(ACCOUNTS, {"cursor": "not-a-cursor"}), 404, "not_found")
    assert len(http.get(ACCOUNTS, {"limit": 1}).json()["results"]) == 1


@pytest.mark.parametrize("rows", [3, 12])
def test_the_account_list_costs_the_same_queries_for_3_or_12_accounts(
    machine, person_api, django_assert_num_queries, rows
):
    http, client = machine(scopes=["balances:read"])
    owner = OwnerFactory()
    for member in [owner, *MemberFactory.create_batch(rows - 2, partner=owner.partner)]:
        give(ledger.member_account(program=client.program, member=member), 10, f"gift:{member.pk}")
    give(ledger.partner_account(program=client.program, partner=owner.partner), 10, "gift:company")
    as_owner = person_api(owner.user)
    query = {"program": client.program.slug}
    http.get(ACCOUNTS), as_owner.get(ACCOUNTS, query)  # the keys' last use is recorded once a minute

    with django_assert_num_queries(2):  # the key, the page
        client_page = http.get(ACCOUNTS)
    with django_assert_num_queries(4):  # the token, the membership, the programs, the page
        owner_page = as_owner.get(ACCOUNTS, query)

    assert len(client_page.json()["results"]) == len(owner_page.json()["results"]) == rows


@pytest.mark.parametrize("rows", [3, 12])
def test_a_statement_costs_the_same_queries_for_3_or_12_entries(machine, django_assert_num_queries, rows):
    http, client = machine(scopes=["balances:read"])
    account = ledger.member_account(program=client.program, member=MemberFactory())
    for number in range(rows):
        give(account, 10, f"gift:{number}")
    path = f"{ACCOUNTS}{account.pk}/statement/"
    http.get(path)

    with django_assert_num_queries(3):  # the key, the account, the page
        response = http.get(path)

    assert len(response.json()["results"]) == rows
