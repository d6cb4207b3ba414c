"""Prize draws anyone can verify: open (a secret seed, its hash published), enter (bought with points, the free entry
where the member's region requires one, earned by activity at the close), close (the entry list hashed), draw (the
winners by the published procedure of loyalty.selectors.draws, the seed revealed, every entrant told the result).

A draw moves draft → open → closed → drawn, each step under the draw's row lock (lock_objects.draw_lock). Entering
holds the row shared and the member's own entries lock (draw_member_lock), so entries of many members go side by side
while closing waits for them, and nothing enters once the entry list is hashed. Entering is refused, with a message
the member reads and nothing written or spent, for a member who is not active, a draw not open (before its opening,
from its closing moment, or not open at all), more entries than `max_entries_per_member` across every source, a draw
whose entries cannot be bought, and a free entry where the member's region does not require one or a second one.

Buying spends `entry_price_points` per entry from the member's account through loyalty.services.ledger, once per
form token: the same token sent again (a double tap, at once or later) gives back the first purchase. The free entry
weighs the same as a bought one. Entries by activity: at the close each active member gets one per
`points_per_activity_entry` points earned by the program's rules in the draw's window (net of reversals), up to
the most per member, with one key per member and draw.
"""

import secrets
from datetime import datetime

from django.db import transaction
from django.db.models import Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.common.errors import ApplicationError
from loyalty.constants import DrawStatus, EntryKind, EntrySource, EntrySourceKind
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import draw_lock, draw_member_lock, draw_share_lock
from loyalty.models import DrawEntry, DrawWinner, PointsEntry, PrizeDraw
from loyalty.selectors.draws import derive_winners, entry_lines, entry_list_text, prize_list, sha256_hex
from loyalty.services import ledger
from partners.constants import MemberStatus
from partners.models import Member

MOMENT_FORMAT = "DATETIME_FORMAT"


def _moment(value: datetime) -> str:
    return date_format(timezone.localtime(value), MOMENT_FORMAT)


def _bad_move(draw: PrizeDraw, to: str) -> ApplicationError:
    return ApplicationError(
        _("%(draw)s is %(status)s; it cannot be %(move)s.")
        % {"draw": draw.name, "status": draw.get_status_display().lower(), "move": to},
        ErrorCode.BAD_TRANSITION,
    )


# Opening ---------------------------------------------------------------------------------------------------------


@transaction.atomic
def draw_open(*, draw: PrizeDraw, now: datetime | None = None) -> PrizeDraw:
    """Draft → open: a new secret seed (32 random bytes, hex), its SHA-256 published. Refused without a prize or
    once the closing moment has passed."""
    draw = draw_lock(draw.pk)
    now = now or timezone.now()
    if draw.status != DrawStatus.DRAFT:
        raise _bad_move(draw, _("opened"))
    if not prize_list(draw):
        raise ApplicationError(_("%(draw)s has no prize yet.") % {"draw": draw.name}, ErrorCode.EMPTY)
    if draw.closes_at <= now:
        raise ApplicationError(
            _("%(draw)s closes in the past (%(moment)s); move its closing first.")
            % {"draw": draw.name, "moment": _moment(draw.closes_at)},
            ErrorCode.DATE_WINDOW,
        )
    draw.seed = secrets.token_hex(32)
    draw.seed_hash = sha256_hex(draw.seed)
    draw.status = DrawStatus.OPEN
    draw.save(update_fields=["seed", "seed_hash", "status", "updated_at"])
    return draw


# Entering --------------------------------------------------------------------------------------------------------


def _check_entering(*, draw: PrizeDraw, member: Member, count: int, now: datetime) -> None:
    """Refuse an entry of `count` the member may not make now (the draw is locked shared, the member's entries too)."""
    if member.status != MemberStatus.ACTIVE:
        raise ApplicationError(
            _("Only active members can enter prize draws; this membership is %(status)s.")
            % {"status": member.get_status_display().lower()},
            ErrorCode.MEMBER_INACTIVE,
        )
    if draw.status != DrawStatus.OPEN or now >= draw.closes_at:
        raise ApplicationError(
            _("Entries to %(draw)s closed at %(moment)s.") % {"draw": draw.name, "moment": _moment(draw.closes_at)},
            ErrorCode.DRAW_NOT_OPEN,
        )
    if now < draw.opens_at:
        raise ApplicationError(
            _("Entries to %(draw)s open at %(moment)s.") % {"draw": draw.name, "moment": _moment(draw.opens_at)},
            ErrorCode.DRAW_NOT_OPEN,
        )
    held = DrawEntry.objects.filter(draw=draw, member=member).aggregate(total=Sum("count"))["total"] or 0
    if held + count > draw.max_entries_per_member:
        left = max(draw.max_entries_per_member - held, 0)
        raise ApplicationError(
            ngettext(
                "Each member may hold %(most)d entry in %(draw)s; you hold %(held)d, so you can add %(left)d more.",
                "Each member may hold %(most)d entries in %(draw)s; you hold %(held)d, so you can add %(left)d more.",
                draw.max_entries_per_member,
            )
            % {"most": draw.max_entries_per_member, "draw": draw.name, "held": held, "left": left},
            ErrorCode.DRAW_ENTRIES_MAX,
            extra={"held": held, "left": left},
        )


