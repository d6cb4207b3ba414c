from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.common.models import TimeStampedModel
from loyalty.constants import EnrolmentMode, LeaverPolicy, MdfPayout, TierMetric, TierPeriod


class Program(TimeStampedModel):
    """A loyalty or incentive program. A deployment runs several at once."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    currency_name = models.CharField(
        max_length=30, default="points", help_text='What members call a point, e.g. "AquaPoints".'
    )
    point_value = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=Decimal("0.0100"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Money value of one point, for the points liability.",
    )
    money_currency = models.CharField(max_length=3, default="EUR")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    enrolment_mode = models.CharField(max_length=20, choices=EnrolmentMode.choices, default=EnrolmentMode.INVITE_ONLY)
    expiry_months = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Points expire this many months after they are earned. Empty: never."
    )
    expiry_notice_days = models.PositiveSmallIntegerField(
        default=30,
        validators=[MaxValueValidator(365)],
        help_text="Members hear of their points expiring this many days before (one message per expiry day).",
    )
    leaver_policy = models.CharField(max_length=20, choices=LeaverPolicy.choices, default=LeaverPolicy.TRANSFER)
    member_share_percent = models.PositiveSmallIntegerField(
        default=100,
        validators=[MaxValueValidator(100)],
        help_text="Default share of a staff bonus paid to the member; the rest goes to the partner account.",
    )
    adjustment_approval_threshold = models.PositiveIntegerField(
        default=5000, help_text="Manual adjustments larger than this many points need a second program manager."
    )
    order_approval_threshold = models.PositiveIntegerField(
        default=20000, help_text="Reward orders worth more points than this wait for a program manager's approval."
    )
    tier_metric = models.CharField(max_length=20, choices=TierMetric.choices, default=TierMetric.SALES_AMOUNT)
    tier_window_days = models.PositiveSmallIntegerField(
        default=365, help_text="Partner tiers are judged on this many past days (a rolling window)."
    )
    tier_period = models.CharField(
        max_length=10,
        choices=TierPeriod.choices,
        default=TierPeriod.QUARTER,
        help_text="Upgrades happen at once; a partner keeps a tier at least until the end of this period.",
    )
    claim_window_days = models.PositiveSmallIntegerField(
        default=60, help_text="Sales can be claimed up to this many days after the invoice date."
    )
    claim_auto_approve_below = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("500.00"),
        help_text="Claims without flags and worth less than this are approved without review.",
    )
    # Hard ceilings of a claim, for products without their own: far above any real invoice of water-treatment
    # equipment, far below the typos and probes they stop (100,000 units for 99,999,999,999).
    claim_max_quantity = models.PositiveIntegerField(
        _("claim ceiling (units)"),
        default=10_000,
        validators=[MinValueValidator(1)],
        help_text=_(
            "A claim with more units of one product (its lines added up) is refused; a product can set its own "
            "ceiling. 10,000 is far above any real invoice and stops mistyped or invented quantities."
        ),
    )
    claim_max_amount = models.DecimalField(
        _("claim ceiling (amount)"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("1000000.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_(
            "A claim with more money of one product (its lines added up, in the program's currency) is refused; a "
            "product can set its own ceiling. 1,000,000 is far above any real invoice and stops mistyped amounts."
        ),
    )
    mdf_percent = models.DecimalField(
        _("co-marketing share (%)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("50.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text=_("Part of an activity's actual cost the program reimburses (a tier can give another share)."),
    )
    mdf_share_by_brands = models.BooleanField(
        _("reduce by the other brands named"),
        default=False,
        help_text=_("The share is divided by 1 + the number of other brands the advert names."),
    )
    mdf_payout = models.CharField(
        _("co-marketing paid as"), max_length=12, choices=MdfPayout.choices, default=MdfPayout.POINTS
    )
    mdf_sales_share_percent = models.DecimalField(
        _("co-marketing fund as a share of last period's sales (%)"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(member_share_percent__lte=100), name="program_share_max_100"),
            models.CheckConstraint(condition=Q(point_value__gte=0), name="program_point_value_not_negative"),
            models.CheckConstraint(
                condition=Q(claim_max_quantity__gte=1, claim_max_amount__gt=0),
                name="program_claim_ceilings_positive",
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="program_ends_after_start",
            ),
        ]

    def __str__(self):
        return self.name
