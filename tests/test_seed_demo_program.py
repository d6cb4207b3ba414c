"""`seed_demo` (analytics) adds the AquaPro Partner Club: points history through the ledger, rewards and orders.

The demo is seeded once for the module, in a transaction rolled back at the end; each test runs in a savepoint
inside it, so what a test changes is undone too.
"""

from contextlib import redirect_stdout
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from communications.campaigns import campaign_reach
from communications.constants import Channel, DeliveryStatus, FeedbackStatus, Kind
from communications.models import Campaign, CampaignRecipient, Delivery, Feedback, Response, Survey, Tip
from communications.surveys import survey_results
from loyalty.common.storage import PDF, sniff_file
from loyalty.constants import (
    AdjustmentStatus,
    ClaimFlag,
    ClaimStatus,
    EntryKind,
    ImportStatus,
    LeaverPolicy,
    RuleStatus,
)
from loyalty.demo.program import PROGRAM_NAME
from loyalty.demo.sales import MARKER_SKU
from loyalty.models import (
    IncentiveRule,
    PartnerTier,
    PointsAccount,
    PointsAdjustment,
    PointsEntry,
    Product,
    ProductLine,
    Program,
    SaleLine,
    SalesClaim,
    SalesImport,
    SalesSource,
    Tier,
    TierChange,
)
from loyalty.selectors.ledger import expiring_soon, ledger_problems, statement
from loyalty.services.tiers import tier_progress
from partners.demo import DEMO_MEMBERS, FLAGSHIP_NAME, PROGRAM_MANAGERS
from partners.models import Partner, User
from rewards.constants import OrderStatus, PaidBy, RewardKind
from rewards.models import CartItem, RedemptionOrder, Reward, RewardCategory, VoucherCode

pytestmark = pytest.mark.django_db

COUNTED = (
    Program,
    PointsAccount,
    PointsEntry,
    PointsAdjustment,
    RewardCategory,
    Reward,
    VoucherCode,
    RedemptionOrder,
    ProductLine,
    Product,
    Tier,
    PartnerTier,
    TierChange,
    IncentiveRule,
    SalesSource,
    SalesImport,
    SaleLine,
    SalesClaim,
)
COMMUNICATIONS = (Tip, Campaign, CampaignRecipient, Survey, Response, Feedback, Delivery)
DEMO_EMAILS = {role: email for _, _, email, role in DEMO_MEMBERS}


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in [*COUNTED, CartItem, *COMMUNICATIONS]}


def account_of(email: str) -> PointsAccount:
    return PointsAccount.objects.select_related("program").get(member__user__email=email, member__status="active")


@pytest.fixture(scope="module", autouse=True)
def media(tmp_path_factory):
    """Claims' invoices and the sell-out file go to a temporary directory, not the project's."""
    root = tmp_path_factory.mktemp("demo-media")
    with override_settings(MEDIA_ROOT=root / "media", PRIVATE_MEDIA_ROOT=root / "private-media"):
        yield root


