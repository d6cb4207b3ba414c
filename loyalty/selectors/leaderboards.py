"""Leaderboards: a challenge's, and the program period's, for people or for companies, optionally ranking companies
per active member so that small dealers can win.

A board is read from the incremental rows loyalty.services.challenges and loyalty.services.standings keep up to date
(ChallengeEntry, PeriodStanding), never from the events: whatever the number of participants, it costs the same four
queries, each an index range scan over (scope, value desc, id):

1. the viewer's own row (a member's on a people board, their company's on a company board);
2. its rank: 1 + the rows ranked before it, counted in parts that are each one range of the index ("value greater";
   for challenges "same value, completed earlier" and "same value and completion, smaller id"; else "same value,
   smaller id"), each an index-only count, no row loaded, and the number taking part (counted at most once a
   minute per board, then read from the cache: it is the one count that grows with the whole board);
3. the ids of the top rows and of the `around` rows just above and just below the viewer (small ordered LIMIT
   queries over the same parts, in one UNION ALL statement);
4. those rows, with the names they show.

Ties are broken as the final ranks break them (loyalty.services.challenges.challenge_settle): on a challenge, who
completed first (not completed: after those who did), then id (who joined first); on the period board by id. Ranks
are positions, no two rows share one. Once a challenge's results are settled, its board shows the final ranks
(ChallengeEntry.final_rank), the top ones and those around the viewer's, in at most three queries.

What others see of a person: their full name only when they agreed (Member.show_name_on_leaderboards), otherwise
"Sales rep in North" (their role and region); never an e-mail or an id. A member's own row says "You". Companies
show their name.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.constants import ChallengeLevel
from loyalty.engine.limits import period_start
from loyalty.models import Challenge, ChallengeEntry, PeriodStanding, Program
from loyalty.selectors.challenges import challenges_for
from partners.visibility import viewer_for

TOP = 10
AROUND = 2
# How many take part is counted (all the board's rows) at most once in this many seconds per board; the rank is
# counted at every request (the rows better than the viewer's only).
TOTAL_SECONDS = 60
TOTAL_KEY = "leaderboard-total:{}"
SCORE, POINTS = "score", "points"


def current_period_start(*, program: Program, today: date | None = None) -> date:
    """The first day of the program's period (the tier period: quarter or year) holding `today`: the period the
    standings are raised in (loyalty.services.standings, through the same loyalty.engine.limits.period_start)."""
    return period_start(program.tier_period, today or timezone.localdate())


@dataclass(frozen=True)
class BoardRow:
    rank: int
    name: str
    value: Decimal | int  # the score (percent), the points, or either per active member
    is_me: bool = False
    is_company: bool = False
    active_members: int | None = None  # companies
    completed: bool = False  # challenge entries that reached every goal


@dataclass(frozen=True)
class Board:
    """The top rows, the viewer's row and the rows around it, and how many take part."""

    top: list[BoardRow]
    around: list[BoardRow]  # the viewer's row and its neighbours that are not in `top`, best first
    me: BoardRow | None
    total: int
    companies: bool
    by_size: bool
    unit: str  # SCORE (percent of the targets) or POINTS
    own: object | None = field(default=None, repr=False)  # the viewer's ChallengeEntry or PeriodStanding
    final: bool = False  # a settled challenge's final ranks

    @property
    def gap(self) -> bool:
        """Rows are left out between the top and the rows around the viewer."""
        return bool(self.around) and self.around[0].rank > len(self.top) + 1

    @property
    def empty(self) -> bool:
        return not self.top


EMPTY = Board(top=[], around=[], me=None, total=0, companies=False, by_size=False, unit=SCORE)


def _name(row, *, viewer_member, companies: bool) -> str:
    if companies:
        return row.partner.name
    member = row.member
    if viewer_member is not None and member.pk == viewer_member.pk:
        return _("You")
    if member.show_name_on_leaderboards and member.user.full_name.strip():
        return member.user.full_name.strip()
    return _("%(role)s in %(region)s") % {"role": member.role.name, "region": row.partner.region.name}


def _row(row, rank: int, *, key: str, viewer, companies: bool, own_pk) -> BoardRow:
    return BoardRow(
        rank=rank,
        name=_name(row, viewer_member=viewer.member, companies=companies),
        value=getattr(row, key),
        is_me=row.pk == own_pk,
        is_company=companies,
        active_members=row.active_members if companies else None,
        completed=getattr(row, "completed_at", None) is not None,
    )


def _counts(*querysets: QuerySet) -> list[int]:
    """COUNT(*) of each queryset, in one statement (each an index-only count when its filter matches an index)."""
    parts, params = [], []
    for n, queryset in enumerate(querysets):
        sql, part_params = queryset.order_by().values("pk").query.sql_with_params()
        parts.append(f"(SELECT count(*) FROM ({sql}) AS part{n})")
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        return list(cursor.fetchone())


def _ids(*querysets: QuerySet) -> set[int]:
    """The ids the sliced, ordered querysets select, in one UNION ALL statement."""
    first, *others = [queryset.values_list("pk", flat=True) for queryset in querysets]
    return set(first.union(*others, all=True)) if others else set(first)


