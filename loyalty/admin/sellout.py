"""The back office for sell-out imports: sources (file format, column mapping, partner aliases), the upload page
and each import's progress page.

Everything that reads or checks a file, saves a mapping or aliases or starts an import is a service of
loyalty.services.sellout (run: read_header, source_last_header, import_start; mapping: mapping_field_problems,
mapping_prefilled, source_mapping_save; aliases: aliases_read, aliases_save; errors: errors_csv); their refusals
(ApplicationError) are shown as form errors. The upload page asks for the column mapping only when the source's
saved mapping does not fit the file's header (pre-filled with the saved mapping and suggest_mapping's guesses);
the file waits in storage meanwhile, named in the session. The import runs in the background (inline without a
broker); its page polls itself with htmx every second while it is queued or running, then shows the result, the
first errors and the download of all of them. Partner aliases are a list of their own (a source may have
thousands), filled by hand or from a CSV of alias,legal_id pairs. Registered by loyalty/admin/__init__.py; query counts
are pinned in tests/loyalty/test_admin_imports.py.

The imported sale lines are read-only (SaleLineAdmin). The table holds millions of rows and has only the indexes
the importer and the claim matching read through, so the list never counts or sorts the whole table, offers only
filters and searches that an index answers, and refuses any other lookup in the URL; its query counts are pinned
in tests/loyalty/test_admin_sale_lines.py.
"""

import os
import secrets

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.files.base import File
from django.db.models import DateTimeField, OuterRef, Subquery
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from loyalty.admin.sale_lines import short_moment
from loyalty.common.admin import (
    ProgramManagerAdmin,
    SavedByServices,
    admin_page,
    back_to_object,
    list_link,
    list_url,
    object_url,
    related_field,
)
from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import wants_partial
from loyalty.common.queries import count_of
from loyalty.common.storage import private_storage
from loyalty.constants import ImportStatus
from loyalty.models import PartnerAlias, SalesImport, SalesSource
from loyalty.services.sellout.aliases import AliasProblems, aliases_read, aliases_save
from loyalty.services.sellout.errors import errors_csv
from loyalty.services.sellout.mapping import (
    OUR_FIELDS,
    mapping_field_problems,
    mapping_missing,
    mapping_prefilled,
    mapping_problems,
    source_mapping_save,
)
from loyalty.services.sellout.run import import_start, read_header, source_last_header

# The progress page lists this many errors; the CSV download has all of them.
ERRORS_SHOWN = 20
# The alias upload reports this many bad lines at most.
ALIAS_ERRORS_SHOWN = 50
PENDING_DIR = "imports/pending"
PENDING_KEY = "sales_import_pending"
RUNNING = (ImportStatus.QUEUED, ImportStatus.RUNNING)


def _field_label(name: str) -> str:
    label, required = OUR_FIELDS[name]
    return f"{label} *" if required else label


def _add_mapping_errors(form: forms.Form, mapping: dict, header: list[str] | None = None, prefix: str = "") -> None:
    """mapping_field_problems as form errors, each on its field's input (or the form's when it has none)."""
    for problem in mapping_field_problems(mapping, header):
        name = prefix + problem.field if problem.field else None
        form.add_error(name if name in form.fields else None, problem.message)


# Sources ----------------------------------------------------------------------------------------------------


class BaseSourceForm(forms.ModelForm):
    """A source's attributes and, for each of our fields, the heading of its column in this source's files."""

    class Meta:
        model = SalesSource
        fields = ("program", "name", "code", "distributor", "delimiter", "decimal_comma", "date_format")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, column in (self.instance.column_mapping or {}).items():
            if f"map_{name}" in self.fields:
                self.fields[f"map_{name}"].initial = column

    @property
    def mapping(self) -> dict[str, str]:
        return {
            name: (self.cleaned_data.get(f"map_{name}") or "").strip()
            for name in OUR_FIELDS
            if (self.cleaned_data.get(f"map_{name}") or "").strip()
        }

    def clean(self):
        data = super().clean()
        mapping = self.mapping
        if mapping or self.instance.column_mapping:
            _add_mapping_errors(self, mapping, prefix="map_")
        return data


SourceForm = type(
    "SourceForm",
    (BaseSourceForm,),
    {
        f"map_{name}": forms.CharField(
            label=_field_label(name),
            required=False,
            max_length=200,
            widget=forms.TextInput(attrs={"list": "source-headings", "autocomplete": "off", "size": 40}),
        )
        for name in OUR_FIELDS
    },
)

