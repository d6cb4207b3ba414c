from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.common.keys import MatchingKeyField
from loyalty.common.models import StatusChange, TimeStampedModel, status_fields
from partners.constants import (
    CURRENT_MEMBER_STATUSES,
    Channel,
    MarketingConsent,
    MemberStatus,
    PartnerKind,
    PartnerStatus,
    PayoutPolicy,
    StaffRole,
)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("staff_role", StaffRole.PROGRAM_MANAGER)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. E-mail is the login; partner membership lives on Member."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    staff_role = models.CharField(max_length=20, choices=StaffRole.choices, blank=True, default="")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May sign in to the back office.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(staff_role__in=StaffRole.values), name="user_staff_role_valid"),
            models.UniqueConstraint(models.functions.Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self):
        return self.full_name or self.email

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return (self.full_name.split() or [self.email])[0]

    @property
    def is_program_manager(self) -> bool:
        return self.is_superuser or self.staff_role == StaffRole.PROGRAM_MANAGER

    @property
    def is_account_manager(self) -> bool:
        return self.staff_role == StaffRole.ACCOUNT_MANAGER


def validate_time_zone(value: str) -> None:
    if value and value not in available_timezones():
        raise ValidationError(
            _("“%(zone)s” is not a time zone; pick one such as Europe/Berlin."), params={"zone": value}
        )


def time_zone_choices() -> list[tuple[str, str]]:
    return [("", _("The region's, else the program's"))] + [(zone, zone) for zone in sorted(available_timezones())]


class Region(models.Model):
    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=100, unique=True)
    marketing_consent = models.CharField(
        _("marketing consent"),
        max_length=10,
        choices=MarketingConsent.choices,
        default=MarketingConsent.OPT_OUT,
        db_default=MarketingConsent.OPT_OUT,
        help_text=_(
            "Whether the law of this region lets the program send campaigns, news and surveys until a member opts out, "
            "or only once they have opted in."
        ),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        db_default="",
        validators=[validate_time_zone],
        help_text=_("Its members' quiet hours (no SMS at night) follow it. Empty: the program's time zone."),
    )
    free_draw_entry = models.BooleanField(
        _("prize draws need a free entry"),
        default=False,
        db_default=False,
        help_text=_("The law of this region requires a free way to enter prize draws, with equal odds."),
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(marketing_consent__in=MarketingConsent.values), name="region_marketing_consent_valid"
            )
        ]

    def __str__(self):
        return self.name

    @property
    def needs_opt_in(self) -> bool:
        return self.marketing_consent == MarketingConsent.OPT_IN


class Partner(TimeStampedModel):
    """A company in the channel: a legal entity with its own rules, and the people who work there."""

    name = models.CharField(max_length=200)
    legal_id = models.CharField("legal id", max_length=40, unique=True, help_text="Company registration or VAT number.")
    legal_id_key = MatchingKeyField(of="legal_id")
    kind = models.CharField(max_length=20, choices=PartnerKind.choices)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        limit_choices_to={"kind": PartnerKind.DISTRIBUTOR},
        verbose_name="parent distributor",
    )
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="partners")
    status = models.CharField(max_length=20, choices=PartnerStatus.choices, default=PartnerStatus.PROSPECT)
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_partners",
        limit_choices_to={"staff_role": StaffRole.ACCOUNT_MANAGER},
    )
    joined_on = models.DateField(null=True, blank=True)
    payout_policy = models.CharField(
        max_length=20,
        choices=PayoutPolicy.choices,
        default=PayoutPolicy.INDIVIDUAL,
        help_text="Whether staff bonuses go to each employee or to the company account.",
    )
    external_id = models.CharField(
        "external id",
        max_length=80,
        blank=True,
        db_default="",
        help_text="The partner's id in the CRM that keeps it up to date through the API; empty if none.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PartnerKind.values), name="partner_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=PartnerStatus.values), name="partner_status_valid"),
            models.CheckConstraint(
                condition=Q(payout_policy__in=PayoutPolicy.values), name="partner_payout_policy_valid"
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="partner_not_own_parent"),
            models.UniqueConstraint(fields=["legal_id_key"], name="partner_legal_id_key_unique"),
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="partner_external_id_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["account_manager", "name"]),
            models.Index(fields=["status"]),
        ]

    def __str__(self):
        return self.name


