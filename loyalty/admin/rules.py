"""The back office for incentive rules: versions, the draft form, publishing, retiring and simulating.

A rule that has paid points is never edited in place. Only a draft is editable; a published or retired version
is read-only and its page offers "Create a new version" (services.rules.rule_new_draft), which opens the new
draft. The draft form (admin/rule_forms.py) edits the conditions as checkboxes (products through the catalogue's
autocomplete), the formula, stacking and limits, and the split as rows (role + percent) stored in `shares`;
services.rules.rule_errors is asked when the form is validated, so a contradictory rule is refused with form
errors and nothing is saved; saving goes through services.rules.rule_draft_save. "Publish…" and "Retire…" are
list actions with an intermediate page asking from when (default now); the rule's page has the same buttons.
"Simulate" (admin/rule_simulation.py) replays the period's sales through services.simulation. The read-only
fields and list columns are in admin/rule_display.py. Registered by importing loyalty.admin; query counts are
pinned in tests/loyalty/test_admin_rules.py.
"""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from loyalty.admin.rule_display import RuleDisplay, negotiated_filter
from loyalty.admin.rule_forms import LISTED_CONDITIONS, RuleForm, WhenForm
from loyalty.admin.rule_simulation import simulate_view
from loyalty.common.admin import (
    DetailJoinsMixin,
    ProgramManagerAdmin,
    SavedByServices,
    answers,
    ask,
    is_program_manager,
    object_url,
    run_for_each,
    with_name,
)
from loyalty.common.errors import ApplicationError
from loyalty.constants import RuleStatus
from loyalty.error_codes import ErrorCode
from loyalty.models import IncentiveRule, Tier
from loyalty.selectors.negotiated import partner_names
from loyalty.services.rules import (
    describe_rule,
    rule_draft_save,
    rule_new_draft,
    rule_problems,
    rule_publish,
    rule_retire,
)

# The read-only conditions of a published or retired version, as its page lists them under "When it pays".
CONDITIONS_SHOWN = (
    "roles_shown",
    "kinds_shown",
    "tiers_shown",
    "regions_shown",
    "lines_shown",
    "products_shown",
    "certification_shown",
    "negotiated_shown",
    "minimums_shown",
    "window_shown",
)
CONDITIONS = (
    "Leave a condition empty for “any”. All the conditions set must hold for the rule to pay; the date window is "
    "about the sale's date, the version's effective dates (set when it is published) decide which version pays."
)


