"""Daily roll-ups: what happened each day, summed per program, partner, member role, product line and region, so that
dashboards and reports read a few thousand rows instead of the ledger (analytics.rollups keeps them; DESIGN.md §
analytics). A day is rebuilt whole — its rows deleted and summed again from the sources in one INSERT … SELECT … GROUP
BY per table — so a late or corrected source row is counted by the next run over its day.

Dimensions are plain ids without foreign keys: a roll-up row must never block deleting or merging what it counts, and
its table stays narrow. An empty dimension is stored as 0 (the company account has no role; a points move that is not
a sale has no product line), so the natural key is unique without NULL handling."""

from django.db import models


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
        indexes = [models.Index(fields=["program_id", "day"], name="points_day_program_idx")]


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
        indexes = [models.Index(fields=["program_id", "day"], name="sales_day_program_idx")]


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
        indexes = [models.Index(fields=["program_id", "day"], name="claims_day_program_idx")]


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
