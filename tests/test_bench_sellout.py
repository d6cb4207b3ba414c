"""The sell-out benchmark's own pieces: its file speaks the local formats its source is set up for."""

import io
from decimal import Decimal

import pytest

from bench import sellout
from loyalty.models import Product
from loyalty.services.sellout.formats import open_table, parse_date, parse_decimal
from loyalty.services.sellout.mapping import OUR_FIELDS, mapping_problems
from tests.partners.factories import MemberFactory, PartnerFactory


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


@pytest.mark.django_db
def test_the_bare_prototype_counts_each_line_it_could_price(tmp_path):
    """The anchor the bench compares with prices every line whose partner and SKU it knows and skips the rest
    (the file's unknown SKUs); it checks nothing else."""
    for partner in PartnerFactory.create_batch(3):
        MemberFactory.create_batch(2, partner=partner)
    facts = sellout.build()
    path = tmp_path / "sellout.csv"
    written = sellout.write_file(path=str(path), source_id=facts["source_id"], lines=400)
    with open(path, encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split(";") for line in handle][1:]
    known_skus = set(Product.objects.values_list("sku", flat=True))
    priceable = sum(1 for row in rows if row[3] in known_skus)

    result = sellout.bare_prototype(path=str(path), source_id=facts["source_id"])

    assert written["lines"] == len(rows) == 400
    assert 0 < result["lines"] == priceable < 400
    assert result["seconds"] > 0
