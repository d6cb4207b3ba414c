"""Reads of the program core that users see, scoped through partners.visibility."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection
from django.db.models import Min, Q, QuerySet, Sum
from django.utils import timezone

from partners.visibility import company_partners_for, members_for

from .constants import EXPIRING_SOON_DAYS
from .models import PointsAccount, PointsEntry, PointsLot, Program


def current_program(request) -> Program | None:
    """The program the member site shows: the one chosen in this session, else the oldest active one."""
    if not hasattr(request, "_current_program"):
        programs = list(Program.objects.filter(is_active=True).order_by("pk"))
        chosen = request.session.get("program_id") if hasattr(request, "session") else None
        request._current_program = next((p for p in programs if p.pk == chosen), programs[0] if programs else None)
        request._active_programs = programs
    return request._current_program


def accounts_for(user) -> QuerySet[PointsAccount]:
    """Accounts the user may see: their own (and, per role, their people's), plus visible company accounts."""
    return PointsAccount.objects.filter(Q(member__in=members_for(user)) | Q(partner__in=company_partners_for(user)))


@dataclass(frozen=True)
class Expiring:
    points: int
    first_date: date | None


def expiring_soon(*, account: PointsAccount, days: int = EXPIRING_SOON_DAYS) -> Expiring:
    """Available points whose expiry date falls within `days` from now."""
    horizon = timezone.now() + timedelta(days=days)
    row = PointsLot.objects.filter(
        account=account, remaining__gt=0, is_pending=False, expires_at__lte=horizon
    ).aggregate(points=Sum("remaining"), first=Min("expires_at"))
    first = timezone.localdate(row["first"]) if row["first"] else None
    return Expiring(points=row["points"] or 0, first_date=first)


def statement(*, account: PointsAccount) -> QuerySet[PointsEntry]:
    """Entries of one account, newest first (paginate the result). The caller got `account` from accounts_for."""
    return PointsEntry.objects.filter(account=account).order_by("-id")


AUDIT_SQL = """
WITH sums AS (
    SELECT e.account_id,
           SUM(e.available_delta) AS available,
           SUM(e.pending_delta) AS pending,
           SUM(CASE WHEN e.kind = 'earn' OR (e.kind = 'reverse' AND o.kind = 'earn')
                    THEN e.available_delta + e.pending_delta ELSE 0 END) AS earned,
           -SUM(CASE WHEN e.kind = 'spend' OR (e.kind = 'reverse' AND o.kind = 'spend')
                     THEN e.available_delta ELSE 0 END) AS redeemed,
           -SUM(CASE WHEN e.kind = 'expire' OR (e.kind = 'reverse' AND o.kind = 'expire')
                     THEN e.available_delta ELSE 0 END) AS expired
    FROM loyalty_pointsentry e
    LEFT JOIN loyalty_pointsentry o ON o.id = e.reverses_id
    GROUP BY e.account_id
), lots AS (
    SELECT account_id,
           SUM(CASE WHEN NOT is_pending THEN remaining ELSE 0 END) AS available,
           SUM(CASE WHEN is_pending THEN remaining ELSE 0 END) AS pending
    FROM loyalty_pointslot GROUP BY account_id
)
SELECT a.id, a.available, a.pending, a.lifetime_earned, a.redeemed, a.expired,
       COALESCE(s.available, 0), COALESCE(s.pending, 0), COALESCE(s.earned, 0),
       COALESCE(s.redeemed, 0), COALESCE(s.expired, 0), COALESCE(l.available, 0), COALESCE(l.pending, 0)
FROM loyalty_pointsaccount a
LEFT JOIN sums s ON s.account_id = a.id
LEFT JOIN lots l ON l.account_id = a.id
WHERE a.available <> COALESCE(s.available, 0) OR a.pending <> COALESCE(s.pending, 0)
   OR a.lifetime_earned <> COALESCE(s.earned, 0) OR a.redeemed <> COALESCE(s.redeemed, 0)
   OR a.expired <> COALESCE(s.expired, 0)
   OR a.available <> COALESCE(l.available, 0) OR a.pending <> COALESCE(l.pending, 0)
   OR a.available < 0 OR a.pending < 0
"""

LOT_AUDIT_SQL = """
SELECT l.id, l.points, l.remaining, COALESCE(SUM(al.points), 0)
FROM loyalty_pointslot l LEFT JOIN loyalty_pointsallocation al ON al.lot_id = l.id
GROUP BY l.id
HAVING l.remaining <> l.points - COALESCE(SUM(al.points), 0) OR l.remaining < 0 OR l.remaining > l.points
"""


def ledger_problems() -> list[str]:
    """Every broken ledger invariant, described; an empty list means the books balance."""
    problems = []
    with connection.cursor() as cursor:
        cursor.execute(AUDIT_SQL)
        for row in cursor.fetchall():
            problems.append(
                f"account {row[0]}: stored available/pending/earned/redeemed/expired {row[1:6]} "
                f"!= entries {row[6:11]} or lots {row[11:13]}"
            )
        cursor.execute(LOT_AUDIT_SQL)
        for lot_id, points, remaining, allocated in cursor.fetchall():
            problems.append(f"lot {lot_id}: remaining {remaining} != {points} - allocated {allocated}")
    return problems
