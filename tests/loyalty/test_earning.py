from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import RuleStatus
from loyalty.engine.facts import sale_event
from loyalty.engine.limits import MemoryLimiter, limit
from loyalty.engine.rules import evaluate
from loyalty.models import IncentiveRule, PartnerTier, PointsAccount, PointsEntry, RuleUsage
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import earning
from loyalty.services.rules import rule_new_version, rule_problems, rule_publish
from partners.constants import PayoutPolicy
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory, TierFactory
from tests.loyalty.test_ledger_concurrency import run_in_parallel
from tests.partners.factories import MemberFactory, OwnerFactory, ProgramManagerFactory, role

TODAY = date.today()


def sale(program, member, product, key="sale:1", quantity=12, amount="1000", colleagues=(), **kwargs):
    return sale_event(
        program=program,
        source_key=key,
        partner=member.partner,
        product=product,
        quantity=Decimal(quantity),
        amount=Decimal(amount),
        occurred_on=kwargs.pop("occurred_on", TODAY),
        actor=member,
        colleagues=list(colleagues),
        **kwargs,
    )


def available(program, *, member=None, partner=None) -> int:
    account = PointsAccount.objects.filter(program=program, member=member, partner=partner).first()
    return account.available if account else 0


@pytest.mark.django_db
def test_posting_a_sale_pays_the_member_with_an_explanation_and_posts_once():
    program = ProgramFactory()
    rule = RuleFactory(program=program, name="Softeners", value=Decimal(10))
    member = MemberFactory()
    product = ProductFactory()
    [entry] = earning.post_event(program=program, event=sale(program, member, product))
    again = earning.post_event(program=program, event=sale(program, member, product))
    assert [e.pk for e in again] == [entry.pk]
    assert entry.explanation == "Softeners v1: 12 units × 10 pts = 120"
    assert entry.details["rule_id"] == rule.pk
    assert available(program, member=member) == 120


@pytest.mark.django_db
def test_tier_multiplier_from_the_partners_tier():
    program = ProgramFactory()
    RuleFactory(program=program)
    member = MemberFactory()
    gold = TierFactory(program=program, name="Gold", multiplier=Decimal("1.20"))
    PartnerTier.objects.create(program=program, partner=member.partner, tier=gold, since=TODAY, held_until=TODAY)
    [entry] = earning.post_event(program=program, event=sale(program, member, ProductFactory()))
    assert entry.available_delta == 144
    assert "× Gold 1.2 = 144" in entry.explanation


@pytest.mark.django_db
def test_split_pays_each_role_and_the_company_and_pooling_moves_shares_to_the_company():
    program = ProgramFactory()
    RuleFactory(program=program, shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 30}])
    owner = OwnerFactory()
    rep = MemberFactory(partner=owner.partner, role=role("sales"))
    installer = MemberFactory(partner=owner.partner, role=role("engineer"))
    product = ProductFactory()
    earning.post_event(program=program, event=sale(program, rep, product, colleagues=[installer]))
    assert (available(program, member=rep), available(program, member=installer)) == (72, 36)
    assert available(program, partner=owner.partner) == 12

    owner.partner.payout_policy = PayoutPolicy.POOLED
    owner.partner.save()
    rep.partner.refresh_from_db()
    earning.post_event(program=program, event=sale(program, rep, product, key="sale:2", colleagues=[installer]))
    assert (available(program, member=rep), available(program, member=installer)) == (72, 36)
    assert available(program, partner=owner.partner) == 12 + 120
    assert ledger_problems() == []


@pytest.mark.django_db
def test_cap_per_member_per_month_and_budget_are_enforced_and_explained():
    program = ProgramFactory()
    rule = RuleFactory(program=program, cap_points=200, budget_points=300)
    first, second = MemberFactory(), MemberFactory()
    product = ProductFactory()
    paid = [
        sum(e.available_delta for e in earning.post_event(program=program, event=sale(program, m, product, key=k)))
        for m, k in [(first, "a"), (first, "b"), (first, "c"), (second, "d"), (second, "e")]
    ]
    assert paid == [120, 80, 0, 100, 0]
    rule.refresh_from_db()
    assert rule.budget_used == 300
    assert PointsEntry.objects.get(available_delta=80).explanation.endswith("limited to 80 by the rule's cap or budget")
    assert RuleUsage.objects.get(rule=rule, member=first).points == 200


@pytest.mark.django_db(transaction=True)
def test_budget_is_exact_when_many_sales_post_at_once():
    program = ProgramFactory()
    rule = RuleFactory(program=program, budget_points=1000)
    members = [MemberFactory() for _ in range(12)]
    product = ProductFactory()

    def post(i):
        entries = earning.post_event(program=program, event=sale(program, members[i], product, key=f"s{i}"))
        return sum(e.available_delta for e in entries)

    outcomes = run_in_parallel(12, post)
    rule.refresh_from_db()
    assert rule.budget_used == 1000
    assert sum(points * count for points, count in outcomes.items()) == 1000
    assert outcomes[120] == 8 and outcomes[40] == 1
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_cap_is_exact_when_one_member_posts_many_sales_at_once():
    program = ProgramFactory()
    RuleFactory(program=program, cap_points=500)
    member = MemberFactory()
    product = ProductFactory()
    outcomes = run_in_parallel(
        10,
        lambda i: sum(
            e.available_delta
            for e in earning.post_event(program=program, event=sale(program, member, product, key=f"s{i}"))
        ),
    )
    assert outcomes == Counter({120: 4, 20: 1, 0: 5})
    assert available(program, member=member) == 500


