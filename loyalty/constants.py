from django.db import models
from django.utils.translation import gettext_lazy as _


class EnrolmentMode(models.TextChoices):
    OPEN = "open", _("Open to every partner")
    INVITE_ONLY = "invite_only", _("By invitation only")
    OWNER_APPROVAL = "owner_approval", _("Staff join with the partner owner's approval")


class LeaverPolicy(models.TextChoices):
    KEEP = "keep", _("The person keeps their points")
    FORFEIT = "forfeit", _("The points are forfeited")
    TRANSFER = "transfer", _("The points move to the partner's company account")


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    RELEASE = "release", _("Released from pending")
    SPEND = "spend", _("Spent")
    EXPIRE = "expire", _("Expired")
    REVERSE = "reverse", _("Reversed")
    ADJUST = "adjust", _("Adjusted")
    TRANSFER = "transfer", _("Transferred")


class EntrySource(models.TextChoices):
    """What a ledger entry comes from (PointsEntry.source_type); source_id says which one."""

    CLAIM = "claim", _("Sales claims")
    SALES_IMPORT = "sales_import", _("Sell-out imports")
    # A sale line posted through earning.post_event without a more precise source (its default).
    SALE_LINE = "sale_line", _("Sale lines")
    ORDER = "order", _("Reward orders")
    ADJUSTMENT = "adjustment", _("Manual adjustments")
    EXPIRY = "expiry", _("Expiry")
    LEAVER = "leaver", _("Leavers")
    # Earned outside the rule engine by the demo history's other activities (surveys answered are also posted through
    # it, by the rules for the "survey answered" event: services.survey_points).
    WELCOME = "welcome", _("Welcome bonuses")
    PROFILE = "profile", _("Profiles completed")
    SURVEY = "survey", _("Surveys")
    TRAINING = "training", _("Training")
    CHALLENGE = "challenge", _("Challenges")
    AWARD = "award", _("Awards")
    POOLING = "pooling", _("Pooled to the company account")
    COMPANY_SHARE = "company_share", _("Company shares")
    VOLUME_BONUS = "volume_bonus", _("Volume bonuses")
    REFERRAL = "referral", _("Referrals")
    RETURN = "return", _("Equipment returns")
    CO_MARKETING = "co_marketing", _("Co-marketing")
    DRAW = "draw", _("Prize draws")
    EVENT = "event", _("Events attended")
    CLUB_FEE = "club_fee", _("Club membership fees")
    CUSTOM_EVENT = "custom_event", _("Events reported by other systems")


class AdjustmentStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", _("Waiting for a second program manager")
    POSTED = "posted", _("Posted")
    REJECTED = "rejected", _("Rejected")


# How many days ahead "expiring soon" looks.
EXPIRING_SOON_DAYS = 30


class TierMetric(models.TextChoices):
    SALES_AMOUNT = "sales_amount", _("Sales amount over the window")
    POINTS_EARNED = "points_earned", _("Points earned over the window")


class TierPeriod(models.TextChoices):
    """When downgrades are decided: a partner keeps a tier at least until the end of the period."""

    QUARTER = "quarter", _("Quarter")
    YEAR = "year", _("Year")


class RuleEvent(models.TextChoices):
    SALE_LINE = "sale_line", _("Sale line (claim or sell-out import)")
    TRAINING_PASSED = "training_passed", _("Training passed")
    SURVEY_ANSWERED = "survey_answered", _("Survey answered")
    REFERRAL_CONVERTED = "referral_converted", _("Referral converted")
    CO_MARKETING_APPROVED = "co_marketing_approved", _("Co-marketing claim approved")
    CHALLENGE_COMPLETED = "challenge_completed", _("Challenge completed")
    EQUIPMENT_RETURNED = "equipment_returned", _("Used equipment returned")
    EVENT_ATTENDED = "event_attended", _("Event attended")
    PROFILE_COMPLETED = "profile_completed", _("Profile completed")
    CUSTOM = "custom", _("Custom API event")


class QuestionKind(models.TextChoices):
    SINGLE = "single", _("One answer")
    MULTIPLE = "multiple", _("Several answers")


class AttemptStatus(models.TextChoices):
    STARTED = "started", _("In progress")
    PASSED = "passed", _("Passed")
    FAILED = "failed", _("Not passed")


# How long a started quiz attempt accepts answers (a course's closing day can end it sooner).
ATTEMPT_HOURS = 24
# How many days ahead a member hears that a certificate expires.
CERTIFICATE_NOTICE_DAYS = 30


class ChallengeLevel(models.TextChoices):
    INDIVIDUAL = "individual", _("Each person")
    COMPANY = "company", _("Each company")


class GoalMetric(models.TextChoices):
    UNITS_SOLD = "units_sold", _("Units sold")
    SALES_AMOUNT = "sales_amount", _("Sales amount")
    CLAIMS_APPROVED = "claims_approved", _("Claims approved")
    MODULES_PASSED = "modules_passed", _("Training modules passed")
    REFERRALS_CONVERTED = "referrals_converted", _("Referrals converted")
    EVENTS = "events", _("Events of a kind")


