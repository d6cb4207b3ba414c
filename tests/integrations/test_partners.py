"""Partners through the API: PUT /partners/by-external-id/<id>/ creates or updates a partner with the back office's
checks (no second partner with one legal id, a distributor's client only its dealers), and /partners/,
/partners/<id>/ read what the caller sees, with filters and pinned query counts."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from partners.constants import PartnerKind, PartnerStatus, PayoutPolicy
from partners.models import Partner, PartnerStatusChange
from tests.integrations.factories import ApiClientFactory, issue_key
from tests.integrations.helpers import problem
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    RegionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PARTNERS = "/api/v1/partners/"


def upsert_url(external_id: str) -> str:
    return f"{PARTNERS}by-external-id/{external_id}/"


@pytest.fixture
def north():
    return RegionFactory(code="north", name="North")


@pytest.fixture
def body(north):
    """A dealer's details as a CRM sends them."""
    return {"name": "Northwater Heating Ltd", "legal_id": "de811234567", "kind": "dealer", "region": "north"}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# Create and update ---------------------------------------------------------------------------------------------------


def test_a_crm_creates_a_partner_by_its_external_id(machine, body, north):
    http, _ = machine(scopes=["partners:write"])
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR, external_id="CRM-D-1", legal_id="DE100")
    manager = AccountManagerFactory(email="anna.berg@manufacturer.example")
    body |= {"parent": "CRM-D-1", "status": "active", "account_manager": "Anna.Berg@manufacturer.example",
             "payout_policy": "pooled"}  # fmt: skip

    response = http.put(upsert_url("CRM-P-1"), body, format="json")

    assert response.status_code == 201, response.content
    partner = Partner.objects.get(external_id="CRM-P-1")
    assert response["Location"] == f"/api/v1/partners/{partner.pk}/"
    data = response.json()
    assert data == {
        "id": partner.pk, "external_id": "CRM-P-1", "name": "Northwater Heating Ltd", "legal_id": "DE811234567",
        "kind": "dealer", "region": "north",
        "parent": {"id": distributor.pk, "external_id": "CRM-D-1", "legal_id": "DE100", "name": distributor.name},
        "status": "active", "account_manager": "anna.berg@manufacturer.example", "payout_policy": "pooled",
        "joined_on": timezone.localdate().isoformat(), "created_at": data["created_at"],
        "updated_at": data["updated_at"],
    }  # fmt: skip
    assert (partner.region, partner.parent, partner.account_manager) == (north, distributor, manager)
    assert partner.payout_policy == PayoutPolicy.POOLED


def test_a_new_partner_is_a_prospect_without_parent_unless_told(machine, body):
    http, _ = machine(scopes=["partners:write"])

    data = http.put(upsert_url("CRM-P-1"), body, format="json").json()

    assert (data["status"], data["parent"], data["account_manager"], data["joined_on"]) == (
        "prospect", None, None, None
    )  # fmt: skip
    assert data["payout_policy"] == "individual"


def test_the_parent_may_be_named_by_its_legal_id(machine, body):
    http, _ = machine(scopes=["partners:write"])
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR, legal_id="DE200")

    response = http.put(upsert_url("CRM-P-1"), body | {"parent": "de200"}, format="json")

    assert response.json()["parent"]["id"] == distributor.pk


def test_the_same_external_id_updates_the_partner_and_records_its_status_move(machine, body):
    http, client = machine(scopes=["partners:write"])
    http.put(upsert_url("CRM-P-1"), body, format="json")

    response = http.put(upsert_url("CRM-P-1"), body | {"name": "Northwater GmbH", "status": "active"}, format="json")

    assert response.status_code == 200, response.content
    assert "Location" not in response
    partner = Partner.objects.get()
    assert (partner.name, partner.status, partner.joined_on) == (
        "Northwater GmbH", PartnerStatus.ACTIVE, timezone.localdate()
    )  # fmt: skip
    move = PartnerStatusChange.objects.get(partner=partner)
    assert (move.from_status, move.to_status, move.actor) == ("prospect", "active", client.created_by)
    assert move.reason == f"Set through the API by {client.name}"


