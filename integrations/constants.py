"""The API's scopes and the webhook event types: what a machine client may do, and what it may be told."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    SALES_WRITE = "sales:write", _("Report sell-out lines")
    EVENTS_WRITE = "events:write", _("Report activity events (training passed, custom events)")
    PARTNERS_READ = "partners:read", _("Read partners")
    PARTNERS_WRITE = "partners:write", _("Create and update partners and members")
    MEMBERS_READ = "members:read", _("Read members")
    BALANCES_READ = "balances:read", _("Read balances and statements")
    REWARDS_READ = "rewards:read", _("Read the rewards catalogue")
    ORDERS_READ = "orders:read", _("Read reward orders")
    ORDERS_WRITE = "orders:write", _("Update reward orders' status and tracking (fulfilment)")
    CLAIMS_READ = "claims:read", _("Read sales claims")
    CLAIMS_DECIDE = "claims:decide", _("Approve and reject sales claims")
    REFERRALS_WRITE = "referrals:write", _("Convert referrals")


class EventType(models.TextChoices):
    POINTS_EARNED = "points.earned", _("Points earned")
    CLAIM_DECIDED = "claim.decided", _("Claim approved or rejected")
    ORDER_STATUS_CHANGED = "order.status_changed", _("Reward order status changed")
    TIER_CHANGED = "tier.changed", _("Partner tier changed")
    MEMBER_JOINED = "member.joined", _("Member joined")
    MEMBER_LEFT = "member.left", _("Member left")
    IMPORT_FINISHED = "import.finished", _("Sales import finished")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SUCCEEDED = "succeeded", _("Delivered")
    RETRYING = "retrying", _("Failed, will retry")
    FAILED = "failed", _("Failed, given up")


class IdempotencyState(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
