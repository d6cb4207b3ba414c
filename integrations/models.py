"""Machine clients of the API (an ERP, a distributor's system, a fulfilment vendor, a learning system), their keys,
the outcomes stored for idempotent retries, and the webhooks they subscribe to (docs/decisions.md #29).

Secrets are never stored: an API key or a member token is shown once when made, and only its SHA-256 is kept (the
secret is 32 random bytes, so a fast hash is as safe as a slow one and costs nothing per request). A webhook's
signing secret is the exception: signing needs it, so it is stored, and shown to the program team in the admin."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from integrations.constants import DeliveryStatus, EventType, IdempotencyState, Scope
from loyalty.common.models import TimeStampedModel


class ApiClient(TimeStampedModel):
    """An integration registered by a program manager: what it may do (scopes) in which program, and for a
    distributor's system, the one distributor whose dealers' sales it may report."""

    name = models.CharField(_("name"), max_length=120)
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="api_clients")
    scopes = ArrayField(models.CharField(max_length=40, choices=Scope.choices), default=list, blank=True)
    distributor = models.ForeignKey(
        "partners.Partner",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("When set, the client may only report sales of this distributor's dealers."),
    )
    sales_source = models.ForeignKey(
        "loyalty.SalesSource",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="api_clients",
        help_text=_("The source its sell-out lines are recorded under (their external ids are unique per source)."),
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Empty: the default rate limit (API_CLIENT_RATE).")
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["program", "name"], name="api_client_name_unique")]
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")

    def __str__(self):
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class HashedKey(models.Model):
    """A secret given out once: `prefix` identifies it (shown in lists and logs), `secret_hash` checks it."""

    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class ApiKey(HashedKey):
    """One of a client's keys; a client may hold two while it rotates them."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="keys")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("API key")

    def __str__(self):
        return f"{self.client} key {self.prefix}"


class MemberToken(HashedKey):
    """A person's token for a phone app: the API with their own visibility, as on the member site."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("device"), max_length=80, blank=True)

    def __str__(self):
        return f"{self.user} token {self.prefix}"


class IdempotencyRecord(models.Model):
    """The first outcome of a POST with an Idempotency-Key, replayed for 24 hours to the same caller sending the
    same key and body (integrations.idempotency)."""

    owner = models.CharField(max_length=40, help_text="client:<id> or user:<id>")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    state = models.CharField(max_length=10, choices=IdempotencyState.choices, default=IdempotencyState.RUNNING)
    status_code = models.SmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=bytes)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self):
        return f"{self.owner} {self.key}"


class WebhookSubscription(TimeStampedModel):
    """A client's endpoint for some event types, signed with its own secret (the Standard Webhooks way)."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(_("address"), max_length=500)
    event_types = ArrayField(models.CharField(max_length=40, choices=EventType.choices), default=list)
    secret = models.CharField(max_length=80, help_text="whsec_ and 32 random bytes in base64.")
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    failures_in_a_row = models.IntegerField(default=0)

    class Meta:
        ordering = ["client", "url"]

    def __str__(self):
        return f"{self.client}: {self.url}"


class WebhookEvent(models.Model):
    """Something that happened, written in the same transaction as the change itself (an outbox): delivered to
    every subscription of its program's clients for its type once the transaction commits."""

    public_id = models.CharField(max_length=40, unique=True, help_text="msg_… : the webhook-id header.")
    program = models.ForeignKey(
        "loyalty.Program", on_delete=models.CASCADE, null=True, blank=True, related_name="+",
        help_text="Empty for events of no program (a member joining a partner): every client may hear of them.",
    )  # fmt: skip
    type = models.CharField(max_length=40, choices=EventType.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["program", "type", "created_at"], name="webhook_event_type_idx")]

    def __str__(self):
        return f"{self.type} {self.public_id}"


class WebhookDelivery(models.Model):
    """One event to one subscription: attempted until it succeeds or the retries run out."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.SmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The first 2,000 characters.")
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "subscription"], name="webhook_delivery_unique"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]),
                name="webhook_delivery_due_idx",
            )
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"{self.event} to {self.subscription}"


class WebhookAttempt(models.Model):
    """One try of a delivery, for the log in the admin: when, what came back, how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    response_status = models.SmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=300, blank=True)
    milliseconds = models.IntegerField(default=0)

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"{self.delivery} at {self.at:%Y-%m-%d %H:%M:%S}"
