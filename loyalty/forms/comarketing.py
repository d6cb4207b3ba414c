"""Forms of the co-marketing pages: asking for money for an activity, and claiming it with proof. They check input;
loyalty.services.comarketing does the rest (and the writes)."""

from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.common.errors import ApplicationError
from loyalty.common.forms import LocalizedDecimalField
from loyalty.constants import ProofKind
from loyalty.forms.claims import ACCEPTED_DOCUMENTS
from loyalty.services.claim_checks import check_document
from loyalty.services.comarketing import DESCRIPTION_MAX, TITLE_MAX

MONEY_ERRORS = {
    "invalid": gettext_lazy("Enter the amount as a number."),
    "min_value": gettext_lazy("Enter an amount above 0."),
    "max_decimal_places": gettext_lazy("Use at most 2 decimals (cents)."),
    "max_digits": gettext_lazy("Enter an amount below one trillion."),
    "max_whole_digits": gettext_lazy("Enter an amount below one trillion."),
}


def _money_field(label) -> LocalizedDecimalField:
    return LocalizedDecimalField(
        label=label,
        min_value=Decimal("0.01"),
        max_digits=14,
        decimal_places=2,
        widget=forms.TextInput(attrs={"class": "form-control", "autocomplete": "off", "inputmode": "decimal"}),
        error_messages=MONEY_ERRORS,
    )


def _file_field(label, *, required: bool) -> forms.FileField:
    return forms.FileField(
        label=label,
        required=required,
        widget=forms.FileInput(attrs={"accept": ACCEPTED_DOCUMENTS, "class": "form-control"}),
        help_text=gettext_lazy("A photo (JPEG, PNG, WebP or HEIC) or a PDF, up to 10 MB."),
    )


class MarketingRequestForm(forms.Form):
    title = forms.CharField(
        label=gettext_lazy("Activity"),
        max_length=TITLE_MAX,
        widget=forms.TextInput(attrs={"class": "form-control"}),
        help_text=gettext_lazy("e.g. an advert in the local paper, a stand at a trade fair"),
    )
    description = forms.CharField(
        label=gettext_lazy("What you plan"),
        max_length=DESCRIPTION_MAX,
        required=False,
        widget=forms.Textarea(attrs={"class": "form-control", "rows": 4}),
    )
    planned_on = forms.DateField(label=gettext_lazy("Planned for"))
    planned_cost = _money_field(gettext_lazy("Planned cost"))

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        today = timezone.localdate()
        self.fields["planned_on"].widget = forms.DateInput(
            format="%Y-%m-%d", attrs={"type": "date", "class": "form-control", "min": today.isoformat()}
        )
        self.fields["planned_cost"].widget.attrs["placeholder"] = _("e.g. %(example)s") % {
            "example": number_format(Decimal("1500.00"))
        }
        if currency:
            self.fields["planned_cost"].label = _("Planned cost (%(currency)s)") % {"currency": currency}


class MarketingClaimForm(forms.Form):
    """The actual cost, the other brands the advert names, and the proof: the advert and an invoice (kept from a
    claim sent before when it is sent again), and optionally one more file."""

    actual_cost = _money_field(gettext_lazy("Actual cost"))
    other_brands = forms.IntegerField(
        label=gettext_lazy("Other brands named in the advert"),
        min_value=0,
        max_value=100,
        initial=0,
        widget=forms.NumberInput(attrs={"class": "form-control", "inputmode": "numeric"}),
        help_text=gettext_lazy("0 when only our brand appears."),
        error_messages={"invalid": gettext_lazy("Enter a whole number, 0 or more.")},
    )
    advert = _file_field(gettext_lazy("The advert or material"), required=True)
    invoice = _file_field(gettext_lazy("The invoice"), required=True)
    other = _file_field(gettext_lazy("Other proof (optional)"), required=False)

    KINDS = {"advert": ProofKind.ADVERT, "invoice": ProofKind.INVOICE, "other": ProofKind.OTHER}

    def __init__(self, *args, currency: str = "", kept: set[str] = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        if currency:
            self.fields["actual_cost"].label = _("Actual cost (%(currency)s)") % {"currency": currency}
        for name, kind in self.KINDS.items():
            if kind in kept:
                self.fields[name].required = False
                self.fields[name].help_text = _("Leave it empty to keep the file you sent before.")

    def _clean_file(self, name):
        upload = self.cleaned_data.get(name)
        if upload:
            try:
                check_document(upload)
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return upload

    def clean_advert(self):
        return self._clean_file("advert")

    def clean_invoice(self):
        return self._clean_file("invoice")

    def clean_other(self):
        return self._clean_file("other")

    def proofs(self) -> list[tuple[str, object]]:
        return [(kind, self.cleaned_data[name]) for name, kind in self.KINDS.items() if self.cleaned_data.get(name)]
