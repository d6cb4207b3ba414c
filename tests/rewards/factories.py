import factory
from factory.django import DjangoModelFactory

from rewards.constants import RewardKind
from rewards.models import Reward, RewardCategory, VoucherCode
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import lookup_factory

RewardCategoryFactory = lookup_factory(RewardCategory, "slug", name="Category {}", slug="category-{}")


class RewardFactory(DjangoModelFactory):
    class Meta:
        model = Reward

    program = factory.SubFactory(ProgramFactory)
    category = factory.SubFactory(RewardCategoryFactory)
    name = factory.Sequence(lambda n: f"Reward {n}")
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    kind = RewardKind.EXPERIENCE
    points_price = 100
    stock = None


class MerchandiseFactory(RewardFactory):
    kind = RewardKind.MERCHANDISE
    stock = 20


class CodeRewardFactory(RewardFactory):
    class Meta:
        skip_postgeneration_save = True

    kind = RewardKind.VOUCHER
    uses_codes = True

    @factory.post_generation
    def codes(obj, create, extracted, **kwargs):
        if create:
            VoucherCode.objects.bulk_create(
                [VoucherCode(reward=obj, code=f"{obj.sku}-CODE-{i:04d}") for i in range(extracted or 0)]
            )


ADDRESS = {"name": "Ana Kovač", "street": "Hauptstr. 5", "postcode": "10115", "city": "Berlin", "country": "Germany"}
