"""Partner health (analytics.health): scores and reasons on hand-made partners, what counts as a member's activity, the
components that do not apply, the query count whatever the number of partners, and the partners at risk each viewer
is shown."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.health import at_risk_partners, health_refresh, health_scores, same_day_last_year
from analytics.models import PartnerHealth, PointsDay, SalesDay
from communications.constants import Channel, DeliveryStatus
from loyalty.constants import AttemptStatus
from loyalty.models import QuizAttempt
from loyalty.services import ledger
from partners.constants import MemberStatus, PartnerStatus
from tests.analytics.helpers import clock, local, submit
from tests.communications.factories import DeliveryFactory
from tests.loyalty.factories import ModuleFactory, ProductFactory, ProgramFactory
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
)

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
THIS_YEAR = TODAY.replace(month=1, day=1)
LAST_YEAR = date(TODAY.year - 1, 1, 1)


def sales(program, partner, *, this_year: str = "0", last_year: str = "0") -> None:
    """Sales roll-up rows: `this_year` on 1 January, `last_year` on 1 January of last year."""
    for day, amount in ((THIS_YEAR, this_year), (LAST_YEAR, last_year)):
        if Decimal(amount):
            SalesDay.objects.create(
                day=day,
                program_id=program.pk,
                partner_id=partner.pk,
                role_id=0,
                region_id=partner.region_id,
                product_line_id=1,
                amount=Decimal(amount),
                units=1,
                lines=1,
            )


def points(program, partner, *, issued: int, redeemed: int = 0, day: date = TODAY) -> None:
    PointsDay.objects.create(
        day=day,
        program_id=program.pk,
        partner_id=partner.pk,
        role_id=0,
        region_id=partner.region_id,
        product_line_id=0,
        issued=issued,
        redeemed=redeemed,
        entries=1,
    )


def team(partner, size: int) -> list:
    return MemberFactory.create_batch(size, partner=partner)


def earned_now(program, member, key: str) -> None:
    ledger.earn(account=ledger.member_account(program=program, member=member), points=10, key=key)


def passed_quiz(member, module, *, days_ago: int = 0) -> QuizAttempt:
    at = timezone.now() - timedelta(days=days_ago)
    return QuizAttempt.objects.create(
        member=member,
        module=module,
        number=1,
        status=AttemptStatus.PASSED,
        percent=100,
        correct=5,
        total=5,
        started_at=at,
        deadline=at,
        submitted_at=at,
    )


# Scores and reasons --------------------------------------------------------------------------------------------------


def test_falling_sales_and_a_quiet_team_put_a_partner_at_risk_with_the_reasons_in_words():
    program = ProgramFactory()
    partner = PartnerFactory(name="Falling Ltd")
    people = team(partner, 9)
    for n, member in enumerate(people[:2]):
        earned_now(program, member, key=f"recent-{n}")
    with clock(local(TODAY - timedelta(days=200))):
        earned_now(program, people[2], key="long-ago")
    sales(program, partner, this_year="6500", last_year="10000")
    points(program, partner, issued=1000, redeemed=0)

    health = health_scores(program=program, partner_ids=[partner.pk], today=TODAY)[partner.pk]

    # sales −35 %: (−0.35 + 0.5) / 0.5 of 40 = 12; 2 of 9 active: 0.222 / 0.5 of 30 = 13; nothing redeemed: 0 of 10;
    # training and messages not offered: not scored. 25 of 80 = 31.
    assert [(c.key, c.points, c.max_points, c.applies) for c in health.components] == [
        ("sales", 12, 40, True),
        ("activity", 13, 30, True),
        ("training", 0, 10, False),
        ("messages", 0, 10, False),
        ("redemption", 0, 10, True),
    ]
    assert health.score == 31
    assert health.at_risk
    assert health.reasons == [
        "sales \u221235 % vs last year",
        "2 of 9 members active in the last 90 days",
        "nothing redeemed in the last 12 months",
    ]
    assert health.summary == "sales \u221235 % vs last year; 2 of 9 members active in the last 90 days; " + (
        "nothing redeemed in the last 12 months"
    )


def test_a_partner_doing_well_on_every_count_scores_100_and_all_well():
    program = ProgramFactory()
    module = ModuleFactory(course__program=program)
    partner = PartnerFactory()
    people = team(partner, 4)
    for n, member in enumerate(people[:3]):
        earned_now(program, member, key=f"active-{n}")
    passed_quiz(people[0], module, days_ago=30)
    passed_quiz(people[1], module, days_ago=200)
    for n in range(10):
        DeliveryFactory(
            member=people[n % 4],
            channel=Channel.INBOX if n % 2 else Channel.EMAIL,
            status=DeliveryStatus.DELIVERED,
            opened_at=timezone.now() if n < 4 else None,
        )
    sales(program, partner, this_year="11200", last_year="10000")
    points(program, partner, issued=1000, redeemed=300)

    health = health_scores(program=program, partner_ids=[partner.pk], today=TODAY)[partner.pk]

    assert health.score == 100
    assert not health.at_risk
    assert health.reasons == []
    assert health.summary == "all well"
    assert [c.reason for c in health.components] == [
        "sales +12 % vs last year",
        "3 of 4 members active in the last 90 days",
        "2 of 4 members passed training in the last 12 months",
        "40 % of 10 messages opened in the last 90 days",
        "30 % of the points earned in the last 12 months redeemed",
    ]


def test_messages_not_received_and_sms_are_not_counted_and_a_low_open_rate_costs_points():
    program = ProgramFactory()
    partner = PartnerFactory()
    (member,) = team(partner, 1)
    earned_now(program, member, key="active")
    DeliveryFactory(member=member, status=DeliveryStatus.OPENED, opened_at=timezone.now())
    for _ in range(4):
        DeliveryFactory(member=member, status=DeliveryStatus.SENT)
    DeliveryFactory(member=member, status=DeliveryStatus.BOUNCED)  # never arrived
    DeliveryFactory(member=member, channel=Channel.SMS, status=DeliveryStatus.DELIVERED)  # no open is ever reported
    DeliveryFactory(member=member, status=DeliveryStatus.SENT, queued_at=timezone.now() - timedelta(days=120))
    sales(program, partner, this_year="100", last_year="100")

    health = health_scores(program=program, partner_ids=[partner.pk], today=TODAY)[partner.pk]

    messages = health.component("messages")
    assert (messages.points, messages.reason) == (5, "20 % of 5 messages opened in the last 90 days")
    # 40 + 30 + 5 of 80
    assert health.score == 94
    assert health.reasons == ["20 % of 5 messages opened in the last 90 days"]


@pytest.mark.parametrize(
    ("this_year", "last_year", "points", "reason"),
    [
        ("500", "0", 40, "sales this year, none last year"),
        ("0", "0", 0, "no sales through the program this year or last"),
        ("0", "1000", 0, "no sales this year (€1,000.00 by this day last year)"),
        ("4000", "10000", 0, "sales \u221260 % vs last year"),
        ("10000", "10000", 40, "sales 0 % vs last year"),
    ],
)
def test_sales_are_scored_against_the_same_days_of_last_year(this_year, last_year, points, reason):
    program = ProgramFactory(money_currency="EUR")
    partner = PartnerFactory()
    sales(program, partner, this_year=this_year, last_year=last_year)

    component = health_scores(program=program, partner_ids=[partner.pk], today=TODAY)[partner.pk].component("sales")

    assert (component.points, component.reason) == (points, reason)


def test_sales_after_this_day_last_year_and_of_other_programs_are_not_compared():
    today = date(2026, 6, 15)
    program, other = ProgramFactory(), ProgramFactory()
    partner = PartnerFactory()
    for day, amount, of in (
        (date(2026, 3, 1), "900", program),
        (date(2025, 6, 15), "1000", program),  # the same day last year: counted
        (date(2025, 6, 16), "5000", program),  # later last year: not yet comparable
        (date(2025, 3, 1), "99", other),
    ):
        SalesDay.objects.create(
            day=day, program_id=of.pk, partner_id=partner.pk, role_id=0, region_id=1, product_line_id=1, amount=amount
        )

    facts = health_scores(program=program, partner_ids=[partner.pk], today=today)[partner.pk].facts

    assert (facts.sales_this_year, facts.sales_last_year, facts.sales_change_percent) == (900, 1000, -10)
    assert same_day_last_year(date(2028, 2, 29)) == date(2027, 2, 28)


def test_a_member_is_active_who_earned_spent_claimed_or_took_a_quiz_in_90_days_not_one_whose_points_expired():
    program = ProgramFactory(expiry_months=3)
    module = ModuleFactory(course__program=program)
    partner = PartnerFactory()
    claimer, learner, spender, expired, idle, long_ago_learner = team(partner, 6)
    MemberFactory(partner=partner, status=MemberStatus.PENDING_APPROVAL)  # not a member of the team yet
    submit(claimer, program, [(ProductFactory(), 1, 100)], number="INV-1", invoice_date=TODAY)
    passed_quiz(learner, module, days_ago=10)
    passed_quiz(long_ago_learner, module, days_ago=120)
    with clock(local(TODAY - timedelta(days=100))):
        earned_now(program, expired, key="expired")
    account = ledger.member_account(program=program, member=spender)
    ledger.adjust(account=account, points=10, key="gift", reason="Welcome", created_by=ProgramManagerFactory())
    ledger.spend(account=account, points=5, key="spent")
    assert ledger.expire_account(account=ledger.member_account(program=program, member=expired)) is not None

    facts = health_scores(program=program, partner_ids=[partner.pk], today=TODAY)[partner.pk].facts

    assert (facts.members, facts.active_members, facts.trained_members) == (6, 3, 2)


# Many partners, few queries ------------------------------------------------------------------------------------------


def busy_partners(program, count: int) -> list:
    ModuleFactory(course__program=program)
    partners = PartnerFactory.create_batch(count)
    for n, partner in enumerate(partners):
        people = team(partner, 2)
        earned_now(program, people[0], key=f"p{n}")
        DeliveryFactory(member=people[1], status=DeliveryStatus.DELIVERED)
        sales(program, partner, this_year="100", last_year="200")
        points(program, partner, issued=100, redeemed=10)
    return partners


@pytest.mark.parametrize("count", [3, 12])
def test_health_computed_now_takes_six_queries_whatever_the_number_of_partners(count, django_assert_num_queries):
    program = ProgramFactory()
    partners = busy_partners(program, count)

    # the stored scores (none); training offered?; sales, points, members and messages of all partners
    with django_assert_num_queries(6):
        scores = health_scores(program=program, partner_ids=[p.pk for p in partners], today=TODAY)

    assert len(scores) == count
    assert {health.facts.active_members for health in scores.values()} == {1}


@pytest.mark.parametrize("count", [3, 12])
def test_stored_health_is_read_in_one_query_and_equals_health_computed_now(count, django_assert_num_queries):
    program = ProgramFactory()
    partners = busy_partners(program, count)
    ids = [p.pk for p in partners]
    computed = health_scores(program=program, partner_ids=ids, today=TODAY)

    assert health_refresh(program=program, today=TODAY) == count
    with django_assert_num_queries(1):
        stored = health_scores(program=program, partner_ids=ids, today=TODAY)

    assert stored == computed
    assert {row.score for row in PartnerHealth.objects.filter(program_id=program.pk)} == {
        health.score for health in computed.values()
    }


def test_a_partner_without_a_stored_score_for_the_day_is_scored_now():
    program = ProgramFactory()
    old, new = busy_partners(program, 2)
    health_refresh(program=program, today=TODAY - timedelta(days=1))  # yesterday: today's points not counted yet
    PartnerHealth.objects.filter(partner_id=old.pk).update(day=TODAY)  # as if stored today

    scores = health_scores(program=program, partner_ids=[old.pk, new.pk], today=TODAY)

    assert scores[old.pk].facts.points_earned == 0  # the stored row
    assert scores[new.pk].facts.points_earned == 100  # no row for today: computed now


def test_refreshing_twice_replaces_the_rows_and_follows_the_facts():
    program = ProgramFactory()
    (partner,) = busy_partners(program, 1)
    health_refresh(program=program, today=TODAY)
    before = PartnerHealth.objects.get(program_id=program.pk, partner_id=partner.pk)
    SalesDay.objects.filter(partner_id=partner.pk, day=THIS_YEAR).update(amount=Decimal(1000))

    health_refresh(program=program, today=TODAY)

    after = PartnerHealth.objects.get(program_id=program.pk, partner_id=partner.pk)
    assert (before.sales_this_year, after.sales_this_year) == (Decimal(100), Decimal(1000))
    assert after.score > before.score
    assert PartnerHealth.objects.filter(program_id=program.pk).count() == 1


def test_no_partners_no_queries(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert health_scores(program=ProgramFactory.build(pk=1), partner_ids=[], today=TODAY) == {}


# At risk, per viewer -------------------------------------------------------------------------------------------------


@pytest.fixture
def portfolios():
    """Two account managers' partners: Ann's Weak (no sales) and Fine, Bob's Weaker; a prospect without sales."""
    program = ProgramFactory()
    ann, bob = AccountManagerFactory(), AccountManagerFactory()
    weak = PartnerFactory(name="Weak Ltd", account_manager=ann)
    fine = PartnerFactory(name="Fine Ltd", account_manager=ann)
    weaker = PartnerFactory(name="Weaker Ltd", account_manager=bob)
    prospect = PartnerFactory(name="Prospect Ltd", account_manager=ann, status=PartnerStatus.PROSPECT)
    for partner in (weak, fine, weaker, prospect):
        team(partner, 2)
    earned_now(program, weak.members.first(), key="weak")  # 1 of 2 active
    for member in fine.members.all():
        earned_now(program, member, key=f"fine-{member.pk}")
    sales(program, fine, this_year="100", last_year="100")
    return program, ann, bob, weak, fine, weaker


