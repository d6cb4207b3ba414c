import hashlib
from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from partners.constants import DEFAULT_ROLES, MemberStatus, PartnerKind, PartnerStatus, StaffRole
from partners.models import Invitation, Member, Partner, Region, Role, User

PASSWORD = "correct-horse-battery"


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


class ProgramManagerFactory(UserFactory):
    staff_role = StaffRole.PROGRAM_MANAGER
    is_staff = True
    is_superuser = True


class AccountManagerFactory(UserFactory):
    staff_role = StaffRole.ACCOUNT_MANAGER


class RegionFactory(DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"r{n}")
    name = factory.Sequence(lambda n: f"Region {n}")


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
