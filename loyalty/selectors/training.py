"""Reads of learn to earn, scoped by the viewer: the courses a member may take (published, for their role and partner
type, in the program shown), their progress per course and module, what each module's quiz pays them now, their
attempts and results, and their certificates. A member sees only their own attempts and certificates; anyone who is
not a partner's member sees none (the member pages are for members: loyalty.views.decorators).

Certification rounds. A member's progress with a course that certifies is read in their current round (see
`Certification`): 1 until their first certificate; while their latest certificate is valid and its renewal not open,
the round that certificate completed; once renewal opens (CERTIFICATE_NOTICE_DAYS before its last valid day, the day
the expiry notice tells them) or it has expired, the next round, in which every module is taken again. A module pays
once, when first passed: a module passed in an earlier round offers no points, and its renewal pass pays nothing.
Courses that do not certify have round 1 only (a module is passed once and for ever).

Every page's reads are a fixed number of queries, however many courses, modules, attempts and certificates."""

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    Count,
    DateField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import JSONObject
from django.utils import timezone

from loyalty.constants import CERTIFICATE_NOTICE_DAYS, AttemptStatus, EntrySource, QuestionKind, RuleEvent
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


# Certification rounds -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certification:
    """Where a member stands with a course: how many certificates of it they hold (valid or not), the one lasting
    longest (`expires_on`; `certificate` when the page read it), the latest issue day, and from these their current
    round. A course that does not certify has no certificates that count: round 1 for ever."""

    today: date
    certifies: bool = False
    held: int = 0
    expires_on: date | None = None  # of the certificate lasting longest (the first day it is not valid)
    issued_on: date | None = None  # the latest issue day
    certificate: Certificate | None = None  # the certificate lasting longest, with `valid_until`

    @property
    def last_valid_day(self) -> date | None:
        return None if self.expires_on is None else self.expires_on - timedelta(days=1)

    @property
    def renewal_opens_on(self) -> date | None:
        """CERTIFICATE_NOTICE_DAYS before the last valid day (the day the expiry notice is sent), and never on the
        day a certificate was issued (a certificate of one month would be renewable at once)."""
        if not self.certifies or self.expires_on is None:
            return None
        return max(self.last_valid_day - timedelta(days=CERTIFICATE_NOTICE_DAYS), self.issued_on + timedelta(days=1))

    @property
    def is_valid(self) -> bool:
        return self.expires_on is not None and self.expires_on > self.today

    @property
    def is_expired(self) -> bool:
        return self.expires_on is not None and self.expires_on <= self.today

    @property
    def renewal_open(self) -> bool:
        opens_on = self.renewal_opens_on
        return opens_on is not None and opens_on <= self.today

    @property
    def round(self) -> int:
        """The member's current round: 1 without a certificate; the next one once renewal is open (or the
        certificate expired); else the round their valid certificate completed."""
        if not self.certifies or not self.held:
            return 1
        return self.held + 1 if self.renewal_open else self.held

    @property
    def is_renewal(self) -> bool:
        """The current round renews a certificate."""
        return self.round > 1


def _certifies(course: Course) -> bool:
    return bool(course.certification_months) and course.product_line_id is not None


def certification_of(*, member_id: int, course: Course, today: date | None = None) -> Certification:
    """The member's certification standing with the course: one query for a course that certifies, none else."""
    today = today or timezone.localdate()
    if not _certifies(course):
        return Certification(today=today)
    found = Certificate.objects.filter(member_id=member_id, course_id=course.pk).aggregate(
        held=Count("pk"), expires_on=Max("expires_on"), issued_on=Max("issued_on")
    )
    return Certification(today=today, certifies=True, **found)


@dataclass(frozen=True)
class CourseState:
    """What a submission to a course that certifies needs to know, read in one query."""

    certification: Certification
    modules: int  # the course's modules
    passes: frozenset[tuple[int, int]]  # the member's passes in the course: (module id, round)


