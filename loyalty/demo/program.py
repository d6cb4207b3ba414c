"""The demo program (DESIGN.md §6): the AquaPro Partner Club and the points history of the flagship block.

partners.demo creates the channel. This module adds one program and replays the points history of block 0,
the block with the demo logins: a year of sales, installations and service visits, each with its arithmetic in the
explanation (the modules people passed, and who answered the past survey when, are recorded in the Book for
loyalty.demo.learning and loyalty.demo.surveys, which make them real);
the company's share of every staff bonus in its account; pending points released after the return period; returned
goods reversed; old points expired; leavers' points moved to their company; a partner that switched to pooled
payouts; manual adjustments (one waiting for a second program manager). The demo logins go back two years, so their
statements show expired points and points expiring within 30 days. Later blocks get no history: the benchmarks make
their own.

Every point goes through loyalty.services.ledger (and services.adjustments and services.leavers, which use it)
under a deterministic "demo:" key, in date order, under a demo clock: while the history is replayed
`timezone.now()` is the moment being replayed, and rows whose creation time comes from the database or a field
default get that moment too. So statements read like a real year, "pending until" and expiry dates follow
from the program's rules, and the books balance.

Apps above loyalty (rewards) put their own history on the same timeline through `extensions` (loyalty may not
import them), so that a redemption sits between the earns around it. The program, its history and the
extensions' rows are written in one transaction: all there or nothing, so a second run knows in one query.
"""

import functools
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol
from unittest import mock

from dateutil.relativedelta import relativedelta
from django.db import models, transaction
from django.db.models import Exists, Q
from django.db.models.signals import pre_save
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import EnrolmentMode, EntrySource, LeaverPolicy
from loyalty.demo import courses
from loyalty.error_codes import ErrorCode
from loyalty.models import PointsAccount, PointsAdjustment, PointsEntry, PointsLot, Program
from loyalty.services import adjustments, leavers, ledger
from partners import demo as partners_demo
from partners.constants import MemberStatus, PartnerKind, PartnerStatus, PayoutPolicy
from partners.models import Member, Partner, User

PROGRAM_NAME = "AquaPro Partner Club"
PROGRAM_SLUG = "aquapro-partner-club"
PROGRAM_FIELDS = {
    "currency_name": "AquaPoints",
    "point_value": Decimal("0.0100"),  # a point is worth one euro cent
    "money_currency": "EUR",
    "enrolment_mode": EnrolmentMode.OWNER_APPROVAL,
    "expiry_months": 24,
    "leaver_policy": LeaverPolicy.TRANSFER,
    "member_share_percent": 70,
    "adjustment_approval_threshold": 5_000,
    "order_approval_threshold": 20_000,
}
PROGRAM_AGE_YEARS = 3  # the program started on 1 January this many years ago

HISTORY = timedelta(days=365)  # everybody's history ...
DEMO_HISTORY_MONTHS = 26  # ... and the demo logins', back past the 24-month expiry
RETURN_PERIOD = timedelta(days=30)
PENDING_FROM = 1_000  # staff bonuses worth this many points wait for the return period
RETURN_SHARE = 0.04  # of sales and installations, some goods come back