def test_an_account_manager_sees_only_their_own_partners_at_risk(portfolios):
    program, ann, bob, weak, fine, weaker = portfolios

    at_risk = at_risk_partners(program=program, viewer=ann, today=TODAY)

    assert [(h.partner.name, h.score) for h in at_risk] == [("Weak Ltd", 43)]  # 0 + 30 of 70; no prospect
    assert at_risk[0].reasons == ["no sales through the program this year or last"]
    assert [h.partner.name for h in at_risk_partners(program=program, viewer=bob, today=TODAY)] == ["Weaker Ltd"]


def test_a_program_manager_sees_every_partner_at_risk_weakest_first_up_to_the_limit(portfolios):
    program, *_ = portfolios
    manager = ProgramManagerFactory()

    assert [h.partner.name for h in at_risk_partners(program=program, viewer=manager, today=TODAY)] == [
        "Weaker Ltd",
        "Weak Ltd",
    ]
    assert [h.partner.name for h in at_risk_partners(program=program, viewer=manager, today=TODAY, limit=1)] == [
        "Weaker Ltd"
    ]


def test_owners_and_members_see_no_partners_at_risk(portfolios, django_assert_max_num_queries):
    program, ann, bob, weak, *_ = portfolios
    owner = OwnerFactory(partner=weak)

    assert at_risk_partners(program=program, viewer=owner.user, today=TODAY) == []
    assert at_risk_partners(program=program, viewer=weak.members.first().user, today=TODAY) == []


