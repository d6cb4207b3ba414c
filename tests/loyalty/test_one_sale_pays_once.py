"""One sale pays once (issue #10, point 1): for one (partner, invoice, product) the quantity that earns is never more
than the largest quantity one source reports (each sell-out source; the partner's claims together), whatever the
order of claims and imports, and the member is told why a claim paid for less."""

import contextlib
import threading
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from loyalty.constants import ClaimStatus
from loyalty.models import PointsAccount, PointsEntry, SaleLine, SalesClaim, SalesSource
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import claims
from loyalty.services.sellout import run as imports
from loyalty.services.sellout.run import import_run
from tests.loyalty.factories import ProductFactory
from tests.loyalty.test_claims_services import refused
from tests.loyalty.test_imports import DAY, MAPPING, World
from tests.loyalty.test_ledger_concurrency import run_in_parallel
from tests.partners.factories import ProgramManagerFactory

pytestmark = pytest.mark.usefixtures("private_media")

SMALL = Decimal("10.00")  # a claim under the program's threshold: approved at once
LARGE = Decimal("1000.00")  # a claim over it: waits for a program manager


def claim(world, *quantities, number="INV-1", amount=SMALL, product=None):
    """A claim of the world's member: one line of `product` per quantity."""
    return claims.claim_submit(
        member=world.member,
        program=world.program,
        invoice_number=number,
        invoice_date=DAY,
        document=SimpleUploadedFile("invoice.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"),
        lines=[(product or world.product, Decimal(quantity), amount) for quantity in quantities],
    )


def claim_points(claim_) -> int:
    return sum(
        PointsEntry.objects.filter(source_type="claim", source_id__startswith=f"claim:{claim_.pk}:").values_list(
            "available_delta", flat=True
        )
    )


def line_points(external_id: str) -> int:
    return SaleLine.objects.get(external_id=external_id).points


def total_points(world) -> int:
    return sum(PointsAccount.objects.filter(program=world.program).values_list("available", flat=True))


def paid(lines) -> list[Decimal]:
    return [line.paid_quantity for line in lines.order_by("pk")]


@pytest.fixture
def world(db):
    world = World()
    world.source.name = "Northwater ERP"
    world.source.save()
    return world


# The scenarios ----------------------------------------------------------------------------------------


def test_a_claim_of_units_the_sell_out_already_paid_is_refused_saying_who_reported_them(world):
    world.run([world.line("L1", qty="2", invoice="INV-1")])
    assert world.balance() == 20

    for quantities in ((1, 1), (1,), (2,)):  # 1 + 1 of the 2, 1 of the 2, all 2
        error = refused("already_imported", lambda q=quantities: claim(world, *q, number=" inv-1 "))
        assert error.message == (
            f"Invoice inv-1 was already reported by Northwater ERP on {date_format(timezone.localdate(), 'j M Y')} "
            "(2 × AQ-1) and those units earned their points; there is nothing to claim."
        )
    assert not SalesClaim.objects.exists()
    assert world.balance() == 20


def test_a_claim_of_more_units_than_the_sell_out_reported_pays_for_the_difference(world):
    world.run([world.line("L1", qty="2", invoice="INV-1")])
    more = claim(world, 1, 2)
    assert more.status == ClaimStatus.APPROVED
    assert claim_points(more) == 10
    assert paid(more.lines) == [Decimal(1), Decimal(0)]  # 3 claimed, 2 paid already: the first line pays for 1
    assert world.balance() == 30


def test_claim_1_plus_1_then_the_sell_out_reports_the_2_the_import_pays_nothing(world):
    first = claim(world, 1, 1)
    assert (first.status, claim_points(first)) == (ClaimStatus.APPROVED, 20)

    imp = world.run([world.line("L1", qty="2", invoice="INV-1")])

    assert (imp.new_lines, imp.points_posted, line_points("L1")) == (1, 0, 0)
    assert SaleLine.objects.get().paid_quantity == 0
    assert world.balance() == 20
    assert ledger_problems() == []


def test_claim_1_then_the_sell_out_reports_2_the_import_pays_for_the_1_more(world):
    first = claim(world, 1)
    assert claim_points(first) == 10

    imp = world.run([world.line("L1", qty="2", amount="300.00", invoice="INV-1")])

    assert (imp.points_posted, line_points("L1")) == (10, 10)
    line = SaleLine.objects.get()
    assert line.paid_quantity == 1
    [[_, _, points, explanation]] = line.posting_list
    assert (points, explanation) == (10, "Softeners v1: 1 units × 10 pts = 10")
    assert world.balance() == 20
    assert ledger_problems() == []


