"""Leaderboards: a challenge's, and the program period's, for people or for companies, optionally ranking companies
per active member so that small dealers can win.

A board is read from the incremental rows loyalty.services.challenges and loyalty.services.standings keep up to date
(ChallengeEntry, PeriodStanding), never from the events: whatever the number of participants, it costs the same four
queries, each an index range scan over (scope, value desc, id):

1. the viewer's own row (a member's on a people board, their company's on a company board);
2. its rank: 1 + the rows with a better (value desc, id asc) key, counted as "value greater" plus "same value, smaller
   id" (two index-only counts, no row loaded), and the number taking part (counted at most once a minute per board,
   then read from the cache: it is the one count that grows with the whole board);
3. the ids of the top rows and of the `around` rows just above and just below the viewer (small ordered LIMIT
   queries, in one UNION ALL statement);
4. those rows, with the names they show.

Ties are broken by id (who got there first): ranks are positions, no two rows share one.

What others see of a person: their full name only when they agreed (Member.show_name_on_leaderboards), otherwise
"A sales rep in North" (their role and region); never an e-mail or an id. A member's own row says "You". Companies
show their name.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
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
    return _("A %(role)s in %(region)s") % {"role": member.role.name, "region": row.partner.region.name}


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
    not see the challenge. Four queries (two without a row of the viewer's), whatever the number of rows."""
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
    best_first = (f"-{key}", "pk")
    if own is None:
        if total is None:
            (total,) = _counts(rows)
            cache.set(TOTAL_KEY.format(name), total, TOTAL_SECONDS)
        loaded = list(rows.select_related(*related).order_by(*best_first)[:top])
        shown = [
            _row(row, n, key=key, viewer=viewer, companies=companies, own_pk=None) for n, row in enumerate(loaded, 1)
        ]
        return Board(top=shown, around=[], me=None, total=total, companies=companies, by_size=by_size, unit=unit)

    value = getattr(own, key)
    better, tied_before, *counted = _counts(
        rows.filter(**{f"{key}__gt": value}),
        rows.filter(**{key: value, "pk__lt": own.pk}),
        *([rows] if total is None else []),
    )
    if counted:
        total = counted[0]
        cache.set(TOTAL_KEY.format(name), total, TOTAL_SECONDS)
    rank = 1 + better + tied_before
    ids = _ids(
        rows.order_by(*best_first)[:top],
        rows.filter(**{key: value, "pk__lt": own.pk}).order_by("-pk")[:around],
        rows.filter(**{f"{key}__gt": value}).order_by(key, "-pk")[:around],
        rows.filter(**{key: value, "pk__gt": own.pk}).order_by("pk")[:around],
        rows.filter(**{f"{key}__lt": value}).order_by(*best_first)[:around],
    )
    ids.discard(own.pk)
    loaded = sorted(
        rows.model.objects.filter(pk__in=ids).select_related(*related), key=lambda row: (-getattr(row, key), row.pk)
    )
    loaded_above = [row for row in loaded if (-getattr(row, key), row.pk) < (-value, own.pk)]
    loaded_below = [row for row in loaded if (-getattr(row, key), row.pk) > (-value, own.pk)]

    def make(row, n):
        return _row(row, n, key=key, viewer=viewer, companies=companies, own_pk=own.pk)

    # The ids hold every top row, so the first rows in order are ranks 1, 2, ...; around the viewer, ranks count
    # from theirs.
    ranked = {n: make(row, n) for n, row in enumerate([*loaded_above, own, *loaded_below][:top], 1)}
    for distance, row in enumerate(reversed(loaded_above[-around:] if around else []), 1):
        ranked[rank - distance] = make(row, rank - distance)
    me = ranked[rank] = make(own, rank)
    for distance, row in enumerate(loaded_below[:around], 1):
        ranked[rank + distance] = make(row, rank + distance)
    top_rows = [ranked[n] for n in sorted(ranked) if n <= top]
    around_rows = [ranked[n] for n in sorted(ranked) if n > top]
    return Board(
        top=top_rows,
        around=around_rows,
        me=me,
        total=max(total, rank + len(loaded_below[:around])),  # a cached total may lag behind newcomers
        companies=companies,
        by_size=by_size,
        unit=unit,
        own=own,
    )


def challenge_board(*, viewer, challenge: Challenge, by_size: bool | None = None, **sizes) -> Board:
    """The board of a challenge as its page shows it: people for an individual challenge, companies for a company
    one, per active member by default when the challenge ranks companies by size."""
    companies = challenge.level == ChallengeLevel.COMPANY
    if by_size is None:
        by_size = challenge.rank_companies_by_size
    return board(viewer=viewer, challenge=challenge, companies=companies, by_size=by_size, **sizes)
