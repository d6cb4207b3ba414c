"""A sell-out import raises the running challenges' entries and the period standings set-based: per batch a fixed
number of statements, whatever the number of lines; each line counts for what it pays (one sale counts once)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.constants import ChallengeLevel, GoalMetric, RuleEvent
from loyalty.models import ChallengeEntry, PeriodStanding, PointsEntry
from loyalty.services import challenges, earning
from loyalty.services.sellout.match import MemberFacts, PartnerFacts, ProductFacts
from loyalty.services.sellout.parse import Line
from loyalty.services.sellout.run import import_run
from tests.loyalty.factories import ChallengeFactory, ChallengeGoalFactory, ProductFactory, RuleFactory
from tests.loyalty.test_imports import World
from tests.partners.factories import MemberFactory

SINCE = timezone.now() - timedelta(days=30)  # the imported lines are 10 days old (test_imports.DAY)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


def entry(challenge, **holder) -> ChallengeEntry:
    return ChallengeEntry.objects.get(challenge=challenge, **holder)


def test_an_import_raises_the_people_and_the_companies_entries_by_what_its_lines_sold(private_media):
    world = World()
    other_line = ProductFactory(sku="FI-1")
    people = ChallengeFactory(program=world.program, starts_at=SINCE)
    units = ChallengeGoalFactory(challenge=people, product_line=world.product.line, target=Decimal(20))
    amount = ChallengeGoalFactory(challenge=people, metric=GoalMetric.SALES_AMOUNT, target=Decimal(1000))
    company = ChallengeFactory(program=world.program, starts_at=SINCE, level=ChallengeLevel.COMPANY)
    company_units = ChallengeGoalFactory(challenge=company, target=Decimal(40))

    world.run(
        [
            world.line("L1", qty="10", amount="250.00"),
            world.line("L2", qty="5", amount="125.50", sku="FI-1"),
            world.line("L3", qty="3", amount="99.00", rep=""),  # the company's line: nobody's individually
            world.line("L4", qty="-2", returns="L1"),  # a return lowers no progress
        ]
    )

    assert other_line.line_id != world.product.line_id
    mine = entry(people, member=world.member)
    assert (mine.progress, mine.score) == ({str(units.pk): 10, str(amount.pk): 375.5}, Decimal("43.77"))
    theirs = entry(company, partner=world.partner, member=None)
    assert (theirs.progress, theirs.score, theirs.normalised) == (
        {str(company_units.pk): 18},
        Decimal("45.00"),
        Decimal("45.0000"),
    )


def test_a_line_another_report_of_the_sale_paid_counts_only_for_what_it_pays(private_media):
    world = World()
    goal = ChallengeGoalFactory(challenge__program=world.program, challenge__starts_at=SINCE, target=Decimal(100))
    world.run([world.line("L1", qty="10", invoice="INV-9")])
    other = world.source.__class__.objects.create(
        program=world.program, name="Second feed", code="second", column_mapping=world.source.column_mapping
    )
    world.source = other
    world.run([world.line("X1", qty="12", invoice="INV-9")])  # the same sale, reported with 2 more units

    assert entry(goal.challenge, member=world.member).progress == {str(goal.pk): 12}


def test_completing_in_an_import_pays_through_the_rule(private_media):
    world = World()
    RuleFactory(program=world.program, event=RuleEvent.CHALLENGE_COMPLETED, value=Decimal(1), name="Challenges",
                apply_tier_multiplier=False)  # fmt: skip
    ChallengeGoalFactory(
        challenge__program=world.program,
        challenge__starts_at=SINCE,
        challenge__completion_points=250,
        target=Decimal(10),
    )

    world.run([world.line("L1", qty="6"), world.line("L2", qty="6")])

    paid = PointsEntry.objects.filter(source_type="challenge").values_list("account__member", "available_delta")
    assert list(paid) == [(world.member.pk, 250)]
    assert PeriodStanding.objects.get(member=world.member).points == 12 * 10 + 250


def lines(count: int, members, product) -> list[Line]:
    """Matched lines as an import's writer has them, each selling 1 unit worth 10.00."""
    partner = members[0].partner
    partner_facts = PartnerFacts(partner.pk, partner.kind, partner.region_id, False, None)
    found = []
    for number in range(count):
        member = members[number % len(members)]
        line = Line(number + 2, f"L{number}", "", "", "", Decimal(1), Decimal(10), "", date.today(), "")
        line.paid_quantity = Decimal(1)
        line.partner_facts = partner_facts
        line.member_facts = MemberFacts(member.pk, partner.pk, member.status, member.role.code, member.role.name)
        line.product_facts = ProductFacts(product.pk, product.line_id)
        found.append(line)
    return found


def test_a_batch_costs_the_same_statements_for_3_lines_or_300(django_assert_num_queries):
    world = World()
    members = [world.member, *(MemberFactory(partner=world.partner) for _ in range(3))]
    ChallengeGoalFactory(challenge__program=world.program, challenge__starts_at=SINCE, target=Decimal(1000))
    ChallengeGoalFactory(
        challenge__program=world.program,
        challenge__starts_at=SINCE,
        challenge__level=ChallengeLevel.COMPANY,
        target=Decimal(1000),
    )
    few, many = lines(3, members, world.product), lines(300, members, world.product)

    with django_assert_num_queries(4):  # challenges, people's entries, companies' entries, the update
        challenges.record_sale_lines(program=world.program, lines=few, post_event=earning.post_event)
    with django_assert_num_queries(4):
        challenges.record_sale_lines(program=world.program, lines=many, post_event=earning.post_event)

    sold = {e.member_id: list(e.progress.values()) for e in ChallengeEntry.objects.all()}
    assert sold == {members[0].pk: [76], members[1].pk: [76], members[2].pk: [76], members[3].pk: [75], None: [303]}


def test_an_import_costs_as_many_queries_for_30_lines_as_for_3(private_media):
    world = World()
    ChallengeGoalFactory(challenge__program=world.program, challenge__starts_at=SINCE, target=Decimal(1000))
    ChallengeGoalFactory(
        challenge__program=world.program,
        challenge__starts_at=SINCE,
        challenge__level=ChallengeLevel.COMPANY,
        target=Decimal(1000),
    )
    world.run([world.line("first", qty="1", invoice="first")])  # the source has lines: each import checks for them
    counts = []
    for name, size in (("few", 3), ("many", 30)):
        data = [world.line(f"{name}{n}", qty="1", invoice=f"{name}-{n}") for n in range(size)]
        sales_import = world.upload(data)
        with CaptureQueriesContext(connection) as queries:
            import_run(sales_import.pk)
        counts.append(len(queries))

    assert counts[0] == counts[1]
    assert PeriodStanding.objects.get(member=world.member).points == 34 * 10
    assert [list(e.progress.values()) for e in ChallengeEntry.objects.order_by("member_id")] == [[34], [34]]
