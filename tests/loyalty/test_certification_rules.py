"""Certification as a rule condition: "installers certified on softeners earn ×1.5 on softener sales". A rule with
`requires_certification` pays only when the person who acted holds a certificate for that line valid on the event's
day — through one event (earning.post_event), a sell-out import (engine.bulk, one certificate query per batch), a
simulation (one query for all its members) — says why it did not pay, and shows in the rule admin."""

import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.sellout import HEADER, MAPPING
from loyalty.constants import ClaimStatus, Formula, ImportStatus, RuleStatus
from loyalty.engine.bulk import LineEvaluator, RuleIndex, share_of
from loyalty.engine.facts import certify, sale_event
from loyalty.engine.rules import CompiledRule, Participant, Unpaid, compile_rules, evaluate, why_unpaid
from loyalty.models import ClaimLine, IncentiveRule, PointsAccount, SaleLine, SalesClaim, SalesSource
from loyalty.selectors.certificates import Span, certificate_spans, certified_lines, is_certified
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import earning
from loyalty.services.claim_explanations import unpaid_reasons
from loyalty.services.rules import rule_new_version
from loyalty.services.sellout import run as imports
from loyalty.services.simulation import rule_simulate
from tests.loyalty.factories import (
    CertificateFactory,
    CourseFactory,
    ProductFactory,
    ProductLineFactory,
    ProgramFactory,
    RuleFactory,
)
from tests.loyalty.test_admin_rules import change_url, form_data, text
from tests.loyalty.test_bulk_ledger import random_event, random_rules
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory, role

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
DAY = TODAY - timedelta(days=10)  # the sales' day


class Program:
    """A program paying 10 pts per softener sold, and ×1.5 on top to installers certified on softeners."""

    def __init__(self, *, bonus: bool = True):
        self.program = ProgramFactory()
        self.softeners = ProductLineFactory(code="softeners", name="Softeners")
        self.filters = ProductLineFactory(code="filters", name="Filters")
        self.softener = ProductFactory(line=self.softeners)
        self.base = RuleFactory(program=self.program, code="softener-sales", name="Softener sales", value=Decimal(10))
        self.base.product_lines.add(self.softeners)
        self.bonus = None
        if bonus:
            self.bonus = RuleFactory(
                program=self.program,
                code="certified-softeners",
                name="Certified softener bonus",
                formula=Formula.MULTIPLIER,
                value=Decimal("1.5"),
                requires_certification=self.softeners,
            )
            self.bonus.product_lines.add(self.softeners)
            self.bonus.roles.add(role("engineer"))
        self.partner = PartnerFactory()

    def installer(self, **kwargs):
        return MemberFactory(partner=self.partner, role=role("engineer"), **kwargs)

    def certify(self, member, *, issued_on=DAY - timedelta(days=30), expires_on=DAY + timedelta(days=300), line=None):
        line = line or self.softeners
        return CertificateFactory(
            member=member,
            course__program=self.program,
            course__product_line=line,
            issued_on=issued_on,
            expires_on=expires_on,
        )

    def rules(self):
        return earning.published_rules(self.program)

    def sale(self, member, *, key="sale:1", quantity=12, day=DAY, rules=None, product=None):
        return sale_event(
            program=self.program,
            source_key=key,
            partner=member.partner,
            product=product or self.softener,
            quantity=Decimal(quantity),
            amount=Decimal("1000"),
            occurred_on=day,
            actor=member,
            rules=rules,
        )

    def post(self, member, **kwargs):
        rules = self.rules()
        return earning.post_event(program=self.program, event=self.sale(member, rules=rules, **kwargs), rules=rules)

    def balance(self, member) -> int:
        account = PointsAccount.objects.filter(program=self.program, member=member).first()
        return account.available if account else 0


@pytest.fixture
def world():
    return Program()


# The selectors ------------------------------------------------------------------------------------------------


