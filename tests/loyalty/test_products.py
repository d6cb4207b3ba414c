"""Importing the product catalogue: upsert by SKU, lines created on the way, all or nothing with every bad row
reported by line, column and reason."""

import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from loyalty.models import Product, ProductLine
from loyalty.services.catalog import RowError, products_import
from loyalty.services.sellout.formats import FileProblem
from tests.loyalty.factories import ProductFactory, ProductLineFactory

pytestmark = pytest.mark.django_db

HEADER = "sku,name,line,launch_date,active\n"


def upload(text: str, *, name: str = "catalogue.csv", encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


def run(text: str, **kwargs):
    file = upload(text)
    return products_import(file=file, name=file.name, **kwargs)


def catalogue() -> dict[str, tuple]:
    return {
        p.sku: (p.name, p.line.name, p.launch_date, p.is_active)
        for p in Product.objects.select_related("line").order_by("sku")
    }


@pytest.fixture
def softeners():
    return ProductLineFactory(code="softeners", name="Water softeners")


# A good file ----------------------------------------------------------------------------------------


def test_a_good_file_creates_the_products_and_the_lines_that_do_not_exist_yet(softeners):
    result = run(
        HEADER + "AQ-100,AquaSoft 100,softeners,2026-03-01,yes\n"  # an existing line by its code
        "AQ-200,AquaSoft 200,WATER SOFTENERS,,\n"  # by its name, any case; empty active means yes
        "RO-1,PureFlow RO,Reverse osmosis,31.12.2026,no\n"  # a new line
        "RO-2,PureFlow RO Max,reverse osmosis,,1\n"
    )

    assert (result.ok, result.written, result.rows, result.created, result.updated, result.unchanged) == (
        True,
        True,
        4,
        4,
        0,
        0,
    )
    assert result.lines_created == ["Reverse osmosis"]
    assert catalogue() == {
        "AQ-100": ("AquaSoft 100", "Water softeners", date(2026, 3, 1), True),
        "AQ-200": ("AquaSoft 200", "Water softeners", None, True),
        "RO-1": ("PureFlow RO", "Reverse osmosis", date(2026, 12, 31), False),
        "RO-2": ("PureFlow RO Max", "Reverse osmosis", None, True),
    }
    assert ProductLine.objects.get(name="Reverse osmosis").code == "reverse-osmosis"


def test_an_existing_sku_is_updated_and_an_identical_row_is_left_alone(softeners):
    filters = ProductLineFactory(code="filters", name="Filters")
    moved = ProductFactory(sku="AQ-100", name="Old name", line=softeners, launch_date=date(2020, 1, 1))
    same = ProductFactory(sku="AQ-200", name="AquaSoft 200", line=filters, launch_date=None, is_active=True)
    created_at, untouched_at = moved.created_at, same.updated_at

    result = run(HEADER + "AQ-100,AquaSoft 100,filters,,no\nAQ-200,AquaSoft 200,Filters,,yes\n")

    assert (result.created, result.updated, result.unchanged, result.lines_created) == (0, 1, 1, [])
    moved.refresh_from_db()
    same.refresh_from_db()
    assert (moved.name, moved.line_id, moved.launch_date, moved.is_active) == ("AquaSoft 100", filters.pk, None, False)
    assert moved.created_at == created_at and moved.updated_at > created_at
    assert same.updated_at == untouched_at
    assert Product.objects.count() == 2


def test_importing_the_same_file_again_changes_nothing(softeners):
    text = HEADER + "AQ-100,AquaSoft 100,softeners,2026-03-01,yes\nRO-1,PureFlow RO,Reverse osmosis,,no\n"
    run(text)
    before = catalogue()

    result = run(text)

    assert (result.created, result.updated, result.unchanged, result.lines_created) == (0, 0, 2, [])
    assert catalogue() == before
    assert ProductLine.objects.count() == 2


def test_semicolons_a_bom_windows_1252_and_headings_in_another_order_and_case_are_read(softeners):
    text = "Name;SKU;Active;Line;Launch Date;Notes\nCafé filtre;CF-1;non;softeners;01.02.2026;ignored\n"
    file = upload(text, encoding="cp1252")

    result = products_import(file=file, name=file.name)

    assert result.created == 1
    assert catalogue() == {"CF-1": ("Café filtre", "Water softeners", date(2026, 2, 1), False)}


def test_an_xlsx_workbook_is_read_too(softeners):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["sku", "name", "line", "launch_date", "active"])
    sheet.append([12345, "Numeric SKU", "softeners", date(2026, 4, 1), True])
    buffer = io.BytesIO()
    workbook.save(buffer)
    file = SimpleUploadedFile("catalogue.xlsx", buffer.getvalue())

    result = products_import(file=file, name=file.name)

    assert result.created == 1
    assert catalogue() == {"12345": ("Numeric SKU", "Water softeners", date(2026, 4, 1), True)}


