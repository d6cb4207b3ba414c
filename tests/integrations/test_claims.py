"""Sales claims through the API (loyalty.api.claims): members read theirs, owners their team's, machine clients their
partners'; a staff client approves and rejects them as the program manager who registered it."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from loyalty.constants import ClaimFlag, ClaimStatus
from loyalty.models import ClaimEvent, IncentiveRule, PointsAccount, PointsEntry, SalesClaim
from loyalty.services import claims as services
from partners.constants import PartnerKind
from tests.integrations.helpers import problem
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory, role

pytestmark = pytest.mark.django_db

CLAIMS = "/api/v1/claims/"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
invoices = (f"INV-{n}" for n in itertools.count(1000))


def claim_url(claim) -> str:
    return f"{CLAIMS}{claim.pk}/"


def decision_url(claim) -> str:
    return f"{CLAIMS}{claim.pk}/decision/"


def submit(member, program, *, quantity="3", amount="900.00", colleagues=()):
    """A claim as the member site sends it (it waits for review: the program approves nothing automatically)."""
    return services.claim_submit(
        member=member, program=program, invoice_number=next(invoices), invoice_date=timezone.localdate(),
        document=SimpleUploadedFile("invoice.jpg", JPEG, content_type="image/jpeg"),
        lines=[(ProductFactory(), Decimal(quantity), Decimal(amount))], colleagues=list(colleagues),
    )  # fmt: skip


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def points_of(program, member) -> int:
    account = PointsAccount.objects.filter(program=program, member=member).first()
    return account.available if account else 0


@pytest.fixture
def program():
    """People's API calls act in it (the first active program); 10 points a unit; no claim approved at once."""
    program = ProgramFactory(claim_window_days=60, claim_auto_approve_below=Decimal("0.00"))
    RuleFactory(program=program)
    return program


@pytest.fixture
def staff_client(program, machine):
    http, _client = machine(program=program, scopes=["claims:read", "claims:decide"])
    return http


# Reading -----------------------------------------------------------------------------------------------------------


def test_members_see_theirs_and_those_naming_them_owners_their_teams_clients_their_partners(
    program, person_api, machine
):
    owner = OwnerFactory()
    rep, colleague = MemberFactory(partner=owner.partner), MemberFactory(partner=owner.partner)
    mine = submit(rep, program)
    naming_me = submit(colleague, program, colleagues=[rep])
    theirs = submit(colleague, program)
    strangers = submit(MemberFactory(), program)
    submit(rep, ProgramFactory(claim_auto_approve_below=Decimal("0.00")))  # another program's
    http, _ = machine(program=program, scopes=["claims:read"])

    assert ids(person_api(rep.user).get(CLAIMS)) == [naming_me.pk, mine.pk]
    assert ids(person_api(owner.user).get(CLAIMS)) == [theirs.pk, naming_me.pk, mine.pk]
    assert ids(http.get(CLAIMS)) == [strangers.pk, theirs.pk, naming_me.pk, mine.pk]


def test_a_distributors_client_sees_its_dealers_claims_only(program, machine):
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    ours = submit(MemberFactory(partner=PartnerFactory(parent=distributor)), program)
    other = submit(MemberFactory(), program)
    http, _ = machine(program=program, distributor=distributor, scopes=["claims:read", "claims:decide"])

    assert ids(http.get(CLAIMS)) == [ours.pk]
    problem(http.get(claim_url(other)), 404, "not_found")
    problem(http.post(decision_url(other), {"decision": "approve"}, format="json"), 404, "not_found")
    other.refresh_from_db()
    assert other.status == ClaimStatus.SUBMITTED


def test_a_row_shows_the_claim_and_its_flags_to_clients_only(program, person_api, staff_client):
    member = MemberFactory()
    claim = submit(member, program, quantity="4", amount="1840.00")
    SalesClaim.objects.filter(pk=claim.pk).update(flags=[ClaimFlag.UNUSUAL_QUANTITY])

    row = staff_client.get(CLAIMS).json()["results"][0]
    own = person_api(member.user).get(CLAIMS).json()["results"][0]

    assert row | {"created_at": ""} == {
        "id": claim.pk, "status": "submitted", "invoice_number": claim.invoice_number,
        "invoice_date": timezone.localdate().isoformat(), "total_amount": "1840.00", "member": member.pk,
        "member_name": member.user.full_name, "partner": member.partner_id, "flags": ["unusual_quantity"],
        "submissions": 1, "created_at": "", "decided_at": None, "rejection_reason": "", "rejection_text": "",
    }  # fmt: skip
    assert own == row | {"flags": []}


def test_the_list_filters_by_status_member_partner_and_submission_time(program, staff_client):
    first, second = MemberFactory(), MemberFactory()
    waiting = submit(first, program)
    rejected = submit(second, program)
    services.claim_reject(claim=rejected, actor=ProgramManagerFactory(), reason="unreadable")
    SalesClaim.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()

    assert ids(staff_client.get(CLAIMS, {"status": "rejected"})) == [rejected.pk]
    assert ids(staff_client.get(CLAIMS, {"member": first.pk})) == [waiting.pk]
    assert ids(staff_client.get(CLAIMS, {"partner": second.partner_id})) == [rejected.pk]
    assert ids(staff_client.get(CLAIMS, {"submitted_since": since})) == [rejected.pk]
    for bad in ({"status": "lost"}, {"partner": "x"}, {"submitted_since": "last week"}):
        problem(staff_client.get(CLAIMS, bad), 400, "invalid")


