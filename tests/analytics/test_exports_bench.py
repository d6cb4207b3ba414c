"""The exports benchmark's pieces on tiny data (no timing is asserted: the figures come from `python -m bench
exports`): the statement it writes is exported whole by COPY and by both XLSX writers, with the texts that start
like a formula among its lines."""

import pytest

from bench import exports as bench
from bench.harness import bench_program
from loyalty.models import PointsAccount, PointsEntry
from partners.demo import demo_logins
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_the_benchmark_statement_is_copied_and_written_whole():
    member = MemberFactory(user__email=dict(demo_logins())[bench.WHO])
    program, _created = bench_program(bench.PROGRAM_SLUG, "Benchmark: exports", started_days_ago=800)
    account = PointsAccount.objects.create(program=program, member=member)

    written = bench.write_entries(account.pk, 400)
    copied = bench.copy_baseline(who=bench.WHO, rounds=1)
    xlsx = bench.xlsx_measure(who=bench.WHO, rounds=1)

    entries = PointsEntry.objects.filter(account=account)
    assert written == copied["rows"] == xlsx["ours_rows"] == xlsx["bare_rows"] == 400
    assert set(entries.values_list("kind", flat=True)) == {"earn", "spend"}
    assert entries.filter(pending_delta__gt=0).exists()
    assert entries.filter(explanation__in=bench.PASTED_TEXTS).exists()
    assert len(copied["seconds"]) == len(xlsx["ours_seconds"]) == len(xlsx["bare_seconds"]) == 1
