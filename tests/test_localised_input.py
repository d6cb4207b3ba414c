"""Amounts are typed the way the reader writes numbers (loyalty.common.forms.LocalizedDecimalField): a German
member's "1.450,00", an English member's "1,450.00" and everyone's "1450.00" are the same amount; what is not a
number is refused with a message saying how to write one, and nothing is stored."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.common.forms import decimal_text
from loyalty.models import SalesClaim, Tier
from tests.loyalty.factories import ProductFactory, ProgramFactory, TierFactory
from tests.loyalty.test_claims_services import upload
from tests.loyalty.test_claims_views import form_data, visible
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    """Claim invoices go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


@pytest.fixture
def program():
    return ProgramFactory(money_currency="EUR")


def claim_amount(client, language: str, typed: str):
    """A member reading the site in `language` claims one line of 2 units for `typed`; the response followed."""
    ProductFactory(sku="AQ-1")
    member = MemberFactory(language=language)
    client.force_login(member.user)
    data = form_data(lines=[("AQ-1", "2", typed)], document=upload())
    return client.post(reverse("claim_new"), data, follow=True)


# The member site: a claim's amount ---------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["1.450,00", "1450,00", "1450.00", "1 450,00"])
def test_a_german_member_types_an_amount_the_german_way_or_the_plain_way(client, program, typed):
    claim_amount(client, "de", typed)

    assert SalesClaim.objects.get().total_amount == Decimal("1450.00")


@pytest.mark.parametrize("typed", ["1,450.00", "1450.00", "1450,00"])
def test_an_english_member_types_an_amount_with_or_without_grouping(client, program, typed):
    claim_amount(client, "en", typed)

    assert SalesClaim.objects.get().total_amount == Decimal("1450.00")


@pytest.mark.parametrize(
    ("language", "typed", "message"),
    [
        ("en", "1.45.0", "Enter the amount as a number, e.g. 1250.00."),
        ("en", "twelve", "Enter the amount as a number, e.g. 1250.00."),
        ("de", "1,450,00", "Geben Sie den Betrag als Zahl ein, z. B. 1250,00."),
        ("de", "1.450.00", "Geben Sie den Betrag als Zahl ein, z. B. 1250,00."),
    ],
)
def test_an_amount_that_is_not_a_number_is_refused_in_the_members_words(client, program, language, typed, message):
    response = claim_amount(client, language, typed)

    assert response.status_code == 200
    assert message in visible(response)
    assert not SalesClaim.objects.exists()


def test_the_german_claim_form_shows_its_examples_the_german_way(client, program):
    member = MemberFactory(language="de")
    client.force_login(member.user)

    page = visible(client.get(reverse("claim_new")))
    html = client.get(reverse("claim_new")).content.decode()

    assert 'placeholder="z. B. 1250,00"' in html
    assert "Betrag (EUR)" in page


# The back office: a tier threshold and a multiplier ------------------------------------------------------------


def test_a_program_manager_reading_german_types_a_tier_threshold_the_german_way(pm_client, program):
    TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0"))
    data = {"program": program.pk, "name": "Gold", "rank": "1", "threshold": "20.000,00", "multiplier": "1,5"}

    response = pm_client.post(reverse("admin:loyalty_tier_add"), data, headers={"accept-language": "de"})

    assert response.status_code == 302
    gold = Tier.objects.get(name="Gold")
    assert (gold.threshold, gold.multiplier) == (Decimal("20000.00"), Decimal("1.5"))


def test_the_back_office_shows_a_stored_amount_again_the_readers_way(pm_client, program):
    tier = TierFactory(program=program, name="Gold", rank=0, threshold=Decimal("0"))
    Tier.objects.filter(pk=tier.pk).update(threshold=Decimal("20000.50"))

    page = pm_client.get(reverse("admin:loyalty_tier_change", args=[tier.pk]), headers={"accept-language": "de"})

    assert 'value="20000,50"' in page.content.decode()


# How a typed number is read ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "decimal_separator", "read"),
    [
        ("1.450", ",", "1450"),  # German: a dot groups thousands
        ("1.450", ".", "1.450"),  # English: a dot is the decimal point
        ("1,450", ".", "1450"),
        ("12,5", ".", "12.5"),  # a phone keyboard's decimal comma, in English too
        ("1.234.567,89", ",", "1234567.89"),
        ("1\u202f450,00", ",", "1450.00"),  # French groups with a narrow space
        ("-3,5", ",", "-3.5"),
        ("\u06f1\u06f4\u06f5\u06f0\u066b\u06f5", ".", "1450.5"),  # Persian digits and decimal separator
        ("1.45.0", ",", None),
        ("1,2,3", ".", None),
        ("NaN", ".", None),
        ("1e5", ".", None),
        ("", ".", None),
    ],
)
def test_a_typed_number_is_read_as_its_writer_means_it(typed, decimal_separator, read):
    assert decimal_text(typed, decimal_separator=decimal_separator) == read