def test_a_dry_run_reports_what_would_change_and_writes_nothing(softeners):
    ProductFactory(sku="AQ-100", name="Old name", line=softeners)

    result = run(HEADER + "AQ-100,AquaSoft 100,softeners,,\nRO-1,PureFlow RO,Reverse osmosis,,\n", dry_run=True)

    assert (result.ok, result.written, result.created, result.updated, result.lines_created) == (
        True,
        False,
        1,
        1,
        ["Reverse osmosis"],
    )
    assert catalogue() == {"AQ-100": ("Old name", "Water softeners", None, True)}
    assert not ProductLine.objects.filter(name="Reverse osmosis").exists()


# Bad rows: all or nothing ---------------------------------------------------------------------------


def test_every_bad_row_is_reported_with_its_line_column_and_reason_and_nothing_is_written(softeners):
    ProductFactory(sku="AQ-1", name="Kept as it is", line=softeners)
    text = (
        HEADER + "AQ-1,Renamed,softeners,,\n"  # line 2: good, but not written because others are bad
        ",No SKU,softeners,,\n"  # line 3
        "AQ-3,,softeners,,\n"  # line 4
        "AQ-4,Bad date,softeners,2026-02-30,\n"  # line 5
        "AQ-5,Bad flag,softeners,,maybe\n"  # line 6
        "AQ-1,Twice,softeners,,\n"  # line 7
        '"AQ-8","A name\nover two lines",New line,,\n'  # lines 8-9: good, its line is not created
        "AQ-10,Ambiguous,softeners,03/04/2026,\n"  # line 10
        f"AQ-11,{'x' * 201},softeners,,\n"  # line 11
        "AQ-12,No line,,,\n"  # line 12
        "AQ-13,Symbols only,!!!,,\n"  # line 13
    )

    result = run(text)

    assert not result.ok and not result.written
    assert [(e.line, e.column, e.value) for e in result.errors] == [
        (3, "sku", ""),
        (4, "name", ""),
        (5, "launch_date", "2026-02-30"),
        (6, "active", "maybe"),
        (7, "sku", "AQ-1"),
        (10, "launch_date", "03/04/2026"),
        (11, "name", "x" * 60),
        (12, "line", ""),
        (13, "line", "!!!"),
    ]
    reasons = {error.line: error.reason for error in result.errors}
    assert reasons[3] == "is required"
    assert reasons[5] == "is not a valid date"
    assert reasons[6] == "is not yes or no"
    assert reasons[7] == "is already on line 2"
    assert reasons[11] == "is longer than 200 characters"
    assert reasons[13] == "needs letters or digits to make a line code"
    assert str(result.errors[4]) == "line 7, column sku: “AQ-1” is already on line 2"
    assert (result.created, result.updated, result.unchanged) == (0, 0, 0)
    assert catalogue() == {"AQ-1": ("Kept as it is", "Water softeners", None, True)}
    assert list(ProductLine.objects.values_list("name", flat=True)) == ["Water softeners"]


def test_a_row_with_several_problems_reports_each_of_them():
    result = run(HEADER + ",,,someday,perhaps\n")

    assert result.errors == [
        RowError(2, "sku", "", "is required"),
        RowError(2, "name", "", "is required"),
        RowError(2, "line", "", "is required"),
        RowError(
            2, "launch_date", "someday", "is not a date (write 2026-12-31, 31.12.2026, or set the source's date format)"
        ),
        RowError(2, "active", "perhaps", "is not yes or no"),
    ]


def test_a_file_without_a_required_column_is_refused_as_a_whole():
    with pytest.raises(FileProblem) as caught:
        run("sku,title,line\nAQ-1,AquaSoft,softeners\n")

    assert caught.value.code == "missing_columns"
    assert caught.value.message == (
        "The file has no name column. The first line must name the columns: sku, name, line, launch_date, active "
        "(found: sku, title, line)."
    )
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("content", "code"),
    [(HEADER, "empty_file"), ("", "empty_file"), ("just one column\nAQ-1\n", "single_column")],
)
def test_an_empty_or_unreadable_file_is_refused(content, code):
    with pytest.raises(FileProblem) as caught:
        run(content)

    assert caught.value.code == code
    assert not Product.objects.exists()


def test_a_file_too_big_is_refused_before_it_is_read():
    file = upload(HEADER)
    file.size = 11 * 1024 * 1024

    with pytest.raises(FileProblem) as caught:
        products_import(file=file, name=file.name)

    assert caught.value.code == "too_big"


# Cost -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [10, 300])
def test_an_import_costs_the_same_queries_for_10_or_300_rows(softeners, rows, django_assert_num_queries):
    ProductFactory(sku="P-00000", name="Old", line=softeners)
    text = HEADER + "".join(f"P-{n:05d},Product {n},{'softeners' if n % 2 else 'New line'},,\n" for n in range(rows))

    # lines, existing products, savepoint, insert the new line, read it back, upsert the products, release
    with django_assert_num_queries(7):
        result = run(text)

    assert (result.created, result.updated) == (rows - 1, 1)
    assert Product.objects.count() == rows
