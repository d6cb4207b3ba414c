"""Members hear that a certificate expires soon: once per certificate, when its last valid day is within
CERTIFICATE_NOTICE_DAYS (the daily task loyalty.tasks.warn_expiring_certificates).

Told: an active member's certificate not yet expired, not told before (`expiry_notified_at` empty) and not already
followed by a newer certificate of the same course that lasts longer. The notice is stored and the certificate
marked told in one transaction; certificates another run is telling at the same moment are skipped (locked rows),
so running the task twice, even at once, tells each certificate once."""

from datetime import date, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.constants import CERTIFICATE_NOTICE_DAYS
from loyalty.lock_objects import certificates_to_tell_lock
from loyalty.models import Certificate
from loyalty.selectors.training import last_valid_day
from partners.constants import MemberStatus


@transaction.atomic
def warn_expiring_certificates(today: date | None = None) -> int:
    """Tell each member whose certificate's last valid day is within CERTIFICATE_NOTICE_DAYS of `today`; returns how
    many certificates were told now."""
    today = today or timezone.localdate()
    renewed = Certificate.objects.filter(
        member=OuterRef("member"), course=OuterRef("course"), expires_on__gt=OuterRef("expires_on")
    )
    due = certificates_to_tell_lock(
        Certificate.objects.filter(
            expiry_notified_at__isnull=True,
            expires_on__gt=today,
            expires_on__lte=today + timedelta(days=CERTIFICATE_NOTICE_DAYS + 1),
            member__status=MemberStatus.ACTIVE,
        )
        .exclude(Exists(renewed))
        .select_related("course", "product_line")
    )
    if not due:
        return 0
    notices = [
        Notice(
            certificate.member_id,
            f"certificate:{certificate.pk}:expiring",
            {
                "course": certificate.course.title,
                "product_line": certificate.product_line.name,
                "expires_on": last_valid_day(certificate),
                "certificate_number": certificate.number,
            },
        )
        for certificate in due
    ]
    notify_many(kind=Kind.CERTIFICATE_EXPIRING, notices=notices, link_path=reverse("learn"))
    Certificate.objects.filter(pk__in=[certificate.pk for certificate in due]).update(expiry_notified_at=timezone.now())
    return len(due)