def course_state(*, member_id: int, course: Course, today: date | None = None) -> CourseState:
    """The member's certification standing with a course, its number of modules and the member's passes in it: one
    query."""
    today = today or timezone.localdate()
    certificates = Certificate.objects.filter(member_id=member_id, course_id=OuterRef("pk")).order_by()

    def of_certificates(aggregate, output_field):
        return Subquery(certificates.values("course_id").annotate(x=aggregate).values("x"), output_field=output_field)

    passes = QuizAttempt.objects.filter(
        member_id=member_id, module__course_id=OuterRef("pk"), status=AttemptStatus.PASSED
    ).order_by()
    modules = Module.objects.filter(course_id=OuterRef("pk")).order_by().values("course_id")
    row = (
        Course.objects.filter(pk=course.pk)
        .annotate(
            held=of_certificates(Count("pk"), IntegerField()),
            last_expires_on=of_certificates(Max("expires_on"), DateField()),
            last_issued_on=of_certificates(Max("issued_on"), DateField()),
            module_count=Subquery(modules.annotate(n=Count("pk")).values("n"), output_field=IntegerField()),
            passes=ArraySubquery(passes.values(pair=JSONObject(module="module_id", round="round"))),
        )
        .values("held", "last_expires_on", "last_issued_on", "module_count", "passes")
        .get()
    )
    certification = Certification(
        today=today,
        certifies=_certifies(course),
        held=row["held"] or 0,
        expires_on=row["last_expires_on"],
        issued_on=row["last_issued_on"],
    )
    return CourseState(
        certification=certification,
        modules=row["module_count"] or 0,
        passes=frozenset((found["module"], found["round"]) for found in row["passes"]),
    )


def certifications(*, courses: list[Course], certificates: list[Certificate], today: date) -> dict[int, Certification]:
    """{course id: the member's standing} from all their `certificates` (with `valid_until`), for courses and for the
    courses of the certificates; no query."""
    by_course: dict[int, list[Certificate]] = {}
    for certificate in certificates:
        by_course.setdefault(certificate.course_id, []).append(certificate)
    known = {course.pk: course for course in courses}
    standing = {}
    for course_id in {*known, *by_course}:
        held = by_course.get(course_id, [])
        course = known.get(course_id) or held[0].course
        lasting = max(held, key=lambda c: (c.expires_on, c.pk)) if held else None
        standing[course_id] = Certification(
            today=today,
            certifies=_certifies(course),
            held=len(held),
            expires_on=lasting.expires_on if lasting else None,
            issued_on=max(c.issued_on for c in held) if held else None,
            certificate=lasting,
        )
    return standing


# Progress -------------------------------------------------------------------------------------------------------


@dataclass
class ModuleProgress:
    """A member's progress with a module in their current round of its course (`certification.round`)."""

    module: Module
    certification: Certification | None = None
    status: str = ModuleStatus.NOT_STARTED
    attempts_used: int = 0  # in the current round
    best_percent: int | None = None  # in the current round
    open_attempt_id: int | None = None
    last_result_id: int | None = None  # the latest submitted attempt, for its result page
    first_passed_round: int | None = None  # the round the module was first passed (and paid) in
    points_paid: int = 0
    points_offered: int = 0  # what passing at the pass mark pays the member under today's rules (before caps)
    points_offered_max: int = 0  # ... and with a full score (more only when a rule pays per % of score)

    @property
    def round(self) -> int:
        return 1 if self.certification is None else self.certification.round

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
    def is_renewal(self) -> bool:
        """Passed in an earlier round: taken again to renew a certificate, for no points."""
        return self.first_passed_round is not None and self.first_passed_round < self.round

    @property
    def attempts_left(self) -> int | None:
        allowed = self.module.attempts_allowed
        return None if allowed is None else max(allowed - self.attempts_used, 0)

    @property
    def can_start(self) -> bool:
        return self.status != ModuleStatus.PASSED and (self.open_attempt_id is not None or self.attempts_left != 0)

    @property
    def renewal_opens_on(self) -> date | None:
        """When a module passed in a round whose certificate is valid can be taken again (None: not a case)."""
        if not self.is_passed or self.certification is None or not self.certification.held:
            return None
        if self.certification.renewal_open:
            return None
        return self.certification.renewal_opens_on


