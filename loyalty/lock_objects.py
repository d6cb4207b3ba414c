"""Every row lock and advisory lock of the program core, taken only here (one place to audit the lock order).

Rows are locked in primary-key order, evaluated at once. Advisory locks name what they serialise; the
transaction-scoped ones (`pg_advisory_xact_lock`) end with the transaction, the session one of an import run
is released by `import_run_unlock`. The order a transaction takes them in:

    import run (session) → sell-out source → what a program's sales paid → claim invoice → what a partner's claims
    paid → a partner's club membership → tier evaluation of a program → rules (publish, retire, budgets) → rule
    usage rows (caps) → claim / adjustment rows → points accounts

Bulk paths (a sell-out import's ledger) take the same locks with one SQL statement per kind of row, through the
`*_sql` functions, on the cursor of the connection doing the writing.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet

from loyalty.constants import ImportStatus, RuleStatus
from loyalty.models import (
    Certificate,
    Challenge,
    IncentiveRule,
    PartnerAlias,
    PointsAccount,
    PointsAdjustment,
    PrizeDraw,
    QuizAttempt,
    RuleUsage,
    SalesClaim,
    SalesImport,
    SalesSource,
)
from partners.constants import MemberStatus

# pg_advisory_lock(namespace, id) key spaces.
IMPORT_RUN_NAMESPACE = 0x5A1E  # one worker per import
SOURCE_IMPORT_NAMESPACE = 0x5A1F  # one import of a source at a time
SALES_PAID_NAMESPACE = 0x5A20  # one sale pays once: a program's imports and claim approvals


LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout
DEADLOCK_DETECTED = "40P01"  # ... and for the waiter the deadlock detector chose to give up


class LockNotAvailable(Exception):
    """A lock was not granted within the wait `lock_wait_at_most` allows."""


@contextmanager
def lock_wait_at_most(milliseconds: int) -> Iterator[None]:
    """A savepoint in which waiting longer than `milliseconds` for any lock raises LockNotAvailable (so does being
    the waiter PostgreSQL's deadlock detector gives up); the savepoint's rollback undoes whatever ran inside (and
    the shorter lock timeout with it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        previous = cursor.fetchone()[0]
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{milliseconds}ms"])
            yield
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) not in (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED):
            raise
        raise LockNotAvailable from None


def _advisory_key(name: str) -> int:
    """A 64-bit advisory-lock key for a name (sha-256, so unrelated names do not collide in practice)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# Points accounts -------------------------------------------------------------------------------------------


def accounts_lock(*pks: int) -> dict[int, PointsAccount]:
    """Lock the balance rows before any read-modify-write; several at once in primary-key order."""
    rows = PointsAccount.objects.select_for_update().select_related("program").filter(pk__in=pks).order_by("pk")
    return {row.pk: row for row in rows}


def account_available_lock(cursor, pk: int) -> int:
    """Lock one balance row and return what is available on it (the spend path's single round trip)."""
    cursor.execute("SELECT available FROM loyalty_pointsaccount WHERE id = %s FOR UPDATE", [pk])
    return cursor.fetchone()[0]


def accounts_lock_sql(cursor, pks: list[int]) -> None:
    """Lock many balance rows in primary-key order with one statement (a sell-out import's ledger)."""
    if pks:
        cursor.execute("SELECT id FROM loyalty_pointsaccount WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [sorted(pks)])
        cursor.fetchall()


def adjustment_lock(pk: int, *, with_program: bool = False) -> PointsAdjustment:
    rows = PointsAdjustment.objects.select_for_update()
    if with_program:
        rows = rows.select_related("account__program")
    return rows.get(pk=pk)


# Rules, budgets and caps -----------------------------------------------------------------------------------


def rule_lock(pk: int, *, only: tuple[str, ...] = ()) -> IncentiveRule:
    rows = IncentiveRule.objects.select_for_update()
    return (rows.only(*only) if only else rows).get(pk=pk)


def rule_in_force_lock(*, program_id: int, code: str) -> IncentiveRule | None:
    """The open-ended published version of a rule, locked (publishing a new version ends it)."""
    return (
        IncentiveRule.objects.select_for_update()
        .filter(program=program_id, code=code, status=RuleStatus.PUBLISHED, effective_until__isnull=True)
        .first()
    )


def budget_rules_lock(pks) -> dict[int, IncentiveRule]:
    """Rules whose budgets a posting draws on, locked in primary-key order."""
    return {r.pk: r for r in IncentiveRule.objects.select_for_update().filter(pk__in=sorted(pks)).order_by("pk")}


def budget_rules_lock_sql(cursor, pks: list[int]) -> dict[int, int]:
    """The same for a bulk posting, with one statement: {rule id: budget used so far}."""
    cursor.execute(
        "SELECT id, budget_used FROM loyalty_incentiverule WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [sorted(pks)]
    )
    return dict(cursor.fetchall())


def rule_usage_lock(*, rule_id: int, member_id: int, period_start) -> RuleUsage:
    """One member's use of a capped rule in a period (the row exists: callers create it first)."""
    return RuleUsage.objects.select_for_update().get(rule_id=rule_id, member_id=member_id, period_start=period_start)


def rule_usages_lock_sql(cursor, rules: list[int], members: list[int], starts: list) -> list[tuple]:
    """Many usage rows with one statement, in (rule, member, period) order: [(rule, member, period, points)]."""
    cursor.execute(
        "SELECT u.rule_id, u.member_id, u.period_start, u.points FROM loyalty_ruleusage u "
        "JOIN unnest(%s::bigint[], %s::bigint[], %s::date[]) AS w(r, m, d) "
        "ON u.rule_id = w.r AND u.member_id = w.m AND u.period_start = w.d "
        "ORDER BY u.rule_id, u.member_id, u.period_start FOR UPDATE OF u",
        [rules, members, starts],
    )
    return cursor.fetchall()


# Tiers ------------------------------------------------------------------------------------------------------


def tier_evaluation_lock(program_id: int) -> None:
    """Serialise tier evaluations of one program until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(f"tiers:{program_id}")])


def club_lock(program_id: int, partner_id: int) -> None:
    """One paid club join or renewal of a partner in a program at a time, until the transaction ends: the latest
    term is read and renewed by one payer at a time, so a renewal sent twice (a double tap, a second tab) is paid
    once. Taken before the tier evaluation lock (the join re-evaluates the partner's tier at once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(f"club:{program_id}:{partner_id}")])


# Claims -----------------------------------------------------------------------------------------------------


def claim_invoice_lock(program_id: int, number: str) -> None:
    """Serialise every claim of one invoice number in one program until the transaction ends. Locking the
    number (not the partner) also makes the cross-partner duplicate flag exact."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(f"claim-invoice:{program_id}:{number}")])


def sales_paid_lock(program_id: int, *, exclusive: bool) -> None:
    """One sale pays once: what a program's sales have paid (loyalty.selectors.one_sale) is read and added to by
    one payer at a time, until the transaction ends. A sell-out import takes it exclusive for its whole run; claim
    approvals take it shared (side by side, each partner's one at a time: claim_paid_lock), so an approval never
    pays a sale that a running import is paying too. Claims take it before the claim invoice lock, with a bounded
    wait (lock_wait_at_most)."""
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [SALES_PAID_NAMESPACE, program_id])


def claim_paid_lock(program_id: int, partner_id: int) -> None:
    """One claim approval of a partner at a time in a program, until the transaction ends: two approvals of
    claims of the same sale each see what the other paid."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(f"claim-paid:{program_id}:{partner_id}")])


def claim_lock(pk: int) -> SalesClaim:
    return (
        SalesClaim.objects.select_for_update(of=("self",))
        .select_related("program", "partner", "member__user", "member__role", "member__partner")
        .get(pk=pk)
    )


# Sell-out ---------------------------------------------------------------------------------------------------


def source_lock(pk: int) -> SalesSource:
    return SalesSource.objects.select_for_update().get(pk=pk)


def aliases_lock(*, source: SalesSource, keys) -> dict[str, int]:
    """A source's aliases with these codes' matching keys, locked in primary-key order: {key: partner id}."""
    return dict(
        PartnerAlias.objects.select_for_update()
        .filter(source=source, code_key__in=list(keys))
        .order_by("pk")
        .values_list("code_key", "partner_id")
    )


def source_import_lock(cursor, source_id: int) -> None:
    """One import of a source at a time, until the import's transaction ends."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [SOURCE_IMPORT_NAMESPACE, source_id])


def import_run_try_lock(import_id: int) -> bool:
    """Claim an import for this worker (a session lock: the run spans transactions). False: another has it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [IMPORT_RUN_NAMESPACE, import_id])
        return cursor.fetchone()[0]


def import_run_unlock(import_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [IMPORT_RUN_NAMESPACE, import_id])


# Training ---------------------------------------------------------------------------------------------------
# A quiz's lock comes first in its transaction: quiz (member, module) → attempt row → then what posting the
# "training passed" event takes (rules, rule usage rows, points accounts).


def quiz_lock(member_id: int, module_id: int) -> None:
    """One start or submission of a member's quiz of one module at a time, until the transaction ends: attempt
    numbers never collide, only one attempt is open, and a module is passed (and paid) once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(f"quiz:{member_id}:{module_id}")])


def certification_lock(member_id: int, course_id: int) -> None:
    """One submission at a time of a member's quizzes of one certifying course, until the transaction ends: the
    last two modules passed at once both see each other's pass, and the certificate is issued once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(f"certification:{member_id}:{course_id}")])


def attempt_lock(pk: int) -> QuizAttempt:
    """A quiz attempt row, locked, with its module, course and program."""
    return QuizAttempt.objects.select_for_update(of=("self",)).select_related("module__course__program").get(pk=pk)


def certificates_to_tell_lock(certificates: QuerySet[Certificate]) -> list[Certificate]:
    """The rows of `certificates` no other transaction holds, locked in primary-key order (those held are skipped:
    another run of the expiry notice is telling them)."""
    return list(certificates.select_for_update(of=("self",), skip_locked=True).order_by("pk"))


# Challenges -------------------------------------------------------------------------------------------------
# Their locks come before what posting takes: challenge row (announcing, settling) → challenge entries → rules,
# rule usage rows, points accounts (a completion pays through the rules while its entry is locked).


def challenge_lock(pk: int) -> Challenge:
    """A challenge row, locked (announcing it, settling its results: once each), with its program."""
    return Challenge.objects.select_for_update(of=("self",)).select_related("program").get(pk=pk)


_ENTRY_COLUMNS = (
    "e.id, e.challenge_id, e.partner_id, e.member_id, e.progress::text, e.active_members, e.halfway_at, e.completed_at"
)
_PEOPLE_ENTRIES = (
    "INSERT INTO loyalty_challengeentry AS e (challenge_id, partner_id, member_id, progress, score, normalised, "
    "active_members, updated_at) "
    "SELECT c, p, m, '{}'::jsonb, 0, 0, 1, now() FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS u(c, m, p) "
    "ORDER BY c, m "
    "ON CONFLICT (challenge_id, member_id) WHERE member_id IS NOT NULL DO UPDATE SET updated_at = EXCLUDED.updated_at "
    f"RETURNING {_ENTRY_COLUMNS}"
)
# A company's active members are counted again with each raise (normalised = score per active member).
_COMPANY_ENTRIES = (
    "INSERT INTO loyalty_challengeentry AS e (challenge_id, partner_id, member_id, progress, score, normalised, "
    "active_members, updated_at) "
    "SELECT c, p, NULL, '{}'::jsonb, 0, 0, GREATEST((SELECT count(*) FROM partners_member pm "
    "WHERE pm.partner_id = u.p AND pm.status = %s), 1), now() "
    "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS u(c, m, p) ORDER BY c, p "
    "ON CONFLICT (challenge_id, partner_id) WHERE member_id IS NULL "
    "DO UPDATE SET updated_at = EXCLUDED.updated_at, active_members = EXCLUDED.active_members "
    f"RETURNING {_ENTRY_COLUMNS}"
)


def challenge_entries_lock_sql(cursor, holders: list[tuple[int, int | None, int]], *, company: bool) -> list[tuple]:
    """Create (if absent) and lock the challenge entries of `holders` [(challenge id, member id, partner id)], sorted
    by (challenge, member) for people or (challenge, partner) for companies, with one statement: [(id, challenge
    id, partner id, member id, progress as JSON text, active members, halfway at, completed at)]. An INSERT … ON
    CONFLICT DO UPDATE locks each row, new or not, until the transaction ends; a company's active members are
    counted again."""
    columns = [[h[0] for h in holders], [h[1] for h in holders], [h[2] for h in holders]]
    if company:
        cursor.execute(_COMPANY_ENTRIES, [MemberStatus.ACTIVE.value, *columns])
    else:
        cursor.execute(_PEOPLE_ENTRIES, columns)
    return cursor.fetchall()


# Equipment returns ------------------------------------------------------------------------------------------
# A registration takes its serial numbers' locks before writing them; a decision locks the return row, then what
# posting the "equipment returned" event takes (rules, rule usage rows, points accounts).


def returned_serials_lock(keys) -> None:
    """One registration at a time of each serial number (by matching key), until the transaction ends, taken in
    key order with one statement: two returns naming the same serial at once never both pass the check."""
    numbers = sorted({_advisory_key(f"returned-serial:{key}") for key in keys})
    if numbers:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY 1) AS s", [numbers]
            )
            cursor.fetchall()


def return_lock(pk: int):
    """An equipment return row, locked, with what its decision needs (program, member and their partner and role,
    type, collection point)."""
    from loyalty.models import EquipmentReturn

    return (
        EquipmentReturn.objects.select_for_update(of=("self",))
        .select_related("program", "member__user", "member__partner", "member__role", "return_type", "collection_point")
        .get(pk=pk)
    )


# Referrals --------------------------------------------------------------------------------------------------
# A referral's submission and its conversion take the prospect's locks (company id and e-mail matching keys), then
# a conversion locks the referral row, then what posting the "referral converted" event takes.


def referral_prospect_lock(program_id: int, *, company_key: str, email_key: str) -> None:
    """One referral submission or conversion at a time of one prospect (by its company id's and e-mail's matching
    keys) in a program, until the transaction ends, taken in key order with one statement: two referrals of the same
    company never miss each other as duplicates, and two referrals of it are never both converted."""
    names = [f"referral-company:{program_id}:{company_key}"] if company_key else []
    names += [f"referral-email:{program_id}:{email_key}"] if email_key else []
    numbers = sorted({_advisory_key(name) for name in names})
    if numbers:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY 1) AS s",
                [numbers],
            )


