from django.db import models
from django.utils.translation import gettext_lazy as _


class StaffRole(models.TextChoices):
    """What a manufacturer employee does in the program; partner staff have none."""

    NONE = "", _("None (partner staff)")
    ACCOUNT_MANAGER = "account_manager", _("Account manager")
    PROGRAM_MANAGER = "program_manager", _("Program manager")


class PartnerKind(models.TextChoices):
    DISTRIBUTOR = "distributor", _("Distributor")
    DEALER = "dealer", _("Dealer")
    INSTALLER = "installer", _("Installer")
    SERVICE_COMPANY = "service_company", _("Service company")
    RESELLER = "reseller", _("Reseller")


class PartnerStatus(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    CLOSED = "closed", _("Closed")


# A new partner starts as a prospect or goes live at once; later moves go through partner_transition (the admin's
# status actions, the API's upsert).
PARTNER_START_STATUSES = (PartnerStatus.PROSPECT, PartnerStatus.ACTIVE)


PARTNER_TRANSITIONS: dict[str, set[str]] = {
    PartnerStatus.PROSPECT: {PartnerStatus.ACTIVE, PartnerStatus.CLOSED},
    PartnerStatus.ACTIVE: {PartnerStatus.SUSPENDED, PartnerStatus.CLOSED},
    PartnerStatus.SUSPENDED: {PartnerStatus.ACTIVE, PartnerStatus.CLOSED},
    PartnerStatus.CLOSED: set(),
}


class PayoutPolicy(models.TextChoices):
    INDIVIDUAL = "individual", _("Paid to each employee")
    POOLED = "pooled", _("Pooled to the company account")


class MemberStatus(models.TextChoices):
    INVITED = "invited", _("Invited")
    PENDING_APPROVAL = "pending_approval", _("Waiting for approval")
    ACTIVE = "active", _("Active")
    LEFT = "left", _("Left")


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
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    IN_APP = "in_app", _("In the app")


# Roles seeded by the first migration; program managers may add more in the admin.
DEFAULT_ROLES = [
    ("owner", "Owner / manager", True),
    ("sales", "Sales rep", False),
    ("engineer", "Engineer / installer", False),
    ("foreman", "Foreman", False),
    ("purchasing", "Purchasing", False),
    ("logistics", "Logistics", False),
]
