"""The communications benchmark (issue #11): a campaign's fan-out, e-mail sending, and the inbox bell's queries.

Data (database <name>_communications): seed_demo at --scale (334 ≈ 100,000 members) and a program
"bench-communications". Each run clears the deliveries of the benchmark's earlier runs, so that the frequency cap
(marketing messages per week) does not shrink the audience run after run.

Measured, each in its own process (Django set up, bench settings):
1. fan-out: campaign_send of a new campaign to every active member (audience selected, recipients stored with a
   10 % control group, each other member's message rendered and stored as delivery rows on their channels), one
   transaction; its wall time and the process's peak memory (ru_maxrss, Django included). The sending tasks it
   queues after commit are counted, not run: the broker is out of the measure;
2. the floor: the same recipient and delivery rows copied by one INSERT ... SELECT each into clones of their tables
   (same columns, indexes and checks), committed: what storing these rows costs the database alone;
3. sending: EMAILS e-mails through the real path in one process, as one worker would: notify_many (templates
   rendered, rows stored), then the sending tasks it queued, run in order (each a batch: rows locked, headers, one
   connection of the SMTP backend of MAILERS, the rows updated in one statement), to a local SMTP sink (a
   subprocess that accepts and discards);
4. the bare loop: the same messages, rendered and built beforehand, sent by smtplib over one connection to the
   same sink;
5. the member home page as the demo sales rep: its query count with the bell (its count read cold, then from the
   cache) and without the bell's context processor (the page as it was before the inbox).

Targets: fan-out rate at least 0.25 of the floor's, peak memory under 300 MB; sending rate at least 0.5 of the
bare loop's; the home page at most one query more than without the bell.
"""

import asyncio
import email.policy
import resource
import signal
import smtplib
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bench import harness
from bench.harness import BenchError, Options

NAME = "communications"
DESCRIPTION = "campaign fan-out to ~100,000 members vs INSERT ... SELECT; 20,000 e-mails vs bare smtplib; bell"

EMAILS = 20_000
MIN_FANOUT_RATIO = 0.25
MAX_PEAK_MB = 300
MIN_SEND_RATIO = 0.5
MAX_EXTRA_QUERIES = 1
PROGRAM_SLUG = "bench-communications"
CAMPAIGN_PREFIX = "Benchmark campaign"
SEND_SOURCE_PREFIX = "bench-send:"
HOME_PAGE = "/"
HOME_WHO = "Sales rep"
BELL_PROCESSOR = "communications.context_processors.inbox"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def _tasks_counted():
    """The sending task's .delay() holds its batches of delivery ids instead of queueing (or, eager, sending) them:
    the benchmark measures storing apart from sending, and with no broker."""
    from celery import current_app

    from communications.sending import SEND_TASK

    task = current_app.tasks[SEND_TASK]
    queued: list[list[int]] = []
    task.delay = queued.append
    try:
        yield queued
    finally:
        del task.delay


# The Django side (child processes) ---------------------------------------------------------------------------


def prepare() -> dict:
    """Forget the benchmark's earlier runs (their campaigns, recipients and deliveries), then make a new campaign
    to every active member with one message for all."""
    from django.db import connection, transaction

    from communications.campaigns import source_key
    from communications.constants import Kind
    from communications.models import Campaign, CampaignMessage, CampaignRecipient, Delivery
    from partners.constants import MemberStatus
    from partners.models import Member

    with transaction.atomic():
        program, _ = harness.bench_program(PROGRAM_SLUG, "Benchmark: communications", started_days_ago=365)
        earlier = list(Campaign.objects.filter(program=program))
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {CampaignRecipient._meta.db_table} WHERE campaign_id = ANY(%s)",
                [[campaign.pk for campaign in earlier]],
            )
            cursor.execute(
                f"DELETE FROM {Delivery._meta.db_table} WHERE (kind = %s AND source_key = ANY(%s)) "
                "OR source_key LIKE %s",
                [Kind.CAMPAIGN.value, [source_key(campaign) for campaign in earlier], SEND_SOURCE_PREFIX + "%"],
            )
        Campaign.objects.filter(pk__in=[campaign.pk for campaign in earlier]).delete()
        campaign = Campaign.objects.create(
            program=program, name=f"{CAMPAIGN_PREFIX} {datetime.now(UTC):%Y-%m-%d %H:%M:%S}", control_percent=10
        )
        CampaignMessage.objects.create(
            campaign=campaign,
            subject="Spring news for {{ first_name }}",
            body="Hello {{ first_name }},\n\n{{ partner_name }} earns double points on softeners this month.",
        )
    return {
        "campaign_id": campaign.pk,
        "members": Member.objects.count(),
        "active_members": Member.objects.filter(status=MemberStatus.ACTIVE).count(),
        "earlier_campaigns": len(earlier),
    }


