"""How an incentive rule reads in the back office: its formula, status and split in words, and the read-only
fields and list columns of the rule admin (a mixin of loyalty.admin.rules.IncentiveRuleAdmin)."""

from datetime import datetime

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.common.formatting import format_money
from loyalty.constants import RuleStatus
from loyalty.engine.formulas import FORMULAS
from loyalty.models import IncentiveRule
from partners.constants import PartnerKind
from partners.models import Role

# Words ------------------------------------------------------------------------------------------------------


def _number(value) -> str:
    text = format(value.normalize(), "f") if hasattr(value, "normalize") else str(value)
    return text


def formula_text(rule: IncentiveRule, *, tier: bool = False) -> str:
    """The formula and its value as a program manager says it: "10 pts per unit", "× 2 on the other rules'
    points". `tier`: say so when the partner's tier multiplier applies on top."""
    formula = FORMULAS.get(rule.formula)
    if formula is None:
        return f"{rule.get_formula_display()}: {_number(rule.value)}"
    return formula.describe(rule.value, tier=tier)


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


def certification_text(rule: IncentiveRule) -> str:
    """The rule's certificate condition in words ("Requires a certificate on Softeners"; "" for none). Reads
    `requires_certification`: select it with the rule."""
    if rule.requires_certification_id is None:
        return ""
    return _("Requires a certificate on %(line)s") % {"line": rule.requires_certification.name}


def negotiated_text(names, approved_by, approved_at, reason: str) -> str:
    """A negotiated condition in words: "Negotiated for: A, B — approved by X on 2026-03-01: reason" ("" when
    it names no partner). Shared by the rule and reward admins."""
    if not names:
        return ""
    text = _("Negotiated for: %(partners)s") % {"partners": ", ".join(sorted(names))}
    if approved_by is not None and approved_at is not None:
        text += " — " + _("approved by %(user)s on %(day)s") % {
            "user": approved_by,
            "day": f"{timezone.localtime(approved_at):%Y-%m-%d}",
        }
    else:
        text += " — " + _("not approved yet")
    return f"{text}: {reason}" if reason else text


def negotiated_filter(relation: str) -> type[admin.SimpleListFilter]:
    """A list filter "negotiated conditions": the rows naming partners through `relation`, or the others."""

    class NegotiatedFilter(admin.SimpleListFilter):
        title = gettext_lazy("negotiated conditions")
        parameter_name = "negotiated"

        def lookups(self, request, model_admin):
            return [("yes", _("Negotiated for named partners")), ("no", _("For every partner"))]

        def queryset(self, request, queryset):
            if self.value() not in ("yes", "no"):
                return queryset
            field = getattr(queryset.model, relation).field
            named = Exists(field.remote_field.through.objects.filter(**{field.m2m_field_name(): OuterRef("pk")}))
            return queryset.filter(named) if self.value() == "yes" else queryset.exclude(named)

    return NegotiatedFilter


def _any(objects) -> str:
    return ", ".join(str(obj) for obj in objects) or "Any"


def _listed(relation: str, description: str):
    """A read-only field naming the rule's objects of a many-to-many condition ("Any" for none)."""

    @admin.display(description=description)
    def shown(self, obj):
        return _any(getattr(obj, relation).all())

    return shown


def _moment(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "—"


# Read-only fields and list columns ---------------------------------------------------------------------------


class RuleDisplay:
    """The rule admin's computed fields. `_versions` is fetched once per page and kept on the object."""

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
        return formula_text(obj, tier=obj.apply_tier_multiplier)

    @admin.display(description="Partner kinds")
    def kinds_shown(self, obj):
        return ", ".join(PartnerKind(kind).label for kind in obj.partner_kinds) or "Any"

    roles_shown = _listed("roles", "Role of the member who acted")
    tiers_shown = _listed("tiers", "Partner tiers")
    regions_shown = _listed("regions", "Regions")
    lines_shown = _listed("product_lines", "Product lines")
    products_shown = _listed("products", "Products")

    @admin.display(description=gettext_lazy("Negotiated conditions"))
    def negotiated_shown(self, obj):
        """Who the rule was negotiated for, who approved it, when and why ("For every partner" when it names
        none). The list annotates `negotiated_names`; a page reads the rule's partners."""
        if hasattr(obj, "negotiated_names"):  # annotated (None: it names no partner)
            names = obj.negotiated_names
        else:
            names = [partner.name for partner in obj.named_partners.all()] if obj.pk is not None else ()
        return negotiated_text(
            names or (), obj.negotiated_approved_by, obj.negotiated_approved_at, obj.negotiated_reason
        ) or _("For every partner")

    @admin.display(description=gettext_lazy("Certificate"), ordering="requires_certification__name")
    def certification_shown(self, obj):
        return certification_text(obj) or _("Not needed")

    @admin.display(description="Minimum per line")
    def minimums_shown(self, obj):
        parts = []
        if obj.min_quantity is not None:
            parts.append(f"quantity {_number(obj.min_quantity)}")
        if obj.min_amount is not None:
            parts.append(f"amount {format_money(obj.min_amount, obj.program.money_currency)}")
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
