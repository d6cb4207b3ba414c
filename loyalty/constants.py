from django.db import models


class EnrolmentMode(models.TextChoices):
    OPEN = "open", "Open to every partner"
    INVITE_ONLY = "invite_only", "By invitation only"
    OWNER_APPROVAL = "owner_approval", "Staff join with the partner owner's approval"


class LeaverPolicy(models.TextChoices):
    KEEP = "keep", "The person keeps their points"
    FORFEIT = "forfeit", "The points are forfeited"
    TRANSFER = "transfer", "The points move to the partner's company account"


class EntryKind(models.TextChoices):
    EARN = "earn", "Earned"
    RELEASE = "release", "Released from pending"
    SPEND = "spend", "Spent"
    EXPIRE = "expire", "Expired"
    REVERSE = "reverse", "Reversed"
    ADJUST = "adjust", "Adjusted"
    TRANSFER = "transfer", "Transferred"


class EntrySource(models.TextChoices):
    """What a ledger entry comes from (PointsEntry.source_type); source_id says which one."""

    CLAIM = "claim", "Sales claims"
    SALES_IMPORT = "sales_import", "Sell-out imports"
    # A sale line posted through earning.post_event without a more precise source (its default).
    SALE_LINE = "sale_line", "Sale lines"
    ORDER = "order", "Reward orders"
    ADJUSTMENT = "adjustment", "Manual adjustments"
    EXPIRY = "expiry", "Expiry"
    LEAVER = "leaver", "Leavers"
    # Earned outside the rule engine by the demo history's other activities (surveys answered are also posted through
    # it, by the rules for the "survey answered" event: services.survey_points).
    WELCOME = "welcome", "Welcome bonuses"
    PROFILE = "profile", "Profiles completed"
    SURVEY = "survey", "Surveys"
    TRAINING = "training", "Training"
    CHALLENGE = "challenge", "Challenges"
    AWARD = "award", "Awards"
    POOLING = "pooling", "Pooled to the company account"
    COMPANY_SHARE = "company_share", "Company shares"
    VOLUME_BONUS = "volume_bonus", "Volume bonuses"


class AdjustmentStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Waiting for a second program manager"
    POSTED = "posted", "Posted"
    REJECTED = "rejected", "Rejected"


# How many days ahead "expiring soon" looks.
EXPIRING_SOON_DAYS = 30


class TierMetric(models.TextChoices):
    SALES_AMOUNT = "sales_amount", "Sales amount over the window"
    POINTS_EARNED = "points_earned", "Points earned over the window"


class TierPeriod(models.TextChoices):
    """When downgrades are decided: a partner keeps a tier at least until the end of the period."""

    QUARTER = "quarter", "Quarter"
    YEAR = "year", "Year"


class RuleEvent(models.TextChoices):
    SALE_LINE = "sale_line", "Sale line (claim or sell-out import)"
    TRAINING_PASSED = "training_passed", "Training passed"
    SURVEY_ANSWERED = "survey_answered", "Survey answered"
    REFERRAL_CONVERTED = "referral_converted", "Referral converted"
    CO_MARKETING_APPROVED = "co_marketing_approved", "Co-marketing claim approved"
    CHALLENGE_COMPLETED = "challenge_completed", "Challenge completed"
    PROFILE_COMPLETED = "profile_completed", "Profile completed"
    CUSTOM = "custom", "Custom API event"


class Formula(models.TextChoices):
    FIXED = "fixed", "Fixed points"
    PER_UNIT = "per_unit", "Points per unit"
    PER_AMOUNT = "per_amount", "Points per money amount"
    PERCENT_BONUS = "percent_bonus", "Percentage bonus on the points of other rules"
    MULTIPLIER = "multiplier", "Multiplier campaign on the points of other rules"


class RuleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class CapPeriod(models.TextChoices):
    MONTH = "month", "per month"
    QUARTER = "quarter", "per quarter"
    YEAR = "year", "per year"


class ClaimStatus(models.TextChoices):
    SUBMITTED = "submitted", "Waiting for review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


CLAIM_TRANSITIONS: dict[str, set[str]] = {
    ClaimStatus.SUBMITTED: {ClaimStatus.APPROVED, ClaimStatus.REJECTED, ClaimStatus.WITHDRAWN},
    # A rejected claim can be corrected and sent again while the claim window is open.
    ClaimStatus.REJECTED: {ClaimStatus.SUBMITTED},
    ClaimStatus.APPROVED: set(),
    ClaimStatus.WITHDRAWN: set(),
}


class ClaimFlag(models.TextChoices):
    UNKNOWN_PRODUCT = "unknown_product", "Product unknown or inactive"
    OUTSIDE_WINDOW = "outside_window", "Invoice date outside the claim window"
    DUPLICATE_OTHER_PARTNER = "duplicate_other_partner", "Same invoice claimed by another partner"
    UNUSUAL_QUANTITY = "unusual_quantity", "Unusual quantity"


class RejectionReason(models.TextChoices):
    NOT_OUR_PRODUCT = "not_our_product", "Not our product"
    UNREADABLE = "unreadable", "Invoice unreadable or missing"
    MISMATCH = "mismatch", "Invoice does not match the claimed lines"
    DUPLICATE = "duplicate", "Already claimed"
    TOO_LATE = "too_late", "Claimed after the window"
    OTHER = "other", "Other"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
