from django.db import models


class RewardKind(models.TextChoices):
    MERCHANDISE = "merchandise", "Merchandise"
    VOUCHER = "voucher", "Gift card / voucher code"
    EXPERIENCE = "experience", "Experience or event seat"
    SESSION = "session", "Training or expert session"
    DONATION = "donation", "Charity donation"
    CASHBACK = "cashback", "Cashback / credit note"
    CO_MARKETING = "co_marketing", "Co-marketing funds"


# Kinds shipped to an address; the others are delivered electronically or arranged by the program team.
SHIPPED_KINDS = {RewardKind.MERCHANDISE}


class PaidBy(models.TextChoices):
    MEMBER = "member", "The member's own points"
    COMPANY = "company", "The partner's company account (owner only)"


class LimitPeriod(models.TextChoices):
    MONTH = "month", "per month"
    QUARTER = "quarter", "per quarter"
    YEAR = "year", "per year"
    EVER = "ever", "in total"


class OrderStatus(models.TextChoices):
    PLACED = "placed", "Placed, waiting for approval"
    APPROVED = "approved", "Approved"
    FULFILLED = "fulfilled", "Fulfilled"
    DELIVERED = "delivered", "Delivered"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


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
