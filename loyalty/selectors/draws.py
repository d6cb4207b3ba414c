"""Reads of prize draws, and the published procedure that picks their winners.

The procedure is pure and public, so that anyone can re-run it from what the verification page shows:

1. The entry list is every entry of the draw in ascending entry id, one line each, "entry_id:member_id:count",
   joined by newlines (no newline at the end). At the close the draw stores `entries_hash` = SHA-256 of that text
   (UTF-8, hex). Before entries open it published `seed_hash` = SHA-256 of its secret seed (the 64 hex characters).
2. For prize k = 1, 2, … (one per line of the draw's prizes, in order): the tickets are the remaining entries' counts
   laid end to end in the list's order; h = SHA-256 of "seed:k" read as a big-endian integer; ticket number
   h mod (the number of remaining tickets) wins, and its member wins prize k. Every entry of that member then leaves
   the list (a member wins once). It stops when the prizes or the entries run out.

A member sees the draws of their program that are open, closed or drawn (never a draft), their own entries, and, for a
partner's owner, how many entries their team holds; the seed itself only once the draw is drawn.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from loyalty.constants import DrawStatus, EntrySourceKind
from loyalty.models import DrawEntry, DrawWinner, PrizeDraw, Program
from partners.visibility import viewer_for

SHOWN_STATUSES = (DrawStatus.OPEN, DrawStatus.CLOSED, DrawStatus.DRAWN)


# The procedure ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryLine:
    entry_id: int
    member_id: int
    count: int

    def __str__(self) -> str:
        return f"{self.entry_id}:{self.member_id}:{self.count}"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry_list_text(entries: Iterable[EntryLine]) -> str:
    """The canonical entry list: one line per entry in ascending entry id."""
    return "\n".join(str(line) for line in sorted(entries, key=lambda line: line.entry_id))


def prize_list(draw: PrizeDraw) -> list[str]:
    """The draw's prizes, one per non-empty line, the first for the first winner."""
    return [line.strip() for line in draw.prizes.splitlines() if line.strip()]


def ticket_of(seed: str, rank: int, total: int) -> int:
    """The winning ticket of prize `rank` among `total` tickets: SHA-256("seed:rank") mod total."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{rank}".encode()).digest(), "big") % total


def derive_winners(*, seed: str, entries: Iterable[EntryLine], prizes: int) -> list[int]:
    """The winning members' ids, prize by prize (see the module's docstring)."""
    remaining = sorted(entries, key=lambda line: line.entry_id)
    winners: list[int] = []
    for rank in range(1, prizes + 1):
        total = sum(line.count for line in remaining)
        if total == 0:
            break
        ticket = ticket_of(seed, rank, total)
        for line in remaining:
            if ticket < line.count:
                winner = line.member_id
                break
            ticket -= line.count
        winners.append(winner)
        remaining = [line for line in remaining if line.member_id != winner]
    return winners


def entry_lines(draw: PrizeDraw) -> list[EntryLine]:
    """The draw's entries as stored, in the canonical order: one query."""
    rows = DrawEntry.objects.filter(draw=draw).order_by("pk").values_list("pk", "member_id", "count")
    return [EntryLine(*row) for row in rows]


# The member's pages ------------------------------------------------------------------------------------------


def _entries_of(member_id) -> Subquery:
    held = (
        DrawEntry.objects.filter(draw=OuterRef("pk"), member_id=member_id)
        .order_by()
        .values("draw")
        .annotate(total=Sum("count"))
        .values("total")
    )
    return Coalesce(Subquery(held, output_field=IntegerField()), Value(0))


