"""Forms of the member site. They check input; the writes happen in partners.services."""

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.validators import RegexValidator

from partners.constants import Channel, MemberStatus, PartnerKind, PartnerStatus, PayoutPolicy
from partners.models import Region, Role

phone_validator = RegexValidator(
    r"^\+?[0-9][0-9 ()./-]{4,28}$",
    "Enter a phone number with digits only, optionally starting with + and the country code, e.g. +49 30 1234567.",
)


def _choices(all_label: str, choices) -> list[tuple[str, str]]:
    return [("", all_label), *choices]


class TeamFilterForm(forms.Form):
    """Search and filters of the team table (GET). Invalid values are ignored rather than failing the page."""

    q = forms.CharField(label="Search", required=False, max_length=100)
    status = forms.ChoiceField(label="Status", required=False)
    role = forms.ChoiceField(label="Role", required=False)

    def __init__(self, *args, roles: list[Role], **kwargs):
        kwargs.setdefault("auto_id", "filter_%s")  # the invite form on the same page owns id_role
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.attrs.update(
            {"type": "search", "placeholder": "Name or e-mail", "autocomplete": "off", "class": "form-control"}
        )
        self.fields["status"].choices = _choices("Current team", MemberStatus.choices)
        self.fields["role"].choices = _choices("All roles", [(r.code, r.name) for r in roles])
        for name in ("status", "role"):
            self.fields[name].widget.attrs["class"] = "form-select"

    def filters(self) -> dict[str, str]:
        self.is_valid()
        data = self.cleaned_data
        return {"search": data.get("q") or "", "status": data.get("status") or "", "role": data.get("role") or ""}


class PartnerFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=100)
    status = forms.ChoiceField(label="Status", required=False, choices=_choices("Any status", PartnerStatus.choices))
    kind = forms.ChoiceField(label="Type", required=False, choices=_choices("Any type", PartnerKind.choices))
    region = forms.ChoiceField(label="Region", required=False)

    def __init__(self, *args, regions: list[Region], **kwargs):
        kwargs.setdefault("auto_id", "filter_%s")
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.attrs.update(
            {"type": "search", "placeholder": "Name or legal id", "autocomplete": "off", "class": "form-control"}
        )
        self.fields["region"].choices = _choices("Any region", [(r.code, r.name) for r in regions])
        for name in ("status", "kind", "region"):
            self.fields[name].widget.attrs["class"] = "form-select"

    def filters(self) -> dict[str, str]:
        self.is_valid()
        data = self.cleaned_data
        return {
            "search": data.get("q") or "",
            "status": data.get("status") or "",
            "kind": data.get("kind") or "",
            "region": data.get("region") or "",
        }


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, roles: list[Role], **kwargs):
        super().__init__(*args, **kwargs)
        self._roles = {r.code: r for r in roles}
        self.fields["email"].widget.attrs.update(
            {"autocomplete": "off", "placeholder": "name@company.com", "inputmode": "email"}
        )
        self.fields["role"].choices = [(r.code, r.name) for r in roles]
        default = next((r for r in roles if not r.is_owner), None)
        if default is not None:
            self.fields["role"].initial = default.code

    def clean_role(self) -> Role:
        return self._roles[self.cleaned_data["role"]]


class ProfileForm(forms.Form):
    full_name = forms.CharField(label="Full name", max_length=150)
    phone = forms.CharField(
        label="Mobile phone",
        max_length=30,
        required=False,
        validators=[phone_validator],
        help_text="Needed for messages by SMS.",
    )
    language = forms.ChoiceField(label="Language", choices=settings.LANGUAGES)
    preferred_channel = forms.ChoiceField(
        label="How should we reach you?", choices=Channel.choices, widget=forms.RadioSelect
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["full_name"].widget.attrs["autocomplete"] = "name"
        self.fields["phone"].widget.attrs.update({"autocomplete": "tel", "inputmode": "tel", "type": "tel"})

    def clean_full_name(self) -> str:
        name = self.cleaned_data["full_name"].strip()
        if not name:
            raise forms.ValidationError("Enter your name.")
        return name

    def clean(self):
        data = super().clean()
        if data.get("preferred_channel") == Channel.SMS and not data.get("phone"):
            self.add_error("phone", "Add a mobile phone number to get messages by SMS.")
        return data


class DeactivateForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)",
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept in the membership history.",
    )


_PAYOUT_POLICY_ERROR = "Choose how staff bonuses are paid: {}.".format(
    " or ".join(label.lower() for label in PayoutPolicy.labels)
)


class PayoutPolicyForm(forms.Form):
    """The owner's choice of how staff bonuses are paid. `confirm` is set by the confirmation step."""

    payout_policy = forms.ChoiceField(
        label="How are staff bonuses paid?",
        choices=PayoutPolicy.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _PAYOUT_POLICY_ERROR, "invalid_choice": _PAYOUT_POLICY_ERROR},
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class InvitationSignupForm(forms.Form):
    """A new person joining through an invitation chooses their name and password (typed twice)."""

    full_name = forms.CharField(label="Full name", max_length=150)
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["full_name"].widget.attrs["autocomplete"] = "name"

    def clean_full_name(self) -> str:
        name = self.cleaned_data["full_name"].strip()
        if not name:
            raise forms.ValidationError("Enter your name.")
        return name

    def clean(self):
        data = super().clean()
        password1, password2 = data.get("password1"), data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords do not match.")
        # The password rules themselves are checked by services.invitation_register, which has the final say.
        return data
