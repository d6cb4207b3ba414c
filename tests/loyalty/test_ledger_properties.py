"""Random sequences of ledger operations never break the books."""

import contextlib
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.common.errors import ApplicationError
from loyalty.models import PointsAccount, PointsEntry
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from tests.loyalty.factories import MemberAccountFactory, PartnerAccountFactory, ProgramFactory

points = st.integers(min_value=1, max_value=500)
operation = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 1), points, st.booleans(), st.integers(0, 900)),
    st.tuples(st.just("spend"), st.integers(0, 1), points),
    st.tuples(st.just("release"), st.integers(0, 50)),
    st.tuples(st.just("reverse"), st.integers(0, 50), st.one_of(st.none(), points)),
    st.tuples(st.just("expire"), st.integers(0, 900)),
    st.tuples(st.just("transfer"), points),
    st.tuples(st.just("adjust"), st.integers(0, 1), st.integers(-300, 300).filter(bool)),
)


def apply(op, accounts, now, step):
    kind = op[0]
    key = f"{kind}:{step}"
    if kind == "earn":
        _, who, amount, pending, age = op
        available_at = now + timedelta(days=3) if pending else None
        ledger.earn(
            account=accounts[who],
            points=amount,
            key=key,
            available_at=available_at,
            earned_at=now - timedelta(days=age),
        )
    elif kind == "spend":
        ledger.spend(account=accounts[op[1]], points=op[2], key=key)
    elif kind == "release":
        entries = list(PointsEntry.objects.filter(kind="earn", pending_delta__gt=0).order_by("pk"))
        if entries:
            ledger.release(entry=entries[op[1] % len(entries)])
    elif kind == "reverse":
        entries = list(PointsEntry.objects.exclude(kind__in=["reverse", "release", "transfer"]).order_by("pk"))
        if entries:
            ledger.reverse(entry=entries[op[1] % len(entries)], key=key, points=op[2])
    elif kind == "expire":
        ledger.expire_due(now=now + timedelta(days=op[1]))
    elif kind == "transfer":
        ledger.transfer(source=accounts[0], target=accounts[1], points=op[1], key=key)
    elif kind == "adjust":
        ledger.adjust(account=accounts[op[1]], points=op[2], key=key, reason="Correction", created_by=None)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_any_sequence_of_operations_keeps_every_invariant(operations):
    with transaction.atomic():
        program = ProgramFactory(expiry_months=24)
        member_account = MemberAccountFactory(program=program)
        company = PartnerAccountFactory(program=program, partner=member_account.member.partner)
        accounts = [member_account, company]
        now = timezone.now()
        for step, op in enumerate(operations):
            # A refused operation must change nothing; the audit below proves it.
            with contextlib.suppress(ApplicationError):
                apply(op, accounts, now, step)
            assert ledger_problems() == [], f"after step {step}: {op}"
        for account in PointsAccount.objects.filter(pk__in=[a.pk for a in accounts]):
            assert account.available >= 0 and account.pending >= 0
        transaction.set_rollback(True)
