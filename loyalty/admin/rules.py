"""The back office for incentive rules: versions, the draft form, publishing, retiring and simulating.

A rule that has paid points is never edited in place. Only a draft is editable; a published or retired version
is read-only and its page offers "Create a new version" (services.rules.rule_new_version), which opens the new
draft. The draft form edits the conditions as checkboxes (products through the catalogue's autocomplete), the
formula, stacking and limits, and the split as rows (role + percent) stored in `shares`;
services.rules.rule_problems is asked when the form is validated, so a contradictory rule is refused with form
errors and nothing is saved. "Publish…" and "Retire…" are list actions with an intermediate
page asking from when (default now); the rule's page has the same buttons. "Simulate" replays the period's sales
through services.simulation. Registered from loyalty/admin.py; query counts are pinned in
tests/loyalty/test_admin_rules.py.
"""

from datetime import datetime
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import formset_factory
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from loyalty.common.admin import (
    DetailJoinsMixin,
    ProgramManagerAdmin,
    SavedByServices,
    action_page,
    is_program_manager,
    run_for_each,
    with_name,
)
from loyalty.common.errors import ApplicationError
from loyalty.constants import Formula, RuleStatus
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import rule_lock
from loyalty.models import IncentiveRule, Tier
from loyalty.services.rules import rule_new_version, rule_problems, rule_publish, rule_retire
from loyalty.services.simulation import DEFAULT_DAYS, default_period, rule_simulate
from partners.constants import PartnerKind
from partners.models import Role

# Empty split rows offered under the existing ones.
EMPTY_SHARE_ROWS = 2
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


# Words ------------------------------------------------------------------------------------------------------


def _number(value) -> str:
    text = format(value.normalize(), "f") if hasattr(value, "normalize") else str(value)
    return text


def formula_text(rule: IncentiveRule) -> str:
    """The formula and its value as a program manager says it: "10 pts per unit", "× 2 campaign"."""
    value = _number(rule.value)
    match rule.formula:
        case Formula.FIXED:
            return f"{value} pts per sale line"
        case Formula.PER_UNIT:
            return f"{value} pts per unit"
        case Formula.PER_AMOUNT:
            return f"{value} pts per 1.00 of amount"
        case Formula.PERCENT_BONUS:
            return f"+{value} % on the other rules' points"
        case Formula.MULTIPLIER:
            return f"× {value} on the other rules' points"
    return f"{rule.get_formula_display()}: {value}"


def describe_rule(rule: IncentiveRule) -> str:
    return f"{rule.code} v{rule.version} ({rule.name})"


