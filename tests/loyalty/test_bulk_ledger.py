import json
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from loyalty.constants import CapPeriod, Formula
from loyalty.engine import CompiledRule, Event, Participant, evaluate
from loyalty.facts import sale_event
from loyalty.models import PointsAccount, PointsEntry, PointsLot, RuleUsage
from loyalty.selectors import ledger_problems
from loyalty.services import earning, ledger
from loyalty.services.bulk_ledger import BulkPoster, Reversal, RuleIndex, _json_string, _proportional, copy_text
from partners.constants import PayoutPolicy
from tests.partners.factories import MemberFactory, OwnerFactory, role

from .factories import ProductFactory, ProgramFactory, RuleFactory
from .test_ledger_concurrency import run_in_parallel

DAY = date.today() - timedelta(days=3)


# The candidate index: exactly engine.evaluate ---------------------------------------------------------------


def random_rules(rng: random.Random) -> tuple[CompiledRule, ...]:
    rules = []
    for n in range(40):
        formula = rng.choice(
            [Formula.PER_UNIT, Formula.PER_AMOUNT, Formula.FIXED, Formula.MULTIPLIER, Formula.PERCENT_BONUS]
        )
        start = DAY - timedelta(days=rng.randint(0, 60))
        rules.append(
            CompiledRule(
                id=n + 1,
                code=f"r{n}",
                version=1,
                name=f"Rule {n}",
                event=rng.choice(["sale_line", "sale_line", "sale_line", "training_passed"]),
                formula=formula,
                value=Decimal(rng.choice(["0.5", "1", "3", "10", "1.5", "20"])),
                roles=frozenset(rng.sample(["sales", "engineer", "owner"], rng.randint(0, 2))),
                partner_kinds=frozenset(rng.sample(["dealer", "installer"], rng.randint(0, 1))),
                tier_ids=frozenset(rng.sample([1, 2, 3], rng.randint(0, 2))),
                region_ids=frozenset(rng.sample([1, 2, 3, 4], rng.randint(0, 2))),
                line_ids=frozenset(rng.sample([1, 2, 3], rng.randint(0, 1))),
                product_ids=frozenset(rng.sample(range(1, 11), rng.randint(0, 2))),
                min_quantity=rng.choice([None, Decimal(2)]),
                min_amount=rng.choice([None, Decimal(100)]),
                valid_from=rng.choice([None, start]),
                valid_until=rng.choice([None, start + timedelta(days=30)]),
                priority=rng.randint(1, 300),
                exclusive=rng.random() < 0.1,
                shares=rng.choice([(), (("sales", Decimal(60)), ("engineer", Decimal(30)))]),
            )
        )
    return tuple(sorted(rules, key=lambda r: (-r.priority, r.code, -r.version)))


def random_event(rng: random.Random, n: int) -> Event:
    people = []
    if rng.random() < 0.8:
        people.append(Participant(rng.randint(1, 50), rng.choice(["sales", "engineer", "owner"]), "x", is_actor=True))
    if rng.random() < 0.2:
        people.append(Participant(rng.randint(51, 99), rng.choice(["sales", "engineer"]), "y"))
    product = rng.randint(1, 10)
    return Event(
        kind=rng.choice(["sale_line", "sale_line", "training_passed"]),
        source_key=f"sale:1:{n}",
        occurred_on=DAY - timedelta(days=rng.randint(0, 90)),
        partner_id=rng.randint(1, 5),
        partner_kind=rng.choice(["dealer", "installer", "distributor"]),
        region_id=rng.randint(1, 4),
        tier_id=rng.choice([None, 1, 2, 3]),
        tier_name="Gold",
        tier_multiplier=rng.choice([Decimal(1), Decimal("1.2")]),
        pooled=rng.random() < 0.2,
        participants=tuple(people),
        product_id=product,
        line_id=product % 3 + 1,
        quantity=Decimal(rng.randint(1, 12)),
        amount=Decimal(rng.randint(1, 50000)) / 100,
    )


def test_evaluating_over_the_candidate_rules_gives_exactly_what_evaluating_all_rules_gives():
    rng = random.Random(11)
    for _ in range(5):
        rules = random_rules(rng)
        index = RuleIndex(rules)
        for n in range(400):
            event = random_event(rng, n)
            assert index.evaluate(event) == evaluate(event, rules)
            assert [p.explanation for p in index.evaluate(event)] == [p.explanation for p in evaluate(event, rules)]