def test_certified_lines_gives_each_members_valid_lines_on_a_day_in_one_query(world, django_assert_num_queries):
    certified, both, expired, later = (world.installer() for _ in range(4))
    world.certify(certified)
    world.certify(both)
    world.certify(both, line=world.filters)
    world.certify(expired, issued_on=DAY - timedelta(days=365), expires_on=DAY)
    world.certify(later, issued_on=DAY + timedelta(days=1))
    with django_assert_num_queries(1):
        held = certified_lines(member_ids=[m.pk for m in (certified, both, expired, later)], on=DAY)
    assert held == {
        certified.pk: frozenset({world.softeners.pk}),
        both.pk: frozenset({world.softeners.pk, world.filters.pk}),
    }
    assert is_certified(member=certified, line_id=world.softeners.pk, on=DAY) is True
    assert is_certified(member=expired, line_id=world.softeners.pk, on=DAY - timedelta(days=1)) is True
    assert is_certified(member=expired, line_id=world.softeners.pk, on=DAY) is False
    assert is_certified(member=later, line_id=world.softeners.pk, on=DAY) is False


def test_certificate_spans_keep_only_the_lines_asked_and_the_period(world):
    installer = world.installer()
    first = world.certify(installer, issued_on=DAY - timedelta(days=400), expires_on=DAY - timedelta(days=35))
    second = world.certify(installer)
    world.certify(installer, line=world.filters)
    spans = certificate_spans(member_ids=[installer.pk], line_ids=[world.softeners.pk])
    assert spans == {
        installer.pk: (
            Span(world.softeners.pk, first.issued_on, first.expires_on),
            Span(world.softeners.pk, second.issued_on, second.expires_on),
        )
    }
    recent = certificate_spans(member_ids=[installer.pk], line_ids=[world.softeners.pk], start=DAY, end=TODAY)
    assert recent == {installer.pk: (Span(world.softeners.pk, second.issued_on, second.expires_on),)}


# One event ----------------------------------------------------------------------------------------------------


def test_a_certified_installer_earns_one_and_a_half_times_and_an_uncertified_one_the_base_points(world):
    certified, uncertified = world.installer(), world.installer()
    world.certify(certified)
    paid = world.post(certified, key="sale:1")
    plain = world.post(uncertified, key="sale:2")
    assert [entry.explanation for entry in paid] == [
        "Softener sales v1: 12 units × 10 pts = 120",
        "Certified softener bonus v1: 120 pts × (1.5 − 1) = 60 (certified on Softeners)",
    ]
    assert [entry.explanation for entry in plain] == ["Softener sales v1: 12 units × 10 pts = 120"]
    assert (world.balance(certified), world.balance(uncertified)) == (180, 120)
    assert ledger_problems() == []


def test_a_certificate_that_expired_the_day_before_the_sale_does_not_pay(world):
    installer = world.installer()
    world.certify(installer, issued_on=DAY - timedelta(days=365), expires_on=DAY)  # valid up to the day before
    world.post(installer)
    assert world.balance(installer) == 120


def test_a_certificate_issued_on_the_day_of_the_sale_pays(world):
    installer = world.installer()
    world.certify(installer, issued_on=DAY)
    world.post(installer)
    assert world.balance(installer) == 180


def test_a_certificate_for_another_line_does_not_pay(world):
    installer = world.installer()
    world.certify(installer, line=world.filters)
    world.post(installer)
    assert world.balance(installer) == 120


def test_only_the_person_who_acted_counts_not_a_certified_colleague(world):
    installer, certified_colleague = world.installer(), world.installer()
    world.certify(certified_colleague)
    rules = world.rules()
    event = sale_event(
        program=world.program,
        source_key="sale:1",
        partner=world.partner,
        product=world.softener,
        quantity=Decimal(12),
        amount=Decimal(1000),
        occurred_on=DAY,
        actor=installer,
        colleagues=[certified_colleague],
        rules=rules,
    )
    assert [p.points for p in evaluate(event, rules)] == [120]
    assert event.participants[1].certified_line_ids == frozenset({world.softeners.pk})


