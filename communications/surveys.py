"""Surveys: who is asked (the audience), what a member sees, answering once (the points through loyalty's hook),
the invitations, and the results per question by role, partner type and tier.

The audience is every active member of an active partner, narrowed to the survey's roles and partner types when
it names some. A member's answer is stored once (a unique constraint, so a double click or a second tab is
refused with the day they answered)."""

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from communications import hooks
from communications.constants import Kind, QuestionKind, SurveyStatus
from communications.error_codes import ErrorCode
from communications.lock_objects import survey_lock
from communications.models import Answer, Delivery, Question, Response, Survey
from communications.services import Notice, notify_many
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import DAY_FORMAT
from loyalty.common.spreadsheets import csv_lines
from partners.constants import MemberStatus, PartnerKind, PartnerStatus
from partners.models import Member
from partners.visibility import viewer_for

NPS_SCORES = range(11)
TEXT_ANSWER_MAX_CHARS = 2000

# Audience -------------------------------------------------------------------------------------------------------


def survey_audience(*, survey: Survey) -> QuerySet[Member]:
    """The members the survey is for: active, of an active partner, of its roles and partner types (if any)."""
    members = Member.objects.filter(status=MemberStatus.ACTIVE, partner__status=PartnerStatus.ACTIVE)
    role_ids = [role.pk for role in survey.roles.all()]
    if role_ids:
        members = members.filter(role_id__in=role_ids)
    if survey.partner_kinds:
        members = members.filter(partner__kind__in=survey.partner_kinds)
    return members


def _running(now) -> Q:
    return (
        Q(status=SurveyStatus.OPEN)
        & (Q(opens_at__isnull=True) | Q(opens_at__lte=now))
        & (Q(closes_at__isnull=True) | Q(closes_at__gt=now))
    )


def surveys_for(viewer) -> QuerySet[Survey]:
    """The running surveys for the viewer's membership (none for staff and outsiders); see open_surveys."""
    member = viewer_for(viewer).member
    return open_surveys(member=member) if member is not None else Survey.objects.none()


def open_surveys(*, member: Member) -> QuerySet[Survey]:
    """The running surveys an active member is in the audience of, each with `answered_at`: when this member
    answered it (None: not yet). Newest first."""
    if member.status != MemberStatus.ACTIVE:
        return Survey.objects.none()
    roles = Survey.roles.through.objects.filter(survey=OuterRef("pk"))
    return (
        Survey.objects.filter(_running(timezone.now()))
        .filter(~Exists(roles) | Exists(roles.filter(role_id=member.role_id)))
        .filter(Q(partner_kinds=[]) | Q(partner_kinds__contains=[member.partner.kind]))
        .annotate(
            answered_at=Subquery(
                Response.objects.filter(survey=OuterRef("pk"), member=member).values("submitted_at")[:1]
            )
        )
        .order_by("-created_at", "-pk")
    )


def ended_survey(viewer, survey_id: int) -> tuple[Survey, str] | None:
    """A survey the member was invited to (or answered) that is no longer running, with what to tell them, for a link
    in an old message; None when there is nothing to say (not theirs, never invited, not yet open)."""
    member = viewer_for(viewer).member
    survey = Survey.objects.filter(pk=survey_id).exclude(_running(timezone.now())).first()
    if member is None or survey is None:
        return None
    answered = Response.objects.filter(survey=survey, member=member).values_list("submitted_at", flat=True).first()
    if answered is not None:
        return survey, answered_message(answered)
    invited = Delivery.objects.filter(member=member, kind=Kind.SURVEY, source_key=f"survey:{survey.pk}").exists()
    if not invited or survey.status == SurveyStatus.DRAFT:
        return None
    return survey, _("This survey has closed; answers are no longer taken. Thank you for your interest!")


def answered_message(submitted_at) -> str:
    return _("You answered this survey on %(day)s. Thank you!") % {
        "day": date_format(timezone.localtime(submitted_at), DAY_FORMAT)
    }


# Answering ------------------------------------------------------------------------------------------------------


