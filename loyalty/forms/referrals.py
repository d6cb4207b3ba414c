"""The "Refer a company" form. It checks input; loyalty.services.referrals does the rest (and the write)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from loyalty.models import Referral


def _max_length(name: str) -> int:
    return Referral._meta.get_field(name).max_length


class ReferralForm(forms.Form):
    company_name = forms.CharField(label=_("Company"), max_length=_max_length("company_name"))
    company_id = forms.CharField(
        label=_("Company registration or VAT number"),
        max_length=_max_length("company_id"),
        required=False,
        help_text=_("Optional; it helps us see whether the company was referred before."),
    )
    contact_name = forms.CharField(label=_("Contact person"), max_length=_max_length("contact_name"))
    contact_email = forms.EmailField(label=_("Contact e-mail"), max_length=254)
    contact_phone = forms.CharField(label=_("Contact phone"), max_length=_max_length("contact_phone"), required=False)
    need = forms.CharField(
        label=_("What they need"),
        max_length=_max_length("need"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Which products or services, how many, by when: what helps our team call them."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        autocomplete = {
            "company_name": "organization",
            "company_id": "off",
            "contact_name": "name",
            "contact_email": "email",
            "contact_phone": "tel",
        }
        for name, value in autocomplete.items():
            self.fields[name].widget.attrs["autocomplete"] = value
        self.fields["contact_email"].widget.attrs["inputmode"] = "email"
        self.fields["contact_phone"].widget = forms.TextInput(
            attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}
        )