@dataclass
class CourseProgress:
    course: Course
    modules: list[ModuleProgress] = field(default_factory=list)
    certification: Certification | None = None

    @property
    def certificate(self) -> Certificate | None:
        """The member's certificate of the course lasting longest, while it is valid."""
        certification = self.certification
        return certification.certificate if certification is not None and certification.is_valid else None

    @property
    def renewal_open(self) -> bool:
        return self.certification is not None and self.certification.held > 0 and self.certification.renewal_open

    @property
    def to_retake(self) -> list[ModuleProgress]:
        """The modules still to pass in a renewal round."""
        return [row for row in self.modules if not row.is_passed] if self.renewal_open else []

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


def _progress(
    member: Member,
    program: Program,
    modules: list[Module],
    rules: tuple,
    standing: dict[int, Certification],
) -> dict[int, ModuleProgress]:
    """Each module's progress for the member in the current round of its course (`standing`: {course id: the
    member's Certification}, a course missing there is in round 1): 3 queries (attempts per round, points paid, the
    member's tier for what the modules never passed pay)."""
    now = timezone.now()
    rows = {
        module.pk: ModuleProgress(module=module, certification=standing.get(module.course_id)) for module in modules
    }
    attempts = (
        QuizAttempt.objects.filter(member=member, module_id__in=list(rows))
        .order_by()
        .values("module_id", "round")
        .annotate(
            used=Count("pk"),
            passed=Count("pk", filter=Q(status=AttemptStatus.PASSED)),
            submitted=Count("pk", filter=~Q(status=AttemptStatus.STARTED)),
            best=Max("percent"),
            open_id=Max("pk", filter=Q(status=AttemptStatus.STARTED, deadline__gt=now)),
            last_id=Max("pk", filter=~Q(status=AttemptStatus.STARTED)),
        )
    )
    current: dict[int, dict] = {}
    for found in attempts:
        row = rows[found["module_id"]]
        if found["passed"] and (row.first_passed_round is None or found["round"] < row.first_passed_round):
            row.first_passed_round = found["round"]
        if found["open_id"]:  # an attempt still open counts in the round current when it is submitted
            row.open_attempt_id = max(row.open_attempt_id or 0, found["open_id"])
        if found["last_id"]:
            row.last_result_id = max(row.last_result_id or 0, found["last_id"])
        if found["round"] == row.round:
            current[row.module.pk] = found
    for module_id, row in rows.items():
        found = current.get(module_id)
        if found is not None:
            row.attempts_used, row.best_percent = found["used"], found["best"]
        if found is not None and found["passed"]:
            row.status = ModuleStatus.PASSED
        elif row.open_attempt_id:
            row.status = ModuleStatus.IN_PROGRESS
        elif found is not None and found["submitted"]:
            row.status = ModuleStatus.FAILED
    for module_id, points in points_paid(member=member, module_ids=list(rows)).items():
        rows[module_id].points_paid = points
    # A module pays once, when first passed: what passing pays is shown for those never passed only.
    to_pass = [row.module for row in rows.values() if row.first_passed_round is None]
    offered = points_offered(member=member, program=program, modules=to_pass, rules=rules)
    for module_id, (at_pass, at_best) in offered.items():
        rows[module_id].points_offered, rows[module_id].points_offered_max = at_pass, at_best
    return rows


@dataclass
class LearnOverview:
    courses: list[CourseProgress]
    # The member's standing with each course they hold a certificate of (any program), with the certificate lasting
    # longest: valid ones first (latest issued first), then expired ones (latest expired first).
    certificates: list[Certification]


