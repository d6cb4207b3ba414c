"""The demo program's learning and competing (issue #12): a loyalty.demo.program extension, like sales and rewards.

- The courses of loyalty.demo.courses (per product line of the catalogue, with their modules, questions and answers)
  and the rules that pay a pass and a completed challenge (sales.LEARNING_RULES), set up before the first module
  anyone passed.
- The planner's trainings (Book.trainings) become real passes. Each writes the member's attempts (now and then a
  failed one first) and the ledger entry that services.earning.post_event would post for the "training passed" event:
  the rule engine evaluates the event built by engine.facts, and the entry gets the engine's idempotency key
  (earning.posting_key over the source key "training:<module>:<member>"), source type TRAINING and the source key as
  source id, so that a pass can never be paid twice. The last module of a certifying course gives the certificate.
  The demo logins' passes are partly scripted, so that one certificate is valid, one expires within 30 days and one
  has expired.
- Challenges, measured from the planner's history: one that ended last month, settled (entries with scores and final
  ranks from the sales in its window, completions paid through the "challenge completed" rule when they happened,
  prizes for the top 3), two running (units sold per field person — the kits of what they installed or serviced —
  some halfway; modules passed per company, ranked per active member) and one upcoming. Their entries are written at
  the end of the replay, and the challenges are published then: the claims and the sell-out import replayed
  meanwhile count towards none twice.
- The current program period's standings, from the ledger's earnings for what the rules pay (the engine's postings,
  the sell-out import's and the history's staff bonuses for sales, installations and services), in one statement.

Like the rest of the demo, ledger entries go through services.ledger under the demo clock; the other rows are
written in bulk with the times they would have had.
"""

import functools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta
from django.db import connection
from django.db.models import Count, QuerySet
from django.utils import timezone

from loyalty.constants import ATTEMPT_HOURS, AttemptStatus, ChallengeLevel, EntrySource, GoalMetric, QuestionKind
from loyalty.demo import courses as catalogue
from loyalty.demo import sales
from loyalty.demo.program import (
    DEMO_HISTORY_MONTHS,
    PROGRAM_SLUG,
    STAFF_BONUS_SOURCES,
    Book,
    Person,
    Step,
    company_holder,
)
from loyalty.engine import facts
from loyalty.engine.rules import Event, compile_rules, evaluate
from loyalty.models import (
    Certificate,
    Challenge,
    ChallengeEntry,
    ChallengeGoal,
    ChallengePrize,
    Course,
    IncentiveRule,
    Module,
    PeriodStanding,
    QuizAttempt,
    QuizChoice,
    QuizQuestion,
)
from loyalty.selectors.training import training_source_key
from loyalty.services.challenges import score_of
from loyalty.services.earning import posting_key
from loyalty.services.standings import standings_period
from loyalty.services.training import add_months
from partners import demo as partners_demo
from partners.constants import MemberStatus
from partners.models import Member, Role

TABLES = (
    ("courses", Course),
    ("modules", Module),
    ("quiz questions", QuizQuestion),
    ("quiz attempts", QuizAttempt),
    ("certificates", Certificate),
    ("challenges", Challenge),
    ("challenge entries", ChallengeEntry),
    ("period standings", PeriodStanding),
)

