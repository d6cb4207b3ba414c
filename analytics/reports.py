"""Scheduled reports: an account manager or a program manager subscribes to a weekly or monthly report of a program
(ReportSubscription) and receives it by e-mail with the XLSX attached, or linked when the file is big.

- portfolio summary: per partner they look after, the period's sales through the program against the same days a
  year earlier, the points issued and redeemed in the period (the daily roll-ups), the tier, the current team and
  the company account's balance;
- partners at risk: analytics.health.at_risk_partners, with each score's reasons;
- points liability: per partner, the points on its accounts and its people's (available and pending), their money
  value at the program's point value, and what expires in the next 90 days.

Each report covers the last complete period before the day it is sent (a week from Monday to Sunday, a calendar
month) and is sent once per period: the daily task (`reports_send_due`) locks each subscription whose period is due
(lock_objects.report_subscription_lock), sees again whether that period was sent, sends, and records the period
(`last_period`) in the same transaction. Two runs at once take turns and the second finds the period sent; a failed
send leaves it due for the next run. (A crash between the mail server's answer and the commit would send again:
at least once, like every message here.)

The e-mail goes through the product's mailer (settings.MAILERS, decisions #14/#15) as communications' own e-mails do
(communications.mail.Email), not through communications.services.notify: the recipients are staff, not members, and
notify's deliveries carry no attachment. Rows are read through partners.visibility for the subscriber as they are
when the report is sent.
"""

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from email.utils import make_msgid

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import BigIntegerField, DecimalField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from analytics import export_jobs, health, kpis
from analytics.error_codes import ErrorCode
from analytics.lock_objects import report_subscription_lock
from analytics.models import (
    ExportJob,
    ExportStatus,
    PointsDay,
    ReportFrequency,
    ReportKind,
    ReportSubscription,
    SalesDay,
)
from communications.mail import Email
from loyalty.common import spreadsheets
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import format_money
from loyalty.common.links import absolute_url, site_hostname
from loyalty.common.queries import count_of
from loyalty.common.storage import private_storage
from loyalty.models import PartnerTier, PointsAccount, PointsLot, Program
from partners.constants import CURRENT_MEMBER_STATUSES
from partners.models import Member
from partners.visibility import viewer_for

logger = logging.getLogger(__name__)

# A file bigger than this is linked, not attached (mail servers refuse big attachments, commonly above 10 MB).
ATTACH_MAX_BYTES = 5 * 1024 * 1024
# A linked report can be downloaded for this long: until the next weekly one.
LINK_DAYS = 7
# Points expiring within this many days are shown in the liability report.
EXPIRING_DAYS = 90
# The at-risk report lists at most this many partners, the weakest first.
AT_RISK_LIMIT = 1000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY = DecimalField(max_digits=16, decimal_places=2)


@dataclass(frozen=True)
class Period:
    """The days a report covers, both included."""

    first: date
    last: date

    def __str__(self) -> str:
        return f"{date_format(self.first, 'SHORT_DATE_FORMAT')} – {date_format(self.last, 'SHORT_DATE_FORMAT')}"


def period_before(frequency: str, today: date) -> Period:
    """The last complete period before `today`: last week (Monday to Sunday), or last month."""
    if frequency == ReportFrequency.WEEKLY:
        monday = today - timedelta(days=today.weekday())
        return Period(monday - timedelta(days=7), monday - timedelta(days=1))
    last = today.replace(day=1) - timedelta(days=1)
    return Period(last.replace(day=1), last)


@dataclass
class Report:
    title: str
    header: list[str]
    rows: list[tuple]
    widths: list[int]
    totals: list[str] = field(default_factory=list)  # lines for the e-mail


# The reports ----------------------------------------------------------------------------------------------------


def _sum_of(queryset, value: str, output_field):
    """The sum of `value` over `queryset` (filtered on OuterRef("pk") of a partner) as a correlated subquery, 0 when
    there is none."""
    summed = queryset.order_by().values("partner_id").annotate(total=Sum(value)).values("total")
    return Coalesce(Subquery(summed, output_field=output_field), 0, output_field=output_field)


