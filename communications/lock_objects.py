"""Every lock communications takes."""

from communications.models import Campaign, Delivery, Feedback, Survey


def delivery_lock(delivery_id: int) -> Delivery | None:
    """The delivery row, locked until the transaction ends (one sender at a time); None if it is gone."""
    return (
        Delivery.objects.select_for_update(of=("self",)).select_related("member__user").filter(pk=delivery_id).first()
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