def _entering(draw: PrizeDraw, member: Member) -> tuple[PrizeDraw, Member]:
    """Take the draw's row shared and the member's entries lock; the draw and member as stored now."""
    draw_share_lock(draw.pk)
    draw_member_lock(draw.pk, member.pk)
    draw = PrizeDraw.objects.select_related("program").get(pk=draw.pk)
    member = Member.objects.select_related("user", "partner__region").get(pk=member.pk)
    return draw, member


@transaction.atomic
def entries_buy(*, member: Member, draw: PrizeDraw, count: int, token: str, now: datetime | None = None) -> DrawEntry:
    """Buy `count` entries for `entry_price_points` each from the member's account, once per form `token`."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ApplicationError(_("Choose how many entries to buy: one or more."), ErrorCode.VALUE_NOT_POSITIVE)
    draw, member = _entering(draw, member)
    key = f"draw:{draw.pk}:bought:{member.pk}:{token}"
    if (earlier := DrawEntry.objects.filter(key=key).first()) is not None:
        return earlier  # the same form sent again: the first purchase
    now = now or timezone.now()
    _check_entering(draw=draw, member=member, count=count, now=now)
    if not draw.entry_price_points:
        raise ApplicationError(
            _("Entries to %(draw)s cannot be bought.") % {"draw": draw.name}, ErrorCode.DRAW_NOT_FOR_SALE
        )
    entry = DrawEntry.objects.create(draw=draw, member=member, source=EntrySourceKind.BOUGHT, count=count, key=key)
    points = count * draw.entry_price_points
    try:
        ledger.spend(
            account=ledger.member_account(program=draw.program, member=member),
            points=points,
            key=key,
            source_type=EntrySource.DRAW,
            source_id=str(draw.pk),
            explanation=f"{count} × entry to {draw.name}"[:500],
            details={"draw_id": draw.pk, "entry_id": entry.pk, "entries": count, "price": draw.entry_price_points},
            created_by=member.user,
        )
    except ApplicationError as exc:
        if exc.code != ErrorCode.INSUFFICIENT_POINTS:
            raise
        raise ApplicationError(
            _("%(count)s entries cost %(points)s %(currency)s; you have %(available)s.")
            % {
                "count": number_format(count, force_grouping=True),
                "points": number_format(points, force_grouping=True),
                "currency": draw.program.currency_name,
                "available": number_format(exc.extra.get("available", 0), force_grouping=True),
            },
            ErrorCode.INSUFFICIENT_POINTS,
            extra=exc.extra,
        ) from exc
    return entry


@transaction.atomic
def free_entry_take(*, member: Member, draw: PrizeDraw, now: datetime | None = None) -> DrawEntry:
    """The one free entry of a member whose partner's region requires a free way to enter (weighs as a bought one)."""
    draw, member = _entering(draw, member)
    now = now or timezone.now()
    if not member.partner.region.free_draw_entry:
        raise ApplicationError(
            _("A free entry is not offered in your region; entries are earned by activity or bought with points."),
            ErrorCode.DRAW_NO_FREE_ENTRY,
        )
    if DrawEntry.objects.filter(draw=draw, member=member, source=EntrySourceKind.FREE).exists():
        raise ApplicationError(
            _("You already hold your free entry to %(draw)s.") % {"draw": draw.name}, ErrorCode.DRAW_FREE_ENTRY_TAKEN
        )
    _check_entering(draw=draw, member=member, count=1, now=now)
    return DrawEntry.objects.create(
        draw=draw, member=member, source=EntrySourceKind.FREE, count=1, key=f"draw:{draw.pk}:free:{member.pk}"
    )


# Closing ---------------------------------------------------------------------------------------------------------


def activity_points(draw: PrizeDraw) -> dict[int, int]:
    """Points each member earned by the program's rules in the draw's window, net of reversals: {member id: points}.
    Two queries."""
    window = Q(created_at__gte=draw.opens_at, created_at__lt=draw.closes_at)
    mine = Q(account__program=draw.program_id, account__member__isnull=False)
    earned = (
        PointsEntry.objects.filter(window, mine, kind=EntryKind.EARN, details__has_key="rule_id")
        .values("account__member")
        .annotate(points=Sum("available_delta") + Sum("pending_delta"))
        .values_list("account__member", "points")
    )
    reversed_ = (
        PointsEntry.objects.filter(
            mine,
            kind=EntryKind.REVERSE,
            reverses__kind=EntryKind.EARN,
            reverses__details__has_key="rule_id",
            reverses__created_at__gte=draw.opens_at,
            reverses__created_at__lt=draw.closes_at,
            created_at__lt=draw.closes_at,
        )
        .values("account__member")
        .annotate(points=Sum("available_delta") + Sum("pending_delta"))
        .values_list("account__member", "points")
    )
    points: dict[int, int] = {}
    for member_id, value in [*earned, *reversed_]:
        points[member_id] = points.get(member_id, 0) + value
    return points


