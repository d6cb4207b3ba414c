"""Money is written one way (loyalty.common.formatting.format_money): in the reader's language, with the program's
currency, on member pages, in the admin and in tier texts; spreadsheet files carry a plain amount instead."""

import csv
import io
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import translation

from loyalty.common.formatting import format_money
from loyalty.common.spreadsheets import csv_lines
from loyalty.constants import TierMetric
from loyalty.models import SaleLine
from loyalty.services.tiers import describe_metric
from tests.loyalty.factories import ProductFactory, ProgramFactory
from tests.loyalty.test_claims_services import TODAY, submit
from tests.loyalty.test_imports import World
from tests.partners.factories import MemberFactory

LRM, NBSP = "\u200e", "\xa0"


@pytest.fixture
def private_media(settings, tmp_path):
    """Claim invoices go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


# The formatter --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "€108,450.00"),
        ("en-us", "€108,450.00"),
        ("de", f"108.450,00{NBSP}€"),
        ("fa", f"{LRM}€{NBSP}108,450.00"),
    ],
)
def test_money_is_written_as_the_language_writes_it(language, expected):
    assert format_money(Decimal("108450.00"), "EUR", language=language) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("1450"), "EUR", "€1,450.00"),  # cents always show
        (Decimal("-2900.5"), "EUR", "-€2,900.50"),
        (Decimal("0.0125"), "EUR", "€0.0125"),  # a point's value keeps its digits: nothing is rounded away
        (Decimal("0.0100"), "EUR", "€0.01"),
        (Decimal("-0.00"), "EUR", "€0.00"),
        (21400, "usd", "$21,400.00"),
        (Decimal("1450"), "JPY", "¥1,450"),
    ],
)
def test_amounts_keep_their_cents_and_their_own_precision(amount, currency, expected):
    assert format_money(amount, currency, language="en") == expected


def test_the_active_translation_is_the_default_language():
    with translation.override("de"):
        assert format_money(Decimal("1450.50"), "EUR") == f"1.450,50{NBSP}€"
    with translation.override("en"):
        assert format_money(Decimal("1450.50"), "EUR") == "€1,450.50"


def test_a_language_babel_does_not_know_falls_back_to_english():
    assert format_money(Decimal("5"), "EUR", language="xx") == "€5.00"


def test_float_is_refused_because_money_is_decimal():
    with pytest.raises(TypeError, match="Money is a Decimal, not float"):
        format_money(1450.5, "EUR")


# Templates, tiers and files -------------------------------------------------------------------------------------


def test_the_template_filter_formats_in_the_active_language():
    template = Template("{% load money %}[{{ amount|money:currency }}][{{ missing|money:currency }}]")
    context = {"amount": Decimal("2900.00"), "missing": None, "currency": "EUR"}

    with translation.override("de"):
        assert template.render(Context(context)) == f"[2.900,00{NBSP}€][]"
    with translation.override("en"):
        assert template.render(Context(context)) == "[€2,900.00][]"


def test_a_sales_tier_metric_is_money_and_a_points_metric_is_points():
    sales = ProgramFactory.build(tier_metric=TierMetric.SALES_AMOUNT, money_currency="EUR")
    points = ProgramFactory.build(tier_metric=TierMetric.POINTS_EARNED, currency_name="AquaPoints")

    with translation.override("en"):
        assert describe_metric(sales, Decimal("108450")) == "€108,450.00"
        assert describe_metric(points, Decimal("21400")) == "21,400 AquaPoints"
    with translation.override("de"):
        assert describe_metric(sales, Decimal("108450")) == f"108.450,00{NBSP}€"


def test_a_spreadsheet_cell_carries_a_plain_amount_and_the_currency_in_its_own_column():
    """Files are for adding up: the amount as a number, not "€1,450.00" (see loyalty.common.spreadsheets)."""
    text = "".join(csv_lines([[Decimal("1450.00"), "EUR"], [Decimal("-2900.50"), "EUR"]], header=["Amount", "Cur"]))

    assert list(csv.reader(io.StringIO(text))) == [["Amount", "Cur"], ["1450.00", "EUR"], ["-2900.50", "EUR"]]


# Pages ----------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
def test_the_members_claim_list_shows_the_total_in_the_members_language(client):
    program = ProgramFactory(claim_auto_approve_below=Decimal("500"))
    pages = {}
    for language in ("en", "de"):
        member = MemberFactory(language=language)  # the profile's language wins over the browser's
        submit(member, program, lines=[(ProductFactory(), Decimal("2"), Decimal("1450.00"))], invoice_date=TODAY)
        client.force_login(member.user)
        pages[language] = client.get(reverse("claim_list"), headers={"accept-language": "fr"}).content.decode()
    english, german = pages["en"], pages["de"]

    assert "€1,450.00" in english and "1450.00 EUR" not in english
    assert f"1.450,00{NBSP}€" in german


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
def test_the_admin_shows_a_claim_total_and_its_line_amounts_formatted(pm_client):
    program = ProgramFactory(claim_auto_approve_below=Decimal("500"))
    claim = submit(MemberFactory(), program, lines=[(ProductFactory(), Decimal("1"), Decimal("2900.00"))])

    queue = pm_client.get(reverse("admin:loyalty_salesclaim_changelist"), headers={"accept-language": "en"})
    page = pm_client.get(reverse("admin:loyalty_salesclaim_change", args=[claim.pk]), headers={"accept-language": "en"})

    assert '<td class="field-total">€2,900.00</td>' in queue.text
    assert "€2,900.00" in page.text and "2,900.00 EUR" not in page.text


@pytest.mark.django_db
@pytest.mark.usefixtures("private_media")
def test_the_admin_sale_lines_show_their_amount_with_the_currency(client):
    world = World()
    world.run([world.line("L1", qty="3", amount="21400.00")])
    client.force_login(world.user)  # World's uploader is a program manager

    listed = client.get(reverse("admin:loyalty_saleline_changelist"), headers={"accept-language": "en"})
    line = SaleLine.objects.get(external_id="L1")
    page = client.get(reverse("admin:loyalty_saleline_change", args=[line.pk]), headers={"accept-language": "en"})

    assert '<td class="field-amount_shown">€21,400.00</td>' in listed.text
    assert "€21,400.00" in page.text
