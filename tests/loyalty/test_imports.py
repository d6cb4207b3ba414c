import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from openpyxl import Workbook

from bench.sellout import HEADER, MAPPING
from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimStatus, ImportStatus
from loyalty.models import PartnerAlias, PointsAccount, PointsEntry, SaleLine, SalesImport, SalesSource
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import earning, ledger
from loyalty.services.sellout import mapping as sellout_mapping
from loyalty.services.sellout import run as imports
from loyalty.services.sellout.aliases import AliasProblems, aliases_read, aliases_save
from loyalty.services.sellout.errors import errors_csv
from loyalty.services.sellout.mapping import MappingProblem, mapping_field_problems, mapping_prefilled, suggest_mapping
from loyalty.services.sellout.run import import_run, import_start, read_header
from partners.constants import MemberStatus
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory

DAY = timezone.localdate() - timedelta(days=10)
ISO = DAY.isoformat()


pytestmark = pytest.mark.usefixtures("private_media")


class World:
    def __init__(self):
        self.program = ProgramFactory()
        self.rule = RuleFactory(program=self.program, name="Softeners", value=Decimal(10))
        self.member = MemberFactory()
        self.partner = self.member.partner
        self.product = ProductFactory(sku="AQ-1")
        self.source = SalesSource.objects.create(
            program=self.program, name="Distributor feed", code="dist", column_mapping=MAPPING
        )
        self.user = ProgramManagerFactory()

    def line(self, ext, qty="10", amount="100.00", *, partner=None, rep=None, sku="AQ-1", invoice="INV-1", day=ISO,
             returns=""):  # fmt: skip
        partner = self.partner.legal_id if partner is None else partner
        rep = f"M{self.member.pk}" if rep is None else rep
        return ";".join([ext, partner, rep, sku, qty, amount, invoice, day, returns])

    def upload(self, lines, *, header=HEADER, name="sales.csv", encoding="utf-8") -> SalesImport:
        data = "\n".join([header, *lines]).encode(encoding) if isinstance(lines, list) else lines
        return import_start(source=self.source, uploaded_file=SimpleUploadedFile(name, data), user=self.user)

    def run(self, lines, **kwargs) -> SalesImport:
        return import_run(self.upload(lines, **kwargs).pk)

    def balance(self, member=None) -> int:
        account = PointsAccount.objects.filter(program=self.program, member=member or self.member).first()
        return account.available if account else 0


@pytest.fixture
def world(db):
    return World()


def errors(sales_import):
    return [(e["line"], e["column"], e["reason"]) for e in sales_import.errors]


def fail_on_call(monkeypatch, method: str, call: int, message: str):
    """Make _Run.<method> raise RuntimeError(message) on its `call`-th call; returns the original method."""
    original = getattr(imports._Run, method)
    calls = []

    def failing(self, *args):
        calls.append(1)
        if len(calls) == call:
            raise RuntimeError(message)
        return original(self, *args)

    monkeypatch.setattr(imports._Run, method, failing)
    return original


# Validation --------------------------------------------------------------------------------------------------


def test_good_lines_are_posted_and_every_bad_line_is_listed_with_its_line_and_column(world):
    imp = world.run(
        [
            world.line("L1"),  # line 2: good, 10 × 10 = 100 points
            world.line("L2", sku="NOPE"),
            world.line("L3", partner="VAT-UNKNOWN"),
            world.line("L4", rep="nobody@example.com"),
            world.line("L5", qty="ten"),
            world.line("L6", day="31/02/2026"),
            world.line("L7", qty="0"),
            world.line("L1", qty="1"),  # line 9: the same external id again
            world.line("", qty="1"),
            world.line("L10", amount=""),
            world.line("L11", qty="2", amount="20"),  # line 12: good
        ]
    )
    assert imp.status == ImportStatus.DONE
    assert errors(imp) == [
        (3, "SKU", "is not a SKU of the catalogue"),
        (4, "Customer", "is not a partner's legal id nor a customer code of this source"),
        (5, "Rep", "is not the e-mail of a member"),
        (6, "Qty", "is not a number"),
        (7, "Date", "is ambiguous (day/month or month/day?): set the source's date format, e.g. %d/%m/%Y or %m/%d/%Y"),
        (8, "Qty", "is zero"),
        (9, "Line", "appears more than once in this file: only its first line is imported"),
        (10, "Line", "is missing"),
        (11, "Amount", "is empty"),
    ]
    assert (imp.total_rows, imp.processed_rows, imp.new_lines, imp.duplicate_lines, imp.error_rows) == (11, 11, 2, 0, 9)
    assert imp.points_posted == 120
    assert sorted(SaleLine.objects.values_list("external_id", flat=True)) == ["L1", "L11"]
    assert SaleLine.objects.get(external_id="L1").quantity == 10  # the first L1, not the second
    assert world.balance() == 120
    assert imp.message == "11 lines: 2 new, 0 already imported, 9 with errors; 120 points posted."
    assert ledger_problems() == []