@pytest.mark.parametrize("rows", [3, 12])
def test_the_list_costs_the_same_queries_for_3_or_12_claims(
    program, machine, person_api, django_assert_num_queries, rows
):
    member = MemberFactory()
    for n in range(rows):
        submit(member if n % 2 else MemberFactory(partner=member.partner), program)
    http, _ = machine(program=program, scopes=["claims:read"])
    as_member = person_api(member.user)
    http.get(CLAIMS), as_member.get(CLAIMS)  # the keys' last use is recorded once a minute

    with django_assert_num_queries(2):  # the key, the page
        every = http.get(CLAIMS)
    with django_assert_num_queries(4):  # the token, the membership, the programs, the page
        own = as_member.get(CLAIMS)

    assert len(every.json()["results"]) == rows
    assert len(own.json()["results"]) == rows // 2


def test_a_claim_shows_its_lines_points_colleagues_and_history(program, person_api, staff_client):
    IncentiveRule.objects.filter(program=program).update(
        shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 30}]
    )
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner, role=role("sales"))
    colleague = MemberFactory(partner=owner.partner, role=role("engineer"))
    claim = submit(rep, program, quantity="3", amount="900.00", colleagues=[colleague])
    services.claim_approve(claim=claim, actor=ProgramManagerFactory())
    line = claim.lines.get()

    own = person_api(rep.user).get(claim_url(claim)).json()
    as_client = staff_client.get(claim_url(claim)).json()

    assert own["status"] == "approved"
    assert own["colleagues"] == [colleague.pk]
    assert own["lines"] == [{
        "id": line.pk, "product": line.product_id, "product_sku": line.product.sku, "product_name": line.product.name,
        "quantity": "3.000", "amount": "900.00", "paid_quantity": "3.000", "points": 18,
    }]  # fmt: skip
    assert points_of(program, rep) == 18  # their own share (60 %)
    assert as_client["lines"][0]["points"] == 30  # every share: the rep's, the colleague's, the company's
    assert [(move["from_status"], move["to_status"], move["note"]) for move in own["history"]] == [
        ("", "submitted", ""), ("submitted", "approved", ""),  # the team's notes are the team's
    ]  # fmt: skip


def test_why_a_claim_was_rejected_reads_in_its_history(program, person_api):
    member = MemberFactory()
    claim = submit(member, program)
    services.claim_reject(claim=claim, actor=ProgramManagerFactory(), reason="other", text="Wrong company name.")

    own = person_api(member.user).get(claim_url(claim)).json()

    assert (own["rejection_reason"], own["rejection_text"]) == ("other", "Wrong company name.")
    assert own["history"][-1]["note"] == "Other: Wrong company name."


def test_another_members_claim_or_another_programs_is_404(program, person_api):
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner)
    colleagues_claim = submit(MemberFactory(partner=owner.partner), program)
    strangers_claim = submit(MemberFactory(), program)
    elsewhere = submit(rep, ProgramFactory(claim_auto_approve_below=Decimal("0.00")))

    problem(person_api(rep.user).get(claim_url(colleagues_claim)), 404, "not_found")
    problem(person_api(owner.user).get(claim_url(strangers_claim)), 404, "not_found")
    problem(person_api(rep.user).get(claim_url(elsewhere)), 404, "not_found")
    problem(person_api(rep.user).get(f"{CLAIMS}999999/"), 404, "not_found")
    assert person_api(owner.user).get(claim_url(colleagues_claim)).status_code == 200


def test_reading_claims_needs_claims_read(program, machine):
    http, _ = machine(program=program, scopes=["claims:decide"])
    claim = submit(MemberFactory(), program)

    problem(http.get(CLAIMS), 403, "missing_scope")
    problem(http.get(claim_url(claim)), 403, "missing_scope")


# Deciding ----------------------------------------------------------------------------------------------------------


def test_a_staff_client_approves_a_claim_and_its_points_post(program, machine):
    http, client = machine(program=program, scopes=["claims:decide"])
    member = MemberFactory()
    claim = submit(member, program)

    response = http.post(decision_url(claim), {"decision": "approve"}, format="json")

    assert response.status_code == 200, response.content
    claim.refresh_from_db()
    assert response.json() == {
        "id": claim.pk, "status": "approved", "decided_at": response.json()["decided_at"], "points": 30,
        "rejection_reason": "", "rejection_text": "",
    }  # fmt: skip
    assert (claim.status, claim.decided_by) == (ClaimStatus.APPROVED, client.created_by)
    assert points_of(program, member) == 30


