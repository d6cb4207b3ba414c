"""The back-office toolkit every app's admin uses: program-manager permissions, read-only admins and inlines,
actions that call a service per object and report each refusal, intermediate pages asking for a reason,
pages of one object (their URL, permission check and page), counts as correlated subqueries, and a paginator
that does not count big tables."""

from collections.abc import Callable, Iterable
from operator import attrgetter

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections, models
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from loyalty.common.errors import ApplicationError
from loyalty.common.forms import LocalizedDecimalField

# Inlines show this many rows at most; the full list is one click away on the filtered changelist.
INLINE_ROW_LIMIT = 20
# Success messages name at most this many objects, then say how many more.
NAMES_IN_MESSAGE = 10


def is_program_manager(user) -> bool:
    return user.is_active and user.is_staff and user.is_program_manager


class ProgramManagerPermissions:
    """The back office belongs to program managers: they may view, add and change everything here.

    Deleting is off unless a model admin opts in: partners close, people leave and invitations are
    revoked, so their history stays.
    """

    allow_delete = False

    def has_module_permission(self, request):
        return is_program_manager(request.user)

    def has_view_permission(self, request, obj=None):
        return is_program_manager(request.user)

    def has_add_permission(self, request, *args):
        return is_program_manager(request.user)

    def has_change_permission(self, request, obj=None):
        return is_program_manager(request.user)

    def has_delete_permission(self, request, obj=None):
        return self.allow_delete and is_program_manager(request.user)


class ProgramManagerAdmin(ProgramManagerPermissions, admin.ModelAdmin):
    # Amounts, percents and multipliers typed the reader's way ("1.450,00" in German) as well as "1450.00".
    formfield_overrides = {models.DecimalField: {"form_class": LocalizedDecimalField}}


class SavedByServices:
    """For a model admin whose save_model calls services. The form catches bad input first; a refusal the
    service still raises (a concurrent change since the form was checked) rolls the whole request back
    and is shown as a message above the form, reloaded with what is now stored."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:  # raised inside the admin's transaction, which is rolled back
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def adopt(obj, saved) -> None:
    """Make the admin's unsaved form instance the object a service created, for the admin's log and redirect."""
    vars(obj).update(vars(saved))


class FirstRowsInlineFormSet(BaseInlineFormSet):
    """Only the first INLINE_ROW_LIMIT rows, so a partner with 5,000 members still opens at once."""

    def get_queryset(self):
        if not hasattr(self, "_first_rows"):
            rows = super().get_queryset()[:INLINE_ROW_LIMIT]
            for row in rows:  # evaluated once here; each row's parent is the object on the page
                setattr(row, self.fk.name, self.instance)
            self._first_rows = rows
        return self._first_rows


class ReadOnlyInline(ProgramManagerPermissions, admin.TabularInline):
    formset = FirstRowsInlineFormSet
    template = "admin/partners/edit_inline/readonly_tabular.html"
    extra = 0
    max_num = 0
    can_delete = False
    # Joined into the rows' query, so that the foreign keys they show cost no query each.
    row_select_related: tuple[str, ...] = ()

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.select_related(*self.row_select_related) if self.row_select_related else queryset


class StatusHistoryInline(ReadOnlyInline):
    """An object's status moves (the latest INLINE_ROW_LIMIT): when, from and to what, who, and why."""

    verbose_name_plural = f"Status history (the latest {INLINE_ROW_LIMIT})"
    fields = ("created_at", "from_status", "to_status", "actor", "reason")
    row_select_related = ("actor",)


class EventHistoryInline(StatusHistoryInline):
    """The events of a claim or an order: every status move, who and when, with its note."""

    verbose_name_plural = "History: every status move, who and when"
    fields = ("created_at", "from_status", "to_status", "actor", "note")


IRREGULAR_PLURALS = {"person": "people"}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {IRREGULAR_PLURALS.get(noun, noun + 's')}"


def names_listed(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_IN_MESSAGE])
    hidden = len(names) - NAMES_IN_MESSAGE
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def apply_each(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable,
    operation: Callable,
    *,
    name: Callable[[object], str] = str,
) -> list[str]:
    """Call a service for each object: a refusal is reported and the others still go ahead. Returns the names of
    those it was done for (run_for_each then says so; an action with its own translated message says it itself)."""
    succeeded = []
    for obj in objects:
        try:
            operation(obj)
        except ApplicationError as exc:
            model_admin.message_user(request, exc.message, level=messages.ERROR)
        else:
            succeeded.append(name(obj))
    return succeeded