def test_two_sell_out_sources_reporting_one_sale_pay_the_largest_report_once(world):
    erp = world.source
    feed = SalesSource.objects.create(
        program=world.program, name="Distributor feed", code="feed", column_mapping=MAPPING
    )
    world.run([world.line("A1", qty="2", invoice="INV-1")])
    world.source = feed
    same = world.run([world.line("B1", qty="2", invoice="INV-1")])
    more = world.run([world.line("B2", qty="1", invoice="INV-1")])  # the feed now reports 3 of the sale

    assert (same.points_posted, more.points_posted) == (0, 10)
    assert [paid(SaleLine.objects.filter(source=source)) for source in (erp, feed)] == [[2], [0, 1]]
    assert world.balance() == 30
    assert ledger_problems() == []


def test_lines_of_one_source_add_up_and_other_products_and_invoices_are_other_sales(world):
    other = ProductFactory(sku="AQ-2")
    claim(world, 2)  # 2 × AQ-1 on INV-1, paid
    imp = world.run(
        [
            world.line("L1", qty="1", invoice="INV-1"),  # the source reports 1 + 2 of the sale, the claim paid 2:
            world.line("L2", qty="2", invoice="INV-1"),  # 1 more pays, to the lines in file order
            world.line("L3", qty="2", invoice="INV-1", sku="AQ-2"),  # another product: another sale
            world.line("L4", qty="2", invoice="INV-2"),  # another invoice: another sale
            world.line("L5", qty="2", invoice=""),  # no invoice: a sale of its own
        ]
    )
    assert [line_points(ext) for ext in ("L1", "L2", "L3", "L4", "L5")] == [10, 0, 20, 20, 20]
    assert imp.points_posted == 70
    assert other.pk in SaleLine.objects.values_list("product_id", flat=True)


def test_a_waiting_claim_the_sell_out_confirms_is_paid_through_the_claim_and_the_rest_by_the_lines(world):
    waiting = claim(world, 2, amount=LARGE)
    assert waiting.status == ClaimStatus.SUBMITTED

    world.run([world.line("L1", qty="2", invoice="INV-1"), world.line("L2", qty="1", invoice="INV-1")])

    waiting.refresh_from_db()
    assert (waiting.status, waiting.matched_line.external_id) == (ClaimStatus.APPROVED, "L1")
    assert claim_points(waiting) == 20  # the member's claim is paid first
    assert (line_points("L1"), line_points("L2")) == (10, 0)  # 3 reported, 2 paid: 1 more, in file order
    assert world.balance() == 30


# Telling the member why ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("claimed", "pays", "points"), [(2, 0, 0), (4, 1, 10)])
def test_a_claim_approved_after_the_sell_out_reported_the_sale_pays_what_is_left_and_says_why(
    world, client, pm_client, claimed, pays, points
):
    waiting = claim(world, claimed, amount=LARGE)
    world.run([world.line("L1", qty="3", invoice="INV-1")])  # another quantity: not confirmed, the line pays 3
    assert (line_points("L1"), waiting.status) == (30, ClaimStatus.SUBMITTED)

    claims.claim_approve(claim=waiting, actor=ProgramManagerFactory())

    assert claim_points(waiting) == points
    assert paid(waiting.lines) == [Decimal(pays)]
    assert world.balance() == 30 + points
    note = (
        f"3 units already reported by Northwater ERP on {date_format(timezone.localdate(), 'j M')}; "
        f"this claim pays for {pays}."
    )
    admin_page = pm_client.get(reverse("admin:loyalty_salesclaim_change", args=[waiting.pk])).content.decode()
    assert f"<div>{claimed} × AQ-1: {note}" in admin_page
    client.force_login(world.member.user)
    page = client.get(reverse("claim_detail", args=[waiting.pk])).content.decode()
    assert f'data-testid="paid-note">{note}' in page
    assert 'data-testid="unpaid-reason"' not in page  # the note is the reason


