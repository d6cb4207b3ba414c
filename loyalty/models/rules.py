from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from loyalty.common.models import NegotiatedTerms, TimeStampedModel
from loyalty.constants import CapPeriod, Formula, RuleEvent, RuleStatus
from partners.constants import PartnerKind


class IncentiveRule(NegotiatedTerms, TimeStampedModel):
    """When `event` happens and the conditions hold, pay `formula` to the beneficiaries.

    Rules are versioned: a published version is never edited; a change is a new version (same `code`)
    with its own effective date, and the old one ends where the new one starts. Every posting names the
    version that paid it.
    """

    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="rules")
    code = models.SlugField(max_length=60, help_text="Stays the same across versions of one rule.")
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=RuleStatus.choices, default=RuleStatus.DRAFT)
    name = models.CharField(max_length=150)
    description = models.TextField(blank=True, help_text="Shown to members: what to do to earn.")
    event = models.CharField(max_length=30, choices=RuleEvent.choices, default=RuleEvent.SALE_LINE)
    custom_event = models.SlugField(
        max_length=60,
        blank=True,
        help_text="Custom API events: the event name; challenge completions: a challenge's code (only it pays).",
    )

    # Conditions: empty means "any".
    roles = models.ManyToManyField("partners.Role", blank=True, related_name="+")
    partner_kinds = ArrayField(models.CharField(max_length=20, choices=PartnerKind.choices), blank=True, default=list)
    tiers = models.ManyToManyField("loyalty.Tier", blank=True, related_name="+")
    regions = models.ManyToManyField("partners.Region", blank=True, related_name="+")
    product_lines = models.ManyToManyField("loyalty.ProductLine", blank=True, related_name="+")
    products = models.ManyToManyField("loyalty.Product", blank=True, related_name="+")
    min_quantity = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    min_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # Negotiated conditions: a rule for these partners only, with who approved it and why.
    named_partners = models.ManyToManyField(
        "partners.Partner", blank=True, related_name="+", help_text="Negotiated for these partners only. Empty: all."
    )
    requires_certification = models.ForeignKey(
        "loyalty.ProductLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Pays only a member who acted holding a valid certificate for this product line on the event's day.",
    )
    valid_from = models.DateField(null=True, blank=True, help_text="Events dated from this day.")
    valid_until = models.DateField(null=True, blank=True, help_text="Events dated up to and including this day.")

    # Formula.
    formula = models.CharField(max_length=20, choices=Formula.choices)
    value = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        help_text="Points (fixed), points per unit, points per one unit of money, percent, or the multiplier.",
    )
    apply_tier_multiplier = models.BooleanField(default=True)
    priority = models.PositiveIntegerField(default=100, help_text="Higher runs first.")
    exclusive = models.BooleanField(
        default=False, help_text="When this rule pays, lower-priority rules do not (stacking stops here)."
    )
    shares = models.JSONField(
        default=list,
        blank=True,
        help_text='Split between roles, e.g. [{"role": "sales", "percent": 60}, {"role": "engineer", '
        '"percent": 30}]; the rest goes to the partner account. Empty: all to the member who acted.',
    )

    # Limits.
    cap_points = models.PositiveIntegerField(null=True, blank=True, help_text="Most a member gets per period.")
    cap_period = models.CharField(max_length=10, choices=CapPeriod.choices, default=CapPeriod.MONTH)
    budget_points = models.PositiveBigIntegerField(null=True, blank=True, help_text="Most this rule pays in total.")
    budget_used = models.PositiveBigIntegerField(default=0)

    # Versioning.
    effective_from = models.DateTimeField(null=True, blank=True)
    effective_until = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["program", "-priority", "code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["program", "code", "version"], name="rule_version_unique"),
            models.CheckConstraint(condition=Q(value__gt=0), name="rule_value_positive"),
            models.CheckConstraint(condition=Q(status__in=RuleStatus.values), name="rule_status_valid"),
            models.CheckConstraint(condition=Q(formula__in=Formula.values), name="rule_formula_valid"),
            models.CheckConstraint(condition=Q(event__in=RuleEvent.values), name="rule_event_valid"),
            models.CheckConstraint(
                condition=Q(budget_points__isnull=True) | Q(budget_used__lte=models.F("budget_points")),
                name="rule_budget_not_exceeded",
            ),
            # One published version of a rule is in force at a time.
            models.UniqueConstraint(
                fields=["program", "code"],
                condition=Q(status=RuleStatus.PUBLISHED, effective_until__isnull=True),
                name="rule_one_open_version",
            ),
        ]
        indexes = [models.Index(fields=["program", "status", "event"])]

    def __str__(self):
        return f"{self.name} (v{self.version})"


class RuleUsage(models.Model):
    """Points a rule has paid one member in one cap period; locked and raised when the rule pays."""

    rule = models.ForeignKey(IncentiveRule, on_delete=models.CASCADE, related_name="usages")
    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    points = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "member", "period_start"], name="rule_usage_unique")]

    def __str__(self):
        return f"{self.rule} · {self.member} · {self.period_start}: {self.points}"