@pytest.mark.django_db
def test_a_return_takes_back_exactly_what_the_line_earned():
    program = ProgramFactory()
    RuleFactory(program=program, shares=[{"role": "sales", "percent": 50}], budget_points=10_000)
    member = MemberFactory(role=role("sales"))
    earning.post_event(program=program, event=sale(program, member, ProductFactory(), key="inv-9:line-1"))
    assert (available(program, member=member), available(program, partner=member.partner)) == (60, 60)

    earning.reverse_source(source_key="inv-9:line-1", fraction=Decimal("0.5"), key="credit-3", explanation="Return")
    earning.reverse_source(source_key="inv-9:line-1", fraction=Decimal("0.5"), key="credit-3", explanation="Return")
    assert (available(program, member=member), available(program, partner=member.partner)) == (30, 30)
    assert IncentiveRule.objects.get().budget_used == 60
    with pytest.raises(ApplicationError, match="between 0 and 100"):
        earning.reverse_source(source_key="inv-9:line-1", fraction=Decimal("1.5"), key="x", explanation="x")
    assert ledger_problems() == []


@pytest.mark.django_db
def test_versioning_a_new_version_starts_where_the_old_one_ends():
    program = ProgramFactory()
    manager = ProgramManagerFactory()
    v1 = RuleFactory(program=program, code="softeners", status=RuleStatus.DRAFT, effective_from=None)
    rule_publish(rule=v1, actor=manager, effective_from=timezone.now() - timedelta(days=30))
    v2 = rule_new_version(rule=v1, value=Decimal(20))
    assert (v2.version, v2.status, v2.code) == (2, RuleStatus.DRAFT, "softeners")
    cut_over = timezone.now() - timedelta(days=10)
    rule_publish(rule=v2, actor=manager, effective_from=cut_over)
    v1.refresh_from_db()
    assert v1.effective_until == cut_over
    assert v1.value == Decimal(10)  # the version that paid is untouched

    member, product = MemberFactory(), ProductFactory()
    old = earning.post_event(
        program=program, event=sale(program, member, product, key="old", occurred_on=TODAY - timedelta(days=20))
    )
    new = earning.post_event(program=program, event=sale(program, member, product, key="new"))
    assert [(e.available_delta, e.details["version"]) for e in old + new] == [(120, 1), (240, 2)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"value": Decimal(0)}, "greater than zero"),
        ({"formula": "multiplier", "value": Decimal("0.5")}, "multiplier must be greater than 1"),
        ({"valid_from": date(2026, 5, 1), "valid_until": date(2026, 4, 1)}, "ends before it starts"),
        ({"shares": [{"role": "sales", "percent": 80}, {"role": "engineer", "percent": 30}]}, "more than 100"),
        ({"shares": [{"role": "astronaut", "percent": 10}]}, "Unknown role"),
        ({"shares": [{"who": "sales"}]}, "must look like"),
        ({"formula": "percent_bonus", "exclusive": True}, "cannot also be exclusive"),
        ({"min_quantity": Decimal(-1)}, "cannot be negative"),
    ],
)
def test_contradictory_rules_cannot_be_published(changes, problem):
    rule = RuleFactory.build(program=ProgramFactory(), status=RuleStatus.DRAFT, **changes)
    assert any(problem in text for text in rule_problems(rule))
    if changes.get("value", 1) > 0:
        rule.save()
        with pytest.raises(ApplicationError, match=problem):
            rule_publish(rule=rule, actor=ProgramManagerFactory())
        rule.refresh_from_db()
        assert rule.status == RuleStatus.DRAFT


@pytest.mark.django_db
def test_simulation_with_the_memory_limiter_pays_what_posting_pays():
    program = ProgramFactory()
    RuleFactory(program=program, cap_points=300, shares=[{"role": "sales", "percent": 70}])
    RuleFactory(program=program, code="march", formula="multiplier", value=Decimal(2), priority=10)
    members = [MemberFactory(role=role("sales")) for _ in range(3)]
    product = ProductFactory()
    events = [sale(program, members[i % 3], product, key=f"s{i}", quantity=5 + i) for i in range(9)]
    rules = earning.published_rules(program)
    limiter = MemoryLimiter()
    simulated = sum(limit(p, e.occurred_on, limiter) for e in events for p in evaluate(e, rules))
    for e in events:
        earning.post_event(program=program, event=e, rules=rules)
    posted = sum(PointsEntry.objects.values_list("available_delta", flat=True))
    assert simulated == posted > 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM loyalty_pointsentry")
        assert cursor.fetchone()[0] == PointsEntry.objects.count()
