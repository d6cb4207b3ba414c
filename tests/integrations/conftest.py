import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.integrations.factories import ApiClientFactory, issue_key


@pytest.fixture(autouse=True)
def empty_cache():
    """Rate-limit counters (and anything else cached) start at zero in every test."""
    cache.clear()


@pytest.fixture
def machine():
    """machine(**ApiClientFactory fields) -> (an APIClient sending the new client's key, the ApiClient)."""

    def make(**fields):
        client = ApiClientFactory(**fields)
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_key(client)}")
        return http, client

    return make


@pytest.fixture
def person_api():
    """person_api(user) -> an APIClient signed in as `user` with a phone-app token."""
    from integrations import keys

    def make(user):
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {keys.token_issue(user=user).secret}")
        return http

    return make