# Products as members sell, install and service them: (line, name, points per unit).
PRODUCTS = (
    ("AquaSoft", "AquaSoft 300 softener", 40),
    ("AquaSoft", "AquaSoft 500 twin softener", 100),
    ("AquaSoft", "AquaSoft Smart 700 softener", 160),
    ("AquaSoft", "AquaSoft salt tablets 25 kg", 2),
    ("PureFlow", "PureFlow RO-5 under-sink system", 120),
    ("PureFlow", "PureFlow RO-400 whole-house system", 480),
    ("PureFlow", "PureFlow membrane pack", 15),
    ("ClearLine", "ClearLine sediment cartridge 6-pack", 8),
    ("ClearLine", "ClearLine carbon block filter", 12),
    ("ClearLine", "ClearLine BigBlue housing", 25),
    ("UVGuard", "UVGuard 12 UV steriliser", 140),
    ("UVGuard", "UVGuard lamp kit", 20),
    ("AquaSense", "AquaSense leak detector", 30),
    ("AquaSense", "AquaSense DP-2 dosing pump", 80),
)
INSTALLATIONS = (
    ("AquaSoft", "AquaSoft 300 softener", 120),
    ("AquaSoft", "AquaSoft Smart 700 softener", 240),
    ("PureFlow", "PureFlow RO-5 under-sink system", 100),
    ("PureFlow", "PureFlow RO-400 whole-house system", 450),
    ("UVGuard", "UVGuard 12 UV steriliser", 180),
    ("AquaSense", "AquaSense DP-2 dosing pump", 130),
)
SERVICES = (
    ("AquaSoft", "AquaSoft annual service", 75),
    ("PureFlow", "PureFlow membrane change", 60),
    ("UVGuard", "UVGuard lamp change", 45),
    ("AquaSense", "Legionella risk check", 120),
)
# Trainings are real since issue #12: the planner says who passed a module of loyalty.demo.courses when, and
# loyalty.demo.learning writes the attempts, the "training passed" postings and the certificates. Challenges are real
# too (learning plans them from the staff bonuses' history), so the planner no longer invents any.
# Surveys are real too: the planner says who answered the past survey when, and loyalty.demo.surveys sends it (through
# communications), stores the answers and pays them through the "survey answered" rule; then it closes.
SURVEY = {"title": "AquaSoft Smart product feedback", "days_ago": 45, "points": 300, "answer_days": 12, "open_days": 14}
QUANTITIES = {
    PartnerKind.DISTRIBUTOR: (2, 16),
    PartnerKind.DEALER: (1, 8),
    PartnerKind.INSTALLER: (1, 3),
    PartnerKind.SERVICE_COMPANY: (1, 4),
    PartnerKind.RESELLER: (1, 12),
}
SELLING_ROLES = {"owner", "sales", "purchasing"}
FIELD_ROLES = {"engineer", "foreman"}
# How busy people are: (level, events a year, weight). Most members do little; a few carry the program.
LEVELS = (("champion", 6, 10), ("regular", 2, 25), ("occasional", 0.6, 35), ("silent", 0, 30))
DEMO_EVENTS_PER_YEAR = 18
SURVEY_ANSWER = {"demo": 1.0, "champion": 0.5, "regular": 0.2, "occasional": 0.05, "silent": 0.0}
# Big old lots of the demo logins, (months ago, explanation, points): spending takes the oldest points first,
# so these make sure that, whatever they redeemed, some points have expired and some expire within 30 days.
DEMO_ANCHORS = {
    "owner": ((25.3, "Partner summit {year}: best new-customer growth", 6_000), (23.4, "Referral bonus", 2_500)),
    "sales": (
        (25.3, "Annual sales award {year}: 112 % of target", 10_000),
        (25.1, "Winter softener contest {year}: 1st place in the region", 3_000),
        (23.4, "Top seller of the quarter at Northwater", 5_000),
    ),
    "engineer": (
        (25.3, "Installer of the year {year}, UK & Ireland: 2nd place", 8_000),
        (25.0, "Service quality award {year}: fastest call-outs in the region", 4_000),
        (23.3, "Referral bonus", 4_000),
    ),
    "foreman": (
        (25.2, "Site audit {year}: zero call-backs", 7_000),
        (25.0, "Service quality award {year}: 2nd place in the region", 3_000),
        (23.5, "Referral bonus", 4_000),
    ),
}
POOLING_SWITCH = timedelta(days=240)  # when one pooled partner switched from paying staff to pooling


# The demo clock ----------------------------------------------------------------------------------------------


def _is_timezone_now(default) -> bool:
    return getattr(default, "__module__", None) == "django.utils.timezone" and default.__name__ == "now"


@functools.cache
def _now_defaults(model: type[models.Model]) -> tuple[str, ...]:
    """The attribute names of `model`'s fields whose default is `timezone.now` (a survey response's submission time,
    an order event's time): the function itself, held since import, which patching `timezone.now` does not reach."""
    return tuple(f.attname for f in model._meta.concrete_fields if _is_timezone_now(f.default))


class DemoClock:
    """While `running()`, `timezone.now()` is `self.at`, and every new row gets it too where its creation time comes
    from elsewhere: a `created_at` (a points entry's comes from the database) and a field whose default is
    `timezone.now` (fixed at import) that the code left at its default, so later than the clock's moment."""

    def __init__(self, at: datetime):
        self.at = at

    def now(self) -> datetime:
        return self.at

    def _stamp(self, sender, instance, raw=False, **kwargs):
        if raw or not instance._state.adding:
            return
        if hasattr(instance, "created_at"):
            instance.created_at = self.at
        for name in _now_defaults(sender):
            value = getattr(instance, name)
            if value is not None and value > self.at:
                setattr(instance, name, self.at)

    @contextmanager
    def running(self) -> Iterator["DemoClock"]:
        uid = f"loyalty.demo.program.clock.{id(self)}"
        with mock.patch.object(timezone, "now", self.now):
            pre_save.connect(self._stamp, weak=False, dispatch_uid=uid)
            try:
                yield self
            finally:
                pre_save.disconnect(dispatch_uid=uid)


# Who is in block 0 ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Company:
    legal_id: str
    name: str
    kind: str
    region: str
    pooled: bool
    active: bool


@dataclass(frozen=True, slots=True)
class Person:
    """One membership (a person who moved partners has two)."""

    key: str  # "<e-mail>|<legal id>"
    email: str
    name: str
    role: str
    company: Company
    status: str
    joined_at: datetime | None
    left_at: datetime | None

    @property
    def holder(self) -> str:
        return f"member:{self.key}"


def company_holder(legal_id: str) -> str:
    return f"company:{legal_id}"


@dataclass
class Channel:
    people: list[Person]
    companies: dict[str, Company]
    members: dict[str, Member] = field(default_factory=dict)  # by Person.key; empty before the partners exist
    partners: dict[str, Partner] = field(default_factory=dict)  # by legal id


def _company(legal_id: str, name: str, kind: str, region: str, payout: str, status: str) -> Company:
    return Company(legal_id, name, kind, region, payout == PayoutPolicy.POOLED, status == PartnerStatus.ACTIVE)


