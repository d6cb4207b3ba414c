"""Exports too big to write while someone waits: written in the background to a private file (ExportJob), with their
progress while they run and a download that expires.

- `in_background` decides: an XLSX of more than ROW_THRESHOLD rows, a CSV of more than CSV_STREAM_MAX.
- `export_job_start` records the job and queues `analytics.tasks.run_export` once the transaction commits; the same
  person asking for the same export (kind, format, program, filters, language, time zone: `request_key`) while it is
  queued or running gets that job back — the database's partial unique constraint settles two requests at once.
- `export_job_run` (the task's body) claims a queued job, counts its rows, writes the file (analytics.exports: the
  same query and the same cell rule as a download) to a temporary file, records `rows_done` every few thousand
  rows, then stores it under the private storage root (loyalty.common.storage: no URL serves it) and sets
  `expires_at`. Safe to run twice: a job no longer queued is left alone.
- `export_jobs_tidy` (periodic): expired files are deleted and their jobs marked expired; a job whose worker died
  (queued or running far too long) is marked failed, so the same export can be asked for again.

The person's rows are read again when the job runs, through partners.visibility for the job's user as they are
then: someone who lost a partner meanwhile does not get its rows.
"""

import hashlib
import json
import logging
import secrets
import smtplib
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.files import File
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone, translation
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from analytics import exports
from analytics.error_codes import ErrorCode
from analytics.models import ExportJob, ExportStatus
from analytics.routers import reads_alias
from communications.mail import Email
from loyalty.common.background import enqueue_on_commit
from loyalty.common.errors import ApplicationError
from loyalty.common.links import absolute_url, site_hostname
from loyalty.common.storage import private_storage
from loyalty.models import Program

logger = logging.getLogger(__name__)

# An XLSX export with more rows than this is written in the background (a smaller one is downloaded at once): an
# XLSX file is a zip, complete only at its end, so a big one would keep the person waiting before its first byte.
ROW_THRESHOLD = 50_000
# A CSV is streamed as PostgreSQL writes it (its first bytes at once, in constant memory), so it is downloaded at once
# up to this many rows as the planner estimates them (a few seconds); a bigger one is written in the background.
CSV_STREAM_MAX = 2_000_000
# A finished file can be downloaded for this long.
DOWNLOAD_HOURS = 24
# A job still queued or running after this long lost its worker.
STALE_HOURS = 6
RUNNING = (ExportStatus.QUEUED, ExportStatus.RUNNING)
FOLDER = "exports"


@dataclass(frozen=True)
class Selection:
    """What one export request asks for: the list, the file format, the program and the list's filters (plain
    values), and the language and time zone the file is written in (its headings, labels and local times)."""

    kind: str
    file_format: str
    program_id: int | None
    filters: dict
    language: str
    time_zone: str

    def params(self) -> dict:
        return {
            "program": self.program_id,
            "filters": self.filters,
            "language": self.language,
            "time_zone": self.time_zone,
        }

    @classmethod
    def of(cls, job: ExportJob) -> "Selection":
        params = job.params
        return cls(
            kind=job.kind,
            file_format=job.file_format,
            program_id=params.get("program"),
            filters=params.get("filters", {}),
            language=params.get("language", "en"),
            time_zone=params.get("time_zone", "UTC"),
        )


def selection_now(*, kind: str, file_format: str, program: Program | None, filters: dict) -> Selection:
    """A selection in the active language and time zone (the request's)."""
    return Selection(
        kind=kind,
        file_format=file_format,
        program_id=program.pk if program else None,
        filters=filters,
        language=translation.get_language() or "en",
        time_zone=timezone.get_current_timezone_name(),
    )


def request_key(*, user, selection: Selection) -> str:
    """The same person asking for the same file: a hash of who, which list, which format and everything that
    changes its rows or words."""
    what = [user.pk, selection.kind, selection.file_format, selection.params()]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def in_background(rows: exports.Rows, file_format: str, *, counted: int, using: str) -> bool:
    """Whether an export is written in the background, given its rows counted up to ROW_THRESHOLD + 1: a big XLSX,
    or a CSV the planner expects to be longer than CSV_STREAM_MAX (estimated only past ROW_THRESHOLD)."""
    if counted <= ROW_THRESHOLD:
        return False
    return file_format == exports.XLSX or exports.estimated_rows(rows, using=using) > CSV_STREAM_MAX


