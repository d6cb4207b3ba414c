from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from communications.constants import Channel, DeliveryStatus, Kind, SuppressionReason, Topic
from communications.rendering import template_problem
from loyalty.common.models import TimeStampedModel


class MessageTemplate(TimeStampedModel):
    """The words of one kind of message on one channel, for one language and role (blank: any). The most specific
    active template wins: language and role, then language, then role, then any; English before the rest."""

    kind = models.CharField(_("kind"), max_length=40, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, blank=True, help_text=_("Blank: any language.")
    )
    role = models.ForeignKey(
        "partners.Role",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("role"),
        help_text=_("Blank: any role."),
    )
    subject = models.CharField(
        _("subject"), max_length=200, blank=True, help_text=_("E-mail subject and inbox title; SMS ignore it.")
    )
    body = models.TextField(_("body"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["kind", "channel", "language", "role__sort_order"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "channel", "language", "role"],
                nulls_distinct=False,
                name="messagetemplate_one_per_audience",
            ),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="messagetemplate_kind_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="messagetemplate_channel_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.get_channel_display()} · {self.language or '*'} · {self.role or '*'}"

    def clean(self):
        if self.kind not in Kind.values:
            return  # the field's own validation says so
        errors = {}
        for field in ("subject", "body"):
            problem = template_problem(self.kind, getattr(self, field))
            if problem:
                errors[field] = problem
        if errors:
            raise ValidationError(errors)


class Delivery(TimeStampedModel):
    """One message to one member on one channel. The idempotency key (kind:source:member:channel) makes a repeated
    event (a retried task, a re-run import, a double click) find its row instead of sending again. The in-app
    inbox is the member's `inbox` deliveries; `read_at` marks the ones they read."""

    kind = models.CharField(max_length=40, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    topic = models.CharField(max_length=20, choices=Topic.choices)
    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="deliveries")
    source_key = models.CharField(max_length=120, help_text=_("The event this message tells about."))
    idempotency_key = models.CharField(max_length=220, unique=True)
    address = models.CharField(max_length=254, blank=True, help_text=_("The e-mail address or phone number."))
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    link = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField()
    not_before = models.DateTimeField(null=True, blank=True, help_text=_("Held until then (quiet hours, a retry)."))
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-queued_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="delivery_channel_valid"),
        ]
        indexes = [
            models.Index(fields=["member", "channel", "-queued_at"], name="delivery_inbox_idx"),
            models.Index(fields=["status", "not_before"], name="delivery_due_idx"),
            models.Index(fields=["kind", "-queued_at"], name="delivery_kind_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} → {self.address or self.member_id} ({self.get_channel_display()})"


class Preference(models.Model):
    """A member's choice for one topic: the channel it comes on, and whether they want it at all (marketing topics
    only; transactional messages always go out)."""

    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="message_preferences")
    topic = models.CharField(max_length=20, choices=Topic.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    opted_in = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "topic"], name="preference_one_per_topic"),
            models.CheckConstraint(condition=Q(topic__in=Topic.values), name="preference_topic_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="preference_channel_valid"),
        ]

    def __str__(self):
        return f"{self.member_id} · {self.topic} → {self.channel}"


class Suppression(models.Model):
    """An address nothing is sent to any more (a hard bounce, a complaint). `address` is lower-case."""

    address = models.CharField(_("address"), max_length=254, unique=True, help_text=_("E-mail address or phone."))
    reason = models.CharField(_("reason"), max_length=12, choices=SuppressionReason.choices)
    at = models.DateTimeField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        ordering = ["-at"]

    def __str__(self):
        return self.address

    def save(self, *args, **kwargs):
        self.address = self.address.strip().lower()
        super().save(*args, **kwargs)