def channel_from_db(plan: partners_demo.BlockPlan) -> Channel | None:
    """Block 0's people as the database has them (one query), or None when the block is not there. Later blocks'
    newcomers at the flagship are left out: their e-mail addresses are not in block 0's plan."""
    rows = list(
        Member.objects.filter(
            partner__legal_id__in=[p.legal_id for p in plan.partners], user__email__in=[u.email for u in plan.users]
        )
        .select_related("user", "partner__region", "role")
        .order_by("pk")
    )
    if not rows:
        return None
    channel = Channel(people=[], companies={})
    for m in rows:
        p = m.partner
        company = channel.companies.get(p.legal_id) or _company(
            p.legal_id, p.name, p.kind, p.region.code, p.payout_policy, p.status
        )
        channel.companies[p.legal_id] = company
        channel.partners[p.legal_id] = p
        person = Person(
            f"{m.user.email}|{p.legal_id}", m.user.email, m.user.full_name, m.role.code, company, m.status,
            m.joined_at, m.left_at,
        )  # fmt: skip
        channel.people.append(person)
        channel.members[person.key] = m
    return channel


def channel_from_plan(plan: partners_demo.BlockPlan) -> Channel:
    """Block 0's people as partners.demo would write them (for a dry run on an empty database)."""
    companies = {
        p.legal_id: _company(p.legal_id, p.name, p.kind, p.region, p.payout_policy, p.status) for p in plan.partners
    }
    names = {u.email: u.full_name for u in plan.users}
    people = [
        Person(
            f"{m.user}|{m.partner}",
            m.user,
            names[m.user],
            m.role,
            companies[m.partner],
            m.status,
            m.joined_at,
            m.left_at,
        )
        for m in plan.members
    ]
    return Channel(people=people, companies=companies)


# The timeline -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Step:
    """Something that happened at `at`: `run` does it through the services. `counts` is what it adds, by table,
    for a dry run's report (a guess where the outcome depends on balances at the time)."""

    at: datetime
    run: Callable[[], object]
    counts: Counter


class Book:
    """What the steps of a replay share: the program, block 0's people and companies, their accounts, the
    program managers, the entries posted so far by key, and how busy each person is."""

    def __init__(self, *, now: datetime, channel: Channel, program: Program | None, staff: dict[str, User]):
        self.now = now
        self.channel = channel
        self.program = program
        self.staff = staff  # program managers by e-mail
        self.levels: dict[str, str] = {}  # Person.key -> LEVELS name, or "demo"
        self.entries: dict[str, PointsEntry] = {}
        self._accounts: dict[str, PointsAccount] = {}
        # What the planner's people did, for the extensions that make records of it (loyalty.demo.learning):
        self.trainings: list[Training] = []  # modules passed
        self.activity: list[Activity] = []  # sales, installations and service visits
        self.survey_answers: list[SurveyAnswer] = []  # the past survey's answers (SURVEY), in no order
        # The partner that switched to pooled payouts and when (its people were paid themselves before).
        self.pooling_switch: tuple[str, datetime] | None = None

    @property
    def people(self) -> list[Person]:
        return self.channel.people

    def demo_logins(self) -> dict[str, Person]:
        """The demo members by role ("sales", ...), those still active at the flagship (someone may have
        deactivated one in a database seeded before the program existed: their scripted history is left out)."""
        flagship = partners_demo.legal_id(0, 0)
        active = {p.email: p for p in self.people if p.company.legal_id == flagship and p.status == MemberStatus.ACTIVE}
        return {role: active[email] for _, _, email, role in partners_demo.DEMO_MEMBERS if email in active}

    def owner_of(self, legal_id: str) -> Person | None:
        """The company's first active owner (the one who decides about the company account)."""
        owners = [p for p in self.people if p.company.legal_id == legal_id and p.role == "owner"]
        return next((p for p in owners if p.status == MemberStatus.ACTIVE), None)

    def member(self, person: Person) -> Member:
        return self.channel.members[person.key]

    def account(self, holder: str) -> PointsAccount:
        if holder not in self._accounts:
            kind, _, ref = holder.partition(":")
            if kind == "member":
                account = ledger.member_account(program=self.program, member=self.channel.members[ref])
            else:
                account = ledger.partner_account(program=self.program, partner=self.channel.partners[ref])
            self._accounts[holder] = account
        return self._accounts[holder]

    def available(self, holder: str) -> int:
        """The holder's available points now (read fresh: cached accounts' balances are stale). Creates nothing."""
        return self.balances({holder}).get(holder, 0)

    def balances(self, holders: set[str]) -> dict[str, int]:
        """Available points now of those of `holders` that have an account, in one query."""
        members = {self.channel.members[h.partition(":")[2]].pk: h for h in holders if h.startswith("member:")}
        partners = {self.channel.partners[h.partition(":")[2]].pk: h for h in holders if h.startswith("company:")}
        rows = PointsAccount.objects.filter(program=self.program).filter(
            Q(member__in=list(members)) | Q(partner__in=list(partners))
        )
        return {
            members[member] if member else partners[partner]: available
            for member, partner, available in rows.values_list("member_id", "partner_id", "available")
        }

    # ledger calls the steps make

    def earn(self, holder: str, *, key: str, points: int, **fields) -> None:
        self.entries[key] = ledger.earn(account=self.account(holder), points=points, key=key, **fields)

    def release(self, key: str) -> None:
        ledger.release(entry=self.entries[key])

    def reverse(self, key: str, *, points: int, explanation: str) -> None:
        ledger.reverse(entry=self.entries[key], key=f"{key}:returned", points=points, explanation=explanation)

    def expire(self, holder: str) -> None:
        ledger.expire_account(account=self.account(holder), now=timezone.now())

    def transfer_all(self, source: str, target: str, *, key: str, explanation: str, by: Person | None) -> None:
        """Move all the source's available points (as they are at the time) to the target."""
        points = self.available(source)
        if points > 0:
            ledger.transfer(
                source=self.account(source),
                target=self.account(target),
                points=points,
                key=key,
                explanation=explanation,
                source_type=EntrySource.POOLING,
                created_by=self.user(by),
            )

    def user(self, person: Person | None) -> User | None:
        return self.member(person).user if person is not None else None