PRINTED = StringIO()  # what the seeding printed besides its own output (e-mails and SMS, if it sent them there)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, media):
    """The output of one `seed_demo` on an empty database, with messages configured to print, as in `make run`;
    rolled back when the module is done."""
    console = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        with override_settings(MAILERS=console, SMS_URL="console://"), redirect_stdout(PRINTED):
            call_command("seed_demo", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


# Runs first, on the empty database (the module's seeding is set up by the first test that asks for `demo`).
def test_a_dry_run_writes_nothing_and_says_what_the_program_would_have():
    before = counts()
    out = StringIO()

    call_command("seed_demo", "--dry-run", stdout=out)

    assert counts() == before
    assert f"Demo program, dry run: would create {PROGRAM_NAME} with about 1 program" in out.getvalue()
    assert "31 rewards" in out.getvalue()
    assert "Demo communications, dry run: would create about 8 tips, 2 campaigns" in out.getvalue()
    assert out.getvalue().count("Nothing was written.") == 3


def test_the_output_says_what_the_program_was_created_with(demo):
    assert f"Demo program: created {PROGRAM_NAME} with 1 program, " in demo
    assert "points entries" in demo
    assert "31 rewards" in demo


def test_the_program_is_the_aquapro_partner_club(demo):
    program = Program.objects.get()

    assert (program.name, program.currency_name, program.money_currency) == (PROGRAM_NAME, "AquaPoints", "EUR")
    assert str(program.point_value) == "0.0100"
    assert (program.expiry_months, program.leaver_policy, program.member_share_percent) == (
        24,
        LeaverPolicy.TRANSFER,
        70,
    )
    assert (program.adjustment_approval_threshold, program.order_approval_threshold) == (5_000, 20_000)
    assert program.is_active


def test_the_demo_sales_rep_has_points_a_statement_of_several_pages_and_points_expiring_soon(demo):
    account = account_of(DEMO_EMAILS["sales"])

    assert account.available > 0
    assert account.pending > 0
    assert statement(account=account).count() > 25
    assert expiring_soon(account=account).points > 0


@pytest.mark.parametrize("role", ["owner", "engineer", "foreman"])
def test_the_other_demo_logins_have_the_same(demo, role):
    account = account_of(DEMO_EMAILS[role])

    assert account.available > 0
    assert account.pending > 0
    assert statement(account=account).count() > 40
    assert expiring_soon(account=account).points > 0
    assert account.expired > 0


def test_a_statement_reads_in_date_order_over_two_years(demo):
    entries = list(statement(account=account_of(DEMO_EMAILS["sales"])))
    dates = [entry.created_at for entry in entries]  # newest first, by id

    assert dates == sorted(dates, reverse=True)
    assert dates[-1] < timezone.now() - timedelta(days=24 * 30)
    assert len({(d.year, d.month) for d in dates}) >= 20
    assert all(d <= timezone.now() for d in dates)


def test_explanations_show_the_arithmetic(demo):
    entries = PointsEntry.objects.filter(source_type="sale", account__member__user__email=DEMO_EMAILS["sales"])
    sale = entries.first()

    assert " × " in sale.explanation and " pts = " in sale.explanation and "your 70 % share" in sale.explanation
    assert sale.details["quantity"] * sale.details["points_per_unit"] == sale.details["total"]
    assert PointsEntry.objects.filter(explanation__startswith="Training: ").exists()
    assert PointsEntry.objects.filter(explanation="Welcome bonus").exists()
    assert PointsEntry.objects.filter(explanation__startswith="Returned goods: ", kind=EntryKind.REVERSE).exists()


def test_every_kind_of_entry_happened_and_the_books_balance(demo):
    assert set(PointsEntry.objects.values_list("kind", flat=True)) == set(EntryKind.values)
    assert ledger_problems() == []


def test_company_accounts_get_their_share_pooled_points_and_leavers_points(demo):
    companies = PointsEntry.objects.filter(account__partner__isnull=False)

    assert companies.filter(source_type="company_share").exists()
    assert companies.filter(explanation__contains="pooled to the company account").exists()
    assert companies.filter(kind=EntryKind.TRANSFER, source_type="pooling").exists()
    assert companies.filter(kind=EntryKind.TRANSFER, source_type="leaver").exists()


def test_adjustments_are_posted_waiting_for_a_second_program_manager_or_rejected(demo):
    first_manager = User.objects.get(email=PROGRAM_MANAGERS[0][1])

    waiting = PointsAdjustment.objects.get(status=AdjustmentStatus.PENDING_APPROVAL)
    assert waiting.requested_by == first_manager
    assert waiting.points > waiting.account.program.adjustment_approval_threshold
    assert waiting.entry is None
    assert PointsAdjustment.objects.filter(status=AdjustmentStatus.POSTED).exclude(entry=None).count() == 2
    assert PointsAdjustment.objects.filter(status=AdjustmentStatus.REJECTED).exclude(rejection_reason="").exists()


def test_the_catalogue_has_every_kind_of_reward_with_restrictions_stock_and_codes(demo):
    rewards = Reward.objects.all()

    assert RewardCategory.objects.count() == 8
    assert 28 <= rewards.count() <= 32
    assert set(rewards.values_list("kind", flat=True)) == set(RewardKind.values)
    assert rewards.filter(is_active=True, uses_codes=False, stock=0).exists()  # sold out
    assert any(0 < reward.codes.filter(order_line=None).count() <= 2 for reward in rewards.filter(uses_codes=True))
    assert rewards.exclude(allowed_roles=None).exists()
    assert rewards.exclude(allowed_regions=None).exists()
    assert rewards.exclude(allowed_partner_kinds=[]).exists()
    assert rewards.exclude(limit_per_member=None).exists()
    assert rewards.exclude(available_until=None).exists()
    assert rewards.filter(paid_by=PaidBy.COMPANY, kind=RewardKind.CO_MARKETING).exists()


def test_orders_are_in_every_status_and_spent_points_through_the_ledger(demo):
    orders = RedemptionOrder.objects.select_related("spend_entry", "refund_entry")

    assert set(orders.values_list("status", flat=True)) == set(OrderStatus.values)
    for order in orders:
        assert order.checkout_key.startswith("demo:order:")
        assert order.spend_entry.available_delta == -order.total_points
        refunded = order.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED)
        assert (order.refund_entry is not None) == refunded
        assert order.decision_reason or not refunded
    assert orders.filter(status=OrderStatus.FULFILLED).exclude(tracking_number="").exists()
    assert VoucherCode.objects.exclude(order_line=None).exists()