MAPPING_HELP = (
    "For each of our fields, the heading of the column that holds it in this source's files: pick one of the "
    "headings of the last uploaded file or type it. Fields marked * are required before a file can be imported; "
    "the upload page asks for them the first time, so you may leave the mapping empty here."
)


def _last_import_at() -> Subquery:
    latest = SalesImport.objects.filter(source=OuterRef("pk")).order_by("-created_at", "-id").values("created_at")[:1]
    return Subquery(latest, output_field=DateTimeField())


@admin.register(SalesSource)
class SalesSourceAdmin(SavedByServices, ProgramManagerAdmin):
    form = SourceForm
    list_display = ("name", "code", "program", "distributor", "mapping_state", "aliases", "last_import_at")
    list_filter = ("program",)
    list_select_related = ("program", "distributor")
    search_fields = ("name", "code", "distributor__name")
    search_help_text = "Search by name, code or distributor."
    autocomplete_fields = ("distributor",)
    readonly_fields = ("aliases_link",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                alias_count=count_of(PartnerAlias.objects.filter(source=OuterRef("pk")), "source"),
                last_import=_last_import_at(),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        # Sale lines are keyed by the source: it never moves to another program, and its code never changes.
        return (*self.readonly_fields, "program", "code") if obj is not None else self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("program", "name", "code", "distributor")}),
            ("File format", {"fields": ("delimiter", "decimal_comma", "date_format")}),
            ("Column mapping", {"fields": [f"map_{name}" for name in OUR_FIELDS], "description": MAPPING_HELP}),
        ]
        if obj is not None:
            fieldsets.append(("Partner aliases", {"fields": ("aliases_link",)}))
        return fieldsets

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        mapping = form.mapping
        if mapping != (obj.column_mapping or {}) and (mapping or obj.column_mapping):
            adopted = source_mapping_save(source=obj, mapping=mapping)
            obj.column_mapping = adopted.column_mapping

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        headings, latest = source_last_header(source=obj) if obj is not None else ([], None)
        context.update(headings=headings, headings_from=latest)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.display(description="Column mapping")
    def mapping_state(self, obj):
        missing = mapping_missing(obj.column_mapping)
        if not missing:
            return "Complete"
        return "Not set yet" if not obj.column_mapping else f"Missing: {', '.join(missing)}"

    @admin.display(description="Partner aliases", ordering="alias_count")
    def aliases(self, obj):
        return list_link("loyalty_partneralias", f"{obj.alias_count:,}", source__id__exact=obj.pk)

    @admin.display(description="Last file", ordering="last_import")
    def last_import_at(self, obj):
        return obj.last_import

    @admin.display(description="Partner aliases")
    def aliases_link(self, obj):
        return format_html(
            "{} — the source's own codes for partners (e.g. customer numbers), used when a line names a partner "
            'by code rather than by legal id. <a href="{}">See them</a> · <a href="{}">upload a CSV of '
            "alias,legal_id pairs</a>",
            _aliases(obj.alias_count),
            list_url("loyalty_partneralias", source__id__exact=obj.pk),
            reverse("admin:loyalty_salessource_upload_aliases", args=[obj.pk]),
        )

    # Uploading aliases -----------------------------------------------------------------------------------------

    def get_urls(self):
        upload = object_url(
            self, "upload-aliases/", self.upload_aliases_view, name="loyalty_salessource_upload_aliases"
        )
        return [upload, *super().get_urls()]

    def upload_aliases_view(self, request, source):
        """A CSV of alias,legal_id pairs: all saved (added or moved to the named partner), or, if any line is
        wrong, none and every wrong line listed."""
        form = AliasUploadForm(request.POST, request.FILES) if request.method == "POST" else AliasUploadForm()
        problems: list[str] = []
        if form.is_bound and form.is_valid():
            try:
                pairs = aliases_read(upload=form.cleaned_data["file"])
                added, changed, same = aliases_save(source=source, pairs=pairs)
            except AliasProblems as exc:
                problems = exc.problems
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                message = f"{_aliases(added)} added, {changed} moved to another partner, {same} already there."
                return back_to_object(self, request, source, f"{source.name}: {message}")
        return admin_page(
            self,
            request,
            "admin/loyalty/salessource/upload_aliases.html",
            title=f"Upload partner aliases for {source.name}",
            form=form,
            original=source,
            problems=problems[:ALIAS_ERRORS_SHOWN],
            hidden_problems=max(len(problems) - ALIAS_ERRORS_SHOWN, 0),
        )