# Helpers --------------------------------------------------------------------------------------------------


def test_copy_text_escapes_what_copy_would_misread():
    assert copy_text("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert copy_text("plain") == "plain"


@pytest.mark.parametrize("value", ["sale:1:L1", 'quo"te', "back\\slash", "ümlaut", "tab\there"])
def test_json_strings_are_written_as_json_dumps_writes_them(value):
    assert _json_string(value) == json.dumps(value)


def test_partial_returns_add_up_to_exactly_the_points_earned():
    def back(points, returned, before, quantity):
        return _proportional(
            points,
            Reversal(
                key="r", original_key="o", returned=Decimal(returned), original_quantity=Decimal(quantity),
                returned_before=Decimal(before),
            ),
        )  # fmt: skip

    assert [back(10, 1, n, 3) for n in range(3)] == [3, 4, 3]
    assert [back(5, 1, n, 2) for n in range(2)] == [3, 2]
    assert back(100, 4, 0, 10) == 40


# Posting ------------------------------------------------------------------------------------------------------


def event_for(program, member, product, key, quantity=12, amount="1000", day=DAY):
    return sale_event(
        program=program,
        source_key=key,
        partner=member.partner,
        product=product,
        quantity=Decimal(quantity),
        amount=Decimal(amount),
        occurred_on=day,
        actor=member,
    )


def post(program, events, reversals=()):
    with transaction.atomic():
        return BulkPoster(program).post(events, reversals)


def balances(program):
    return sorted(
        PointsAccount.objects.filter(program=program).values_list(
            "member_id", "partner_id", "available", "lifetime_earned"
        )
    )


@pytest.mark.django_db
def test_bulk_posting_writes_what_post_event_writes():
    program = ProgramFactory()
    RuleFactory(program=program, name="Split", shares=[{"role": "sales", "percent": 60}])
    RuleFactory(program=program, name="Bonus", formula=Formula.PER_AMOUNT, value=Decimal("0.1"))
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner, role=role("sales"))
    product = ProductFactory()
    earning.post_event(program=program, event=event_for(program, rep, product, "sale:9:A"))
    result = post(program, [event_for(program, rep, product, "sale:9:B")])

    def written(source_key):
        rows = PointsEntry.objects.filter(idempotency_key__startswith=source_key).order_by("idempotency_key")
        return [
            (e.idempotency_key.removeprefix(source_key), e.kind, e.account_id, e.available_delta, e.explanation,
             {**e.details, "source": ""}, e.source_type, e.fingerprint == ledger._fingerprint(
                 "earn", e.account_id, e.available_delta, "sale_line", e.source_id, None),
             [(lot.points, lot.remaining, lot.expires_at == e.expires_at) for lot in e.lots.all()])
            for e in rows
        ]  # fmt: skip

    assert written("sale:9:B") == written("sale:9:A")
    assert len(written("sale:9:B")) == 3  # 60 % to the rep and the rest to the company, and the bonus
    assert (result.entries, result.points_earned) == (3, 220)
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_pooled_partner_gets_its_staffs_points_in_the_company_account():
    program = ProgramFactory()
    RuleFactory(program=program)
    rep = MemberFactory()
    rep.partner.payout_policy = PayoutPolicy.POOLED
    rep.partner.save()
    post(program, [event_for(program, rep, ProductFactory(), "sale:1:A")])
    assert balances(program) == [(None, rep.partner_id, 120, 120)]


@pytest.mark.django_db
def test_bulk_and_per_event_paths_never_pay_the_same_key_twice():
    program = ProgramFactory()
    RuleFactory(program=program)
    member, product = MemberFactory(), ProductFactory()
    post(program, [event_for(program, member, product, "sale:1:A")])
    [again] = earning.post_event(program=program, event=event_for(program, member, product, "sale:1:A"))
    assert again.pk == PointsEntry.objects.get().pk
    earning.post_event(program=program, event=event_for(program, member, product, "sale:1:B"))
    result = post(
        program, [event_for(program, member, product, "sale:1:B"), event_for(program, member, product, "sale:1:C")]
    )
    assert (result.entries, PointsEntry.objects.count()) == (1, 3)
    assert balances(program) == [(member.pk, None, 360, 360)]
    assert ledger_problems() == []


