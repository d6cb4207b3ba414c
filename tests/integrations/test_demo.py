"""The demo's integration: the key `make run` prints works, and seeding twice makes one client."""

import pytest
from rest_framework.test import APIClient

from integrations.demo import DEMO_API_KEY, seed_demo_integration
from integrations.models import ApiClient
from loyalty.models import SalesSource
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import ProgramManagerFactory

pytestmark = pytest.mark.django_db


def test_the_printed_demo_key_calls_the_api_as_the_demo_erp():
    program, manager = ProgramFactory(), ProgramManagerFactory()
    source = SalesSource.objects.create(program=program, name="ERP", code="erp")

    seed = {"program_slug": program.slug, "source_code": source.code, "registered_by_email": manager.email}
    assert seed_demo_integration(**seed) is True
    assert seed_demo_integration(**seed) is False

    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {DEMO_API_KEY}")
    me = http.get("/api/v1/me/").json()
    assert (me["kind"], me["name"], me["program"]) == ("client", "Demo ERP", program.slug)
    assert ApiClient.objects.get().sales_source == source