def export_job_start(*, user, selection: Selection, rows_estimate: int | None = None) -> tuple[ExportJob, bool]:
    """The background job of this export: the one queued or running for the same request, else a new one, queued to
    run once the transaction commits. Returns (job, created)."""
    key = request_key(user=user, selection=selection)
    running = ExportJob.objects.filter(request_key=key, status__in=RUNNING).first()
    if running is not None:
        return running, False
    try:
        with transaction.atomic():
            job = ExportJob.objects.create(
                user=user,
                kind=selection.kind,
                file_format=selection.file_format,
                params=selection.params(),
                request_key=key,
                rows_total=rows_estimate,
            )
    except IntegrityError:  # the same request at the same moment: theirs is ours
        return ExportJob.objects.get(request_key=key, status__in=RUNNING), False
    enqueue_on_commit("analytics.tasks.run_export", job.pk)
    return job, True


def jobs_of(*, user, limit: int = 20) -> list[ExportJob]:
    """The person's latest export jobs, newest first (nobody sees another person's)."""
    return list(ExportJob.objects.filter(user=user).order_by("-created_at", "-id")[:limit])


def job_get(*, user, job_id: int) -> ExportJob:
    """One of the person's jobs; ExportJob.DoesNotExist for anyone else's."""
    return ExportJob.objects.get(user=user, pk=job_id)


def is_expired(job: ExportJob, *, now=None) -> bool:
    if job.status == ExportStatus.EXPIRED:
        return True
    return job.status == ExportStatus.READY and job.expires_at is not None and job.expires_at <= (now or timezone.now())


def job_download(*, user, job_id: int):
    """The stored file of one of the person's ready jobs, opened: (job, file). ExportJob.DoesNotExist for anyone
    else's; ApplicationError EXPORT_EXPIRED after its time, EXPORT_NOT_READY before it is written."""
    job = job_get(user=user, job_id=job_id)
    if is_expired(job):
        when = date_format(timezone.localtime(job.expires_at), "DATETIME_FORMAT") if job.expires_at else ""
        raise ApplicationError(
            _("This download expired on %(when)s. Export the list again to get a new file.") % {"when": when},
            code=ErrorCode.EXPORT_EXPIRED,
        )
    if job.status != ExportStatus.READY:
        raise ApplicationError(
            _("This export is not ready yet: the exports page shows how far it got."), code=ErrorCode.EXPORT_NOT_READY
        )
    try:
        return job, private_storage().open(job.file_name, "rb")
    except FileNotFoundError:
        raise ApplicationError(
            _("This download is no longer there. Export the list again to get a new file."),
            code=ErrorCode.EXPORT_EXPIRED,
        ) from None


def download_name(job: ExportJob) -> str:
    return f"{job.kind}-{timezone.localdate(job.created_at).isoformat()}.{job.file_format}"


# Running ------------------------------------------------------------------------------------------------------


def export_job_run(job_id: int) -> ExportJob | None:
    """Write the file of a queued job (the task's body); a job that is not queued any more is left alone."""
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(status=ExportStatus.RUNNING)
    if not claimed:
        return None
    job = ExportJob.objects.select_related("user").get(pk=job_id)
    selection = Selection.of(job)
    with translation.override(selection.language), timezone.override(selection.time_zone):
        try:
            _write(job, selection)
        except ApplicationError as exc:
            _finish(job, status=ExportStatus.FAILED, error=exc.message)
        except Exception:
            logger.exception("Export job %s failed", job_id)
            _finish(job, status=ExportStatus.FAILED, error=_("The file could not be written. Please try again."))
    job.refresh_from_db()
    if job.status in (ExportStatus.READY, ExportStatus.FAILED):
        with translation.override(selection.language), timezone.override(selection.time_zone):
            _tell_owner(job)
    return job


