"""Forms of the rewards pages. They check input; the writes happen in rewards.services."""

import re

from django import forms
from django.utils.translation import gettext, gettext_lazy

from partners.forms import SearchFilterForm
from rewards.constants import MAX_QUANTITY_PER_LINE
from rewards.models import RewardCategory


class CatalogueFilterForm(SearchFilterForm):
    search_placeholder = gettext_lazy("Name or description")
    category = forms.ChoiceField(label=gettext_lazy("Category"), required=False)
    affordable = forms.BooleanField(label=gettext_lazy("Only what I can afford"), required=False)
    columns = {"q": "col-12 col-md-4", "category": "col-12 col-md-3", "affordable": "col-7 col-md-3"}
    columns["submit"] = "col-5 col-md-2"

    def __init__(self, *args, categories: list[RewardCategory], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", gettext("All categories")), *((c.slug, c.name) for c in categories)]


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(
        label=gettext_lazy("Quantity"),
        min_value=0,
        max_value=MAX_QUANTITY_PER_LINE,
        widget=forms.NumberInput(attrs={"class": "form-control", "inputmode": "numeric"}),
    )


class CheckoutForm(forms.Form):
    """The delivery address (only asked for when a reward is shipped or set up on site) and a one-time checkout
    key. The lines the page showed come back with it (checkout_lines)."""

    # The order stores "<member id>:<key>" in 80 characters.
    checkout_key = forms.CharField(
        widget=forms.HiddenInput,
        max_length=64,
        error_messages={
            "required": gettext_lazy("This checkout page is out of date: open the checkout again."),
            "max_length": gettext_lazy("This checkout page is out of date: open the checkout again."),
        },
    )
    name = forms.CharField(label=gettext_lazy("Recipient"), max_length=150, required=False)
    street = forms.CharField(label=gettext_lazy("Street and number"), max_length=200, required=False)
    postcode = forms.CharField(label=gettext_lazy("Postcode"), max_length=20, required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=100, required=False)
    country = forms.CharField(label=gettext_lazy("Country"), max_length=60, required=False)
    phone = forms.CharField(label=gettext_lazy("Phone for the courier"), max_length=30, required=False)

    def __init__(self, *args, needs_address: bool, **kwargs):
        super().__init__(*args, **kwargs)
        autocomplete = {
            "name": "name",
            "street": "street-address",
            "postcode": "postal-code",
            "city": "address-level2",
            "country": "country-name",
            "phone": "tel",
        }
        for name, token in autocomplete.items():
            self.fields[name].widget.attrs.update({"class": "form-control", "autocomplete": token})
            if needs_address and name != "phone":
                self.fields[name].required = True
        if not needs_address:
            for name in autocomplete:
                del self.fields[name]

    def address(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k != "checkout_key"}


CHECKOUT_LINE = re.compile(r"([0-9]{1,9}):([0-9]{1,3})")
MAX_CHECKOUT_LINES = 100


def checkout_lines(posted: str) -> list[tuple[int, int]]:
    """The lines a checkout page posts back, "<reward id>:<quantity>,…" (CheckoutGroup.lines_key): what the member
    confirmed, so that a repeated post asks for the same order. Empty when missing or garbled."""
    parts = posted.split(",") if posted else []
    matches = [CHECKOUT_LINE.fullmatch(part) for part in parts[: MAX_CHECKOUT_LINES + 1]]
    if not matches or len(matches) > MAX_CHECKOUT_LINES or not all(matches):
        return []
    return [(int(match[1]), int(match[2])) for match in matches]


class CancelOrderForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why are you cancelling?"),
        max_length=300,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": gettext_lazy("e.g. ordered by mistake")}),
    )
