"""`seed_demo` makes referrals, equipment returns, co-marketing funds and prize draws real (issue #13), through their
services, after the rest of the demo (loyalty.demo.activities).

The demo is seeded once for the package (tests/demo/conftest.py), in a transaction rolled back at the end.
"""

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from loyalty.common.storage import PDF, PNG, sniff_file
from loyalty.constants import DrawStatus, EntrySource, EntrySourceKind, MdfStatus, ReferralStatus, ReturnStatus
from loyalty.demo import activities
from loyalty.models import (
    CollectionPoint,
    DrawEntry,
    DrawWinner,
    EquipmentReturn,
    IncentiveRule,
    MarketingFund,
    MarketingRequest,
    PointsEntry,
    PrizeDraw,
    Program,
    Referral,
    ReturnType,
)
from loyalty.selectors.draws import verification
from loyalty.selectors.ledger import ledger_problems, statement
from partners.demo import DEMO_MEMBERS, FLAGSHIP_NAME
from partners.models import Member, Region, User

pytestmark = pytest.mark.django_db

DEMO_EMAILS = {role: email for _, _, email, role in DEMO_MEMBERS}


def member_of(role: str) -> Member:
    return Member.objects.select_related("user", "partner").get(user__email=DEMO_EMAILS[role], status="active")


def page(role: str, path: str):
    client = Client()
    client.force_login(User.objects.get(email=DEMO_EMAILS[role]))
    return client.get(path)


# Referrals ---------------------------------------------------------------------------------------------------------


def test_the_output_counts_what_the_activities_created(demo):
    assert "12 referrals, 4 return types, 2 collection points, 14 equipment returns" in demo
    assert "9 co-marketing requests, 2 prize draws" in demo


def test_the_rules_for_referrals_returns_and_co_marketing_are_published(demo):
    rules = {rule.code: rule for rule in IncentiveRule.objects.filter(code__in=["referral-converted",
                                                                                "equipment-returned",
                                                                                "co-marketing-approved"])}  # fmt: skip

    assert (rules["referral-converted"].formula, rules["referral-converted"].value) == ("fixed", Decimal("500"))
    assert (rules["equipment-returned"].value, rules["equipment-returned"].cap_points) == (Decimal("100"), 10_000)
    assert rules["co-marketing-approved"].value == Decimal("100")
    assert {rule.status for rule in rules.values()} == {"published"}


def test_referrals_are_in_every_status_with_reasons_and_a_duplicate_of_another_partners_prospect(demo):
    referrals = Referral.objects.select_related("duplicate_of")

    assert set(referrals.values_list("status", flat=True)) == set(ReferralStatus.values)
    assert not referrals.filter(status=ReferralStatus.REJECTED, reason="").exists()
    duplicate = referrals.exclude(duplicate_of=None).get()
    assert duplicate.member == member_of("foreman")
    assert duplicate.duplicate_of.partner_id != duplicate.partner_id
    assert duplicate.email_key == duplicate.duplicate_of.email_key


def test_each_converted_referral_paid_its_referrer_500_points_once(demo):
    converted = Referral.objects.filter(status=ReferralStatus.CONVERTED)

    assert converted.count() == 3
    for referral in converted:
        paid = PointsEntry.objects.filter(source_type=EntrySource.REFERRAL, source_id=f"referral:{referral.pk}")
        assert list(paid.values_list("account__member", "available_delta")) == [(referral.member_id, 500)]


def test_every_demo_member_login_has_referrals_in_different_states(demo):
    for role in ("sales", "engineer", "foreman", "owner"):
        assert Referral.objects.filter(member=member_of(role)).exists()
    sales_rep = Referral.objects.filter(member=member_of("sales"))
    assert set(sales_rep.values_list("status", flat=True)) == {ReferralStatus.CONVERTED, ReferralStatus.QUALIFIED}


# Returns -----------------------------------------------------------------------------------------------------------


def test_return_types_with_and_without_serials_and_a_collection_point_run_by_the_flagship(demo):
    types = dict(ReturnType.objects.values_list("name", "requires_serials"))

    assert types["Used softener resin tank"] is True and types["Filter cartridges"] is False
    assert CollectionPoint.objects.filter(partner=None).count() == 1
    assert CollectionPoint.objects.get(partner__isnull=False).partner.name == FLAGSHIP_NAME


def test_returns_are_in_every_status_with_serials_and_reasons(demo):
    found = EquipmentReturn.objects.select_related("return_type")

    assert set(found.values_list("status", flat=True)) == set(ReturnStatus.values)
    assert not found.filter(status=ReturnStatus.REJECTED, reason="").exists()
    for equipment_return in found.filter(return_type__requires_serials=True):
        assert equipment_return.serials.count() == equipment_return.quantity


def test_the_engineers_second_return_this_month_hit_the_monthly_cap(demo):
    engineer = member_of("engineer")
    capped = EquipmentReturn.objects.get(member=engineer, quantity=45)
    month = capped.returned_on.replace(day=1)
    this_month = EquipmentReturn.objects.filter(member=engineer, returned_on__gte=month, status=ReturnStatus.CONFIRMED)
    paid = PointsEntry.objects.filter(
        source_type=EntrySource.RETURN, source_id__in=[f"return:{pk}" for pk in this_month.values_list("pk", flat=True)]
    )

    assert capped.status == ReturnStatus.CONFIRMED
    assert capped.reason == "Paid up to your monthly cap: 3,000 of 4,500 points."
    assert paid.aggregate(total=Sum("available_delta"))["total"] == 10_000


def test_the_flagships_staff_have_returns_to_confirm_at_their_desk(demo):
    response = page("owner", reverse("return_to_confirm"))

    assert response.status_code == 200
    assert "Used softener resin tank" in response.content.decode()  # the foreman's, at the desk


