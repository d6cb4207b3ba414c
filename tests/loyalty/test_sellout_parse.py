"""The parse step of a sell-out import, without a database: rows of cells in, typed lines or row errors out."""

from datetime import date, datetime
from decimal import Decimal

from bench.sellout import MAPPING
from loyalty.services.sellout.errors import Issues
from loyalty.services.sellout.formats import CsvLineError
from loyalty.services.sellout.parse import Line, LineParser, columns_of

TODAY = date(2026, 6, 15)
HEADER = list(MAPPING.values())
COLUMNS = columns_of(HEADER, MAPPING)


def parser(**kwargs) -> LineParser:
    return LineParser(**{"columns": COLUMNS, "today": TODAY, **kwargs})


def row(ext="L1", partner="VAT-1", rep="M7", sku="AQ-1", qty="2", amount="100.00", invoice="INV-1",
        day="2026-06-01", returns="") -> list:  # fmt: skip
    return [ext, partner, rep, sku, qty, amount, invoice, day, returns]


def parse(rows, **kwargs) -> tuple[list[Line], Issues]:
    issues = Issues(MAPPING)
    lines = parser(**kwargs).parse(list(enumerate(rows, 2)), issues)
    return lines, issues


def refused(cells, **kwargs) -> list[tuple]:
    """The (line, column, value, reason) of each problem of one bad row."""
    lines, issues = parse([cells], **kwargs)
    assert lines == []
    assert issues.rows == 1
    return [(e["line"], e["column"], e["value"], e["reason"]) for e in issues.items]


# Good rows ----------------------------------------------------------------------------------------------------


def test_columns_are_found_by_the_mapped_headings_and_unmapped_fields_are_left_out():
    header = ["Qty", "Extra", "Line", "Customer", "SKU", "Amount", "Date"]
    mapping = {"external_id": "Line", "partner": "Customer", "sku": "SKU", "quantity": "Qty", "amount": "Amount",
               "invoice_date": "Date", "member": ""}  # fmt: skip

    assert columns_of(header, mapping) == {
        "external_id": 2,
        "partner": 3,
        "sku": 4,
        "quantity": 0,
        "amount": 5,
        "invoice_date": 6,
    }


def test_a_good_row_becomes_a_typed_line_with_its_line_number():
    lines, issues = parse([row(ext=" L1 ", partner=" VAT-1", amount="1,234.50")])

    assert lines == [
        Line(
            line=2,
            external_id="L1",
            partner="VAT-1",
            member="M7",
            sku="AQ-1",
            quantity=Decimal(2),
            amount=Decimal("1234.50"),
            invoice_number="INV-1",
            invoice_date=date(2026, 6, 1),
            returns_external_id="",
        )
    ]
    assert (issues.rows, issues.items) == (0, [])


def test_decimal_commas_and_the_sources_date_format():
    lines, issues = parse(
        [
            row(qty="2,5", amount="1.234,56", day="31.05.2026"),
            row(ext="L2", qty="3-", amount="(12,00)", day="01.06.2026"),
        ],
        decimal_comma=True,
        date_format="%d.%m.%Y",
    )

    assert [(line.quantity, line.amount, line.invoice_date) for line in lines] == [
        (Decimal("2.5"), Decimal("1234.56"), date(2026, 5, 31)),
        (Decimal(-3), Decimal("-12.00"), date(2026, 6, 1)),
    ]
    assert issues.items == []


def test_amounts_are_rounded_half_up_to_cents_and_quantities_keep_three_decimals():
    [line], _ = parse([row(qty="1.125", amount="10.005")])

    assert (line.quantity, line.amount) == (Decimal("1.125"), Decimal("10.01"))


def test_a_return_names_the_line_it_returns():
    [line], issues = parse([row(qty="-2", amount="-200", returns="L0")])

    assert (line.quantity, line.amount, line.returns_external_id) == (Decimal(-2), Decimal(-200), "L0")
    assert issues.items == []


def test_spreadsheet_cells_keep_their_types():
    cells = [1001.0, "VAT-1", None, "AQ-1", 3, 12.5, 4711, datetime(2026, 6, 1, 0, 0), None]

    [line], issues = parse([cells])

    assert (line.external_id, line.member, line.quantity, line.amount, line.invoice_number, line.invoice_date) == (
        "1001",
        "",
        Decimal(3),
        Decimal("12.5"),
        "4711",
        date(2026, 6, 1),
    )
    assert issues.items == []


def test_fields_that_are_not_mapped_are_empty():
    columns = {name: position for name, position in COLUMNS.items() if name not in ("member", "invoice_number")}
    issues = Issues(MAPPING)

    [line] = parser(columns=columns).parse([(2, row(rep="M7", invoice="INV-1"))], issues)

    assert (line.member, line.invoice_number) == ("", "")


# Bad rows -----------------------------------------------------------------------------------------------------


def test_missing_required_cells_are_each_listed_with_the_files_heading():
    assert refused(row(ext="", partner=" ", sku="")) == [
        (2, "Line", "", "is missing"),
        (2, "Customer", "", "is missing"),
        (2, "SKU", "", "is missing"),
    ]