def run_for_each(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable,
    operation: Callable,
    *,
    done: str,
    noun: str,
    name: Callable[[object], str] = str,
) -> int:
    """Call a service for each object. A refusal is reported and the others still go ahead."""
    succeeded = apply_each(model_admin, request, objects, operation, name=name)
    if succeeded:
        model_admin.message_user(
            request, f"{done} {plural(len(succeeded), noun)}: {names_listed(succeeded)}.", level=messages.SUCCESS
        )
    return len(succeeded)


class ReadOnlyModelAdmin(ProgramManagerAdmin):
    """Program managers look (and act through the list's actions, where it has some); nobody adds, changes or
    deletes here."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReasonForm(forms.Form):
    """The reason asked on an action's intermediate page (rejecting, cancelling); required."""

    reason = forms.CharField(max_length=300, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


# Intermediate pages list this many selected objects by name, then say how many more.
LISTED_ON_ACTION_PAGE = 50


# Shared by the loyalty and rewards back office ------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """Counts exactly, except the unfiltered list of a big table: its size comes from PostgreSQL's
    statistics (pg_class.reltuples, kept current by autovacuum), because COUNT(*) over millions of rows
    costs seconds on every page. A filtered list is counted exactly; its filters narrow it down first."""

    exact_below = 100_000

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where:
            estimate = self._estimate()
            if estimate >= self.exact_below:
                return estimate
        return super().count

    def _estimate(self) -> int:
        """Rows PostgreSQL believes the table has; -1 when it has never been analysed."""
        with connections[self.object_list.db].cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [self.object_list.model._meta.db_table],
            )
            row = cursor.fetchone()
        return row[0] if row else -1


class DetailJoinsMixin:
    """Fetch the object of a change page with `detail_select_related`, so its read-only foreign keys
    (shown as links with their names) cost no query each. The list keeps its own list_select_related."""

    detail_select_related: tuple[str, ...] = ()

    def get_object(self, request, object_id, from_field=None):
        queryset = self.get_queryset(request).select_related(*self.detail_select_related)
        model = queryset.model
        field = model._meta.pk if from_field is None else model._meta.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (model.DoesNotExist, ValidationError, ValueError):
            return None


def with_name(operation: Callable, name: Callable[[object], str]) -> Callable:
    """Wrap a service call so that its refusal starts with the object's name: with several rows selected,
    each message says which one was refused."""

    def run(obj):
        try:
            return operation(obj)
        except ApplicationError as exc:
            label = name(obj)
            if exc.message.startswith(label):
                raise
            raise ApplicationError(f"{label}: {exc.message}", code=exc.code, extra=exc.extra) from exc

    return run


# Lists: counts, columns, links and filters ---------------------------------------------------------


def related_field(path: str, description: str, ordering: str = "") -> Callable:
    """A list column (or read-only field) showing a related value, `path` as in "member.user.email", sorted by
    `ordering` (default: the same path as a lookup, "member__user__email")."""
    value = attrgetter(path)

    @admin.display(description=description, ordering=ordering or path.replace(".", "__"))
    def shown(self, obj):
        return value(obj)

    return shown


def list_url(model: str, **filters) -> str:
    """The admin list of `model` ("app_model"), filtered by its own lookups in `filters`."""
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return f"{reverse(f'admin:{model}_changelist')}?{query}"


def list_link(model: str, text, **filters) -> str:
    """A link to the admin list of `model`, filtered: a count that opens the rows it counts, or a named list."""
    return format_html('<a href="{}">{}</a>', list_url(model, **filters), text)


class ChoiceFilter(admin.SimpleListFilter):
    """A list filter whose every choice is one condition: `conditions` maps its URL value to (label, Q)."""

    conditions: dict[str, tuple[str, Q]] = {}

    def lookups(self, request, model_admin):
        return [(value, label) for value, (label, _condition) in self.conditions.items()]

    def queryset(self, request, queryset):
        choice = self.conditions.get(self.value())
        return queryset if choice is None else queryset.filter(choice[1])


# Pages of our own -----------------------------------------------------------------------------------


def object_url(
    model_admin: admin.ModelAdmin,
    route: str,
    view: Callable[[HttpRequest, object], HttpResponse],
    *,
    name: str,
    allowed: Callable[[HttpRequest, object], bool] | None = None,
    methods: tuple[str, ...] = (),
    hide_missing: bool = False,
) -> URLPattern:
    """The URL `<object id>/<route>` of a page of one object, behind the admin's login. `view(request, obj)` runs
    once the object is found (else the admin's "does not exist" redirect, or 403 with `hide_missing`: a private
    file does not say which ids exist) and `allowed(request, obj)` holds (default: the admin's change permission;
    else 403). With `methods`, any other HTTP method is refused first (405)."""

    def page(request, object_id):
        if methods and request.method not in methods:
            return HttpResponseNotAllowed(list(methods))
        obj = model_admin.get_object(request, unquote(object_id))
        if obj is None and not hide_missing:
            return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
        if obj is None or not (allowed or model_admin.has_change_permission)(request, obj):
            raise PermissionDenied
        return view(request, obj)

    return path(f"<path:object_id>/{route}", model_admin.admin_site.admin_view(page), name=name)


def admin_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    template: str,
    *,
    title: str,
    form: forms.Form | None = None,
    fields: list[str] | None = None,
    **extra,
) -> TemplateResponse:
    """A page of our own in the admin's frame (templates/admin/model_page.html and form_page.html): the model's
    `opts`, the form and its media, and with `fields` the form as the admin's fieldset (`adminform`) and its
    error list (`errors`). `extra` is the rest of the context, such as `original`, the object of the page."""
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": model_admin.opts,
        "form": form,
        "media": model_admin.media + (form.media if form is not None else forms.Media()),
    }
    if fields is not None:
        context["adminform"] = helpers.AdminForm(form, [(None, {"fields": fields})], {})
        context["errors"] = helpers.AdminErrorList(form, [])
    return TemplateResponse(request, template, {**context, **extra})


def back_to_object(
    model_admin: admin.ModelAdmin, request: HttpRequest, obj, message: str, *, logged: str = ""
) -> HttpResponseRedirect:
    """After a page of one object did its work: the change logged (`logged`, else the message), the message shown,
    and back to the object's page."""
    model_admin.log_change(request, obj, logged or message)
    model_admin.message_user(request, message, level=messages.SUCCESS)
    opts = model_admin.opts
    return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))