def test_the_same_details_again_change_nothing(machine, body):
    http, _ = machine(scopes=["partners:write"])
    first = http.put(upsert_url("CRM-P-1"), body | {"status": "active"}, format="json")

    again = http.put(upsert_url("CRM-P-1"), body | {"status": "active"}, format="json")

    assert again.status_code == 200
    assert again.json() == first.json()  # updated_at included
    assert Partner.objects.count() == 1
    assert not PartnerStatusChange.objects.exists()


def test_a_field_left_out_keeps_its_value_and_null_removes_the_parent(machine, body):
    http, _ = machine(scopes=["partners:write"])
    PartnerFactory(kind=PartnerKind.DISTRIBUTOR, external_id="CRM-D-1")
    http.put(upsert_url("CRM-P-1"), body | {"parent": "CRM-D-1", "payout_policy": "pooled"}, format="json")

    kept = http.put(upsert_url("CRM-P-1"), body, format="json").json()
    removed = http.put(upsert_url("CRM-P-1"), body | {"parent": None}, format="json").json()

    assert (kept["parent"]["external_id"], kept["payout_policy"]) == ("CRM-D-1", "pooled")
    assert (removed["parent"], removed["payout_policy"]) == (None, "pooled")


def test_a_partner_from_the_back_office_is_taken_over_by_its_legal_id(machine, body):
    http, _ = machine(scopes=["partners:write"])
    existing = PartnerFactory(legal_id="DE811234567", name="Old name")

    response = http.put(upsert_url("CRM-P-1"), body | {"legal_id": " de811234567 "}, format="json")

    assert response.status_code == 200, response.content
    existing.refresh_from_db()
    assert (existing.external_id, existing.name) == ("CRM-P-1", "Northwater Heating Ltd")
    assert Partner.objects.count() == 1


def test_a_legal_id_of_a_partner_with_another_external_id_is_refused(machine, body):
    http, _ = machine(scopes=["partners:write"])
    PartnerFactory(legal_id="DE811234567", external_id="CRM-P-OLD", name="Northwater")

    created = http.put(upsert_url("CRM-P-NEW"), body, format="json")
    PartnerFactory(external_id="CRM-P-2", legal_id="DE999")
    renamed = http.put(upsert_url("CRM-P-2"), body | {"legal_id": "DE 811234567"}, format="json")

    for response in (created, renamed):
        assert problem(response, 422, "duplicate_legal_id")["errors"] == [
            {"field": "legal_id", "code": "duplicate_legal_id",
             "reason": response.json()["detail"]}
        ]  # fmt: skip
    assert not Partner.objects.filter(external_id="CRM-P-NEW").exists()
    assert Partner.objects.get(external_id="CRM-P-2").legal_id == "DE999"


def test_a_status_the_back_office_could_not_set_is_refused(machine, body):
    http, _ = machine(scopes=["partners:write"])
    closed = PartnerFactory(external_id="CRM-P-2", status=PartnerStatus.CLOSED, region__code="north")

    suspended_at_once = http.put(upsert_url("CRM-P-1"), body | {"status": "suspended"}, format="json")
    reopened = http.put(upsert_url("CRM-P-2"), body | {"legal_id": closed.legal_id, "status": "active"}, format="json")

    assert problem(suspended_at_once, 422, "bad_transition")["errors"][0]["field"] == "status"
    problem(reopened, 422, "bad_transition")
    assert not Partner.objects.filter(external_id="CRM-P-1").exists()
    closed.refresh_from_db()
    assert (closed.status, closed.name == body["name"]) == (PartnerStatus.CLOSED, False)  # nothing of it was kept


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"kind": "wholesaler"}, "kind", "invalid_choice"),
        ({"region": "atlantis"}, "region", "does_not_exist"),
        ({"status": "sleeping"}, "status", "invalid_choice"),
        ({"payout_policy": "monthly"}, "payout_policy", "invalid_choice"),
        ({"account_manager": "not-an-address"}, "account_manager", "invalid"),
        ({"account_manager": "nobody@manufacturer.example"}, "account_manager", "does_not_exist"),
        ({"parent": "CRM-D-NONE"}, "parent", "does_not_exist"),
        ({"name": "x" * 201}, "name", "max_length"),
        ({"legal_id": "x" * 41}, "legal_id", "max_length"),
        ({"name": ["Northwater"]}, "name", "invalid"),
        ({"name": ""}, "name", "blank"),
        ({"colour": "red"}, "colour", "unknown_field"),
    ],
)
def test_bad_input_is_400_with_the_field_and_changes_nothing(machine, body, change, field, code):
    http, _ = machine(scopes=["partners:write"])

    body = problem(http.put(upsert_url("CRM-P-1"), body | change, format="json"), 400, "invalid")

    assert [(error["field"], error["code"]) for error in body["errors"]] == [(field, code)]
    assert not Partner.objects.exists()


