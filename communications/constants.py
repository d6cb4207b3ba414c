"""What communications talks about: channels, topics, the catalogue of kinds (with their variables) and the
statuses of a delivery."""

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    INBOX = "inbox", _("Inbox")


class Topic(models.TextChoices):
    ACCOUNT = "account", _("Account")
    CLAIMS = "claims", _("Claims")
    POINTS = "points", _("Points")
    TIERS = "tiers", _("Tiers")
    ORDERS = "orders", _("Orders")
    CAMPAIGNS = "campaigns", _("Campaigns")
    SURVEYS = "surveys", _("Surveys")
    FEEDBACK = "feedback", _("Feedback")
    LEARNING = "learning", _("Training and certificates")
    CHALLENGES = "challenges", _("Challenges")


# Marketing topics need the member's consent and carry a one-click unsubscribe (RFC 8058); every other topic is
# transactional: it always goes out, on the member's preferred channel.
MARKETING_TOPICS = frozenset({Topic.CAMPAIGNS, Topic.SURVEYS})


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    BOUNCED = "bounced", _("Bounced")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    SUPPRESSED = "suppressed", _("Suppressed")


class SuppressionReason(models.TextChoices):
    BOUNCED = "bounced", _("Hard bounce")
    COMPLAINED = "complained", _("Spam complaint")
    MANUAL = "manual", _("Added by the program team")


class Kind(models.TextChoices):
    INVITATION = "invitation", _("Invitation")
    MEMBER_APPROVED = "member_approved", _("Member approved")
    MEMBER_DEACTIVATED = "member_deactivated", _("Member deactivated")
    CLAIM_APPROVED = "claim_approved", _("Claim approved")
    CLAIM_REJECTED = "claim_rejected", _("Claim rejected")
    CLAIM_COLLEAGUE = "claim_colleague", _("Named on a colleague's claim")
    POINTS_IMPORTED = "points_imported", _("Points from a sales import (digest)")
    ADJUSTMENT_POSTED = "adjustment_posted", _("Points adjustment posted")
    TIER_UP = "tier_up", _("Tier up")
    TIER_DOWN = "tier_down", _("Tier down")
    TIER_KEEP = "tier_keep", _("To keep your tier")
    POINTS_EXPIRING = "points_expiring", _("Points expiring")
    ORDER_APPROVED = "order_approved", _("Order approved")
    ORDER_SHIPPED = "order_shipped", _("Order shipped")
    ORDER_DELIVERED = "order_delivered", _("Order delivered")
    ORDER_REJECTED = "order_rejected", _("Order rejected")
    ORDER_CANCELLED = "order_cancelled", _("Order cancelled")
    VOUCHER_READY = "voucher_ready", _("Voucher code ready")
    FEEDBACK_ANSWERED = "feedback_answered", _("Feedback answered")
    CAMPAIGN = "campaign", _("Campaign")
    SURVEY = "survey", _("Survey invitation")
    NUDGE_INACTIVE = "nudge_inactive", _("Nudge: no activity for a while")
    CERTIFICATE_ISSUED = "certificate_issued", _("Certificate issued")
    CERTIFICATE_EXPIRING = "certificate_expiring", _("Certificate expiring")
    CHALLENGE_STARTED = "challenge_started", _("Challenge started")
    CHALLENGE_HALFWAY = "challenge_halfway", _("Challenge half done")
    CHALLENGE_COMPLETED = "challenge_completed", _("Challenge completed")
    CHALLENGE_RESULTS = "challenge_results", _("Challenge results")
    REFERRAL_DECIDED = "referral_decided", _("Referral converted or rejected")
    RETURN_DECIDED = "return_decided", _("Equipment return confirmed or rejected")
    MDF_DECIDED = "mdf_decided", _("Co-marketing request decided")
    DRAW_RESULT = "draw_result", _("Prize draw result")
    CLUB_RENEWAL = "club_renewal", _("Club membership renewal due")


@dataclass(frozen=True)
class KindSpec:
    """A kind's topic and the variables its templates may use (besides COMMON_VARIABLES), each with what it holds.
    Templates are checked against this list on save."""

    topic: str
    variables: dict[str, str]


# Every template may use these; notify() fills them in from the member.
COMMON_VARIABLES = {
    "first_name": "The member's first name",
    "partner_name": "The member's company",
    "link": "The absolute link to the page the message is about (may be empty)",
}

_ORDER = {"order_number": "The order's number", "points": "The order's points"}

