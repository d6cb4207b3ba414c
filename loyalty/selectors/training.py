"""Reads of learn to earn, scoped by the viewer: the courses a member may take (published, for their role and partner
type, in the program shown), their progress per course and module, what each module's quiz pays them now, their
attempts and results, and their certificates. A member sees only their own attempts and certificates; anyone who is
not a partner's member sees none (the member pages are for members: loyalty.views.decorators).

Every page's reads are a fixed number of queries, however many courses, modules, attempts and certificates."""

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, DateField, Exists, ExpressionWrapper, F, Max, OuterRef, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from loyalty.constants import AttemptStatus, EntrySource, QuestionKind, RuleEvent
from loyalty.engine.facts import member_event
from loyalty.engine.rules import evaluate
from loyalty.models import Certificate, Course, Module, PointsEntry, Program, QuizAttempt, QuizChoice, QuizQuestion
from partners.models import Member
from partners.visibility import viewer_for

HUNDRED = Decimal(100)


class ModuleStatus:
    """Where a member stands with a module's quiz (the Learn page's badge)."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"
    PASSED = "passed"


def training_source_key(module_id: int, member_id: int) -> str:
    """The source key of a member's pass of a module: what makes it pay once (the ledger entries' source id)."""
    return f"training:{module_id}:{member_id}"


# Targeting ------------------------------------------------------------------------------------------------------


def course_is_for(*, course: Course, member: Member) -> bool:
    """Is the course for the member's role and partner type (empty: for everyone)? Reads the course's roles (one
    query unless prefetched)."""
    role_ids = {role.pk for role in course.roles.all()}
    return (not role_ids or member.role_id in role_ids) and (
        not course.partner_kinds or member.partner.kind in course.partner_kinds
    )


def _targeted(courses: QuerySet[Course], member: Member) -> QuerySet[Course]:
    roles = Course.roles.through.objects.filter(course_id=OuterRef("pk"))
    return courses.filter(~Exists(roles) | Exists(roles.filter(role_id=member.role_id))).filter(
        Q(partner_kinds=[]) | Q(partner_kinds__contains=[member.partner.kind])
    )


def courses_for(*, viewer, program: Program | None, include_closed: bool = False) -> QuerySet[Course]:
    """The published courses of `program` the viewer's membership may take (none for anyone else), in the program
    team's order; closed ones (their closing day over) only with `include_closed`."""
    member = viewer_for(viewer).member
    if member is None or program is None or not program.is_active:
        return Course.objects.none()
    courses = _targeted(Course.objects.filter(program=program, is_published=True), member)
    if not include_closed:
        courses = courses.filter(Q(closes_on__isnull=True) | Q(closes_on__gte=timezone.localdate()))
    return courses.order_by("position", "title", "pk")


def ready_questions(module: Module) -> list[QuizQuestion]:
    """The module's questions a quiz can ask (at least two answers, one of them right), with their answers."""
    return list(
        QuizQuestion.objects.filter(module=module)
        .annotate(answers=Count("choices"), right=Count("choices", filter=Q(choices__is_correct=True)))
        .filter(answers__gte=2, right__gte=1)
        .prefetch_related(Prefetch("choices", queryset=QuizChoice.objects.order_by("position", "pk")))
        .order_by("position", "pk")
    )


# Progress -------------------------------------------------------------------------------------------------------


@dataclass
class ModuleProgress:
    module: Module
    status: str = ModuleStatus.NOT_STARTED
    attempts_used: int = 0
    best_percent: int | None = None
    open_attempt_id: int | None = None
    last_result_id: int | None = None  # the latest submitted attempt, for its result page
    points_paid: int = 0
    points_offered: int = 0  # what passing at the pass mark pays the member under today's rules (before caps)
    points_offered_max: int = 0  # ... and with a full score (more only when a rule pays per % of score)

    @property
    def is_passed(self) -> bool:
        return self.status == ModuleStatus.PASSED

    @property
    def is_failed(self) -> bool:
        return self.status == ModuleStatus.FAILED

    @property
    def is_in_progress(self) -> bool:
        return self.status == ModuleStatus.IN_PROGRESS

    @property
    def attempts_left(self) -> int | None:
        allowed = self.module.attempts_allowed
        return None if allowed is None else max(allowed - self.attempts_used, 0)

    @property
    def can_start(self) -> bool:
        return self.status != ModuleStatus.PASSED and (self.open_attempt_id is not None or self.attempts_left != 0)


@dataclass
class CourseProgress:
    course: Course
    modules: list[ModuleProgress] = field(default_factory=list)
    certificate: Certificate | None = None  # the member's latest certificate of the course still valid

    @property
    def passed(self) -> int:
        return sum(1 for row in self.modules if row.status == ModuleStatus.PASSED)

    @property
    def total(self) -> int:
        return len(self.modules)

    @property
    def percent(self) -> int:
        return self.passed * 100 // self.total if self.total else 0