TRAINING_PASSED = "training_passed"
CHALLENGE_COMPLETED = "challenge_completed"
PASS_PERCENT = 80  # the modules' pass mark (Module's default)
CERTIFICATE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# The planner's line names (loyalty.demo.program.PRODUCTS) as the catalogue's lines (sales.LINES).
LINES = {
    "AquaSoft": "softeners",
    "PureFlow": "reverse-osmosis",
    "ClearLine": "filtration",
    "UVGuard": "uv-disinfection",
    "AquaSense": "spare-parts",
}
# The demo logins' scripted passes: (role, module, days ago). The sales rep is certified on softeners (24 months,
# so her softener sales earn the certified bonus), the engineer's UV certificate (12 months) expires within 30 days,
# the foreman's reverse osmosis one expired last autumn and his softener one is valid.
SCRIPTED = (
    ("sales", "softening-fundamentals", 131),
    ("sales", "aquasoft-smart", 124),
    ("engineer", "uv-sizing", 345),
    ("engineer", "legionella", 339),
    ("foreman", "ro-basics", 430),
    ("foreman", "ro-maintenance", 421),
    ("foreman", "softening-fundamentals", 212),
    ("foreman", "aquasoft-smart", 205),
    ("owner", "selling-homeowners", 33),
)
# Modules the demo logins have not taken yet, so that Learn and How to earn still offer them something.
TO_DO = {
    "sales": ("ro-maintenance", "cartridges"),
    "engineer": ("aquasoft-smart", "cartridges"),
    "foreman": ("legionella", "service-contracts"),
    "owner": ("ro-maintenance", "water-analysis"),
}
SELLING_ROLES = ("owner", "sales", "purchasing")
FIELD_ROLES = ("engineer", "foreman")


@dataclass
class Pass:
    """A module passed: after `failures` failed attempts, with `wrong` questions wrong; `certificate` is the number
    of the certificate it completes, or ""."""

    person: Person
    at: datetime
    module: str
    failures: int
    wrong: int
    certificate: str = ""


@dataclass(frozen=True)
class ChallengeSpec:
    code: str
    name: str
    description: str
    level: str
    metric: str
    target: int
    points: int  # for completing
    starts: datetime
    ends: datetime
    roles: tuple[str, ...] = ()
    line: str = ""  # the goal's product line (a sales.LINES code)
    by_size: bool = False
    prizes: tuple[tuple[int, int, str], ...] = ()  # (rank, points, text)


@dataclass
class Standing:
    """A participant's progress in a challenge (a person, or a company: `person` None), as the history made it."""

    partner_id: int
    person: Person | None
    first: datetime
    value: Decimal = Decimal(0)
    halfway: datetime | None = None
    completed: datetime | None = None
    rank: int | None = None  # once the challenge ended


@dataclass
class _Challenge:
    spec: ChallengeSpec
    standings: dict[str, Standing] = field(default_factory=dict)  # by person key or legal id


def marker() -> QuerySet:
    """Rows that exist once this part is seeded (loyalty.demo.program checks them with the program, in one query)."""
    return Course.objects.filter(program__slug=PROGRAM_SLUG)


def plan(book: Book) -> list[Step]:
    return _Learning(book).plan()