@admin.register(IncentiveRule)
class IncentiveRuleAdmin(RuleDisplay, DetailJoinsMixin, SavedByServices, ProgramManagerAdmin):
    form = RuleForm
    detail_select_related = ("program", "published_by", "requires_certification", "negotiated_approved_by")
    list_display = (
        "code",
        "version",
        "name",
        "status_shown",
        "event_shown",
        "formula_shown",
        "certification_shown",
        "priority",
        "exclusive",
        "effective",
        "budget_shown",
        "negotiated_shown",
    )
    list_select_related = ("requires_certification", "negotiated_approved_by")
    list_display_links = ("code", "name")
    list_filter = ("program", "status", "event", "formula", negotiated_filter("named_partners"))
    search_fields = ("code", "name")
    search_help_text = "Search by code or name."
    autocomplete_fields = ("products", "named_partners")
    actions = ("publish", "retire")
    save_as = False
    readonly_fields = (
        "status_shown",
        "version",
        "version_history",
        *CONDITIONS_SHOWN,
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
                ("When it pays", {"fields": CONDITIONS_SHOWN}),
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
                        *LISTED_CONDITIONS,
                        "requires_certification",
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
            (
                _("Negotiated conditions"),
                {
                    "fields": ("named_partners", "negotiated_reason", *(("negotiated_shown",) if obj else ())),
                    "description": _(
                        "Special conditions for key accounts: a rule naming partners pays only their members and "
                        "only they see it. Say why: whoever publishes it approves it, and the reason is kept."
                    ),
                },
            ),
        ]
        if obj is not None:
            fieldsets.append(("Version", {"fields": ("status_shown", "version_history")}))
        return fieldsets

    def get_queryset(self, request):
        # The negotiated partners' names in the list's own query (admin/rule_display.negotiated_shown).
        return super().get_queryset(request).annotate(negotiated_names=partner_names(IncentiveRule, "named_partners"))

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status == RuleStatus.DRAFT and obj.version > 1:
            return (*self.readonly_fields, "program", "code")  # a later version stays in its rule
        return self.readonly_fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name not in self.autocomplete_fields:  # products, partners: autocomplete (search)
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
        # Nor around the named partners (partners are not created from a rule).
        if db_field.name in ("roles", "tiers", "regions", "product_lines", "named_partners") and hasattr(
            field.widget, "widget"
        ):
            field.widget = field.widget.widget
        return field

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "tiers" in form.base_fields:
            form.base_fields["tiers"].queryset = form.base_fields["tiers"].queryset.filter(program=obj.program_id)
        return form

    def save_model(self, request, obj, form, change):
        rule_draft_save(rule=obj)

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

    # URLs: new version, simulation, product search ---------------------------------------------------------

    def get_urls(self):
        return [
            object_url(
                self,
                "new-version/",
                self.new_version_view,
                name="loyalty_incentiverule_new_version",
                allowed=lambda request, rule: is_program_manager(request.user),
                methods=("POST",),
            ),
            object_url(
                self,
                "simulate/",
                partial(simulate_view, self),
                name="loyalty_incentiverule_simulate",
                allowed=self.has_view_permission,
            ),
            *super().get_urls(),
        ]

    def new_version_view(self, request, rule):
        """POST: a draft copy of this version, with the next number; then its page."""
        try:
            draft = rule_new_draft(rule=rule)
        except ApplicationError as exc:
            if exc.code != ErrorCode.DRAFT_EXISTS:
                raise
            self.message_user(request, exc.message, messages.WARNING)
            return HttpResponseRedirect(reverse("admin:loyalty_incentiverule_change", args=[exc.extra["draft"].pk]))
        self.log_addition(request, draft, f"New version of {describe_rule(rule)}.")
        self.message_user(
            request,
            f"Created {describe_rule(draft)}, a draft copy of v{rule.version}: change it, simulate it, publish it.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:loyalty_incentiverule_change", args=[draft.pk]))

    # Actions --------------------------------------------------------------------------------------------

    def _ask_when(
        self, request, queryset, operation, *, done: str, label: str, help_text: str, describe=describe_rule, **page
    ):
        """The page asking from when; then `operation(rule, moment)` for each selected rule, logged (each refusal
        reported by the rule's name), and the rule's page when it was the one rule selected."""
        rules = list(queryset.order_by("code", "version"))

        def logged(rule, moment):
            changed = operation(rule, moment)
            self.log_change(request, changed, f"{done}.")
            return changed

        def apply(data):
            run = with_name(lambda rule: logged(rule, data["moment"]), describe_rule)
            succeeded = run_for_each(self, request, rules, run, done=done, noun="rule", name=describe_rule)
            if succeeded == 1 and len(rules) == 1:
                return HttpResponseRedirect(reverse("admin:loyalty_incentiverule_change", args=[rules[0].pk]))
            return None

        form = WhenForm(answers(request), label=label, help_text=help_text)
        return ask(self, request, rules, form=form, apply=apply, describe=describe, fields=["moment"], **page)

    @admin.action(description="Publish… (asks from when)", permissions=["publish"])
    def publish(self, request, queryset):
        def describe(rule):
            problems = rule_problems(rule) if rule.status == RuleStatus.DRAFT else ["it is not a draft."]
            text = describe_rule(rule)
            return f"{text} — cannot be published: {' '.join(problems)}" if problems else text

        return self._ask_when(
            request,
            queryset,
            lambda rule, moment: rule_publish(rule=rule, actor=request.user, effective_from=moment),
            done="Published",
            label="In force from",
            help_text="Sales dated from this day are paid by this version; the version of the same rule in force so "
            "far stops here. Default: now.",
            title="Publish rules",
            intro="A published version is never edited: to change it later, create a new version.",
            button="Publish",
            describe=describe,
        )

    @admin.action(description="Retire… (asks from when)", permissions=["publish"])
    def retire(self, request, queryset):
        return self._ask_when(
            request,
            queryset,
            lambda rule, moment: rule_retire(rule=rule, actor=request.user, effective_until=moment),
            done="Retired",
            label="Stops paying from",
            help_text="Sales dated from this day are no longer paid by this rule. Default: now.",
            title="Retire rules",
            intro="Points already paid stay. Only the version in force of a rule can be retired.",
            button="Retire",
        )
