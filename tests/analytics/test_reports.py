"""Scheduled reports (analytics.reports): the period each covers, what each report holds for the person's portfolio,
the e-mail with the XLSX attached (or linked when big), sent once per period however often the daily task runs (also
by two workers at once), and the page to subscribe and stop."""

import io
import threading
from datetime import date, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import health, reports
from analytics.models import ExportJob, PointsDay, ReportFrequency, ReportKind, ReportSubscription, SalesDay
from loyalty.common.errors import ApplicationError
from tests.analytics.exports_world import build_world
from tests.helpers import messages_of, visible
from tests.partners.factories import AccountManagerFactory

pytestmark = pytest.mark.django_db

MONDAY = date(2026, 3, 9)  # reports go out on the first run after their period
LAST_WEEK = reports.Period(date(2026, 3, 2), date(2026, 3, 8))


@pytest.fixture
def world():
    return build_world()


def subscribe(world, user=None, kind=ReportKind.PORTFOLIO, frequency=ReportFrequency.WEEKLY):
    return reports.report_subscribe(user=user or world.am, program=world.program, kind=kind, frequency=frequency)


def sheet_rows(data: bytes) -> list[tuple]:
    return list(openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))


def add_day(model, world, partner, day, **measures):
    model.objects.create(
        day=day, program_id=world.program.pk, partner_id=partner.pk, role_id=0, region_id=partner.region_id,
        product_line_id=1, **measures,
    )  # fmt: skip


# Periods --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "today", "first", "last"),
    [
        ("weekly", date(2026, 3, 9), date(2026, 3, 2), date(2026, 3, 8)),
        ("weekly", date(2026, 3, 15), date(2026, 3, 2), date(2026, 3, 8)),  # Sunday: last week is still 2–8
        ("weekly", date(2026, 1, 1), date(2025, 12, 22), date(2025, 12, 28)),
        ("monthly", date(2026, 3, 1), date(2026, 2, 1), date(2026, 2, 28)),
        ("monthly", date(2024, 3, 31), date(2024, 2, 1), date(2024, 2, 29)),
        ("monthly", date(2026, 1, 5), date(2025, 12, 1), date(2025, 12, 31)),
    ],
)
def test_a_report_covers_the_last_complete_week_or_month(frequency, today, first, last):
    assert reports.period_before(frequency, today) == reports.Period(first, last)


# What the reports hold ------------------------------------------------------------------------------------------


def test_the_portfolio_summary_has_the_periods_figures_of_the_managers_partners_only(world):
    add_day(SalesDay, world, world.north, date(2026, 3, 4), amount=Decimal("1000.00"), units=1, lines=1)
    add_day(SalesDay, world, world.north, date(2026, 3, 9), amount=Decimal("7.00"), units=1, lines=1)  # after
    add_day(SalesDay, world, world.north, date(2025, 3, 3), amount=Decimal("800.00"), units=1, lines=1)  # a year ago
    add_day(SalesDay, world, world.east, date(2026, 3, 4), amount=Decimal("5.00"), units=1, lines=1)
    add_day(PointsDay, world, world.north, date(2026, 3, 8), issued=120, redeemed=30)

    report = reports.report_build(kind=ReportKind.PORTFOLIO, viewer=world.am, program=world.program, period=LAST_WEEK)

    assert report.header[:7] == [
        "Partner", "Region", "Tier", "Members", "Sales in the period", "Sales a year before", "Change (%)",
    ]  # fmt: skip
    assert report.rows == [
        ("@North Water", "North Sea", "", 2, Decimal("1000.00"), Decimal("800.00"), Decimal("25.0"), "EUR", 120, 30,
         300),
        ("South Pumps", "North Sea", "", 1, Decimal("0"), Decimal("0"), None, "EUR", 0, 0, 0),
    ]  # fmt: skip
    assert report.totals[0] == "Partners: 2"


def test_the_liability_report_has_each_partners_points_and_their_value(world):
    world.program.point_value = Decimal("0.01")
    world.program.save(update_fields=["point_value"])

    report = reports.report_build(kind=ReportKind.LIABILITY, viewer=world.am, program=world.program, period=LAST_WEEK)

    # north: the company's 300 and its people's 500 + 440 available and 25 pending; south: 500
    assert report.rows == [
        ("@North Water", "North Sea", 1240, 25, Decimal("12.65"), "EUR", 0, Decimal("0.00")),
        ("South Pumps", "North Sea", 500, 0, Decimal("5.00"), "EUR", 0, Decimal("0.00")),
    ]
    assert report.totals[0].startswith("Points outstanding: 1765, worth ")