def test_a_flagged_claim_needs_the_reason_it_is_approved_anyway(program, staff_client):
    claim = submit(MemberFactory(), program)
    SalesClaim.objects.filter(pk=claim.pk).update(flags=[ClaimFlag.UNUSUAL_QUANTITY])

    refused = staff_client.post(decision_url(claim), {"decision": "approve"}, format="json")
    too_long = staff_client.post(decision_url(claim), {"decision": "approve", "reason": "x" * 301}, format="json")
    assert PointsEntry.objects.count() == 0
    approved = staff_client.post(decision_url(claim), {"decision": "approve", "reason": "Checked."}, format="json")

    problem(refused, 422, "reason_required")
    problem(too_long, 422, "text_too_long")
    assert approved.json()["status"] == "approved"
    assert claim.events.last().note == "Approved despite the flags (Unusual quantity): Checked."


def test_a_staff_client_rejects_with_a_reason_code_and_text(program, staff_client):
    member = MemberFactory()
    claim = submit(member, program)

    response = staff_client.post(decision_url(claim), {"decision": "reject", "reason": "other", "text": "Blurry."},
                                 format="json")  # fmt: skip

    assert response.json() | {"decided_at": ""} == {
        "id": claim.pk, "status": "rejected", "decided_at": "", "points": 0, "rejection_reason": "other",
        "rejection_text": "Blurry.",
    }  # fmt: skip
    assert points_of(program, member) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"decision": "reject"}, "reason_required"),
        ({"decision": "reject", "reason": "bored"}, "reason_required"),
        ({"decision": "reject", "reason": "other"}, "text_required"),
        ({"decision": "reject", "reason": "other", "text": "   "}, "text_required"),
    ],
)
def test_each_refusal_of_a_rejection_is_422_and_changes_nothing(program, staff_client, body, code):
    claim = submit(MemberFactory(), program)

    problem(staff_client.post(decision_url(claim), body, format="json"), 422, code)

    claim.refresh_from_db()
    assert (claim.status, claim.rejection_reason, claim.events.count()) == (ClaimStatus.SUBMITTED, "", 1)


def test_a_decided_claim_cannot_be_decided_again(program, staff_client):
    member = MemberFactory()
    claim = submit(member, program)
    staff_client.post(decision_url(claim), {"decision": "approve"}, format="json")

    again = staff_client.post(decision_url(claim), {"decision": "approve"}, format="json")
    reject = staff_client.post(decision_url(claim), {"decision": "reject", "reason": "duplicate"}, format="json")

    assert problem(again, 422, "bad_transition")["detail"] == f"Claim {claim.pk} is already approved."
    problem(reject, 422, "bad_transition")
    assert points_of(program, member) == 30
    assert ClaimEvent.objects.filter(claim=claim, to_status=ClaimStatus.APPROVED).count() == 1


def test_a_repeated_decision_with_one_key_is_replayed(program, staff_client):
    member = MemberFactory()
    claim = submit(member, program)
    body = {"decision": "approve"}

    first = staff_client.post(decision_url(claim), body, format="json", HTTP_IDEMPOTENCY_KEY="decide-1")
    again = staff_client.post(decision_url(claim), body, format="json", HTTP_IDEMPOTENCY_KEY="decide-1")

    assert (first.status_code, again.status_code, again.content) == (200, 200, first.content)
    assert again["Idempotent-Replayed"] == "true"
    assert points_of(program, member) == 30


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"decision": "maybe"},
        {"decision": ["approve"]},
        {"decision": "approve", "text": "Looks fine."},
        {"decision": "reject", "reason": "other", "text": "x" * 501},
        {"decision": "approve", "points": 100},
    ],
)
def test_bad_decisions_are_400_and_change_nothing(program, staff_client, body):
    claim = submit(MemberFactory(), program)

    problem(staff_client.post(decision_url(claim), body, format="json"), 400, "invalid")

    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


def test_deciding_needs_claims_decide_and_is_not_for_people(program, machine, person_api):
    owner = OwnerFactory()
    claim = submit(MemberFactory(partner=owner.partner), program)
    reader, _ = machine(program=program, scopes=["claims:read"])

    problem(reader.post(decision_url(claim), {"decision": "approve"}, format="json"), 403, "missing_scope")
    problem(person_api(owner.user).post(decision_url(claim), {"decision": "approve"}, format="json"), 403,
            "forbidden")  # fmt: skip

    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


def test_a_client_whose_manager_is_no_longer_one_decides_nothing(program, machine):
    http, client = machine(program=program, scopes=["claims:decide"])
    claim = submit(MemberFactory(), program)
    client.created_by.staff_role = ""
    client.created_by.is_superuser = False
    client.created_by.save()

    problem(http.post(decision_url(claim), {"decision": "approve"}, format="json"), 403, "forbidden")

    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED


def test_a_claim_of_another_program_is_404_to_the_staff_client(program, staff_client):
    elsewhere = submit(MemberFactory(), ProgramFactory(claim_auto_approve_below=Decimal("0.00")))

    problem(staff_client.post(decision_url(elsewhere), {"decision": "approve"}, format="json"), 404, "not_found")