def test_the_demo_sales_rep_and_owner_have_orders_and_the_owner_one_from_the_company_account(demo):
    mine = RedemptionOrder.objects.filter(member__user__email=DEMO_EMAILS["sales"])
    company = RedemptionOrder.objects.filter(member__user__email=DEMO_EMAILS["owner"], paid_by=PaidBy.COMPANY)

    assert mine.count() >= 5
    assert {OrderStatus.APPROVED, OrderStatus.FULFILLED, OrderStatus.DELIVERED} <= set(
        mine.values_list("status", flat=True)
    )
    assert company.filter(status=OrderStatus.PLACED).exists()
    assert CartItem.objects.filter(member__user__email=DEMO_EMAILS["sales"]).count() == 2


@pytest.mark.parametrize("name", ["home", "points_statement", "catalogue", "cart", "order_list"])
def test_the_demo_sales_reps_pages_show_her_balance(demo, name):
    client = Client()
    client.force_login(User.objects.get(email=DEMO_EMAILS["sales"]))

    response = client.get(reverse(name))

    assert response.status_code == 200
    assert f"{account_of(DEMO_EMAILS['sales']).available:,}" in response.content.decode()  # in the navigation


def test_a_second_run_creates_nothing_in_four_queries(demo, django_assert_max_num_queries):
    before = counts()
    out = StringIO()

    # Two for the channel and the program, one for the program's id, one for the communications.
    with django_assert_max_num_queries(4):
        call_command("seed_demo", stdout=out)

    assert counts() == before
    assert f"Demo program: {PROGRAM_NAME} already present, nothing to do." in out.getvalue()


# The sales side (issue 4): catalogue, tiers, rules, sell-out and claims -------------------------------------------


def test_the_catalogue_has_forty_products_in_five_lines_some_inactive_and_a_new_line(demo):
    assert ProductLine.objects.count() == 5
    assert Product.objects.count() == 40
    assert Product.objects.filter(sku=MARKER_SKU).exists()
    assert 2 <= Product.objects.filter(is_active=False).count() <= 4
    assert Product.objects.exclude(unusual_quantity=None).count() >= 5
    assert (
        Product.objects.filter(line__code="uv-disinfection", launch_date__year__gte=timezone.now().year - 1).count()
        == 6
    )
    assert not Product.objects.filter(launch_date=None).exists()