def test_bad_external_ids():
    assert refused(row(ext="x" * 81)) == [
        (2, "Line", "x" * 81, "must be at most 80 characters, without control characters")
    ]
    assert refused(row(ext="L\x071")) == [
        (2, "Line", "L\x071", "must be at most 80 characters, without control characters")
    ]


def test_a_long_value_is_quoted_up_to_200_characters():
    assert refused(row(ext="x" * 300)) == [
        (2, "Line", "x" * 200, "must be at most 80 characters, without control characters")
    ]


def test_an_external_id_seen_before_in_the_file_is_refused_even_in_a_later_batch():
    one = parser()
    first, second = Issues(MAPPING), Issues(MAPPING)

    assert len(one.parse([(2, row(ext="L1")), (3, row(ext="L2"))], first)) == 2
    lines = one.parse([(4, row(ext="L1")), (5, row(ext="L3"))], second)

    assert [line.external_id for line in lines] == ["L3"]
    assert (second.rows, second.items) == (
        1,
        [
            {
                "line": 4,
                "column": "Line",
                "value": "L1",
                "reason": "appears more than once in this file: only its first line is imported",
                "code": "repeated",
            }
        ],
    )


def test_bad_quantities():
    assert refused(row(qty="0")) == [(2, "Qty", "0", "is zero")]
    assert refused(row(qty="1.2345")) == [(2, "Qty", "1.2345", "has more than 3 decimals")]
    assert refused(row(qty="1000000000")) == [(2, "Qty", "1000000000", "is too large")]
    assert refused(row(qty="two")) == [(2, "Qty", "two", "is not a number")]
    assert refused(row(qty="")) == [(2, "Qty", "", "is empty")]


def test_bad_amounts():
    assert refused(row(amount="1000000000000")) == [(2, "Amount", "1000000000000", "is too large")]
    assert refused(row(amount="12,50")) == [
        (
            2,
            "Amount",
            "12,50",
            "is written with a decimal comma, but this source writes numbers like 1,234.56 "
            "(set “decimal comma” on the source if its files use 1.234,56)",
        )
    ]
    assert refused(row(amount="1.5"), decimal_comma=True) == [
        (2, "Amount", "1.5", "is written with a decimal point, but this source writes numbers like 1.234,56")
    ]


def test_bad_dates():
    assert refused(row(day="2026-06-17")) == [(2, "Date", "2026-06-17", "is in the future")]
    assert refused(row(day="1999-12-31")) == [(2, "Date", "1999-12-31", "is before 2000")]
    assert refused(row(day="01/02/2026")) == [
        (
            2,
            "Date",
            "01/02/2026",
            "is ambiguous (day/month or month/day?): set the source's date format, e.g. %d/%m/%Y or %m/%d/%Y",
        )
    ]
    assert refused(row(day="2026-06-01"), date_format="%d.%m.%Y") == [
        (2, "Date", "2026-06-01", "is not a date in this source's format (like 31.12.2026)")
    ]
    assert refused(row(day=42)) == [
        (2, "Date", "42", "is a number, not a date (format the column as a date in the workbook)")
    ]


def test_tomorrow_is_not_in_the_future_yet():
    [line], _ = parse([row(day="2026-06-16")])

    assert line.invoice_date == date(2026, 6, 16)


def test_a_too_long_invoice_number_and_a_returned_line_on_a_sale_are_refused():
    assert refused(row(invoice="I" * 61)) == [(2, "Invoice", "I" * 61, "must be at most 60 characters")]
    assert refused(row(qty="2", returns="L0")) == [(2, "Returns", "L0", "is only for returns (a negative quantity)")]


def test_a_row_with_several_bad_cells_counts_once_and_lists_each_in_column_order():
    lines, issues = parse([row(ext="", qty="0", amount="abc", day="tomorrow"), row(ext="L2")])

    assert [line.external_id for line in lines] == ["L2"]
    assert issues.rows == 1
    assert [(e["line"], e["column"], e["value"], e["reason"]) for e in issues.items] == [
        (2, "Line", "", "is missing"),
        (2, "Qty", "0", "is zero"),
        (2, "Amount", "abc", "is not a number"),
        (2, "Date", "tomorrow", "is not a date (write 2026-12-31, 31.12.2026, or set the source's date format)"),
    ]


def test_a_row_with_too_few_values_is_refused_whole():
    assert refused(["L1", "VAT-1", "M7"]) == [
        (2, "", "", "The line has 3 values; the columns mapped need 9 (a missing separator?).")
    ]


def test_a_row_the_csv_reader_could_not_split_is_refused_with_the_readers_reason():
    assert refused(CsvLineError("unexpected end of data")) == [
        (2, "", "", "The line cannot be read as CSV: unexpected end of data.")
    ]


def test_the_same_raw_values_give_the_same_results_when_remembered():
    """Quantities and dates are remembered by their text: a repeated bad value is refused every time."""
    lines, issues = parse([row(ext="L1", qty="0"), row(ext="L2", qty="0"), row(ext="L3", day="2026-06-01")])

    assert [line.external_id for line in lines] == ["L3"]
    assert [(e["line"], e["reason"]) for e in issues.items] == [(2, "is zero"), (3, "is zero")]