def test_every_problem_of_a_line_is_listed(world):
    imp = world.run([world.line("L1", sku="NOPE", qty="x", day="tomorrow")])
    assert errors(imp) == [
        (2, "Qty", "is not a number"),
        (2, "Date", "is not a date (write 2026-12-31, 31.12.2026, or set the source's date format)"),
    ]  # the unknown SKU is looked up only for lines that read well
    assert imp.error_rows == 1


def test_numbers_and_dates_in_the_sources_local_format(world):
    world.source.decimal_comma = True
    world.source.date_format = "%d.%m.%Y"
    world.source.save()
    day = DAY.strftime("%d.%m.%Y")
    imp = world.run([world.line("L1", qty="2", amount="1.234,56", day=day), world.line("L2", amount="1,234.56")])
    line = SaleLine.objects.get(external_id="L1")
    assert (line.amount, line.invoice_date, line.quantity) == (Decimal("1234.56"), DAY, 2)
    assert errors(imp) == [
        (3, "Amount", "is written with a decimal point, but this source writes numbers like 1.234,56"),
        (3, "Date", f"is not a date in this source's format (like {DAY.replace(month=12, day=31):31.12.%Y})"),
    ]


def test_a_line_with_too_few_values_is_refused(world):
    imp = world.run(["L1;x;y", world.line("L2")])
    assert errors(imp) == [(2, "", "The line has 3 values; the columns mapped need 9 (a missing separator?).")]
    assert imp.new_lines == 1


def test_members_match_by_email_or_code_and_must_work_at_the_lines_partner(world):
    other = MemberFactory()
    left = MemberFactory(partner=world.partner, status=MemberStatus.LEFT)
    imp = world.run(
        [
            world.line("L1", rep=world.member.user.email.upper()),
            world.line("L2", rep=f"m{world.member.pk}"),
            world.line("L3", rep=f"M{other.pk}"),
            world.line("L4", rep=other.user.email),
            world.line("L5", rep=f"M{left.pk}"),
            world.line("L6", rep=""),
        ]
    )
    assert errors(imp) == [
        (4, "Rep", "is the member code of someone at another partner"),
        (5, "Rep", "works at another partner"),
        (6, "Rep", "has left this partner: leave the member column empty to credit the partner's account"),
    ]
    assert world.balance() == 200
    company = PointsAccount.objects.get(program=world.program, partner=world.partner)
    assert company.available == 100  # L6: no member, the partner's account


def test_partners_match_by_the_sources_alias_code(world):
    PartnerAlias.objects.create(source=world.source, code="C-001", partner=world.partner)
    imp = world.run([world.line("L1", partner="C-001")])
    assert imp.new_lines == 1
    assert SaleLine.objects.get().partner == world.partner


# Whole-file problems -----------------------------------------------------------------------------------------


def test_an_empty_file_is_refused_at_upload(world):
    with pytest.raises(ApplicationError, match="The file is empty"):
        world.upload(b"")
    assert SalesImport.objects.count() == 0


def test_a_header_without_a_mapped_column_is_refused_at_upload_and_extra_columns_are_fine(world):
    with pytest.raises(ApplicationError, match="The file has no column “Qty”"):
        world.upload([], header="Line;Customer;Rep;SKU;Amount;Invoice;Date;Returns")
    imp = world.run([world.line("L1") + ";extra"], header=HEADER + ";Comment")
    assert imp.new_lines == 1


def test_an_incomplete_mapping_is_refused(world):
    world.source.column_mapping = {"external_id": "Line"}
    world.source.save()
    with pytest.raises(ApplicationError, match="Map this source's columns first"):
        world.upload([world.line("L1")])


def test_a_file_with_a_bad_byte_far_down_is_refused_whole_and_posts_nothing(world, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 500)
    lines = [world.line(f"L{n}") for n in range(2000)]  # more than the 64 KB the encoding is guessed from
    data = ("\n".join([HEADER, *lines]) + "\n").encode() + b"L99;\xff\xfe\n"
    imp = world.run(data)
    assert imp.status == ImportStatus.FAILED
    assert imp.message.startswith("The file cannot be read as text (UTF-8): line 2,002 has bytes")
    assert imp.message.endswith("Nothing was imported.")
    assert SaleLine.objects.count() == 0
    assert PointsEntry.objects.count() == 0


def test_a_huge_file_is_refused_at_upload_with_its_size(world, monkeypatch):
    monkeypatch.setattr(imports, "MAX_FILE_BYTES", 1024 * 1024)
    with pytest.raises(ApplicationError, match=r"The file is 2 MB; the most one import takes is 1 MB"):
        world.upload(b"x" * 2 * 1024 * 1024)


