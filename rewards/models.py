from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from loyalty.common.models import NegotiatedTerms, StatusChange, TimeStampedModel, status_fields
from partners.constants import PartnerKind
from rewards.constants import ORDER_TRANSITIONS, SHIPPED_KINDS, LimitPeriod, OrderStatus, PaidBy, RewardKind


class RewardCategory(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    sort_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name_plural = "reward categories"

    def __str__(self):
        return self.name


class Reward(NegotiatedTerms, TimeStampedModel):
    """A catalogue item members redeem points for."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="rewards")
    category = models.ForeignKey(RewardCategory, on_delete=models.PROTECT, related_name="rewards")
    name = models.CharField(max_length=150)
    sku = models.CharField("supplier SKU", max_length=60, blank=True)
    kind = models.CharField(max_length=20, choices=RewardKind.choices)
    description = models.TextField(blank=True)
    image = models.ImageField(upload_to="rewards/", blank=True)
    points_price = models.PositiveIntegerField()
    stock = models.PositiveIntegerField(
        null=True, blank=True, help_text="Units left. Empty: unlimited. Code rewards use their code pool instead."
    )
    uses_codes = models.BooleanField(
        default=False, help_text="Each unit hands out one voucher code from the pool, shown to the member at once."
    )
    installed_on_site = models.BooleanField(
        "delivered and set up on site",
        default=False,
        help_text="Delivered to the partner and set up there (a showroom display, say): orders need an address.",
    )
    paid_by = models.CharField(max_length=10, choices=PaidBy.choices, default=PaidBy.MEMBER)
    allowed_roles = models.ManyToManyField(
        "partners.Role", blank=True, related_name="+", help_text="Empty: every role."
    )
    allowed_partner_kinds = ArrayField(
        models.CharField(max_length=20, choices=PartnerKind.choices),
        blank=True,
        default=list,
        help_text="Empty: every kind of partner.",
    )
    allowed_regions = models.ManyToManyField(
        "partners.Region", blank=True, related_name="+", help_text="Empty: every region."
    )
    min_tier = models.ForeignKey(
        "loyalty.Tier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Exclusive to partners at this tier or above. Empty: every tier.",
    )
    # An event seat or an expert session: when and where (capacity is the stock: one seat per unit ordered).
    event_starts_at = models.DateTimeField(
        null=True, blank=True, help_text="For an event or a session: when it starts. Empty: not a dated event."
    )
    event_place = models.CharField(max_length=200, blank=True, help_text="Where the event or session takes place.")
    # Negotiated conditions: a reward only these partners see and may order, with who approved it and why.
    allowed_partners = models.ManyToManyField(
        "partners.Partner", blank=True, related_name="+", help_text="Negotiated for these partners only. Empty: all."
    )
    requires_certification = models.ForeignKey(
        "loyalty.ProductLine",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Reserved for members holding a valid certificate for this product line. Empty: everyone.",
    )
    limit_per_member = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    limit_period = models.CharField(max_length=10, choices=LimitPeriod.choices, default=LimitPeriod.MONTH)
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["points_price", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(points_price__gt=0), name="reward_price_positive"),
            models.CheckConstraint(condition=Q(kind__in=RewardKind.values), name="reward_kind_valid"),
            models.CheckConstraint(condition=Q(paid_by__in=PaidBy.values), name="reward_paid_by_valid"),
            models.CheckConstraint(
                condition=Q(available_until__isnull=True)
                | Q(available_from__isnull=True)
                | Q(available_until__gt=models.F("available_from")),
                name="reward_window_ordered",
            ),
        ]
        indexes = [models.Index(fields=["program", "is_active", "points_price"])]

    def __str__(self):
        return self.name

    @property
    def ships(self) -> bool:
        """Shipped by the supplier (it goes in the supplier file)."""
        return self.kind in SHIPPED_KINDS

    @property
    def needs_address(self) -> bool:
        """An order of it needs a delivery address: it is shipped, or delivered and set up on site."""
        return self.ships or self.installed_on_site

    @property
    def units_left(self) -> int | None:
        """Units that can still be redeemed (None: unlimited). A code reward's are its free codes, which the
        rewards selectors count into `free_codes`."""
        return self.free_codes if self.uses_codes else self.stock

    @property
    def out_of_stock(self) -> bool:
        return self.units_left == 0

    def is_available_at(self, moment) -> bool:
        return (
            self.is_active
            and (self.available_from is None or self.available_from <= moment)
            and (self.available_until is None or moment < self.available_until)
        )


class VoucherCode(models.Model):
    """One code of a code reward's pool; handed to exactly one order line."""

    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="codes")
    code = models.CharField(max_length=120)
    order_line = models.ForeignKey(
        "RedemptionLine", on_delete=models.PROTECT, null=True, blank=True, related_name="codes"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reward", "code"], name="voucher_code_unique_per_reward")]
        indexes = [models.Index(fields=["reward", "id"], condition=Q(order_line__isnull=True), name="voucher_free_idx")]

    def __str__(self):
        return f"{self.reward}: {self.code[:4]}…"


class CartItem(models.Model):
    """What a member has put in the cart; kept in the database so it follows them across devices."""

    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="cart_items")
    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["member", "reward"], name="cart_one_row_per_reward"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="cart_quantity_positive"),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.reward}"