def points_offered(
    *, member: Member, program: Program, modules: list[Module], rules: tuple, today: date | None = None
) -> dict[int, tuple[int, int]]:
    """{module id: (points at the pass mark, points with a full score)}: what passing each module's quiz would pay
    `member` (their own account) under the program's compiled `rules` (services.earning.published_rules) in force
    today, before caps and budgets. One query (the member's tier), none without modules or rules."""
    if not modules or not rules:
        return {}
    today = today or timezone.localdate()
    event = member_event(
        kind=RuleEvent.TRAINING_PASSED.value,
        program=program,
        source_key="",
        member=member,
        occurred_on=today,
        quantity=HUNDRED,
        unit="% score",
    )

    def own(quantity: Decimal, module: Module) -> int:
        would_be = replace(
            event,
            source_key=training_source_key(module.pk, member.pk),
            quantity=quantity,
            subject=f"module “{module.title}”",
        )
        return sum(posting.points for posting in evaluate(would_be, rules) if posting.member_id == member.pk)

    return {module.pk: (own(Decimal(module.pass_percent), module), own(HUNDRED, module)) for module in modules}


def points_paid(*, member: Member, module_ids: list[int]) -> dict[int, int]:
    """{module id: points its pass paid into the member's own account}."""
    keys = {training_source_key(module_id, member.pk): module_id for module_id in module_ids}
    if not keys:
        return {}
    rows = (
        PointsEntry.objects.filter(source_type=EntrySource.TRAINING, source_id__in=list(keys), account__member=member)
        .values("source_id")
        .annotate(points=Sum(F("available_delta") + F("pending_delta")))
    )
    return {keys[row["source_id"]]: row["points"] or 0 for row in rows}


def _progress(member: Member, program: Program, modules: list[Module], rules: tuple) -> dict[int, ModuleProgress]:
    """Each module's progress for the member: 3 queries (attempts, points paid, the member's tier for what the
    modules not passed yet pay)."""
    now = timezone.now()
    rows = {module.pk: ModuleProgress(module=module) for module in modules}
    attempts = (
        QuizAttempt.objects.filter(member=member, module_id__in=list(rows))
        .values("module_id")
        .annotate(
            used=Count("pk"),
            passed=Count("pk", filter=Q(status=AttemptStatus.PASSED)),
            submitted=Count("pk", filter=~Q(status=AttemptStatus.STARTED)),
            best=Max("percent"),
            open_id=Max("pk", filter=Q(status=AttemptStatus.STARTED, deadline__gt=now)),
            last_id=Max("pk", filter=~Q(status=AttemptStatus.STARTED)),
        )
    )
    for found in attempts:
        row = rows[found["module_id"]]
        row.attempts_used, row.best_percent = found["used"], found["best"]
        row.open_attempt_id, row.last_result_id = found["open_id"], found["last_id"]
        if found["passed"]:
            row.status = ModuleStatus.PASSED
        elif found["open_id"]:
            row.status = ModuleStatus.IN_PROGRESS
        elif found["submitted"]:
            row.status = ModuleStatus.FAILED
    for module_id, points in points_paid(member=member, module_ids=list(rows)).items():
        rows[module_id].points_paid = points
    to_pass = [row.module for row in rows.values() if row.status != ModuleStatus.PASSED]
    offered = points_offered(member=member, program=program, modules=to_pass, rules=rules)
    for module_id, (at_pass, at_best) in offered.items():
        rows[module_id].points_offered, rows[module_id].points_offered_max = at_pass, at_best
    return rows


@dataclass
class LearnOverview:
    courses: list[CourseProgress]
    certificates: list[Certificate]  # the member's valid certificates (any course), latest first


def learn_overview(*, viewer, program: Program | None, rules: tuple) -> LearnOverview:
    """The Learn page: the courses the viewer may take, each with its modules and the member's progress (what each
    module pays under the compiled `rules`), and the member's valid certificates. A fixed number of queries however
    many courses, modules, attempts and certificates."""
    member = viewer_for(viewer).member
    certificates = list(valid_certificates(viewer=viewer))
    courses = list(
        courses_for(viewer=viewer, program=program)
        .select_related("product_line")
        .prefetch_related(Prefetch("modules", queryset=Module.objects.order_by("position", "pk")))
    )
    if not courses:
        return LearnOverview(courses=[], certificates=certificates)
    modules = [module for course in courses for module in course.modules.all()]
    progress = _progress(member, program, modules, rules)
    lasting = {}
    for certificate in sorted(certificates, key=lambda c: c.expires_on):
        lasting[certificate.course_id] = certificate  # the one valid longest
    return LearnOverview(
        courses=[
            CourseProgress(
                course=course,
                modules=[progress[module.pk] for module in course.modules.all()],
                certificate=lasting.get(course.pk),
            )
            for course in courses
        ],
        certificates=certificates,
    )


def module_get(*, viewer, program: Program | None, module_id: int) -> Module:
    """A module of a course the viewer may take (closed courses too); Module.DoesNotExist otherwise."""
    courses = courses_for(viewer=viewer, program=program, include_closed=True)
    return Module.objects.select_related("course__program", "course__product_line").get(
        pk=module_id, course__in=courses
    )


