from django.db import models
from django.utils.translation import gettext_lazy as _


class StaffRole(models.TextChoices):
    """What a manufacturer employee does in the program; partner staff have none."""

    NONE = "", "None (partner staff)"
    ACCOUNT_MANAGER = "account_manager", "Account manager"
    PROGRAM_MANAGER = "program_manager", "Program manager"


class PartnerKind(models.TextChoices):
    DISTRIBUTOR = "distributor", "Distributor"
    DEALER = "dealer", "Dealer"
    INSTALLER = "installer", "Installer"
    SERVICE_COMPANY = "service_company", "Service company"
    RESELLER = "reseller", "Reseller"


class PartnerStatus(models.TextChoices):
    PROSPECT = "prospect", "Prospect"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


PARTNER_TRANSITIONS: dict[str, set[str]] = {
    PartnerStatus.PROSPECT: {PartnerStatus.ACTIVE, PartnerStatus.CLOSED},
    PartnerStatus.ACTIVE: {PartnerStatus.SUSPENDED, PartnerStatus.CLOSED},
    PartnerStatus.SUSPENDED: {PartnerStatus.ACTIVE, PartnerStatus.CLOSED},
    PartnerStatus.CLOSED: set(),
}


class PayoutPolicy(models.TextChoices):
    INDIVIDUAL = "individual", "Paid to each employee"
    POOLED = "pooled", "Pooled to the company account"


class MemberStatus(models.TextChoices):
    INVITED = "invited", "Invited"
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    ACTIVE = "active", "Active"
    LEFT = "left", "Left"


MEMBER_TRANSITIONS: dict[str, set[str]] = {
    MemberStatus.INVITED: {MemberStatus.PENDING_APPROVAL, MemberStatus.ACTIVE, MemberStatus.LEFT},
    MemberStatus.PENDING_APPROVAL: {MemberStatus.ACTIVE, MemberStatus.LEFT},
    MemberStatus.ACTIVE: {MemberStatus.LEFT},
    MemberStatus.LEFT: set(),
}

# A membership that still belongs to the partner's team (a person has at most one of these).
CURRENT_MEMBER_STATUSES = (MemberStatus.PENDING_APPROVAL, MemberStatus.ACTIVE)


class MarketingConsent(models.TextChoices):
    """What a region's law asks before marketing messages (campaigns, news, surveys): consent given beforehand (e.g. the
    EU's ePrivacy rules for e-mail and SMS, Canada's CASL), or the right to opt out at any time."""

    OPT_OUT = "opt_out", _("Sent until the member opts out")
    OPT_IN = "opt_in", _("Sent only after the member opts in")


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In the app"


# Roles seeded by the first migration; program managers may add more in the admin.
DEFAULT_ROLES = [
    ("owner", "Owner / manager", True),
    ("sales", "Sales rep", False),
    ("engineer", "Engineer / installer", False),
    ("foreman", "Foreman", False),
    ("purchasing", "Purchasing", False),
    ("logistics", "Logistics", False),
]