# Co-marketing ------------------------------------------------------------------------------------------------------


def test_co_marketing_requests_are_in_every_status(demo):
    assert set(MarketingRequest.objects.values_list("status", flat=True)) == set(MdfStatus.values)


def test_reimbursements_follow_the_brand_rule_and_paid_the_company_account_points(demo):
    program = Program.objects.get()
    reimbursed = MarketingRequest.objects.filter(status=MdfStatus.REIMBURSED, partner__name=FLAGSHIP_NAME)

    assert program.mdf_share_by_brands is True
    assert sorted(reimbursed.values_list("other_brands", "actual_cost", "reimbursed_amount")) == [
        (0, Decimal("2400.00"), Decimal("1200.00")),
        (2, Decimal("1800.00"), Decimal("300.00")),
    ]
    for request in reimbursed:
        entry = PointsEntry.objects.get(source_type=EntrySource.CO_MARKETING, source_id=f"mdf:{request.pk}")
        assert entry.account.partner_id == request.partner_id
        # 100 points per euro: the program's point is worth one cent, so the points are worth what was reimbursed.
        assert entry.available_delta == request.reimbursed_points == int(request.reimbursed_amount) * 100


def test_claims_carry_a_png_advert_and_a_pdf_invoice(demo):
    claimed = MarketingRequest.objects.filter(status=MdfStatus.CLAIMED).get()

    kinds = {}
    for proof in claimed.proofs.all():
        with proof.file.open("rb") as handle:
            kinds[proof.kind] = sniff_file(handle)
    assert kinds == {"advert": PNG, "invoice": PDF}


def test_funds_are_set_by_tier_and_by_hand_and_the_flagships_shows_what_is_left(demo):
    fund = MarketingFund.objects.get(partner__name=FLAGSHIP_NAME)

    assert set(MarketingFund.objects.values_list("source", flat=True)) == {"tier", "manual"}
    assert (fund.amount, fund.committed, fund.reimbursed) == (
        Decimal("5000.00"),
        Decimal("1150.00"),
        Decimal("1500.00"),
    )


# Prize draws -------------------------------------------------------------------------------------------------------


def test_one_draw_is_open_and_one_was_drawn_last_month_with_winners_that_verify(demo):
    drawn = PrizeDraw.objects.get(status=DrawStatus.DRAWN)
    check = verification(draw=drawn)

    assert PrizeDraw.objects.filter(status=DrawStatus.OPEN, closes_at__gt=timezone.now()).count() == 1
    assert drawn.drawn_at < timezone.now() - timezone.timedelta(days=20)
    assert DrawWinner.objects.filter(draw=drawn).count() == 3
    assert (check.seed_matches, check.entries_match, check.winners_match) == (True, True, True)


def test_the_demo_logins_hold_bought_and_free_entries_in_the_open_draw(demo):
    draw = PrizeDraw.objects.get(status=DrawStatus.OPEN)
    held = {
        role: set(DrawEntry.objects.filter(draw=draw, member=member_of(role)).values_list("source", "count"))
        for role in ("sales", "engineer", "foreman", "owner")
    }

    assert Region.objects.get(partners__name=FLAGSHIP_NAME).free_draw_entry is True
    assert held == {
        "sales": {(EntrySourceKind.BOUGHT, 3), (EntrySourceKind.FREE, 1)},
        "engineer": {(EntrySourceKind.BOUGHT, 2), (EntrySourceKind.FREE, 1)},
        "foreman": {(EntrySourceKind.FREE, 1)},
        "owner": {(EntrySourceKind.BOUGHT, 1), (EntrySourceKind.FREE, 1)},
    }
    spent = PointsEntry.objects.filter(source_type=EntrySource.DRAW, account__member=member_of("sales"))
    assert list(spent.values_list("available_delta", flat=True)) == [-3 * draw.entry_price_points]


# Pages and books ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["sales", "engineer", "foreman", "owner"])
def test_the_demo_logins_pages_show_their_referrals_returns_and_draws(demo, role):
    member = member_of(role)
    referral = Referral.objects.filter(member=member).first()
    draw = PrizeDraw.objects.get(status=DrawStatus.DRAWN)

    pages = {
        "referrals": page(role, reverse("referral_list")),
        "returns": page(role, reverse("return_list")),
        "draws": page(role, reverse("draw_list")),
        "verify": page(role, reverse("draw_verify", args=[draw.pk])),
    }

    assert {name: response.status_code for name, response in pages.items()} == dict.fromkeys(pages, 200)
    assert referral.company_name.replace("'", "&#x27;") in pages["referrals"].content.decode()
    assert "Filter cartridges" in pages["returns"].content.decode() or role == "foreman"
    assert activities.OPEN_DRAW["name"] in pages["draws"].content.decode()
    assert activities.PAST_DRAW["name"] in pages["draws"].content.decode()
    assert pages["verify"].context["check"].winners_match is True


def test_the_demo_owners_co_marketing_page_shows_the_fund_and_the_requests(demo):
    response = page("owner", reverse("mdf_overview"))

    assert response.status_code == 200
    text = response.content.decode()
    for title in ("Spring home show stand, Harrogate", "Local radio advert: AquaSoft Smart", "Branded van wraps"):
        assert title in text


def test_the_books_balance_and_the_demo_statements_read_in_date_order(demo):
    assert ledger_problems() == []
    for role in ("sales", "engineer", "foreman", "owner"):
        dates = [entry.created_at for entry in statement(account=member_of(role).points_accounts.get())]
        assert dates == sorted(dates, reverse=True)