def _checked(question: Question, value) -> object:
    """The answer to store for `question`, or None for no answer; raises ApplicationError for a wrong one."""
    if value in (None, "", []):
        if question.required:
            raise ApplicationError(
                _("Please answer: %(question)s") % {"question": question.text}, code=ErrorCode.ANSWER_MISSING
            )
        return None
    ok = (
        (question.kind == QuestionKind.NPS and isinstance(value, int) and value in NPS_SCORES)
        or (question.kind == QuestionKind.SINGLE and value in question.choices)
        or (
            question.kind == QuestionKind.MULTIPLE
            and isinstance(value, list)
            and all(choice in question.choices for choice in value)
        )
        or (question.kind == QuestionKind.TEXT and isinstance(value, str) and len(value) <= TEXT_ANSWER_MAX_CHARS)
    )
    if not ok:
        raise ApplicationError(
            _("This answer does not fit the question: %(question)s") % {"question": question.text},
            code=ErrorCode.ANSWER_INVALID,
        )
    if question.kind == QuestionKind.MULTIPLE:
        return [choice for choice in question.choices if choice in value]  # the survey's order, each once
    return value.strip() if isinstance(value, str) else value


@transaction.atomic
def survey_answer(*, survey: Survey, member: Member, answers: dict[int, object]) -> Response:
    """Store `member`'s answers ({question id: value}) to a running survey they are in the audience of, once; the
    survey-answered handlers (loyalty pays the points) run in the same transaction. A second answer is refused
    with the day of the first, and changes nothing."""
    if not open_surveys(member=member).filter(pk=survey.pk).exists():
        raise ApplicationError(_("This survey is not open for you."), code=ErrorCode.SURVEY_NOT_OPEN)
    earlier = Response.objects.filter(survey=survey, member=member).first()
    if earlier is not None:
        raise ApplicationError(answered_message(earlier.submitted_at), code=ErrorCode.SURVEY_ANSWERED)
    questions = list(survey.questions.all())
    values = {question.pk: _checked(question, answers.get(question.pk)) for question in questions}
    try:
        with transaction.atomic():
            response = Response.objects.create(survey=survey, member=member)
    except IntegrityError:  # the same member's other request stored theirs a moment ago
        earlier = Response.objects.get(survey=survey, member=member)
        raise ApplicationError(answered_message(earlier.submitted_at), code=ErrorCode.SURVEY_ANSWERED) from None
    Answer.objects.bulk_create(
        Answer(response=response, question_id=question_id, value=value)
        for question_id, value in values.items()
        if value is not None
    )
    for handler in hooks.survey_answered_handlers:
        handler(survey=survey, member=member, response=response)
    return response


# Invitations ----------------------------------------------------------------------------------------------------


@transaction.atomic
def survey_invite(*, survey: Survey) -> int:
    """Invite the audience of an open survey (a SURVEY message each, on their channel); returns how many were
    invited now. Inviting again reaches only the members not invited before (new in the audience)."""
    locked = survey_lock(survey.pk)
    if locked.status != SurveyStatus.OPEN:
        raise ApplicationError(_("Open the survey before inviting its audience."), code=ErrorCode.SURVEY_NOT_OPEN)
    member_ids = survey_audience(survey=locked).values_list("pk", flat=True)
    notices = (Notice(member_id, f"survey:{locked.pk}", {"title": locked.title}) for member_id in member_ids)
    stored = notify_many(kind=Kind.SURVEY, notices=notices, link_path=reverse("survey_answer", args=[locked.pk]))
    locked.invited_at = timezone.now()
    locked.save(update_fields=["invited_at", "updated_at"])
    survey.invited_at = locked.invited_at
    return len({delivery.member_id for delivery in stored})


# Results --------------------------------------------------------------------------------------------------------