def test_the_claim_page_reads_the_notes_of_all_its_lines_with_one_query(world, client):
    products = [world.product, ProductFactory(sku="AQ-2"), ProductFactory(sku="AQ-3")]
    one = claim(world, 1, number="INV-1", amount=LARGE)
    three = claims.claim_submit(
        member=world.member,
        program=world.program,
        invoice_number="INV-3",
        invoice_date=DAY,
        document=SimpleUploadedFile("invoice.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"),
        lines=[(product, Decimal(1), LARGE) for product in products],
    )
    world.run(
        [world.line("L1", qty="5", invoice="INV-1")]
        + [world.line(f"L3-{n}", qty="5", invoice="INV-3", sku=p.sku) for n, p in enumerate(products)]
    )
    manager = ProgramManagerFactory()
    for each in (one, three):
        claims.claim_approve(claim=each, actor=manager)
    assert (paid(one.lines), paid(three.lines)) == ([0], [0, 0, 0])
    client.force_login(world.member.user)

    queries = []
    for each, notes in ((one, 1), (three, 3)):
        cache.clear()  # the navigation's inbox bell counts once, then from the cache: alike for each
        with CaptureQueriesContext(connection) as captured:
            page = client.get(reverse("claim_detail", args=[each.pk])).content.decode()
        queries.append(len(captured))
        assert page.count('data-testid="paid-note"') == notes
    assert queries[0] == queries[1]


# Concurrency -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_claim_approval_never_pays_a_sale_a_running_import_is_paying(monkeypatch):
    """The import holds its program's sales-paid lock to its commit: an approval meanwhile says the import is
    posting and changes nothing; approved afterwards, the claim pays what the import left."""
    monkeypatch.setattr(claims, "APPROVAL_LOCK_WAIT_MS", 200)
    world = World()
    waiting = claim(world, 1, amount=LARGE)
    monkeypatch.setattr(imports, "enqueue_on_commit", lambda *args: None)  # run below, in a thread of its own
    upload = world.upload([world.line("L1", qty="2", invoice="INV-1")])
    written, go = threading.Event(), threading.Event()
    end = imports._Run._end

    def end_after_a_pause(run):
        written.set()  # every line is written, nothing committed yet
        go.wait(30)
        end(run)

    monkeypatch.setattr(imports._Run, "_end", end_after_a_pause)
    importer = threading.Thread(target=lambda: (import_run(upload.pk), connection.close()))
    importer.start()
    try:
        assert written.wait(30)
        manager = ProgramManagerFactory()
        error = refused("rules_busy", lambda: claims.claim_approve(claim=waiting, actor=manager))
        assert "sell-out import is posting points" in error.message
        assert SalesClaim.objects.get(pk=waiting.pk).status == ClaimStatus.SUBMITTED
    finally:
        go.set()
        importer.join(30)

    assert line_points("L1") == 20
    claims.claim_approve(claim=waiting, actor=manager)
    assert claim_points(waiting) == 0
    assert total_points(world) == 20
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_two_claims_of_one_sale_approved_at_once_pay_what_they_would_one_after_the_other(monkeypatch):
    """Two claims of one partner for one invoice (as stored before the keys; a third is refused) approved at the
    same instant: the second to pay sees what the first paid. Each pauses after reading the sale's reports, so
    without the partner's lock both would read before either paid."""
    world = World()
    first = claim(world, 2, amount=LARGE)
    second = claim(world, 2, number="INV-2", amount=LARGE)
    world.run([world.line("L1", qty="3", invoice="INV-1")])  # not the claim's quantity: the sell-out pays 3
    SalesClaim.objects.filter(pk=second.pk).update(invoice_number="INV-1", invoice_key="inv-1")
    pause = threading.Barrier(2, timeout=1)
    reports = claims.sale_reports

    def reports_then_pause(**kwargs):
        found = reports(**kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):  # the other approval waits for the lock: go on
            pause.wait()
        return found

    monkeypatch.setattr(claims, "sale_reports", reports_then_pause)
    manager = ProgramManagerFactory()
    outcomes = run_in_parallel(2, lambda i: claims.claim_approve(claim=(first, second)[i], actor=manager).status)

    assert outcomes == {ClaimStatus.APPROVED: 2}
    # The sell-out reported and paid 3 of the sale, the claims report 4: 1 more pays, through the one approved second.
    assert sorted(claim_points(each) for each in (first, second)) == [0, 10]
    assert total_points(world) == 40
    assert ledger_problems() == []