def test_the_certificates_are_looked_up_once_and_only_when_a_rule_requires_one(django_assert_num_queries):
    with_bonus, without = Program(), Program(bonus=False)
    for world, queries in ((with_bonus, 1), (without, 0)):
        installer = world.installer()
        rules = world.rules()
        with django_assert_num_queries(queries):
            event = sale_event(
                program=world.program,
                source_key="sale:1",
                partner=installer.partner,
                product=world.softener,
                quantity=Decimal(1),
                amount=Decimal(1),
                occurred_on=DAY,
                actor=installer,
                tier=None,
                rules=rules,
            )
        with django_assert_num_queries(0):  # already looked up, or nothing to look up
            assert certify(event, rules) == event


def test_an_event_built_without_the_rules_is_certified_later_by_certify(world, django_assert_num_queries):
    installer = world.installer()
    world.certify(installer)
    rules = world.rules()
    event = world.sale(installer)
    assert [p.points for p in evaluate(event, rules)] == [120]  # not looked up: the bonus does not pay
    with django_assert_num_queries(1):
        certified = certify(event, rules)
    assert certified.actor.certified_line_ids == frozenset({world.softeners.pk})
    assert [p.points for p in evaluate(certified, rules)] == [120, 60]


def test_a_compiled_rule_knows_its_line_and_its_name_without_a_query_per_rule(world, django_assert_num_queries):
    rows = list(
        IncentiveRule.objects.filter(program=world.program).prefetch_related(
            "roles", "tiers", "regions", "product_lines", "products", "named_partners"
        )
    )
    with django_assert_num_queries(1):  # the names of the lines, for every rule requiring a certificate
        compiled = {rule.code: rule for rule in compile_rules(rows)}
    assert (compiled["certified-softeners"].certified_line_id, compiled["certified-softeners"].certified_line_name) == (
        world.softeners.pk,
        "Softeners",
    )
    assert compiled["softener-sales"].certified_line_id is None


# Why it did not pay -------------------------------------------------------------------------------------------


def certified_only_program():
    world = Program(bonus=False)
    world.base.requires_certification = world.softeners
    world.base.save()
    return world


def test_why_unpaid_says_not_certified():
    world = certified_only_program()
    certified, uncertified = world.installer(), world.installer()
    world.certify(certified)
    rules = world.rules()
    assert why_unpaid(world.sale(uncertified, rules=rules), rules) == Unpaid.NOT_CERTIFIED
    assert why_unpaid(world.sale(uncertified, rules=rules), rules, uncertified.pk) == Unpaid.NOT_CERTIFIED
    assert why_unpaid(world.sale(certified, rules=rules), rules) is None
    before = why_unpaid(world.sale(certified, rules=rules, day=DAY - timedelta(days=31)), rules)
    assert before == Unpaid.NOT_CERTIFIED


def test_why_unpaid_keeps_saying_the_date_when_the_rule_was_not_in_force_anyway():
    world = certified_only_program()
    world.base.valid_from = DAY
    world.base.save()
    installer = world.installer()
    rules = world.rules()
    assert why_unpaid(world.sale(installer, rules=rules, day=DAY - timedelta(days=1)), rules) == Unpaid.CONDITIONS


def test_the_claim_page_explains_a_line_unpaid_for_want_of_a_certificate():
    world = certified_only_program()
    installer = world.installer()
    claim = SalesClaim.objects.create(
        program=world.program,
        member=installer,
        partner=installer.partner,
        invoice_number="C-1",
        invoice_date=DAY,
        document="claims/invoice.pdf",
        status=ClaimStatus.APPROVED,
    )
    line = ClaimLine.objects.create(claim=claim, product=world.softener, quantity=Decimal(2), amount=Decimal(200))
    line.paid_quantity = line.quantity
    assert unpaid_reasons(claim=claim, lines=[line], member=None) == {
        line.pk: "The rules for this product pay only a member certified on its product line on the invoice date."
    }