def test_the_at_risk_report_lists_what_partner_health_finds_for_the_manager(world):
    report = reports.report_build(kind=ReportKind.AT_RISK, viewer=world.am, program=world.program, period=LAST_WEEK)

    weak = health.at_risk_partners(program=world.program, viewer=world.am, today=MONDAY, limit=1000)
    assert [row[0] for row in report.rows] == [h.partner.name for h in weak]
    assert [(row[3], row[4]) for row in report.rows] == [(h.score, h.summary) for h in weak]
    assert {row[0] for row in report.rows} <= {"@North Water", "South Pumps"}
    assert report.header[3:5] == ["Health score", "Why"]


# Sending --------------------------------------------------------------------------------------------------------


def test_a_weekly_report_is_sent_once_per_week_with_the_xlsx_attached(world):
    subscription = subscribe(world)

    first = reports.reports_send_due(today=MONDAY)
    again = reports.reports_send_due(today=MONDAY)
    later_that_week = reports.reports_send_due(today=MONDAY + timedelta(days=4))

    assert (first, again, later_that_week) == (1, 0, 0)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [world.am.email]
    assert message.subject == "Portfolio summary, 2 Mar 2026 – 8 Mar 2026"
    assert "Your report “Portfolio summary” of " in message.body
    assert "/exports/reports/" in message.body
    name, data, mimetype = message.attachments[0]
    assert (name, mimetype) == ("portfolio-2026-03-02.xlsx", reports.XLSX_TYPE)
    rows = sheet_rows(data)
    assert rows[0][0] == "Partner" and [row[0] for row in rows[1:]] == ["@North Water", "South Pumps"]
    subscription.refresh_from_db()
    assert subscription.last_period == date(2026, 3, 2)


def test_the_next_week_is_sent_the_next_week(world):
    subscribe(world, kind=ReportKind.LIABILITY)

    sent = [reports.reports_send_due(today=MONDAY + timedelta(days=days)) for days in (0, 1, 7, 8, 15)]

    assert sent == [1, 0, 1, 0, 1]
    assert [m.subject.split(", ")[1] for m in mail.outbox] == [
        "2 Mar 2026 – 8 Mar 2026",
        "9 Mar 2026 – 15 Mar 2026",
        "16 Mar 2026 – 22 Mar 2026",
    ]


def test_a_monthly_report_is_sent_once_per_month(world):
    subscribe(world, frequency=ReportFrequency.MONTHLY)

    sent = [reports.reports_send_due(today=day) for day in (date(2026, 3, 2), date(2026, 3, 9), date(2026, 4, 1))]

    assert sent == [1, 0, 1]
    assert [m.subject for m in mail.outbox] == [
        "Portfolio summary, 1 Feb 2026 – 28 Feb 2026",
        "Portfolio summary, 1 Mar 2026 – 31 Mar 2026",
    ]


def test_a_big_report_is_linked_not_attached_and_waits_on_the_exports_page(client, world, monkeypatch):
    monkeypatch.setattr(reports, "ATTACH_MAX_BYTES", 10)
    subscribe(world)

    reports.reports_send_due(today=MONDAY)

    message = mail.outbox[0]
    job = ExportJob.objects.get(user=world.am)
    assert message.attachments == []
    assert f"/exports/{job.pk}/download/" in message.body
    assert (job.status, job.kind, job.rows_done) == ("ready", "report:portfolio", 2)
    client.force_login(world.am)
    page = client.get("/exports/")
    download = client.get(f"/exports/{job.pk}/download/")
    assert "Portfolio summary (XLSX)" in visible(page)
    assert sheet_rows(b"".join(download.streaming_content))[1][0] == "@North Water"


def test_a_report_that_could_not_be_sent_is_sent_by_the_next_run(world, monkeypatch):
    subscription = subscribe(world)
    real_send = reports.Email.send

    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("the mail server is down")

    monkeypatch.setattr(reports.Email, "send", refuse)
    assert reports.reports_send_due(today=MONDAY) == 0
    subscription.refresh_from_db()
    assert subscription.last_period is None

    monkeypatch.setattr(reports.Email, "send", real_send)
    assert reports.reports_send_due(today=MONDAY + timedelta(days=1)) == 1
    assert len(mail.outbox) == 1


