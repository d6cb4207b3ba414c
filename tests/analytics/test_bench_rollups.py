"""The roll-up benchmark's pieces on tiny data (no timing is asserted: the figures come from `python -m bench
rollups`): the entries it writes roll up to the totals a direct sum over the day gives, and the bare statement
runs over the same rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import PointsDay
from bench import rollups as bench
from loyalty.constants import EntryKind
from loyalty.models import PointsEntry
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_the_benchmark_day_rolls_up_to_the_direct_totals_of_its_entries():
    MemberFactory.create_batch(4)
    program = ProgramFactory()
    day = timezone.localdate() - timedelta(days=1)

    written = bench.write_entries(program.pk, day, day_entries=400, other_entries=100, days_before=3)
    measured = bench.measure(day=day.isoformat(), rounds=1)

    on_the_day = PointsEntry.objects.filter(created_at__date=day).exclude(kind__in=["release", "transfer"])
    assert written == {"accounts": 8, "entries": 500}
    assert set(PointsEntry.objects.values_list("kind", flat=True)) == set(EntryKind.values)
    assert measured["rollup_entries"] == measured["entries_counted"] == on_the_day.count() > 300
    assert measured["rollup_issued"] == measured["issued_direct"] > 0
    assert measured["rollup_rows"] == PointsDay.objects.filter(day=day).count() > 0
    assert measured["bare_rows"] > 0 and len(measured["bare_seconds"]) == len(measured["rollup_seconds"]) == 1
