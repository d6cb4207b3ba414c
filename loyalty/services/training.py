"""Learn to earn: a member starts a module's quiz and submits it; a pass is the rule engine's "training passed" event;
passing every module of a course that certifies gives a Certificate for the course's product line.

Starting (`start_attempt`) is refused, with a message the member reads and nothing written, for a member who is not
active, a course that is not published, not for the member's role or partner type, of a program that is not running,
or closed (its `closes_on` day is over), a module already passed in the member's current round, all `attempts_allowed`
of the round used (an attempt left open until its deadline counts), and a quiz without a question ready to ask (one
with at least two answers and a right one). A member's attempt that is still open is given back instead of a second
one. The questions and each question's answers are shuffled once per attempt and kept in it, so the quiz looks the
same when it is opened again. An attempt accepts answers for ATTEMPT_HOURS, and never after the end of the course's
closing day.

Submitting (`submit_attempt`) is refused, with nothing changed and nothing paid, for an attempt of another member
(said as if there were no such attempt), an attempt submitted before, after its deadline, answers naming a question
or an answer that is not in the attempt, and several answers to a single-choice question. A question is right when
the answers chosen are exactly its right answers (an unanswered question is wrong); the score is the percentage of
right questions, rounded half up, and passes from the module's pass mark.

Starts and submissions of one member's quiz of one module run one at a time (lock_objects.quiz_lock): numbers never
collide, one attempt is open at most, and the database allows one passed attempt per member, module and round. A
member's first pass of a module posts the event through loyalty.services.earning.post_event like every other event,
so the program's rules for "training passed" pay it with their caps, budgets and shares, once per member and module
(its source key "training:<module>:<member>"), and the member's pages show the ledger's explanation.

Certificates and renewal by re-taking. A course that certifies is taken in rounds (selectors.training.Certification):
round 1 gives the first certificate when its last missing module is passed, for `certification_months`. The round
is complete while that certificate is valid: its modules cannot be taken again (MODULE_PASSED, saying from which day
they can), and a module the program team adds meanwhile (a refresher) is taken in that round for its points but
gives no second certificate. Renewal opens CERTIFICATE_NOTICE_DAYS before the certificate's last valid day (the day
the expiry notice, which says "pass the course again", is sent; never on the day it was issued) and stays open after
it expired: the member's round is then the next one, every module of the course is taken again (attempts_allowed
counts afresh in each round), and passing the last of them gives the new certificate. The new one is issued today and
valid for `certification_months` from the day the old one ends if it is still valid (so days left are not lost), else
from today. A renewal pass of a module passed in an earlier round posts no event at all: it pays nothing (even under a
rule published since) and counts for no challenge, as a module pays once. An attempt counts for the round current
when it is submitted. The member is told of a certificate through communications (CERTIFICATE_ISSUED): the deliveries
are stored in the same transaction and sent once it commits.
"""

import random
import secrets
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Value
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from communications.constants import Kind
from communications.services import notify
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import DAY_FORMAT
from loyalty.common.pdf import BOLD, Box, Text, fit, one_page_pdf
from loyalty.constants import (
    ATTEMPT_HOURS,
    AttemptStatus,
    EntryKind,
    EntrySource,
    QuestionKind,
    RuleEvent,
)
from loyalty.engine.facts import member_event
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import attempt_lock, certification_lock, quiz_lock
from loyalty.models import Certificate, Course, Module, PointsEntry, QuizAttempt, QuizQuestion
from loyalty.selectors.training import (
    Certification,
    certification_of,
    course_is_for,
    course_state,
    last_valid_day,
    ready_questions,
    training_source_key,
)
from loyalty.services.earning import Paid, paid_of, post_event, preview_event
from partners.constants import MemberStatus
from partners.models import Member

TRAINING_PASSED = RuleEvent.TRAINING_PASSED.value
CERTIFICATE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32: no 0/O or 1/I to mix up
CERTIFICATE_CODE_LENGTH = 6


