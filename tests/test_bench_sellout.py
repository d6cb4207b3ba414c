"""The sell-out benchmark's own pieces: its file speaks the local formats its source is set up for."""

import io
from decimal import Decimal

from bench import sellout
from loyalty.import_formats import open_table, parse_date, parse_decimal
from loyalty.services.imports import OUR_FIELDS, mapping_problems


def test_amounts_are_written_with_decimal_commas_and_dotted_thousands():
    assert sellout._comma(Decimal("1234.5")) == "1.234,50"
    assert sellout._comma(Decimal("-12")) == "-12,00"
    assert parse_decimal(sellout._comma(Decimal("1234567.89")), decimal_comma=True) == Decimal("1234567.89")


def test_the_files_header_fits_the_sources_mapping():
    data = (sellout.HEADER + "\n00000001;C0000001;M1;B-SOF-000;2;1.234,50;INV-1;31.12.2025;\n").encode()
    with open_table(io.BytesIO(data), delimiter=";") as table:
        assert mapping_problems(sellout.MAPPING, table.header) == []
        [(line, cells)] = list(table.rows())
    assert set(sellout.MAPPING) == set(OUR_FIELDS)
    assert (line, parse_date(cells[7], date_format="%d.%m.%Y").isoformat()) == (2, "2025-12-31")