def learn_overview(*, viewer, program: Program | None, rules: tuple) -> LearnOverview:
    """The Learn page: the courses the viewer may take, each with its modules and the member's progress in their
    current round (what each module pays under the compiled `rules`), and the member's certificates, valid or
    expired. A fixed number of queries however many courses, modules, attempts and certificates."""
    member = viewer_for(viewer).member
    today = timezone.localdate()
    held = list(
        with_valid_until(certificates_for(viewer).select_related("course", "product_line")).order_by(
            "-issued_on", "-pk"
        )
    )
    courses = list(
        courses_for(viewer=viewer, program=program)
        .select_related("product_line")
        .prefetch_related(Prefetch("modules", queryset=Module.objects.order_by("position", "pk")))
    )
    standing = certifications(courses=courses, certificates=held, today=today)
    listed = sorted(
        (certification for certification in standing.values() if certification.certificate is not None),
        key=lambda c: (c.is_expired, -(c.expires_on if c.is_expired else c.certificate.issued_on).toordinal()),
    )
    if not courses:
        return LearnOverview(courses=[], certificates=listed)
    modules = [module for course in courses for module in course.modules.all()]
    progress = _progress(member, program, modules, rules, standing)
    return LearnOverview(
        courses=[
            CourseProgress(
                course=course,
                modules=[progress[module.pk] for module in course.modules.all()],
                certification=standing[course.pk],
            )
            for course in courses
        ],
        certificates=listed,
    )


def module_get(*, viewer, program: Program | None, module_id: int) -> Module:
    """A module of a course the viewer may take (closed courses too); Module.DoesNotExist otherwise."""
    courses = courses_for(viewer=viewer, program=program, include_closed=True)
    return Module.objects.select_related("course__program", "course__product_line").get(
        pk=module_id, course__in=courses
    )


def module_progress(*, viewer, module: Module, rules: tuple = ()) -> ModuleProgress:
    """The viewer's progress with one module in their current round of its course (what it pays under `rules`;
    nothing without)."""
    member = viewer_for(viewer).member
    course = module.course
    standing = {course.pk: certification_of(member_id=member.pk, course=course)}
    return _progress(member, course.program, [module], rules, standing)[module.pk]


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
    is_renewal: bool = False  # a pass of a module passed in an earlier round: it pays nothing

    @property
    def points(self) -> int:
        return sum(entry.available_delta + entry.pending_delta for entry in self.entries)

    @property
    def can_retry(self) -> bool:
        return self.attempt.status == AttemptStatus.FAILED and self.progress.can_start


def attempt_result(*, viewer, attempt: QuizAttempt) -> AttemptResult:
    """The result page of one of the viewer's submitted attempts: the member's certificates of the course (one query,
    none for a course that does not certify) give both their round and the certificate this pass gave."""
    member = viewer_for(viewer).member
    module = attempt.module
    course = module.course
    today = timezone.localdate()
    held = []
    if _certifies(course):
        mine = certificates_for(viewer).filter(course_id=course.pk).select_related("product_line")
        held = list(with_valid_until(mine))
    standing = certifications(courses=[course], certificates=held, today=today)
    progress = _progress(member, course.program, [module], (), standing)[module.pk]
    entries, certificate = [], None
    is_renewal = (
        attempt.status == AttemptStatus.PASSED
        and progress.first_passed_round is not None
        and progress.first_passed_round < attempt.round
    )
    if attempt.status == AttemptStatus.PASSED and not is_renewal:
        entries = list(
            PointsEntry.objects.filter(
                source_type=EntrySource.TRAINING,
                source_id=training_source_key(module.pk, member.pk),
                account__member=member,
            ).order_by("pk")
        )
    if attempt.status == AttemptStatus.PASSED:
        passed_on = timezone.localdate(attempt.submitted_at)
        certificate = next((c for c in held if c.issued_on == passed_on and c.expires_on > today), None)
    return AttemptResult(
        attempt=attempt,
        questions=attempt_questions(attempt),
        entries=entries,
        certificate=certificate,
        progress=progress,
        reveal=attempt.status == AttemptStatus.PASSED or progress.attempts_left == 0,
        is_renewal=is_renewal,
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