@dataclass(frozen=True, slots=True)
class Training:
    """A person passed a module of loyalty.demo.courses (its key) at `at`."""

    person: Person
    at: datetime
    module: str


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """A person answered the past survey (SURVEY) at `at`."""

    person: Person
    at: datetime


def survey_sent_at(now: datetime) -> datetime:
    """When the past survey was sent: SURVEY's days ago, at 10:00 in the program's time zone (outside the SMS quiet
    hours)."""
    day = timezone.localtime(now - timedelta(days=SURVEY["days_ago"])).date()
    return timezone.make_aware(datetime(day.year, day.month, day.day, 10))


# The source_type of the history's staff bonuses (Activity.kind): a sale, an installation or a service visit, each
# standing for what the program's rules pay for it (posted by the planner straight to the ledger, without a rule id).
STAFF_BONUS_SOURCES = ("sale", "installation", "service")


@dataclass(frozen=True, slots=True)
class Activity:
    """A sale, an installation or a service visit of the planner's: `quantity` units of a product of `line` (the
    planner's line names: AquaSoft, PureFlow, ClearLine, UVGuard, AquaSense)."""

    person: Person
    at: datetime
    kind: str  # "sale", "installation" or "service"
    line: str
    quantity: int


class DemoExtension(Protocol):
    """An app above loyalty that adds rows and steps to the demo (rewards.demo)."""

    TABLES: Sequence[tuple[str, type[models.Model]]]  # what it writes, (label, model), in report order

    def plan(self, book: Book) -> list[Step]: ...

    # Optional: `marker() -> QuerySet`, rows that exist once the extension's part is seeded. An extension with a
    # marker is added on its own to a program seeded before it existed (the others are there with the program).


# Planning: what happened when (pure: no database) ----------------------------------------------------------------