# Actions that ask first -----------------------------------------------------------------------------


def answers(request: HttpRequest) -> QueryDict | None:
    """The data for an action's form: what its intermediate page posted with "apply", else None (not asked yet)."""
    return request.POST if "apply" in request.POST else None


def ask(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    objects: list,
    *,
    form: forms.Form,
    apply: Callable[[dict], HttpResponse | None],
    **page,
) -> HttpResponse | None:
    """An action that asks first: once its page posted a valid `form` (built from answers(request)), what
    `apply(cleaned_data)` returns (None: back to the list); else the page (action_page: `page` says what it shows),
    again with the errors."""
    if form.is_bound and form.is_valid():
        return apply(form.cleaned_data)
    return action_page(model_admin, request, objects, form=form, **page)


def ask_reason(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    objects: list,
    *,
    apply: Callable[[str], None],
    reason_help: str,
    **page,
) -> TemplateResponse | None:
    """An action's intermediate page asking for a reason; `apply(reason)` runs once it is given.
    Returns None (back to the list) when done, or the page to show (again, with its errors); `page` is what
    action_page shows (title, intro, button, describe)."""
    form = ReasonForm(answers(request))
    form.fields["reason"].help_text = reason_help

    def done(data) -> None:
        apply(data["reason"])

    return ask(model_admin, request, objects, form=form, apply=done, fields=["reason"], **page)


def action_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    objects: list,
    *,
    form,
    title: str,
    intro: str,
    button: str,
    describe: Callable[[object], str],
    fields: list[str],
    template: str = "admin/loyalty/action_form.html",
    **extra,
) -> TemplateResponse:
    return admin_page(
        model_admin,
        request,
        template,
        title=title,
        form=form,
        fields=fields,
        intro=intro,
        button=button,
        action=request.POST.get("action", ""),
        objects=objects,
        described=[describe(obj) for obj in objects[:LISTED_ON_ACTION_PAGE]],
        hidden_count=max(len(objects) - LISTED_ON_ACTION_PAGE, 0),
        action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
        **extra,
    )