def module_progress(*, viewer, module: Module, rules: tuple = ()) -> ModuleProgress:
    """The viewer's progress with one module (what it pays under `rules`; nothing without)."""
    member = viewer_for(viewer).member
    return _progress(member, module.course.program, [module], rules)[module.pk]


# Attempts -------------------------------------------------------------------------------------------------------


def attempts_for(viewer) -> QuerySet[QuizAttempt]:
    """The attempts the viewer may see: their own membership's (none for anyone else)."""
    member = viewer_for(viewer).member
    return QuizAttempt.objects.none() if member is None else QuizAttempt.objects.filter(member=member)


def attempt_get(*, viewer, attempt_id: int) -> QuizAttempt:
    """One of the viewer's attempts with its module, course and program; QuizAttempt.DoesNotExist otherwise."""
    return (
        attempts_for(viewer)
        .select_related("module__course__program", "module__course__product_line")
        .get(pk=attempt_id)
    )


@dataclass
class AskedQuestion:
    """A question of an attempt with its answers in the order the member was shown them."""

    question: QuizQuestion
    choices: list[QuizChoice]
    chosen: set[int] = field(default_factory=set)
    right: set[int] = field(default_factory=set)

    @property
    def is_multiple(self) -> bool:
        return self.question.kind == QuestionKind.MULTIPLE

    @property
    def is_right(self) -> bool:
        return bool(self.right) and self.chosen == self.right


def attempt_questions(attempt: QuizAttempt) -> list[AskedQuestion]:
    """The attempt's questions and answers in its shuffled order, with what was chosen and what is right: two
    queries. A question or answer deleted since the attempt started is left out."""
    questions = QuizQuestion.objects.filter(pk__in=attempt.question_order).prefetch_related("choices").in_bulk()
    asked = []
    for question_id in attempt.question_order:
        question = questions.get(question_id)
        if question is None:
            continue
        by_id = {choice.pk: choice for choice in question.choices.all()}
        shown = [by_id[pk] for pk in attempt.choice_order.get(str(question_id), []) if pk in by_id]
        asked.append(
            AskedQuestion(
                question=question,
                choices=shown,
                chosen=set(attempt.answers.get(str(question_id), [])),
                right={choice.pk for choice in shown if choice.is_correct},
            )
        )
    return asked


@dataclass
class AttemptResult:
    attempt: QuizAttempt
    questions: list[AskedQuestion]
    entries: list[PointsEntry]  # what the pass paid into the member's own account, with the ledger's explanation
    certificate: Certificate | None  # the certificate this pass gave
    progress: ModuleProgress
    reveal: bool  # show the right answers: passed, or no attempt left

    @property
    def points(self) -> int:
        return sum(entry.available_delta + entry.pending_delta for entry in self.entries)

    @property
    def can_retry(self) -> bool:
        return self.attempt.status == AttemptStatus.FAILED and self.progress.can_start


def attempt_result(*, viewer, attempt: QuizAttempt) -> AttemptResult:
    """The result page of one of the viewer's submitted attempts."""
    member = viewer_for(viewer).member
    module = attempt.module
    progress = module_progress(viewer=viewer, module=module)
    entries, certificate = [], None
    if attempt.status == AttemptStatus.PASSED:
        entries = list(
            PointsEntry.objects.filter(
                source_type=EntrySource.TRAINING,
                source_id=training_source_key(module.pk, member.pk),
                account__member=member,
            ).order_by("pk")
        )
        certificate = (
            valid_certificates(viewer=viewer)
            .filter(course=module.course_id, issued_on=timezone.localdate(attempt.submitted_at))
            .first()
        )
    return AttemptResult(
        attempt=attempt,
        questions=attempt_questions(attempt),
        entries=entries,
        certificate=certificate,
        progress=progress,
        reveal=attempt.status == AttemptStatus.PASSED or progress.attempts_left == 0,
    )


# Certificates ---------------------------------------------------------------------------------------------------


def certificates_for(viewer) -> QuerySet[Certificate]:
    """The viewer's own certificates (none for anyone who is not a member)."""
    member = viewer_for(viewer).member
    return Certificate.objects.none() if member is None else Certificate.objects.filter(member=member)


def last_valid_day(certificate: Certificate) -> date:
    """The last day a certificate is valid, as people are told it ("valid until"): `expires_on` is the first day it
    is not."""
    return certificate.expires_on - timedelta(days=1)


def with_valid_until(certificates: QuerySet[Certificate]) -> QuerySet[Certificate]:
    """Each certificate with `valid_until`, its last valid day."""
    return certificates.annotate(valid_until=ExpressionWrapper(F("expires_on") - 1, output_field=DateField()))


def valid_certificates(*, viewer, day: date | None = None) -> QuerySet[Certificate]:
    """The viewer's certificates valid on `day` (today), with their course, product line and last valid day
    (`valid_until`), latest first."""
    day = day or timezone.localdate()
    return with_valid_until(
        certificates_for(viewer)
        .filter(issued_on__lte=day, expires_on__gt=day)
        .select_related("course", "product_line")
        .order_by("-issued_on", "-pk")
    )
