from django.conf import settings
from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class NegotiatedTerms(models.Model):
    """Why a rule or reward is negotiated for named partners only, and who approved it when: fair dealing expects
    promotional allowances on proportionally equal terms, so the program team must be able to show its reasons. The
    model names its partners itself (a rule's `named_partners`, a reward's `allowed_partners`)."""

    negotiated_reason = models.TextField(
        blank=True, help_text="Why these partners get it (fair dealing: equal terms must be explainable)."
    )
    negotiated_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    negotiated_approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class StatusChange(models.Model):
    """One status move of an object: who made it (`actor`; none when the system did) and when; oldest first.

    A subclass adds the object's foreign key (named by `subject_field`), the move's `from_status` and `to_status`
    (`status_fields`, with the object's status choices) and its note or reason."""

    subject_field = ""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{getattr(self, self.subject_field)}: {self.from_status or '—'} → {self.to_status}"


def status_fields(
    statuses: type[models.TextChoices], *, max_length: int, from_blank: bool = False
) -> tuple[models.CharField, models.CharField]:
    """A StatusChange's `from_status` and `to_status`: `from_status, to_status = status_fields(...)`."""
    return (
        models.CharField(max_length=max_length, choices=statuses.choices, blank=from_blank),
        models.CharField(max_length=max_length, choices=statuses.choices),
    )