class RedemptionOrder(TimeStampedModel):
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="orders")
    member = models.ForeignKey("partners.Member", on_delete=models.PROTECT, related_name="orders")
    account = models.ForeignKey("loyalty.PointsAccount", on_delete=models.PROTECT, related_name="orders")
    paid_by = models.CharField(max_length=10, choices=PaidBy.choices)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PLACED)
    total_points = models.PositiveIntegerField()
    checkout_key = models.CharField(max_length=80, unique=True, help_text="One checkout, one order.")
    request_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="sha-256 of what the checkout asked for (account, lines, address): a repeat of the checkout key "
        "must ask for the same. Empty on orders placed before it was recorded.",
    )
    spend_entry = models.OneToOneField(
        "loyalty.PointsEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refund_entry = models.OneToOneField(
        "loyalty.PointsEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    delivery_name = models.CharField(max_length=150, blank=True)
    delivery_street = models.CharField(max_length=200, blank=True)
    delivery_postcode = models.CharField(max_length=20, blank=True)
    delivery_city = models.CharField(max_length=100, blank=True)
    delivery_country = models.CharField(max_length=60, blank=True)
    delivery_phone = models.CharField(max_length=30, blank=True)
    carrier = models.CharField(max_length=60, blank=True)
    tracking_number = models.CharField(max_length=80, blank=True)
    decision_reason = models.CharField(max_length=300, blank=True, help_text="Why it was rejected or cancelled.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(condition=Q(total_points__gt=0), name="order_total_positive"),
        ]
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["member", "-created_at"])]

    def __str__(self):
        return f"Order {self.pk}"

    @property
    def needs_shipping(self) -> bool:
        return bool(self.delivery_street)

    def can_move_to(self, status: str) -> bool:
        return status in ORDER_TRANSITIONS[self.status]

    def can_cancel(self) -> bool:
        return self.can_move_to(OrderStatus.CANCELLED)


class RedemptionLine(models.Model):
    order = models.ForeignKey(RedemptionOrder, on_delete=models.CASCADE, related_name="lines")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    points_each = models.PositiveIntegerField()
    # For a dated event or session: whether the seats' holder came (set by the program team after the event;
    # attending can pay points through the rules' "event attended" event).
    attended_at = models.DateTimeField(null=True, blank=True)
    no_show = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(attended_at__isnull=True) | Q(no_show=False), name="line_attended_or_not"
            ),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.reward}"

    @property
    def points_total(self) -> int:
        return self.quantity * self.points_each


class OrderEvent(StatusChange):
    """Every status move of an order: who, when, from, to and a note."""

    subject_field = "order"
    order = models.ForeignKey(RedemptionOrder, on_delete=models.CASCADE, related_name="events")
    from_status, to_status = status_fields(OrderStatus, max_length=20, from_blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