def _aliases(count: int) -> str:
    return f"{count:,} alias" if count == 1 else f"{count:,} aliases"


class AliasUploadForm(forms.Form):
    file = forms.FileField(
        label="Alias file",
        help_text="CSV with two columns: the source's code for a partner, then the partner's legal id; a first "
        "line naming the columns (alias,legal_id) is skipped. Commas, semicolons or tabs.",
    )


@admin.register(PartnerAlias)
class PartnerAliasAdmin(ProgramManagerAdmin):
    allow_delete = True  # an alias only matches file lines; lines already imported keep their partner
    list_display = ("code", "partner", "legal_id", "source")
    list_filter = ("source",)
    list_select_related = ("source", "partner")
    search_fields = ("=code", "partner__name", "partner__legal_id")
    search_help_text = "An exact alias, or the partner's name or legal id."
    autocomplete_fields = ("partner",)
    fields = ("source", "code", "partner")
    ordering = ("source", "code")

    legal_id = related_field("partner.legal_id", "Legal id")


# Imports ----------------------------------------------------------------------------------------------------


class UploadForm(forms.Form):
    source = forms.ModelChoiceField(
        queryset=SalesSource.objects.select_related("program").order_by("name"),
        help_text="Where the file comes from: its column mapping, formats and partner aliases are used.",
    )
    file = forms.FileField(
        label="Sell-out file",
        help_text="CSV or XLSX, with a first line naming the columns. Lines already imported from this source are "
        "skipped, so a file may overlap an earlier one.",
    )


