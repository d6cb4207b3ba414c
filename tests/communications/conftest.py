import pytest
from django.test import override_settings

from communications import sms
from communications.defaults import ensure_default_templates
from communications.models import MessageTemplate


@pytest.fixture
def messages_out(db):
    """The default templates (a transactional test elsewhere may have emptied the table), SMS into sms.outbox,
    links on a known site. Not autouse: test_sms.py (another module's tests) needs none of it."""
    ensure_default_templates(MessageTemplate)
    sms.outbox.clear()
    with override_settings(SMS_URL="locmem://", SITE_URL="https://loyalty.example.com"):
        yield
