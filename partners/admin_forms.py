"""Forms of the back office (Django admin) for partners, people and invitations."""

from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError

from loyalty.common.keys import matching_key
from partners.constants import PARTNER_START_STATUSES, StaffRole
from partners.models import Partner, Role, User


def normalize_legal_id(value: str) -> str:
    """The form services.partner_create stores a legal id in."""
    return value.strip().upper()


class PartnerAdminForm(forms.ModelForm):
    class Meta:
        model = Partner
        fields = (
            "name",
            "legal_id",
            "kind",
            "parent",
            "region",
            "status",
            "joined_on",
            "payout_policy",
            "account_manager",
        )
        error_messages = {"legal_id": {"unique": "This legal id already belongs to another partner."}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        status = self.fields.get("status")
        if status is not None:
            status.choices = [(s.value, s.label) for s in PARTNER_START_STATUSES]

    def clean_legal_id(self) -> str:
        legal_id = normalize_legal_id(self.cleaned_data["legal_id"])
        clash = (
            Partner.objects.filter(legal_id_key=matching_key(legal_id))
            .exclude(pk=self.instance.pk)
            .only("name")
            .first()
        )
        if clash is not None:
            raise ValidationError(
                "Legal id %(legal_id)s already belongs to %(name)s.",
                code="duplicate_legal_id",
                params={"legal_id": legal_id, "name": clash.name},
            )
        return legal_id

    def clean(self):
        cleaned = super().clean()
        parent = cleaned.get("parent")
        if parent is not None and self.instance.pk is not None and parent.pk == self.instance.pk:
            self.add_error("parent", "A partner cannot be its own parent distributor.")
        return cleaned


class AssignAccountManagerForm(forms.Form):
    """Whom to assign; removing the account manager is an explicit choice, never the default."""

    NOBODY = "nobody"

    account_manager = forms.ChoiceField(help_text="The manufacturer's key-account manager who follows these partners.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        managers = User.objects.filter(staff_role=StaffRole.ACCOUNT_MANAGER, is_active=True).order_by(
            "full_name", "email"
        )
        self._managers = {str(manager.pk): manager for manager in managers}
        self.fields["account_manager"].choices = [
            ("", "Choose an account manager…"),
            *((pk, str(manager)) for pk, manager in self._managers.items()),
            (self.NOBODY, "Nobody (remove the account manager)"),
        ]

    def clean_account_manager(self) -> User | None:
        value = self.cleaned_data["account_manager"]
        return None if value == self.NOBODY else self._managers[value]


class InviteForm(forms.Form):
    """Who to invite to a partner's team, and in which role. The owner role is the default."""

    email = forms.EmailField(label="E-mail")
    role = forms.ModelChoiceField(queryset=Role.objects.order_by("sort_order", "name"), empty_label=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields[
            "email"
        ].help_text = f"The person gets an e-mail with a link to join, valid for {settings.INVITATION_VALID_DAYS} days."
        self.fields["role"].initial = (
            Role.objects.filter(is_owner=True).order_by("sort_order", "name").values_list("pk", flat=True).first()
        )


# Users ----------------------------------------------------------------------------------------------


class _UserEmailMixin:
    """E-mail is the login: stored in lower case and unique whatever its case."""

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"].strip()).lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise ValidationError(
                "A user with the e-mail %(email)s already exists.", code="duplicate_email", params={"email": email}
            )
        return email

    def clean(self):
        cleaned = super().clean()
        is_staff = cleaned.get("is_staff", False)
        is_superuser = cleaned.get("is_superuser", self.instance.is_superuser)
        staff_role = cleaned.get("staff_role", self.instance.staff_role)
        if is_staff and not is_superuser and staff_role != StaffRole.PROGRAM_MANAGER:
            self.add_error("is_staff", "Only program managers may sign in to the back office.")
        return cleaned


class UserAddForm(_UserEmailMixin, auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "staff_role", "is_staff")


class UserChangeForm(_UserEmailMixin, auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
