import contextlib

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from communications.constants import (
    FEEDBACK_MAX_CHARS,
    MARKETING_TOPIC_CHOICES,
    Activity,
    CampaignStatus,
    Channel,
    DeliveryStatus,
    FeedbackStatus,
    FeedbackTopic,
    Kind,
    QuestionKind,
    SuppressionReason,
    SurveyStatus,
    Topic,
)
from communications.rendering import template_problem
from communications.sms import SmsError, normalise_phone
from loyalty.common.models import TimeStampedModel
from loyalty.common.storage import private_storage
from partners.constants import PartnerKind


class MessageTemplate(TimeStampedModel):
    """The words of one kind of message on one channel, for one language and role (blank: any). The most specific
    active template wins: language and role, then language, then role, then any; English before the rest."""

    kind = models.CharField(_("kind"), max_length=40, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, blank=True, help_text=_("Blank: any language.")
    )
    role = models.ForeignKey(
        "partners.Role",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("role"),
        help_text=_("Blank: any role."),
    )
    subject = models.CharField(
        _("subject"),
        max_length=200,
        blank=True,
        help_text=_("E-mail subject and inbox title; a text message has none."),
    )
    body = models.TextField(_("body"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["kind", "channel", "language", "role__sort_order"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "channel", "language", "role"],
                nulls_distinct=False,
                name="messagetemplate_one_per_audience",
            ),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="messagetemplate_kind_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="messagetemplate_channel_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.get_channel_display()} · {self.language or '*'} · {self.role or '*'}"

    def clean(self):
        if self.kind not in Kind.values:
            return  # the field's own validation says so
        errors = {}
        for field in ("subject", "body"):
            problem = template_problem(self.kind, getattr(self, field))
            if problem:
                errors[field] = problem
        if errors:
            raise ValidationError(errors)


class Delivery(TimeStampedModel):
    """One message to one member on one channel. The idempotency key (kind:source:member:channel) makes a repeated
    event (a retried task, a re-run import, a double click) find its row instead of sending again. The in-app
    inbox is the member's `inbox` deliveries; `read_at` marks the ones they read."""

    kind = models.CharField(max_length=40, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    topic = models.CharField(max_length=20, choices=Topic.choices)
    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="deliveries")
    source_key = models.CharField(max_length=120, help_text=_("The event this message tells about."))
    idempotency_key = models.CharField(max_length=220, unique=True)
    address = models.CharField(max_length=254, blank=True, help_text=_("The e-mail address or phone number."))
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    link = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField()
    not_before = models.DateTimeField(null=True, blank=True, help_text=_("Held until then (quiet hours, a retry)."))
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # The message's short link /m/<link_code> (communications/delivery_links.py): given when it is sent.
    link_code = models.CharField(max_length=32, null=True, blank=True, unique=True)
    link_used_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the short link signed the member in (it does so only once).")
    )

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-queued_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="delivery_channel_valid"),
        ]
        indexes = [
            models.Index(fields=["member", "channel", "-queued_at"], name="delivery_inbox_idx"),
            models.Index(fields=["status", "not_before"], name="delivery_due_idx"),
            models.Index(fields=["kind", "-queued_at"], name="delivery_kind_idx"),
            # The provider's delivery reports name the message by this id (communications/tracking.py).
            models.Index(fields=["provider_id"], condition=~Q(provider_id=""), name="delivery_provider_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} → {self.address or self.member_id} ({self.get_channel_display()})"


class Preference(models.Model):
    """A member's choice for one topic: the channel it comes on, and whether they want it at all (marketing topics
    only; transactional messages always go out). `opted_in` None: no choice made, their region's rule applies
    (communications.consent)."""

    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="message_preferences")
    topic = models.CharField(max_length=20, choices=Topic.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    opted_in = models.BooleanField(null=True, blank=True, default=None)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "topic"], name="preference_one_per_topic"),
            models.CheckConstraint(condition=Q(topic__in=Topic.values), name="preference_topic_valid"),
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="preference_channel_valid"),
        ]

    def __str__(self):
        return f"{self.member_id} · {self.topic} → {self.channel}"


class Suppression(models.Model):
    """An address nothing is sent to any more (a hard bounce, a complaint). `address` is lower-case."""

    address = models.CharField(_("address"), max_length=254, unique=True, help_text=_("E-mail address or phone."))
    reason = models.CharField(_("reason"), max_length=12, choices=SuppressionReason.choices)
    at = models.DateTimeField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        ordering = ["-at"]

    def __str__(self):
        return self.address

    def save(self, *args, **kwargs):
        self.address = suppression_key(self.address)
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        address = self.address.strip()
        if "@" in address:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError({"address": _("Enter an e-mail address or a phone number.")}) from None
        else:
            try:
                normalise_phone(address)
            except SmsError as exc:
                problem = _("Enter an e-mail address or a phone number: %(why)s") % {"why": exc}
                raise ValidationError({"address": problem}) from None
        self.address = suppression_key(address)  # before the unique check: one number written two ways is one