def test_missing_fields_malformed_json_and_a_bad_external_id_are_400(machine, body):
    http, _ = machine(scopes=["partners:write"])

    missing = http.put(upsert_url("CRM-P-1"), {"name": "Northwater"}, format="json")
    malformed = http.put(upsert_url("CRM-P-1"), data=b'{"name": ', content_type="application/json")
    too_long = http.put(upsert_url("x" * 81), body, format="json")
    spaced = http.put(upsert_url("%20CRM-P-1"), body, format="json")

    assert {error["field"] for error in problem(missing, 400, "invalid")["errors"]} == {"legal_id", "kind", "region"}
    problem(malformed, 400, "malformed")
    assert [error["field"] for error in problem(too_long, 400, "invalid")["errors"]] == ["external_id"]
    assert [error["field"] for error in problem(spaced, 400, "invalid")["errors"]] == ["external_id"]
    assert not Partner.objects.exists()


def test_a_staff_user_who_is_not_an_account_manager_cannot_be_one(machine, body):
    http, _ = machine(scopes=["partners:write"])
    UserFactory(email="sales.rep@dealer.example")

    body = problem(
        http.put(upsert_url("CRM-P-1"), body | {"account_manager": "sales.rep@dealer.example"}, format="json"),
        400, "invalid",
    )  # fmt: skip

    assert body["errors"][0]["field"] == "account_manager"


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_puts_of_a_new_partner_make_one_partner():
    secret = issue_key(ApiClientFactory(scopes=["partners:write"]))
    RegionFactory(code="north")
    body = {"name": "Northwater Heating Ltd", "legal_id": "DE811234567", "kind": "dealer", "region": "north"}
    answers, barrier = [], threading.Barrier(8)

    def send():
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        barrier.wait()
        try:
            answers.append(http.put(upsert_url("CRM-P-1"), body, format="json"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answer.status_code for answer in answers) == [200] * 7 + [201], [a.content for a in answers]
    assert Partner.objects.filter(external_id="CRM-P-1").count() == 1
    assert len({answer.json()["id"] for answer in answers}) == 1


# Who may ------------------------------------------------------------------------------------------------------------


def test_writing_needs_partners_write_and_reading_partners_read(machine, body):
    reader, _ = machine(scopes=["partners:read"])
    writer, _ = machine(scopes=["partners:write"])
    partner = PartnerFactory()

    problem(reader.put(upsert_url("CRM-P-1"), body, format="json"), 403, "missing_scope")
    problem(writer.get(PARTNERS), 403, "missing_scope")
    problem(writer.get(f"{PARTNERS}{partner.pk}/"), 403, "missing_scope")
    assert ids(reader.get(PARTNERS)) == [partner.pk]
    assert not Partner.objects.filter(external_id="CRM-P-1").exists()


def test_people_may_read_but_not_upsert(person_api, body):
    owner = OwnerFactory()

    problem(person_api(owner.user).put(upsert_url("CRM-P-1"), body, format="json"), 403, "forbidden")

    assert not Partner.objects.filter(external_id="CRM-P-1").exists()


def test_a_client_whose_manager_is_no_longer_a_program_manager_is_refused(machine, body):
    http, client = machine(scopes=["partners:write"])
    client.created_by.is_superuser, client.created_by.staff_role = False, ""
    client.created_by.save()

    problem(http.put(upsert_url("CRM-P-1"), body, format="json"), 403, "forbidden")

    assert not Partner.objects.exists()


# A distributor's client ---------------------------------------------------------------------------------------------


@pytest.fixture
def bound(machine):
    """A distributor's client (with its distributor and one of its dealers) and another distributor."""
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR, external_id="CRM-D-1", legal_id="DE100")
    dealer = PartnerFactory(parent=distributor, external_id="CRM-P-DEALER", region__code="north")
    other = PartnerFactory(kind=PartnerKind.DISTRIBUTOR, external_id="CRM-D-2", legal_id="DE200")
    stranger = PartnerFactory(parent=other, external_id="CRM-P-STRANGER", region__code="north")
    http, client = machine(scopes=["partners:write", "partners:read"], distributor=distributor)
    return {"http": http, "client": client, "distributor": distributor, "dealer": dealer, "other": other,
            "stranger": stranger}  # fmt: skip


