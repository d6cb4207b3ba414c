"""Learn to earn: courses of modules with a quiz each, members' attempts, and the certificates a passed course gives.

Passing a module's quiz is the rule engine's "training passed" event (once per member and module: its source key);
passing every module of a course that certifies gives a Certificate for the course's product line, which rules can
require ("installers certified on softeners earn ×1.5 on softener sales") and rewards can be reserved for."""

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.common.models import TimeStampedModel
from loyalty.constants import AttemptStatus, QuestionKind
from partners.constants import PartnerKind


class Course(TimeStampedModel):
    """Modules about one product line (or general selling skills), for the roles and partner kinds it names."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="courses")
    title = models.CharField(_("title"), max_length=150)
    summary = models.TextField(_("summary"), blank=True, help_text=_("Shown to members on the Learn page."))
    product_line = models.ForeignKey(
        "loyalty.ProductLine",
        verbose_name=_("product line"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="courses",
        help_text=_("The line the course is about; a certificate is for this line."),
    )
    # Targeting: empty means everyone in the program.
    roles = models.ManyToManyField("partners.Role", verbose_name=_("roles"), blank=True, related_name="+")
    partner_kinds = ArrayField(
        models.CharField(max_length=20, choices=PartnerKind.choices),
        verbose_name=_("partner types"),
        blank=True,
        default=list,
    )
    certification_months = models.PositiveSmallIntegerField(
        _("certification (months)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_(
            "Passing every module certifies the member for the product line for this many months. Empty: no "
            "certificate."
        ),
    )
    closes_on = models.DateField(
        _("closes on"), null=True, blank=True, help_text=_("Quizzes can be submitted up to and including this day.")
    )
    is_published = models.BooleanField(_("published"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["program", "position", "title"]
        verbose_name = _("course")
        verbose_name_plural = _("courses")
        constraints = [
            models.CheckConstraint(
                condition=Q(certification_months__isnull=True) | Q(product_line__isnull=False),
                name="course_certificate_needs_line",
            ),
        ]

    def __str__(self):
        return self.title


class Module(TimeStampedModel):
    """One lesson (text, an image, a video or document link) and its quiz."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="modules")
    title = models.CharField(_("title"), max_length=150)
    body = models.TextField(_("lesson"), blank=True, help_text=_("The lesson's text; blank lines separate paragraphs."))
    image = models.ImageField(_("image"), upload_to="training/", blank=True)
    media_url = models.URLField(_("video or document link"), blank=True)
    minutes = models.PositiveSmallIntegerField(
        _("estimated minutes"), default=10, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    pass_percent = models.PositiveSmallIntegerField(
        _("pass mark (%)"), default=80, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    attempts_allowed = models.PositiveSmallIntegerField(
        _("attempts allowed"), null=True, blank=True, validators=[MinValueValidator(1)], help_text=_("Empty: no limit.")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["course", "position", "id"]
        verbose_name = _("module")
        verbose_name_plural = _("modules")
        constraints = [
            models.CheckConstraint(condition=Q(pass_percent__gte=1, pass_percent__lte=100), name="module_pass_percent"),
        ]

    def __str__(self):
        return self.title


class QuizQuestion(models.Model):
    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="questions")
    text = models.CharField(_("question"), max_length=500)
    kind = models.CharField(_("kind"), max_length=10, choices=QuestionKind.choices, default=QuestionKind.SINGLE)
    explanation = models.CharField(
        _("explanation"), max_length=500, blank=True, help_text=_("Shown after an attempt: why the answer is right.")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["module", "position", "id"]
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=QuestionKind.values), name="quiz_question_kind_valid")
        ]

    def __str__(self):
        return self.text


class QuizChoice(models.Model):
    question = models.ForeignKey(QuizQuestion, on_delete=models.CASCADE, related_name="choices")
    text = models.CharField(_("answer"), max_length=300)
    is_correct = models.BooleanField(_("correct"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["question", "position", "id"]
        verbose_name = _("answer")
        verbose_name_plural = _("answers")

    def __str__(self):
        return self.text


class QuizAttempt(models.Model):
    """One go at a module's quiz: the questions and answers in the shuffled order the member saw, what they
    chose, and the score. Submitted once; a member's first pass of a module is the only one that can pay.

    `round`: the member's certification round of the course the attempt counts for (services.training): 1, then one
    more for each renewal of the course's certificate; a module is passed at most once per round. `number` counts the
    member's attempts at the module over all rounds; `attempts_allowed` applies per round."""

    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="quiz_attempts")
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    round = models.PositiveSmallIntegerField(_("round"), default=1)
    status = models.CharField(max_length=10, choices=AttemptStatus.choices, default=AttemptStatus.STARTED)
    # [question id, ...] and {question id: [choice id, ...]} as shown; {question id: [choice id, ...]} as answered.
    question_order = models.JSONField(default=list)
    choice_order = models.JSONField(default=dict)
    answers = models.JSONField(default=dict, blank=True)
    correct = models.PositiveSmallIntegerField(null=True, blank=True)
    total = models.PositiveSmallIntegerField(default=0)
    percent = models.PositiveSmallIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    deadline = models.DateTimeField(help_text=_("Answers after this moment are refused."))
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["member", "module", "number"]
        verbose_name = _("quiz attempt")
        verbose_name_plural = _("quiz attempts")
        constraints = [
            models.UniqueConstraint(fields=["member", "module", "number"], name="attempt_number_unique"),
            models.UniqueConstraint(
                fields=["member", "module", "round"],
                condition=Q(status=AttemptStatus.PASSED),
                name="attempt_one_pass_a_round",
            ),
            models.CheckConstraint(condition=Q(round__gte=1), name="attempt_round_positive"),
            models.CheckConstraint(condition=Q(status__in=AttemptStatus.values), name="attempt_status_valid"),
            models.CheckConstraint(
                condition=Q(status=AttemptStatus.STARTED) | Q(submitted_at__isnull=False, percent__isnull=False),
                name="attempt_submitted_has_score",
            ),
        ]

    def __str__(self):
        return f"{self.member} · {self.module} #{self.number}"


class Certificate(TimeStampedModel):
    """A member certified on a product line by passing a course, from `issued_on` until `expires_on` (excluded)."""

    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("partners.Member", on_delete=models.CASCADE, related_name="certificates")
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="certificates")
    product_line = models.ForeignKey("loyalty.ProductLine", on_delete=models.PROTECT, related_name="+")
    number = models.CharField(_("certificate number"), max_length=30, unique=True)
    issued_on = models.DateField(_("issued on"))
    expires_on = models.DateField(_("valid until"))
    # When the member was told it expires soon (once per certificate).
    expiry_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_on", "-id"]
        verbose_name = _("certificate")
        verbose_name_plural = _("certificates")
        constraints = [
            models.UniqueConstraint(fields=["member", "course", "issued_on"], name="certificate_once_a_day"),
            models.CheckConstraint(condition=Q(expires_on__gt=models.F("issued_on")), name="certificate_expires_after"),
        ]
        indexes = [models.Index(fields=["member", "product_line", "expires_on"], name="certificate_valid_idx")]

    def __str__(self):
        return f"{self.number} · {self.member} · {self.product_line}"
