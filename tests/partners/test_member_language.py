"""A signed-in member reads the site, money included, in the language of their profile (issue #10 point 16:
money follows the member's language)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.constants import ClaimStatus
from loyalty.models import ClaimLine, SalesClaim
from tests.loyalty.factories import ProductFactory, ProgramFactory
from tests.partners.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def claim_of(member, amount: str) -> SalesClaim:
    program = ProgramFactory()
    claim = SalesClaim.objects.create(
        program=program,
        member=member,
        partner=member.partner,
        invoice_number="INV-1",
        invoice_date=program.starts_on,
        document="claims/2026/05/invoice.pdf",
        status=ClaimStatus.SUBMITTED,
        total_amount=Decimal(amount),
    )
    ClaimLine.objects.create(claim=claim, product=ProductFactory(), quantity=1, amount=Decimal(amount))
    return claim


def test_a_member_signed_in_reads_money_in_their_profiles_language(client):
    member = MemberFactory(language="de")
    claim_of(member, "1450.00")
    client.force_login(member.user)

    response = client.get(reverse("claim_list"), HTTP_ACCEPT_LANGUAGE="en")

    assert response["Content-Language"] == "de"
    assert "1.450,00\xa0€" in response.content.decode()


def test_changing_the_profiles_language_changes_the_site_at_once(client):
    member = MemberFactory(language="en", phone="")
    claim_of(member, "1450.00")
    client.force_login(member.user)
    assert "€1,450.00" in client.get(reverse("claim_list")).content.decode()

    response = client.post(
        reverse("profile"),
        {"full_name": "Ana Rep", "phone": "", "language": "de", "preferred_channel": member.preferred_channel},
    )

    assert response.status_code == 302
    assert client.get(reverse("claim_list"))["Content-Language"] == "de"


def test_someone_without_a_membership_gets_the_browsers_language(client):
    client.force_login(UserFactory())

    response = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="fr")

    assert response["Content-Language"] == "fr"