def status_text(rule: IncentiveRule, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if rule.status == RuleStatus.PUBLISHED:
        if rule.effective_from and rule.effective_from > now:
            return "Published, starts later"
        if rule.effective_until and rule.effective_until <= now:
            return "Published, replaced"
        return "In force"
    return rule.get_status_display()


def split_text(shares: list[dict], role_names: dict[str, str]) -> str:
    """The split in words, with what is left for the partner's company account."""
    if not shares:
        return (
            "All to the member who acted (to the partner's company account when nobody is named, or when the "
            "partner pools staff bonuses)."
        )
    parts = [f"{role_names.get(s['role'], s['role'])} {_number(s['percent'])} %" for s in shares]
    rest = 100 - sum(float(s["percent"]) for s in shares)
    text = ", ".join(parts)
    if rest > 0:
        text += f"; the rest, {rest:g} %, goes to the partner's company account"
    return text + "."


# The split, edited as rows ------------------------------------------------------------------------------------


class ShareForm(forms.Form):
    """One row of the split: a role and its percent. A row with neither is ignored."""

    role = forms.ChoiceField(required=False)
    percent = forms.DecimalField(
        required=False,
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal(100),
        widget=forms.NumberInput,
    )

    def __init__(self, *args, roles: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [("", "— no role —"), *roles]
        self.fields["percent"].widget.attrs.update(
            {"step": "0.01", "min": "0.01", "max": "100", "class": "vIntegerField"}
        )

    def clean(self):
        data = super().clean()
        role, percent = data.get("role"), data.get("percent")
        if role and percent is None and "percent" not in self.errors:
            self.add_error("percent", "Give this role's share in percent.")
        if percent is not None and not role:
            self.add_error("role", "Choose the role that gets this share.")
        return data


ShareFormSet = formset_factory(ShareForm, extra=EMPTY_SHARE_ROWS)


def _share(role: str, percent) -> dict:
    """A share as stored in the JSON: whole percents as integers, others as numbers with their decimals."""
    return {"role": role, "percent": int(percent) if percent == percent.to_integral() else float(percent)}


# The draft form ---------------------------------------------------------------------------------------------

# Which field a problem of services.rules.rule_problems belongs to (by its wording); others go above the form.
PROBLEM_FIELDS = (
    ("formula's value", "value"),
    ("multiplier", "value"),
    ("date window", "valid_until"),
    ("minimum quantity", "min_quantity"),
    ("minimum amount", "min_amount"),
    ("exclusive", "exclusive"),
    ("event name", "custom_event"),
)


class RuleForm(forms.ModelForm):
    """A draft rule. Validation asks services.rules.rule_problems, so what it refuses is a form error."""

    partner_kinds = forms.MultipleChoiceField(
        label="Partner kinds",
        choices=PartnerKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any kind of partner.",
    )

    class Meta:
        model = IncentiveRule
        fields = (
            "program",
            "code",
            "name",
            "description",
            "event",
            "custom_event",
            "roles",
            "partner_kinds",
            "tiers",
            "regions",
            "product_lines",
            "products",
            "min_quantity",
            "min_amount",
            "valid_from",
            "valid_until",
            "formula",
            "value",
            "apply_tier_multiplier",
            "priority",
            "exclusive",
            "cap_points",
            "cap_period",
            "budget_points",
        )
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3, "cols": 60}),
            "valid_from": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "valid_until": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }
        labels = {
            "roles": "Role of the member who acted",
            "product_lines": "Product lines",
            "min_quantity": "Minimum quantity",
            "min_amount": "Minimum amount",
            "valid_from": "Sales dated from",
            "valid_until": "Sales dated up to",
            "apply_tier_multiplier": "Apply the partner's tier multiplier on top",
            "cap_points": "Cap per member",
            "budget_points": "Total budget (points)",
        }
        help_texts = {
            "roles": "None ticked: any role, and sales with nobody named.",
            "tiers": "None ticked: any tier, and partners without one.",
            "regions": "None ticked: any region.",
            "product_lines": "None ticked: any line.",
            "products": "Empty: any product. Type an exact SKU or words of the name.",
            "value": "Points (fixed), points per unit, points per 1.00 of amount, percent, or the multiplier (e.g. 2).",
        }

    @property
    def shares_formset(self):
        """The split rows, built once (their role choices cost one query)."""
        if not hasattr(self, "_shares_formset"):
            roles = list(Role.objects.order_by("sort_order", "name").values_list("code", "name"))
            self._role_names = dict(roles)
            self._shares_formset = ShareFormSet(
                self.data if self.is_bound else None,
                prefix="shares",
                initial=[{"role": s.get("role"), "percent": s.get("percent")} for s in self.instance.shares or []],
                form_kwargs={"roles": roles},
            )
        return self._shares_formset

    @property
    def split_summary(self) -> str:
        """The split in words: as submitted once it is valid, else as stored ("" while the rows have errors)."""
        self.shares_formset  # noqa: B018  (loads the role names)
        if hasattr(self, "_shares"):
            return split_text(self._shares, self._role_names)
        return "" if self.is_bound else split_text(self.instance.shares or [], self._role_names)

    def clean(self):
        data = super().clean()
        formset = self.shares_formset
        if not formset.is_valid():
            raise ValidationError("Correct the split of the points below (“Who gets the points”).", code="shares")
        self._shares = [
            _share(form.cleaned_data["role"], form.cleaned_data["percent"])
            for form in formset.forms
            if form.cleaned_data.get("role")
        ]
        program, code = data.get("program"), data.get("code")
        adding = self.instance._state.adding
        if adding and program and code and IncentiveRule.objects.filter(program=program, code=code).exists():
            self.add_error("code", f"{program} already has a rule “{code}”: open it and create a new version instead.")
        program = program or getattr(self.instance, "program", None)
        wrong = [tier.name for tier in data.get("tiers") or () if program and tier.program_id != program.pk]
        if wrong:
            self.add_error("tiers", f"Not tiers of {program}: {', '.join(wrong)}.")
        return data

    def _post_clean(self):
        super()._post_clean()
        if not hasattr(self, "_shares"):
            return
        self.instance.shares = self._shares
        for problem in rule_problems(self.instance):
            field = next((name for words, name in PROBLEM_FIELDS if words in problem), None)
            if problem.startswith("A cap or budget of 0"):
                field = "cap_points" if self.instance.cap_points == 0 else "budget_points"
            if field in self.fields and field not in self.errors:
                self.add_error(field, problem)
            else:
                self.add_error(None, problem)