def test_a_file_with_too_many_lines_is_refused_whole(world, monkeypatch):
    monkeypatch.setattr(imports, "MAX_LINES", 2)
    imp = world.run([world.line(f"L{n}") for n in range(3)])
    assert (imp.status, imp.message) == (
        ImportStatus.FAILED,
        "The file has 3 lines; the most one import takes is 2. Split it into several files. Nothing was imported.",
    )
    assert SaleLine.objects.count() == 0


def test_a_file_in_the_wrong_delimiter_for_the_source_is_refused_at_upload(world):
    world.source.delimiter = ","
    world.source.save()
    with pytest.raises(ApplicationError, match="separated by commas, but this file's header uses semicolons"):
        world.upload([world.line("L1")])


def test_a_header_only_file_fails_with_a_clear_message(world):
    imp = world.run([])
    assert (imp.status, imp.message) == (
        ImportStatus.FAILED,
        "The file has a header line but no lines below it. Nothing was imported.",
    )


def test_read_header_and_suggest_mapping(world):
    upload = SimpleUploadedFile(
        "x.csv", b"Line ID,Customer No.,E-mail,Article,Qty,Net amount,Invoice no.,Invoice date\n"
    )
    header = read_header(upload, source=world.source)
    assert header == [
        "Line ID",
        "Customer No.",
        "E-mail",
        "Article",
        "Qty",
        "Net amount",
        "Invoice no.",
        "Invoice date",
    ]
    assert suggest_mapping(header) == {
        "external_id": "Line ID",
        "partner": "Customer No.",
        "member": "E-mail",
        "sku": "Article",
        "quantity": "Qty",
        "amount": "Net amount",
        "invoice_number": "Invoice no.",
        "invoice_date": "Invoice date",
    }
    with pytest.raises(ApplicationError, match="single column"):
        read_header(SimpleUploadedFile("x.csv", b"Line ID\n1\n"), source=world.source)


def test_source_mapping_save_refuses_incomplete_or_doubled_columns(world):
    with pytest.raises(ApplicationError, match="Choose the column for “SKU”"):
        sellout_mapping.source_mapping_save(source=world.source, mapping={**MAPPING, "sku": ""})
    with pytest.raises(ApplicationError, match="is chosen for both"):
        sellout_mapping.source_mapping_save(source=world.source, mapping={**MAPPING, "member": "Line"})
    saved = sellout_mapping.source_mapping_save(source=world.source, mapping={**MAPPING, "returns_external_id": ""})
    assert "returns_external_id" not in saved.column_mapping


# Idempotency -------------------------------------------------------------------------------------------------


def test_importing_the_same_file_twice_posts_nothing_new_and_says_so(world):
    lines = [world.line("L1"), world.line("L2", qty="3", amount="30")]
    first = world.run(lines)
    entries = PointsEntry.objects.count()
    second = world.run(lines)
    assert (first.new_lines, second.new_lines, second.duplicate_lines, second.points_posted) == (2, 0, 2, 0)
    assert second.message == (
        "2 lines: 0 new, 2 already imported, 0 with errors; 0 points posted. "
        "Nothing new: every line of this file was already imported."
    )
    assert PointsEntry.objects.count() == entries
    assert world.balance() == 130
    assert ledger_problems() == []


def test_a_partly_new_file_posts_only_the_new_lines(world):
    world.run([world.line("L1"), world.line("L2")])
    imp = world.run([world.line("L1"), world.line("L2"), world.line("L3", qty="1", amount="5")])
    assert (imp.new_lines, imp.duplicate_lines, imp.points_posted) == (1, 2, 10)
    assert world.balance() == 210


def test_each_account_gets_one_entry_per_import_and_the_lines_behind_it_add_up_to_it(world):
    world.rule.shares = [{"role": "sales", "percent": 60}]
    world.rule.save()
    other = MemberFactory(partner=world.partner)
    imp = world.run([world.line("L1"), world.line("L2", qty="5"), world.line("L3", rep=f"M{other.pk}")])
    entries = {
        e.idempotency_key: (e.available_delta, e.explanation, e.details["lines"])
        for e in PointsEntry.objects.filter(source_type="sales_import", source_id=str(imp.pk))
    }
    label = f"from Distributor feed ({imp.original_name})"
    assert entries == {
        f"sales-import:{imp.pk}:m{world.member.pk}": (90, f"2 sale lines {label}", 2),
        f"sales-import:{imp.pk}:m{other.pk}": (60, f"1 sale line {label}", 1),
        f"sales-import:{imp.pk}:p{world.partner.pk}": (100, f"3 sale lines {label}", 3),
    }
    lines = {line.external_id: line for line in SaleLine.objects.filter(sales_import=imp)}
    assert lines["L2"].points == 50
    assert lines["L2"].posting_list == [
        [world.rule.pk, world.member.pk, 30, "Softeners v1: 5 units × 10 pts = 50; Sales rep share 60% = 30"],
        [world.rule.pk, None, 20, "Softeners v1: 5 units × 10 pts = 50; company share = 20"],
    ]
    assert sum(line.points for line in lines.values()) == imp.points_posted == 250
    assert ledger_problems() == []


