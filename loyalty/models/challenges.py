"""Challenges and leaderboards.

A Challenge runs from `starts_at` to `ends_at` for an audience; its goals are measured from the program's events
(units of a line sold, claims approved, modules passed, referrals converted, any rule event). Each participant (a
member, or a company for company-level challenges) has one ChallengeEntry, raised as events arrive (its score is
the percent of the targets reached, goals added up), so a leaderboard is an index read, never a scan of events.
Completing pays through the program's rules for "challenge completed" (so caps and budgets apply); the top ranks
can win prizes when it ends. PeriodStanding is the same kind of incremental row for the program period's board:
points earned by rules in the period, per member and per company."""

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.common.models import TimeStampedModel
from loyalty.constants import ChallengeLevel, GoalMetric, RuleEvent
from partners.constants import PartnerKind


class Challenge(TimeStampedModel):
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="challenges")
    code = models.SlugField(
        _("code"),
        max_length=60,
        help_text=_("A rule for “challenge completed” can name it (custom event) to pay only it."),
    )
    name = models.CharField(_("name"), max_length=150)
    description = models.TextField(_("description"), blank=True, help_text=_("Shown to members: what to do."))
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    level = models.CharField(
        _("who takes part"), max_length=10, choices=ChallengeLevel.choices, default=ChallengeLevel.INDIVIDUAL
    )
    # The audience: empty means everyone in the program.
    roles = models.ManyToManyField("partners.Role", verbose_name=_("roles"), blank=True, related_name="+")
    partner_kinds = ArrayField(
        models.CharField(max_length=20, choices=PartnerKind.choices),
        verbose_name=_("partner types"),
        blank=True,
        default=list,
    )
    tiers = models.ManyToManyField("loyalty.Tier", verbose_name=_("tiers"), blank=True, related_name="+")
    regions = models.ManyToManyField("partners.Region", verbose_name=_("regions"), blank=True, related_name="+")
    completion_points = models.PositiveIntegerField(
        _("points for completing"),
        default=0,
        help_text=_(
            "Offered for reaching every goal; paid by the program's rules for “challenge completed” (a rule of 1 "
            "point per unit pays exactly this), with their caps and budgets."
        ),
    )
    rank_companies_by_size = models.BooleanField(
        _("rank companies per active member"),
        default=False,
        help_text=_("Companies are ranked by their score divided by their active members, so small dealers can win."),
    )
    is_published = models.BooleanField(_("published"), default=False)
    started_notified_at = models.DateTimeField(null=True, blank=True)
    results_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the final ranks and prizes were settled.")
    )

    class Meta:
        ordering = ["program", "-starts_at", "name"]
        verbose_name = _("challenge")
        verbose_name_plural = _("challenges")
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="challenge_code_unique"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="challenge_ends_after_start"),
            models.CheckConstraint(condition=Q(level__in=ChallengeLevel.values), name="challenge_level_valid"),
        ]
        indexes = [models.Index(fields=["program", "is_published", "ends_at"], name="challenge_running_idx")]

    def __str__(self):
        return self.name


