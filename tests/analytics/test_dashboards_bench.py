"""The dashboards benchmark's pieces on tiny data (no timing is asserted: the figures come from `python -m bench
dashboards`): the ledger and sale lines it writes keep the ledger's invariants and roll up to their own totals, the
demo account manager gets exactly the portfolio asked for, and each dashboard answers its demo login."""

import pytest
from django.db.models import Sum
from django.utils import timezone

from analytics.models import PointsDay, SalesDay
from bench import dashboards as bench
from bench.harness import bench_program
from loyalty.models import PartnerTier, PointsAccount, PointsEntry, PointsLot, SaleLine
from loyalty.selectors.ledger import ledger_problems
from partners.constants import MemberStatus
from partners.demo import ACCOUNT_MANAGERS, DEMO_MEMBERS, PROGRAM_MANAGERS
from partners.models import Partner
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
)

pytestmark = pytest.mark.django_db

# The benchmark spreads its ledger over bench.SPAN_DAYS (two years) and rolls up every day of it; here 60 days of it
# prove the same pieces, a twelfth of the days to roll up.
SPAN_DAYS = 60


@pytest.fixture
def channel():
    """The demo logins the benchmark signs in as, the account manager looking after 5 of 8 partners, two active
    people at each partner and one who left."""
    manager = AccountManagerFactory(email=ACCOUNT_MANAGERS[0][1])
    AccountManagerFactory(email=ACCOUNT_MANAGERS[1][1])
    ProgramManagerFactory(email=PROGRAM_MANAGERS[0][1])
    partners = [PartnerFactory(account_manager=manager if n < 5 else None) for n in range(8)]
    OwnerFactory(partner=partners[0], user__email=DEMO_MEMBERS[0][2])
    for partner in partners:
        MemberFactory.create_batch(2, partner=partner)
    MemberFactory(partner=partners[1], status=MemberStatus.LEFT)
    return partners


def program(slug: str = bench.PROGRAM_SLUG):
    return bench_program(slug, slug, started_days_ago=SPAN_DAYS + 30)[0]


def partners_of(email: str) -> list[Partner]:
    return list(Partner.objects.filter(account_manager__email=email).order_by("pk"))


def test_the_ledger_and_sales_written_keep_the_invariants_and_roll_up_to_their_totals(channel):
    written = bench.write_data(program=program(), entries=600, span_days=SPAN_DAYS)
    rolled = bench.build_rollups(program=program(), span_days=SPAN_DAYS)

    entries = PointsEntry.objects.all()
    earns = entries.filter(kind="earn")
    assert ledger_problems() == []
    assert written["entries"] == entries.count() == 600
    assert written["accounts"] == PointsAccount.objects.count() == 17 + 8  # the active people and partners
    assert set(entries.values_list("kind", flat=True)) == {"earn", "spend"}
    assert entries.filter(account__partner__isnull=False).exists()  # company accounts too
    assert written["lots"] == PointsLot.objects.count() == earns.count() and written["allocations"] > 0
    oldest = entries.order_by("created_at").first().created_at
    assert (timezone.now() - oldest).days == SPAN_DAYS
    assert 0 < PartnerTier.objects.count() < len(channel)
    # Every day of the span up to today is summed, once.
    assert rolled["days"] == SPAN_DAYS + 2
    assert bench.build_rollups(program=program(), span_days=SPAN_DAYS) == {"days": 0, "seconds": 0.0}
    points = PointsDay.objects.aggregate(issued=Sum("issued"), redeemed=Sum("redeemed"))
    assert points == {
        "issued": earns.aggregate(total=Sum("available_delta"))["total"],
        "redeemed": -entries.filter(kind="spend").aggregate(total=Sum("available_delta"))["total"],
    }
    lines = SaleLine.objects.all()
    assert 0 < written["sale_lines"] == lines.count() < earns.count()
    assert SalesDay.objects.aggregate(total=Sum("amount")) == lines.aggregate(total=Sum("amount"))
    assert SalesDay.objects.values("product_line_id").distinct().count() == len(bench.LINES)


def test_the_account_manager_gets_exactly_the_portfolio_asked_for(channel):
    mine, other = ACCOUNT_MANAGERS[0][1], ACCOUNT_MANAGERS[1][1]

    assert bench.assign_portfolio(partners=3) == 3
    assert (partners_of(mine), partners_of(other)) == (channel[:3], channel[3:5])

    assert bench.assign_portfolio(partners=6) == 6
    assert partners_of(mine) == channel[:6]


def test_each_dashboard_answers_its_login_with_as_many_queries_for_a_bigger_ledger(channel):
    small, big = program("bench-dashboards-small"), program("bench-dashboards-big")
    bench.write_data(program=small, entries=100, span_days=SPAN_DAYS)
    bench.write_data(program=big, entries=1000, span_days=SPAN_DAYS)
    bench.build_rollups(program=small, span_days=SPAN_DAYS)

    pages = {p: bench.measure_pages(program_id=p.pk, rounds=1, warmup=1) for p in (small, big)}

    for dashboard in bench.DASHBOARDS:
        page = pages[small][dashboard.key]
        assert (page["status"], page["shown"]) == (200, True), (dashboard.key, page["location"])
        assert pages[big][dashboard.key]["queries"] == page["queries"] > 0
        assert len(page["times_ms"]) == len(page["db_ms"]) == 1