def nps(scores: Counter) -> int | None:
    """The net promoter score of {score: count}: % of promoters (9–10) minus % of detractors (0–6), a whole
    number from -100 to 100 (halves away from zero); None without answers."""
    total = sum(scores.values())
    if not total:
        return None
    promoters = sum(count for score, count in scores.items() if score >= 9)
    detractors = sum(count for score, count in scores.items() if score <= 6)
    return int((Decimal(100 * (promoters - detractors)) / total).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Group:
    """The answers of one group of respondents (all, a role, a partner type, a tier) to one question."""

    dimension: str
    label: str
    answered: int = 0
    counts: Counter = field(default_factory=Counter)

    @property
    def nps(self) -> int | None:
        return nps(self.counts)


@dataclass
class QuestionResult:
    question: Question
    groups: list[Group]
    texts: list[str]  # the latest free-text answers

    @property
    def columns(self) -> list:
        if self.question.kind == QuestionKind.NPS:
            return list(NPS_SCORES)
        return list(self.question.choices)

    def rows(self) -> Iterator[tuple[Group, list[int]]]:
        for group in self.groups:
            yield group, [group.counts[column] for column in self.columns]


DIMENSIONS = {"role": gettext_lazy("Role"), "partner_kind": gettext_lazy("Partner type"), "tier": gettext_lazy("Tier")}
LATEST_TEXTS = 50


def _answer_rows(survey: Survey) -> list[dict]:
    """Every answer with its respondent's role, partner type and tier, in one query (tiers: one more, the hook's)."""
    rows = list(
        Answer.objects.filter(response__survey=survey)
        .order_by("-response__submitted_at", "-pk")
        .values(
            "question_id",
            "value",
            "response_id",
            "response__submitted_at",
            "response__member__role__name",
            "response__member__partner_id",
            "response__member__partner__kind",
        )
    )
    tiers = hooks.tier_names(
        program_id=survey.program_id, partner_ids=list({row["response__member__partner_id"] for row in rows})
    )
    kinds = dict(PartnerKind.choices)
    for row in rows:
        row["role"] = row["response__member__role__name"]
        row["partner_kind"] = str(kinds.get(row["response__member__partner__kind"], ""))
        row["tier"] = tiers.get(row["response__member__partner_id"], "")
    return rows


def survey_results(*, survey: Survey) -> list[QuestionResult]:
    """Per question: the answers of all respondents, then by role, partner type and tier (the groups that
    answered), each with its counts per choice or score (and the NPS of a recommendation question)."""
    rows = _answer_rows(survey)
    results = []
    by_question = defaultdict(list)
    for row in rows:
        by_question[row["question_id"]].append(row)
    for question in survey.questions.all():
        everyone = Group("", str(_("All respondents")))
        groups: dict[tuple[str, str], Group] = {}
        texts = []
        for row in by_question[question.pk]:
            values = row["value"] if isinstance(row["value"], list) else [row["value"]]
            targets = [everyone] + [
                groups.setdefault((dimension, row[dimension]), Group(str(label), row[dimension]))
                for dimension, label in DIMENSIONS.items()
                if row[dimension]
            ]
            for group in targets:
                group.answered += 1
                if question.kind != QuestionKind.TEXT:
                    group.counts.update(values)
            if question.kind == QuestionKind.TEXT and len(texts) < LATEST_TEXTS:
                texts.append(row["value"])
        ordered = sorted(groups.items(), key=lambda item: (list(DIMENSIONS).index(item[0][0]), item[0][1]))
        results.append(QuestionResult(question, [everyone, *(group for _key, group in ordered)], texts))
    return results


def _answer_text(value) -> str | int:
    if isinstance(value, list):
        return "; ".join(value)
    return value


def survey_csv(*, survey: Survey) -> Iterator[str]:
    """The survey's answers as CSV lines, one per answer (the one CSV writer: formula-like text neutralised)."""
    questions = {question.pk: question.text for question in survey.questions.all()}
    header = [_("Response"), _("Submitted at"), _("Role"), _("Partner type"), _("Tier"), _("Question"), _("Answer")]
    rows = (
        (
            row["response_id"],
            timezone.localtime(row["response__submitted_at"]),
            row["role"],
            row["partner_kind"],
            row["tier"],
            questions[row["question_id"]],
            _answer_text(row["value"]),
        )
        for row in _answer_rows(survey)
    )
    return csv_lines(rows, header=header, bom=True)