@pytest.mark.django_db
def test_caps_and_budgets_are_applied_in_order_and_recorded_like_post_event():
    program = ProgramFactory()
    capped = RuleFactory(program=program, cap_points=200, cap_period=CapPeriod.MONTH)
    budget = RuleFactory(program=program, formula=Formula.FIXED, value=Decimal(70), budget_points=150)
    member, other, product = MemberFactory(), MemberFactory(), ProductFactory()
    result = post(
        program, [event_for(program, m, product, f"sale:1:{n}") for n, m in enumerate([member, member, other])]
    )
    assert result.postings_limited == 2  # the second sale hits the cap, the third the budget
    assert result.earned_by_key == {"sale:1:0": 190, "sale:1:1": 80 + 70, "sale:1:2": 120 + 10}
    capped_paid = sorted(
        PointsEntry.objects.filter(details__rule_id=capped.pk).values_list("idempotency_key", "available_delta")
    )
    assert capped_paid == [
        (f"sale:1:0:r{capped.pk}:m{member.pk}", 120),
        (f"sale:1:1:r{capped.pk}:m{member.pk}", 80),
        (f"sale:1:2:r{capped.pk}:m{other.pk}", 120),
    ]
    budget.refresh_from_db()
    assert budget.budget_used == 150
    assert RuleUsage.objects.get(rule=capped, member=member).points == 200
    limited = PointsEntry.objects.get(idempotency_key=f"sale:1:1:r{capped.pk}:m{member.pk}")
    assert limited.explanation.endswith("limited to 80 by the rule's cap or budget")
    assert ledger_problems() == []


@pytest.mark.django_db
def test_reversals_reference_the_original_earns_and_report_what_was_already_spent():
    program = ProgramFactory()
    rule = RuleFactory(program=program, budget_points=10_000)
    member, product = MemberFactory(), ProductFactory()
    post(program, [event_for(program, member, product, "sale:1:A", quantity=10)])  # 100 points
    account = PointsAccount.objects.get(program=program, member=member)
    ledger.spend(account=account, points=90, key="shop")
    result = post(
        program,
        [],
        [Reversal(key="sale:1:R", original_key="sale:1:A", returned=Decimal(5), original_quantity=Decimal(10), ref=7)],
    )
    [reversal] = PointsEntry.objects.filter(kind="reverse")
    assert (reversal.reverses.idempotency_key, reversal.available_delta) == (f"sale:1:A:r{rule.pk}:m{member.pk}", -10)
    assert reversal.idempotency_key == f"sale:1:R:return:{reversal.reverses_id}"
    assert reversal.fingerprint == ledger._fingerprint("reverse", reversal.reverses_id, 10)
    [shortfall] = result.shortfalls
    assert (shortfall.ref, shortfall.wanted, shortfall.taken, shortfall.missing) == (7, 50, 10, 40)
    rule.refresh_from_db()
    assert rule.budget_used == 90  # the 10 taken back are given back to the budget
    assert PointsLot.objects.get(entry=reversal.reverses).remaining == 0
    assert ledger_problems() == []


@pytest.mark.django_db
def test_post_refuses_to_run_outside_a_transaction(django_db_blocker):
    program = ProgramFactory()
    poster = BulkPoster(program, rules=())
    from django.db import connection

    atomic = connection.in_atomic_block
    connection.in_atomic_block = False
    try:
        with pytest.raises(RuntimeError, match="inside a transaction"):
            poster.post([])
    finally:
        connection.in_atomic_block = atomic


@pytest.mark.django_db(transaction=True)
def test_a_budget_is_exact_when_bulk_batches_and_single_events_post_at_once():
    program = ProgramFactory()
    rule = RuleFactory(program=program, budget_points=2000)
    members = [MemberFactory() for _ in range(6)]
    product = ProductFactory()

    def work(i):
        if i % 2:
            with transaction.atomic():
                events = [event_for(program, members[i], product, f"sale:{i}:{n}") for n in range(5)]
                return BulkPoster(program).post(events).points_earned
        entries = []
        for n in range(5):
            entries += earning.post_event(
                program=program, event=event_for(program, members[i], product, f"sale:{i}:{n}")
            )
        return sum(e.available_delta for e in entries)

    outcomes = run_in_parallel(6, work)
    rule.refresh_from_db()
    assert rule.budget_used == 2000
    assert sum(points * count for points, count in outcomes.items()) == 2000
    assert sum(PointsAccount.objects.filter(program=program).values_list("available", flat=True)) == 2000
    assert ledger_problems() == []
