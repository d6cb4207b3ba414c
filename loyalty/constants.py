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