KINDS: dict[str, KindSpec] = {
    Kind.INVITATION: KindSpec(
        Topic.ACCOUNT,
        {
            "invited_by": "Who invited the member",
            "reminder": "Whether this reminds of an invitation not accepted yet (communications/nudges.py)",
            "expires_on": "The last day the invitation's link works",
        },
    ),
    Kind.MEMBER_APPROVED: KindSpec(Topic.ACCOUNT, {}),
    Kind.MEMBER_DEACTIVATED: KindSpec(Topic.ACCOUNT, {"reason": "Why, as the owner wrote it (may be empty)"}),
    Kind.CLAIM_APPROVED: KindSpec(
        Topic.CLAIMS,
        {
            "invoice_number": "The claimed invoice's number",
            "points": "The points the member earned from the claim",
            "explanation": "How the points came about",
        },
    ),
    Kind.CLAIM_REJECTED: KindSpec(
        Topic.CLAIMS,
        {
            "invoice_number": "The claimed invoice's number",
            "reason": "Why it was rejected",
            "deadline": "The last day the claim may be corrected and sent again",
        },
    ),
    Kind.CLAIM_COLLEAGUE: KindSpec(
        Topic.CLAIMS, {"invoice_number": "The claimed invoice's number", "colleague": "Who named the member"}
    ),
    Kind.POINTS_IMPORTED: KindSpec(
        Topic.POINTS, {"points": "The points earned in the import", "lines": "The number of sale lines"}
    ),
    Kind.ADJUSTMENT_POSTED: KindSpec(
        Topic.POINTS, {"points": "The points added (negative: taken away)", "reason": "Why"}
    ),
    Kind.TIER_UP: KindSpec(Topic.TIERS, {"tier": "The new tier", "previous_tier": "The tier before"}),
    Kind.TIER_DOWN: KindSpec(Topic.TIERS, {"tier": "The new tier", "previous_tier": "The tier before"}),
    Kind.TIER_KEEP: KindSpec(
        Topic.TIERS, {"tier": "The current tier", "missing": "What is still missing", "period_end": "The last day"}
    ),
    Kind.POINTS_EXPIRING: KindSpec(
        Topic.POINTS, {"points": "The points that expire", "expires_on": "The day they expire"}
    ),
    Kind.ORDER_APPROVED: KindSpec(Topic.ORDERS, _ORDER),
    Kind.ORDER_SHIPPED: KindSpec(
        Topic.ORDERS, {**_ORDER, "carrier": "The carrier (may be empty)", "tracking_number": "The tracking number"}
    ),
    Kind.ORDER_DELIVERED: KindSpec(Topic.ORDERS, _ORDER),
    Kind.ORDER_REJECTED: KindSpec(Topic.ORDERS, {**_ORDER, "reason": "Why", "refunded_points": "Points given back"}),
    Kind.ORDER_CANCELLED: KindSpec(Topic.ORDERS, {**_ORDER, "reason": "Why", "refunded_points": "Points given back"}),
    Kind.VOUCHER_READY: KindSpec(Topic.ORDERS, {**_ORDER, "reward": "The reward whose code is ready"}),
    Kind.FEEDBACK_ANSWERED: KindSpec(Topic.FEEDBACK, {"subject": "The member's feedback topic"}),
    Kind.CAMPAIGN: KindSpec(
        Topic.CAMPAIGNS,
        {"title": "The campaign's subject", "message": "The campaign's text (the variant for the member's role)"},
    ),
    Kind.SURVEY: KindSpec(Topic.SURVEYS, {"title": "The survey's title"}),
    Kind.NUDGE_INACTIVE: KindSpec(Topic.CAMPAIGNS, {"days": "For how many days the member has done nothing"}),
    Kind.CERTIFICATE_ISSUED: KindSpec(
        Topic.LEARNING,
        {
            "course": "The course passed",
            "product_line": "The product line the member is certified on",
            "expires_on": "The last day the certificate is valid",
        },
    ),
    Kind.CERTIFICATE_EXPIRING: KindSpec(
        Topic.LEARNING,
        {
            "course": "The course to pass again",
            "product_line": "The product line of the certificate",
            "expires_on": "The last day the certificate is valid",
        },
    ),
    Kind.CHALLENGE_STARTED: KindSpec(
        Topic.CHALLENGES,
        {
            "challenge": "The challenge's name",
            "goals": "What to reach, in words",
            "points": "The points offered for completing it (0: none)",
            "ends_on": "The challenge's last day",
        },
    ),
    Kind.CHALLENGE_HALFWAY: KindSpec(
        Topic.CHALLENGES,
        {
            "challenge": "The challenge's name",
            "percent": "How far the member is, in percent",
            "ends_on": "The last day",
        },
    ),
    Kind.CHALLENGE_COMPLETED: KindSpec(
        Topic.CHALLENGES, {"challenge": "The challenge's name", "points": "The points completing paid the member"}
    ),
    Kind.CHALLENGE_RESULTS: KindSpec(
        Topic.CHALLENGES,
        {
            "challenge": "The challenge's name",
            "rank": "The member's (or their company's) final rank",
            "participants": "How many took part",
            "prize": "What the rank won (may be empty)",
        },
    ),
    Kind.REFERRAL_DECIDED: KindSpec(
        Topic.POINTS,
        {
            "company": "The referred company",
            "converted": "Whether it became a customer (else it was rejected)",
            "points": "The points the conversion paid the member (0: none)",
            "reason": "Why it was rejected (may be empty)",
        },
    ),
    Kind.RETURN_DECIDED: KindSpec(
        Topic.POINTS,
        {
            "units": "How many units were returned",
            "what": "What was returned",
            "confirmed": "Whether the return was confirmed (else rejected)",
            "points": "The points it paid the member (0: none)",
            "reason": "Why it was rejected, or that a monthly cap limited it (may be empty)",
        },
    ),
    Kind.MDF_DECIDED: KindSpec(
        Topic.POINTS,
        {
            "activity": "The co-marketing activity",
            "status": "The request's new status, in words",
            "amount": "The amount pre-approved or reimbursed (may be empty)",
            "reason": "Why, as the program team wrote it (may be empty)",
        },
    ),
    # The result of a draw a member entered is news about their entries, not marketing: everyone who entered hears it.
    Kind.DRAW_RESULT: KindSpec(
        Topic.POINTS,
        {
            "draw": "The prize draw's name",
            "won": "Whether the member won",
            "prize": "What they won (may be empty)",
            "entries": "How many entries the member held",
        },
    ),
    # A paid club membership about to end, told to the partner's owners.
    Kind.CLUB_RENEWAL: KindSpec(
        Topic.TIERS,
        {
            "tier": "The tier the partner paid for",
            "ends_on": "The membership's last day",
            "fee": "The yearly fee, in points or money",
        },
    ),
}