class _Planner:
    def __init__(self, book: Book):
        self.book = book
        self.now = book.now
        self.rng = random.Random(f"{partners_demo.SEED}:points")
        self.start = self.now - HISTORY
        self.demo_start = self.now - relativedelta(months=DEMO_HISTORY_MONTHS)
        self.steps: list[Step] = []
        self.serial: Counter = Counter()  # per person or company, for the keys
        self.earned: dict[str, list[datetime]] = defaultdict(list)  # holder -> when its lots were earned
        self.shares: dict[tuple[str, int, int], list[int]] = defaultdict(lambda: [0, 0])  # company's, by quarter
        self.demo_emails = {email for _, _, email, _ in partners_demo.DEMO_MEMBERS}
        self.flagship = partners_demo.legal_id(0, 0)
        self.switch: Company | None = None  # the partner that switched to pooled payouts
        self.switched: list[Person] = []

    def plan(self) -> list[Step]:
        people = [p for p in self.book.people if p.company.active and p.joined_at is not None]
        self.switch, self.switched = self._pooling_switch(people)
        if self.switch is not None:
            self.book.pooling_switch = (self.switch.legal_id, self.now - POOLING_SWITCH)
        for person in people:
            self._person(person)
        self._company_shares()
        for company in sorted(self.book.channel.companies.values(), key=lambda c: c.legal_id):
            if company.active and company.kind == PartnerKind.DISTRIBUTOR:
                self._volume_bonuses(company)
        self._pooling_transfers()
        self._adjustments()
        self._expiries()
        return self.steps

    # helpers

    def _add(self, at: datetime, run: Callable[[], object], **counts: int) -> None:
        if at > self.now:
            raise AssertionError(f"a demo step in the future: {at}")
        self.steps.append(Step(at, run, Counter({k.replace("_", " "): n for k, n in counts.items()})))

    def _key(self, what: str, who: str) -> str:
        self.serial[who] += 1
        return f"demo:{what}:{who}:{self.serial[who]}"

    def _between(self, start: datetime, end: datetime) -> datetime:
        return start + (end - start) * self.rng.random()

    def _earn(self, holder: str, at: datetime, *, key: str, points: int, available_at: datetime | None = None, **f):
        pending = available_at is not None and available_at > at
        self._add(
            at,
            functools.partial(self.book.earn, holder, key=key, points=points, available_at=available_at, **f),
            points_entries=1,
        )
        self.earned[holder].append(at)
        if pending and available_at <= self.now - timedelta(hours=1):  # the periodic task released it since
            released = min(available_at + timedelta(hours=self.rng.uniform(1, 8)), self.now)
            self._add(released, functools.partial(self.book.release, key), points_entries=1)

    # people

    def _person(self, person: Person) -> None:
        demo = person.email in self.demo_emails and person.company.legal_id == self.flagship
        if demo:
            level = "demo"
        else:
            names, _, weights = zip(*LEVELS, strict=True)
            level = self.rng.choices(names, weights=weights)[0]
        self.book.levels[person.key] = level
        end = person.left_at or self.now
        if end < self.start + timedelta(days=30):
            return  # left before the year the history covers
        start = max(person.joined_at + timedelta(days=2), self.demo_start if demo else self.start)
        if person.joined_at >= self.start - timedelta(days=1):
            self._welcome(person, end)
        rate = DEMO_EVENTS_PER_YEAR if demo else dict((n, r) for n, r, _ in LEVELS)[level]
        years = max((end - start).total_seconds(), 0) / (365 * 86400)
        count = round(rate * years * self.rng.uniform(0.75, 1.25))
        trainings = courses.modules_for(person.role, person.company.kind)
        self.rng.shuffle(trainings)
        for at in sorted(self._between(start, end - timedelta(hours=2)) for _ in range(count)):
            self._activity(person, at, trainings)
        asked = survey_sent_at(self.now)
        answered = asked + timedelta(days=self.rng.uniform(0.1, SURVEY["answer_days"]))
        # loyalty.demo.surveys makes it a real answer, paid by the rules: only a member still active can answer
        active = person.status == MemberStatus.ACTIVE
        if start <= asked and answered < end and self.rng.random() < SURVEY_ANSWER[level] and active:
            self.book.survey_answers.append(SurveyAnswer(person, answered))
        if demo:
            self._anchors(person)
        elif level in ("champion", "regular") and person.status == MemberStatus.ACTIVE:
            self._veteran(person)
        if person.status == MemberStatus.LEFT:
            self._leaver(person)

    def _welcome(self, person: Person, end: datetime) -> None:
        at = person.joined_at + timedelta(hours=1)
        if at < end:
            key = self._key("welcome", person.email)
            self._earn(
                person.holder, at, key=key, points=1_000, explanation="Welcome bonus", source_type=EntrySource.WELCOME
            )
        at = person.joined_at + timedelta(days=self.rng.uniform(0.5, 6))
        if at < end and self.rng.random() < 0.35:
            key = self._key("profile", person.email)
            self._earn(person.holder, at, key=key, points=200, explanation="Profile completed: phone and channel",
                       source_type=EntrySource.PROFILE)  # fmt: skip

    def _activity(self, person: Person, at: datetime, trainings: list) -> None:
        r = self.rng.random()
        if person.role in SELLING_ROLES:
            kind = "sale" if r < 0.84 else "training"
        elif person.role in FIELD_ROLES:
            kind = "installation" if r < 0.52 else "service" if r < 0.79 else "training"
        else:
            kind = "training"
        if kind == "training" and not trainings:
            kind = "sale" if person.role in SELLING_ROLES else "installation" if person.role in FIELD_ROLES else ""
        if kind == "training":  # loyalty.demo.learning makes the attempt, the posting and any certificate
            self.book.trainings.append(Training(person, at, trainings.pop()))
        elif kind:
            self._staff_bonus(person, at, kind)

    def _staff_bonus(self, person: Person, at: datetime, kind: str, big: bool = False) -> None:
        """A sale, installation or service visit: the program's member share to the person, the rest to the
        company account; all of it to the company account where the partner pools. A `big` one is a project."""
        rng = self.rng
        if big:
            line, product, per_unit = PRODUCTS[5] if kind == "sale" else INSTALLATIONS[3]
            quantity = rng.randint(4, 8) if kind == "sale" else rng.randint(3, 4)
            reference = f"{'INV' if kind == 'sale' else 'IR'}-{rng.randrange(10_000, 100_000)}"
            what = f"{'Sale' if kind == 'sale' else 'Installation'} {reference}"
        elif kind == "sale":
            line, product, per_unit = rng.choice(PRODUCTS)
            low, high = QUANTITIES[person.company.kind]
            quantity = rng.randint(low, high) * (10 if per_unit == 1 else 1)
            reference = f"INV-{rng.randrange(10_000, 100_000)}"
            what = f"Sale {reference}"
        elif kind == "installation":
            line, product, per_unit = rng.choice(INSTALLATIONS)
            quantity = rng.choice((1, 1, 1, 2, 2, 3))
            reference = f"IR-{rng.randrange(10_000, 100_000)}"
            what = f"Installation {reference}"
        else:
            line, product, per_unit = rng.choice(SERVICES)
            quantity = rng.randint(1, 5)
            reference = f"SV-{rng.randrange(10_000, 100_000)}"
            what = f"Service visits {reference}"
        total = quantity * per_unit
        sum_text = f"{quantity} × {product} × {per_unit} pts = {total:,}"
        details = {"reference": reference, "line": line, "product": product, "quantity": quantity,
                   "points_per_unit": per_unit, "total": total}  # fmt: skip
        available_at = at + RETURN_PERIOD if total >= PENDING_FROM else None
        returned = quantity > 1 and rng.random() < RETURN_SHARE
        back = rng.randint(1, max(1, quantity // 3)) if returned else 0
        back_at = at + timedelta(days=rng.uniform(4, 25))
        credit_note = f"CN-{rng.randrange(10**4, 10**5)}"
        back_text = f"Returned goods: {back} × {product} from {reference} (credit note {credit_note})"
        pooled = person.company.pooled and not (person.company == self.switch and at < self.now - POOLING_SWITCH)
        if pooled:
            holder, who, points = company_holder(person.company.legal_id), person.company.legal_id, total
            explanation = f"{what} by {person.name}: {sum_text}, pooled to the company account"
        else:  # the member's share now; the company's share with the quarter's others (_company_shares)
            share = PROGRAM_FIELDS["member_share_percent"]
            holder, who, points = person.holder, person.email, (total * share + 50) // 100
            explanation = f"{what}: {sum_text}, your {share} % share: {points:,}"
            quarter = self.shares[(person.company.legal_id, at.year, (at.month - 1) // 3 + 1)]
            quarter[0] += total - points - round((total - points) * back / quantity)
            quarter[1] += 1
        self.book.activity.append(Activity(person, at, kind, line, quantity))
        key = self._key(kind, who)
        self._earn(holder, at, key=key, points=points, explanation=explanation, source_type=kind,
                   source_id=reference, available_at=available_at, details={**details, "points": points})  # fmt: skip
        if back and back_at < self.now:
            taken = max(1, round(points * back / quantity))
            self._add(back_at, functools.partial(self.book.reverse, key, points=taken, explanation=back_text),
                      points_entries=1)  # fmt: skip

    def _anchors(self, person: Person) -> None:
        """The demo login's big old lots, and a recent project whose points are still pending."""
        project = "installation" if person.role in FIELD_ROLES else "sale"
        self._staff_bonus(person, self.now - timedelta(days=self.rng.uniform(4, 20)), project, big=True)
        for months, text, points in DEMO_ANCHORS.get(person.role, ()):
            at = self.now - timedelta(days=months * 30.44)
            key = self._key("award", person.email)
            self._earn(person.holder, at, key=key, points=points, source_type=EntrySource.AWARD,
                       explanation=text.format(year=(at - timedelta(days=45)).year))  # fmt: skip

    def _veteran(self, person: Person) -> None:
        """Some long-standing members' oldest points: expired last month, or expiring within 30 days."""
        if person.joined_at > self.now - relativedelta(months=DEMO_HISTORY_MONTHS) or person in self.switched:
            return
        if self.rng.random() < 0.3:
            self._staff_bonus(person, self.now - timedelta(days=self.rng.uniform(24.3, 25.5) * 30.44), "sale")
        if self.rng.random() < 0.3:
            self._staff_bonus(person, self.now - timedelta(days=self.rng.uniform(23.1, 23.9) * 30.44), "sale")

    def _leaver(self, person: Person) -> None:
        owner = self.book.owner_of(person.company.legal_id)
        if owner is None or owner.key == person.key:
            return
        member_key = person.key

        def leave():
            leavers.apply_leaver_policy(member=self.book.channel.members[member_key], actor=self.book.user(owner))

        self._add(person.left_at, leave, points_entries=2)

    # companies

    def _company_shares(self) -> None:
        """The company's share of its staff's bonuses, posted to the company account after each quarter."""
        share = 100 - PROGRAM_FIELDS["member_share_percent"]
        for (legal_id, year, quarter), (points, count) in sorted(self.shares.items()):
            start = datetime(year, quarter * 3 - 2, 1, tzinfo=self.now.tzinfo)
            at = start + relativedelta(months=3) + timedelta(days=3, hours=self.rng.uniform(7, 9))
            if at >= self.now or points <= 0:
                continue
            bonuses = f"{count} staff bonus" if count == 1 else f"{count} staff bonuses"
            self._earn(
                company_holder(legal_id), at, key=self._key("company-share", legal_id), points=points,
                source_type=EntrySource.COMPANY_SHARE, source_id=f"{legal_id}:{year}-Q{quarter}",
                explanation=f"Company share of Q{quarter} {year}: {share} % of {bonuses} = {points:,}",
                details={"quarter": f"{year}-Q{quarter}", "bonuses": count, "share_percent": share},
            )  # fmt: skip

    def _volume_bonuses(self, company: Company) -> None:
        """Distributors earn on their purchases every quarter, into the company account."""
        start = self.demo_start if company.legal_id == self.flagship else self.start
        quarter_end = datetime(start.year, (start.month - 1) // 3 * 3 + 1, 1, tzinfo=start.tzinfo)
        while True:
            quarter_end += relativedelta(months=3)
            at = quarter_end + timedelta(days=6, hours=self.rng.uniform(8, 17))
            if at >= self.now:
                break
            if at < start:
                continue
            closed = quarter_end - timedelta(days=1)
            purchases = self.rng.randrange(90_000, 260_000, 100)
            points = purchases // 20
            key = self._key("volume-bonus", company.legal_id)
            quarter = f"Q{(closed.month - 1) // 3 + 1} {closed.year}"
            self._earn(
                company_holder(company.legal_id), at, key=key, points=points, source_type=EntrySource.VOLUME_BONUS,
                source_id=f"{company.legal_id}:{quarter}",
                explanation=f"Quarterly volume bonus {quarter}: €{purchases:,} purchases × 1 pt per €20 = {points:,}",
            )  # fmt: skip

    def _pooling_switch(self, people: list[Person]) -> tuple[Company | None, list[Person]]:
        """The first pooled partner with two or more staff from before the switch: they were paid individually,
        and on the switch their points moved to the company account."""
        switch_at = self.now - POOLING_SWITCH
        by_company = defaultdict(list)
        for p in people:
            if p.status == MemberStatus.ACTIVE and p.role != "owner" and p.joined_at < switch_at - HISTORY / 4:
                by_company[p.company.legal_id].append(p)
        for legal_id in sorted(by_company):
            company = by_company[legal_id][0].company
            if company.pooled and legal_id != self.flagship and len(by_company[legal_id]) >= 2:
                return company, by_company[legal_id]
        return None, []

    def _pooling_transfers(self) -> None:
        if self.switch is None:
            return
        owner = self.book.owner_of(self.switch.legal_id)
        at = self.now - POOLING_SWITCH + timedelta(days=1)
        for person in self.switched:
            # their last bonus paid to them, a few weeks before the switch: there is always something to move
            last = self.now - POOLING_SWITCH - timedelta(days=self.rng.uniform(5, 40))
            self._staff_bonus(person, last, "installation" if person.role in FIELD_ROLES else "sale")
            transfer = functools.partial(
                self.book.transfer_all,
                person.holder,
                company_holder(self.switch.legal_id),
                key=self._key("pooling", person.email),
                explanation=f"{self.switch.name} now pools staff points: {person.name}'s points moved to the "
                "company account",
                by=owner,
            )
            self._add(at, transfer, points_entries=2)

    # program managers

    def _adjustments(self) -> None:
        """A posted bonus, a posted correction, one waiting for a second program manager, one rejected."""
        first, second = (email for _, email in partners_demo.PROGRAM_MANAGERS)
        logins = {role: person.holder for role, person in self.book.demo_logins().items()}
        dealer = next(
            (c for c in sorted(self.book.channel.companies.values(), key=lambda c: c.legal_id)
             if c.active and c.kind == PartnerKind.DEALER),
            None,
        )  # fmt: skip
        requests = [
            (110, logins.get("engineer"), 300, first,
             "Goodwill: installation registered late because of the portal outage (ticket 4412)", None),
            (45, logins.get("foreman"), -120, second,
             "Correction: invoice INV-30417 was claimed twice, also by a colleague", None),
            (3, logins.get("sales"), 7_500, first,
             "Aquatech Amsterdam: three days on the AquaPro stand, agreed with Martin Keller", None),
            (150, company_holder(dealer.legal_id) if dealer else None, 6_000, second, "Showroom display bonus",
             (first, "The photos show last year's display; send photos of the new AquaSoft Smart display.")),
        ]  # fmt: skip
        for days_ago, holder, points, requester, reason, rejection in requests:
            if holder is None:
                continue
            at = self.now - timedelta(days=days_ago, hours=self.rng.uniform(-3, 3))
            self._add(at, functools.partial(self._request, holder, points, requester, reason),
                      points_adjustments=1, points_entries=int(abs(points) <= 5_000))  # fmt: skip
            if rejection:
                by, why = rejection
                self._add(at + timedelta(days=2), functools.partial(self._reject, holder, by, why))

    def _request(self, holder: str, points: int, requester: str, reason: str) -> None:
        account = PointsAccount.objects.get(pk=self.book.account(holder).pk)  # with today's balances
        adjustments.adjustment_request(
            account=account, points=points, reason=reason, requested_by=self.book.staff[requester]
        )

    def _reject(self, holder: str, by: str, why: str) -> None:
        adjustment = PointsAdjustment.objects.filter(account=self.book.account(holder)).latest("pk")
        adjustments.adjustment_reject(adjustment=adjustment, approver=self.book.staff[by], reason=why)

    # expiry

    def _expiries(self) -> None:
        """The nightly expiry, on the days lots reached their expiry date (it takes what is left of them)."""
        months = PROGRAM_FIELDS["expiry_months"]
        for holder, moments in self.earned.items():
            days = {(at + relativedelta(months=months)).date() for at in moments}
            for day in sorted(days):
                at = datetime(day.year, day.month, day.day, 2, 30, tzinfo=self.now.tzinfo) + timedelta(days=1)
                if at < self.now:
                    self._add(at, functools.partial(self.book.expire, holder), points_entries=1)


# Seeding ----------------------------------------------------------------------------------------------------

TABLES = (
    ("programs", Program),
    ("points accounts", PointsAccount),
    ("points entries", PointsEntry),
    ("points adjustments", PointsAdjustment),
)


@dataclass
class ProgramReport:
    dry_run: bool
    present: bool  # the program was there already, with every extension's part: nothing was done
    added: bool = False  # the program was there; the parts of extensions seeded before them were added
    tables: list[str] = field(default_factory=list)  # the labels of `rows`, in report order
    rows: Counter = field(default_factory=Counter)  # created (or, dry, about to be), by table
    seconds: float = 0.0


def program_present() -> bool:
    return Program.objects.filter(Q(slug=PROGRAM_SLUG) | Q(name=PROGRAM_NAME)).exists()


def _missing_parts(extensions: Sequence[DemoExtension]) -> list[DemoExtension] | None:
    """None when the program is not there; else the extensions (with a marker) whose part is missing. One query."""
    marked = {f"part_{n}": ext for n, ext in enumerate(extensions) if getattr(ext, "marker", None) is not None}
    row = (
        Program.objects.filter(Q(slug=PROGRAM_SLUG) | Q(name=PROGRAM_NAME))
        .annotate(**{name: Exists(ext.marker()) for name, ext in marked.items()})
        .values(*marked, "pk")
        .first()
    )
    if row is None:
        return None
    return [ext for name, ext in marked.items() if not row[name]]


def seed_program(
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
    extensions: Sequence[DemoExtension] = (),
    now: datetime | None = None,
) -> ProgramReport:
    """Create the demo program with the points history of block 0 and what the extensions add, unless the program
    is there already (one query). Block 0 of partners.demo must be in the database, except in a dry run."""
    started = time.monotonic()
    say = progress or (lambda message: None)
    tables = [*TABLES, *(table for extension in extensions for table in extension.TABLES)]
    missing = _missing_parts(extensions)
    report = ProgramReport(dry_run=dry_run, present=missing == [], tables=[label for label, _ in tables])
    if report.present:
        report.seconds = time.monotonic() - started
        return report
    now = now or timezone.now()
    if missing:
        report.added = True
        _add_parts(missing, tables, report, now=now, say=say)
        report.seconds = time.monotonic() - started
        return report
    plan = partners_demo.plan_block(0, now=now)
    if dry_run:
        channel = channel_from_db(plan) or channel_from_plan(plan)
        steps = _plan(Book(now=now, channel=channel, program=None, staff={}), extensions)
        report.rows["programs"] = 1
        for step in steps:
            report.rows.update(step.counts)
        report.seconds = time.monotonic() - started
        return report

    with transaction.atomic():
        channel = channel_from_db(plan)
        if channel is None:
            raise ApplicationError(
                "Cannot add the demo program: the demo partners (block 0) are missing. Seed an empty database.",
                code=ErrorCode.DEMO_CONFLICT,
            )
        before = {label: model.objects.count() for label, model in tables}
        clock = DemoClock(now - relativedelta(months=DEMO_HISTORY_MONTHS + 1))
        with clock.running():
            program = _create_program(now)
        staff = {u.email: u for u in User.objects.filter(email__in=[e for _, e in partners_demo.PROGRAM_MANAGERS])}
        book = Book(now=now, channel=channel, program=program, staff=staff)
        steps = _plan(book, extensions)
        planned = time.monotonic()
        _replay(steps, clock=clock, now=now)
        _catch_up(program, clock=clock, now=now)
        say(f"  points history: {len(steps):,} steps replayed in {time.monotonic() - planned:.1f} s")
        report.rows.update({label: model.objects.count() - before[label] for label, model in tables})
    report.seconds = time.monotonic() - started
    return report


def _add_parts(
    extensions: Sequence[DemoExtension], tables: list, report: ProgramReport, *, now: datetime, say: Callable
) -> None:
    """Add the parts of `extensions` to a program seeded before they existed, on the same kind of timeline (their
    entries are dated in the past but come after the program's others in the statements)."""
    with transaction.atomic():
        plan = partners_demo.plan_block(0, now=now)
        channel = channel_from_db(plan)
        program = Program.objects.filter(Q(slug=PROGRAM_SLUG) | Q(name=PROGRAM_NAME)).first()
        if channel is None:
            return
        before = {label: model.objects.count() for label, model in tables}
        staff = {u.email: u for u in User.objects.filter(email__in=[e for _, e in partners_demo.PROGRAM_MANAGERS])}
        book = Book(now=now, channel=channel, program=program, staff=staff)
        steps = sorted((step for ext in extensions for step in ext.plan(book)), key=lambda step: step.at)
        if report.dry_run:
            for step in steps:
                report.rows.update(step.counts)
            return
        clock = DemoClock(now)
        _replay(steps, clock=clock, now=now)
        say(f"  added to the program: {len(steps):,} steps replayed")
        report.rows.update({label: model.objects.count() - before[label] for label, model in tables})


def _create_program(now: datetime) -> Program:
    starts_on = now.date().replace(year=now.year - PROGRAM_AGE_YEARS, month=1, day=1)
    program = Program(name=PROGRAM_NAME, slug=PROGRAM_SLUG, starts_on=starts_on, **PROGRAM_FIELDS)
    program.full_clean()
    program.save()
    return program


def _plan(book: Book, extensions: Sequence[DemoExtension]) -> list[Step]:
    steps = _Planner(book).plan()
    for extension in extensions:
        steps += extension.plan(book)
    steps.sort(key=lambda step: step.at)  # stable: steps at the same moment keep their planned order
    return steps


def _replay(steps: list[Step], *, clock: DemoClock, now: datetime) -> None:
    with clock.running():
        for step in steps:
            clock.at = step.at
            step.run()
        clock.at = now


def _catch_up(program: Program, *, clock: DemoClock, now: datetime) -> None:
    """What the periodic tasks would have done by now that no step did (a leaver's pending points moved to the
    company account, say): release what is due and expire what is due, in this program."""
    with clock.running():
        due = PointsLot.objects.filter(account__program=program, is_pending=True, available_at__lte=now)
        for entry in PointsEntry.objects.filter(pk__in=due.values("entry_id")).order_by("pk"):
            ledger.release(entry=entry)
        overdue = PointsLot.objects.filter(
            account__program=program, remaining__gt=0, is_pending=False, expires_at__lte=now
        ).values("account_id")
        for account in PointsAccount.objects.filter(pk__in=overdue).order_by("pk"):
            ledger.expire_account(account=account, now=now)
