from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.urls import reverse

from loyalty.common.models import TimeStampedModel
from loyalty.constants import AdjustmentStatus, EntryKind, EntrySource


class PointsAccount(models.Model):
    """Points of one member, or of one partner company, in one program.

    The balance columns are a cache of the entries, changed only by loyalty.services.ledger in the same
    transaction as the entries, under this row's lock.
    """

    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="accounts")
    member = models.ForeignKey(
        "partners.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="points_accounts"
    )
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.PROTECT, null=True, blank=True, related_name="points_accounts"
    )
    available = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    lifetime_earned = models.BigIntegerField(default=0)
    redeemed = models.BigIntegerField(default=0)
    expired = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(member__isnull=False) & Q(partner__isnull=True))
                | (Q(member__isnull=True) & Q(partner__isnull=False)),
                name="account_member_xor_partner",
            ),
            models.UniqueConstraint(
                fields=["program", "member"], condition=Q(member__isnull=False), name="account_one_per_member"
            ),
            models.UniqueConstraint(
                fields=["program", "partner"], condition=Q(partner__isnull=False), name="account_one_per_partner"
            ),
            models.CheckConstraint(condition=Q(available__gte=0), name="account_available_not_negative"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="account_pending_not_negative"),
        ]

    def __str__(self):
        holder = self.member if self.member_id else self.partner
        return f"{holder} · {self.program}"

    @property
    def is_company_account(self) -> bool:
        return self.partner_id is not None


class PointsEntry(models.Model):
    """One change of an account, append-only (PostgreSQL triggers refuse UPDATE and DELETE).

    `available_delta` and `pending_delta` are signed; the account's balances are their sums.
    """

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    available_delta = models.BigIntegerField(default=0)
    pending_delta = models.BigIntegerField(default=0)
    idempotency_key = models.CharField(max_length=200, unique=True)
    fingerprint = models.CharField(max_length=64, help_text="Hash of the request, to refuse a reused key.")
    source_type = models.CharField(max_length=40, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    explanation = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    reverses = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversals")
    counterpart_account = models.ForeignKey(
        PointsAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    available_at = models.DateTimeField(null=True, blank=True, help_text="When pending points become available.")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField(db_default=models.functions.Now())

    class Meta:
        verbose_name_plural = "points entries"
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EntryKind.values), name="entry_kind_valid"),
            models.CheckConstraint(
                condition=~(Q(available_delta=0) & Q(pending_delta=0)), name="entry_changes_something"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-id"], name="entry_statement_idx"),
            models.Index(fields=["source_type", "source_id"], name="entry_source_idx"),
            # The ledger is append-only and created_at follows insertion, so a block-range index finds a day's entries
            # (the daily roll-ups, analytics.rollups) at almost no cost to writing.
            BrinIndex(fields=["created_at"], name="entry_created_brin"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.points:+d} ({self.idempotency_key})"

    @property
    def points(self) -> int:
        """The change a member thinks of: available points, or pending ones for a pending earn."""
        return self.available_delta or self.pending_delta

    @property
    def activity_url(self) -> str:
        """The page of the training module or challenge an entry came from ("" for other sources): their source
        ids are "training:<module>:<member>" and "challenge:<challenge>:…"."""
        kind, _, rest = self.source_id.partition(":")
        number = rest.split(":", 1)[0]
        if not number.isdigit():
            return ""
        if self.source_type == EntrySource.TRAINING and kind == "training":
            return reverse("module_detail", args=[int(number)])
        if self.source_type == EntrySource.CHALLENGE and kind == "challenge":
            return reverse("challenge_detail", args=[int(number)])
        return ""

    @property
    def claim_id(self) -> int | None:
        """The sales claim an entry of a claim line came from (its source id is ClaimLine.source_key)."""
        parts = self.source_id.split(":")
        if self.source_type != EntrySource.CLAIM or len(parts) != 3 or not parts[1].isdigit():
            return None
        return int(parts[1])


class PointsLot(models.Model):
    """Points added by one entry that can still be spent, expired or reversed, soonest-to-expire first.

    `remaining` is changed only by the ledger under the account's lock and always equals `points`
    minus the allocations against the lot.
    """

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="lots")
    entry = models.ForeignKey(PointsEntry, on_delete=models.PROTECT, related_name="lots")
    points = models.BigIntegerField()
    remaining = models.BigIntegerField()
    is_pending = models.BooleanField(default=False)
    available_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="lot_points_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("points")), name="lot_remaining_in_range"
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "expires_at", "id"], condition=Q(remaining__gt=0), name="lot_open_fifo_idx"
            ),
            models.Index(fields=["expires_at"], condition=Q(remaining__gt=0, is_pending=False), name="lot_due_idx"),
            models.Index(fields=["available_at"], condition=Q(is_pending=True), name="lot_release_idx"),
        ]

    def __str__(self):
        return f"Lot {self.pk}: {self.remaining}/{self.points}"


class PointsAllocation(models.Model):
    """Which lot an entry took points from (positive) or gave them back to (negative)."""

    lot = models.ForeignKey(PointsLot, on_delete=models.PROTECT, related_name="allocations")
    entry = models.ForeignKey(PointsEntry, on_delete=models.PROTECT, related_name="allocations")
    points = models.BigIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(points=0), name="allocation_not_zero")]

    def __str__(self):
        return f"{self.points:+d} from lot {self.lot_id}"


class PointsAdjustment(TimeStampedModel):
    """A manual correction by a program manager; large ones wait for a second program manager."""

    account = models.ForeignKey(PointsAccount, on_delete=models.PROTECT, related_name="adjustments")
    points = models.BigIntegerField(help_text="Positive to add points, negative to take them away.")
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=AdjustmentStatus.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=300, blank=True)
    entry = models.OneToOneField(PointsEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="adjustment_not_zero"),
            models.CheckConstraint(condition=Q(status__in=AdjustmentStatus.values), name="adjustment_status_valid"),
        ]

    def __str__(self):
        return f"Adjustment {self.points:+d} on {self.account}"
