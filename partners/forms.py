"""Forms of the member site. They check input; the writes happen in partners.services."""

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from partners.constants import Channel, MemberStatus, PartnerKind, PartnerStatus, PayoutPolicy
from partners.models import Region, Role, time_zone_choices

phone_validator = RegexValidator(
    r"^\+?[0-9][0-9 ()./-]{4,28}$",
    _("Enter a phone number with digits only, optionally starting with + and the country code, e.g. +49 30 1234567."),
)


class FullNameField(forms.CharField):
    """A person's full name, as they type it: not only spaces."""

    def __init__(self, **kwargs):
        super().__init__(label=_("Full name"), max_length=150, **kwargs)

    def widget_attrs(self, widget) -> dict:
        return {**super().widget_attrs(widget), "autocomplete": "name"}

    def clean(self, value) -> str:
        name = super().clean(value).strip()
        if not name:
            raise forms.ValidationError(_("Enter your name."))
        return name


def _choices(all_label: str, choices) -> list[tuple[str, str]]:
    return [("", all_label), *choices]


class FilterForm(forms.Form):
    """Search and filters of a list page (GET), drawn by templates/includes/filter_form.html. Invalid values are
    ignored rather than failing the page.

    Its ids are filter_… (another form on the page keeps id_…). A `q` field is the search box, with
    `search_placeholder`; a choice field is a select and a tick box a check input. `columns` gives the grid
    columns of a field, and of the Filter button under "submit" ("col-auto" when not given). `filters()` gives the
    values by name (`q` as `search`): "" for one that is empty or not valid.
    """

    search_placeholder = ""
    columns: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "filter_%s")
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if name == "q":
                attrs = {"type": "search", "placeholder": self.search_placeholder, "autocomplete": "off"}
                field.widget.attrs.update({**attrs, "class": "form-control"})
            elif isinstance(field, forms.BooleanField):
                field.widget.attrs["class"] = "form-check-input"
            elif isinstance(field, forms.ChoiceField):
                field.widget.attrs["class"] = "form-select"

    def filters(self) -> dict:
        self.is_valid()
        values = {"search" if name == "q" else name: self.cleaned_data.get(name) for name in self.fields}
        return {key: value if isinstance(value, bool) else value or "" for key, value in values.items()}

    def cells(self) -> list[tuple[forms.BoundField, str]]:
        """Each field with its grid columns."""
        return [(field, self.columns.get(field.name, "col-auto")) for field in self]

    def submit_columns(self) -> str:
        return self.columns.get("submit", "col-auto")

    def hx_trigger(self) -> str:
        """What refreshes the results without a page load: a pause in typing a search, a change of a filter, or
        the Filter button."""
        events = [
            f"input changed delay:300ms from:#{field.auto_id}" if field.name == "q" else f"change from:#{field.auto_id}"
            for field in self
        ]
        return ", ".join([*events, "submit"])


class SearchFilterForm(FilterForm):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)


class StatusFilterForm(FilterForm):
    """A list filtered by one status, out of `statuses` (choices)."""

    status = forms.ChoiceField(label=_("Status"), required=False)

    def __init__(self, *args, statuses, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = _choices(_("Any status"), statuses)


class TeamFilterForm(SearchFilterForm):
    """The team table's; the invite form on the same page owns id_role."""

    search_placeholder = _("Name or e-mail")
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=_choices(_("Current team"), MemberStatus.choices)
    )
    role = forms.ChoiceField(label=_("Role"), required=False)
    columns = {"q": "col-12 col-lg-4", "submit": "col-12 col-md-2"}
    columns |= dict.fromkeys(("status", "role"), "col-12 col-sm-6 col-md-5 col-lg-3")

    def __init__(self, *args, roles: list[Role], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _choices("All roles", [(r.code, r.name) for r in roles])


class PartnerFilterForm(SearchFilterForm):
    search_placeholder = _("Name or legal id")
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=_choices(_("Any status"), PartnerStatus.choices)
    )
    kind = forms.ChoiceField(label=_("Type"), required=False, choices=_choices(_("Any type"), PartnerKind.choices))
    region = forms.ChoiceField(label=_("Region"), required=False)
    columns = {"q": "col-12 col-md-4", "status": "col-6 col-md-2", "kind": "col-6 col-md-2"}
    columns |= dict.fromkeys(("region", "submit"), "col-12 col-md-2")

    def __init__(self, *args, regions: list[Region], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = _choices("Any region", [(r.code, r.name) for r in regions])


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    role = forms.ChoiceField(label=_("Role"))

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
    full_name = FullNameField()
    phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=30,
        required=False,
        validators=[phone_validator],
        help_text=_("Needed for messages by SMS."),
    )
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    preferred_channel = forms.ChoiceField(
        label=_("How should we reach you?"), choices=Channel.choices, widget=forms.RadioSelect
    )
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=time_zone_choices,
        required=False,
        help_text=_("Text messages sent at night wait until the morning of your time zone."),
    )
    show_name_on_leaderboards = forms.BooleanField(
        label=_("Show my name on leaderboards"),
        required=False,
        help_text=_("Otherwise others see only your role and region (“Sales rep in North”)."),
    )

    def __init__(self, *args, default_zone: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if default_zone:  # name the zone an empty choice stands for
            zones = self.fields["time_zone"].choices[1:]
            self.fields["time_zone"].choices = [("", _("My region's: %(zone)s") % {"zone": default_zone}), *zones]
        self.fields["phone"].widget.attrs.update({"autocomplete": "tel", "inputmode": "tel", "type": "tel"})

    def clean(self):
        data = super().clean()
        if data.get("preferred_channel") == Channel.SMS and not data.get("phone"):
            self.add_error("phone", _("Add a mobile phone number to get messages by SMS."))
        return data


class DeactivateForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the membership history."),
    )


_PAYOUT_POLICY_ERROR = "Choose how staff bonuses are paid: {}.".format(
    " or ".join(label.lower() for label in PayoutPolicy.labels)
)


class PayoutPolicyForm(forms.Form):
    """The owner's choice of how staff bonuses are paid. `confirm` is set by the confirmation step."""

    payout_policy = forms.ChoiceField(
        label=_("How are staff bonuses paid?"),
        choices=PayoutPolicy.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _PAYOUT_POLICY_ERROR, "invalid_choice": _PAYOUT_POLICY_ERROR},
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class InvitationSignupForm(forms.Form):
    """A new person joining through an invitation chooses their name and password (typed twice)."""

    full_name = FullNameField()
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Confirm password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        password1, password2 = data.get("password1"), data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords do not match."))
        # The password rules themselves are checked by services.invitation_register, which has the final say.
        return data
