"""The export pages of the member site: start an export (`/exports/<kind>/?format=csv|xlsx&<the list's filters>`),
the person's background exports with their progress (`/exports/`), a finished file's download
(`/exports/<job>/download/`) and the scheduled reports a manager receives (`/exports/reports/`).

Thin views over analytics.exports (the rows, scoped by partners.visibility), analytics.export_jobs (background
files) and analytics.reports (subscriptions). An export of something the viewer may not see is a 404; a refused
request (a wrong format, an empty list, a reversed range) goes back to the page it came from with a message."""

import tempfile
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from analytics import export_forms, export_jobs, exports, reports
from analytics.error_codes import ErrorCode
from analytics.models import ExportJob, ExportStatus, ReportKind
from analytics.routers import reads_alias
from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial, wants_partial
from loyalty.selectors.programs import current_program
from partners.visibility import viewer_for


def _back(request):
    """Back to the page the request came from (on this site), else to the exports page."""
    referer = request.META.get("HTTP_REFERER", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(referer if referer and safe else "export_list")


def _private(response):
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_GET
def export_start(request, kind: str):
    """The list `kind` as a file: downloaded at once when small, else written in the background (the exports page
    shows it), with the list's filters from the query string."""
    viewer = viewer_for(request.user)
    export = exports.EXPORTS.get(kind)
    if export is None or not export.allowed(viewer):
        raise Http404("No such export.")
    file_format = request.GET.get("format", "")
    if file_format not in exports.FORMATS:
        messages.error(request, _("Choose a CSV or an XLSX file."))
        return _back(request)
    program = current_program(request)
    try:
        filters = export_forms.export_filters(kind, request.GET)
        rows = exports.export_rows(kind=kind, viewer=viewer, program=program, filters=filters)
    except ApplicationError as exc:
        if exc.code == ErrorCode.EXPORT_NOT_VISIBLE:
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
        return _back(request)
    using = reads_alias()
    size = exports.count_up_to(rows, export_jobs.ROW_THRESHOLD + 1, using=using)
    if size == 0:
        messages.info(request, _("Nothing to export: the list is empty with these filters."))
        return _back(request)
    if export_jobs.in_background(rows, file_format, counted=size, using=using):
        return _start_in_background(request, kind, file_format, program, filters)
    name = exports.file_name(rows, file_format)
    content_type = exports.CONTENT_TYPES[file_format]
    if file_format == exports.CSV:
        response = StreamingHttpResponse(exports.csv_stream(rows, using=using), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return _private(response)
    file = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it once sent)
    exports.write_xlsx(file, rows, using=using)
    file.seek(0)
    return _private(FileResponse(file, as_attachment=True, filename=name, content_type=content_type))


def _start_in_background(request, kind, file_format, program, filters):
    selection = export_jobs.selection_now(kind=kind, file_format=file_format, program=program, filters=filters)
    job, created = export_jobs.export_job_start(user=request.user, selection=selection)
    if created:
        messages.info(
            request,
            _(
                "The list is long, so the file is written in the background. You can leave this page: the file "
                "waits for you here, and we e-mail you when it is ready."
            ),
        )
    else:
        messages.info(request, _("This export is already being written: here is how far it got."))
    return redirect(f"{reverse('export_list')}#export-{job.pk}")


def _watched(request) -> set[int]:
    return {int(part) for part in request.GET.get("watch", "").split(",") if part.isascii() and part.isdigit()}


@dataclass(frozen=True)
class JobRow:
    """One export on the exports page: what it is and where it stands."""

    job: ExportJob
    title: str
    running: bool
    ready: bool
    expired: bool
    failed: bool


def _row(job: ExportJob) -> JobRow:
    expired = export_jobs.is_expired(job)
    return JobRow(
        job=job,
        title=_title(job),
        running=job.status in export_jobs.RUNNING,
        ready=job.status == ExportStatus.READY and not expired,
        expired=expired,
        failed=job.status == ExportStatus.FAILED,
    )


@login_required
@require_GET
def export_list(request):
    """The person's exports, newest first; while one is being written the list refreshes itself every 2 seconds
    (htmx, `?watch=<the running jobs>`), and a watched job that finished says so in a message."""
    rows = [_row(job) for job in export_jobs.jobs_of(user=request.user)]
    if wants_partial(request):
        watched = _watched(request)
        for row in rows:
            if row.job.pk in watched and row.ready:
                messages.success(request, _("Your file “%(name)s” is ready to download.") % {"name": row.title})
            elif row.job.pk in watched and row.failed:
                messages.error(request, row.job.error or _("The export failed."))
    context = {
        "rows": rows,
        "running": ",".join(str(row.job.pk) for row in rows if row.running),
        "download_hours": export_jobs.DOWNLOAD_HOURS,
    }
    return render_page_or_partial(request, "analytics/exports/export_list.html", "jobs", context)


def _title(job: ExportJob) -> str:
    """ "Sales claims (CSV)", or a scheduled report's name."""
    kind = job.kind.removeprefix("report:")
    if kind != job.kind and kind in ReportKind.values:
        return f"{ReportKind(kind).label} ({job.file_format.upper()})"
    export = exports.EXPORTS.get(job.kind)
    return f"{export.title if export else job.kind} ({job.file_format.upper()})"


@login_required
@require_GET
def export_download(request, job_id: int):
    """A finished background export, for the person who asked for it only, until it expires."""
    try:
        job, file = export_jobs.job_download(user=request.user, job_id=job_id)
    except ExportJob.DoesNotExist:
        raise Http404("No such export.") from None
    except ApplicationError as exc:
        messages.warning(request, exc.message)
        return redirect("export_list")
    name = export_jobs.download_name(job)
    content_type = exports.CONTENT_TYPES[job.file_format]
    return _private(FileResponse(file, as_attachment=True, filename=name, content_type=content_type))


# Scheduled reports ---------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def report_subscriptions(request):
    """The reports an account or program manager receives by e-mail: subscribe to one, or stop one."""
    viewer = viewer_for(request.user)
    if not viewer.is_manager:
        raise Http404("Scheduled reports are for account and program managers.")
    program = current_program(request)
    form = export_forms.ReportSubscriptionForm(request.POST or None)
    if request.method == "POST":
        if request.POST.get("stop", "").isdigit():
            stopped = reports.report_unsubscribe(user=request.user, subscription_id=int(request.POST["stop"]))
            if stopped is None:
                raise Http404("No such report.")
            report = stopped.get_kind_display()
            messages.success(request, _("“%(report)s” is stopped: you will no longer receive it.") % {"report": report})
            return redirect("report_subscriptions")
        if program is not None and form.is_valid():
            try:
                subscription = reports.report_subscribe(user=request.user, program=program, **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                facts = {
                    "report": subscription.get_kind_display(),
                    "frequency": subscription.get_frequency_display(),
                    "email": request.user.email,
                }
                messages.success(request, _("“%(report)s” will be sent to %(email)s: %(frequency)s.") % facts)
                return redirect("report_subscriptions")
    context = {
        "program": program,
        "form": form,
        "subscriptions": reports.subscriptions_of(user=request.user),
    }
    return render(request, "analytics/exports/report_subscriptions.html", context)
