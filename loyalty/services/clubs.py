"""Paid club membership: a partner joins a tier for a year by paying the tier's yearly fee, and renews it.

One function joins and renews (`club_join`): a partner's owner on the member site (`member`, paying from the company
account), or a program manager in the back office (`recorded_by`, a fee paid by bank transfer, say). The fee is the
tier's: `join_fee_points` are spent from the PARTNER's company account through loyalty.services.ledger (source
CLUB_FEE, one idempotency key per partner and first day of the paid year, so a year is never paid twice);
`join_fee_money` is recorded on the membership for the program to invoice.

A paid year runs from `starts_on` to the day before the same date a year later (29 Feb → 28 Feb). The first join, and
a join after a membership has lapsed, starts on the day it is paid. A renewal made while a year is running starts
the day after that year ends, so renewing early loses no time; it renews the same tier, and only one year can be
paid ahead (a second early renewal is refused). The person paying says which latest year they saw
(`renews_until`: its last day, None when they saw none): when another renewal got in first (a double tap, a second
tab, a colleague), the payment is refused with "Already renewed: … Nothing was charged." Joins of a partner are
serialised by lock_objects.club_lock, and the unique `renews` of the model is the last guard.

After a join the partner's tier is evaluated at once (loyalty.services.tiers: the tier held is the better of the
qualifying tier and the paid one), so the benefits apply from the next posting. Refusals are ApplicationErrors with a
message the payer reads, and change nothing.

Renewal reminders (`remind_club_renewals`, the daily task loyalty.tasks.remind_club_renewals): the active owners of
a partner whose latest paid year ends within 30 days, and again within 7, hear of it once each, unless it was
renewed.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.functional import lazy
from django.utils.translation import gettext as _

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import format_money
from loyalty.constants import EntrySource
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import club_lock, tier_evaluation_lock
from loyalty.models import ClubMembership, Program, Tier
from loyalty.selectors.clubs import held_tier, latest_membership
from loyalty.services import ledger
from loyalty.services.tiers import tier_evaluate
from partners.constants import MemberStatus, PartnerStatus
from partners.models import Member, Partner

REMINDER_DAYS = (30, 7)  # days before a paid year ends when its owners are reminded (each once)
DAY_FORMAT = "j M Y"


def year_from(starts_on: date) -> date:
    """The last day of a paid year starting `starts_on`: the day before the same date a year later (a year from 1 Mar
    2027 ends on 29 Feb 2028; from 29 Feb 2028, on 28 Feb 2029)."""
    same_date = starts_on + relativedelta(years=1)  # 29 February: 28 February the year after
    return same_date if same_date.day != starts_on.day else same_date - timedelta(days=1)


def _day(value: date) -> str:
    return date_format(value, DAY_FORMAT)


def fee_text(program: Program, *, points: int | None = None, money: Decimal | None = None) -> str:
    """A fee as members read it, in the active language: "5,000 AquaPoints" or "€450.00"."""
    if points is not None:
        return f"{number_format(points, force_grouping=True)} {program.currency_name}"
    return format_money(money, program.money_currency)


_lazy_fee_text = lazy(fee_text, str)


# What a join would be --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClubQuote:
    """What joining or renewing `tier` now would do: the year it pays (`starts_on` .. `ends_on`), the term it renews
    (None: a join), and the fee (points or money). `latest` is the partner's latest term, whose last day is the
    `renews_until` to send back."""

    program: Program
    tier: Tier
    latest: ClubMembership | None
    renews: ClubMembership | None
    starts_on: date
    ends_on: date
    fee_points: int | None
    fee_money: Decimal | None

    @property
    def is_renewal(self) -> bool:
        return self.renews is not None

    @property
    def renews_until(self) -> date | None:
        return self.latest.ends_on if self.latest is not None else None

    @property
    def fee(self) -> str:
        return fee_text(self.program, points=self.fee_points, money=self.fee_money)

    @property
    def summary(self) -> str:
        """ "Renew Gold until 6 Dec 2028 for 5,000 AquaPoints from the company account"."""
        words = {"tier": self.tier.name, "until": _day(self.ends_on), "fee": self.fee}
        if self.fee_points is not None:
            if self.is_renewal:
                return _("Renew %(tier)s until %(until)s for %(fee)s from the company account") % words
            return _("Join %(tier)s until %(until)s for %(fee)s from the company account") % words
        if self.is_renewal:
            return _("Renew %(tier)s until %(until)s for %(fee)s, invoiced to the company") % words
        return _("Join %(tier)s until %(until)s for %(fee)s, invoiced to the company") % words


def club_quote(
    *,
    program: Program,
    partner: Partner,
    tier: Tier,
    latest: ClubMembership | None,
    held: Tier | None,
    today: date,
) -> ClubQuote:
    """What joining `tier` on `today` would be, given the partner's latest term and the tier it holds; raises the
    refusal (an ApplicationError) when it may not. No query: the club page asks it of every joinable tier."""
    if tier.program_id != program.pk:
        raise ApplicationError(
            _("%(tier)s is a tier of another program.") % {"tier": tier.name}, ErrorCode.OTHER_PROGRAM
        )
    if not program.is_active:
        raise ApplicationError(
            _("%(program)s is not running: nobody can join its tiers.") % {"program": program.name},
            ErrorCode.PROGRAM_INACTIVE,
        )
    if partner.status != PartnerStatus.ACTIVE:
        raise ApplicationError(
            _("%(partner)s is %(status)s: only active partners can join a tier.")
            % {"partner": partner.name, "status": partner.get_status_display().lower()},
            ErrorCode.PARTNER_INACTIVE,
        )
    if not tier.joinable:
        raise ApplicationError(
            _("%(tier)s cannot be joined for a fee: partners reach it by qualifying.") % {"tier": tier.name},
            ErrorCode.CLUB_NOT_JOINABLE,
        )
    renews = None
    if latest is not None and latest.ends_on >= today:  # a paid year is running (and perhaps the next one paid)
        words = {"tier": latest.tier.name, "until": _day(latest.ends_on), "starts": _day(latest.starts_on)}
        if latest.tier_id != tier.pk:
            raise ApplicationError(
                _(
                    "Your company is a paying member of %(tier)s until %(until)s, and a renewal renews %(tier)s. "
                    "Another tier can be joined once that membership has ended."
                )
                % words,
                ErrorCode.CLUB_OTHER_TIER,
            )
        if latest.starts_on > today:
            raise ApplicationError(
                _(
                    "Already renewed: your %(tier)s membership runs until %(until)s. The next renewal is possible "
                    "from %(starts)s, when the year paid ahead begins."
                )
                % words,
                ErrorCode.CLUB_RENEWED_AHEAD,
            )
        renews, starts_on = latest, latest.ends_on + timedelta(days=1)
    else:
        if held is not None and held.program_id == program.pk and held.rank > tier.rank:
            raise ApplicationError(
                _("Your company already holds %(held)s, above %(tier)s: joining %(tier)s would add nothing.")
                % {"held": held.name, "tier": tier.name},
                ErrorCode.CLUB_TIER_HELD,
            )
        starts_on = today
    return ClubQuote(
        program=program,
        tier=tier,
        latest=latest,
        renews=renews,
        starts_on=starts_on,
        ends_on=year_from(starts_on),
        fee_points=tier.join_fee_points,
        fee_money=tier.join_fee_money if tier.join_fee_points is None else None,
    )


# Joining and renewing --------------------------------------------------------------------------------------------


def _check_payer(*, partner: Partner, member: Member | None, recorded_by) -> None:
    if (member is None) == (recorded_by is None):
        raise ApplicationError(
            _("A club membership is paid by the partner's owner or recorded by a program manager."),
            ErrorCode.FORBIDDEN,
        )
    if recorded_by is not None:
        if not (recorded_by.is_active and getattr(recorded_by, "is_program_manager", False)):
            raise ApplicationError(_("Only program managers can record a club membership."), ErrorCode.FORBIDDEN)
        return
    if member.partner_id != partner.pk or not member.role.is_owner:
        raise ApplicationError(
            _("Only an owner of %(partner)s can join or renew its club membership.") % {"partner": partner.name},
            ErrorCode.FORBIDDEN,
        )
    if member.status != MemberStatus.ACTIVE:
        raise ApplicationError(
            _("Only active members can pay for a club membership; this membership is %(status)s.")
            % {"status": member.get_status_display().lower()},
            ErrorCode.MEMBER_INACTIVE,
        )


def _changed(latest: ClubMembership | None, renews_until: date | None, today: date) -> ApplicationError:
    """The refusal when the latest term is not the one the payer saw: someone paid meanwhile."""
    if latest is not None and latest.ends_on >= today:
        words = {"until": _day(latest.ends_on), "tier": latest.tier.name}
        if renews_until is None:
            message = _("Already joined: your company's %(tier)s membership runs until %(until)s. Nothing was charged.")
        else:
            message = _("Already renewed: your membership now runs until %(until)s. Nothing was charged.")
        return ApplicationError(message % words, ErrorCode.CLUB_ALREADY_RENEWED)
    return ApplicationError(
        _("The club membership changed since this page was shown. Nothing was charged: look at it again."),
        ErrorCode.CLUB_ALREADY_RENEWED,
    )


def _spend_fee(*, quote: ClubQuote, partner: Partner, member: Member | None, recorded_by):
    program, tier = quote.program, quote.tier
    key = f"club-fee:{program.pk}:{partner.pk}:{quote.starts_on.isoformat()}"
    try:
        return ledger.spend(
            account=ledger.partner_account(program=program, partner=partner),
            points=quote.fee_points,
            key=key,
            source_type=EntrySource.CLUB_FEE,
            source_id=str(tier.pk),
            explanation=f"{tier.name} membership {quote.starts_on:%Y-%m-%d} – {quote.ends_on:%Y-%m-%d}"[:500],
            details={
                "tier_id": tier.pk,
                "starts_on": quote.starts_on.isoformat(),
                "ends_on": quote.ends_on.isoformat(),
                "renews_id": quote.renews.pk if quote.renews is not None else None,
            },
            created_by=member.user if member is not None else recorded_by,
        )
    except ApplicationError as exc:
        if exc.code != ErrorCode.INSUFFICIENT_POINTS:
            raise
        raise ApplicationError(
            _("A year of %(tier)s costs %(fee)s; the company account has %(available)s %(currency)s.")
            % {
                "tier": tier.name,
                "fee": quote.fee,
                "available": number_format(exc.extra.get("available", 0), force_grouping=True),
                "currency": program.currency_name,
            },
            ErrorCode.INSUFFICIENT_POINTS,
            extra=exc.extra,
        ) from exc


@transaction.atomic
def club_join(
    *,
    program: Program,
    partner: Partner,
    tier: Tier,
    renews_until: date | None,
    member: Member | None = None,
    recorded_by=None,
    today: date | None = None,
) -> ClubMembership:
    """Join `tier` for a year, or renew the running membership from the day after it ends, paying the tier's fee.
    `renews_until` is the last day of the latest term the payer saw (None: they saw none). Returns the new term."""
    today = today or timezone.localdate()
    _check_payer(partner=partner, member=member, recorded_by=recorded_by)
    club_lock(program.pk, partner.pk)
    tier_evaluation_lock(program.pk)  # the lock order: the tier evaluation below, before the company account
    partner = Partner.objects.get(pk=partner.pk)
    tier = Tier.objects.get(pk=tier.pk)
    latest = latest_membership(program=program, partner=partner)
    if (latest.ends_on if latest is not None else None) != renews_until:
        raise _changed(latest, renews_until, today)
    quote = club_quote(
        program=program,
        partner=partner,
        tier=tier,
        latest=latest,
        held=held_tier(program=program, partner=partner),
        today=today,
    )
    membership = ClubMembership(
        program=program,
        partner=partner,
        tier=tier,
        starts_on=quote.starts_on,
        ends_on=quote.ends_on,
        renews=quote.renews,
        fee_points=quote.fee_points,
        fee_money=quote.fee_money,
        bought_by=member,
        recorded_by=recorded_by,
    )
    if quote.fee_points is not None:
        membership.entry = _spend_fee(quote=quote, partner=partner, member=member, recorded_by=recorded_by)
    membership.full_clean(validate_unique=False)  # the database's unique `renews` and `entry` are checked below
    try:
        with transaction.atomic():
            membership.save()
    except IntegrityError:  # never expected under club_lock: the same term renewed twice
        raise _changed(latest_membership(program=program, partner=partner), renews_until, today) from None
    tier_evaluate(program=program, partner=partner, today=today)
    return membership


# Renewal reminders -----------------------------------------------------------------------------------------------


def remind_club_renewals(*, today: date | None = None) -> int:
    """Tell the active owners of every active partner whose latest paid year ends within 30 days (and again within
    7) that it can be renewed, with the tier's fee now; once each (the source key names the term and the reminder).
    A renewed term, or one of a tier that can no longer be joined, is not reminded of. Returns how many notices were
    made (told before or not)."""
    today = today or timezone.localdate()
    made = 0
    for program in Program.objects.filter(is_active=True).order_by("pk"):
        ending = list(
            ClubMembership.objects.filter(
                program=program,
                ends_on__range=(today, today + timedelta(days=max(REMINDER_DAYS))),
                renewal__isnull=True,
                partner__status=PartnerStatus.ACTIVE,
            )
            .select_related("tier")
            .order_by("pk")
        )
        ending = [term for term in ending if term.tier.joinable]
        if not ending:
            continue
        owners = Member.objects.filter(
            partner_id__in={term.partner_id for term in ending}, status=MemberStatus.ACTIVE, role__is_owner=True
        ).order_by("pk")
        by_partner: dict[int, list[int]] = {}
        for member_id, partner_id in owners.values_list("pk", "partner_id"):
            by_partner.setdefault(partner_id, []).append(member_id)
        notices = []
        for term in ending:
            reminder = min(days for days in REMINDER_DAYS if (term.ends_on - today).days <= days)
            # The fee is written when the message is rendered, in its language ("5,000" or "5.000"), like the date.
            fee = _lazy_fee_text(program, points=term.tier.join_fee_points, money=term.tier.join_fee_money)
            variables = {"tier": term.tier.name, "ends_on": term.ends_on, "fee": fee}
            for member_id in by_partner.get(term.partner_id, []):
                notices.append(Notice(member_id, f"club_renewal:{term.pk}:{reminder}", variables))
        notify_many(kind=Kind.CLUB_RENEWAL, notices=notices, link_path=reverse("club"))
        made += len(notices)
    return made