class Formula(models.TextChoices):
    FIXED = "fixed", _("Fixed points")
    PER_UNIT = "per_unit", _("Points per unit")
    PER_AMOUNT = "per_amount", _("Points per money amount")
    PERCENT_BONUS = "percent_bonus", _("Percentage bonus on the points of other rules")
    MULTIPLIER = "multiplier", _("Multiplier campaign on the points of other rules")


class RuleStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    RETIRED = "retired", _("Retired")


class CapPeriod(models.TextChoices):
    MONTH = "month", _("per month")
    QUARTER = "quarter", _("per quarter")
    YEAR = "year", _("per year")


class ClaimStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Waiting for review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


CLAIM_TRANSITIONS: dict[str, set[str]] = {
    ClaimStatus.SUBMITTED: {ClaimStatus.APPROVED, ClaimStatus.REJECTED, ClaimStatus.WITHDRAWN},
    # A rejected claim can be corrected and sent again while the claim window is open.
    ClaimStatus.REJECTED: {ClaimStatus.SUBMITTED},
    ClaimStatus.APPROVED: set(),
    ClaimStatus.WITHDRAWN: set(),
}


class ClaimFlag(models.TextChoices):
    UNKNOWN_PRODUCT = "unknown_product", _("Product unknown or inactive")
    OUTSIDE_WINDOW = "outside_window", _("Invoice date outside the claim window")
    DUPLICATE_OTHER_PARTNER = "duplicate_other_partner", _("Same invoice claimed by another partner")
    UNUSUAL_QUANTITY = "unusual_quantity", _("Unusual quantity")


class RejectionReason(models.TextChoices):
    NOT_OUR_PRODUCT = "not_our_product", _("Not our product")
    UNREADABLE = "unreadable", _("Invoice unreadable or missing")
    MISMATCH = "mismatch", _("Invoice does not match the claimed lines")
    DUPLICATE = "duplicate", _("Already claimed")
    TOO_LATE = "too_late", _("Claimed after the window")
    OTHER = "other", _("Other")


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ReferralStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    QUALIFIED = "qualified", _("Qualified")
    CONVERTED = "converted", _("Converted")
    REJECTED = "rejected", _("Rejected")


REFERRAL_TRANSITIONS: dict[str, set[str]] = {
    ReferralStatus.SUBMITTED: {ReferralStatus.QUALIFIED, ReferralStatus.REJECTED},
    ReferralStatus.QUALIFIED: {ReferralStatus.CONVERTED, ReferralStatus.REJECTED},
    ReferralStatus.CONVERTED: set(),
    ReferralStatus.REJECTED: set(),
}


class ReturnStatus(models.TextChoices):
    REGISTERED = "registered", _("Waiting for confirmation")
    CONFIRMED = "confirmed", _("Confirmed")
    REJECTED = "rejected", _("Rejected")


RETURN_TRANSITIONS: dict[str, set[str]] = {
    ReturnStatus.REGISTERED: {ReturnStatus.CONFIRMED, ReturnStatus.REJECTED},
    ReturnStatus.CONFIRMED: set(),
    ReturnStatus.REJECTED: set(),
}


class FundSource(models.TextChoices):
    MANUAL = "manual", _("Set by hand")
    TIER = "tier", _("Tier benefit")
    SALES_SHARE = "sales_share", _("Share of last period's sales")


class MdfStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    PRE_APPROVED = "pre_approved", _("Pre-approved")
    DECLINED = "declined", _("Declined")
    CLAIMED = "claimed", _("Claimed with proof")
    REIMBURSED = "reimbursed", _("Reimbursed")
    CLAIM_REJECTED = "claim_rejected", _("Claim rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


MDF_TRANSITIONS: dict[str, set[str]] = {
    MdfStatus.REQUESTED: {MdfStatus.PRE_APPROVED, MdfStatus.DECLINED, MdfStatus.WITHDRAWN},
    MdfStatus.PRE_APPROVED: {MdfStatus.CLAIMED, MdfStatus.WITHDRAWN},
    MdfStatus.CLAIMED: {MdfStatus.REIMBURSED, MdfStatus.CLAIM_REJECTED},
    # A rejected claim can be corrected (more proof) and claimed again.
    MdfStatus.CLAIM_REJECTED: {MdfStatus.CLAIMED, MdfStatus.WITHDRAWN},
    MdfStatus.DECLINED: set(),
    MdfStatus.REIMBURSED: set(),
    MdfStatus.WITHDRAWN: set(),
}


class MdfPayout(models.TextChoices):
    POINTS = "points", _("Points to the company account")
    CREDIT_NOTE = "credit_note", _("Money, as a credit note")


class ProofKind(models.TextChoices):
    ADVERT = "advert", _("The advert or material")
    INVOICE = "invoice", _("An invoice")
    OTHER = "other", _("Other proof")


class DrawStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    OPEN = "open", _("Open for entries")
    CLOSED = "closed", _("Closed, waiting for the draw")
    DRAWN = "drawn", _("Drawn")


class EntrySourceKind(models.TextChoices):
    ACTIVITY = "activity", _("Earned by activity")
    BOUGHT = "bought", _("Bought with points")
    FREE = "free", _("Free entry")