def draw_list(*, viewer, program: Program) -> QuerySet[PrizeDraw]:
    """The program's draws a member may see, open ones first (closing soonest), then the rest, latest first; each
    with `my_entries` (how many the viewer holds) and `my_prize` (what they won, or None)."""
    member = viewer_for(viewer).member
    if member is None or program is None:
        return PrizeDraw.objects.none()
    won = DrawWinner.objects.filter(draw=OuterRef("pk"), member=member).values("prize")[:1]
    open_first = Exists(PrizeDraw.objects.filter(pk=OuterRef("pk"), status=DrawStatus.OPEN))
    return (
        PrizeDraw.objects.filter(program=program, status__in=SHOWN_STATUSES)
        .annotate(my_entries=_entries_of(member.pk), my_prize=Subquery(won), is_open=open_first)
        .order_by("-is_open", "closes_at", "-pk")
    )


def draw_get(*, viewer, program: Program, draw_id: int) -> PrizeDraw:
    """A draw of the program the viewer (a member) may see; raises PrizeDraw.DoesNotExist otherwise."""
    member = viewer_for(viewer).member
    if member is None or program is None:
        raise PrizeDraw.DoesNotExist
    return PrizeDraw.objects.select_related("program").get(pk=draw_id, program=program, status__in=SHOWN_STATUSES)


@dataclass(frozen=True)
class MyDraw:
    entries: list[DrawEntry]  # the viewer's own, oldest first
    held: int
    team_held: int | None  # a partner owner's view: every entry their partner's people hold
    free_entry_offered: bool  # the viewer's region requires the free entry
    has_free_entry: bool
    winners: list[DrawWinner]


def my_draw(*, viewer, draw: PrizeDraw) -> MyDraw:
    """What the draw's page shows the viewer: their entries, their team's count (owners), the winners. Four queries."""
    who = viewer_for(viewer)
    member = who.member
    entries = list(DrawEntry.objects.filter(draw=draw, member=member).order_by("pk"))
    team_held = None
    if who.is_owner:
        team_held = (
            DrawEntry.objects.filter(draw=draw, member__partner_id=member.partner_id).aggregate(total=Sum("count"))[
                "total"
            ]
            or 0
        )
    winners = list(DrawWinner.objects.filter(draw=draw).order_by("rank")) if draw.status == DrawStatus.DRAWN else []
    return MyDraw(
        entries=entries,
        held=sum(entry.count for entry in entries),
        team_held=team_held,
        free_entry_offered=member.partner.region.free_draw_entry,
        has_free_entry=any(entry.source == EntrySourceKind.FREE for entry in entries),
        winners=winners,
    )


# Verification ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    draw: PrizeDraw
    lines: list[EntryLine]
    entry_list: str
    prizes: list[str]
    seed_matches: bool | None  # None until the seed is revealed
    entries_match: bool | None  # None until the entry list is hashed (the close)
    derived: list[tuple[int, str, int]]  # (rank, prize, member id) re-derived from the seed and the entry list
    stored: list[tuple[int, str, int]]  # (rank, prize, member id) as the draw stored them
    winners_match: bool | None  # None until drawn

    @property
    def total_entries(self) -> int:
        return sum(line.count for line in self.lines)


def verification(*, draw: PrizeDraw) -> Verification:
    """Everything the verification page shows and checks, re-deriving the winners from the revealed seed and the
    entry list as stored: two queries."""
    lines = entry_lines(draw) if draw.status != DrawStatus.OPEN else []
    text = entry_list_text(lines)
    prizes = prize_list(draw)
    drawn = draw.status == DrawStatus.DRAWN
    stored, derived = [], []
    if drawn:
        stored = [(w.rank, w.prize, w.member_id) for w in DrawWinner.objects.filter(draw=draw).order_by("rank")]
        winners = derive_winners(seed=draw.seed, entries=lines, prizes=len(prizes))
        derived = [(rank, prizes[rank - 1], member_id) for rank, member_id in enumerate(winners, 1)]
    return Verification(
        draw=draw,
        lines=lines,
        entry_list=text,
        prizes=prizes,
        seed_matches=sha256_hex(draw.seed) == draw.seed_hash if drawn else None,
        entries_match=sha256_hex(text) == draw.entries_hash if draw.entries_hash else None,
        derived=derived,
        stored=stored,
        winners_match=derived == stored if drawn else None,
    )