class WhenForm(forms.Form):
    """The moment asked by "Publish…" or "Retire…" (default: now)."""

    moment = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
    )

    def __init__(self, *args, label: str, help_text: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["moment"].label = label
        self.fields["moment"].help_text = help_text
        self.fields["moment"].initial = timezone.localtime().replace(second=0, microsecond=0)


class SimulateForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    end = forms.DateField(label="To (included)", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The period ends before it starts.")
        return data


# The admin --------------------------------------------------------------------------------------------------

CONDITIONS = (
    "Leave a condition empty for “any”. All the conditions set must hold for the rule to pay; the date window is "
    "about the sale's date, the version's effective dates (set when it is published) decide which version pays."
)


@admin.register(IncentiveRule)
class IncentiveRuleAdmin(DetailJoinsMixin, SavedByServices, ProgramManagerAdmin):
    form = RuleForm
    detail_select_related = ("program", "published_by")
    list_display = (
        "code",
        "version",
        "name",
        "status_shown",
        "event_shown",
        "formula_shown",
        "priority",
        "exclusive",
        "effective",
        "budget_shown",
    )
    list_display_links = ("code", "name")
    list_filter = ("program", "status", "event", "formula")
    search_fields = ("code", "name")
    search_help_text = "Search by code or name."
    autocomplete_fields = ("products",)
    actions = ("publish", "retire")
    save_as = False
    readonly_fields = (
        "status_shown",
        "version",
        "version_history",
        "roles_shown",
        "tiers_shown",
        "regions_shown",
        "lines_shown",
        "products_shown",
        "minimums_shown",
        "window_shown",
        "kinds_shown",
        "formula_shown",
        "split_shown",
        "cap_shown",
        "budget_shown",
        "effective_from",
        "effective_until",
        "published_by",
    )

    # Permissions: only a draft is edited or deleted ---------------------------------------------------------

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.status == RuleStatus.DRAFT)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and obj.status == RuleStatus.DRAFT and is_program_manager(request.user)

    def has_publish_permission(self, request):
        return is_program_manager(request.user)

    # The page -------------------------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.status != RuleStatus.DRAFT:
            return [
                (None, {"fields": ("program", "code", "name", "description", "event", "custom_event")}),
                (
                    "When it pays",
                    {
                        "fields": (
                            "roles_shown",
                            "kinds_shown",
                            "tiers_shown",
                            "regions_shown",
                            "lines_shown",
                            "products_shown",
                            "minimums_shown",
                            "window_shown",
                        )
                    },
                ),
                ("How much", {"fields": ("formula_shown", "apply_tier_multiplier", "priority", "exclusive")}),
                ("Who gets the points", {"fields": ("split_shown",)}),
                ("Limits", {"fields": ("cap_shown", "budget_shown")}),
                ("Version", {"fields": ("status_shown", "effective_from", "effective_until", "published_by")}),
                ("Versions of this rule", {"fields": ("version_history",)}),
            ]
        fieldsets = [
            (None, {"fields": ("program", "code", "name", "description", ("event", "custom_event"))}),
            (
                "When it pays",
                {
                    "fields": (
                        "roles",
                        "partner_kinds",
                        "tiers",
                        "regions",
                        "product_lines",
                        "products",
                        ("min_quantity", "min_amount"),
                        ("valid_from", "valid_until"),
                    ),
                    "description": CONDITIONS,
                },
            ),
            ("How much", {"fields": ("formula", "value", "apply_tier_multiplier")}),
            (
                "Stacking",
                {
                    "fields": ("priority", "exclusive"),
                    "description": "Rules are tried from the highest priority down; an exclusive rule that pays "
                    "stops the lower ones. Bonus and multiplier rules top up what the others paid.",
                },
            ),
            ("Limits", {"fields": (("cap_points", "cap_period"), "budget_points")}),
        ]
        if obj is not None:
            fieldsets.append(("Version", {"fields": ("status_shown", "version_history")}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status == RuleStatus.DRAFT and obj.version > 1:
            return (*self.readonly_fields, "program", "code")  # a later version stays in its rule
        return self.readonly_fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name != "products":  # products: the catalogue's autocomplete (autocomplete_fields)
            kwargs["widget"] = forms.CheckboxSelectMultiple
        if db_field.name == "tiers":
            kwargs["queryset"] = Tier.objects.select_related("program").order_by("program__name", "rank")
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "tiers":
            field.label_from_instance = lambda tier: f"{tier.name} ({tier.program.name}, × {tier.multiplier})"
        return field

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        # Checkbox lists are not <select>s: no "add another" links around them.
        if db_field.name in ("roles", "tiers", "regions", "product_lines") and hasattr(field.widget, "widget"):
            field.widget = field.widget.widget
        return field

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "tiers" in form.base_fields:
            form.base_fields["tiers"].queryset = form.base_fields["tiers"].queryset.filter(program=obj.program_id)
        return form

    def save_model(self, request, obj, form, change):
        if change:
            locked = rule_lock(obj.pk, only=("status",))
            if locked.status != RuleStatus.DRAFT:
                raise ApplicationError(
                    f"{describe_rule(obj)} was {locked.get_status_display().lower()} meanwhile, so your changes were "
                    "not saved: create a new version to change it.",
                    code=ErrorCode.NOT_DRAFT,
                )
        else:
            obj.status, obj.version = RuleStatus.DRAFT, 1
        obj.full_clean()
        obj.save()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        editable = obj is None or obj.status == RuleStatus.DRAFT
        form = context["adminform"].form
        context.update(
            shares_formset=form.shares_formset if editable and isinstance(form, RuleForm) else None,
            split_after="Limits",
            show_save_and_add_another=False,
        )
        if obj is not None:
            context.update(self._tools(request, obj))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def _tools(self, request, rule: IncentiveRule) -> dict:
        manager = is_program_manager(request.user)
        draft = None
        if rule.status != RuleStatus.DRAFT:
            versions = self._versions(rule)
            draft = next((v for v in versions if v.status == RuleStatus.DRAFT), None)
        return {
            "can_publish": manager and rule.status == RuleStatus.DRAFT,
            "can_retire": manager and rule.status == RuleStatus.PUBLISHED and rule.effective_until is None,
            "can_new_version": manager and rule.status != RuleStatus.DRAFT and draft is None,
            "open_draft": draft,
            "read_only_note": rule.status != RuleStatus.DRAFT,
        }

    @staticmethod
    def _versions(rule: IncentiveRule) -> list[IncentiveRule]:
        """Every version of the rule's code, newest first (fetched once per page, kept on the object)."""
        if not hasattr(rule, "_versions"):
            rule._versions = list(
                IncentiveRule.objects.filter(program_id=rule.program_id, code=rule.code)
                .select_related("published_by")
                .order_by("-version")
            )
        return rule._versions

    # Read-only fields and list columns -----------------------------------------------------------------------

    @admin.display(description="Status", ordering="status")
    def status_shown(self, obj):
        return status_text(obj)

    @admin.display(description="Event", ordering="event")
    def event_shown(self, obj):
        return obj.get_event_display().split(" (")[0]  # "Sale line (claim or sell-out import)" → "Sale line"

    @admin.display(description="Effective from → until", ordering="effective_from")
    def effective(self, obj):
        if obj.effective_from is None:
            return "—"
        return f"{_moment(obj.effective_from)} → {_moment(obj.effective_until) if obj.effective_until else 'open'}"

    @admin.display(description="Formula", ordering="formula")
    def formula_shown(self, obj):
        text = formula_text(obj)
        if obj.apply_tier_multiplier and obj.formula != Formula.MULTIPLIER:
            return f"{text}, × tier"
        return text

    @admin.display(description="Partner kinds")
    def kinds_shown(self, obj):
        return ", ".join(PartnerKind(kind).label for kind in obj.partner_kinds) or "Any"

    @admin.display(description="Role of the member who acted")
    def roles_shown(self, obj):
        return _any(obj.roles.all())

    @admin.display(description="Partner tiers")
    def tiers_shown(self, obj):
        return _any(obj.tiers.all())

    @admin.display(description="Regions")
    def regions_shown(self, obj):
        return _any(obj.regions.all())

    @admin.display(description="Product lines")
    def lines_shown(self, obj):
        return _any(obj.product_lines.all())

    @admin.display(description="Products")
    def products_shown(self, obj):
        return _any(obj.products.all())

    @admin.display(description="Minimum per line")
    def minimums_shown(self, obj):
        parts = []
        if obj.min_quantity is not None:
            parts.append(f"quantity {_number(obj.min_quantity)}")
        if obj.min_amount is not None:
            parts.append(f"amount {obj.min_amount:,.2f}")
        return ", ".join(parts) or "None"

    @admin.display(description="Sales dated")
    def window_shown(self, obj):
        if obj.valid_from and obj.valid_until:
            return f"{obj.valid_from:%Y-%m-%d} to {obj.valid_until:%Y-%m-%d}"
        if obj.valid_from or obj.valid_until:
            return f"from {obj.valid_from:%Y-%m-%d}" if obj.valid_from else f"up to {obj.valid_until:%Y-%m-%d}"
        return "Any date"

    @admin.display(description="Split")
    def split_shown(self, obj):
        codes = [share["role"] for share in obj.shares or []]
        names = dict(Role.objects.filter(code__in=codes).values_list("code", "name")) if codes else {}
        return split_text(obj.shares or [], names)

    @admin.display(description="Cap per member")
    def cap_shown(self, obj):
        return f"{obj.cap_points:,} pts {obj.get_cap_period_display()}" if obj.cap_points else "No cap"

    @admin.display(description="Budget used / budget", ordering="budget_used")
    def budget_shown(self, obj):
        budget = f"{obj.budget_points:,}" if obj.budget_points is not None else "no budget"
        return f"{obj.budget_used:,} / {budget}"

    @admin.display(description="Versions")
    def version_history(self, obj):
        rows = (
            (
                reverse("admin:loyalty_incentiverule_change", args=[version.pk]),
                f"v{version.version}",
                " (this page)" if version.pk == obj.pk else "",
                status_text(version),
                _moment(version.effective_from),
                _moment(version.effective_until),
                formula_text(version),
                str(version.published_by or "—"),
            )
            for version in self._versions(obj)
        )
        body = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            rows,
        )
        return format_html(
            '<div class="rule-versions-scroll"><table class="rule-versions"><thead><tr><th>Version</th>'
            "<th>Status</th><th>From</th><th>Until</th><th>Formula</th><th>Published by</th></tr></thead>"
            "<tbody>{}</tbody></table></div>",
            body,
        )

    # URLs: new version, simulation, product search ---------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/new-version/", wrap(self.new_version_view), name="loyalty_incentiverule_new_version"
            ),
            path("<path:object_id>/simulate/", wrap(self.simulate_view), name="loyalty_incentiverule_simulate"),
            *super().get_urls(),
        ]

    def new_version_view(self, request, object_id):
        """POST: a draft copy of this version, with the next number; then its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        rule = self.get_object(request, unquote(object_id))
        if rule is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not is_program_manager(request.user):
            raise PermissionDenied
        existing = IncentiveRule.objects.filter(
            program_id=rule.program_id, code=rule.code, status=RuleStatus.DRAFT
        ).first()
        if existing is not None:
            self.message_user(
                request, f"{describe_rule(existing)} is already a draft of this rule: edit it.", messages.WARNING
            )
            return HttpResponseRedirect(reverse("admin:loyalty_incentiverule_change", args=[existing.pk]))
        draft = rule_new_version(rule=rule)
        self.log_addition(request, draft, f"New version of {describe_rule(rule)}.")
        self.message_user(
            request,
            f"Created {describe_rule(draft)}, a draft copy of v{rule.version}: change it, simulate it, publish it.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:loyalty_incentiverule_change", args=[draft.pk]))

    def simulate_view(self, request, object_id):
        """What this version would have cost over a past period, next to the rules as published."""
        rule = self.get_object(request, unquote(object_id))
        if rule is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, rule):
            raise PermissionDenied
        start, end = default_period()
        form = SimulateForm(request.GET if "start" in request.GET else None, initial={"start": start, "end": end})
        simulation, problem = None, ""
        if form.is_bound and form.is_valid():
            start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        if not form.is_bound or form.is_valid():
            try:
                simulation = rule_simulate(rule=rule, start=start, end=end)
            except ApplicationError as exc:
                problem = exc.message
        context = {
            **self.admin_site.each_context(request),
            "title": f"Simulate {describe_rule(rule)}",
            "subtitle": None,
            "opts": self.opts,
            "original": rule,
            "form": form,
            "simulation": simulation,
            "problem": problem,
            "default_days": DEFAULT_DAYS,
            "formula": formula_text(rule),
        }
        return TemplateResponse(request, "admin/loyalty/incentiverule/simulate.html", context)

    # Actions --------------------------------------------------------------------------------------------

    def _ask_when(self, request, rules, *, label, help_text, title, intro, button, apply, describe=describe_rule):
        form = WhenForm(request.POST if "apply" in request.POST else None, label=label, help_text=help_text)
        if form.is_bound and form.is_valid():
            done = apply(form.cleaned_data["moment"])
            if done == 1 and len(rules) == 1:
                return HttpResponseRedirect(reverse("admin:loyalty_incentiverule_change", args=[rules[0].pk]))
            return None
        return action_page(
            self,
            request,
            rules,
            form=form,
            title=title,
            intro=intro,
            button=button,
            describe=describe,
            fields=["moment"],
        )

    @admin.action(description="Publish… (asks from when)", permissions=["publish"])
    def publish(self, request, queryset):
        rules = list(queryset.order_by("code", "version"))

        def describe(rule):
            problems = rule_problems(rule) if rule.status == RuleStatus.DRAFT else ["it is not a draft."]
            text = describe_rule(rule)
            return f"{text} — cannot be published: {' '.join(problems)}" if problems else text

        def apply(moment):
            return run_for_each(
                self,
                request,
                rules,
                with_name(
                    lambda rule: self._logged(
                        request, rule_publish(rule=rule, actor=request.user, effective_from=moment), "Published."
                    ),
                    describe_rule,
                ),
                done="Published",
                noun="rule",
                name=describe_rule,
            )

        return self._ask_when(
            request,
            rules,
            label="In force from",
            help_text="Sales dated from this day are paid by this version; the version of the same rule in force so "
            "far stops here. Default: now.",
            title="Publish rules",
            intro="A published version is never edited: to change it later, create a new version.",
            button="Publish",
            apply=apply,
            describe=describe,
        )

    @admin.action(description="Retire… (asks from when)", permissions=["publish"])
    def retire(self, request, queryset):
        rules = list(queryset.order_by("code", "version"))

        def apply(moment):
            return run_for_each(
                self,
                request,
                rules,
                with_name(
                    lambda rule: self._logged(
                        request, rule_retire(rule=rule, actor=request.user, effective_until=moment), "Retired."
                    ),
                    describe_rule,
                ),
                done="Retired",
                noun="rule",
                name=describe_rule,
            )

        return self._ask_when(
            request,
            rules,
            label="Stops paying from",
            help_text="Sales dated from this day are no longer paid by this rule. Default: now.",
            title="Retire rules",
            intro="Points already paid stay. Only the version in force of a rule can be retired.",
            button="Retire",
            apply=apply,
        )

    def _logged(self, request, rule, message):
        self.log_change(request, rule, message)
        return rule


def _any(objects) -> str:
    return ", ".join(str(obj) for obj in objects) or "Any"


def _moment(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "—"
