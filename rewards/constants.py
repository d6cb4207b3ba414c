from django.db import models
from django.utils.translation import gettext_lazy as _


class RewardKind(models.TextChoices):
    MERCHANDISE = "merchandise", _("Merchandise")
    VOUCHER = "voucher", _("Gift card / voucher code")
    EXPERIENCE = "experience", _("Experience or event seat")
    SESSION = "session", _("Training or expert session")
    DONATION = "donation", _("Charity donation")
    CASHBACK = "cashback", _("Cashback / credit note")
    CO_MARKETING = "co_marketing", _("Co-marketing funds")


# Kinds shipped to an address; the others are delivered electronically or arranged by the program team.
SHIPPED_KINDS = {RewardKind.MERCHANDISE}
# Kinds a dated event (Reward.event_starts_at) may be: seats at an event, or places at an expert session.
EVENT_KINDS = {RewardKind.EXPERIENCE, RewardKind.SESSION}


class PaidBy(models.TextChoices):
    MEMBER = "member", _("The member's own points")
    COMPANY = "company", _("The partner's company account (owner only)")


class LimitPeriod(models.TextChoices):
    MONTH = "month", _("per month")
    QUARTER = "quarter", _("per quarter")
    YEAR = "year", _("per year")
    EVER = "ever", _("in total")


class OrderStatus(models.TextChoices):
    PLACED = "placed", _("Placed, waiting for approval")
    APPROVED = "approved", _("Approved")
    FULFILLED = "fulfilled", _("Fulfilled")
    DELIVERED = "delivered", _("Delivered")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")


ORDER_TRANSITIONS: dict[str, set[str]] = {
    OrderStatus.PLACED: {OrderStatus.APPROVED, OrderStatus.REJECTED, OrderStatus.CANCELLED},
    OrderStatus.APPROVED: {OrderStatus.FULFILLED, OrderStatus.CANCELLED},
    OrderStatus.FULFILLED: {OrderStatus.DELIVERED},
    OrderStatus.DELIVERED: set(),
    OrderStatus.REJECTED: set(),
    OrderStatus.CANCELLED: set(),
}

# Moves that give the points (and stock, and unused codes) back.
REFUNDING_STATUSES = {OrderStatus.REJECTED, OrderStatus.CANCELLED}
# Orders that still count against stock and per-member limits.
LIVE_STATUSES = [OrderStatus.PLACED, OrderStatus.APPROVED, OrderStatus.FULFILLED, OrderStatus.DELIVERED]

MAX_QUANTITY_PER_LINE = 50

# An order's delivery address, as services.order_place takes it (stored as `delivery_<field>`).
ADDRESS_FIELDS = ("name", "street", "postcode", "city", "country", "phone")
REQUIRED_ADDRESS_FIELDS = ("name", "street", "postcode", "city", "country")