def fan_out(*, campaign_id: int) -> dict:
    """campaign_send of the campaign: wall time, peak memory and what it stored."""
    from django.db.models import Count, Q

    from communications.campaigns import campaign_send, source_key
    from communications.constants import Kind
    from communications.models import Campaign, Delivery

    campaign = Campaign.objects.get(pk=campaign_id)
    rss_before = _peak_mb()
    with _tasks_counted() as queued:
        started = time.perf_counter()
        campaign_send(campaign=campaign)
        seconds = time.perf_counter() - started
    peak = _peak_mb()
    recipients = campaign.recipients.aggregate(all=Count("pk"), control=Count("pk", filter=Q(in_control_group=True)))
    by_channel = dict(
        Delivery.objects.filter(kind=Kind.CAMPAIGN, source_key=source_key(campaign))
        .values_list("channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {
        "seconds": seconds,
        "recipients": recipients["all"],
        "control_group": recipients["control"],
        "deliveries": sum(by_channel.values()),
        "deliveries_by_channel": by_channel,
        "tasks_queued": len(queued),
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak, 1),
    }


def floor(*, campaign_id: int) -> dict:
    """The campaign's recipient and delivery rows copied by INSERT ... SELECT into clones of their tables (same
    columns, indexes and checks; no foreign keys), in one transaction, committed: the database's own cost of
    storing exactly these rows."""
    from django.db import connection, transaction

    from communications.campaigns import source_key
    from communications.constants import Kind
    from communications.models import CampaignRecipient, Delivery

    recipients, deliveries = CampaignRecipient._meta.db_table, Delivery._meta.db_table
    clones = {recipients: "bench_floor_recipient", deliveries: "bench_floor_delivery"}
    with connection.cursor() as cursor:
        for table, clone in clones.items():
            cursor.execute(f"DROP TABLE IF EXISTS {clone}")
            cursor.execute(f"CREATE TABLE {clone} (LIKE {table} INCLUDING ALL)")
        try:
            started = time.perf_counter()
            with transaction.atomic():
                cursor.execute(
                    f"INSERT INTO {clones[recipients]} SELECT * FROM {recipients} WHERE campaign_id = %s",
                    [campaign_id],
                )
                rows = cursor.rowcount
                cursor.execute(
                    f"INSERT INTO {clones[deliveries]} SELECT * FROM {deliveries} WHERE kind = %s AND source_key = %s",
                    [Kind.CAMPAIGN.value, source_key(_campaign(campaign_id))],
                )
                rows += cursor.rowcount
            seconds = time.perf_counter() - started
        finally:
            for clone in clones.values():
                cursor.execute(f"DROP TABLE IF EXISTS {clone}")
    return {"rows": rows, "seconds": seconds}


def _campaign(campaign_id: int):
    from communications.models import Campaign

    return Campaign.objects.get(pk=campaign_id)


def _mailers(port: int) -> dict:
    return {
        "default": {
            "BACKEND": "communications.mail.EmailBackend",  # the product's SMTP backend (settings.MAILERS)
            "OPTIONS": {"host": harness.LOOPBACK, "port": port, "timeout": 10},
        }
    }