# Many events: the bulk evaluator and the sell-out import -------------------------------------------------------


def test_the_line_evaluator_with_certificates_gives_exactly_what_the_engine_gives():
    """Random rules, some requiring a certificate on line 1 or 2, and random sellers' certificates: each line gets
    exactly engine.evaluate's postings with the seller's lines valid on the line's day, whatever is remembered."""
    rng = random.Random(12)
    for _ in range(3):
        rules = tuple(
            replace(rule, event="sale_line", certified_line_id=rng.choice([None, None, 1, 2]), certified_line_name="L")
            for rule in random_rules(rng)
        )
        evaluator = LineEvaluator(RuleIndex(rules))
        spans = {
            member_id: tuple(
                Span(rng.choice([1, 2, 3]), start, start + timedelta(days=rng.randint(1, 40)))
                for start in (DAY - timedelta(days=rng.randint(0, 100)) for _ in range(rng.randint(0, 2)))
            )
            for member_id in range(1, 51)
        }
        assert evaluator.unknown_members(range(1, 51)) == set(range(1, 51))
        evaluator.know_certificates(range(1, 51), spans)
        assert evaluator.unknown_members(range(1, 51)) == set()
        for n in range(500):
            event = random_event(rng, n)
            actor = event.actor
            if actor is not None:
                held = frozenset(s.line_id for s in spans[actor.member_id] if s.covers(event.occurred_on))
                actor = Participant(actor.member_id, actor.role_code, actor.role_name, True, held)
            event = replace(
                event,
                kind="sale_line",
                participants=(actor,) if actor else (),
                quantity=Decimal(rng.choice([1, 2, 3])),
                amount=Decimal(rng.choice([50, 100, 250])),
            )
            if event.tier_id is None:
                event = replace(event, tier_name="", tier_multiplier=Decimal(1))
            tier = (event.tier_id, event.tier_name, event.tier_multiplier) if event.tier_id else None
            shares = evaluator.shares(
                (event.partner_id, event.partner_kind, event.region_id, event.pooled, tier),
                (actor.member_id, event.partner_id, "active", actor.role_code, actor.role_name) if actor else None,
                (event.product_id, event.line_id),
                event.occurred_on,
                event.quantity,
                event.amount,
            )
            assert list(shares) == [share_of(posting) for posting in evaluate(event, rules)]


def test_a_rule_index_with_certification_rules_gives_exactly_what_evaluating_all_rules_gives():
    rng = random.Random(3)
    rules = tuple(replace(rule, certified_line_id=rng.choice([None, 1, 2])) for rule in random_rules(rng))
    index = RuleIndex(rules)
    for n in range(400):
        event = random_event(rng, n)
        people = tuple(replace(p, certified_line_ids=frozenset(rng.sample([1, 2, 3], 1))) for p in event.participants)
        event = replace(event, participants=people)
        assert index.evaluate(event) == evaluate(event, rules)


def import_lines(world, lines, *, user=None):
    source = SalesSource.objects.get_or_create(
        program=world.program, code="dist", defaults={"name": "Distributor feed", "column_mapping": MAPPING}
    )[0]
    sku = world.softener.sku
    rows = [";".join([ext, world.partner.legal_id, rep, sku, qty, "100.00", f"INV-{ext}", day.isoformat(), ""])
            for ext, rep, qty, day in lines]  # fmt: skip
    upload = SimpleUploadedFile("sales.csv", "\n".join([HEADER, *rows]).encode())
    sales_import = imports.import_start(source=source, uploaded_file=upload, user=user or ProgramManagerFactory())
    return imports.import_run(sales_import.pk), source


