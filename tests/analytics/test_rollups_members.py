"""MembersDay: random invitations, activations, earns and spends on random local days roll up to what a direct
computation gives: people invited (first invitation), joined, and first earn and redemption per program."""

import contextlib
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.models import MembersDay
from analytics.rollups import rollup_days
from loyalty.common.errors import ApplicationError
from loyalty.constants import EntryKind
from loyalty.models import PointsEntry
from loyalty.services import ledger
from partners.constants import MemberStatus
from partners.models import Invitation, Member
from tests.analytics.helpers import at_minute, clock, local, rows_of
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import InvitationFactory, MemberFactory, PartnerFactory, RegionFactory, role

pytestmark = pytest.mark.django_db

FIRST = timezone.localdate() - timedelta(days=10)
DAYS = 4
COLUMNS = ("invited", "joined", "first_earn", "first_redemption")


def expected_members(members) -> dict[tuple, tuple]:
    sums = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))

    def add(when, program_id, member, column):
        partner = member.partner
        sums[(timezone.localdate(when), program_id, partner.pk, member.role_id, partner.region_id)][column] += 1

    for member in Member.objects.filter(pk__in=[m.pk for m in members]).select_related("partner"):
        invitations = Invitation.objects.filter(member=member).order_by("created_at", "pk")
        if first := invitations.first():
            add(first.created_at, 0, member, "invited")
        if member.joined_at:
            add(member.joined_at, 0, member, "joined")
        for kind, column in ((EntryKind.EARN, "first_earn"), (EntryKind.SPEND, "first_redemption")):
            entries = PointsEntry.objects.filter(account__member=member, kind=kind).order_by("created_at")
            for program_id in set(entries.values_list("account__program", flat=True)):
                add(entries.filter(account__program=program_id).first().created_at, program_id, member, column)
    return {key: tuple(values[c] for c in COLUMNS) for key, values in sums.items()}


moment = st.tuples(st.integers(0, DAYS - 1), st.integers(0, 24 * 60 - 1))
operation = st.one_of(
    st.tuples(st.just("invite"), moment, st.integers(0, 2)),
    st.tuples(st.just("join"), moment, st.integers(0, 2)),
    st.tuples(st.just("earn"), moment, st.integers(0, 2), st.integers(0, 1), st.integers(1, 50)),
    st.tuples(st.just("spend"), moment, st.integers(0, 2), st.integers(0, 1)),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=15))
def test_random_invitations_activations_and_first_points_roll_up_to_a_direct_computation(operations):
    with transaction.atomic():
        programs = [ProgramFactory(), ProgramFactory()]
        north = PartnerFactory(region=RegionFactory(code="north"))
        south = PartnerFactory(region=RegionFactory(code="south"))
        members = [
            MemberFactory(partner=north, role=role("sales"), status=MemberStatus.INVITED, joined_at=None),
            MemberFactory(partner=north, role=role("engineer"), status=MemberStatus.INVITED, joined_at=None),
            MemberFactory(partner=south, role=role("owner"), status=MemberStatus.INVITED, joined_at=None),
        ]
        for step, op in sorted(enumerate(operations), key=lambda item: item[1][1]):
            kind, (day, minute), who = op[:3]
            at = at_minute(FIRST + timedelta(days=day), minute)
            with clock(at), contextlib.suppress(ApplicationError):
                if kind == "invite":
                    InvitationFactory(member=members[who])
                elif kind == "join":
                    Member.objects.filter(pk=members[who].pk).update(joined_at=at, status=MemberStatus.ACTIVE)
                else:
                    account = ledger.member_account(program=programs[op[3]], member=members[who])
                    if kind == "earn":
                        ledger.earn(account=account, points=op[4], key=f"earn:{step}")
                    else:
                        ledger.spend(account=account, points=1, key=f"spend:{step}")

        rollup_days(first=FIRST, last=FIRST + timedelta(days=DAYS - 1), tables=["members"])

        assert rows_of(MembersDay) == expected_members(members)
        transaction.set_rollback(True)


def test_a_person_invited_again_counts_once_on_the_day_of_the_first_invitation():
    member = MemberFactory(role=role("sales"), status=MemberStatus.INVITED, joined_at=None)
    with clock(local(FIRST, 23, 50)):
        InvitationFactory(member=member)
    with clock(local(FIRST + timedelta(days=1), 8)):
        InvitationFactory(member=member)  # the link sent again

    rollup_days(first=FIRST, last=FIRST + timedelta(days=1), tables=["members"])

    partner = member.partner
    assert rows_of(MembersDay) == {(FIRST, 0, partner.pk, member.role_id, partner.region_id): (1, 0, 0, 0)}