def _grant_activity_entries(draw: PrizeDraw) -> list[DrawEntry]:
    if not draw.points_per_activity_entry:
        return []
    earned = activity_points(draw)
    active = set(Member.objects.filter(pk__in=list(earned), status=MemberStatus.ACTIVE).values_list("pk", flat=True))
    held = dict(
        DrawEntry.objects.filter(draw=draw).values("member").annotate(total=Sum("count")).values_list("member", "total")
    )
    rows = []
    for member_id in sorted(active):
        count = min(
            earned[member_id] // draw.points_per_activity_entry, draw.max_entries_per_member - held.get(member_id, 0)
        )
        if count >= 1:
            rows.append(
                DrawEntry(
                    draw=draw,
                    member_id=member_id,
                    source=EntrySourceKind.ACTIVITY,
                    count=count,
                    key=f"draw:{draw.pk}:activity:{member_id}",
                )
            )
    return DrawEntry.objects.bulk_create(rows, ignore_conflicts=True)


@transaction.atomic
def draw_close(*, draw: PrizeDraw, now: datetime | None = None) -> PrizeDraw:
    """Open → closed, from the closing moment: the activity entries granted, the entry list hashed."""
    draw = draw_lock(draw.pk)
    now = now or timezone.now()
    if draw.status != DrawStatus.OPEN:
        raise _bad_move(draw, _("closed"))
    if now < draw.closes_at:
        raise ApplicationError(
            _("Entries to %(draw)s are open until %(moment)s.")
            % {"draw": draw.name, "moment": _moment(draw.closes_at)},
            ErrorCode.DATE_WINDOW,
        )
    _grant_activity_entries(draw)
    draw.entries_hash = sha256_hex(entry_list_text(entry_lines(draw)))
    draw.status = DrawStatus.CLOSED
    draw.save(update_fields=["entries_hash", "status", "updated_at"])
    return draw


# Drawing ---------------------------------------------------------------------------------------------------------


@transaction.atomic
def draw_run(*, draw: PrizeDraw, now: datetime | None = None) -> PrizeDraw:
    """Closed → drawn: the winners by the published procedure, the seed revealed (it is on the row: the pages show it
    from now on), and every entrant told the result with how many entries they held (DRAW_RESULT, once)."""
    draw = draw_lock(draw.pk)
    if draw.status != DrawStatus.CLOSED:
        raise _bad_move(draw, _("drawn"))
    lines = entry_lines(draw)
    if sha256_hex(entry_list_text(lines)) != draw.entries_hash:  # never expected: entries are written only here
        raise AssertionError(f"the entries of draw {draw.pk} changed after its close")
    prizes = prize_list(draw)
    winners = derive_winners(seed=draw.seed, entries=lines, prizes=len(prizes))
    DrawWinner.objects.bulk_create(
        [
            DrawWinner(draw=draw, member_id=member_id, rank=rank, prize=prizes[rank - 1][:300])
            for rank, member_id in enumerate(winners, 1)
        ]
    )
    draw.status = DrawStatus.DRAWN
    draw.drawn_at = now or timezone.now()
    draw.save(update_fields=["status", "drawn_at", "updated_at"])
    _tell_entrants(draw, lines, prizes, winners)
    return draw


def _tell_entrants(draw: PrizeDraw, lines, prizes: list[str], winners: list[int]) -> None:
    held: dict[int, int] = {}
    for line in lines:
        held[line.member_id] = held.get(line.member_id, 0) + line.count
    prize_of = {member_id: prizes[rank - 1] for rank, member_id in enumerate(winners, 1)}
    notify_many(
        kind=Kind.DRAW_RESULT,
        notices=[
            Notice(
                member_id,
                f"draw:{draw.pk}:result",
                {
                    "draw": draw.name,
                    "won": member_id in prize_of,
                    "prize": prize_of.get(member_id, ""),
                    "entries": count,
                },
            )
            for member_id, count in sorted(held.items())
        ],
        link_path=reverse("draw_detail", args=[draw.pk]),
    )


# The schedule ----------------------------------------------------------------------------------------------------


def run_due_draws(*, now: datetime | None = None) -> int:
    """Close the open draws whose closing moment has come and draw every closed one (each in its own transaction; a
    draw another run is handling waits its turn and is then skipped). Returns how many were drawn."""
    now = now or timezone.now()
    due = PrizeDraw.objects.filter(status=DrawStatus.OPEN, closes_at__lte=now).order_by("pk")
    for draw in due:
        try:
            draw_close(draw=draw, now=now)
        except ApplicationError:
            continue  # closed meanwhile by another run or the program team
    drawn = 0
    for draw in PrizeDraw.objects.filter(status=DrawStatus.CLOSED).order_by("pk"):
        try:
            draw_run(draw=draw, now=now)
        except ApplicationError:
            continue
        drawn += 1
    return drawn