# Good news may end with a "Did you know…" line from the tip pool (communications/tips.py); refusals do not.
TIP_KINDS = frozenset(
    {
        Kind.MEMBER_APPROVED,
        Kind.CLAIM_APPROVED,
        Kind.POINTS_IMPORTED,
        Kind.TIER_UP,
        Kind.TIER_KEEP,
        Kind.POINTS_EXPIRING,
        Kind.ORDER_DELIVERED,
        Kind.CAMPAIGN,
        Kind.CERTIFICATE_ISSUED,
        Kind.CHALLENGE_COMPLETED,
    }
)
TIP_VARIABLE = {
    "tip": "A tip for the member's role (and the event's product line) with its link; empty when the pool has none"
}


def allowed_variables(kind: str) -> dict[str, str]:
    return {**COMMON_VARIABLES, **KINDS[kind].variables, **(TIP_VARIABLE if kind in TIP_KINDS else {})}


def topic_of(kind: str) -> str:
    return KINDS[kind].topic


# A failed send is tried again after 1, 5, 30 and 120 minutes, then marked failed.
RETRY_DELAYS_SECONDS = (60, 300, 1800, 7200)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1

# Nudges (communications/nudges.py, daily): an invitation not accepted after this many days is reminded of once; a
# member who earned, claimed and redeemed nothing for this many days is nudged, at most once in as many days.
INVITATION_REMINDER_DAYS = 7
INACTIVE_DAYS = 60

# SMS are held outside these hours of the member's day and sent at the start of the next morning.
QUIET_HOURS_END = 8  # 08:00
QUIET_HOURS_START = 20  # 20:00


# Campaigns, surveys and feedback ----------------------------------------------------------------------------


class SurveyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class QuestionKind(models.TextChoices):
    NPS = "nps", _("Recommendation score (0–10)")
    SINGLE = "single", _("One choice")
    MULTIPLE = "multiple", _("Several choices")
    TEXT = "text", _("Free text")


class FeedbackTopic(models.TextChoices):
    PROGRAM = "program", _("The program")
    POINTS = "points", _("Points and claims")
    REWARDS = "rewards", _("Rewards and orders")
    PRODUCTS = "products", _("Products")
    WEBSITE = "website", _("This website")
    OTHER = "other", _("Something else")


class FeedbackStatus(models.TextChoices):
    OPEN = "open", _("Waiting for an answer")
    ANSWERED = "answered", _("Answered")


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")


class Activity(models.TextChoices):
    """A campaign segment's activity filter (the facts live in loyalty and rewards: communications.hooks)."""

    NO_POINTS = "no_points", _("No points earned in the last N days")
    NEVER_REDEEMED = "never_redeemed", _("Never redeemed")
    INVITED_NOT_JOINED = "invited_not_joined", _("Invited but not joined")


FEEDBACK_MAX_CHARS = 5000


MARKETING_TOPIC_CHOICES = [(topic.value, topic.label) for topic in Topic if topic in MARKETING_TOPICS]
