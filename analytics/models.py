"""Daily roll-ups: what happened each day, summed per program, partner, member role, product line and region, so that
dashboards and reports read a few thousand rows instead of the ledger (analytics.rollups keeps them; DESIGN.md §
analytics). A day is rebuilt whole — its rows deleted and summed again from the sources in one INSERT … SELECT … GROUP
BY per table — so a late or corrected source row is counted by the next run over its day.

Dimensions are plain ids without foreign keys: a roll-up row must never block deleting or merging what it counts, and
its table stays narrow. An empty dimension is stored as 0 (the company account has no role; a points move that is not
a sale has no product line), so the natural key is unique without NULL handling."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Dimensions(models.Model):
    day = models.DateField()
    program_id = models.BigIntegerField()
    partner_id = models.BigIntegerField()
    role_id = models.BigIntegerField(help_text="0: the company account, or nobody in particular.")
    region_id = models.BigIntegerField()

    class Meta:
        abstract = True

    def __str__(self):
        return f"{type(self).__name__} {self.day:%Y-%m-%d} program {self.program_id} partner {self.partner_id}"


class PointsDay(Dimensions):
    """Points that moved on the day, by kind, in points (positive numbers except `adjusted`, which is net)."""

    product_line_id = models.BigIntegerField(help_text="0: not paid for a sale line.")
    issued = models.BigIntegerField(default=0, help_text="Earned (available or pending).")
    reversed = models.BigIntegerField(default=0, help_text="Taken back by reversals.")
    redeemed = models.BigIntegerField(default=0, help_text="Spent on rewards and fees, net of refunds.")
    expired = models.BigIntegerField(default=0)
    adjusted = models.BigIntegerField(default=0, help_text="Net manual adjustments.")
    entries = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "program_id", "partner_id", "role_id", "region_id", "product_line_id"],
                name="points_day_unique",
            )
        ]
        indexes = [
            models.Index(fields=["program_id", "day"], name="points_day_program_idx"),
            # one partner's days (its overview, its health), without reading every partner's
            models.Index(fields=["program_id", "partner_id", "day"], name="points_day_partner_idx"),
        ]


class SalesDay(Dimensions):
    """Sales through the program on the day (by invoice date): claims approved and sell-out lines, counted once as
    they pay once (the paid part of each line)."""

    product_line_id = models.BigIntegerField()
    amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    units = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    lines = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "program_id", "partner_id", "role_id", "region_id", "product_line_id"],
                name="sales_day_unique",
            )
        ]
        indexes = [
            models.Index(fields=["program_id", "day"], name="sales_day_program_idx"),
            # one partner's days (its overview, its health), without reading every partner's
            models.Index(fields=["program_id", "partner_id", "day"], name="sales_day_partner_idx"),
        ]


class ClaimsDay(Dimensions):
    """Sales claims submitted on the day, and decided on the day with the hours they waited."""

    submitted = models.IntegerField(default=0)
    approved = models.IntegerField(default=0)
    rejected = models.IntegerField(default=0)
    turnaround_hours = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, help_text="Sum over the claims decided that day."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "program_id", "partner_id", "role_id", "region_id"], name="claims_day_unique"
            )
        ]
        indexes = [
            models.Index(fields=["program_id", "day"], name="claims_day_program_idx"),
            # one partner's days (its overview, its health), without reading every partner's
            models.Index(fields=["program_id", "partner_id", "day"], name="claims_day_partner_idx"),
        ]


class MembersDay(Dimensions):
    """People on the day: invited, joined (activated), first points earned, first redemption in the program."""

    invited = models.IntegerField(default=0)
    joined = models.IntegerField(default=0)
    first_earn = models.IntegerField(default=0)
    first_redemption = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "program_id", "partner_id", "role_id", "region_id"], name="members_day_unique"
            )
        ]
        indexes = [models.Index(fields=["program_id", "day"], name="members_day_program_idx")]


class MessagesDay(models.Model):
    """Messages on the day per channel, role and kind: sent, delivered, opened and acted on (a link followed)."""

    day = models.DateField()
    channel = models.CharField(max_length=10)
    role_id = models.BigIntegerField()
    kind = models.CharField(max_length=40)
    sent = models.IntegerField(default=0)
    delivered = models.IntegerField(default=0)
    opened = models.IntegerField(default=0)
    acted = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "channel", "role_id", "kind"], name="messages_day_unique")
        ]

    def __str__(self):
        return f"Messages {self.day:%Y-%m-%d} {self.channel} {self.kind}"


class PartnerHealth(models.Model):
    """A partner's health in a program as of `day` (analytics.health): the facts it is scored from and the score,
    written for every active partner by the periodic task after the roll-ups, so that dashboards read one row per
    partner shown instead of computing every partner's facts per page. The reasons are worded when shown (in the
    reader's language), from the facts."""

    program_id = models.BigIntegerField()
    partner_id = models.BigIntegerField()
    day = models.DateField()
    computed_at = models.DateTimeField()
    score = models.SmallIntegerField()
    program_trains = models.BooleanField()
    sales_this_year = models.DecimalField(max_digits=16, decimal_places=2)
    sales_last_year = models.DecimalField(max_digits=16, decimal_places=2)
    members = models.IntegerField()
    active_members = models.IntegerField()
    trained_members = models.IntegerField()
    messages = models.IntegerField()
    messages_opened = models.IntegerField()
    points_earned = models.BigIntegerField()
    points_redeemed = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["program_id", "partner_id"], name="partner_health_unique")]
        indexes = [models.Index(fields=["program_id", "score"], name="partner_health_score_idx")]

    def __str__(self):
        return f"Health of partner {self.partner_id} in program {self.program_id}: {self.score}"


