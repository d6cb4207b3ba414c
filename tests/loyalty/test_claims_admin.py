"""The back office's claims queue: list, filters, search, bulk approval, rejection with a reason, the read-only
claim page with its invoice file, permissions and pinned query counts."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.constants import ClaimFlag, ClaimStatus, RejectionReason
from loyalty.models import PointsEntry, SalesClaim
from partners.constants import PartnerKind
from tests.helpers import messages_of
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.loyalty.test_claims_services import JPEG, TODAY, submit, upload
from tests.partners.factories import MemberFactory, OwnerFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]
CHANGELIST = reverse("admin:loyalty_salesclaim_changelist")
# The most queries the queue may make; the same bound holds at 3 rows and at 30.
CHANGELIST_QUERIES = 6
CHANGE_PAGE_QUERIES = 10


@pytest.fixture
def program():
    return ProgramFactory(name="Aqua Rewards", claim_auto_approve_below=Decimal("500"))


def waiting(program, member=None, *, number="INV-1", amount="900", **kwargs):
    """A claim that waits for review (worth more than the auto-approval threshold)."""
    lines = [(ProductFactory(), 1, Decimal(amount))]
    return submit(member or MemberFactory(), program, number=number, lines=lines, **kwargs)


def change_url(claim) -> str:
    return reverse("admin:loyalty_salesclaim_change", args=[claim.pk])


def shown(response) -> list[int]:
    return [claim.pk for claim in response.context["cl"].result_list]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# The queue ------------------------------------------------------------------------------------------


def test_the_queue_lists_waiting_claims_first_oldest_first_with_flags_as_badges(pm_client, program):
    decided = submit(MemberFactory(), program, number="DONE-1")  # approved at once
    first = waiting(program, number="A-1")
    second = waiting(program, number="B-1", invoice_date=TODAY - timedelta(days=90))
    response = pm_client.get(CHANGELIST)
    assert response.status_code == 200
    assert shown(response) == [first.pk, second.pk, decided.pk]
    body = text(response)
    label = ClaimFlag.OUTSIDE_WINDOW.label  # the badge's title; the queue shows a short name
    assert f'<span class="claim-flag claim-flag-outside_window" title="{label}">Late claim</span>' in body
    assert "€900.00" in body


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "submitted"}, ["flagged", "plain"]),
        ({"status__exact": "approved"}, ["auto"]),
        ({"flag": "unusual_quantity"}, ["flagged"]),
        ({"flag": "none"}, ["plain", "auto"]),
        ({"partner__kind__exact": PartnerKind.INSTALLER}, ["plain"]),
        ({"q": "flag-1"}, ["flagged"]),
        ({"q": "PLAIN 1"}, ["plain"]),
        ({"q": "ana@fixers.example"}, ["plain"]),
        ({"q": "Fixers"}, ["plain"]),
        ({"q": "VAT-FIX-1"}, ["plain"]),
    ],
)
def test_filters_and_search(pm_client, program, params, expected):
    claims = {
        "flagged": submit(
            MemberFactory(), program, number="FLAG-1", lines=[(ProductFactory(unusual_quantity=1), 5, Decimal("900"))]
        ),
        "plain": waiting(
            program,
            MemberFactory(
                user__email="ana@fixers.example",
                partner__name="Fixers Ltd",
                partner__legal_id="VAT-FIX-1",
                partner__kind=PartnerKind.INSTALLER,
            ),
            number="PLAIN-1",
        ),
        "auto": submit(MemberFactory(), program, number="AUTO-1"),
    }
    names = {claim.pk: name for name, claim in claims.items()}
    response = pm_client.get(CHANGELIST, params)
    assert [names[pk] for pk in shown(response)] == expected


def test_the_program_and_created_date_filters_narrow_the_queue(pm_client, program):
    mine = waiting(program)
    other = waiting(ProgramFactory())
    assert shown(pm_client.get(CHANGELIST, {"program__id__exact": program.pk})) == [mine.pk]
    SalesClaim.objects.filter(pk=other.pk).update(created_at=mine.created_at - timedelta(days=40))
    changelist = pm_client.get(CHANGELIST).context["cl"]
    [dates] = [spec for spec in changelist.filter_specs if spec.title == "created at"]
    today = next(choice["query_string"] for choice in dates.choices(changelist) if choice["display"] == "Today")
    assert shown(pm_client.get(CHANGELIST + today)) == [mine.pk]


def test_the_queue_costs_the_same_queries_for_3_and_30_claims(pm_client, program):
    def queries_for(count: int) -> int:
        while SalesClaim.objects.count() < count:
            index = SalesClaim.objects.count()
            waiting(program, number=f"Q-{index}", invoice_date=TODAY - timedelta(days=70 if index % 2 else 0))
        with CaptureQueriesContext(connection) as queries:
            assert pm_client.get(CHANGELIST).status_code == 200
        return len(queries)

    few = queries_for(3)
    assert few == queries_for(30)
    assert few <= CHANGELIST_QUERIES


# Approving ------------------------------------------------------------------------------------------


def test_bulk_approve_posts_points_and_reports_each_refusal_while_the_others_go_ahead(
    pm_client, program, program_manager
):
    RuleFactory(program=program)
    members = [MemberFactory(), MemberFactory()]
    one, two = waiting(program, members[0], number="A"), waiting(program, members[1], number="B")
    done = submit(MemberFactory(), program, number="C")
    response = pm_client.post(
        CHANGELIST, {"action": "approve", "_selected_action": [one.pk, two.pk, done.pk]}, follow=True
    )
    assert messages_of(response) == [
        f"Claim {done.pk} is already approved.",
        f"Approved (points posted) 2 claims: Claim {one.pk}, Claim {two.pk}.",
    ]
    for claim in (one, two):
        claim.refresh_from_db()
        assert (claim.status, claim.decided_by) == (ClaimStatus.APPROVED, program_manager)
    assert PointsEntry.objects.filter(source_type="claim").count() == 3


def test_reject_asks_for_a_reason_code_and_text_then_rejects(pm_client, program, program_manager):
    one, two = waiting(program, number="A"), waiting(program, number="B")
    selected = {"action": "reject", "_selected_action": [one.pk, two.pk]}
    page = pm_client.post(CHANGELIST, selected)
    assert page.status_code == 200
    assert "Reject claims" in text(page) and "Invoice unreadable or missing" in text(page)
    assert f"Claim {one.pk} — " in text(page)

    again = pm_client.post(CHANGELIST, {**selected, "apply": "1", "reason": RejectionReason.OTHER, "text": ""})
    assert "the reason “Other” needs a text" in text(again)
    one.refresh_from_db()
    assert one.status == ClaimStatus.SUBMITTED

    decision = {"apply": "1", "reason": RejectionReason.MISMATCH, "text": "Quantities differ."}
    response = pm_client.post(CHANGELIST, {**selected, **decision}, follow=True)
    assert messages_of(response) == [f"Rejected 2 claims: Claim {one.pk}, Claim {two.pk}."]
    for claim in (one, two):
        claim.refresh_from_db()
        assert (claim.status, claim.rejection_reason, claim.rejection_text, claim.decided_by) == (
            ClaimStatus.REJECTED,
            RejectionReason.MISMATCH,
            "Quantities differ.",
            program_manager,
        )


# One claim ------------------------------------------------------------------------------------------


def test_the_claim_page_is_read_only_and_shows_lines_colleagues_invoice_and_history(pm_client, program):
    RuleFactory(program=program, name="Softeners")
    owner = OwnerFactory(user__full_name="Olga Owner")
    rep = MemberFactory(partner=owner.partner)
    claim = waiting(program, rep, colleagues=[owner])
    response = pm_client.get(change_url(claim))
    body = text(response)
    assert response.status_code == 200
    assert "Olga Owner (Owner / manager)" in body
    assert reverse("admin:loyalty_salesclaim_document", args=[claim.pk]) in body
    assert 'value="Approve (points post)"' in body and 'value="Reject…"' in body
    assert 'name="_save"' not in body
    assert "None yet: points post when the claim is approved." in body

    pm_client.post(CHANGELIST, {"action": "approve", "_selected_action": [claim.pk]})
    body = text(pm_client.get(change_url(claim)))
    assert "Softeners v1: 1 units × 10 pts = 10" in body
    assert 'value="Approve (points post)"' not in body
    assert body.count("Approved") >= 1


def test_the_claim_page_costs_a_bounded_number_of_queries(pm_client, program):
    owner = OwnerFactory()
    claim = submit(
        MemberFactory(partner=owner.partner),
        program,
        lines=[(ProductFactory(), 1, Decimal("100")) for _ in range(12)],
        colleagues=[owner],
    )
    with CaptureQueriesContext(connection) as queries:
        assert pm_client.get(change_url(claim)).status_code == 200
    assert len(queries) <= CHANGE_PAGE_QUERIES


def test_the_invoice_file_opens_for_program_managers_only(client, pm_client, program):
    claim = waiting(program, document=upload("inv.jpg", JPEG))
    url = reverse("admin:loyalty_salesclaim_document", args=[claim.pk])
    response = pm_client.get(url)
    assert b"".join(response.streaming_content) == JPEG
    assert response["Content-Type"] == "image/jpeg" and response["X-Content-Type-Options"] == "nosniff"
    client.force_login(UserFactory(is_staff=True))  # back-office access, but not a program manager
    assert client.get(url).status_code == 403
    assert client.get(change_url(claim)).status_code == 403


def test_claims_are_never_added_changed_or_deleted_in_the_back_office(pm_client, program):
    claim = waiting(program)
    assert pm_client.get(reverse("admin:loyalty_salesclaim_add")).status_code == 403
    assert pm_client.post(change_url(claim), {"invoice_number": "HACKED"}).status_code == 403
    assert pm_client.get(reverse("admin:loyalty_salesclaim_delete", args=[claim.pk])).status_code == 403
    claim.refresh_from_db()
    assert claim.invoice_number == "INV-1"
    actions = [value for value, _label in pm_client.get(CHANGELIST).context["action_form"].fields["action"].choices]
    assert actions == ["", "approve", "reject"]
