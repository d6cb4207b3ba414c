"""`manage.py rollup` and the periodic task: what they write and print, and the ranges they refuse."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics.models import PartnerHealth, PointsDay, RollupDay, SalesDay
from analytics.rollups import RECENT
from analytics.tasks import rollup_recent
from loyalty.services import ledger
from tests.analytics.helpers import clock, local
from tests.loyalty.factories import MemberAccountFactory, ProgramFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
FIRST = TODAY - timedelta(days=10)


def rollup(*args) -> str:
    out = StringIO()
    call_command("rollup", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def earned():
    account = MemberAccountFactory()
    with clock(local(FIRST, 9)):
        ledger.earn(account=account, points=100, key="earned")
    return account


def test_the_command_rebuilds_the_range_and_prints_the_rows_and_time_per_table(earned):
    output = rollup("--from", FIRST.isoformat(), "--to", (FIRST + timedelta(days=1)).isoformat())

    assert output.startswith(f"Rebuilding points, sales, claims, members, messages for 2 days: {FIRST} to ")
    assert re.search(r"^  points +1 rows written in [\d.]+ s$", output, re.M)
    assert re.search(r"^  members +1 rows written in [\d.]+ s$", output, re.M)
    assert re.search(r"^  sales +0 rows written in [\d.]+ s$", output, re.M)
    assert PointsDay.objects.get().issued == 100
    assert RollupDay.objects.count() == 10
    program = earned.program  # and every partner's health scored again from the rebuilt roll-ups
    assert re.search(rf"^  health +1 partners scored in {re.escape(str(program))}$", output, re.M)
    assert PartnerHealth.objects.get(program_id=program.pk, partner_id=earned.member.partner_id).members == 1


def test_the_command_rebuilds_only_the_tables_named(earned):
    output = rollup("--from", FIRST.isoformat(), "--to", FIRST.isoformat(), "--table", "points", "--table", "sales")

    assert "members" not in output
    assert sorted(RollupDay.objects.values_list("rollup", flat=True)) == ["points", "sales"]


def test_a_dry_run_prints_what_would_be_written_and_writes_nothing(earned):
    output = rollup("--from", FIRST.isoformat(), "--to", FIRST.isoformat(), "--dry-run")

    assert re.search(r"^  points +1 rows would be written in [\d.]+ s$", output, re.M)
    assert "Dry run: nothing was written." in output
    assert (PointsDay.objects.count(), RollupDay.objects.count()) == (0, 0)


def test_a_long_range_reports_its_progress_month_by_month(earned):
    first = TODAY - timedelta(days=70)

    output = rollup("--from", first.isoformat(), "--to", TODAY.isoformat(), "--table", "points")

    months = re.findall(r"^  (\d{4}-\d{2}) done: [\d,]+ rows so far, [\d.]+ s$", output, re.M)
    assert months[0] == f"{first:%Y-%m}" and months[-1] == f"{TODAY:%Y-%m}" and len(months) in (3, 4)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (
            FIRST,
            FIRST - timedelta(days=1),
            "The range is reversed: {first} is after {last}. Give the earlier day first.",
        ),
        (FIRST, TODAY + timedelta(days=1), "The range ends in the future ({last}); nothing has happened after today"),
        (TODAY - relativedelta(years=11), TODAY, "is longer than 10 years; split it."),
    ],
)
def test_the_command_refuses_a_reversed_future_or_too_long_range_and_writes_nothing(first, last, message):
    with pytest.raises(CommandError) as error:
        rollup("--from", first.isoformat(), "--to", last.isoformat())

    assert message.format(first=first, last=last) in str(error.value)
    assert RollupDay.objects.count() == 0


def test_ten_years_to_the_day_is_still_allowed_as_a_dry_run():
    first = TODAY - relativedelta(years=10) + timedelta(days=1)

    output = rollup("--from", first.isoformat(), "--to", TODAY.isoformat(), "--table", "messages", "--dry-run")

    assert "messages" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2025-13-01", "--to", "2025-12-31"), "“2025-13-01” is not a date; write it as YYYY-MM-DD"),
        (("--from", "2025-01-01", "--to", "2025-01-02", "--table", "pionts"), "invalid choice: 'pionts'"),
    ],
)
def test_the_command_refuses_a_bad_date_or_an_unknown_table(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        rollup(*args)


def test_the_periodic_task_is_scheduled_and_rebuilds_the_recent_days():
    assert settings.CELERY_BEAT_SCHEDULE["rollup-recent"]["task"] == rollup_recent.name

    summary = rollup_recent.delay().get()

    assert summary["sales"]["days"] == [(TODAY - timedelta(days=1)).isoformat(), TODAY.isoformat()]
    assert RollupDay.objects.filter(rollup=RECENT, day=TODAY).exists()
    assert not SalesDay.objects.exists()


def test_the_periodic_task_scores_every_partners_health_in_each_active_program(earned):
    ProgramFactory(is_active=False)

    summary = rollup_recent.delay().get()

    assert summary["partners_scored"] == {earned.program.slug: 1}
    row = PartnerHealth.objects.get()
    assert (row.program_id, row.partner_id, row.day, row.active_members) == (
        earned.program_id,
        earned.member.partner_id,
        TODAY,
        1,
    )