class ChallengeGoal(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="goals")
    metric = models.CharField(_("measure"), max_length=20, choices=GoalMetric.choices)
    product_line = models.ForeignKey(
        "loyalty.ProductLine",
        verbose_name=_("product line"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("For units sold and sales amount: only this line. Empty: every line."),
    )
    event = models.CharField(
        _("event"), max_length=30, choices=RuleEvent.choices, blank=True, help_text=_("For “events”: which kind.")
    )
    custom_event = models.SlugField(_("custom event"), max_length=60, blank=True)
    target = models.DecimalField(_("target"), max_digits=14, decimal_places=2, validators=[MinValueValidator(0.01)])
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["challenge", "position", "id"]
        verbose_name = _("goal")
        verbose_name_plural = _("goals")
        constraints = [
            models.CheckConstraint(condition=Q(target__gt=0), name="goal_target_positive"),
            models.CheckConstraint(condition=Q(metric__in=GoalMetric.values), name="goal_metric_valid"),
        ]

    def __str__(self):
        return f"{self.get_metric_display()} ≥ {self.target}"


class ChallengePrize(models.Model):
    """What rank `rank` wins when the challenge ends: points (through the rules, like completion) and/or a text."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="prizes")
    rank = models.PositiveSmallIntegerField(_("rank"), validators=[MinValueValidator(1)])
    points = models.PositiveIntegerField(_("points"), default=0)
    description = models.CharField(
        _("prize"), max_length=200, blank=True, help_text=_("E.g. a session with our experts.")
    )

    class Meta:
        ordering = ["challenge", "rank"]
        verbose_name = _("prize")
        verbose_name_plural = _("prizes")
        constraints = [
            models.UniqueConstraint(fields=["challenge", "rank"], name="prize_rank_unique"),
            models.CheckConstraint(condition=Q(rank__gte=1), name="prize_rank_positive"),
        ]

    def __str__(self):
        return f"#{self.rank}: {self.description or self.points}"


class ChallengeEntry(models.Model):
    """One participant's standing in a challenge: a member (individual challenges) or a company (member empty)."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="entries")
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    # {goal id: value reached}, raised with each event (under the row's lock, by one UPDATE).
    progress = models.JSONField(default=dict)
    # Percent of the targets reached, each goal counted up to its target and the goals averaged (100 = complete);
    # `normalised` is the score per active member of the company (companies ranked by size), else the score.
    score = models.DecimalField(max_digits=9, decimal_places=2, default=0)
    normalised = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    active_members = models.PositiveIntegerField(default=1)
    halfway_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    final_rank = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("challenge entry")
        verbose_name_plural = _("challenge entries")
        constraints = [
            models.UniqueConstraint(
                fields=["challenge", "member"], condition=Q(member__isnull=False), name="entry_one_per_member"
            ),
            models.UniqueConstraint(
                fields=["challenge", "partner"], condition=Q(member__isnull=True), name="entry_one_per_company"
            ),
        ]
        # The boards' order, which is also the final ranks' (services.challenges.challenge_settle): value desc, who
        # completed first (not completed: last), then id. Partial per kind of participant, so that a rank is an
        # index-only count (the board filters on the kind); settled boards read the final ranks.
        indexes = [
            models.Index(
                fields=["challenge", "-score", "completed_at", "id"],
                condition=Q(member__isnull=False),
                name="entry_person_rank_idx",
            ),
            models.Index(
                fields=["challenge", "-score", "completed_at", "id"],
                condition=Q(member__isnull=True),
                name="entry_company_rank_idx",
            ),
            models.Index(
                fields=["challenge", "-normalised", "completed_at", "id"],
                condition=Q(member__isnull=True),
                name="entry_company_size_idx",
            ),
            models.Index(
                fields=["challenge", "final_rank", "id"], condition=Q(final_rank__isnull=False), name="entry_final_idx"
            ),
        ]

    def __str__(self):
        return f"{self.challenge} · {self.member or self.partner}: {self.score}"


class PeriodStanding(models.Model):
    """Points the program's rules paid a member (or, member empty, a company and its people) in one program period
    (the tier period: quarter or year), raised as they are posted."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    points = models.BigIntegerField(default=0)
    normalised = models.DecimalField(max_digits=16, decimal_places=4, default=0)
    active_members = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["program", "period_start", "member"],
                condition=Q(member__isnull=False),
                name="standing_one_per_member",
            ),
            models.UniqueConstraint(
                fields=["program", "period_start", "partner"],
                condition=Q(member__isnull=True),
                name="standing_one_per_company",
            ),
        ]
        indexes = [
            models.Index(
                fields=["program", "period_start", "-points", "id"],
                condition=Q(member__isnull=False),
                name="standing_member_rank_idx",
            ),
            models.Index(
                fields=["program", "period_start", "-points", "id"],
                condition=Q(member__isnull=True),
                name="standing_company_rank_idx",
            ),
            models.Index(
                fields=["program", "period_start", "-normalised", "id"],
                condition=Q(member__isnull=True),
                name="standing_company_size_idx",
            ),
        ]

    def __str__(self):
        return f"{self.period_start} · {self.member or self.partner}: {self.points}"


class CountedEvent(models.Model):
    """An event counted towards a challenge (its source key): one row each, so that an event retried or posted twice
    never raises progress twice (services.challenges inserts it first, ON CONFLICT DO NOTHING)."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="+")
    source_key = models.CharField(max_length=120)
    counted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("counted event")
        verbose_name_plural = _("counted events")
        constraints = [
            models.UniqueConstraint(fields=["challenge", "source_key"], name="counted_event_once"),
        ]

    def __str__(self):
        return f"{self.challenge_id}: {self.source_key}"
