import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import Workbook

from loyalty.services.sellout.formats import (
    CsvLineError,
    FileProblem,
    detect_delimiter,
    detect_encoding,
    open_table,
    parse_date,
    parse_decimal,
)


def table(data: bytes, **kwargs):
    return open_table(io.BytesIO(data), **kwargs)


def rows(data: bytes, **kwargs):
    with table(data, **kwargs) as t:
        return t.header, list(t.rows())


# Numbers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("-3", "-3"),
        ("3-", "-3"),
        ("(12.50)", "-12.50"),
        (" 7 ", "7"),
        ("+2", "2"),
        ("1 234 567.8", "1234567.8"),
        ("−4", "-4"),
    ],
)
def test_numbers_with_a_decimal_point(text, expected):
    assert parse_decimal(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.234,56", "1234.56"), ("1234,5", "1234.5"), ("1 234,56", "1234.56"), ("12", "12"), ("-0,5", "-0.5")],
)
def test_numbers_with_a_decimal_comma(text, expected):
    assert parse_decimal(text, decimal_comma=True) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "decimal_comma", "reason"),
    [
        ("12,5", False, "decimal comma"),
        ("1.234,56", False, "decimal comma"),
        ("1,234.56", True, "decimal point"),
        ("abc", False, "is not a number"),
        ("1e5", False, "is not a number"),
        ("NaN", False, "is not a number"),
        ("", False, "is empty"),
        ("1.5", True, "decimal point"),
    ],
)
def test_numbers_in_the_wrong_format_are_refused_with_the_reason(text, decimal_comma, reason):
    with pytest.raises(ValueError, match=reason):
        parse_decimal(text, decimal_comma=decimal_comma)


def test_excel_numbers_are_taken_as_they_are():
    assert parse_decimal(3) == Decimal(3)
    assert parse_decimal(12.3) == Decimal("12.3")
    with pytest.raises(ValueError):
        parse_decimal(True)


# Dates --------------------------------------------------------------------------------------------------


def test_dates_in_iso_and_dotted_formats_and_the_sources_format():
    assert parse_date("2026-12-31") == date(2026, 12, 31)
    assert parse_date("31.12.2026") == date(2026, 12, 31)
    assert parse_date("12/31/2026", date_format="%m/%d/%Y") == date(2026, 12, 31)
    assert parse_date(datetime(2026, 5, 1, 13, 0)) == date(2026, 5, 1)


@pytest.mark.parametrize(
    ("text", "date_format", "reason"),
    [
        ("31/12/2026", "", "ambiguous"),
        ("2026-02-30", "", "not a valid date"),
        ("31.12.2026", "%Y-%m-%d", "like 2026-12-31"),
        ("yesterday", "", "is not a date"),
        ("", "", "is empty"),
    ],
)
def test_bad_dates_are_refused_with_the_reason(text, date_format, reason):
    with pytest.raises(ValueError, match=reason):
        parse_date(text, date_format=date_format)


def test_an_excel_number_in_a_date_column_is_refused():
    with pytest.raises(ValueError, match="a number, not a date"):
        parse_date(46022.0)


# Encodings and delimiters ---------------------------------------------------------------------------------


def test_encodings_are_detected():
    assert detect_encoding("a;b\né;ü\n".encode()) == "utf-8"
    assert detect_encoding("\ufeffa;b\n".encode()) == "utf-8-sig"
    assert detect_encoding("a;b\nMüller;1\n".encode("cp1252")) == "cp1252"
    assert detect_encoding("a\tb\n".encode("utf-16")) == "utf-16"


def test_binary_data_is_refused():
    with pytest.raises(FileProblem, match="binary data"):
        table(b"PK\x01\x02\x00\x00garbage\x00\x00")


def test_delimiters_are_detected_outside_quotes():
    assert detect_delimiter('id;"Name, Inc.";qty') == ";"
    assert detect_delimiter("id,name,qty") == ","
    assert detect_delimiter("id\tname") == "\t"
    assert detect_delimiter("just one column") == ""


def test_a_windows_1252_file_reads_its_accents():
    header, found = rows("id;name\n1;Müller Wassertechnik\n".encode("cp1252"))
    assert header == ["id", "name"]
    assert found == [(2, ["1", "Müller Wassertechnik"])]


def test_a_utf16_tab_separated_export_reads():
    header, found = rows("id\tqty\r\nL1\t3\r\n".encode("utf-16"))
    assert (header, found) == (["id", "qty"], [(2, ["L1", "3"])])


def test_a_bom_is_not_part_of_the_first_heading():
    header, _ = rows("\ufeffid;qty\nL1;2\n".encode())
    assert header == ["id", "qty"]


def test_empty_files_are_refused():
    for data in (b"", b"\n\n  \n", "\ufeff".encode()):
        with pytest.raises(FileProblem, match="empty"):
            table(data)


def test_a_single_column_file_suggests_the_wrong_delimiter():
    with pytest.raises(FileProblem, match="single column"):
        table(b"id qty amount\n1 2 3\n")


def test_the_sources_delimiter_wins_and_a_different_one_is_explained():
    header, _ = rows(b"id;name,with comma;qty\n1;x;2\n", delimiter=";")
    assert header == ["id", "name,with comma", "qty"]
    with pytest.raises(FileProblem, match="separated by semicolons"):
        table(b"id,qty,amount\n1,2,3\n", delimiter=";")


def test_an_old_xls_file_is_refused_clearly():
    with pytest.raises(FileProblem, match=r"\.xls"):
        table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)


def test_a_bad_byte_far_down_refuses_the_whole_file_with_its_line():
    data = b"id;name\n" + b"1;ok\n" * 100_000 + b"2;M\xfcller \x81\n"
    with pytest.raises(FileProblem, match="line 100,002"):
        table(data, check_whole_file=True)


def test_whole_file_check_counts_the_lines_below_the_header():
    with table(b"id;qty\n1;2\n2;3", check_whole_file=True) as t:
        assert t.data_lines == 2


# Line numbers -------------------------------------------------------------------------------------------


def test_line_numbers_count_the_header_as_line_1_and_follow_quoted_line_breaks():
    data = b'id;note;qty\nA;"two\nlines";1\n\nB;plain;2\n'
    _, found = rows(data)
    assert found == [(2, ["A", "two\nlines", "1"]), (5, ["B", "plain", "2"])]


def test_an_unreadable_csv_line_is_reported_in_place_of_its_cells():
    import csv

    limit = csv.field_size_limit()
    data = b'id;note\nA;"' + b"x" * (limit + 10) + b'"\n'
    _, found = rows(data)
    assert isinstance(found[0][1], CsvLineError)


# XLSX ---------------------------------------------------------------------------------------------------


def xlsx(*sheet_rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in sheet_rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_an_xlsx_file_keeps_excels_types_and_row_numbers():
    data = xlsx(["id", "qty", "date"], ["L1", 3, datetime(2026, 5, 1)], [None, None, None], ["L2", 1.5, "2026-05-02"])
    header, found = rows(data, name="sales.xlsx")
    assert header == ["id", "qty", "date"]
    assert found == [(2, ["L1", 3, datetime(2026, 5, 1)]), (4, ["L2", 1.5, "2026-05-02"])]


def test_a_broken_xlsx_is_refused_clearly():
    with pytest.raises(FileProblem, match="not a readable Excel workbook"):
        table(b"PK\x03\x04 this is no zip at all", name="sales.xlsx")


def test_an_empty_xlsx_is_refused():
    with pytest.raises(FileProblem, match="empty"):
        table(xlsx(), name="sales.xlsx")