# Starting -------------------------------------------------------------------------------------------------------


def _active_member(member: Member) -> Member:
    """The member as stored now (with user, partner and role), refused unless active."""
    fresh = Member.objects.select_related("user", "partner", "role").get(pk=member.pk)
    if fresh.status != MemberStatus.ACTIVE:
        raise ApplicationError(
            _("Only active members can take quizzes; this membership is %(status)s.")
            % {"status": fresh.get_status_display().lower()},
            ErrorCode.MEMBER_INACTIVE,
        )
    return fresh


def course_closing_end(course: Course) -> datetime | None:
    """The moment the course's closing day ends (quizzes are accepted up to and including that day)."""
    if course.closes_on is None:
        return None
    return timezone.make_aware(datetime.combine(course.closes_on + timedelta(days=1), time.min))


def check_course_open(*, member: Member, course: Course, today: date) -> None:
    """Refuse a course the member may not take today: unpublished, of a program not running, not for them, closed."""
    if not (course.is_published and course.program.is_active and course_is_for(course=course, member=member)):
        raise ApplicationError(_("This course is not open to you."), ErrorCode.COURSE_NOT_OPEN)
    if course.closes_on is not None and course.closes_on < today:
        raise ApplicationError(
            _("This course closed on %(day)s; its quizzes can no longer be taken.")
            % {"day": date_format(course.closes_on, DAY_FORMAT)},
            ErrorCode.COURSE_CLOSED,
        )


def _deadline(course: Course, now: datetime) -> datetime:
    deadline = now + timedelta(hours=ATTEMPT_HOURS)
    closing = course_closing_end(course)
    return min(deadline, closing) if closing is not None else deadline


def _passed_already(standing: Certification) -> ApplicationError:
    opens_on = standing.renewal_opens_on if standing.held else None
    if opens_on is not None and opens_on > standing.today:
        return ApplicationError(
            _(
                "You have passed this module already, and your certificate is valid until %(last_day)s. You can take "
                "the course again to renew it from %(day)s."
            )
            % {
                "last_day": date_format(standing.last_valid_day, DAY_FORMAT),
                "day": date_format(opens_on, DAY_FORMAT),
            },
            ErrorCode.MODULE_PASSED,
        )
    return ApplicationError(_("You have passed this module already."), ErrorCode.MODULE_PASSED)


@transaction.atomic
def start_attempt(*, member: Member, module: Module) -> QuizAttempt:
    """A new attempt at `module`'s quiz for `member` (or their attempt still open), with the questions and answers
    shuffled. Refusals: see the module's docstring."""
    member = _active_member(member)
    module = Module.objects.select_related("course__program").get(pk=module.pk)
    now = timezone.now()
    check_course_open(member=member, course=module.course, today=timezone.localdate(now))
    quiz_lock(member.pk, module.pk)
    standing = certification_of(member_id=member.pk, course=module.course, today=timezone.localdate(now))
    current = standing.round
    attempts = list(QuizAttempt.objects.filter(member=member, module=module).order_by("number"))
    if any(attempt.status == AttemptStatus.PASSED and attempt.round == current for attempt in attempts):
        raise _passed_already(standing)
    for attempt in reversed(attempts):
        if attempt.status == AttemptStatus.STARTED and attempt.deadline > now:
            return attempt
    in_round = [attempt for attempt in attempts if attempt.round == current]
    if module.attempts_allowed is not None and len(in_round) >= module.attempts_allowed:
        raise ApplicationError(
            ngettext(
                "You have used your one attempt at this quiz.",
                "You have used all %(count)s attempts at this quiz.",
                module.attempts_allowed,
            )
            % {"count": module.attempts_allowed},
            ErrorCode.ATTEMPTS_USED_UP,
        )
    questions = ready_questions(module)
    if not questions:
        raise ApplicationError(
            _("This module's quiz has no questions yet. Please come back later."), ErrorCode.QUIZ_EMPTY
        )
    shuffler = random.Random(secrets.randbits(64))
    order = [question.pk for question in questions]
    shuffler.shuffle(order)
    choices = {}
    for question in questions:
        ids = [choice.pk for choice in question.choices.all()]
        shuffler.shuffle(ids)
        choices[str(question.pk)] = ids
    return QuizAttempt.objects.create(
        member=member,
        module=module,
        number=(attempts[-1].number if attempts else 0) + 1,
        round=current,
        question_order=order,
        choice_order=choices,
        total=len(order),
        started_at=now,
        deadline=_deadline(module.course, now),
    )