def send_emails(*, port: int, count: int) -> dict:
    """`count` e-mails through the real path in this one process: notify_many for `count` members who get this
    topic by e-mail (their preference set beforehand, unmeasured), then the sending tasks it queued, run in order as
    one worker would. Returns the times of both phases, the tasks run and the ids of the e-mails sent."""
    from django.db.models import Count
    from django.test import override_settings

    from communications import tasks
    from communications.constants import Channel, DeliveryStatus, Kind, topic_of
    from communications.models import Delivery, Preference
    from communications.services import Notice, notify_many
    from partners.constants import MemberStatus
    from partners.models import Member

    kind = Kind.POINTS_IMPORTED
    members = list(
        Member.objects.filter(status=MemberStatus.ACTIVE)
        .exclude(user__email="")
        .order_by("pk")
        .values_list("pk", flat=True)[:count]
    )
    if len(members) < count:
        raise BenchError(f"only {len(members)} active members with an e-mail address; {count} wanted")
    Preference.objects.bulk_create(
        [Preference(member_id=pk, topic=topic_of(kind), channel=Channel.EMAIL) for pk in members],
        update_conflicts=True,
        unique_fields=["member", "topic"],
        update_fields=["channel", "opted_in"],
    )
    run = f"{SEND_SOURCE_PREFIX}{datetime.now(UTC):%Y%m%d%H%M%S%f}"
    notices = [Notice(pk, f"{run}:{pk}", {"points": 1250 + pk % 500, "lines": 3 + pk % 7}) for pk in members]
    with override_settings(MAILERS=_mailers(port)), _tasks_counted() as queued:
        started = time.perf_counter()
        stored = notify_many(kind=kind, notices=notices)
        stored_at = time.perf_counter()
        for delivery_ids in queued:
            tasks.send_deliveries(delivery_ids)
        finished = time.perf_counter()
    emails = [d.pk for d in stored if d.channel == Channel.EMAIL and d.status == DeliveryStatus.QUEUED]
    statuses = dict(Delivery.objects.filter(pk__in=emails).values_list("status").annotate(n=Count("pk")).order_by())
    return {
        "store_seconds": stored_at - started,
        "send_seconds": finished - stored_at,
        "seconds": finished - started,
        "stored": len(stored),
        "emails": len(emails),
        "tasks": len(queued),
        "statuses": statuses,
        "delivery_ids": emails,
    }


def bare_smtp(*, port: int, delivery_ids: list[int]) -> dict:
    """The same e-mails (built from the stored rows with the same headers before the clock starts) sent by a bare
    smtplib loop over one connection to the same sink."""
    from django.conf import settings
    from django.core.mail import EmailMessage

    from communications.models import Delivery
    from communications.sending import _headers

    messages = []
    for delivery in Delivery.objects.filter(pk__in=delivery_ids).order_by("pk"):
        message = EmailMessage(
            subject=delivery.subject,
            body=delivery.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[delivery.address],
            headers=_headers(delivery),
        )
        messages.append((delivery.address, message.message(policy=email.policy.SMTP).as_bytes()))
    sender = settings.DEFAULT_FROM_EMAIL
    started = time.perf_counter()
    with smtplib.SMTP(harness.LOOPBACK, port, timeout=10) as smtp:
        for address, data in messages:
            smtp.sendmail(sender, [address], data)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "emails": len(messages)}


def home_queries(*, email: str = "", host: str = harness.LOOPBACK) -> dict:
    """The member home page's query count (the second request: the first warms per-process caches) with the bell
    read cold (its cached count forgotten), with the bell's count cached, and without the bell's context processor
    (the page as it was before the inbox)."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from communications.selectors import inbox_forget_unread_counts, inbox_list
    from partners.demo import demo_logins
    from partners.models import User

    user = User.objects.get(email=email or dict(demo_logins())[HOME_WHO])
    client = Client(HTTP_HOST=host)
    client.force_login(user)

    def count(*, cold: bool) -> tuple[int, int]:
        client.get(HOME_PAGE)
        if cold:
            inbox_forget_unread_counts([member.pk for member in user.memberships.all()])
        with CaptureQueriesContext(connection) as queries:
            response = client.get(HOME_PAGE)
        return response.status_code, len(queries)

    status, cold = count(cold=True)
    _, cached = count(cold=False)
    templates = [{**engine, "OPTIONS": {**engine["OPTIONS"]}} for engine in settings.TEMPLATES]
    for engine in templates:
        processors = engine["OPTIONS"].get("context_processors", [])
        engine["OPTIONS"]["context_processors"] = [p for p in processors if p != BELL_PROCESSOR]
    with override_settings(TEMPLATES=templates):
        status_before, before = count(cold=True)
    unread = inbox_list(viewer=user).filter(read_at__isnull=True).count()
    return {
        "status": status,
        "status_without_bell": status_before,
        "queries_bell_cold": cold,
        "queries_bell_cached": cached,
        "queries_without_bell": before,
        "unread": unread,
    }


# The SMTP sink (a subprocess: its work stays out of the measured processes) -----------------------------------


class _Sink(asyncio.Protocol):
    """Just enough SMTP to take messages and drop them; XCOUNT answers how many it took."""

    received = 0

    def connection_made(self, transport):
        self.transport, self.buffer, self.in_data = transport, b"", False
        transport.write(b"220 bench sink\r\n")

    def data_received(self, data):
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buffer, self.in_data = self.buffer[end + 5 :], False
                _Sink.received += 1
                self.transport.write(b"250 OK queued\r\n")
                continue
            line, found, rest = self.buffer.partition(b"\r\n")
            if not found:
                return
            self.buffer = rest
            self._command(line.split(b" ", 1)[0].upper())

    def _command(self, verb: bytes) -> None:
        if verb == b"DATA":
            self.in_data = True
            # A message may be empty: DATA's end marker then follows at once.
            self.buffer = b"\r\n" + self.buffer
            self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"221 Bye\r\n")
            self.transport.close()
        elif verb == b"XCOUNT":
            self.transport.write(f"250 {_Sink.received}\r\n".encode())
        else:  # EHLO, HELO, MAIL, RCPT, RSET, NOOP
            self.transport.write(b"250 OK\r\n")


def sink_main() -> None:
    """Serve the sink on a free loopback port; print "READY <port>"; stop on SIGTERM."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Sink, harness.LOOPBACK, 0)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await stop.wait()

    asyncio.run(serve())