def portfolio_report(*, viewer, program: Program, period: Period) -> Report:
    """Per partner the viewer looks after: sales in the period and the same days a year before, points issued and
    redeemed in the period, tier, team, company points. One query."""
    year_before = Period(health.same_day_last_year(period.first), health.same_day_last_year(period.last))
    sales = SalesDay.objects.filter(program_id=program.pk, partner_id=OuterRef("pk"))
    points = PointsDay.objects.filter(program_id=program.pk, partner_id=OuterRef("pk"), day__range=_days(period))
    tier = PartnerTier.objects.filter(program=program, partner=OuterRef("pk")).values("tier__name")[:1]
    company = PointsAccount.objects.filter(program=program, partner=OuterRef("pk")).values("available")[:1]
    members = Member.objects.filter(partner=OuterRef("pk"), status__in=CURRENT_MEMBER_STATUSES)
    partners = (
        viewer.portfolio.select_related("region")
        .annotate(
            sales_now=_sum_of(sales.filter(day__range=_days(period)), "amount", MONEY),
            sales_before=_sum_of(sales.filter(day__range=_days(year_before)), "amount", MONEY),
            issued=_sum_of(points, "issued", BigIntegerField()),
            redeemed=_sum_of(points, "redeemed", BigIntegerField()),
            tier_name=Subquery(tier),
            team=count_of(members, "partner"),
            company_points=Coalesce(Subquery(company, output_field=BigIntegerField()), 0),
        )
        .order_by("name", "pk")
    )
    rows = []
    for p in partners:
        rows.append(
            (
                p.name,
                p.region.name,
                p.tier_name or "",
                p.team,
                p.sales_now,
                p.sales_before,
                kpis.change(p.sales_now, p.sales_before),
                program.money_currency,
                p.issued,
                p.redeemed,
                p.company_points,
            )
        )
    header = [
        _("Partner"),
        _("Region"),
        _("Tier"),
        _("Members"),
        _("Sales in the period"),
        _("Sales a year before"),
        _("Change (%)"),
        _("Currency"),
        _("Points issued"),
        _("Points redeemed"),
        _("Company points"),
    ]
    now = sum((row[4] for row in rows), Decimal(0))
    before = sum((row[5] for row in rows), Decimal(0))
    totals = [
        _("Partners: %(count)s") % {"count": len(rows)},
        _("Sales in the period: %(now)s (a year before: %(before)s)")
        % {"now": _money(now, program), "before": _money(before, program)},
        _("Points issued: %(issued)s; redeemed: %(redeemed)s")
        % {"issued": sum(row[8] for row in rows), "redeemed": sum(row[9] for row in rows)},
    ]
    return Report(str(ReportKind.PORTFOLIO.label), header, rows, [30, 16, 12, 10, 16, 16, 10, 9, 14, 14, 14], totals)


def _days(period: Period) -> tuple[date, date]:
    return (period.first, period.last)


def _money(amount: Decimal, program: Program) -> str:
    return format_money(amount, program.money_currency)


def liability_report(*, viewer, program: Program, period: Period) -> Report:
    """Per partner the viewer looks after: the points on its company account and its people's accounts (available
    and pending), their value in money, and the points expiring in the next EXPIRING_DAYS. One query."""
    horizon = timezone.now() + timedelta(days=EXPIRING_DAYS)
    company = PointsAccount.objects.filter(program=program, partner=OuterRef("pk"))
    people = PointsAccount.objects.filter(program=program, member__partner=OuterRef("pk"))
    lots = PointsLot.objects.filter(account__program=program, remaining__gt=0, is_pending=False, expires_at__lt=horizon)
    partners = (
        viewer.portfolio.select_related("region")
        .annotate(
            company_available=_sum_of(company, "available", BigIntegerField()),
            company_pending=_sum_of(company, "pending", BigIntegerField()),
            people_available=_people_sum(people, "available"),
            people_pending=_people_sum(people, "pending"),
            expiring=_lots_sum(lots),
        )
        .order_by("name", "pk")
    )
    rows = []
    for p in partners:
        available = p.company_available + p.people_available
        pending = p.company_pending + p.people_pending
        rows.append(
            (
                p.name,
                p.region.name,
                available,
                pending,
                kpis.money(available + pending, program),
                program.money_currency,
                p.expiring,
                kpis.money(p.expiring, program),
            )
        )
    header = [
        _("Partner"),
        _("Region"),
        _("Points available"),
        _("Points pending"),
        _("Liability"),
        _("Currency"),
        _("Expiring in %(days)s days") % {"days": EXPIRING_DAYS},
        _("Expiring value"),
    ]
    outstanding = sum(row[2] + row[3] for row in rows)
    totals = [
        _("Points outstanding: %(points)s, worth %(value)s at %(rate)s a point")
        % {
            "points": outstanding,
            "value": _money(kpis.money(outstanding, program), program),
            "rate": program.point_value,
        },
        _("Expiring in the next %(days)s days: %(points)s points")
        % {"days": EXPIRING_DAYS, "points": sum(row[6] for row in rows)},
    ]
    return Report(str(ReportKind.LIABILITY.label), header, rows, [30, 16, 14, 14, 14, 9, 14, 14], totals)