def test_three_tiers_on_sales_and_every_active_partner_has_one(demo):
    program = Program.objects.get()
    tiers = list(Tier.objects.filter(program=program).order_by("rank"))

    assert [(t.name, str(t.multiplier)) for t in tiers] == [("Bronze", "1.00"), ("Silver", "1.10"), ("Gold", "1.25")]
    assert tiers[0].threshold == 0 and all(t.service_level for t in tiers)
    assert (program.tier_metric, program.tier_window_days) == ("sales_amount", 365)
    assert (
        PartnerTier.objects.filter(program=program).count()
        == Partner.objects.filter(status__in=["active", "suspended"]).count()
    )
    assert set(PartnerTier.objects.values_list("tier__name", flat=True)) == {"Bronze", "Silver", "Gold"}


def test_the_demo_owners_partner_is_silver_and_short_of_gold(demo):
    program = Program.objects.get()
    flagship = Partner.objects.get(name=FLAGSHIP_NAME)

    progress = tier_progress(program=program, partner=flagship)

    assert progress.current.name == "Silver"
    assert progress.next.name == "Gold"
    assert 0 < progress.missing < 20_000
    assert "to reach Gold" in progress.summary
    client = Client()
    client.force_login(User.objects.get(email=DEMO_EMAILS["owner"]))
    assert "to reach Gold" in client.get(reverse("home")).content.decode()


def test_rules_are_published_role_based_versioned_with_a_draft(demo):
    rules = IncentiveRule.objects.all()
    published = rules.filter(status=RuleStatus.PUBLISHED, effective_until=None)

    assert 6 <= published.count() <= 8
    assert rules.filter(status=RuleStatus.DRAFT).count() == 1
    assert rules.filter(code="softener-units").count() == 2  # a second version
    assert published.exclude(roles=None).exists()
    assert published.exclude(shares=[]).exists()
    assert published.exclude(cap_points=None).exists()
    assert published.exclude(budget_points=None).exists()
    assert published.exclude(valid_from=None).exclude(valid_until=None).exists()
    assert published.exclude(partner_kinds=[]).exists()
    assert PointsEntry.objects.filter(explanation__contains="double points in March v1: ").exists()
    assert PointsEntry.objects.filter(explanation__contains="limited to 400 by the rule's cap").exists()
    assert IncentiveRule.objects.get(code="uv-launch").budget_used > 0


def test_claims_are_in_every_state_with_documents_and_one_confirmed_by_sell_out(demo):
    claims = SalesClaim.objects.all()

    assert set(claims.values_list("status", flat=True)) == set(ClaimStatus.values)
    assert claims.filter(status=ClaimStatus.SUBMITTED).exclude(flags=[]).exists()
    flags = {flag for row in claims.values_list("flags", flat=True) for flag in row}
    assert flags == set(ClaimFlag.values)
    assert claims.filter(status=ClaimStatus.APPROVED, decided_by=None).exists()  # automatically
    assert claims.filter(status=ClaimStatus.APPROVED).exclude(decided_by=None).exists()
    assert claims.filter(status=ClaimStatus.REJECTED).exclude(rejection_reason="").exclude(rejection_text="").exists()
    assert claims.filter(submissions__gte=2).exists()
    assert claims.filter(status=ClaimStatus.APPROVED).exclude(matched_line=None).exists()
    claim = claims.first()
    with claim.document.open("rb") as document:
        assert sniff_file(document) is PDF
    assert {c.member.user.email for c in claims.select_related("member__user")} >= set(DEMO_EMAILS.values())


def test_the_sell_out_import_finished_with_a_few_bad_lines_and_returns(demo):
    sales_import = SalesImport.objects.get()

    assert sales_import.status == ImportStatus.DONE
    assert sales_import.source.column_mapping
    assert 200 <= sales_import.new_lines <= 500
    assert 2 <= sales_import.error_rows <= 5
    assert sales_import.points_posted > 0
    assert SaleLine.objects.filter(quantity__lt=0).exclude(returns_line=None).count() >= 2
    dates = SaleLine.objects.values_list("invoice_date", flat=True)
    assert (max(dates) - min(dates)).days > 300