class MappingForm(forms.Form):
    """For each of our fields, the column of this file that holds it (pre-filled, saved on the source)."""

    def __init__(self, *args, header: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        choices = [("", "— not in this file —"), *((heading, heading) for heading in header if heading)]
        for name, (_, required) in OUR_FIELDS.items():
            self.fields[name] = forms.ChoiceField(label=_field_label(name), choices=choices, required=required)

    def clean(self):
        data = super().clean()
        if not self.errors:
            _add_mapping_errors(self, self.mapping, self.header)
        return data

    @property
    def mapping(self) -> dict[str, str]:
        return {name: column for name in OUR_FIELDS if (column := self.cleaned_data.get(name))}


def _progress(sales_import: SalesImport) -> str:
    if sales_import.status == ImportStatus.DONE:
        return "Done"
    if sales_import.status == ImportStatus.FAILED:
        return f"Failed at {sales_import.percent_done} %"
    if sales_import.status == ImportStatus.QUEUED:
        return "Queued"
    return f"Running, {sales_import.percent_done} %"


@admin.register(SalesImport)
class SalesImportAdmin(ProgramManagerAdmin):
    list_display = ("original_name", "source", "uploaded_by", "progress", "counts", "points", "when", "lines")
    list_filter = ("status", "source")
    list_select_related = ("source", "uploaded_by")
    search_fields = ("original_name", "source__name")
    search_help_text = "Search by file name or source."

    def get_queryset(self, request):
        return super().get_queryset(request).defer("errors")  # up to a thousand errors each: only the page reads them

    def has_change_permission(self, request, obj=None):
        return False  # an import is never edited; its page shows its progress and result

    @admin.display(description="Status, progress", ordering="status")
    def progress(self, obj):
        return _progress(obj)

    @admin.display(description="Started → finished", ordering="started_at")
    def when(self, obj):
        if obj.started_at is None:
            return f"Uploaded {short_moment(obj.created_at)}"
        return f"{short_moment(obj.started_at)} → {short_moment(obj.finished_at) if obj.finished_at else '…'}"

    @admin.display(description="New / already there / errors")
    def counts(self, obj):
        return f"{obj.new_lines:,} / {obj.duplicate_lines:,} / {obj.error_rows:,}"

    @admin.display(description="Points posted", ordering="points_posted")
    def points(self, obj):
        return f"{obj.points_posted:,}"

    @admin.display(description="Lines")
    def lines(self, obj):
        return list_link("loyalty_saleline", "Lines of this import", sales_import__id__exact=obj.pk)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/errors.csv", wrap(self.errors_view), name="loyalty_salesimport_errors"),
            *super().get_urls(),
        ]

    # The upload page (the admin's "add" page) -----------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST" and "token" in request.POST:
            return self._mapping_step(request)
        form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
        if request.method == "GET" and request.GET.get("source", "").isdigit():
            form.initial["source"] = int(request.GET["source"])
        if form.is_bound and form.is_valid():
            source, upload = form.cleaned_data["source"], form.cleaned_data["file"]
            try:
                header = read_header(upload, source=source)
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                if not mapping_problems(source.column_mapping or {}, header):
                    try:
                        return self._start(request, source, upload)
                    except ApplicationError as exc:
                        form.add_error("file", exc.message)
                else:
                    token = self._stash(request, source, upload, header)
                    mapping = MappingForm(initial=mapping_prefilled(source=source, header=header), header=header)
                    return self._render_upload(request, mapping=mapping, source=source, token=token, name=upload.name)
        return self._render_upload(request, form=form)

    def _mapping_step(self, request):
        pending = request.session.get(PENDING_KEY) or {}
        if not pending or pending.get("token") != request.POST.get("token"):
            self.message_user(request, "The uploaded file is no longer waiting here: upload it again.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:loyalty_salesimport_add"))
        source = SalesSource.objects.select_related("program").filter(pk=pending["source"]).first()
        if source is None:
            self._drop(request)
            return HttpResponseRedirect(reverse("admin:loyalty_salesimport_add"))
        header = pending["header"]
        form = MappingForm(request.POST, header=header)
        if form.is_valid():
            try:
                source = source_mapping_save(source=source, mapping=form.mapping, header=header)
                self.log_change(request, source, "Column mapping saved from an upload.")
                with private_storage().open(pending["path"], "rb") as stored:
                    response = self._start(request, source, File(stored, name=pending["name"]))
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self._drop(request)
                return response
        return self._render_upload(request, mapping=form, source=source, token=pending["token"], name=pending["name"])

    def _start(self, request, source, upload):
        sales_import = import_start(source=source, uploaded_file=upload, user=request.user)
        self.log_addition(request, sales_import, f"Uploaded {sales_import.original_name}.")
        return HttpResponseRedirect(reverse("admin:loyalty_salesimport_change", args=[sales_import.pk]))

    def _stash(self, request, source, upload, header) -> str:
        """Keep the file in storage while the mapping is asked (one waiting file per session)."""
        self._drop(request)
        token = secrets.token_urlsafe(16)
        name = os.path.basename(upload.name or "sell-out.csv")
        upload.seek(0)
        stored = private_storage().save(f"{PENDING_DIR}/{token}/{private_storage().get_valid_name(name)}", upload)
        request.session[PENDING_KEY] = {
            "token": token,
            "path": stored,
            "name": name,
            "source": source.pk,
            "header": header,
        }
        return token

    def _drop(self, request) -> None:
        pending = request.session.pop(PENDING_KEY, None)
        if pending and pending.get("path"):
            private_storage().delete(pending["path"])

    def _render_upload(self, request, *, form=None, mapping=None, source=None, token="", name=""):
        return admin_page(
            self,
            request,
            "admin/loyalty/salesimport/upload.html",
            title="Upload a sell-out file" if mapping is None else f"Map the columns of {name}",
            form=form,
            mapping=mapping,
            source=source,
            token=token,
            file_name=name,
            has_sources=form is None or form.fields["source"].queryset.exists(),
        )

    # The progress page (the admin's "change" page) -------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        sales_import = (
            SalesImport.objects.select_related("source", "uploaded_by")
            .defer("errors")
            .filter(pk=_pk(object_id))
            .first()
        )
        if sales_import is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, sales_import):
            raise PermissionDenied
        running = sales_import.status in RUNNING
        errors = [] if running else (sales_import.errors or [])  # loads the deferred list once it is final
        template = "admin/loyalty/salesimport/progress.html"
        if wants_partial(request):
            template += "#progress"
        return admin_page(
            self,
            request,
            template,
            title=f"Import of {sales_import.original_name}",
            original=sales_import,
            imp=sales_import,
            running=running,
            failed=sales_import.status == ImportStatus.FAILED,
            percent=100 if sales_import.status == ImportStatus.DONE else sales_import.percent_done,
            errors_shown=errors[:ERRORS_SHOWN],
            more_errors=max(sales_import.error_rows, len(errors)) > ERRORS_SHOWN,
            has_errors=bool(errors) or sales_import.error_rows > 0,
            poll_url=request.path,
        )

    def errors_view(self, request, object_id):
        sales_import = SalesImport.objects.filter(pk=_pk(object_id)).first()
        if sales_import is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, sales_import):
            raise PermissionDenied
        response = StreamingHttpResponse(errors_csv(sales_import), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="sales-import-{sales_import.pk}-errors.csv"'
        return response


def _pk(object_id) -> int:
    value = unquote(str(object_id))
    return int(value) if value.isdigit() else 0