@pytest.mark.usefixtures("private_media")
def test_a_sellout_import_pays_each_line_what_a_single_event_pays(world):
    certified, uncertified, renewed = world.installer(), world.installer(), world.installer()
    world.certify(certified)
    world.certify(renewed, issued_on=DAY - timedelta(days=400), expires_on=DAY - timedelta(days=5))
    world.certify(renewed, issued_on=DAY)
    lines = [
        ("L1", f"M{certified.pk}", "12", DAY),
        ("L2", f"M{uncertified.pk}", "12", DAY),
        ("L3", f"M{certified.pk}", "12", DAY - timedelta(days=31)),  # before the certificate
        ("L4", f"M{renewed.pk}", "3", DAY - timedelta(days=6)),  # the old certificate
        ("L5", f"M{renewed.pk}", "3", DAY - timedelta(days=2)),  # between the two: not certified
        ("L6", f"M{renewed.pk}", "3", DAY),  # the new one
    ]
    sales_import, source = import_lines(world, lines)
    assert sales_import.status == ImportStatus.DONE, sales_import.message
    assert dict(SaleLine.objects.values_list("external_id", "points")) == {
        "L1": 180, "L2": 120, "L3": 120, "L4": 45, "L5": 30, "L6": 45,
    }  # fmt: skip
    rules = world.rules()
    members = {f"M{m.pk}": m for m in (certified, uncertified, renewed)}
    for ext, rep, qty, day in lines:
        event = sale_event(
            program=world.program,
            source_key=f"sale:{source.pk}:{ext}",
            partner=world.partner,
            product=world.softener,
            quantity=Decimal(qty),
            amount=Decimal("100.00"),
            occurred_on=day,
            actor=members[rep],
            rules=rules,
        )
        expected = [[p.rule_id, p.member_id, p.points, p.explanation] for p in evaluate(event, rules)]
        assert SaleLine.objects.get(external_id=ext).posting_list == expected, ext
    assert (world.balance(certified), world.balance(uncertified), world.balance(renewed)) == (300, 120, 120)
    assert ledger_problems() == []


@pytest.mark.usefixtures("private_media")
@pytest.mark.parametrize("bonus", [True, False])
def test_a_sellout_import_looks_certificates_up_once_per_batch_and_not_at_all_without_such_rules(monkeypatch, bonus):
    world = Program(bonus=bonus)
    installers = [world.installer() for _ in range(6)]
    for installer in installers[::2]:
        world.certify(installer)
    monkeypatch.setattr(imports, "BATCH_SIZE", 4)
    lines = [(f"L{n}", f"M{installers[n % 6].pk}", "1", DAY) for n in range(12)]  # 3 batches
    with CaptureQueriesContext(connection) as queries:
        sales_import, _source = import_lines(world, lines, user=ProgramManagerFactory())
    assert sales_import.new_lines == 12
    looked_up = [q["sql"] for q in queries.captured_queries if 'FROM "loyalty_certificate"' in q["sql"]]
    # Batch 1 names 4 installers, batch 2 the last 2 (and 2 known), batch 3 only known ones.
    assert len(looked_up) == (2 if bonus else 0)
    assert sales_import.points_posted == (12 * 10 + 6 * 5 if bonus else 120)


# Simulation ---------------------------------------------------------------------------------------------------


def sale_line(world, member, *, day, quantity="10", ext):
    source = SalesSource.objects.get_or_create(program=world.program, code="feed", defaults={"name": "Feed"})[0]
    return SaleLine.objects.create(
        source=source,
        external_id=ext,
        partner=member.partner,
        member=member,
        product=world.softener,
        quantity=Decimal(quantity),
        amount=Decimal(100),
        invoice_number=f"INV-{ext}",
        invoice_date=day,
    )