# Submitting -----------------------------------------------------------------------------------------------------


def _not_found() -> ApplicationError:
    return ApplicationError(_("There is no such quiz attempt."), ErrorCode.ATTEMPT_NOT_FOUND)


def _checked_answers(attempt: QuizAttempt, answers: dict, kinds: dict[int, str]) -> dict[int, set[int]]:
    """{question id: chosen answer ids} after refusing anything the attempt did not ask."""
    unknown = ApplicationError(
        _("Some answers do not belong to this quiz. Please open the quiz again and answer its questions."),
        ErrorCode.ANSWER_UNKNOWN,
    )
    asked = {int(question_id): set(choice_ids) for question_id, choice_ids in attempt.choice_order.items()}
    chosen: dict[int, set[int]] = {}
    for question_id, choice_ids in answers.items():
        try:
            question_id = int(question_id)
            choice_ids = {int(choice_id) for choice_id in choice_ids}
        except (TypeError, ValueError):
            raise unknown from None
        if question_id not in asked or not choice_ids <= asked[question_id]:
            raise unknown
        if kinds.get(question_id) == QuestionKind.SINGLE and len(choice_ids) > 1:
            raise ApplicationError(
                _("Choose one answer only for a question that has one right answer."), ErrorCode.SEVERAL_ANSWERS
            )
        chosen[question_id] = choice_ids
    return chosen


