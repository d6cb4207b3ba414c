"""Forms of the rewards pages. They check input; the writes happen in rewards.services."""

from django import forms

from partners.forms import SearchFilterForm
from rewards.constants import MAX_QUANTITY_PER_LINE
from rewards.models import RewardCategory


class CatalogueFilterForm(SearchFilterForm):
    search_placeholder = "Name or description"
    category = forms.ChoiceField(label="Category", required=False)
    affordable = forms.BooleanField(label="Only what I can afford", required=False)
    columns = {"q": "col-12 col-md-4", "category": "col-12 col-md-3", "affordable": "col-7 col-md-3"}
    columns["submit"] = "col-5 col-md-2"

    def __init__(self, *args, categories: list[RewardCategory], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "All categories"), *((c.slug, c.name) for c in categories)]


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(
        label="Quantity",
        min_value=0,
        max_value=MAX_QUANTITY_PER_LINE,
        widget=forms.NumberInput(attrs={"class": "form-control", "inputmode": "numeric"}),
    )


class CheckoutForm(forms.Form):
    """The delivery address (only asked for when something will be shipped) and a one-time checkout key."""

    checkout_key = forms.CharField(widget=forms.HiddenInput, max_length=80)
    name = forms.CharField(label="Recipient", max_length=150, required=False)
    street = forms.CharField(label="Street and number", max_length=200, required=False)
    postcode = forms.CharField(label="Postcode", max_length=20, required=False)
    city = forms.CharField(label="City", max_length=100, required=False)
    country = forms.CharField(label="Country", max_length=60, required=False)
    phone = forms.CharField(label="Phone for the courier", max_length=30, required=False)

    def __init__(self, *args, ships: bool, **kwargs):
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
            if ships and name != "phone":
                self.fields[name].required = True
        if not ships:
            for name in autocomplete:
                del self.fields[name]

    def address(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k != "checkout_key"}


class CancelOrderForm(forms.Form):
    reason = forms.CharField(
        label="Why are you cancelling?",
        max_length=300,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": "e.g. ordered by mistake"}),
    )
