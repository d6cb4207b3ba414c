"""Forms of the equipment-return pages. They check input; loyalty.services.returns does the rest (and the writes)."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.services.returns import REASON_MAX, serial_lines

SERIALS_TEXT_MAX = 60_000  # 500 serials of 80 characters and their line breaks, with room to spare


class ReturnForm(forms.Form):
    return_type = forms.ModelChoiceField(
        label=_("What you return"),
        queryset=None,
        empty_label=_("Choose…"),
        error_messages={"required": _("Choose what you return."), "invalid_choice": _("Choose what you return.")},
    )
    quantity = forms.IntegerField(
        label=_("Units"),
        min_value=1,
        error_messages={"required": _("Enter how many units."), "invalid": _("Enter a whole number of units.")},
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1}),
    )
    returned_on = forms.DateField(
        label=_("Returned on"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"required": _("Enter the day of the return."), "invalid": _("Enter a valid date.")},
    )
    collection_point = forms.ModelChoiceField(
        label=_("Collection point"),
        queryset=None,
        empty_label=_("Choose…"),
        error_messages={
            "required": _("Choose where you returned it."),
            "invalid_choice": _("Choose where you returned it."),
        },
    )
    serials = forms.CharField(
        label=_("Serial numbers"),
        required=False,
        max_length=SERIALS_TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text=_("One per line, one per unit."),
    )

    def __init__(self, *args, return_types, collection_points, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("returned_on", timezone.localdate())
        super().__init__(*args, **kwargs)
        self.fields["return_type"].queryset = return_types
        self.fields["collection_point"].queryset = collection_points
        for name, field in self.fields.items():
            field.widget.attrs.setdefault(
                "class", "form-select" if name in {"return_type", "collection_point"} else "form-control"
            )
            if self.is_bound and name in self.errors:
                field.widget.attrs["aria-invalid"] = "true"
                field.widget.attrs["aria-describedby"] = f"{self[name].auto_id}_error"

    def clean_serials(self) -> list[str]:
        return serial_lines(self.cleaned_data.get("serials", ""))


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is it rejected?"),
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
        help_text=_("The member reads it."),
        error_messages={"required": _("Say why the return is rejected: the member reads it.")},
    )
