"""Big exports in the background (analytics.export_jobs, the task run eagerly): the job and its progress, the file in
private storage and its download for its owner only, the same job for the same request while it runs, expiry, a
list that became empty, a worker that died, and the exports page that follows the progress."""

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import export_jobs, exports
from analytics.models import ExportJob, ExportStatus
from loyalty.common.spreadsheets import BOM
from loyalty.common.storage import private_storage
from loyalty.models import SalesClaim
from tests.analytics.exports_world import build_world
from tests.helpers import messages_of, visible

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Run what is queued on commit (the task, eagerly)."""
    return django_capture_on_commit_callbacks


@pytest.fixture
def small_threshold(monkeypatch):
    """Lists of more than 2 rows go to the background (a CSV when the planner expects more than none)."""
    monkeypatch.setattr(export_jobs, "ROW_THRESHOLD", 2)
    monkeypatch.setattr(export_jobs, "CSV_STREAM_MAX", 0)


def start(client, capture, user, kind="claims", file_format="csv", **params):
    client.force_login(user)
    with capture(execute=True) as callbacks:
        response = client.get(f"/exports/{kind}/", {"format": file_format, **params})
    return response, callbacks


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode().removeprefix(BOM))))


def test_a_big_list_is_written_in_the_background_and_downloaded_from_the_exports_page(
    client, world, small_threshold, django_capture_on_commit_callbacks
):
    response, callbacks = start(client, django_capture_on_commit_callbacks, world.pm)

    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exports/#export-{job.pk}"
    assert "the file is written in the background" in messages_of(response)[0]
    assert len(callbacks) == 1
    assert (job.status, job.rows_done, job.rows_total, job.kind, job.file_format) == ("ready", 3, 3, "claims", "csv")
    assert job.expires_at == job.finished_at + timedelta(hours=24)
    assert job.file_name.startswith(f"exports/{world.pm.pk}/") and private_storage().exists(job.file_name)
    download = client.get(f"/exports/{job.pk}/download/")
    rows = csv_rows(b"".join(download.streaming_content))
    assert download["Content-Disposition"].startswith('attachment; filename="claims-')
    assert download["Cache-Control"] == "private, no-store"
    assert [row[0] for row in rows[1:]] == [
        str(pk) for pk in SalesClaim.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    ]
    assert rows[0][0] == "Claim" and any(row[4] == "'+Rita Rep" for row in rows)  # the same file as at once


def test_a_long_csv_streams_at_once_unless_the_planner_expects_millions(client, world, monkeypatch, capture):
    monkeypatch.setattr(export_jobs, "ROW_THRESHOLD", 2)
    client.force_login(world.pm)

    streamed = client.get("/exports/claims/", {"format": "csv"})
    monkeypatch.setattr(exports, "estimated_rows", lambda rows, using: export_jobs.CSV_STREAM_MAX + 1)
    with capture(execute=False):
        millions = client.get("/exports/claims/", {"format": "csv"})
        xlsx = client.get("/exports/claims/", {"format": "xlsx"})

    assert streamed.status_code == 200 and len(b"".join(streamed.streaming_content).splitlines()) == 4
    assert millions.status_code == xlsx.status_code == 302
    assert sorted(ExportJob.objects.values_list("file_format", flat=True)) == ["csv", "xlsx"]


def test_the_planner_estimates_a_lists_rows_without_reading_them(world):
    rows = exports.export_rows(kind="sales", viewer=world.pm, program=world.program, filters={})

    assert exports.estimated_rows(rows, using="default") >= 1


def test_the_background_file_is_the_file_a_small_download_gives(
    client, world, monkeypatch, django_capture_on_commit_callbacks
):
    client.force_login(world.pm)
    at_once = b"".join(client.get("/exports/sales/", {"format": "csv"}).streaming_content)
    monkeypatch.setattr(export_jobs, "ROW_THRESHOLD", 1)
    monkeypatch.setattr(export_jobs, "CSV_STREAM_MAX", 0)

    start(client, django_capture_on_commit_callbacks, world.pm, kind="sales")

    job = ExportJob.objects.get()
    with private_storage().open(job.file_name, "rb") as file:
        assert file.read() == at_once


class Recorded(list):
    """A progress recorder that keeps what it was told."""

    closed = False

    def close(self):
        self.closed = True


@pytest.fixture
def recorded(monkeypatch):
    spy = Recorded()
    monkeypatch.setattr(export_jobs, "progress_recorder", lambda job_id: _Spy(spy))
    return spy


class _Spy:
    def __init__(self, spy: Recorded):
        self.spy = spy

    def __call__(self, rows_done):
        self.spy.append(rows_done)

    def close(self):
        self.spy.close()


@pytest.mark.parametrize(("file_format", "every", "expected"), [("xlsx", 1, [1, 2, 3, 4]), ("csv", 2, [2, 4])])
def test_a_job_records_its_progress_as_it_writes(
    client,
    world,
    small_threshold,
    monkeypatch,
    recorded,
    django_capture_on_commit_callbacks,
    file_format,
    every,
    expected,
):
    monkeypatch.setattr(exports, "PROGRESS_EVERY", every)

    start(client, django_capture_on_commit_callbacks, world.pm, kind="sales", file_format=file_format)

    job = ExportJob.objects.get()
    assert recorded == expected and recorded.closed
    assert (job.status, job.rows_done, job.file_name.endswith(file_format)) == ("ready", 4, True)


@pytest.mark.django_db(transaction=True)
def test_progress_is_committed_on_a_connection_of_its_own_while_the_rows_stream():
    world = build_world()
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {}, "en", "UTC")
    job, _created = export_jobs.export_job_start(user=world.pm, selection=selection)
    recorder = export_jobs.progress_recorder(job.pk)
    rows = exports.export_rows(kind="sales", viewer=world.pm, program=world.program, filters={})

    with connection.cursor() as cursor, cursor.copy(exports.copy_statement(rows, using="default")) as copy:
        next(iter(copy))  # the usual connection is busy with a COPY
        recorder(1200)
        recorder.close()
        list(copy)

    assert ExportJob.objects.get(pk=job.pk).rows_done == 1200


def test_asking_again_while_it_runs_returns_the_same_job(
    client, world, small_threshold, django_capture_on_commit_callbacks
):
    client.force_login(world.pm)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = client.get("/exports/claims/", {"format": "csv", "status": ""})
        second = client.get("/exports/claims/", {"format": "csv", "page": "2"})  # the page number is not a filter

    job = ExportJob.objects.get()
    assert job.status == ExportStatus.QUEUED and len(callbacks) == 1
    assert first["Location"] == second["Location"] == f"/exports/#export-{job.pk}"
    assert messages_of(second)[-1] == "This export is already being written: here is how far it got."


def test_other_filters_a_format_or_another_person_make_another_job(
    client, world, small_threshold, django_capture_on_commit_callbacks
):
    client.force_login(world.pm)
    with django_capture_on_commit_callbacks(execute=False):
        client.get("/exports/sales/", {"format": "csv"})
        client.get("/exports/sales/", {"format": "xlsx"})
        client.get("/exports/sales/", {"format": "csv", "from": (timezone.localdate() - timedelta(days=9)).isoformat()})
        client.force_login(world.am)
        client.get("/exports/sales/", {"format": "csv"})

    assert ExportJob.objects.filter(status=ExportStatus.QUEUED).count() == 4
    assert len(set(ExportJob.objects.values_list("request_key", flat=True))) == 4


def test_a_second_job_for_the_same_request_is_refused_by_the_database(world):
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {}, "en", "Europe/Berlin")
    job, created = export_jobs.export_job_start(user=world.pm, selection=selection)

    again, created_again = export_jobs.export_job_start(user=world.pm, selection=selection)

    assert created and not created_again and again == job
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.READY)
    newer, created_newer = export_jobs.export_job_start(user=world.pm, selection=selection)
    assert created_newer and newer != job  # once written, asking again writes the list as it is now


def test_running_a_job_twice_writes_it_once(world):
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {}, "en", "Europe/Berlin")
    job, _created = export_jobs.export_job_start(user=world.pm, selection=selection)
    export_jobs.export_job_run(job.pk)
    written = ExportJob.objects.get(pk=job.pk).file_name

    assert export_jobs.export_job_run(job.pk) is None
    assert ExportJob.objects.get(pk=job.pk).file_name == written


def test_a_list_that_became_empty_fails_with_a_clear_message(world):
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {"status": "rejected"}, "en", "UTC")
    job, _created = export_jobs.export_job_start(user=world.pm, selection=selection)

    done = export_jobs.export_job_run(job.pk)

    assert done.status == ExportStatus.FAILED and done.file_name == ""
    assert done.error == "Nothing to export: the list is empty now. Change the filters or try again later."


def test_the_person_who_asked_is_told_by_e_mail_when_the_file_is_ready_or_failed(world, mailoutbox):
    ready, _created = export_jobs.export_job_start(
        user=world.pm, selection=export_jobs.Selection("claims", "xlsx", world.program.pk, {}, "en", "UTC")
    )
    failed, _created = export_jobs.export_job_start(
        user=world.pm,
        selection=export_jobs.Selection("claims", "csv", world.program.pk, {"status": "rejected"}, "en", "UTC"),
    )

    export_jobs.export_job_run(ready.pk)
    export_jobs.export_job_run(failed.pk)
    export_jobs.export_job_run(ready.pk)  # a second run writes nothing and tells nobody again

    assert [(m.to, m.subject) for m in mailoutbox] == [
        ([world.pm.email], "Your export is ready: Sales claims (XLSX)"),
        ([world.pm.email], "Your export could not be written: Sales claims"),
    ]
    ready_text = "Sales claims (XLSX, 3 rows) is ready. Download it from your exports page within 24 hours:"
    assert ready_text in mailoutbox[0].body
    assert f"http://127.0.0.1:8000/exports/#export-{ready.pk}" in mailoutbox[0].body
    assert "could not be written: Nothing to export: the list is empty now." in mailoutbox[1].body


def test_the_rows_are_read_as_the_person_may_see_them_when_the_job_runs(world):
    selection = export_jobs.Selection("partners", "csv", world.program.pk, {}, "en", "UTC")
    job, _created = export_jobs.export_job_start(user=world.am, selection=selection)
    world.south.account_manager = world.other_am
    world.south.save(update_fields=["account_manager"])

    done = export_jobs.export_job_run(job.pk)

    with private_storage().open(done.file_name, "rb") as file:
        assert [row[0] for row in csv_rows(file.read())[1:]] == [str(world.north.pk)]


def test_the_file_is_written_in_the_language_and_time_zone_of_the_request(world):
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {}, "de", "America/New_York")
    job, _created = export_jobs.export_job_start(user=world.pm, selection=selection)

    done = export_jobs.export_job_run(job.pk)

    claim = SalesClaim.objects.order_by("-created_at", "-id").first()
    with private_storage().open(done.file_name, "rb") as file:
        rows = csv_rows(file.read())
    assert rows[0][0] == "Meldung"
    assert rows[1][1] == claim.created_at.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M")


# Downloads and expiry --------------------------------------------------------------------------------------------


def ready_job(world, user, *, hours_left: float = 24) -> ExportJob:
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {}, "en", "Europe/Berlin")
    job, _created = export_jobs.export_job_start(user=user, selection=selection)
    export_jobs.export_job_run(job.pk)
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() + timedelta(hours=hours_left))
    return ExportJob.objects.get(pk=job.pk)


def test_nobody_else_can_download_a_persons_file(client, world):
    job = ready_job(world, world.pm)
    client.force_login(world.am)

    assert client.get(f"/exports/{job.pk}/download/").status_code == 404
    assert client.get("/exports/99999/download/").status_code == 404


def test_an_expired_link_says_so_and_the_tidy_task_deletes_the_file(client, world):
    job = ready_job(world, world.pm, hours_left=-1)
    client.force_login(world.pm)

    response = client.get(f"/exports/{job.pk}/download/")
    tidied = export_jobs.export_jobs_tidy()

    assert response.status_code == 302 and response["Location"] == "/exports/"
    assert messages_of(response)[0].startswith("This download expired on ")
    assert messages_of(response)[0].endswith(". Export the list again to get a new file.")
    assert tidied == {"expired": 1, "stale": 0}
    job.refresh_from_db()
    assert (job.status, job.file_name) == (ExportStatus.EXPIRED, "")
    assert not private_storage().listdir(f"exports/{world.pm.pk}")[1]
    again = client.get(f"/exports/{job.pk}/download/")
    assert again.status_code == 302 and messages_of(again)[0].startswith("This download expired on ")


def test_a_download_before_the_file_is_written_says_it_is_not_ready(client, world):
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {}, "en", "Europe/Berlin")
    job, _created = export_jobs.export_job_start(user=world.pm, selection=selection)
    client.force_login(world.pm)

    response = client.get(f"/exports/{job.pk}/download/")

    assert response.status_code == 302
    assert messages_of(response) == ["This export is not ready yet: the exports page shows how far it got."]


def test_a_job_whose_worker_died_is_failed_so_it_can_be_asked_for_again(world):
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {}, "en", "Europe/Berlin")
    job, _created = export_jobs.export_job_start(user=world.pm, selection=selection)
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING)

    export_jobs.export_jobs_tidy(now=timezone.now() + timedelta(hours=export_jobs.STALE_HOURS, minutes=1))
    newer, created = export_jobs.export_job_start(user=world.pm, selection=selection)

    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED and "stopped before it was finished" in job.error
    assert created and newer != job


# The exports page ------------------------------------------------------------------------------------------------


def test_the_exports_page_shows_progress_and_polls_while_a_job_runs(client, world):
    selection = export_jobs.Selection("claims", "csv", world.program.pk, {}, "en", "Europe/Berlin")
    job, _created = export_jobs.export_job_start(user=world.pm, selection=selection)
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING, rows_done=1200, rows_total=5000)
    client.force_login(world.pm)

    page = client.get("/exports/")

    html = page.content.decode()
    assert f'hx-get="/exports/?watch={job.pk}" hx-trigger="every 2s"' in html
    assert '<progress class="w-100 mt-2" max="5000" value="1200"' in html
    assert "1,200 of 5,000 rows written" in visible(page)


def test_the_polled_list_says_when_the_watched_file_is_ready_and_stops_polling(client, world):
    job = ready_job(world, world.pm)
    client.force_login(world.pm)

    partial = client.get("/exports/", {"watch": str(job.pk)}, headers={"HX-Request": "true"})

    html = partial.content.decode()
    assert "<h1" not in html and "hx-trigger" not in html
    assert "Your file “Sales claims (CSV)” is ready to download." in visible(partial)
    assert f'href="/exports/{job.pk}/download/"' in html


def test_the_exports_page_lists_only_the_persons_own_jobs_in_a_fixed_number_of_queries(client, world):
    mine = [ready_job(world, world.pm)]
    ready_job(world, world.am)
    client.force_login(world.pm)
    with CaptureQueriesContext(connection) as first:
        client.get("/exports/")
    for kind in ("sales", "orders", "partners"):
        selection = export_jobs.Selection(kind, "xlsx", world.program.pk, {}, "en", "UTC")
        mine.append(export_jobs.export_job_start(user=world.pm, selection=selection)[0])

    with CaptureQueriesContext(connection) as second:
        page = client.get("/exports/")

    assert len(first) == len(second) == 4  # session, user, membership, jobs
    assert [f"export-{job.pk}" in page.content.decode() for job in mine] == [True] * 4
    assert page.content.decode().count('data-testid="export-job"') == 4


def test_the_exports_page_has_an_empty_state(client, world):
    client.force_login(world.rep.user)

    page = client.get("/exports/")

    assert "No exports yet" in visible(page) and "Scheduled reports" not in visible(page)


def test_the_tidy_task_runs_hourly(settings, world):
    from analytics import tasks

    job = ready_job(world, world.pm, hours_left=-1)

    assert settings.CELERY_BEAT_SCHEDULE["tidy-exports"] == {"task": "analytics.tasks.tidy_exports", "schedule": 3600}
    assert tasks.tidy_exports.delay().get() == {"expired": 1, "stale": 0}
    assert ExportJob.objects.get(pk=job.pk).status == ExportStatus.EXPIRED