class RollupDay(models.Model):
    """When each day was last summed, per roll-up: the periodic task rebuilds the days not summed since they could
    still change (today, yesterday, and any day a late source row touched)."""

    day = models.DateField()
    rollup = models.CharField(max_length=20)
    built_at = models.DateTimeField()
    rows = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollup", "day"], name="rollup_day_unique")]

    def __str__(self):
        return f"{self.rollup} {self.day:%Y-%m-%d}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting")
    RUNNING = "running", _("Being written")
    READY = "ready", _("Ready to download")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


class ExportJob(models.Model):
    """A large export written in the background to a private file: its progress while it runs, and a download that
    expires. The same person asking for the same export while one runs gets that one (`request_key`)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs")
    kind = models.CharField(max_length=40, help_text="Which list: partners, members, statement, claims…")
    file_format = models.CharField(max_length=4, choices=[("csv", "CSV"), ("xlsx", "XLSX")])
    params = models.JSONField(default=dict, blank=True, help_text="The filters, as the list had them.")
    request_key = models.CharField(max_length=64, help_text="Hash of user, kind, format and filters.")
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    rows_done = models.BigIntegerField(default=0)
    rows_total = models.BigIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True, help_text="Under the private storage root.")
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=ExportStatus.values), name="export_status_valid"),
            # One export of the same thing running per person: a second request returns it.
            models.UniqueConstraint(
                fields=["request_key"],
                condition=models.Q(status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING]),
                name="export_one_running",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="export_user_idx")]

    def __str__(self):
        return f"{self.kind}.{self.file_format} ({self.get_status_display()})"


class ReportFrequency(models.TextChoices):
    WEEKLY = "weekly", _("Weekly (Mondays)")
    MONTHLY = "monthly", _("Monthly (the 1st)")


class ReportKind(models.TextChoices):
    PORTFOLIO = "portfolio", _("Portfolio summary")
    AT_RISK = "at_risk", _("Partners at risk")
    LIABILITY = "liability", _("Points liability")


class ReportSubscription(models.Model):
    """A scheduled report an account manager or program manager receives by e-mail, with the XLSX attached or
    linked; `last_period` is the period it was last sent for, so each period is sent once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_subscriptions")
    program = models.ForeignKey("loyalty.Program", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    frequency = models.CharField(max_length=10, choices=ReportFrequency.choices)
    last_period = models.DateField(null=True, blank=True, help_text="The first day of the period last sent.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["user", "program", "kind", "frequency"], name="report_subscription_unique"),
            models.CheckConstraint(condition=models.Q(kind__in=ReportKind.values), name="report_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(frequency__in=ReportFrequency.values), name="report_frequency_valid"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.get_frequency_display()})"
