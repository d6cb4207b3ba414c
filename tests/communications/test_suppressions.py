"""The program team's list of suppressed addresses: only e-mail addresses and phone numbers, each kept one way, so
that a number typed with spaces stops the SMS to that number."""

import pytest
from django.urls import reverse

from communications.models import Suppression, suppression_key

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Anna@Example.COM ", "anna@example.com"),
        ("+44 7057 960340", "+447057960340"),
        ("0044 (0)7057-960340", "+447057960340"),
    ],
)
def test_an_address_is_kept_one_way(typed, kept):
    assert suppression_key(typed) == kept
    Suppression.objects.create(address=typed, reason="manual")
    assert Suppression.objects.get().address == kept


def add_url() -> str:
    return reverse("admin:communications_suppression_add")


@pytest.mark.parametrize("typed", ["not an address", "anna@", "12345"])
def test_the_admin_refuses_what_is_neither_an_email_address_nor_a_phone_number(pm_client, typed):
    response = pm_client.post(add_url(), {"address": typed, "reason": "manual"})

    assert response.status_code == 200
    assert "Enter an e-mail address or a phone number" in response.content.decode()
    assert not Suppression.objects.exists()


def test_the_admin_finds_a_number_typed_another_way_already_suppressed(pm_client):
    Suppression.objects.create(address="+447057960340", reason="manual")

    response = pm_client.post(add_url(), {"address": "+44 7057 960340", "reason": "manual"})

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Suppression.objects.count() == 1