def test_the_demo_sales_reps_statement_explains_rules_and_versions(demo):
    entries = statement(account=account_of(DEMO_EMAILS["sales"]))
    explanations = [entry.explanation for entry in entries]

    assert any(" v1: " in text for text in explanations)
    assert any(" v2: " in text for text in explanations)
    assert any("Sales rep share 60%" in text for text in explanations)


def test_the_books_balance_after_the_sales_side(demo):
    assert PointsEntry.objects.filter(source_type="claim").exists()
    assert PointsEntry.objects.filter(source_type="sales_import").exists()
    assert ledger_problems() == []


# Communications (issue 11) -----------------------------------------------------------------------------------------


def test_the_seeding_prints_no_messages_but_sends_them(demo):
    assert PRINTED.getvalue() == ""
    assert Delivery.objects.filter(channel=Channel.EMAIL, status=DeliveryStatus.SENT).exists()
    assert "Demo communications: created 8 tips, 2 campaigns, " in demo


def test_there_is_a_tip_pool_for_roles_product_lines_and_languages(demo):
    tips = Tip.objects.filter(active=True)

    assert tips.count() == 8
    assert tips.filter(role__isnull=False).exists() and tips.filter(product_line="softeners").exists()
    assert set(tips.values_list("language", flat=True)) == {"", "de"}


def test_two_past_campaigns_measure_reach_against_a_control_group_that_acted(demo):
    campaigns = list(Campaign.objects.order_by("sent_at"))

    assert len(campaigns) == 2
    assert all(campaign.sent_at < timezone.now() - timedelta(days=14) for campaign in campaigns)
    reaches = [campaign_reach(campaign) for campaign in campaigns]
    for reach in reaches:
        assert reach.total.members > 0 and reach.total.control_members > 0
        assert {row.channel for row in reach.channels} == {Channel.EMAIL, Channel.INBOX, Channel.SMS}
        assert sum(row.opened for row in reach.channels) > 0
        assert sum(row.clicked for row in reach.channels) > 0
    assert any(reach.total.control_acted > 0 and reach.total.effect > 0 for reach in reaches)


def test_campaign_deliveries_were_sent_when_the_campaign_was(demo):
    campaign = Campaign.objects.order_by("sent_at").first()
    deliveries = Delivery.objects.filter(kind=Kind.CAMPAIGN, source_key=f"campaign:{campaign.pk}")

    assert set(deliveries.values_list("queued_at", flat=True)) == {campaign.sent_at}
    assert not deliveries.filter(status=DeliveryStatus.QUEUED).exists()
    assert not deliveries.filter(member_id__in=campaign.recipients.filter(in_control_group=True).values("member_id"))


def test_the_survey_has_thirty_answers_and_an_nps_and_the_demo_logins_can_still_answer(demo):
    survey = Survey.objects.get()
    nps_result = survey_results(survey=survey)[0]

    assert survey.responses.count() == 30
    assert nps_result.groups[0].answered == 30
    assert nps_result.groups[0].nps is not None
    assert not survey.responses.filter(member__user__email__in=DEMO_EMAILS.values()).exists()
    paid = PointsEntry.objects.filter(idempotency_key__startswith=f"survey:{survey.pk}:")  # by the demo's survey rule
    assert set(paid.values_list("available_delta", flat=True)) == {survey.points_for_answer}


def test_feedback_is_answered_and_the_answer_reached_the_member(demo):
    answered = Feedback.objects.filter(status=FeedbackStatus.ANSWERED)

    assert Feedback.objects.count() == 3
    assert answered.count() == 2
    assert Delivery.objects.filter(kind=Kind.FEEDBACK_ANSWERED, member__in=answered.values("member")).exists()


@pytest.mark.parametrize("role", ["owner", "sales", "engineer", "foreman"])
def test_every_demo_member_login_has_inbox_messages(demo, role):
    inbox = Delivery.objects.filter(channel=Channel.INBOX, member__user__email=DEMO_EMAILS[role])

    assert inbox.count() >= 2
    assert inbox.exclude(kind=Kind.CAMPAIGN).exists()