def test_partners_at_risk_come_from_the_stored_scores_in_four_queries(portfolios, django_assert_num_queries):
    program, ann, bob, weak, fine, weaker = portfolios
    manager = ProgramManagerFactory()
    computed = [(h.partner.name, h.score) for h in at_risk_partners(program=program, viewer=manager, today=TODAY)]
    health_refresh(program=program, today=TODAY)

    # the weakest stored, the partners without a stored score (none), their stored scores
    with django_assert_num_queries(3):
        stored = at_risk_partners(program=program, viewer=manager, today=TODAY)

    assert [(h.partner.name, h.score) for h in stored] == computed
    assert [h.partner.name for h in at_risk_partners(program=program, viewer=ann, today=TODAY)] == ["Weak Ltd"]


def test_a_stored_score_counts_until_the_next_refresh_and_a_new_partner_is_scored_at_once(portfolios):
    program, ann, bob, weak, fine, weaker = portfolios
    health_refresh(program=program, today=TODAY)
    sales(program, weak, this_year="100", last_year="100")  # Weak recovers after the task ran
    newcomer = PartnerFactory(name="Newcomer Ltd", account_manager=ann)
    team(newcomer, 1)

    assert [h.partner.name for h in at_risk_partners(program=program, viewer=ann, today=TODAY)] == [
        "Newcomer Ltd",
        "Weak Ltd",
    ]
    health_refresh(program=program, today=TODAY)
    assert [h.partner.name for h in at_risk_partners(program=program, viewer=ann, today=TODAY)] == ["Newcomer Ltd"]