class _Learning:
    def __init__(self, book: Book):
        self.book = book
        self.now = book.now
        self.rng = random.Random(f"{partners_demo.SEED}:learning")
        self.steps: list[Step] = []
        self.modules: dict[str, Module] = {}  # by key, once set up
        self.questions: dict[str, list[tuple[int, bool, list[int], set[int]]]] = {}  # key -> (id, multiple, ...)
        self.courses: dict[str, Course] = {}  # by title
        self.rules = ()  # the learning rules, compiled once published
        self.challenges: dict[str, Challenge] = {}  # by code, once created
        self.numbers: set[str] = set()

    def plan(self) -> list[Step]:
        setup_at = self.now - relativedelta(months=DEMO_HISTORY_MONTHS) - timedelta(days=20)
        questions = sum(len(m.questions) for c in catalogue.COURSES for m in c.modules)
        self._add(setup_at, self._setup, courses=len(catalogue.COURSES), modules=len(catalogue.MODULES),
                  quiz_questions=questions, incentive_rules=len(sales.LEARNING_RULES))  # fmt: skip
        passes = self._passes()
        for done in passes:
            self._add(done.at, functools.partial(self._pass, done), quiz_attempts=done.failures + 1, points_entries=1,
                      certificates=int(bool(done.certificate)))  # fmt: skip
        self._expiries(passes)
        challenges = self._challenges(passes)
        self._add(self.now, functools.partial(self._finish, challenges),
                  challenge_entries=sum(len(c.standings) for c in challenges), period_standings=1)  # fmt: skip
        return self.steps

    def _add(self, at: datetime, run, **counts: int) -> None:
        if at > self.now:
            raise AssertionError(f"a demo step in the future: {at}")
        self.steps.append(Step(at, run, Counter({k.replace("_", " "): n for k, n in counts.items()})))

    def _local_day(self, at: datetime):
        return timezone.localtime(at).date()

    # Setting up -----------------------------------------------------------------------------------------------

    def _setup(self) -> None:
        program = self.book.program
        lines = sales.product_lines()
        roles = {role.code: role for role in Role.objects.all()}
        specs = catalogue.COURSES
        courses = Course.objects.bulk_create(
            Course(program=program, title=spec.title, summary=spec.summary, product_line=lines.get(spec.line),
                   partner_kinds=list(spec.partner_kinds), certification_months=spec.certification_months,
                   is_published=True, position=position)
            for position, spec in enumerate(specs)
        )  # fmt: skip
        Course.roles.through.objects.bulk_create(
            Course.roles.through(course_id=course.pk, role_id=roles[code].pk)
            for course, spec in zip(courses, specs, strict=True)
            for code in spec.roles
        )
        self.courses = {course.title: course for course in courses}
        module_specs = [(course, spec) for course, c in zip(courses, specs, strict=True) for spec in c.modules]
        modules = Module.objects.bulk_create(
            Module(course=course, title=spec.title, body=spec.body, media_url=spec.media_url, minutes=spec.minutes,
                   pass_percent=PASS_PERCENT, position=position)
            for position, (course, spec) in enumerate(module_specs)
        )  # fmt: skip
        self.modules = {spec.key: module for module, (_, spec) in zip(modules, module_specs, strict=True)}
        question_specs = [
            (module, position, spec)
            for module, (_, module_spec) in zip(modules, module_specs, strict=True)
            for position, spec in enumerate(module_spec.questions)
        ]
        questions = QuizQuestion.objects.bulk_create(
            QuizQuestion(module=module, text=spec.text, explanation=spec.explanation, position=position,
                         kind=QuestionKind.MULTIPLE if spec.is_multiple else QuestionKind.SINGLE)
            for module, position, spec in question_specs
        )  # fmt: skip
        choices = QuizChoice.objects.bulk_create(
            QuizChoice(question=question, text=text, is_correct=right, position=position)
            for question, (_, _, spec) in zip(questions, question_specs, strict=True)
            for position, (text, right) in enumerate(spec.answers)
        )
        by_question = defaultdict(list)
        for choice in choices:
            by_question[choice.question_id].append(choice)
        keys = {module.pk: key for key, module in self.modules.items()}
        for question in questions:
            asked = by_question[question.pk]
            self.questions.setdefault(keys[question.module_id], []).append(
                (
                    question.pk,
                    question.kind == QuestionKind.MULTIPLE,
                    [c.pk for c in asked],
                    {c.pk for c in asked if c.is_correct},
                )
            )
        manager = self.book.staff[partners_demo.PROGRAM_MANAGERS[0][1]]
        published = [
            sales.create_rule(spec, program=program, lines=lines, products={}, roles=roles, actor=manager,
                              effective=timezone.now())
            for spec in sales.LEARNING_RULES
        ]  # fmt: skip
        rows = IncentiveRule.objects.filter(pk__in=[rule.pk for rule in published]).prefetch_related(
            "roles", "tiers", "regions", "product_lines", "products"
        )
        self.rules = compile_rules(rows)

    # Passes ---------------------------------------------------------------------------------------------------

    def _passes(self) -> list[Pass]:
        """The planner's trainings and the demo logins' scripted ones, each module once per person, in date order,
        with the certificates they complete."""
        logins = self.book.demo_logins()
        scripted = [
            (logins[role], self.now - timedelta(days=days, hours=self.rng.uniform(-4, 4)), module)
            for role, module, days in SCRIPTED
            if role in logins
        ]
        reserved = defaultdict(set)
        for person, _, module in scripted:
            reserved[person.key].add(module)
        for role, modules in TO_DO.items():
            if role in logins:
                reserved[logins[role].key].update(modules)
        planned = defaultdict(set)
        for training in self.book.trainings:
            planned[training.person.key].add(training.module)
        found = list(scripted)
        for training in self.book.trainings:
            person, module = training.person, training.module
            if module in reserved[person.key]:  # scripted, or left to do: take another the person may still take
                spare = [
                    key
                    for key in catalogue.modules_for(person.role, person.company.kind)
                    if key not in reserved[person.key] and key not in planned[person.key]
                ]
                if not spare:
                    continue
                module = spare[0]
                planned[person.key].add(module)
            found.append((person, training.at, module))
        passes, passed = [], defaultdict(set)
        for person, at, module in sorted(found, key=lambda item: (item[1], item[0].key)):
            passed[person.key].add(module)
            r = self.rng.random()
            failures = 2 if r < 0.05 else 1 if r < 0.3 else 0
            questions = len(catalogue.MODULES[module][1].questions)
            wrong = 1 if questions >= 5 and self.rng.random() < 0.4 else 0
            done = Pass(person, at, module, failures, wrong)
            course = catalogue.MODULES[module][0]
            if course.certification_months and {m.key for m in course.modules} <= passed[person.key]:
                done.certificate = self._number(at)
            passes.append(done)
        return passes

    def _number(self, at: datetime) -> str:
        while True:
            code = "".join(self.rng.choice(CERTIFICATE_ALPHABET) for _ in range(6))
            number = f"CERT-{timezone.localtime(at).year}-{code}"
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def _pass(self, done: Pass) -> None:
        """The attempts, the posting of the "training passed" event as the engine makes it, and the certificate."""
        member = self.book.member(done.person)
        module = self.modules[done.module]
        attempts = self._attempts(done, member, module)
        QuizAttempt.objects.bulk_create(attempts)
        event = facts.member_event(
            kind=TRAINING_PASSED,
            program=self.book.program,
            source_key=training_source_key(module.pk, member.pk),
            member=member,
            occurred_on=timezone.localdate(),
            quantity=Decimal(attempts[-1].percent),
            unit="% score",
            subject=f"module “{module.title}”",
        )
        switch = self.book.pooling_switch
        if switch and switch[0] == done.person.company.legal_id and done.at < switch[1]:
            event = replace(event, pooled=False)  # the partner paid its people then
        self._post(event, done.person, EntrySource.TRAINING)
        if done.certificate:
            course = self.courses[catalogue.MODULES[done.module][0].title]
            today = timezone.localdate()
            Certificate.objects.create(
                program=self.book.program, member=member, course=course, product_line_id=course.product_line_id,
                number=done.certificate, issued_on=today, expires_on=add_months(today, course.certification_months),
            )  # fmt: skip

    def _post(self, event: Event, person: Person | None, source_type: str, legal_id: str = "") -> int:
        """Post what the rules pay for `event` as post_event would (the learning rules have no cap or budget); the
        points the person (or, without one, the company) got."""
        got = 0
        for posting in evaluate(event, self.rules):
            to_member = person is not None and posting.member_id is not None
            holder = person.holder if to_member else company_holder(legal_id or person.company.legal_id)
            self.book.earn(
                holder,
                key=posting_key(event, posting),
                points=posting.points,
                source_type=source_type,
                source_id=event.source_key[:64],
                explanation=posting.explanation[:500],
                details={**posting.details, "paid": posting.points},
            )
            got += posting.points
        return got

    def _attempts(self, done: Pass, member: Member, module: Module) -> list[QuizAttempt]:
        rng = random.Random(f"{partners_demo.SEED}:attempt:{done.person.key}:{done.module}")
        questions = self.questions[done.module]
        total = len(questions)
        attempts = []
        for number in range(1, done.failures + 2):
            passed = number == done.failures + 1
            if passed:
                submitted = done.at
                wrong = done.wrong if _percent(total - done.wrong, total) >= PASS_PERCENT else 0
            else:  # a day or more before, with too many answers wrong
                submitted = done.at - timedelta(days=2 * (done.failures + 1 - number), hours=rng.uniform(1, 20))
                wrong = rng.choice([n for n in range(1, total) if _percent(total - n, total) < PASS_PERCENT])
            order = [question for question, *_ in questions]
            rng.shuffle(order)
            shown, answers = {}, {}
            missed = set(rng.sample(order, wrong))
            for question, multiple, choices, right in questions:
                ids = list(choices)
                rng.shuffle(ids)
                shown[str(question)] = ids
                if question not in missed:
                    answers[str(question)] = sorted(right)
                elif multiple:  # one right answer forgotten
                    answers[str(question)] = sorted(right)[1:]
                else:
                    answers[str(question)] = [rng.choice(sorted(set(choices) - right))]
            started = submitted - timedelta(minutes=module.minutes * rng.uniform(0.6, 1.4))
            attempts.append(
                QuizAttempt(
                    member=member,
                    module=module,
                    number=number,
                    status=AttemptStatus.PASSED if passed else AttemptStatus.FAILED,
                    question_order=order,
                    choice_order=shown,
                    answers=answers,
                    correct=total - wrong,
                    total=total,
                    percent=_percent(total - wrong, total),
                    started_at=started,
                    deadline=started + timedelta(hours=ATTEMPT_HOURS),
                    submitted_at=submitted,
                )  # fmt: skip
            )
        return attempts

    def _expiries(self, passes: list[Pass]) -> None:
        """The nightly expiry on the days the passes' points reached their expiry date (as the planner does for its
        own lots): only the demo logins go back that far."""
        months = self.book.program.expiry_months if self.book.program else 24
        for done in passes:
            day = self._local_day(done.at + relativedelta(months=months or 24))
            at = datetime(day.year, day.month, day.day, 2, 30, tzinfo=self.now.tzinfo) + timedelta(days=1)
            if at < self.now:
                self._add(at, functools.partial(self._expire, done.person))

    def _expire(self, person: Person) -> None:
        """Expire the person's due lots, or the company's where the rules paid the company account (pooled)."""
        self.book.expire(person.holder)
        if person.company.pooled:
            self.book.expire(company_holder(person.company.legal_id))

    # Challenges -----------------------------------------------------------------------------------------------

    def _specs(self) -> list[ChallengeSpec]:
        local = timezone.localtime(self.now)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        today = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return [
            ChallengeSpec(
                "sales-sprint", "Sales sprint: 20 units in two months",
                "Sell 20 units of any AquaPro product in two months, claimed or reported by your distributor. "
                "Completing pays 2,000 AquaPoints; the best three win prizes.",
                ChallengeLevel.INDIVIDUAL, GoalMetric.UNITS_SOLD, 20, 2_000,
                month_start - relativedelta(months=2), month_start, roles=SELLING_ROLES,
                prizes=((1, 5_000, "A day at the AquaPro lab with our product experts"), (2, 3_000, ""),
                        (3, 1_500, "")),
            ),
            ChallengeSpec(
                "field-sprint", "Field sprint: 8 units sold",
                "Claim 8 units of AquaPro products while the sprint runs: each installation or service kit you fit "
                "and claim counts as a unit sold. Completing pays 1,500 AquaPoints; the best three win prizes.",
                ChallengeLevel.INDIVIDUAL, GoalMetric.UNITS_SOLD, 8, 1_500,
                today - timedelta(days=42), today + timedelta(days=21), roles=FIELD_ROLES,
                prizes=((1, 2_500, "An AquaPro service case, fully equipped"), (2, 1_500, ""), (3, 1_000, "")),
            ),
            ChallengeSpec(
                "team-learning", "Team learning sprint",
                "Your company passes 2 training modules together. Companies are ranked per active member, so a "
                "small team can win. Completing pays 1,000 AquaPoints into your company account.",
                ChallengeLevel.COMPANY, GoalMetric.MODULES_PASSED, 2, 1_000,
                today - timedelta(days=49), today + timedelta(days=14), by_size=True,
                prizes=((1, 3_000, "A training day for the whole team at the AquaPro academy"),),
            ),
            ChallengeSpec(
                "uv-race", "UVGuard Pro race: 5 UV systems",
                "Sell or install 5 UVGuard Pro systems in four weeks. Completing pays 1,500 AquaPoints.",
                ChallengeLevel.INDIVIDUAL, GoalMetric.UNITS_SOLD, 5, 1_500,
                today + timedelta(days=9), today + timedelta(days=37), roles=SELLING_ROLES + FIELD_ROLES,
                line="uv-disinfection", prizes=((1, 2_000, "A UVGuard Pro 25 for your showroom"),),
            ),
        ]  # fmt: skip

    def _challenges(self, passes: list[Pass]) -> list[_Challenge]:
        """Each challenge created (unpublished) before it starts; for those that started, the history in its
        window measured, the completions paid when they happened, and an ended one's prizes when it was settled."""
        found = []
        for spec in self._specs():
            created = min(spec.starts - timedelta(days=10), self.now - timedelta(days=2))
            self._add(created, functools.partial(self._create, spec), challenges=1)
            challenge = _Challenge(spec)
            found.append(challenge)
            if spec.starts >= self.now:
                continue
            end = min(spec.ends, self.now)
            if spec.metric == GoalMetric.MODULES_PASSED:
                events = [(p.at, p.person, Decimal(1)) for p in passes if spec.starts <= p.at < end]
            else:
                # field people's units sold are the kits of what they installed or serviced; the others' what they sold
                kinds = ("installation", "service") if set(spec.roles) <= set(FIELD_ROLES) else ("sale",)
                events = [
                    (a.at, a.person, Decimal(a.quantity))
                    for a in self.book.activity
                    if a.kind in kinds and spec.starts <= a.at < end
                    and (not spec.line or LINES[a.line] == spec.line)
                ]  # fmt: skip
            for at, person, value in sorted(events, key=lambda e: (e[0], e[1].key)):
                if not person.company.active or spec.roles and person.role not in spec.roles:
                    continue
                self._count(challenge, at, person, value)
            if spec.ends <= self.now:
                self._settle(challenge)
        return found

    def _settle(self, challenge: _Challenge) -> None:
        """The final ranks (by score, then who completed first, then who joined first, as services.challenges
        settles) and the prizes paid a few hours after the end."""
        spec = challenge.spec
        far = self.now + timedelta(days=3650)
        standings = sorted(challenge.standings.values(), key=lambda s: s.first)
        ranked = sorted(standings, key=lambda s: (-_score(spec, s.value), s.completed or far))
        for rank, standing in enumerate(ranked, start=1):
            standing.rank = rank
        settled = spec.ends + timedelta(hours=3)
        for rank, points, _ in spec.prizes:
            if rank <= len(ranked) and points > 0 and _score(spec, ranked[rank - 1].value) > 0:
                person = ranked[rank - 1].person
                self._add(settled, functools.partial(self._prize, spec, rank, points, person), points_entries=1)

    def _prize(self, spec: ChallengeSpec, rank: int, points: int, person: Person) -> None:
        """A prize as services.challenges.challenge_settle pays it."""
        challenge = self.challenges[spec.code]
        self.book.earn(
            person.holder,
            key=f"challenge:{challenge.pk}:prize:{rank}",
            points=points,
            source_type=EntrySource.CHALLENGE,
            source_id=f"challenge:{challenge.pk}",
            explanation=f"Prize for rank {rank} in the challenge “{challenge.name}”"[:500],
            details={"challenge": challenge.pk, "rank": rank},
        )

    def _count(self, challenge: _Challenge, at: datetime, person: Person, value: Decimal) -> None:
        spec = challenge.spec
        company = spec.level == ChallengeLevel.COMPANY
        key = person.company.legal_id if company else person.key
        partner_id = self.book.channel.partners[person.company.legal_id].pk if self.book.channel.partners else 0
        standing = challenge.standings.get(key)
        if standing is None:
            standing = challenge.standings[key] = Standing(partner_id, None if company else person, at)
        standing.value += value
        if standing.halfway is None and standing.value * 2 >= spec.target:
            standing.halfway = at
        if standing.completed is None and standing.value >= spec.target:
            standing.completed = at
            self._add(at, functools.partial(self._complete, spec, person, company), points_entries=1)

    def _create(self, spec: ChallengeSpec) -> None:
        program = self.book.program
        line = sales.product_lines().get(spec.line) if spec.line else None
        challenge = Challenge.objects.create(
            program=program, code=spec.code, name=spec.name, description=spec.description, starts_at=spec.starts,
            ends_at=spec.ends, level=spec.level, completion_points=spec.points, rank_companies_by_size=spec.by_size,
            is_published=False,
        )  # fmt: skip
        challenge.roles.set(Role.objects.filter(code__in=spec.roles))
        ChallengeGoal.objects.create(challenge=challenge, metric=spec.metric, product_line=line, target=spec.target)
        ChallengePrize.objects.bulk_create(
            ChallengePrize(challenge=challenge, rank=rank, points=points, description=text)
            for rank, points, text in spec.prizes
        )
        self.challenges[spec.code] = challenge

    def _complete(self, spec: ChallengeSpec, person: Person, company: bool) -> None:
        """The completion, paid through the "challenge completed" rule as services.challenges pays it."""
        challenge = self.challenges[spec.code]
        common = {
            "kind": CHALLENGE_COMPLETED,
            "program": self.book.program,
            "occurred_on": timezone.localdate(),
            "quantity": Decimal(spec.points),
            "unit": "pts offered",
            "subject": f"challenge “{spec.name}”",
        }
        if company:
            partner = self.book.channel.partners[person.company.legal_id]
            event = facts.partner_event(
                source_key=f"challenge:{challenge.pk}:p{partner.pk}", partner=partner, custom_event=spec.code, **common
            )
            self._post(event, None, EntrySource.CHALLENGE, legal_id=person.company.legal_id)
        else:
            member = self.book.member(person)
            event = facts.member_event(source_key=f"challenge:{challenge.pk}:m{member.pk}", member=member, **common)
            self._post(replace(event, custom_event=spec.code), person, EntrySource.CHALLENGE)

    # The end of the replay --------------------------------------------------------------------------------------

    def _finish(self, found: list[_Challenge]) -> None:
        """The entries of the challenges that started, ranked where one ended (and its prizes paid), the challenges
        published, and the current period's standings."""
        program = self.book.program
        active = dict(
            Member.objects.filter(status=MemberStatus.ACTIVE, partner__in=self.book.channel.partners.values())
            .values_list("partner_id")
            .annotate(n=Count("pk"))
            .values_list("partner_id", "n")
        )
        entries = []
        for challenge in found:
            row = self.challenges[challenge.spec.code]
            goals = list(row.goals.all())
            ranked = []
            for standing in sorted(challenge.standings.values(), key=lambda s: s.first):
                progress = {str(goals[0].pk): _number(standing.value)}
                score, _ = score_of(goals, progress)
                people = max(active.get(standing.partner_id, 1), 1) if standing.person is None else 1
                entry = ChallengeEntry(
                    challenge=row, partner_id=standing.partner_id,
                    member=self.book.member(standing.person) if standing.person else None, progress=progress,
                    score=score, active_members=people, halfway_at=standing.halfway, completed_at=standing.completed,
                    normalised=(score / people).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
                    if standing.person is None else score,
                )  # fmt: skip
                entry.final_rank = standing.rank
                ranked.append(entry)
            entries += ranked
        ChallengeEntry.objects.bulk_create(entries)
        for challenge in found:
            spec = challenge.spec
            row = self.challenges[spec.code]
            row.is_published = True
            if spec.starts < self.now:
                row.started_notified_at = spec.starts + timedelta(minutes=5)
            if spec.ends <= self.now:
                row.results_at = spec.ends + timedelta(hours=3)
            row.save(update_fields=["is_published", "started_notified_at", "results_at", "updated_at"])
        _rebuild_standings(program)


