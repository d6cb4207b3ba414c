"""Reads of the program core that users see, scoped through partners.visibility."""

import json
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection
from django.db.models import BooleanField, Min, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.utils import timezone

from loyalty.constants import EXPIRING_SOON_DAYS, EntryKind, EntrySource
from loyalty.models import PointsAccount, PointsEntry, PointsLot, SaleLine
from partners.visibility import company_partners_for, members_for, viewer_for


def accounts_for(viewer) -> QuerySet[PointsAccount]:
    """Accounts the viewer (a Viewer or a user) may see: their own (and, per role, their people's), plus the
    company accounts they may see."""
    viewer = viewer_for(viewer)
    if viewer.sees_everyone:
        return PointsAccount.objects.all()
    return PointsAccount.objects.filter(Q(member__in=members_for(viewer)) | Q(partner__in=company_partners_for(viewer)))


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


def _posts_to(account: PointsAccount) -> RawSQL:
    """True for a sale line with a posting to this account: a posting [rule, member id or null, points, text]
    whose member id is the account's member, or null for a company account. Exact, unlike a text match on the
    JSON; `strict` because lax mode would unwrap each posting into its values. A line that paid nothing has
    empty `postings` (NULLIF: no posting, no error)."""
    return RawSQL(
        "jsonb_path_exists(NULLIF(loyalty_saleline.postings, '')::jsonb, 'strict $[*] ? (@[1] == $member)', %s::jsonb)",
        [json.dumps({"member": account.member_id})],
        output_field=BooleanField(),
    )


def entry_lines(*, entry: PointsEntry) -> QuerySet[SaleLine]:
    """The sale lines behind one sell-out entry that paid its account, oldest first (paginate the result):
    for an earn entry the import's sales, for a reversal the import's returns of the original entry's lines.
    Empty for other entries. The caller got `entry` through accounts_for, with `account__member` and `reverses`
    selected. Filtered by partner first: the (partner, invoice number, product) index leads with it."""
    if entry.source_type != EntrySource.SALES_IMPORT:
        return SaleLine.objects.none()
    account = entry.account
    if account.member_id is not None:
        lines = SaleLine.objects.filter(partner_id=account.member.partner_id, member_id=account.member_id)
    else:
        lines = SaleLine.objects.filter(partner_id=account.partner_id)
    lines = lines.filter(_posts_to(account), sales_import_id=int(entry.source_id))
    if entry.kind == EntryKind.REVERSE:
        if entry.reverses is None:
            return SaleLine.objects.none()
        # One reversal per original entry: an import returning lines of several imports has several.
        lines = lines.filter(quantity__lt=0, returns_line__sales_import_id=int(entry.reverses.source_id))
    else:
        lines = lines.filter(quantity__gt=0)  # the import's returns are in its reversal entries
    return lines.select_related("product").order_by("id")


@dataclass(frozen=True)
class LinePosting:
    rule_id: int
    points: int
    explanation: str


def account_postings(*, line: SaleLine, account: PointsAccount) -> list[LinePosting]:
    """What one sale line paid (or, a return, took back from) this account, rule by rule."""
    return [
        LinePosting(rule_id=rule_id, points=points, explanation=explanation)
        for rule_id, member_id, points, explanation in line.posting_list
        if member_id == account.member_id
    ]


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