def test_a_distributors_client_creates_and_updates_its_own_dealers(bound, body):
    http = bound["http"]

    created = http.put(upsert_url("CRM-P-1"), body | {"parent": "CRM-D-1"}, format="json")
    updated = http.put(
        upsert_url("CRM-P-DEALER"),
        body | {"legal_id": bound["dealer"].legal_id, "name": "Renamed", "parent": "DE100"},
        format="json",
    )

    assert created.status_code == 201, created.content
    assert Partner.objects.get(external_id="CRM-P-1").parent == bound["distributor"]
    assert updated.status_code == 200, updated.content
    assert Partner.objects.get(pk=bound["dealer"].pk).name == "Renamed"


def test_a_distributors_client_may_not_touch_other_partners(bound, body):
    http = bound["http"]

    no_parent = http.put(upsert_url("CRM-P-1"), body, format="json")
    other_parent = http.put(upsert_url("CRM-P-1"), body | {"parent": "CRM-D-2"}, format="json")
    orphaned = http.put(
        upsert_url("CRM-P-DEALER"), body | {"legal_id": bound["dealer"].legal_id, "parent": None}, format="json"
    )
    strangers = http.put(
        upsert_url("CRM-P-STRANGER"),
        body | {"legal_id": bound["stranger"].legal_id, "parent": "CRM-D-1"},
        format="json",
    )
    itself = http.put(
        upsert_url("CRM-D-1"), body | {"legal_id": "DE100", "kind": "distributor", "name": "Mine"}, format="json"
    )

    for response in (no_parent, orphaned, strangers, itself):
        assert problem(response, 403, "forbidden")["errors"][0]["field"] == "parent"
    # Another distributor is unknown to it, as anything it may not see.
    assert problem(other_parent, 400, "invalid")["errors"][0] == {
        "field": "parent", "code": "does_not_exist",
        "reason": "No distributor has the external id or legal id “CRM-D-2”.",
    }  # fmt: skip
    assert not Partner.objects.filter(external_id="CRM-P-1").exists()
    assert Partner.objects.get(pk=bound["dealer"].pk).parent == bound["distributor"]
    assert Partner.objects.get(pk=bound["stranger"].pk).parent == bound["other"]
    assert Partner.objects.get(pk=bound["distributor"].pk).name != "Mine"


def test_a_distributors_client_reads_its_distributor_and_its_dealers_only(bound):
    http = bound["http"]

    listed = ids(http.get(PARTNERS))

    assert sorted(listed) == sorted([bound["distributor"].pk, bound["dealer"].pk])
    problem(http.get(f"{PARTNERS}{bound['stranger'].pk}/"), 404, "not_found")


# Reading ------------------------------------------------------------------------------------------------------------


def test_a_client_reads_every_partner_newest_first_page_by_page(machine):
    http, _ = machine(scopes=["partners:read"])
    partners = PartnerFactory.create_batch(5)

    first = http.get(PARTNERS, {"limit": 3})
    second = http.get(first.json()["next"])

    assert ids(first) == [p.pk for p in reversed(partners)][:3]
    assert ids(second) == [p.pk for p in reversed(partners)][3:]
    assert second.json()["next"] is None


