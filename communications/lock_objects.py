"""Every lock communications takes."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q

from communications.constants import Channel, DeliveryStatus
from communications.models import Campaign, Delivery, Feedback, Survey


def delivery_lock(delivery_id: int) -> Delivery | None:
    """The delivery row, locked until the transaction ends (one sender at a time); None if it is gone."""
    return (
        Delivery.objects.select_for_update(of=("self",)).select_related("member__user").filter(pk=delivery_id).first()
    )


def deliveries_lock_due(delivery_ids: Iterable[int], *, now: datetime) -> list[Delivery]:
    """The queued e-mail and SMS among `delivery_ids` due at `now` (held by nothing, or no longer), locked until the
    transaction ends, in primary-key order. A row another sender holds is skipped (SKIP LOCKED), not waited for: it
    is that sender's to send."""
    return list(
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(pk__in=delivery_ids, status=DeliveryStatus.QUEUED, channel__in=(Channel.EMAIL, Channel.SMS))
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("pk")
    )


def campaign_lock(campaign_id: int) -> Campaign | None:
    """The campaign row, locked until the transaction ends (one sending at a time); None if it is gone."""
    return Campaign.objects.select_for_update().filter(pk=campaign_id).first()


def survey_lock(survey_id: int) -> Survey:
    """The survey row, locked until the transaction ends (one invitation run at a time)."""
    return Survey.objects.select_for_update().get(pk=survey_id)


def feedback_lock(feedback_id: int) -> Feedback:
    """The feedback row (with its member), locked until the transaction ends (one answer at a time)."""
    return Feedback.objects.select_for_update(of=("self",)).select_related("member").get(pk=feedback_id)