def _people_sum(accounts, value: str):
    summed = accounts.order_by().values("member__partner_id").annotate(total=Sum(value)).values("total")
    return Coalesce(Subquery(summed, output_field=BigIntegerField()), 0)


def _lots_sum(lots):
    """Remaining points of the partner's lots (its company account's and its people's)."""
    own = lots.filter(Q(account__partner=OuterRef("pk")) | Q(account__member__partner=OuterRef("pk")))
    summed = own.order_by().values("account__program_id").annotate(total=Sum("remaining")).values("total")
    return Coalesce(Subquery(summed, output_field=BigIntegerField()), 0)


def at_risk_report(*, viewer, program: Program, period: Period) -> Report:
    """The partners at risk today (analytics.health), the weakest first, with the reasons of their scores."""
    today = period.last + timedelta(days=1)
    weak = health.at_risk_partners(program=program, viewer=viewer, today=today, limit=AT_RISK_LIMIT)
    rows = [
        (
            h.partner.name,
            h.partner.region.name,
            h.partner.account_manager.full_name if h.partner.account_manager else "",
            h.score,
            h.summary,
            h.facts.sales_this_year,
            h.facts.sales_last_year,
            program.money_currency,
            h.facts.members,
            h.facts.active_members,
        )
        for h in weak
    ]
    header = [
        _("Partner"),
        _("Region"),
        _("Account manager"),
        _("Health score"),
        _("Why"),
        _("Sales this year"),
        _("Sales same days last year"),
        _("Currency"),
        _("Members"),
        _("Active members"),
    ]
    totals = [_("Partners at risk: %(count)s") % {"count": len(rows)}]
    return Report(str(ReportKind.AT_RISK.label), header, rows, [30, 16, 22, 10, 60, 16, 16, 9, 10, 10], totals)


REPORTS = {
    ReportKind.PORTFOLIO: portfolio_report,
    ReportKind.AT_RISK: at_risk_report,
    ReportKind.LIABILITY: liability_report,
}


def report_build(*, kind: str, viewer, program: Program, period: Period) -> Report:
    return REPORTS[kind](viewer=viewer_for(viewer), program=program, period=period)


# Subscriptions --------------------------------------------------------------------------------------------------


def report_subscribe(*, user, program: Program, kind: str, frequency: str) -> ReportSubscription:
    """Receive report `kind` of `program` every week or month (again, after stopping it: the periods already sent
    are not sent again). Account and program managers only."""
    if not viewer_for(user).is_manager:
        raise ApplicationError(
            _("Scheduled reports are for account and program managers."), code=ErrorCode.REPORT_NOT_ALLOWED
        )
    subscription, _created = ReportSubscription.objects.update_or_create(
        user=user, program=program, kind=kind, frequency=frequency, defaults={"is_active": True}
    )
    return subscription


def report_unsubscribe(*, user, subscription_id: int) -> ReportSubscription | None:
    """Stop one of the person's reports; None when it is not theirs."""
    subscription = ReportSubscription.objects.filter(user=user, pk=subscription_id).first()
    if subscription is not None and subscription.is_active:
        subscription.is_active = False
        subscription.save(update_fields=["is_active"])
    return subscription


def subscriptions_of(*, user) -> list[ReportSubscription]:
    return list(
        ReportSubscription.objects.filter(user=user, is_active=True).select_related("program").order_by("kind", "pk")
    )


# Sending --------------------------------------------------------------------------------------------------------