def test_a_line_paying_one_account_through_two_rules_counts_as_one_line_of_its_entry(world):
    RuleFactory(program=world.program, name="Bonus", formula="fixed", value=Decimal(5))
    imp = world.run([world.line("L1")])
    [entry] = PointsEntry.objects.filter(source_type="sales_import", source_id=str(imp.pk))
    assert (entry.available_delta, entry.details["lines"]) == (105, 1)
    assert entry.explanation.startswith("1 sale line from")
    assert len(SaleLine.objects.get(external_id="L1").posting_list) == 2


# Batches and progress ----------------------------------------------------------------------------------------


def test_progress_is_saved_after_every_batch(world, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    seen = []
    original = imports._Run._progress

    def spy(self):
        original(self)
        imp = SalesImport.objects.get(pk=self.imp.pk)
        seen.append((imp.processed_rows, imp.total_rows, imp.percent_done))

    monkeypatch.setattr(imports._Run, "_progress", spy)
    imp = world.run([world.line(f"L{n}") for n in range(5)])
    assert seen == [(2, 5, 40), (4, 5, 80), (5, 5, 100)]
    assert (imp.percent_done, imp.new_lines) == (100, 5)


def test_a_failure_in_any_batch_posts_nothing_of_the_import_and_importing_again_posts_it_all(world, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    original = fail_on_call(monkeypatch, "_write", 2, "database went away")
    lines = [world.line(f"L{n}") for n in range(5)]
    imp = world.run(lines)
    assert imp.status == ImportStatus.FAILED
    assert imp.message.startswith("The import stopped at line 5 because of an unexpected error (RuntimeError")
    assert "Nothing of it was posted" in imp.message
    assert not SaleLine.objects.exists()
    assert not PointsEntry.objects.exists()
    assert world.balance() == 0
    monkeypatch.setattr(imports._Run, "_write", original)
    again = world.run(lines)
    assert (again.new_lines, again.duplicate_lines) == (5, 0)
    assert world.balance() == 500
    assert ledger_problems() == []


def test_running_a_finished_import_again_does_nothing(world):
    imp = world.run([world.line("L1")])
    assert import_run(imp.pk).message == imp.message
    assert PointsEntry.objects.count() == 1


# Rules, caps and budgets ---------------------------------------------------------------------------------------


def test_caps_and_budgets_are_exact_across_batches_and_imports(world, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    world.rule.cap_points = 250
    world.rule.budget_points = 400
    world.rule.save()
    other = MemberFactory(partner=world.partner)
    imp = world.run([world.line(f"L{n}") for n in range(4)] + [world.line("L9", rep=f"M{other.pk}")])
    assert (world.balance(), world.balance(other)) == (250, 100)
    world.rule.refresh_from_db()
    assert world.rule.budget_used == 350
    more = world.run([world.line("X1", rep=f"M{other.pk}"), world.line("X2", rep=f"M{other.pk}")])
    assert world.balance(other) == 150  # the budget's last 50
    world.rule.refresh_from_db()
    assert world.rule.budget_used == 400
    [limited] = SaleLine.objects.get(external_id="L2").posting_list
    assert limited[2:] == [50, "Softeners v1: 10 units × 10 pts = 100 — limited to 50 by the rule's cap or budget"]
    assert (imp.points_posted, more.points_posted) == (350, 50)
    assert ledger_problems() == []


def test_each_line_pays_what_the_engine_says_for_it(world):
    from loyalty.engine.facts import sale_event

    world.rule.shares = [{"role": "sales", "percent": 60}]
    world.rule.save()
    world.run([world.line("L1", qty="3", amount="77.50")])
    event = sale_event(
        program=world.program,
        source_key=f"sale:{world.source.pk}:L1",
        partner=world.partner,
        product=world.product,
        quantity=Decimal(3),
        amount=Decimal("77.50"),
        occurred_on=DAY,
        actor=world.member,
    )
    postings = earning.evaluate(event, earning.published_rules(world.program))
    expected = [[p.rule_id, p.member_id, p.points, p.explanation] for p in postings]
    assert SaleLine.objects.get(external_id="L1").posting_list == expected
    assert len(expected) == 2


# Returns -----------------------------------------------------------------------------------------------------


def reversals():
    return list(
        PointsEntry.objects.filter(kind="reverse")
        .order_by("pk")
        .values_list("reverses__idempotency_key", "available_delta")
    )


def line_points():
    return dict(SaleLine.objects.values_list("external_id", "points"))


def test_returns_take_back_exactly_the_original_lines_points_in_proportion(world):
    earned = world.run([world.line("L1", qty="10", invoice="INV-7")])  # 100 points
    key = f"sales-import:{earned.pk}:m{world.member.pk}"
    first = world.run([world.line("R1", qty="-3", amount="-30", returns="L1")])
    assert reversals() == [(key, -30)]
    assert (
        first.message
        == "1 line: 1 new, 0 already imported, 0 with errors; 0 points posted; 1 return took back 30 points."
    )
    second = world.run(
        [world.line("R2", qty="-7", amount="-70", invoice="INV-7"), world.line("R3", qty="-1", invoice="INV-7")]
    )
    assert reversals() == [(key, -30), (key, -70)]
    assert errors(second) == [
        (3, "Invoice", "returns more than is left of the lines with the same partner, invoice number and SKU")
    ]
    assert SaleLine.objects.get(external_id="R2").returns_line.external_id == "L1"
    assert world.balance() == 0
    account = PointsAccount.objects.get(program=world.program, member=world.member)
    assert account.lifetime_earned == 0
    assert ledger_problems() == []


def test_partial_returns_round_to_exactly_the_original_points(world):
    world.rule.value = Decimal(1)
    world.rule.save()
    world.run([world.line("L1", qty="3")])  # 3 points
    world.run([world.line(f"R{n}", qty="-1", returns="L1") for n in range(3)])
    assert [points for _, points in reversals()] == [-3]  # one reversal entry per import and earn entry
    assert [line_points()[f"R{n}"] for n in range(3)] == [-1, -1, -1]
    world.rule.value = Decimal(5)
    world.rule.save()
    world.run([world.line("L2", qty="2")])  # 10 points, returned 1/2 + 1/2 (no 5.5 rounding drift)
    world.run([world.line("S1", qty="-1", returns="L2")])
    world.run([world.line("S2", qty="-1", returns="L2")])
    assert [line_points()["S1"], line_points()["S2"]] == [-5, -5]
    assert sum(points for _, points in reversals()) == -13
    assert world.balance() == 0


def test_a_return_in_the_same_batch_as_its_original(world):
    imp = world.run([world.line("L1", qty="4"), world.line("R1", qty="-1", returns="L1")])
    assert (imp.new_lines, imp.points_posted, world.balance()) == (2, 40, 30)
    assert ledger_problems() == []


def test_returns_that_cannot_be_matched_are_refused_with_the_reason(world):
    world.run([world.line("L1", qty="2")])
    other = ProductFactory(sku="AQ-2")
    imp = world.run(
        [
            world.line("R1", qty="-1", returns="NOPE"),
            world.line("R2", qty="-1", returns="L1", sku=other.sku),
            world.line("R3", qty="-5", returns="L1"),
            world.line("R4", qty="-1", invoice=""),
            world.line("R5", qty="-1", invoice="INV-404"),
            world.line("L9", qty="1", returns="L1"),
        ]
    )
    assert errors(imp) == [
        (2, "Returns", "is not the external id of a line imported from this source (before this line)"),
        (3, "SKU", "is not the SKU of the returned line"),
        (4, "Qty", "returns more than is left to return of the original line (2 of it)"),
        (5, "Returns", "is a return without the returned line's external id or an invoice number to find it"),
        (6, "Invoice", "matches no earlier line of this source with the same partner, invoice number and SKU"),
        (7, "Returns", "is only for returns (a negative quantity)"),
    ]
    assert imp.new_lines == 0
    assert not SaleLine.objects.filter(quantity__lt=0).exists()


def test_a_return_of_points_already_spent_takes_back_what_is_there_and_reports_the_rest(world):
    world.run([world.line("L1", qty="10")])  # 100 points
    account = PointsAccount.objects.get(program=world.program, member=world.member)
    ledger.spend(account=account, points=80, key="shop-1")
    imp = world.run([world.line("R1", qty="-10", returns="L1")])
    assert imp.status == ImportStatus.DONE
    assert imp.new_lines == 1 and imp.error_rows == 0
    assert reversals()[0][1] == -20
    assert errors(imp) == [
        (
            2,
            "Qty",
            f"Return posted, but 80 of the 100 points to take back were already spent (account {account.pk}): only "
            "20 were taken back.",
        )
    ]
    assert "80 points could not be taken back" in imp.message
    assert world.balance() == 0
    assert ledger_problems() == []


def test_a_return_takes_from_other_lots_when_its_own_lot_was_spent(world):
    world.run([world.line("L1", qty="5"), world.line("L2", qty="5")])  # two lots of 50
    account = PointsAccount.objects.get(program=world.program, member=world.member)
    ledger.spend(account=account, points=50, key="shop-1")  # empties L1's lot (soonest first)
    world.run([world.line("R1", qty="-5", returns="L1")])
    assert reversals()[0][1] == -50
    assert world.balance() == 0
    assert ledger_problems() == []


def test_returns_give_the_rules_budget_back(world):
    world.rule.budget_points = 1000
    world.rule.save()
    world.run([world.line("L1", qty="10")])
    world.run([world.line("R1", qty="-4", returns="L1")])
    world.rule.refresh_from_db()
    assert world.rule.budget_used == 60


# Errors download, claims, XLSX, the task -----------------------------------------------------------------------


def test_errors_csv_lists_every_bad_line_beyond_the_stored_ones(world, monkeypatch, settings):
    monkeypatch.setattr(imports, "MAX_STORED_ERRORS", 2)
    imp = world.run([world.line(f"L{n}", sku=f"=BAD{n}") for n in range(3)])
    assert len(imp.errors) == 2
    assert (settings.PRIVATE_MEDIA_ROOT / "imports" / "errors" / f"sales-import-{imp.pk}.csv").exists()
    assert "".join(errors_csv(imp)) == (
        "line,column,value,reason\r\n"
        "2,SKU,'=BAD0,is not a SKU of the catalogue\r\n"
        "3,SKU,'=BAD1,is not a SKU of the catalogue\r\n"
        "4,SKU,'=BAD2,is not a SKU of the catalogue\r\n"
    )


def test_errors_csv_from_the_stored_errors(world):
    imp = world.run([world.line("L1", qty="-0")])
    assert list(errors_csv(imp)) == ["line,column,value,reason\r\n", "2,Qty,'-0,is zero\r\n"]


def test_a_waiting_claim_matched_by_an_imported_line_is_approved_without_review(world):
    from loyalty.services import claims

    claim = claims.claim_submit(
        member=world.member,
        program=world.program,
        invoice_number="INV-77",
        invoice_date=DAY,
        document=SimpleUploadedFile("invoice.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"),
        lines=[(world.product, Decimal(10), Decimal("1000.00"))],
        colleagues=[],
    )
    assert claim.status == ClaimStatus.SUBMITTED
    world.run([world.line("L1", qty="3", invoice="INV-77"), world.line("L2", qty="10", invoice="INV-1")])
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED  # same invoice, another quantity: not confirmed
    world.run([world.line("L3", qty="10", invoice=" inv-77 ")])
    claim.refresh_from_db()
    assert (claim.status, claim.matched_line.external_id) == (ClaimStatus.APPROVED, "L3")


def test_an_xlsx_file_imports_like_a_csv(world):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(";"))
    sheet.append(["L1", world.partner.legal_id, f"M{world.member.pk}", "AQ-1", 2, 19.9, "INV-1", DAY, None])
    sheet.append([1002, world.partner.legal_id, None, "AQ-1", 1.0, 10, "INV-1", ISO, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    imp = world.run(buffer.getvalue(), name="sales.xlsx")
    assert (imp.status, imp.new_lines, imp.error_rows) == (ImportStatus.DONE, 2, 0)
    assert SaleLine.objects.get(external_id="L1").amount == Decimal("19.90")
    assert SaleLine.objects.filter(external_id="1002").exists()


@pytest.mark.django_db(transaction=True)
def test_import_start_stores_the_file_and_runs_the_import_after_commit(django_capture_on_commit_callbacks):
    world = World()
    with django_capture_on_commit_callbacks(execute=True):
        imp = world.upload([world.line("L1")], name="week 47.csv")
    imp.refresh_from_db()
    assert (imp.status, imp.original_name, imp.new_lines, imp.uploaded_by) == (
        ImportStatus.DONE,
        "week 47.csv",
        1,
        world.user,
    )
    assert imp.file.name.startswith("imports/")
    assert world.balance() == 100
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_the_pipelined_run_posts_batch_by_batch_with_real_commits(monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 3)
    world = World()
    lines = [world.line(f"L{n}", qty="2") for n in range(7)] + [
        world.line("R1", qty="-1", returns="L0"),
        world.line("BAD", sku="NOPE"),
        world.line("R2", qty="-2", returns="L6"),
    ]
    imp = world.run(lines)
    assert (imp.status, imp.total_rows, imp.new_lines, imp.error_rows) == (ImportStatus.DONE, 10, 9, 1)
    assert errors(imp) == [(10, "SKU", "is not a SKU of the catalogue")]
    assert (imp.points_posted, world.balance()) == (140, 110)
    again = world.run(lines)
    assert (again.new_lines, again.duplicate_lines, again.points_posted) == (0, 9, 0)
    assert world.balance() == 110
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_overlapping_files_at_once_post_each_line_once():
    from tests.loyalty.test_ledger_concurrency import run_in_parallel

    world = World()
    files = [[world.line(f"L{n}") for n in range(6)], [world.line(f"L{n}") for n in range(3, 9)]]
    uploads = [world.upload(lines) for lines in files]  # queued; run below from two threads at the same instant
    outcomes = run_in_parallel(2, lambda i: import_run(uploads[i].pk).status)
    assert outcomes == {ImportStatus.DONE: 2}
    done = SalesImport.objects.filter(pk__in=[u.pk for u in uploads])
    assert sorted((imp.new_lines, imp.duplicate_lines) for imp in done) == [(3, 3), (6, 0)]
    assert SaleLine.objects.count() == 9
    assert world.balance() == 900
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_a_budget_is_exact_when_an_import_and_single_events_post_at_once():
    from loyalty.engine.facts import sale_event
    from tests.loyalty.test_ledger_concurrency import run_in_parallel

    world = World()
    world.rule.budget_points = 1500
    world.rule.save()
    members = [MemberFactory(partner=world.partner) for _ in range(3)]
    upload = world.upload([world.line(f"L{n}", rep=f"M{members[0].pk}") for n in range(10)])  # 1,000 wanted

    def work(i):
        if i == 0:
            return import_run(upload.pk).points_posted
        entries = []
        for n in range(5):  # 500 wanted by each of two threads
            event = sale_event(
                program=world.program, source_key=f"claim:{i}:{n}", partner=world.partner, product=world.product,
                quantity=Decimal(10), amount=Decimal(100), occurred_on=DAY, actor=members[i],
            )  # fmt: skip
            entries += earning.post_event(program=world.program, event=event, source_type="claim_line")
        return sum(e.available_delta for e in entries)

    outcomes = run_in_parallel(3, work)
    world.rule.refresh_from_db()
    assert world.rule.budget_used == 1500
    assert sum(points * count for points, count in outcomes.items()) == 1500
    assert sum(PointsAccount.objects.filter(program=world.program).values_list("available", flat=True)) == 1500
    assert ledger_problems() == []


def test_a_pooled_partner_gets_its_staffs_points_in_the_company_account(world):
    from partners.constants import PayoutPolicy

    world.partner.payout_policy = PayoutPolicy.POOLED
    world.partner.save()
    imp = world.run([world.line("L1")])
    assert world.balance() == 0
    assert PointsAccount.objects.get(program=world.program, partner=world.partner).available == 100
    [[_, member_id, points, explanation]] = SaleLine.objects.get(sales_import=imp).posting_list
    assert (member_id, points) == (None, 100)
    assert explanation.endswith("(pooled to the company account)")


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_in_the_writer_thread_stops_the_import_and_posts_nothing(monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    world = World()
    fail_on_call(monkeypatch, "_write", 2, "database went away")
    imp = world.run([world.line(f"L{n}") for n in range(5)])
    assert imp.status == ImportStatus.FAILED
    assert "RuntimeError: database went away" in imp.message
    assert not SaleLine.objects.exists()
    assert (imp.new_lines, world.balance()) == (0, 0)
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_reading_stops_the_writer_and_posts_nothing(monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    world = World()
    fail_on_call(monkeypatch, "_prepare", 3, "disk went away")
    imp = world.run([world.line(f"L{n}") for n in range(6)])
    assert imp.status == ImportStatus.FAILED
    assert "RuntimeError: disk went away" in imp.message
    assert not SaleLine.objects.exists()
    assert world.balance() == 0


def test_a_finished_import_approves_the_claims_automatic_approval_left_waiting(world):
    world.program.claim_auto_approve_below = Decimal("0.00")  # posting refused at submission, as during an import
    world.program.save()
    waiting = _claim(world, "INV-42", quantity=1, amount=Decimal("100.00"))
    assert waiting.status == ClaimStatus.SUBMITTED
    world.program.claim_auto_approve_below = Decimal("500.00")
    world.program.save()
    world.run([world.line("L1")])
    waiting.refresh_from_db()
    assert (waiting.status, waiting.matched_line, waiting.events.last().note) == (
        ClaimStatus.APPROVED,
        None,
        "Approved automatically",
    )


def _claim(world, invoice, quantity=10, amount=Decimal("1000.00")):
    from loyalty.services import claims

    return claims.claim_submit(
        member=world.member,
        program=world.program,
        invoice_number=invoice,
        invoice_date=DAY,
        document=SimpleUploadedFile("invoice.pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"),
        lines=[(world.product, Decimal(quantity), amount)],
        colleagues=[],
    )


def _earned_for(prefix: str) -> int:
    return sum(
        PointsEntry.objects.filter(kind="earn", idempotency_key__startswith=prefix).values_list(
            "available_delta", flat=True
        )
    )


def _line_points(external_id: str) -> int:
    return SaleLine.objects.get(external_id=external_id).points


def test_a_sale_reported_by_a_claim_and_by_the_sell_out_is_paid_once(world):
    waiting = _claim(world, "INV-88")
    world.run([world.line("L8", qty="10", invoice="INV-88")])
    waiting.refresh_from_db()
    assert waiting.status == ClaimStatus.APPROVED
    assert _earned_for(f"claim:{waiting.pk}:") > 0
    assert _line_points("L8") == 0
    assert ledger_problems() == []


def test_a_line_whose_claim_was_approved_earlier_is_not_paid_again(world):
    from loyalty.services import claims

    earlier = _claim(world, "INV-99")
    if earlier.status != ClaimStatus.APPROVED:
        claims.claim_approve(claim=earlier, actor=ProgramManagerFactory())
    world.run([world.line("L9", qty="10", invoice="INV-99"), world.line("L10", qty="4", invoice="INV-99")])
    # The sell-out reports 14 of the sale, the claim paid for 10: the 4 more pay, to the lines in file order.
    assert (_line_points("L9"), _line_points("L10")) == (40, 0)
    assert _earned_for(f"claim:{earlier.pk}:") == 100


def test_claiming_a_sale_the_sell_out_already_paid_is_refused(world):
    from loyalty.models import SalesClaim

    world.run([world.line("L11", qty="10", invoice="INV-55")])
    with pytest.raises(ApplicationError, match="already reported by"):
        _claim(world, " inv-55 ")
    assert not SalesClaim.objects.exists()


def test_an_import_that_lifts_a_partner_over_a_threshold_upgrades_it_at_once(world):
    from loyalty.models import PartnerTier
    from tests.loyalty.factories import TierFactory

    TierFactory(program=world.program, name="Base", rank=0, threshold=Decimal("0"))
    TierFactory(program=world.program, name="Gold", rank=1, threshold=Decimal("500"))
    world.run([world.line("T1", qty="10", amount="600.00")])
    assert PartnerTier.objects.get(program=world.program, partner=world.partner).tier.name == "Gold"


# Mapping and alias services --------------------------------------------------------------------------------------


def test_mapping_problems_name_the_field_they_are_about():
    header = ["Line", "Customer", "Customer", "SKU", "Qty", "Amount", "Date"]
    mapping = {**MAPPING, "member": "Line", "sku": "", "returns_external_id": ""}

    assert mapping_field_problems(mapping, header) == [
        MappingProblem("sku", "Choose the column for “SKU”: it is required."),
        MappingProblem(
            "member",
            "The column “Line” is chosen for both “External line id” and “Member (e-mail or member code M…)”.",
        ),
        MappingProblem("", "The file has two columns named “Customer”: rename one of them."),
        MappingProblem(
            "invoice_number",
            "The file has no column “Invoice” (mapped to “Invoice number (needed to confirm claims)”). "
            "Its columns are: Line, Customer, Customer, SKU, Qty, Amount, Date.",
        ),
    ]


def test_the_prefilled_mapping_keeps_the_saved_columns_that_fit_and_guesses_the_rest(world):
    header = ["Line", "Customer", "E-mail", "Article", "Qty", "Amount", "Invoice date"]

    assert mapping_prefilled(source=world.source, header=header) == {
        "external_id": "Line",
        "partner": "Customer",
        "quantity": "Qty",
        "amount": "Amount",
        "member": "E-mail",
        "sku": "Article",
        "invoice_date": "Invoice date",
    }


def test_aliases_are_read_from_a_csv_and_saved_all_together(world):
    other = PartnerFactory(legal_id="VAT-2")
    PartnerAlias.objects.create(source=world.source, code="C-2", partner=world.partner)
    upload = SimpleUploadedFile("aliases.csv", f"alias;legal_id\nC-1;{world.partner.legal_id}\nC-2;vat-2\n".encode())

    pairs = aliases_read(upload=upload)
    saved = aliases_save(source=world.source, pairs=pairs)

    assert [(pair.alias, pair.partner.pk) for pair in pairs] == [("C-1", world.partner.pk), ("C-2", other.pk)]
    assert (saved.added, saved.changed, saved.unchanged) == (1, 1, 0)
    assert dict(PartnerAlias.objects.values_list("code", "partner_id")) == {"C-1": world.partner.pk, "C-2": other.pk}


def test_an_alias_file_with_wrong_lines_lists_each_and_reads_nothing(world):
    upload = SimpleUploadedFile("aliases.csv", b"C-1,VAT-404\nC-2\n")

    with pytest.raises(AliasProblems) as caught:
        aliases_read(upload=upload)

    assert caught.value.problems == [
        "Line 1: no partner has the legal id “VAT-404”.",
        "Line 2: needs an alias and a legal id.",
    ]
    assert (caught.value.code, caught.value.message) == (
        "invalid_aliases",
        "2 lines of the file cannot be used; nothing was saved.",
    )
    assert not PartnerAlias.objects.exists()
