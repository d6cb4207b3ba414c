"""Forms of the sales-claim pages. They check input; loyalty.services.claims does the rest (and the writes)."""

from decimal import Decimal

from django import forms
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.common.errors import ApplicationError
from loyalty.common.forms import LocalizedDecimalField
from loyalty.selectors.catalog import product_lookup
from loyalty.services.claim_checks import INVOICE_NUMBER_MAX, MAX_LINES, check_document

ACCEPTED_DOCUMENTS = "image/*,application/pdf"


def product_text(product) -> str:
    """How a product is written in a line's product box (and in the suggestions)."""
    return f"{product.sku} — {product.name}"


def plain_number(value: Decimal) -> str:
    """12.000 → "12", 2.500 → "2.5" ("2,5" in German): how a stored quantity is shown, in a form again too."""
    return number_format(value.normalize())


def _decimal_field(label: str, *, minimum: str, digits: int, decimals: int, refusals: tuple):
    """A LocalizedDecimalField and what it says when refused: `refusals` are (not a number, below `minimum`, too
    many decimals, too large); the first names an %(example)s the form writes in the member's language."""
    not_a_number, too_small, too_precise, too_large = refusals
    return LocalizedDecimalField(
        label=label,
        min_value=Decimal(minimum),
        max_digits=digits,
        decimal_places=decimals,
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "form-control"}),
        error_messages={
            "invalid": not_a_number,
            "min_value": too_small,
            "max_decimal_places": too_precise,
            "max_digits": too_large,
            "max_whole_digits": too_large,
        },
    )


QUANTITY_REFUSALS = (
    gettext_lazy("Enter the quantity as a number, e.g. 2 or %(example)s."),
    gettext_lazy("Enter a quantity above 0."),
    gettext_lazy("Use at most 3 decimals."),
    gettext_lazy("Enter a quantity below one billion."),
)
AMOUNT_REFUSALS = (
    gettext_lazy("Enter the amount as a number, e.g. %(example)s."),
    gettext_lazy("The amount cannot be negative."),
    gettext_lazy("Use at most 2 decimals (cents)."),
    gettext_lazy("Enter an amount below one trillion."),
)
# The examples the placeholders and the "not a number" messages give, written the member's way ("1250,00").
EXAMPLES = {"quantity": (Decimal("2.5"), Decimal("2")), "amount": (Decimal("1250.00"), Decimal("1250.00"))}


class ClaimLineForm(forms.Form):
    product = forms.CharField(label=gettext_lazy("Product"), max_length=200)
    quantity = _decimal_field(
        gettext_lazy("Quantity"), minimum="0.001", digits=12, decimals=3, refusals=QUANTITY_REFUSALS
    )
    amount = _decimal_field(gettext_lazy("Amount"), minimum="0", digits=14, decimals=2, refusals=AMOUNT_REFUSALS)

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        for name, (in_message, in_placeholder) in EXAMPLES.items():
            field = self.fields[name]
            field.error_messages["invalid"] = field.error_messages["invalid"] % {"example": number_format(in_message)}
            field.widget.attrs["placeholder"] = _("e.g. %(example)s") % {"example": number_format(in_placeholder)}
        self.fields["product"].widget.attrs.update(
            {
                "class": "form-control",
                "autocomplete": "off",
                "placeholder": _("SKU or product name"),
                "list": "product-suggestions",
                "spellcheck": "false",
                # Suggestions as the member types (htmx fills the shared datalist); without JavaScript the
                # member types the SKU and the server finds the product.
                "hx-get": reverse("claim_product_search"),
                "hx-trigger": "input changed delay:250ms",
                "hx-target": "#product-suggestions",
                "hx-swap": "innerHTML",
                "hx-sync": "this:replace",
            }
        )
        if currency:
            self.fields["amount"].label = _("Amount (%(currency)s)") % {"currency": currency}

    def has_changed(self) -> bool:
        """A line counts when anything is typed in it: a prefilled line left as it was counts too, and a line
        the member emptied is dropped."""
        if not self.is_bound:
            return super().has_changed()
        return any(str(self.data.get(self.add_prefix(name), "")).strip() for name in self.fields)

    def clean_product(self):
        product, problem = product_lookup(self.cleaned_data["product"])
        if product is None:
            raise forms.ValidationError(problem)
        return product


class BaseClaimLineFormSet(forms.BaseFormSet):
    """Lines of a claim: every form may be left empty (it is dropped), but at least one must be filled."""

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, form_kwargs={"currency": currency}, **kwargs)
        if not self.is_bound:
            self.extra = max(len(self.initial or ()), 1)

    def initial_form_count(self):
        return 0  # every line is an "extra" one: prefilled lines can be emptied to drop them

    def clean(self):
        if any(self.errors):
            return
        if not self.lines():
            raise forms.ValidationError(_("Add at least one line: the product, the quantity and the amount."))

    def lines(self) -> list[tuple]:
        return [
            (form.cleaned_data["product"], form.cleaned_data["quantity"], form.cleaned_data["amount"])
            for form in self.forms
            if form.has_changed() and form.cleaned_data
        ]


ClaimLineFormSet = forms.formset_factory(
    ClaimLineForm, formset=BaseClaimLineFormSet, extra=1, max_num=MAX_LINES, validate_max=True
)


class ColleagueChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, member):
        return f"{member.user.get_full_name()} ({member.role.name})"


class ClaimForm(forms.Form):
    """The invoice, its proof and the colleagues; the lines are a ClaimLineFormSet beside it."""

    invoice_number = forms.CharField(label=gettext_lazy("Invoice number"), max_length=INVOICE_NUMBER_MAX)
    invoice_date = forms.DateField(label=gettext_lazy("Invoice date"))
    document = forms.FileField(
        label=gettext_lazy("Take a photo of the invoice"),
        required=True,
        widget=forms.FileInput(attrs={"accept": ACCEPTED_DOCUMENTS, "capture": "environment", "class": "form-control"}),
        help_text=gettext_lazy("A photo (JPEG, PNG, WebP or HEIC) or a PDF, up to 10 MB."),
    )
    colleagues = ColleagueChoiceField(
        label=gettext_lazy("Colleagues who worked on this sale"),
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        help_text=gettext_lazy("They share the points as the program's rules say."),
    )

    def __init__(self, *args, colleagues, document_required: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        today = timezone.localdate()
        self.fields["colleagues"].queryset = colleagues
        self.fields["invoice_number"].widget.attrs.update(
            {
                "class": "form-control",
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "placeholder": _("e.g. %(example)s") % {"example": "INV-1042"},
            }
        )
        self.fields["invoice_date"].widget = forms.DateInput(
            format="%Y-%m-%d", attrs={"type": "date", "class": "form-control", "max": today.isoformat()}
        )
        if not self.is_bound and "invoice_date" not in self.initial:
            self.initial["invoice_date"] = today
        if not document_required:
            self.fields["document"].required = False
            self.fields["document"].help_text = _("Leave it empty to keep the invoice you sent before.")

    def clean_invoice_number(self) -> str:
        number = "".join(self.cleaned_data["invoice_number"].split()).upper()
        if not number:
            raise forms.ValidationError(_("Enter the invoice number."))
        return number

    def clean_document(self):
        document = self.cleaned_data.get("document")
        if document:
            try:
                check_document(document)
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return document