def referral_lock(pk: int):
    """A referral row, locked, with what its decision needs (program, the referrer with their user, partner and
    role)."""
    from loyalty.models import Referral

    return (
        Referral.objects.select_for_update(of=("self",))
        .select_related("program", "partner", "member__user", "member__partner", "member__role")
        .get(pk=pk)
    )


# Prize draws ------------------------------------------------------------------------------------------------
# A draw's row comes first: entering holds it shared (entries of many members go side by side), opening, closing
# and drawing hold it exclusive (no entry slips in after the entry list is hashed) → a member's entries of the
# draw → the points account that buying spends from.


def draw_lock(pk: int) -> PrizeDraw:
    """A prize draw's row, locked (opening, closing, drawing), with its program."""
    return PrizeDraw.objects.select_for_update(of=("self",)).select_related("program").get(pk=pk)


def draw_share_lock(pk: int) -> None:
    """Hold a prize draw's row shared until the transaction ends: entering waits while the draw is closed or drawn,
    and closing waits for the entries being made."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM loyalty_prizedraw WHERE id = %s FOR SHARE", [pk])


def draw_member_lock(draw_id: int, member_id: int) -> None:
    """One entry of a member in a draw at a time, until the transaction ends: the most entries per member holds
    exactly, and a purchase sent twice at once is made (and paid) once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(f"draw-member:{draw_id}:{member_id}")])