def _score(spec: ChallengeSpec, value: Decimal) -> Decimal:
    """The score of a one-goal challenge's progress, as services.challenges computes it."""
    goal = ChallengeGoal(id=0, target=Decimal(spec.target))
    return score_of([goal], {"0": _number(value)})[0]


def _number(value: Decimal):
    return int(value) if value == value.to_integral_value() else float(value)


def _percent(correct: int, total: int) -> int:
    return int((Decimal(correct * 100) / Decimal(total)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# The ledger sources whose earn entries stand for an activity the program's rules pay: the engine's postings (a rule id
# in their details: claims, training, surveys, challenge completions), a sell-out import's lines, and the history's
# staff bonuses for sales, installations and service visits (posted by the planner without a rule id). Not welcome
# bonuses, profiles, awards, adjustments, prizes, company shares, volume bonuses, pooling transfers or leavers'
# points: services.standings does not count what the rules did not pay.
RULE_PAID_SOURCES = (
    EntrySource.CLAIM,
    EntrySource.SALES_IMPORT,
    EntrySource.SALE_LINE,
    EntrySource.SURVEY,
    EntrySource.TRAINING,
    *STAFF_BONUS_SOURCES,
)

# The rules' earnings of the current period, per member and per company: what services.standings raises as the rules
# post, rebuilt from the ledger (the earn entries of RULE_PAID_SOURCES or with a rule id, less what was taken back).
_STANDINGS = """
WITH d AS (
    SELECT a.member_id, COALESCE(a.partner_id, pm.partner_id) AS partner_id,
        e.available_delta + e.pending_delta AS points
    FROM loyalty_pointsentry e JOIN loyalty_pointsaccount a ON a.id = e.account_id
    LEFT JOIN partners_member pm ON pm.id = a.member_id
    WHERE a.program_id = %(program)s AND e.kind = 'earn' AND e.created_at >= %(since)s
        AND (e.details->>'rule_id' IS NOT NULL OR e.source_type = ANY(%(sources)s))
    UNION ALL
    SELECT a.member_id, COALESCE(a.partner_id, pm.partner_id), r.available_delta + r.pending_delta
    FROM loyalty_pointsentry r JOIN loyalty_pointsentry e ON e.id = r.reverses_id
    JOIN loyalty_pointsaccount a ON a.id = e.account_id LEFT JOIN partners_member pm ON pm.id = a.member_id
    WHERE a.program_id = %(program)s AND r.kind = 'reverse' AND e.kind = 'earn' AND e.created_at >= %(since)s
        AND (e.details->>'rule_id' IS NOT NULL OR e.source_type = ANY(%(sources)s))
),
people AS (
    INSERT INTO loyalty_periodstanding AS s (program_id, period_start, partner_id, member_id, points, normalised,
        active_members)
    SELECT %(program)s, %(period)s, partner_id, member_id, SUM(points), SUM(points), 1
    FROM d WHERE member_id IS NOT NULL GROUP BY member_id, partner_id
    ON CONFLICT (program_id, period_start, member_id) WHERE member_id IS NOT NULL
    DO UPDATE SET points = EXCLUDED.points, normalised = EXCLUDED.normalised
)
INSERT INTO loyalty_periodstanding AS s (program_id, period_start, partner_id, member_id, points, normalised,
    active_members)
SELECT %(program)s, %(period)s, partner_id, NULL, points, ROUND(points::numeric / active, 4), active
FROM (
    SELECT partner_id, SUM(points) AS points,
        GREATEST((SELECT count(*) FROM partners_member m WHERE m.partner_id = d.partner_id AND m.status = %(active)s),
            1) AS active
    FROM d GROUP BY partner_id
) AS c
ON CONFLICT (program_id, period_start, partner_id) WHERE member_id IS NULL
DO UPDATE SET points = EXCLUDED.points, active_members = EXCLUDED.active_members, normalised = EXCLUDED.normalised
"""


def _rebuild_standings(program) -> None:
    """The current period's standings as the rules' postings make them (one statement)."""
    period = standings_period(program)
    since = timezone.make_aware(datetime.combine(period, time.min))
    params = {
        "program": program.pk,
        "period": period,
        "since": since,
        "active": MemberStatus.ACTIVE.value,
        "sources": [str(source) for source in RULE_PAID_SOURCES],
    }
    with connection.cursor() as cursor:
        cursor.execute(_STANDINGS, params)