def _scope(*, viewer, program, challenge, period_start, companies: bool, by_size: bool):
    """(rows of the board, the value field ranked, unit, the board's name in the cache) or None if the viewer may not
    see the board."""
    member = viewer.member
    if challenge is not None:
        if getattr(challenge, "audience_of", None) != member.pk and not (
            challenges_for(viewer, program=challenge.program_id).filter(pk=challenge.pk).exists()
        ):
            return None
        rows = ChallengeEntry.objects.filter(challenge=challenge, member__isnull=companies)
        key = "normalised" if companies and by_size else "score"
        return rows, key, SCORE, f"challenge:{challenge.pk}:{companies:d}"
    rows = PeriodStanding.objects.filter(program=program, period_start=period_start, member__isnull=companies)
    key = "normalised" if companies and by_size else "points"
    return rows, key, POINTS, f"period:{program.pk}:{period_start:%Y-%m-%d}:{companies:d}"


@dataclass(frozen=True)
class _Order:
    """A board's order: `key` desc, then (challenges) `tie` asc with the empty ones last, then id: the order of the
    rank indexes, and of the final ranks (loyalty.services.challenges.challenge_settle)."""

    key: str
    tie: str | None = None

    def fields(self, *, reverse: bool = False) -> list:
        if reverse:
            tie = [F(self.tie).desc(nulls_first=True)] if self.tie else []
            return [self.key, *tie, "-pk"]
        tie = [F(self.tie).asc(nulls_last=True)] if self.tie else []
        return [f"-{self.key}", *tie, "pk"]

    def sort_key(self, row) -> tuple:
        tie = getattr(row, self.tie) if self.tie else None
        return (-getattr(row, self.key), tie is None, tie.timestamp() if tie else 0, row.pk)

    def before(self, rows: QuerySet, own) -> list[QuerySet]:
        """The rows ranked before `own`, in parts that are each one range of the rank index (so each is counted or
        read by an index-only range scan), best part first."""
        key, value = self.key, getattr(own, self.key)
        same = rows.filter(**{key: value})
        if self.tie is None:
            return [rows.filter(**{f"{key}__gt": value}), same.filter(pk__lt=own.pk)]
        tie = getattr(own, self.tie)
        if tie is None:
            return [
                rows.filter(**{f"{key}__gt": value}),
                same.filter(**{f"{self.tie}__isnull": False}),
                same.filter(**{f"{self.tie}__isnull": True}, pk__lt=own.pk),
            ]
        return [
            rows.filter(**{f"{key}__gt": value}),
            same.filter(**{f"{self.tie}__lt": tie}),
            same.filter(**{self.tie: tie}, pk__lt=own.pk),
        ]

    def after(self, rows: QuerySet, own) -> list[QuerySet]:
        """The rows ranked after `own`, in index ranges, best part first."""
        key, value = self.key, getattr(own, self.key)
        same = rows.filter(**{key: value})
        worse = rows.filter(**{f"{key}__lt": value})
        if self.tie is None:
            return [same.filter(pk__gt=own.pk), worse]
        tie = getattr(own, self.tie)
        if tie is None:
            return [same.filter(**{f"{self.tie}__isnull": True}, pk__gt=own.pk), worse]
        return [
            same.filter(**{self.tie: tie}, pk__gt=own.pk),
            same.filter(**{f"{self.tie}__gt": tie}),
            same.filter(**{f"{self.tie}__isnull": True}),
            worse,
        ]


def _total(name: str, counted: list[int]) -> int:
    """The number taking part: counted now (the last of `counted`) when it was not cached, then cached."""
    total = counted[-1]
    cache.set(TOTAL_KEY.format(name), total, TOTAL_SECONDS)
    return total