def reports_due(*, today: date) -> list[int]:
    """The subscriptions whose last complete period was not sent yet."""
    due = Q()
    for frequency in ReportFrequency.values:
        first = period_before(frequency, today).first
        due |= Q(frequency=frequency) & (Q(last_period__isnull=True) | Q(last_period__lt=first))
    return list(ReportSubscription.objects.filter(due, is_active=True).order_by("pk").values_list("pk", flat=True))


def reports_send_due(*, today: date | None = None) -> int:
    """Send every report that is due (the daily task); returns how many were sent. A report that fails is logged and
    stays due for the next run."""
    today = today or timezone.localdate()
    sent = 0
    for subscription_id in reports_due(today=today):
        try:
            sent += report_send(subscription_id=subscription_id, today=today)
        except Exception:
            logger.exception("Scheduled report %s was not sent", subscription_id)
    return sent


def report_send(*, subscription_id: int, today: date) -> bool:
    """Send one subscription's report for the last complete period before `today`, unless that period was sent;
    True when it was sent now."""
    with transaction.atomic():
        subscription = report_subscription_lock(subscription_id)
        if subscription is None or not subscription.is_active:
            return False
        period = period_before(subscription.frequency, today)
        if subscription.last_period is not None and subscription.last_period >= period.first:
            return False
        user = subscription.user
        if not user.is_active or not viewer_for(user).is_manager:  # no longer staff: nothing to send them
            return False
        with translation.override(settings.LANGUAGE_CODE):
            _email(subscription, period).send()
        subscription.last_period = period.first
        subscription.save(update_fields=["last_period"])
    return True


def _email(subscription: ReportSubscription, period: Period) -> Email:
    program, user = subscription.program, subscription.user
    report = report_build(kind=subscription.kind, viewer=user, program=program, period=period)
    name = f"{subscription.kind}-{period.first.isoformat()}.xlsx"
    with tempfile.TemporaryFile() as file:
        spreadsheets.xlsx_write(
            file, report.rows, header=report.header, sheet_name=report.title[:31], widths=report.widths
        )
        size = file.tell()
        file.seek(0)
        if size <= ATTACH_MAX_BYTES:
            attachment, link = file.read(), ""
        else:
            attachment, link = None, _link(subscription, period, file, len(report.rows))
    variables = {
        "name": user.full_name or user.email,
        "report": report.title,
        "frequency": subscription.get_frequency_display().lower(),
        "program": program.name,
        "period": str(period),
    }
    lines = [_("Hello %(name)s,") % variables, ""]
    if link:
        lines.append(
            _(
                "Your report “%(report)s” of %(program)s for %(period)s is ready; the file is big, so it waits for you "
                "here for %(days)s days:"
            )
            % {**variables, "days": LINK_DAYS}  # fmt: skip
        )
        lines.append(link)
    else:
        lines.append(_("Your report “%(report)s” of %(program)s for %(period)s is attached.") % variables)
    lines += ["", *report.totals, ""]
    lines.append(_("To change or stop your scheduled reports: %(url)s") % {"url": absolute_url("report_subscriptions")})
    message = Email(
        subject=_("%(report)s, %(period)s") % variables,
        body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={"Message-ID": make_msgid(domain=site_hostname())},
    )
    if attachment is not None:
        message.attach(name, attachment, XLSX_TYPE)
    return message


def _link(subscription: ReportSubscription, period: Period, file, rows: int) -> str:
    """Keep a big report as a ready export of the subscriber (their exports page lists it) and give its link."""
    now = timezone.now()
    job = ExportJob.objects.create(
        user=subscription.user,
        kind=f"report:{subscription.kind}",
        file_format="xlsx",
        params={"subscription": subscription.pk, "period": period.first.isoformat()},
        request_key=f"report:{subscription.pk}:{period.first.isoformat()}",
        status=ExportStatus.READY,
        rows_done=rows,
        rows_total=rows,
        finished_at=now,
        expires_at=now + timedelta(days=LINK_DAYS),
    )
    name = f"{export_jobs.FOLDER}/{subscription.user_id}/report-{job.pk}.xlsx"
    job.file_name = private_storage().save(name, File(file))
    job.save(update_fields=["file_name"])
    return absolute_url("export_download", job.pk)