def test_a_simulation_applies_the_certificates_valid_on_each_sales_date():
    world = Program(bonus=False)
    certified, uncertified = world.installer(), world.installer()
    world.certify(certified, issued_on=DAY - timedelta(days=5))
    sale_line(world, certified, day=DAY, ext="L1")  # certified: 100 + 50
    sale_line(world, certified, day=DAY - timedelta(days=6), ext="L2")  # the day before the certificate: 100
    sale_line(world, uncertified, day=DAY, ext="L3")  # 100
    bonus = RuleFactory(
        program=world.program,
        code="certified-softeners",
        name="Certified softener bonus",
        formula=Formula.MULTIPLIER,
        value=Decimal("1.5"),
        requires_certification=world.softeners,
        status=RuleStatus.DRAFT,
        effective_from=None,
    )
    simulation = rule_simulate(rule=bonus, start=DAY - timedelta(days=30), end=TODAY)
    assert (simulation.current.points, simulation.proposed.points) == (300, 350)
    assert simulation.proposed.members == {certified.pk, uncertified.pk}


def test_a_simulation_with_a_certification_rule_costs_the_same_queries_whatever_the_lines(
    django_assert_num_queries,
):
    world = Program()
    draft = rule_new_version(rule=world.bonus, value=Decimal(2))
    counts = []
    for extra in (2, 20):
        for n in range(extra):
            member = world.installer()
            world.certify(member)
            sale_line(world, member, day=DAY - timedelta(days=n % 5), ext=f"X{extra}-{n}")
        with CaptureQueriesContext(connection) as queries:
            rule_simulate(rule=draft, start=DAY - timedelta(days=30), end=TODAY)
        counts.append(len(queries.captured_queries))
        assert sum('FROM "loyalty_certificate"' in q["sql"] for q in queries.captured_queries) == 1
    assert counts[0] == counts[1]


# The rule admin -----------------------------------------------------------------------------------------------


def test_a_draft_can_require_a_certificate_and_the_list_and_page_say_so(pm_client, world):
    CourseFactory(program=world.program, product_line=world.filters, certification_months=12)
    data = form_data(world.program, code="certified-filters", name="Certified filters")
    data["requires_certification"] = world.filters.pk
    response = pm_client.post(reverse("admin:loyalty_incentiverule_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = IncentiveRule.objects.get(code="certified-filters")
    assert rule.requires_certification == world.filters
    listed = text(pm_client.get(reverse("admin:loyalty_incentiverule_changelist")))
    assert "Requires a certificate on Filters" in listed
    assert "Requires a certificate on Softeners" in listed
    published = text(pm_client.get(change_url(world.bonus)))
    assert "Requires a certificate on Softeners" in published
    draft_page = text(pm_client.get(change_url(rule)))
    assert "Certified members only" in draft_page


def test_a_rule_cannot_require_a_certificate_no_course_of_its_program_gives(pm_client, world):
    CourseFactory(product_line=world.filters, certification_months=12)  # another program's course
    data = form_data(world.program, code="certified-filters", name="Certified filters")
    data["requires_certification"] = world.filters.pk

    response = pm_client.post(reverse("admin:loyalty_incentiverule_add"), data)

    assert response.status_code == 200
    assert "add a certifying course first" in str(response.context["adminform"].form.errors)
    assert not IncentiveRule.objects.filter(code="certified-filters").exists()


@pytest.mark.parametrize("rows", [3, 30])
def test_the_rule_list_with_certificates_costs_the_same_few_queries(pm_client, django_assert_max_num_queries, rows):
    from tests.loyalty.test_admin_rules import CHANGELIST_QUERIES

    world = Program()
    for _ in range(rows):
        RuleFactory(program=world.program, requires_certification=world.softeners)
    with django_assert_max_num_queries(CHANGELIST_QUERIES):
        response = pm_client.get(reverse("admin:loyalty_incentiverule_changelist"))
    assert len(response.context["cl"].result_list) == rows + 2


def test_a_compiled_rule_without_a_certificate_pays_whoever_acts():
    rule = CompiledRule(id=1, code="r", version=1, name="R", event="sale_line", formula=Formula.FIXED, value=Decimal(5))
    assert rule.matches_certification(None) is True
    required = replace(rule, certified_line_id=7, certified_line_name="Softeners")
    assert required.matches_certification(None) is False
    assert required.matches_certification(Participant(1, "engineer", "Installer", True, frozenset({7}))) is True