def _tell_owner(job: ExportJob) -> None:
    """E-mail the person who asked that their file is ready (with the exports page's link) or could not be written:
    a big export takes minutes, and nobody should have to keep the page open for it."""
    user = job.user
    export = exports.EXPORTS.get(job.kind)
    variables = {
        "name": user.full_name or user.email,
        "list": str(export.title) if export else job.kind,
        "format": job.file_format.upper(),
        "rows": number_format(job.rows_total or 0, force_grouping=True),
        "hours": DOWNLOAD_HOURS,
        "url": absolute_url("export_list") + f"#export-{job.pk}",
    }
    if job.status == ExportStatus.READY:
        subject = _("Your export is ready: %(list)s (%(format)s)") % variables
        text = _(
            "Your export of %(list)s (%(format)s, %(rows)s rows) is ready. Download it from your exports page within "
            "%(hours)s hours:"
        ) % variables  # fmt: skip
    else:
        subject = _("Your export could not be written: %(list)s") % variables
        text = _("Your export of %(list)s (%(format)s) could not be written: %(error)s") % {
            **variables, "error": job.error
        }  # fmt: skip
    lines = [_("Hello %(name)s,") % variables, "", text, variables["url"], ""]
    message = Email(
        subject=subject,
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={"Message-ID": make_msgid(domain=site_hostname())},
    )
    try:
        message.send()
    except (OSError, smtplib.SMTPException):  # the file is there either way, and the exports page says so
        logger.exception("Could not e-mail %s about export job %s", user.email, job.pk)


def _write(job: ExportJob, selection: Selection) -> None:
    program = Program.objects.filter(pk=selection.program_id).first() if selection.program_id else None
    rows = exports.export_rows(kind=job.kind, viewer=job.user, program=program, filters=selection.filters)
    using = reads_alias()
    total = exports.count_all(rows, using=using)
    if total == 0:
        raise ApplicationError(
            _("Nothing to export: the list is empty now. Change the filters or try again later."),
            code=ErrorCode.EXPORT_EMPTY,
        )
    ExportJob.objects.filter(pk=job.pk).update(rows_total=total)
    write = exports.write_csv if job.file_format == exports.CSV else exports.write_xlsx
    recorder = progress_recorder(job.pk)
    with tempfile.TemporaryFile() as file:
        try:
            written = write(file, rows, using=using, progress=recorder)
        finally:
            recorder.close()
        file.seek(0)
        name = f"{FOLDER}/{job.user_id}/{job.pk}-{secrets.token_hex(8)}.{job.file_format}"
        name = private_storage().save(name, File(file))
    now = timezone.now()
    updated = ExportJob.objects.filter(pk=job.pk, status=ExportStatus.RUNNING).update(
        status=ExportStatus.READY,
        rows_done=written,
        rows_total=written,
        file_name=name,
        finished_at=now,
        expires_at=now + timedelta(hours=DOWNLOAD_HOURS),
    )
    if not updated:  # tidied away as stale meanwhile: keep no file nobody can download
        private_storage().delete(name)


class ProgressRecorder:
    """Records a job's `rows_done` as its file is written, on a database connection of its own, committed at once
    (the exports page polls it): the rows may be streaming through the usual connection, and a COPY holds its
    connection until the last row."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.connection = None

    def __call__(self, rows_done: int) -> None:
        if self.connection is None:
            self.connection = connections.create_connection(DEFAULT_DB_ALIAS)
        table = self.connection.ops.quote_name(ExportJob._meta.db_table)
        with self.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET rows_done = %s WHERE id = %s", [rows_done, self.job_id])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def progress_recorder(job_id: int) -> ProgressRecorder:
    return ProgressRecorder(job_id)


def _finish(job: ExportJob, *, status: str, error: str = "") -> None:
    ExportJob.objects.filter(pk=job.pk).update(status=status, error=error[:500], finished_at=timezone.now())


# Tidying ------------------------------------------------------------------------------------------------------


def export_jobs_tidy(*, now=None) -> dict:
    """Delete the files whose download expired (their jobs marked expired) and fail the jobs whose worker died."""
    now = now or timezone.now()
    expired = list(
        ExportJob.objects.filter(status=ExportStatus.READY, expires_at__lte=now).values_list("pk", "file_name")
    )
    storage = private_storage()
    for _pk, name in expired:
        if name:
            storage.delete(name)
    ExportJob.objects.filter(pk__in=[pk for pk, _name in expired]).update(status=ExportStatus.EXPIRED, file_name="")
    stale = ExportJob.objects.filter(status__in=RUNNING, created_at__lt=now - timedelta(hours=STALE_HOURS)).update(
        status=ExportStatus.FAILED,
        error=_("The export stopped before it was finished. Please ask for it again."),
        finished_at=now,
    )
    return {"expired": len(expired), "stale": stale}