def score_percent(correct: int, total: int) -> int:
    """The share of right questions in percent, rounded half up (2 of 3 is 67)."""
    if total <= 0:
        return 0
    return int((Decimal(correct * 100) / Decimal(total)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@transaction.atomic
def submit_attempt(*, member: Member, attempt_id: int, answers: dict[int, list[int]]) -> QuizAttempt:
    """Score `member`'s answers to their attempt `attempt_id` ({question id: [answer id, …]}); a pass pays through
    the rule engine and may certify the member. Refusals: see the module's docstring."""
    found = (
        QuizAttempt.objects.filter(pk=attempt_id, member_id=member.pk)
        .order_by()
        .values_list("module_id", flat=True)
        .first()
    )
    if found is None:
        raise _not_found()
    quiz_lock(member.pk, found)
    attempt = attempt_lock(attempt_id)
    if attempt.status != AttemptStatus.STARTED:
        raise ApplicationError(
            _("You submitted this quiz on %(day)s (score %(percent)s %%); it cannot be submitted again.")
            % {"day": date_format(timezone.localtime(attempt.submitted_at), DAY_FORMAT), "percent": attempt.percent},
            ErrorCode.ATTEMPT_SUBMITTED,
        )
    now = timezone.now()
    if now > attempt.deadline:
        raise ApplicationError(
            _("The time for this quiz ran out on %(moment)s; your answers were not counted.")
            % {"moment": date_format(timezone.localtime(attempt.deadline), "j M Y, H:i")},
            ErrorCode.ATTEMPT_EXPIRED,
        )
    member = _active_member(member)
    # Each question still there: its kind and its right answers (one query, in no order).
    questions = (
        QuizQuestion.objects.filter(pk__in=attempt.question_order)
        .order_by()
        .annotate(right=ArrayAgg("choices__pk", filter=Q(choices__is_correct=True), default=Value([])))
        .values_list("pk", "kind", "right")
    )
    kinds, right_answers = {}, {}
    for question_id, kind, right in questions:
        kinds[question_id], right_answers[question_id] = kind, set(right)
    chosen = _checked_answers(attempt, answers, kinds)
    correct = sum(1 for question_id, right in right_answers.items() if right and chosen.get(question_id) == right)
    module = attempt.module
    course = module.course
    today = timezone.localdate(now)
    percent = score_percent(correct, len(right_answers))
    passed = percent >= module.pass_percent
    standing, modules, passes = Certification(today=today), 0, frozenset()
    if course.certification_months and course.product_line_id is not None:
        certification_lock(member.pk, course.pk)  # taken after quiz_lock, always in that order
        state = course_state(member_id=member.pk, course=course, today=today)
        standing, modules, passes = state.certification, state.modules, state.passes
        if passed and (module.pk, standing.round) in passes:
            raise _passed_already(standing)
    attempt.answers = {str(question_id): sorted(choice_ids) for question_id, choice_ids in chosen.items()}
    attempt.total = len(right_answers)
    attempt.correct = correct
    attempt.percent = percent
    attempt.status = AttemptStatus.PASSED if passed else AttemptStatus.FAILED
    attempt.submitted_at = now
    attempt.round = standing.round
    attempt.save(update_fields=["answers", "total", "correct", "percent", "status", "submitted_at", "round"])
    if passed:
        if not any(module_id == module.pk for module_id, _round in passes):  # its first pass: a module pays once
            _pay(member=member, module=module, percent=percent, today=today)
        if standing.certifies:
            in_round = {module_id for module_id, round_ in passes if round_ == standing.round} | {module.pk}
            if len(in_round) >= modules:
                _certify(member=member, course=course, standing=standing)
    return attempt


def _pass_event(*, member: Member, module: Module, percent: int, today: date):
    """A member's pass of a module as the engine sees it: once per member and module (its source key)."""
    return member_event(
        kind=TRAINING_PASSED,
        program=module.course.program,
        source_key=training_source_key(module.pk, member.pk),
        member=member,
        occurred_on=today,
        quantity=Decimal(percent),
        unit="% score",
        subject=f"module “{module.title}”",
    )


def _pay(*, member: Member, module: Module, percent: int, today: date) -> list[PointsEntry]:
    event = _pass_event(member=member, module=module, percent=percent, today=today)
    return post_event(program=module.course.program, event=event, source_type=EntrySource.TRAINING)


# Passed in another learning system --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ExternalPass:
    member: Member
    module: Module
    day: date
    standing: Certification
    modules: int
    passes: frozenset[tuple[int, int]]

    @property
    def repeated(self) -> bool:
        """The module is passed in the member's current round already: this pass was reported before."""
        return (self.module.pk, self.standing.round) in self.passes

    @property
    def first_round(self) -> int | None:
        """The round the module was first passed (and paid) in; None: never passed."""
        return min((round_ for module_id, round_ in self.passes if module_id == self.module.pk), default=None)

    def first_pass_entries(self):
        """What the module's first pass paid (the member's share and the company's)."""
        return PointsEntry.objects.filter(
            source_type=EntrySource.TRAINING,
            source_id=training_source_key(self.module.pk, self.member.pk),
            kind=EntryKind.EARN,
        )


def _external_pass(*, member: Member, module: Module, passed_at: datetime, lock: bool) -> _ExternalPass:
    member = _active_member(member)
    module = Module.objects.select_related("course__program").get(pk=module.pk)
    course = module.course
    day = timezone.localdate(passed_at)
    check_course_open(member=member, course=course, today=day)
    if lock:
        quiz_lock(member.pk, module.pk)
        if course.certification_months and course.product_line_id is not None:
            certification_lock(member.pk, course.pk)  # after quiz_lock, as submit_attempt takes them
    state = course_state(member_id=member.pk, course=course, today=day)
    return _ExternalPass(member, module, day, state.certification, state.modules, state.passes)


@transaction.atomic
def pass_externally(
    *, member: Member, module: Module, passed_at: datetime, percent: int | None = None
) -> list[PointsEntry]:
    """`member` passed `module` in another learning system at `passed_at` with a score of `percent` (none reported:
    the module's pass mark), recorded as a quiz passed here is: a passed attempt in the member's current round, with
    no questions asked here (`question_order` empty), so the Learn pages, challenges and certification count it. As
    here, the first pass of a module pays through the rule engine (dated the pass's day), a renewal pass pays nothing,
    and passing the last module of the member's round of a course that certifies gives the certificate. Refused as
    starting a quiz here is, with nothing written: a member not active, a course not open to them on the pass's day.
    Reported again (the module is passed in the member's current round) it changes nothing. Returns what the pass
    paid: the module's first pass's entries when that is this round's pass (also when reported again), else none."""
    found = _external_pass(member=member, module=module, passed_at=passed_at, lock=True)
    percent = found.module.pass_percent if percent is None else percent
    first_round = found.first_round
    if found.repeated:
        return list(found.first_pass_entries().order_by("pk")) if first_round == found.standing.round else []
    numbers = QuizAttempt.objects.filter(member=found.member, module=found.module).order_by("-number")
    number = (numbers.values_list("number", flat=True).first() or 0) + 1
    QuizAttempt.objects.create(
        member=found.member,
        module=found.module,
        number=number,
        round=found.standing.round,
        status=AttemptStatus.PASSED,
        question_order=[],
        choice_order={},
        answers={},
        total=0,
        correct=0,
        percent=percent,
        started_at=passed_at,
        deadline=passed_at,
        submitted_at=passed_at,
    )
    entries = []
    if first_round is None:
        entries = _pay(member=found.member, module=found.module, percent=percent, today=found.day)
    standing = found.standing
    if standing.certifies:
        in_round = {module_id for module_id, round_ in found.passes if round_ == standing.round} | {found.module.pk}
        if len(in_round) >= found.modules:
            _certify(member=found.member, course=found.module.course, standing=standing)
    return entries


def pass_externally_preview(
    *, member: Member, module: Module, passed_at: datetime, percent: int | None = None
) -> list[Paid]:
    """What pass_externally would answer, writing nothing (refused the same way)."""
    found = _external_pass(member=member, module=module, passed_at=passed_at, lock=False)
    percent = found.module.pass_percent if percent is None else percent
    first_round = found.first_round
    if found.repeated:
        return paid_of(found.first_pass_entries()) if first_round == found.standing.round else []
    if first_round is not None:
        return []
    event = _pass_event(member=found.member, module=found.module, percent=percent, today=found.day)
    return preview_event(program=found.module.course.program, event=event)


# Certificates ---------------------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day when it has no such day (31 Jan + 1 month = 28/29 Feb)."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def new_certificate_number(today: date) -> str:
    """CERT-<year>-<6 random base32 characters>, not given before."""
    while True:
        code = "".join(secrets.choice(CERTIFICATE_ALPHABET) for _ in range(CERTIFICATE_CODE_LENGTH))
        number = f"CERT-{today.year}-{code}"
        if not Certificate.objects.filter(number=number).exists():
            return number


def modules_passed(*, member_id: int, course_id: int) -> tuple[int, int]:
    """(modules of the course the member passed in round 1, modules of the course): one query."""
    found = Module.objects.filter(course_id=course_id).aggregate(
        total=Count("pk"),
        passed=Count(
            "pk",
            filter=Exists(
                QuizAttempt.objects.filter(
                    member_id=member_id, module=OuterRef("pk"), status=AttemptStatus.PASSED, round=1
                )
            ),
        ),
    )
    return found["passed"], found["total"]


def _certify(*, member: Member, course: Course, standing: Certification) -> Certificate | None:
    """The certificate of the member's current round, now that they passed its every module (see the docstring):
    none when the round has one already (a module added to a course whose certificate is valid)."""
    if standing.held >= standing.round:
        return None
    today = standing.today
    starts = standing.expires_on if standing.is_valid else today  # a renewal before expiry loses no day
    certificate = Certificate.objects.create(
        program=course.program,
        member=member,
        course=course,
        product_line_id=course.product_line_id,
        number=new_certificate_number(today),
        issued_on=today,
        expires_on=add_months(starts, course.certification_months),
    )
    notify(
        kind=Kind.CERTIFICATE_ISSUED,
        member=member,
        source_key=f"certificate:{certificate.pk}",
        variables={
            "product_line": course.product_line.name,
            "course": course.title,
            "expires_on": last_valid_day(certificate),
            "certificate_number": certificate.number,
        },
        link_path=reverse("learn"),
    )
    return certificate


def certificate_to_download(*, member: Member, course_id: int) -> Certificate:
    """The member's latest certificate of a course (valid or not, the page says which), or a refusal saying why there
    is none: the course gives none, or the member has not passed every module yet (N of M passed)."""
    certificate = (
        Certificate.objects.filter(member_id=member.pk, course_id=course_id)
        .select_related("course", "product_line", "program", "member__user", "member__partner")
        .order_by("-issued_on", "-pk")
        .first()
    )
    if certificate is not None:
        return certificate
    course = Course.objects.filter(pk=course_id, is_published=True).first()
    if course is None or not course_is_for(course=course, member=member):
        raise ApplicationError(_("There is no such course."), ErrorCode.CERTIFICATE_NOT_EARNED)
    if not course.certification_months:
        raise ApplicationError(
            _("“%(course)s” does not give a certificate.") % {"course": course.title}, ErrorCode.CERTIFICATE_NOT_EARNED
        )
    passed, total = modules_passed(member_id=member.pk, course_id=course.pk)
    raise ApplicationError(
        _(
            "You have no certificate for “%(course)s” yet: pass every module of the course to get it "
            "(%(passed)s of %(total)s passed)."
        )
        % {"course": course.title, "passed": passed, "total": total},
        ErrorCode.CERTIFICATE_NOT_EARNED,
    )


def certificate_pdf(certificate: Certificate) -> bytes:
    """The certificate as a one-page A4 PDF, in the active language (loyalty.common.pdf: characters outside
    Western European ones show as "?")."""
    width, height = 842, 595
    centre = width / 2
    name = certificate.member.user.get_full_name() or certificate.member.user.email
    course = f"“{certificate.course.title}”"
    lines = [
        Box(24, 24, width - 48, height - 48, line_width=3, grey=0.2),
        Box(34, 34, width - 68, height - 68, line_width=0.75, grey=0.5),
        Text(certificate.program.name, centre, 500, size=14, centred=True, grey=0.35),
        Text(_("Certificate"), centre, 440, size=40, font=BOLD, centred=True),
        Text(_("This certifies that"), centre, 390, size=14, centred=True),
        Text(name, centre, 350, size=fit(name, size=30, font=BOLD, width=700), font=BOLD, centred=True),
        Text(certificate.member.partner.name, centre, 322, size=14, centred=True, grey=0.35),
        Text(_("passed every module of the course"), centre, 282, size=14, centred=True),
        Text(course, centre, 252, size=fit(course, size=20, font=BOLD, width=700), font=BOLD, centred=True),
        Text(
            _("and is certified on %(line)s") % {"line": certificate.product_line.name},
            centre,
            218,
            size=16,
            centred=True,
        ),
        Text(
            _("Issued on %(issued)s · valid until %(expires)s")
            % {
                "issued": date_format(certificate.issued_on, DAY_FORMAT),
                "expires": date_format(last_valid_day(certificate), DAY_FORMAT),
            },
            centre,
            150,
            size=12,
            centred=True,
        ),
        Text(
            _("Certificate number %(number)s") % {"number": certificate.number},
            centre,
            128,
            size=12,
            centred=True,
            grey=0.35,
        ),
    ]
    return one_page_pdf(lines, size=(width, height), title=f"{_('Certificate')} {certificate.number}")
