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


# Formulas that pay on their own, and those that top up what the others paid.
BASE_FORMULAS = {Formula.FIXED, Formula.PER_UNIT, Formula.PER_AMOUNT}
BONUS_FORMULAS = {Formula.PERCENT_BONUS, Formula.MULTIPLIER}


class RuleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class CapPeriod(models.TextChoices):
    MONTH = "month", "per month"
    QUARTER = "quarter", "per quarter"
    YEAR = "year", "per year"