def test_stopped_reports_and_people_no_longer_managers_get_nothing(world):
    stopped = subscribe(world)
    reports.report_unsubscribe(user=world.am, subscription_id=stopped.pk)
    former = AccountManagerFactory()
    subscribe(world, user=former)
    former.staff_role = ""
    former.save(update_fields=["staff_role"])

    assert reports.reports_send_due(today=MONDAY) == 0
    assert mail.outbox == []


def test_subscribing_again_does_not_send_a_period_already_sent(world):
    subscription = subscribe(world)
    reports.reports_send_due(today=MONDAY)
    reports.report_unsubscribe(user=world.am, subscription_id=subscription.pk)

    again = subscribe(world)

    assert again.pk == subscription.pk and again.is_active
    assert reports.reports_send_due(today=MONDAY + timedelta(days=2)) == 0
    assert len(mail.outbox) == 1


def test_only_account_and_program_managers_may_subscribe(world):
    with pytest.raises(ApplicationError, match="for account and program managers"):
        subscribe(world, user=world.owner.user)

    assert not ReportSubscription.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_a_period_once(monkeypatch):
    world = build_world()
    subscription = subscribe(world)
    real_send = reports.Email.send
    both_started = threading.Barrier(2)

    def slow_send(self, *args, **kwargs):
        threading.Event().wait(0.3)  # the other run meanwhile waits on the subscription's lock
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(reports.Email, "send", slow_send)
    results = []

    def run():
        try:
            both_started.wait()
            results.append(reports.report_send(subscription_id=subscription.pk, today=MONDAY))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, True]
    assert len(mail.outbox) == 1
    assert ReportSubscription.objects.get(pk=subscription.pk).last_period == date(2026, 3, 2)


# The page -------------------------------------------------------------------------------------------------------


def test_a_manager_subscribes_and_stops_on_the_reports_page(client, world):
    client.force_login(world.am)

    added = client.post("/exports/reports/", {"kind": "liability", "frequency": "monthly"})
    page = client.get("/exports/reports/")
    subscription = ReportSubscription.objects.get()
    stopped = client.post("/exports/reports/", {"stop": str(subscription.pk)})

    assert added.status_code == 302
    assert messages_of(added) == [f"“Points liability” will be sent to {world.am.email}: Monthly (the 1st)."]
    assert "Points liability" in visible(page) and world.program.name in visible(page)
    assert stopped.status_code == 302
    assert messages_of(stopped) == ["“Points liability” is stopped: you will no longer receive it."]
    subscription.refresh_from_db()
    assert (subscription.kind, subscription.frequency, subscription.is_active) == ("liability", "monthly", False)
    assert 'data-testid="report-subscription"' not in client.get("/exports/reports/").content.decode()


def test_a_bad_choice_is_shown_on_the_form(client, world):
    client.force_login(world.pm)

    response = client.post("/exports/reports/", {"kind": "salaries", "frequency": "weekly"})

    assert response.status_code == 200
    assert "Select a valid choice. salaries is not one of the available choices." in visible(response)
    assert not ReportSubscription.objects.exists()


def test_nobody_stops_another_persons_report(client, world):
    theirs = subscribe(world)
    client.force_login(world.pm)

    assert client.post("/exports/reports/", {"stop": str(theirs.pk)}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active


@pytest.mark.parametrize("who", ["owner", "rep"])
def test_the_reports_page_is_for_managers_only(client, world, who):
    client.force_login(getattr(world, who).user)

    assert client.get("/exports/reports/").status_code == 404
    assert client.post("/exports/reports/", {"kind": "liability", "frequency": "weekly"}).status_code == 404


def test_the_reports_page_takes_a_fixed_number_of_queries(client, world):
    client.force_login(world.am)
    subscribe(world)
    with CaptureQueriesContext(connection) as one:
        client.get("/exports/reports/")
    for kind in (ReportKind.AT_RISK, ReportKind.LIABILITY):
        subscribe(world, kind=kind, frequency=ReportFrequency.MONTHLY)

    with CaptureQueriesContext(connection) as three:
        page = client.get("/exports/reports/")

    assert len(one) == len(three) == 5  # session, user, membership, program, subscriptions with their programs
    assert page.content.decode().count('data-testid="report-subscription"') == 3


def test_the_daily_task_sends_what_is_due(settings, world):
    from analytics import tasks

    subscribe(world)

    assert settings.CELERY_BEAT_SCHEDULE["send-reports"]["task"] == "analytics.tasks.send_reports"
    assert tasks.send_reports.delay().get() == 1
    assert tasks.send_reports.delay().get() == 0
    assert len(mail.outbox) == 1
