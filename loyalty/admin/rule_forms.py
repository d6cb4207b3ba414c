"""The forms of the rule admin: the draft form with its split rows, and the small forms asking a moment
("Publish…", "Retire…") or a period ("Simulate")."""

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.forms import formset_factory
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.admin.rule_display import split_text
from loyalty.common.forms import LocalizedDecimalField
from loyalty.models import IncentiveRule
from loyalty.selectors.certificates import certification_refusal, certifying_lines
from loyalty.services.rules import rule_errors
from partners.constants import PartnerKind
from partners.models import Role

# Empty split rows offered under the existing ones.
EMPTY_SHARE_ROWS = 2
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
# The conditions a draft picks from lists (ticked, or the products searched), in the order the form shows them.
LISTED_CONDITIONS = ("roles", "partner_kinds", "tiers", "regions", "product_lines", "products")


# The split, edited as rows ------------------------------------------------------------------------------------


class ShareForm(forms.Form):
    """One row of the split: a role and its percent. A row with neither is ignored."""

    role = forms.ChoiceField(required=False)
    percent = LocalizedDecimalField(
        required=False, max_digits=5, decimal_places=2, min_value=Decimal("0.01"), max_value=Decimal(100)
    )

    def __init__(self, *args, roles: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [("", "— no role —"), *roles]
        self.fields["percent"].widget.attrs.update({"class": "vIntegerField"})

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


class RuleForm(forms.ModelForm):
    """A draft rule. Validation asks services.rules.rule_errors, so what it refuses is a form error: on the field
    each problem names, or above the form when the form has no such field (the split) or it already has an error."""

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
            *LISTED_CONDITIONS,
            "min_quantity",
            "min_amount",
            "requires_certification",
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
            "named_partners",
            "negotiated_reason",
        )
        widgets = {
            "negotiated_reason": forms.Textarea(attrs={"rows": 2, "cols": 60}),
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
            "requires_certification": _("Certified members only"),
            "named_partners": _("Negotiated for these partners only"),
            "negotiated_reason": _("Why these partners"),
        }
        help_texts = {
            "roles": "None ticked: any role, and sales with nobody named.",
            "tiers": "None ticked: any tier, and partners without one.",
            "regions": "None ticked: any region.",
            "product_lines": "None ticked: any line.",
            "products": "Empty: any product. Type an exact SKU or words of the name.",
            "value": "Points (fixed), points per unit, points per 1.00 of amount, percent, or the multiplier (e.g. 2).",
            "requires_certification": _(
                "Pays only a member who acted holding a valid certificate for this product line on the event's day "
                "(e.g. ×1.5 on softener sales for installers certified on softeners). Empty: no certificate needed."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "requires_certification" in self.fields:
            self.fields["requires_certification"].queryset = certifying_lines()

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
        if data.get("named_partners") and not (data.get("negotiated_reason") or "").strip():
            self.add_error(
                "negotiated_reason",
                _("Say why these partners get special conditions (fair dealing: equal terms must be explainable)."),
            )
        refusal = certification_refusal(program=program, line=data.get("requires_certification"))
        if refusal:
            self.add_error("requires_certification", refusal)
        return data

    def _post_clean(self):
        super()._post_clean()
        if not hasattr(self, "_shares"):
            return
        self.instance.shares = self._shares
        for problem in rule_errors(self.instance):
            if problem.field in self.fields and problem.field not in self.errors:
                self.add_error(problem.field, ValidationError(problem.message, code=problem.code))
            else:
                self.add_error(None, ValidationError(problem.message, code=problem.code))


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
