import base64
import hashlib
import secrets
from datetime import timedelta

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.utils import timezone
from factory.django import DjangoModelFactory

from partners import services
from partners.constants import DEFAULT_ROLES, MemberStatus, PartnerKind, PartnerStatus, StaffRole
from partners.models import Invitation, Member, Partner, Region, Role, User
from partners.security import must_use_totp, totp_code

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "blue-kettle-Orchard-42"  # what people type when they sign up or change their password


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()

    @factory.post_generation
    def totp(obj, create, extracted, **kwargs):
        """Staff have an authenticator app, as partners.security requires; `totp=False` makes one without."""
        if create and (must_use_totp(obj) if extracted is None else extracted):
            TOTPFactory(user=obj)


class ProgramManagerFactory(UserFactory):
    staff_role = StaffRole.PROGRAM_MANAGER
    is_staff = True
    is_superuser = True


class AccountManagerFactory(UserFactory):
    staff_role = StaffRole.ACCOUNT_MANAGER


class TOTPFactory(DjangoModelFactory):
    """An authenticator app (allauth.mfa) of `user`; totp_code_of(user) is the code it shows now."""

    class Meta:
        model = Authenticator

    user = factory.SubFactory(UserFactory)
    type = Authenticator.Type.TOTP
    data = factory.LazyFunction(lambda: {"secret": base64.b32encode(secrets.token_bytes(20)).decode()})


def totp_code_of(user: User) -> str:
    """The code `user`'s authenticator app shows now."""
    return totp_code(Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).data["secret"])


class VerifiedEmailFactory(DjangoModelFactory):
    """The verified, primary e-mail address allauth needs before it signs `user` in with a password."""

    class Meta:
        model = EmailAddress

    user = factory.SubFactory(UserFactory)
    email = factory.LazyAttribute(lambda o: o.user.email)
    verified = True
    primary = True


def lookup_factory(model, key: str, **numbered: str) -> type[DjangoModelFactory]:
    """A factory for a row of a small lookup table (regions, product lines, reward categories), got by its `key`
    when that row exists; each field of `numbered` is a template the sequence number fills in ("Region {}")."""
    meta = type("Meta", (), {"model": model, "django_get_or_create": (key,)})
    fields = {name: factory.Sequence(template.format) for name, template in numbered.items()}
    return type(DjangoModelFactory)(f"{model.__name__}Factory", (DjangoModelFactory,), {"Meta": meta, **fields})


RegionFactory = lookup_factory(Region, "code", code="r{}", name="Region {}")


def role(code: str) -> Role:
    """The roles a migration seeds (re-created here after a transactional test has flushed them)."""
    order, name, is_owner = next((i, n, o) for i, (c, n, o) in enumerate(DEFAULT_ROLES, 1) if c == code)
    return Role.objects.get_or_create(
        code=code, defaults={"name": name, "is_owner": is_owner, "sort_order": order * 10}
    )[0]


class PartnerFactory(DjangoModelFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"Partner {n} Ltd")
    legal_id = factory.Sequence(lambda n: f"VAT{n:08d}")
    kind = PartnerKind.DEALER
    region = factory.SubFactory(RegionFactory)
    status = PartnerStatus.ACTIVE
    joined_on = factory.LazyFunction(timezone.localdate)


class MemberFactory(DjangoModelFactory):
    class Meta:
        model = Member

    user = factory.SubFactory(UserFactory)
    partner = factory.SubFactory(PartnerFactory)
    role = factory.LazyFunction(lambda: role("sales"))
    status = MemberStatus.ACTIVE
    joined_at = factory.LazyFunction(timezone.now)


class OwnerFactory(MemberFactory):
    role = factory.LazyFunction(lambda: role("owner"))


class InvitationFactory(DjangoModelFactory):
    """An invitation whose raw token is `token` (the model keeps only its hash)."""

    class Meta:
        model = Invitation
        exclude = ("token",)

    token = factory.Sequence(lambda n: f"test-token-{n}")
    member = factory.SubFactory(MemberFactory, status=MemberStatus.INVITED, joined_at=None)
    token_hash = factory.LazyAttribute(lambda o: hashlib.sha256(o.token.encode()).hexdigest())
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))


class RoleFactory(DjangoModelFactory):
    """A role a program manager added in the admin (the six default roles come from a migration)."""

    class Meta:
        model = Role

    code = factory.Sequence(lambda n: f"role-{n}")
    name = factory.Sequence(lambda n: f"Role {n}")
    sort_order = factory.Sequence(lambda n: 200 + n)


def invitation_for_a_new_person(*, invited_by=None) -> Invitation:
    """An invitation of newbie@aqua.example, who has no account yet, to Aqua Dealer Ltd as services.invitation_send
    makes it: from the partner's owner, or from `invited_by` (staff)."""
    if invited_by is None:
        invited_by = OwnerFactory(partner__name="Aqua Dealer Ltd").user
        partner = invited_by.memberships.get().partner
    else:
        partner = PartnerFactory(name="Aqua Dealer Ltd")
    return services.invitation_send(
        partner=partner, email="newbie@aqua.example", role=role("engineer"), invited_by=invited_by
    )