def test_the_partner_list_filters(machine):
    http, _ = machine(scopes=["partners:read"])
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR, name="Big Distribution AG", region__code="south")
    dealer = PartnerFactory(name="Northwater Heating Ltd", legal_id="DE811", parent=distributor,
                            external_id="CRM-P-1", region__code="north", status=PartnerStatus.SUSPENDED)  # fmt: skip
    old = PartnerFactory(name="Old Heating", region__code="north")
    Partner.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()

    assert ids(http.get(PARTNERS, {"q": "heating north"})) == [dealer.pk]
    assert ids(http.get(PARTNERS, {"q": "de811"})) == [dealer.pk]
    assert ids(http.get(PARTNERS, {"kind": "distributor"})) == [distributor.pk]
    assert ids(http.get(PARTNERS, {"region": "north"})) == [old.pk, dealer.pk]
    assert ids(http.get(PARTNERS, {"status": "suspended"})) == [dealer.pk]
    assert ids(http.get(PARTNERS, {"parent": distributor.pk})) == [dealer.pk]
    assert ids(http.get(PARTNERS, {"external_id": "CRM-P-1"})) == [dealer.pk]
    assert ids(http.get(PARTNERS, {"updated_since": since})) == [dealer.pk, distributor.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "wholesaler"}, "kind"),
        ({"status": "sleeping"}, "status"),
        ({"parent": "1.5"}, "parent"),
        ({"parent": "99999999999999999999999"}, "parent"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"q": "x" * 101}, "q"),
        ({"limit": "many"}, None),
    ],
)
def test_a_bad_filter_is_400_with_its_field(machine, params, field):
    http, _ = machine(scopes=["partners:read"])
    PartnerFactory()

    response = http.get(PARTNERS, params)

    if field is None:  # REST framework's pages fall back to the default size
        assert response.status_code == 200
    else:
        assert [error["field"] for error in problem(response, 400, "invalid")["errors"]] == [field]


def test_one_partner_by_id_and_any_other_id_is_404(machine):
    http, _ = machine(scopes=["partners:read"])
    partner = PartnerFactory(external_id="CRM-P-1")

    response = http.get(f"{PARTNERS}{partner.pk}/")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["external_id"]) == (partner.pk, "CRM-P-1")
    problem(http.get(f"{PARTNERS}{partner.pk + 1000}/"), 404, "not_found")
    problem(http.get(f"{PARTNERS}99999999999999999999999/"), 404, "not_found")


@pytest.mark.parametrize("factory", [OwnerFactory, MemberFactory])
def test_a_person_sees_their_own_partner_only(person_api, factory):
    me = factory()
    other = PartnerFactory()
    http = person_api(me.user)

    assert ids(http.get(PARTNERS)) == [me.partner_id]
    assert http.get(f"{PARTNERS}{me.partner_id}/").status_code == 200
    problem(http.get(f"{PARTNERS}{other.pk}/"), 404, "not_found")


def test_an_account_manager_sees_their_portfolio(person_api):
    manager = AccountManagerFactory()
    mine = PartnerFactory(account_manager=manager)
    other = PartnerFactory()
    http = person_api(manager)

    assert ids(http.get(PARTNERS)) == [mine.pk]
    problem(http.get(f"{PARTNERS}{other.pk}/"), 404, "not_found")


@pytest.mark.parametrize("rows", [3, 12])
def test_the_partner_list_costs_the_same_queries_for_any_number_of_rows(machine, django_assert_num_queries, rows):
    http, _ = machine(scopes=["partners:read"])
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    for _ in range(rows - 1):
        PartnerFactory(parent=distributor, account_manager=AccountManagerFactory())
    http.get(PARTNERS)  # the key's first use is recorded once

    with django_assert_num_queries(2):  # the key with its client, the page
        response = http.get(PARTNERS)

    assert len(ids(response)) == rows


@pytest.mark.parametrize("rows", [3, 12])
def test_a_persons_partner_list_costs_the_same_queries(person_api, django_assert_num_queries, rows):
    manager = AccountManagerFactory()
    PartnerFactory.create_batch(rows, account_manager=manager)
    http = person_api(manager)
    http.get(PARTNERS)

    with django_assert_num_queries(4):  # the token with its user, the membership, the programs, the page
        response = http.get(PARTNERS)

    assert len(ids(response)) == rows