class _TeamStatusChange(StatusChange):
    """A partner's or a membership's status moves: newest first, each with its reason."""

    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class PartnerStatusChange(_TeamStatusChange):
    """One row per partner status move: who, when, from, to and why."""

    subject_field = "partner"
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="status_changes")
    from_status, to_status = status_fields(PartnerStatus, max_length=20)


class Role(models.Model):
    """What a person does at a partner. Rules, messages and rewards are targeted by role."""

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=80, unique=True)
    is_owner = models.BooleanField(
        default=False,
        help_text="Owners and managers run the partner's team and see what every employee earns.",
    )
    sort_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self):
        return self.name


class Member(TimeStampedModel):
    """A person's membership of one partner, in one role. A person may have several over time."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="members")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="members")
    status = models.CharField(max_length=20, choices=MemberStatus.choices, default=MemberStatus.INVITED)
    phone = models.CharField(max_length=30, blank=True)
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default="en")
    preferred_channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        db_default="",
        validators=[validate_time_zone],
        help_text=_("Empty: the time zone of the partner's region, or else the program's."),
    )
    show_name_on_leaderboards = models.BooleanField(
        _("show my name on leaderboards"),
        default=False,
        db_default=False,
        help_text=_("Otherwise others see only your role and region (“a sales rep in North”)."),
    )
    joined_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(
        "external id",
        max_length=80,
        blank=True,
        db_default="",
        help_text="The membership's id in the CRM that keeps it up to date through the API; empty if none.",
    )

    class Meta:
        ordering = ["partner", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"], condition=~Q(external_id=""), name="member_external_id_unique"
            ),
            models.CheckConstraint(condition=Q(status__in=MemberStatus.values), name="member_status_valid"),
            models.CheckConstraint(condition=Q(preferred_channel__in=Channel.values), name="member_channel_valid"),
            # One current membership per person: points and the home page are never ambiguous.
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(status__in=CURRENT_MEMBER_STATUSES),
                name="member_one_current_per_user",
            ),
            # One open invitation or membership per person and partner.
            models.UniqueConstraint(
                fields=["user", "partner"],
                condition=~Q(status=MemberStatus.LEFT),
                name="member_one_open_per_partner",
            ),
        ]
        indexes = [models.Index(fields=["partner", "status"])]

    def __str__(self):
        return f"{self.user} at {self.partner}"

    @property
    def is_owner(self) -> bool:
        return self.role.is_owner

    def can_approve(self) -> bool:
        return self.status == MemberStatus.PENDING_APPROVAL

    def can_deactivate(self) -> bool:
        return self.status in (MemberStatus.ACTIVE, MemberStatus.PENDING_APPROVAL)

    def can_cancel_invitation(self) -> bool:
        return self.status == MemberStatus.INVITED

    def zone(self) -> ZoneInfo:
        """The member's time zone: their own, else their partner's region's, else the program's."""
        return ZoneInfo(self.time_zone or self.partner.region.time_zone or settings.TIME_ZONE)


class MemberStatusChange(_TeamStatusChange):
    """One row per membership status move: who, when, from, to and why."""

    subject_field = "member"
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="status_changes")
    from_status, to_status = status_fields(MemberStatus, max_length=20)


class Invitation(TimeStampedModel):
    """The link that lets a person join a partner. Only a hash of the token is stored."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set when a newer link replaces this one.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["member", "-created_at"])]

    def __str__(self):
        return f"Invitation for {self.member.user.email} to {self.member.partner}"

    @property
    def is_usable(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()
