"""A NUL byte anywhere in a query string or a form is refused with 400 before any view runs (issue #10, point 5):
PostgreSQL cannot store or compare NUL in text, so it used to reach a query and end as a server error."""

import pytest
from django.urls import reverse

from loyalty.models import SalesClaim
from loyalty.services import ledger
from rewards.models import CartItem, RedemptionOrder
from tests.loyalty.factories import ProductFactory, ProgramFactory
from tests.partners.factories import MemberFactory
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def program():
    return ProgramFactory()


@pytest.fixture
def member(program, client):
    member = MemberFactory()
    ledger.earn(account=ledger.member_account(program=program, member=member), points=1_000, key="nul-welcome")
    client.force_login(member.user)
    return member


def test_a_nul_byte_in_a_search_is_refused_with_400(client, program, member):
    ProductFactory(sku="AQ-1", name="AquaSoft")

    refused = client.get(reverse("claim_product_search"), {"q": "Aqua\x00"})
    found = client.get(reverse("claim_product_search"), {"q": "Aqua"})

    assert refused.status_code == 400
    assert found.status_code == 200
    assert "AQ-1" in found.content.decode()


def test_a_nul_byte_in_a_parameter_name_is_refused_too(client, program, member):
    assert client.get(reverse("claim_list") + "?st%00atus=submitted").status_code == 400


def test_a_nul_byte_in_an_admin_list_filter_is_refused_with_400(pm_client):
    url = reverse("admin:partners_partner_changelist")

    assert pm_client.get(url, {"q": "North\x00"}).status_code == 400
    assert pm_client.get(url, {"q": "North"}).status_code == 200


def test_a_nul_byte_in_a_checkout_key_places_no_order(client, program, member):
    reward = RewardFactory(program=program, points_price=100)
    CartItem.objects.create(member=member, reward=reward, quantity=1)

    response = client.post(reverse("checkout", args=["member"]), {"checkout_key": "abc\x00def"})

    assert response.status_code == 400
    assert RedemptionOrder.objects.count() == 0
    assert ledger.member_account(program=program, member=member).available == 1_000


def test_a_nul_byte_in_a_claim_form_stores_no_claim(client, program, member):
    response = client.post(reverse("claim_new"), {"invoice_number": "INV\x001", "form-TOTAL_FORMS": "0"})

    assert response.status_code == 400
    assert SalesClaim.objects.count() == 0