@contextmanager
def smtp_sink():
    """A running sink: yields its port."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from bench.communications import sink_main; sink_main()"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=harness.BASE_DIR,
    )
    try:
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise BenchError(f"the SMTP sink did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        process.terminate()
        process.wait(timeout=10)


def sink_count(port: int) -> int:
    """How many messages the sink has taken so far."""
    with smtplib.SMTP(harness.LOOPBACK, port, timeout=10) as smtp:
        code, answer = smtp.docmd("XCOUNT")
    return int(answer)


# The benchmark -----------------------------------------------------------------------------------------------


def measure(database_url: str, *, emails: int = EMAILS, label: str = "   ") -> dict:
    """Every measure against `database_url` (seeded): the figures `report` judges."""
    facts = harness.django_call(database_url, "bench.communications:prepare", label=label)
    print(
        f"   {facts['members']:,} members, {facts['active_members']:,} active; campaign {facts['campaign_id']} "
        f"({facts['earlier_campaigns']} earlier benchmark campaign(s) cleared)",
        flush=True,
    )
    load = {"fan_out": harness.report_load("before the fan-out")}
    campaign = {"campaign_id": facts["campaign_id"]}
    fanned = harness.django_call(database_url, "bench.communications:fan_out", campaign, label=label)
    print(f"   fan-out: {fanned['deliveries']:,} deliveries in {fanned['seconds']:.1f} s", flush=True)
    floored = harness.django_call(database_url, "bench.communications:floor", campaign, label=label)
    print(f"   INSERT ... SELECT: {floored['rows']:,} rows in {floored['seconds']:.2f} s", flush=True)
    with smtp_sink() as port:
        load["send"] = harness.report_load("before the sending")
        count = min(emails, facts["active_members"])  # all of them at a small --scale
        sent = harness.django_call(
            database_url, "bench.communications:send_emails", {"port": port, "count": count}, label=label
        )
        received_real = sink_count(port)
        print(f"   real path: {sent['emails']:,} e-mails in {sent['seconds']:.1f} s", flush=True)
        bare = harness.django_call(
            database_url,
            "bench.communications:bare_smtp",
            {"port": port, "delivery_ids": sent.pop("delivery_ids")},
            label=label,
        )
        received = sink_count(port)
        print(f"   bare smtplib: {bare['emails']:,} e-mails in {bare['seconds']:.1f} s", flush=True)
    sent["received_by_sink"] = received_real
    bare["received_by_sink"] = received - received_real
    home = harness.django_call(database_url, "bench.communications:home_queries", label=label)
    return {"facts": facts, "load_average": load, "fan_out": fanned, "floor": floored, "send": sent, "bare": bare,
            "home": home}  # fmt: skip


def report(figures: dict) -> tuple[bool, list]:
    """Print the figures and the verdicts; returns (passed, checks)."""
    fanned, floored, sent, bare, home = (figures[k] for k in ("fan_out", "floor", "send", "bare", "home"))
    rows = fanned["deliveries"] + fanned["recipients"]
    fan_rate, floor_rate = rows / fanned["seconds"], floored["rows"] / floored["seconds"]
    fan_ratio = fan_rate / floor_rate
    send_rate, bare_rate = sent["emails"] / sent["seconds"], bare["emails"] / bare["seconds"]
    send_ratio = send_rate / bare_rate
    extra = home["queries_bell_cold"] - home["queries_without_bell"]
    peak = fanned["peak_rss_mb"]
    table = harness.Table(["measure", "count", "seconds", "per second", "notes"])
    table.add("campaign_send", f"{rows:,} rows", f"{fanned['seconds']:.1f}", f"{fan_rate:,.0f}",
              f"{fanned['recipients']:,} recipients ({fanned['control_group']:,} control), "
              f"{fanned['deliveries']:,} deliveries {fanned['deliveries_by_channel']}")  # fmt: skip
    table.add("INSERT ... SELECT", f"{floored['rows']:,} rows", f"{floored['seconds']:.2f}", f"{floor_rate:,.0f}",
              "the same rows into clones of the tables (same indexes)")  # fmt: skip
    table.add("real e-mail path", f"{sent['emails']:,} e-mails", f"{sent['seconds']:.1f}", f"{send_rate:,.0f}",
              f"notify_many {sent['store_seconds']:.1f} s + send task {sent['send_seconds']:.1f} s; "
              f"sink took {sent['received_by_sink']:,}")  # fmt: skip
    table.add("bare smtplib loop", f"{bare['emails']:,} e-mails", f"{bare['seconds']:.1f}", f"{bare_rate:,.0f}",
              f"pre-rendered, one connection; sink took {bare['received_by_sink']:,}")  # fmt: skip
    table.add("home page queries", f"{home['queries_bell_cold']}", "", "",
              f"bell cached {home['queries_bell_cached']}, without the bell {home['queries_without_bell']}; "
              f"{home['unread']} unread")  # fmt: skip
    checks = [
        ("fan-out vs INSERT ... SELECT", f"{fan_ratio:.3f}", f">= {MIN_FANOUT_RATIO}", fan_ratio >= MIN_FANOUT_RATIO),
        ("fan-out peak memory", f"{peak:,.0f} MB", f"< {MAX_PEAK_MB} MB", peak < MAX_PEAK_MB),
        ("fan-out stores everyone", f"{fanned['recipients']:,} recipients", "> 0", fanned["recipients"] > 0),
        ("sending vs bare smtplib", f"{send_ratio:.3f}", f">= {MIN_SEND_RATIO}", send_ratio >= MIN_SEND_RATIO),
        ("every e-mail sent once", f"{sent['received_by_sink']:,} of {sent['emails']:,}", "all",
         sent["received_by_sink"] == sent["emails"] == sent["statuses"].get("sent", 0) > 0),
        ("home page: bell's extra queries", f"{extra:+d}", f"<= +{MAX_EXTRA_QUERIES}",
         extra <= MAX_EXTRA_QUERIES and home["status"] == home["status_without_bell"] == 200),
    ]  # fmt: skip
    verdicts = harness.Table(["target", "measured", "wanted", "result"])
    for name, measured, wanted, ok in checks:
        verdicts.add(name, measured, wanted, "PASS" if ok else "FAIL")
    print()
    print(table.render())
    print()
    print(verdicts.render(), flush=True)
    figures["ratios"] = {"fan_out_to_floor": round(fan_ratio, 4), "send_to_bare": round(send_ratio, 4),
                         "home_extra_queries": extra}  # fmt: skip
    return all(ok for *_, ok in checks), checks


def run(options: Options) -> bool:
    started = time.monotonic()
    url = harness.sibling_database(options.database_url, NAME)
    print(f"== {NAME}: {DESCRIPTION}", flush=True)
    print(f"-- data: database {urlsplit(url).path.lstrip('/')}", flush=True)
    seed_seconds = harness.prepare_database(url, options.scale, label=f"[{NAME}] ")
    figures = measure(url)
    passed, checks = report(figures)
    path = harness.write_results(
        NAME,
        {
            **harness.results_header(NAME, passed, options),
            "targets": {
                "min_fan_out_ratio": MIN_FANOUT_RATIO,
                "max_peak_rss_mb": MAX_PEAK_MB,
                "min_send_ratio": MIN_SEND_RATIO,
                "max_extra_queries": MAX_EXTRA_QUERIES,
            },  # fmt: skip
            **figures,
            "seed_seconds": round(seed_seconds, 1),
            "checks": [{"target": n, "measured": m, "wanted": w, "passed": ok} for n, m, w, ok in checks],
            "memory_measure": "ru_maxrss of campaign_send's own process (Django included), in MB",
        },
    )
    print(f"Results written to {path.relative_to(harness.BASE_DIR)} ({NAME} took {time.monotonic() - started:.0f} s)")
    return passed