def suppression_key(address: str) -> str:
    """How an address is kept and looked up among the suppressed: an e-mail address in lower case, a phone number in
    E.164 ("+44 7057 960340" and "+447057960340" are one number)."""
    address = address.strip()
    if "@" not in address:
        with contextlib.suppress(SmsError):
            return normalise_phone(address)
    return address.lower()


# Surveys and feedback ---------------------------------------------------------------------------------------------


class Survey(TimeStampedModel):
    """Questions for an audience of members (every active member, or those of some roles and partner types),
    answered on the member site once per member, optionally paying points (loyalty's survey-answered hook)."""

    program = models.ForeignKey(
        "loyalty.Program", on_delete=models.PROTECT, related_name="+", verbose_name=_("program")
    )
    title = models.CharField(_("title"), max_length=200)
    intro = models.TextField(_("introduction"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=SurveyStatus.choices, default=SurveyStatus.DRAFT)
    opens_at = models.DateTimeField(_("opens at"), null=True, blank=True, help_text=_("Blank: as soon as open."))
    closes_at = models.DateTimeField(_("closes at"), null=True, blank=True, help_text=_("Blank: until closed."))
    roles = models.ManyToManyField(
        "partners.Role",
        blank=True,
        related_name="+",
        verbose_name=_("roles"),
        help_text=_("Leave empty for every role."),
    )
    partner_kinds = ArrayField(
        models.CharField(max_length=20, choices=PartnerKind.choices),
        default=list,
        blank=True,
        verbose_name=_("partner types"),
        help_text=_("Leave empty for every partner type."),
    )
    points_for_answer = models.PositiveIntegerField(
        _("points for answering"), default=0, help_text=_("Paid once per member; 0: none.")
    )
    invited_at = models.DateTimeField(_("invitations sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=SurveyStatus.values), name="survey_status_valid"),
            models.CheckConstraint(
                condition=Q(opens_at__isnull=True) | Q(closes_at__isnull=True) | Q(closes_at__gt=F("opens_at")),
                name="survey_closes_after_opening",
            ),
        ]

    def __str__(self):
        return self.title

    def clean(self):
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": _("A survey closes after it opens.")})


class Question(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="questions")
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    kind = models.CharField(_("kind"), max_length=10, choices=QuestionKind.choices)
    text = models.CharField(_("question"), max_length=300)
    choices = models.JSONField(
        _("choices"), default=list, blank=True, help_text=_("One choice or several choices: the answers offered.")
    )
    required = models.BooleanField(_("required"), default=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["order", "id"]
        constraints = [models.CheckConstraint(condition=Q(kind__in=QuestionKind.values), name="question_kind_valid")]

    def __str__(self):
        return self.text

    @property
    def has_choices(self) -> bool:
        return self.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE)

    def clean(self):
        choices = self.choices if isinstance(self.choices, list) else None
        if choices is None or not all(isinstance(choice, str) and choice.strip() for choice in choices):
            raise ValidationError({"choices": _("Choices are a list of texts.")})
        if self.has_choices and len(set(choices)) < 2:
            raise ValidationError({"choices": _("Offer at least two different choices.")})
        if not self.has_choices and choices:
            raise ValidationError({"choices": _("Only choice questions have choices.")})


class Response(models.Model):
    """One member's answers to a survey: at most one per member."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="survey_responses")
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        constraints = [models.UniqueConstraint(fields=["survey", "member"], name="response_once_per_member")]

    def __str__(self):
        return f"{self.survey_id} · {self.member_id}"


class Answer(models.Model):
    """The answer to one question: the score (an int) of a recommendation question, the choice (a text) of a
    one-choice question, the choices (a list of texts) of a several-choices question, the text of a free one."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    value = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["response", "question"], name="answer_once_per_question")]

    def __str__(self):
        return f"{self.response_id} · {self.question_id}"


class Feedback(TimeStampedModel):
    """What a member wrote to the program team, and the team's answer."""

    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="feedback")
    topic = models.CharField(_("topic"), max_length=20, choices=FeedbackTopic.choices)
    text = models.TextField(_("message"), max_length=FEEDBACK_MAX_CHARS)
    photo = models.FileField(
        _("photo"), storage=private_storage, upload_to="feedback/%Y/%m/", max_length=200, blank=True
    )
    status = models.CharField(_("status"), max_length=10, choices=FeedbackStatus.choices, default=FeedbackStatus.OPEN)
    answer = models.TextField(_("answer"), max_length=FEEDBACK_MAX_CHARS, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
    )
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=FeedbackStatus.values), name="feedback_status_valid"),
            models.CheckConstraint(
                condition=Q(status=FeedbackStatus.OPEN) | (Q(answered_at__isnull=False) & ~Q(answer="")),
                name="feedback_answered_has_answer",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="feedback_inbox_idx")]

    def __str__(self):
        # "Products, 7 Dec 2026" reads as a message; the member's id read as a second, meaningless number.
        return f"{self.get_topic_display()}, {date_format(timezone.localtime(self.created_at), 'j M Y')}"


# Campaigns --------------------------------------------------------------------------------------------------------