# Co-marketing funds -----------------------------------------------------------------------------------------
# A request's row comes first, then its fund's row: pre-approving raises the fund's committed amount, reimbursing
# moves it to reimbursed, under the fund's lock (CHECK fund_not_overspent holds), then what posting takes.


def marketing_request_lock(pk: int):
    """A co-marketing request row, locked, with its fund, program, partner and requester."""
    from loyalty.models import MarketingRequest

    return (
        MarketingRequest.objects.select_for_update(of=("self",))
        .select_related("fund__program", "partner", "member__user", "member__role")
        .get(pk=pk)
    )


def marketing_fund_lock(pk: int):
    """A co-marketing fund row, locked: what is committed and reimbursed changes only under it."""
    from loyalty.models import MarketingFund

    return MarketingFund.objects.select_for_update().get(pk=pk)


def api_imports_to_follow_up_lock(source_id: int) -> list[SalesImport]:
    """The source's API batches done and not followed up yet (services.sellout.run.api_imports_follow_up), locked in
    primary-key order; batches another follow-up holds are skipped, not waited for."""
    return list(
        SalesImport.objects.select_for_update(skip_locked=True)
        .select_related("source__program")
        .filter(source_id=source_id, status=ImportStatus.DONE, file="", followed_up_at__isnull=True)
        .order_by("pk")
    )
