"""Members hear once that a certificate expires soon (loyalty.services.certificate_notices, a daily task)."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from communications.constants import Kind
from communications.models import Delivery
from loyalty.constants import CERTIFICATE_NOTICE_DAYS
from loyalty.models import Certificate
from loyalty.services.certificate_notices import warn_expiring_certificates
from loyalty.tasks.training import warn_expiring_certificates as warn_task
from partners.constants import MemberStatus
from tests.loyalty.factories import CertificateFactory, ProductLineFactory

pytestmark = pytest.mark.django_db

TODAY = date(2027, 3, 1)


def certificate(*, last_valid_day: date, **fields) -> Certificate:
    expires_on = last_valid_day + timedelta(days=1)
    return CertificateFactory(issued_on=expires_on - timedelta(days=365), expires_on=expires_on, **fields)


def told() -> list[tuple[int, str]]:
    return list(
        Delivery.objects.filter(kind=Kind.CERTIFICATE_EXPIRING, channel="inbox")
        .order_by("pk")
        .values_list("member_id", "source_key")
    )


def test_a_certificate_whose_last_day_is_within_the_notice_days_is_told_once():
    due = certificate(
        last_valid_day=TODAY + timedelta(days=CERTIFICATE_NOTICE_DAYS),
        course__title="Softener expert",
        course__product_line=ProductLineFactory(name="Softeners"),
    )
    later = certificate(last_valid_day=TODAY + timedelta(days=CERTIFICATE_NOTICE_DAYS + 1))

    assert warn_expiring_certificates(TODAY) == 1
    assert warn_expiring_certificates(TODAY) == 0
    assert warn_expiring_certificates(TODAY + timedelta(days=1)) == 1  # the later one's turn, the first not again

    assert told() == [
        (due.member_id, f"certificate:{due.pk}:expiring"),
        (later.member_id, f"certificate:{later.pk}:expiring"),
    ]
    message = Delivery.objects.get(source_key=f"certificate:{due.pk}:expiring", channel="inbox")
    assert message.subject == "Your Softeners certificate expires on 31 Mar 2027"
    assert "Pass “Softener expert” again before 31 Mar 2027" in message.body
    due.refresh_from_db()
    assert due.expiry_notified_at is not None


def test_expired_certificates_and_members_who_left_are_not_told():
    certificate(last_valid_day=TODAY - timedelta(days=1))
    left = certificate(last_valid_day=TODAY + timedelta(days=5))
    left.member.status = MemberStatus.LEFT
    left.member.save(update_fields=["status"])

    assert warn_expiring_certificates(TODAY) == 0
    assert told() == []
    assert Certificate.objects.filter(expiry_notified_at__isnull=False).count() == 0


def test_a_certificate_already_renewed_is_not_told():
    old = certificate(last_valid_day=TODAY + timedelta(days=10))
    CertificateFactory(
        member=old.member,
        course=old.course,
        issued_on=TODAY - timedelta(days=1),
        expires_on=TODAY + timedelta(days=365),
    )

    assert warn_expiring_certificates(TODAY) == 0
    assert told() == []


def test_the_daily_task_tells_todays_expiring_certificates():
    due = certificate(last_valid_day=timezone.localdate() + timedelta(days=3))

    assert warn_task() == 1
    assert told() == [(due.member_id, f"certificate:{due.pk}:expiring")]