def board(
    *,
    viewer,
    program: Program | None = None,
    challenge: Challenge | None = None,
    period_start: date | None = None,
    companies: bool = False,
    by_size: bool = False,
    top: int = TOP,
    around: int = AROUND,
) -> Board:
    """The leaderboard of `challenge` (one the viewer may see: from loyalty.selectors.challenges.challenge_get), or
    else of `program`'s period starting `period_start` (by default the current one): people, or companies with
    `companies` (per active member with `by_size`). An empty board for a viewer who is not a partner's member or may
    not see the challenge. Four queries (two without a row of the viewer's), whatever the number of rows; a settled
    challenge's board shows its final ranks (at most three queries)."""
    viewer = viewer_for(viewer)
    member = viewer.member
    if member is None or (challenge is None and program is None):
        return EMPTY
    if challenge is None and period_start is None:
        period_start = current_period_start(program=program)
    by_size = bool(companies and by_size)
    scope = _scope(
        viewer=viewer,
        program=program,
        challenge=challenge,
        period_start=period_start,
        companies=companies,
        by_size=by_size,
    )
    if scope is None:
        return EMPTY
    rows, key, unit, name = scope
    total = cache.get(TOTAL_KEY.format(name))
    mine = rows.filter(partner=member.partner_id) if companies else rows.filter(member=member)
    related = ("partner__region",) if companies else ("member__user", "member__role", "partner__region")
    own = mine.select_related(*related).first()
    shape = {"companies": companies, "by_size": by_size, "unit": unit}

    def make(row, n):
        return _row(row, n, key=key, viewer=viewer, companies=companies, own_pk=own.pk if own else None)

    if challenge is not None and challenge.results_at is not None:
        return _settled(rows, own, total=total, name=name, related=related, make=make, top=top, around=around, **shape)
    order = _Order(key, "completed_at" if challenge is not None else None)
    if own is None:
        if total is None:
            total = _total(name, _counts(rows))
        loaded = list(rows.select_related(*related).order_by(*order.fields())[:top])
        return Board(top=[make(row, n) for n, row in enumerate(loaded, 1)], around=[], me=None, total=total, **shape)

    before = order.before(rows, own)
    counted = _counts(*before, *([rows] if total is None else []))
    if total is None:
        total = _total(name, counted)
    rank = 1 + sum(counted[: len(before)])
    ids = _ids(
        rows.order_by(*order.fields())[:top],
        *(part.order_by(*order.fields(reverse=True))[:around] for part in before),
        *(part.order_by(*order.fields())[:around] for part in order.after(rows, own)),
    )
    ids.discard(own.pk)
    loaded = sorted(rows.model.objects.filter(pk__in=ids).select_related(*related), key=order.sort_key)
    mine_key = order.sort_key(own)
    loaded_above = [row for row in loaded if order.sort_key(row) < mine_key]
    loaded_below = [row for row in loaded if order.sort_key(row) > mine_key]

    # The ids hold every top row, so the first rows in order are ranks 1, 2, ...; around the viewer, ranks count
    # from theirs.
    ranked = {n: make(row, n) for n, row in enumerate([*loaded_above, own, *loaded_below][:top], 1)}
    for distance, row in enumerate(reversed(loaded_above[-around:] if around else []), 1):
        ranked[rank - distance] = make(row, rank - distance)
    me = ranked[rank] = make(own, rank)
    for distance, row in enumerate(loaded_below[:around], 1):
        ranked[rank + distance] = make(row, rank + distance)
    return Board(
        top=[ranked[n] for n in sorted(ranked) if n <= top],
        around=[ranked[n] for n in sorted(ranked) if n > top],
        me=me,
        total=max(total, rank + len(loaded_below[:around])),  # a cached total may lag behind newcomers
        own=own,
        **shape,
    )


def _settled(rows, own, *, total, name, related, make, top, around, **shape) -> Board:
    """The board of a challenge whose results are settled: its final ranks (ChallengeEntry.final_rank, set by
    loyalty.services.challenges.challenge_settle), so that the board and "Final rank" agree: the top `top` final
    ranks and the ranks within `around` of the viewer's. An entry without a final rank (none should exist once
    settled) comes last and is shown only to its own viewer. At most three queries: the viewer's row (already read),
    the counts (none when the total is cached and the viewer has a final rank), the rows shown."""
    ranked_rows = rows.filter(final_rank__isnull=False)
    unranked_own = own is not None and own.final_rank is None
    counts = []
    if unranked_own:
        counts = [ranked_rows, rows.filter(final_rank__isnull=True, pk__lt=own.pk)]
    if total is None:
        counts.append(rows)
    counted = _counts(*counts) if counts else []
    if total is None:
        total = _total(name, counted)
    rank = None
    if own is not None:
        rank = own.final_rank if not unranked_own else 1 + counted[0] + counted[1]
    shown = Q(pk__in=ranked_rows.order_by("final_rank", "pk").values("pk")[:top])
    if rank is not None and not unranked_own:
        shown |= Q(final_rank__gte=rank - around, final_rank__lte=rank + around)
    loaded = list(ranked_rows.filter(shown).select_related(*related).order_by("final_rank", "pk"))
    top_ids = {row.pk for row in loaded[:top]}
    top_rows = [make(row, row.final_rank) for row in loaded if row.pk in top_ids]
    around_rows = [make(row, row.final_rank) for row in loaded if row.pk not in top_ids]
    me = None
    if own is not None:
        me = next((row for row in (*top_rows, *around_rows) if row.is_me), None) or make(own, rank)
        if unranked_own:
            around_rows.append(me)
    return Board(top=top_rows, around=around_rows, me=me, total=max(total, rank or 0), own=own, final=True, **shape)


def challenge_board(*, viewer, challenge: Challenge, by_size: bool | None = None, **sizes) -> Board:
    """The board of a challenge as its page shows it: people for an individual challenge, companies for a company
    one, per active member by default when the challenge ranks companies by size (always once settled: the final
    ranks were set so)."""
    companies = challenge.level == ChallengeLevel.COMPANY
    if by_size is None or challenge.results_at is not None:  # settled: the final ranks' order
        by_size = challenge.rank_companies_by_size
    return board(viewer=viewer, challenge=challenge, companies=companies, by_size=by_size, **sizes)