class Campaign(TimeStampedModel):
    """A marketing message to a segment of members. Sending picks a random control group (control_percent of the
    audience, reproducible from the campaign id) that receives nothing, so that the campaign's effect is the
    difference in acting rate (communications.campaigns.campaign_reach)."""

    program = models.ForeignKey(
        "loyalty.Program", on_delete=models.PROTECT, related_name="+", verbose_name=_("program")
    )
    name = models.CharField(_("name"), max_length=200)
    topic = models.CharField(_("topic"), max_length=20, choices=MARKETING_TOPIC_CHOICES, default=Topic.CAMPAIGNS)
    status = models.CharField(_("status"), max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    scheduled_at = models.DateTimeField(
        _("send at"), null=True, blank=True, help_text=_("Blank: sent only when you send it now.")
    )
    partner_kinds = ArrayField(
        models.CharField(max_length=20, choices=PartnerKind.choices),
        default=list,
        blank=True,
        verbose_name=_("partner types"),
        help_text=_("Leave empty for every partner type."),
    )
    tiers = models.ManyToManyField(
        "loyalty.Tier", blank=True, related_name="+", verbose_name=_("tiers"), help_text=_("None: any tier.")
    )
    regions = models.ManyToManyField(
        "partners.Region",
        blank=True,
        related_name="+",
        verbose_name=_("regions"),
        help_text=_("Leave empty for every region."),
    )
    roles = models.ManyToManyField(
        "partners.Role",
        blank=True,
        related_name="+",
        verbose_name=_("roles"),
        help_text=_("Leave empty for every role."),
    )
    languages = ArrayField(
        models.CharField(max_length=10, choices=settings.LANGUAGES),
        default=list,
        blank=True,
        verbose_name=_("languages"),
        help_text=_("Leave empty for every language."),
    )
    activity = models.CharField(_("activity"), max_length=20, choices=Activity.choices, blank=True)
    inactive_days = models.PositiveSmallIntegerField(
        _("days without points"), default=60, help_text=_("For the activity “No points earned in the last N days”.")
    )
    control_percent = models.PositiveSmallIntegerField(
        _("control group (%)"),
        default=10,
        validators=[MaxValueValidator(50)],
        help_text=_(
            "This share of the audience, chosen at random, receives nothing: "
            "the campaign's effect is measured against it."
        ),
    )
    acted_within_days = models.PositiveSmallIntegerField(
        _("acted within (days)"),
        default=14,
        validators=[MinValueValidator(1)],
        help_text=_("A member acted if they earned, claimed or redeemed within this many days after the sending."),
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid"),
            models.CheckConstraint(condition=Q(control_percent__lte=50), name="campaign_control_percent_valid"),
        ]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_due_idx")]

    def __str__(self):
        return self.name

    def can_send(self) -> bool:
        return self.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)


class CampaignMessage(models.Model):
    """The campaign's words for one role (blank: everyone the other variants do not cover). Both are templates of
    the kind `campaign`, checked on save."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    role = models.ForeignKey(
        "partners.Role",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("role"),
        help_text=_("Blank: everyone else."),
    )
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("text"))

    class Meta:
        verbose_name = _("message variant")
        verbose_name_plural = _("message variants")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "role"], nulls_distinct=False, name="campaignmessage_one_per_role"
            )
        ]

    def __str__(self):
        return self.subject

    def clean(self):
        errors = {}
        for field in ("subject", "body"):
            problem = template_problem(Kind.CAMPAIGN, getattr(self, field))
            if problem:
                errors[field] = problem
        if errors:
            raise ValidationError(errors)


class CampaignRecipient(models.Model):
    """One member of a sent campaign's audience: in the control group (sent nothing), or told through `delivery`
    (their chosen channel's; empty when they opted out or reached the frequency cap)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="+")
    in_control_group = models.BooleanField(default=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "member"], name="campaignrecipient_one_per_member")]

    def __str__(self):
        return f"{self.campaign_id} · {self.member_id}"


class Tip(TimeStampedModel):
    """One "Did you know…" line of the pool a message's `{{ tip }}` is picked from (communications/tips.py): for a
    role and a product line (blank: any), in one language (blank: any), with a page of the member site to open."""

    text = models.CharField(_("text"), max_length=300)
    link_path = models.CharField(
        _("link"),
        max_length=300,
        blank=True,
        help_text=_("A page of the member site, e.g. /rewards/ (the message shows it as a full address)."),
    )
    role = models.ForeignKey(
        "partners.Role",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("role"),
        help_text=_("Blank: any role."),
    )
    product_line = models.SlugField(
        _("product line code"),
        max_length=40,
        blank=True,
        help_text=_("Shown with news about this product line (its code, e.g. softeners). Blank: any news."),
    )
    language = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, blank=True, help_text=_("Blank: any language.")
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("tip")
        verbose_name_plural = _("tips")
        ordering = ["product_line", "role__sort_order", "pk"]

    def __str__(self):
        return self.text

    def clean(self):
        if self.link_path and (not self.link_path.startswith("/") or self.link_path.startswith("//")):
            raise ValidationError({"link_path": _("Give a page of this site, starting with /, e.g. /rewards/.")})
