"""`seed_demo` (analytics) adds the AquaPro Partner Club: points history through the ledger, rewards and orders.

The demo is seeded once for the package (tests/demo/conftest.py), in a transaction rolled back at the end; each test
runs in a savepoint inside it, so what a test changes is undone too. The dry run is tests/test_seed_demo_dry_run.py's.
"""

from datetime import datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import CharField, Count, F, Q, Sum, Value
from django.db.models.functions import Concat
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics.models import MembersDay, MessagesDay, PointsDay, SalesDay
from communications.campaigns import campaign_reach
from communications.constants import Channel, DeliveryStatus, FeedbackStatus, Kind, SurveyStatus
from communications.demo import SURVEY_TITLE
from communications.models import Campaign, CampaignRecipient, Delivery, Feedback, Response, Survey, Tip
from communications.surveys import survey_results
from loyalty.common.storage import PDF, sniff_file
from loyalty.constants import (
    AdjustmentStatus,
    AttemptStatus,
    ChallengeLevel,
    ClaimFlag,
    ClaimStatus,
    EntryKind,
    EntrySource,
    GoalMetric,
    ImportStatus,
    LeaverPolicy,
    QuestionKind,
    RuleEvent,
    RuleStatus,
)
from loyalty.demo.program import PROGRAM_NAME, SURVEY
from loyalty.demo.sales import KEY_ACCOUNT_RULE, MARKER_SKU
from loyalty.engine.facts import member_event
from loyalty.models import (
    Certificate,
    Challenge,
    ChallengeEntry,
    ClubMembership,
    Course,
    IncentiveRule,
    Module,
    PartnerTier,
    PeriodStanding,
    PointsAccount,
    PointsAdjustment,
    PointsEntry,
    Product,
    ProductLine,
    Program,
    QuizAttempt,
    QuizQuestion,
    SaleLine,
    SalesClaim,
    SalesImport,
    SalesSource,
    Tier,
    TierChange,
)
from loyalty.selectors.leaderboards import board
from loyalty.selectors.ledger import expiring_soon, ledger_problems, statement
from loyalty.services.challenges import describe_goal
from loyalty.services.earning import post_event
from loyalty.services.standings import standings_period
from loyalty.services.tiers import tier_progress
from partners.demo import DEMO_MEMBERS, FLAGSHIP_NAME, PROGRAM_MANAGERS
from partners.models import Member, Partner, User
from rewards.constants import LIVE_STATUSES, OrderStatus, PaidBy, RewardKind
from rewards.demo import PAST_EVENT
from rewards.models import CartItem, RedemptionLine, RedemptionOrder, Reward, RewardCategory, VoucherCode
from rewards.selectors import catalogue

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


def test_the_output_says_what_the_program_was_created_with(demo):
    assert f"Demo program: created {PROGRAM_NAME} with 1 program, " in demo
    assert "points entries" in demo
    assert "35 rewards" in demo


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
    assert PointsEntry.objects.filter(explanation__startswith="Training passed v1, module “").exists()
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
    assert 33 <= rewards.count() <= 36
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


def test_a_second_run_creates_nothing_in_five_queries(demo, django_assert_max_num_queries):
    before = counts()
    out = StringIO()

    # Two for the channel and the program, one for the program's id, one for the demo ERP, one for the communications.
    with django_assert_max_num_queries(5):
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


def test_the_roll_ups_of_the_history_are_summed_and_equal_the_ledger(demo):
    earned = PointsEntry.objects.filter(kind=EntryKind.EARN).aggregate(
        points=Sum(F("available_delta") + F("pending_delta"))
    )["points"]

    assert PointsDay.objects.aggregate(issued=Sum("issued"))["issued"] == earned
    assert SalesDay.objects.exists() and MembersDay.objects.exists() and MessagesDay.objects.exists()


def test_gold_can_be_joined_for_a_fee_and_one_partner_paid_a_year_from_its_company_account(demo):
    program = Program.objects.get()
    gold = Tier.objects.get(program=program, name="Gold")
    membership = ClubMembership.objects.get()

    assert gold.join_fee_points > 0
    assert (membership.tier, membership.fee_points) == (gold, gold.join_fee_points)
    assert membership.entry.available_delta == -gold.join_fee_points
    assert membership.entry.account.partner == membership.partner
    assert PartnerTier.objects.get(program=program, partner=membership.partner).tier == gold
    assert membership.partner.name != FLAGSHIP_NAME


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

    assert 7 <= published.filter(event=RuleEvent.SALE_LINE).count() <= 9
    assert set(published.exclude(event=RuleEvent.SALE_LINE).values_list("event", flat=True)) == {
        RuleEvent.SURVEY_ANSWERED,
        RuleEvent.EVENT_ATTENDED,  # issue #13: seats at dated events (rewards.demo)
        RuleEvent.TRAINING_PASSED,
        RuleEvent.CHALLENGE_COMPLETED,
        RuleEvent.REFERRAL_CONVERTED,  # issue #13: published by loyalty.demo.activities
        RuleEvent.EQUIPMENT_RETURNED,
        RuleEvent.CO_MARKETING_APPROVED,
    }
    assert published.exclude(requires_certification=None).exists()
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


def test_the_seeding_prints_no_messages_but_sends_them(seeded, demo):
    assert seeded.printed == ""
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
    survey = Survey.objects.get(title=SURVEY_TITLE)
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


# Learning and competing (issue 12) ---------------------------------------------------------------------------------


def test_training_is_courses_per_product_line_with_modules_of_real_questions(demo):
    courses = Course.objects.annotate(modules_count=Count("modules"))
    questions = QuizQuestion.objects.annotate(right=Count("choices", filter=Q(choices__is_correct=True)))

    assert set(courses.exclude(product_line=None).values_list("product_line__code", flat=True)) == set(
        ProductLine.objects.values_list("code", flat=True)
    )
    assert all(1 <= course.modules_count <= 3 for course in courses)
    assert set(courses.exclude(certification_months=None).values_list("certification_months", flat=True)) == {12, 24}
    assert courses.exclude(roles=None).exists()
    assert all(4 <= module.questions.count() <= 6 for module in Module.objects.all())
    assert {(q.kind, q.right > 1) for q in questions} == {(QuestionKind.SINGLE, False), (QuestionKind.MULTIPLE, True)}
    assert not questions.filter(explanation="").exists()


def test_every_training_entry_is_a_real_pass_paid_once_under_the_engines_key(demo):
    entries = PointsEntry.objects.filter(source_type=EntrySource.TRAINING)
    passes = QuizAttempt.objects.filter(status=AttemptStatus.PASSED).select_related(
        "member__partner", "member__role", "module"
    )

    assert entries.count() == passes.count() > 50
    assert {e.source_id for e in entries} == {f"training:{a.module_id}:{a.member_id}" for a in passes}
    assert QuizAttempt.objects.filter(status=AttemptStatus.FAILED, percent__lt=80).exists()
    assert all(a.percent >= 80 and a.submitted_at <= a.deadline for a in passes)
    attempt = passes.order_by("-submitted_at").first()
    program = Program.objects.get()
    event = member_event(
        kind=RuleEvent.TRAINING_PASSED, program=program, source_key=f"training:{attempt.module_id}:{attempt.member_id}",
        member=attempt.member, occurred_on=timezone.localdate(attempt.submitted_at), quantity=attempt.percent,
        unit="% score", subject=f"module “{attempt.module.title}”",
    )  # fmt: skip
    with transaction.atomic():
        again = post_event(program=program, event=event, source_type=EntrySource.TRAINING)  # passing again
        assert [e.pk for e in again] == list(entries.filter(source_id=event.source_key).values_list("pk", flat=True))
        assert PointsEntry.objects.filter(source_type=EntrySource.TRAINING).count() == entries.count()
        transaction.set_rollback(True)


def test_certificates_of_passed_courses_are_valid_expiring_within_30_days_or_expired(demo):
    today = timezone.localdate()
    certificates = Certificate.objects.select_related("course")

    assert certificates.filter(expires_on__lte=today).exists()
    assert certificates.filter(expires_on__gt=today, expires_on__lte=today + timedelta(days=30)).exists()
    assert certificates.filter(expires_on__gt=today + timedelta(days=30)).exists()
    for certificate in certificates:
        passed = QuizAttempt.objects.filter(
            member=certificate.member_id, module__course=certificate.course, status=AttemptStatus.PASSED
        )
        assert passed.count() == certificate.course.modules.count()
        assert certificate.product_line_id == certificate.course.product_line_id
    sales_rep = certificates.get(member__user__email=DEMO_EMAILS["sales"], product_line__code="softeners")
    assert sales_rep.expires_on > today  # so her softener sales earn the certified bonus


def test_the_challenge_that_ended_is_settled_with_ranks_completions_and_prizes(demo):
    finished = Challenge.objects.get(results_at__isnull=False)
    entries = list(ChallengeEntry.objects.filter(challenge=finished).order_by("final_rank"))
    paid = PointsEntry.objects.filter(source_type=EntrySource.CHALLENGE)

    assert finished.ends_at < timezone.now() and finished.is_published
    assert [e.final_rank for e in entries] == list(range(1, len(entries) + 1))
    assert [e.score for e in entries] == sorted((e.score for e in entries), reverse=True)
    completed = [e for e in entries if e.completed_at]
    assert completed and all(e.score == 100 for e in completed)
    assert set(paid.filter(source_id__in=[f"challenge:{finished.pk}:m{e.member_id}" for e in completed]).values_list(
        "account__member_id", flat=True
    )) == {e.member_id for e in completed}  # fmt: skip
    prizes = paid.filter(idempotency_key__startswith=f"challenge:{finished.pk}:prize:").order_by("idempotency_key")
    assert [p.account.member_id for p in prizes] == [e.member_id for e in entries[:3]]


def test_two_challenges_run_one_ranked_per_active_member_and_one_is_upcoming(demo):
    now = timezone.now()
    running = Challenge.objects.filter(is_published=True, starts_at__lte=now, ends_at__gt=now)
    company = running.get(level=ChallengeLevel.COMPANY)

    assert running.count() == 2 and company.rank_companies_by_size
    assert Challenge.objects.filter(is_published=True, starts_at__gt=now).count() == 1
    assert ChallengeEntry.objects.filter(challenge__in=running, completed_at=None, halfway_at__isnull=False).exists()
    for entry in ChallengeEntry.objects.filter(challenge=company):
        assert entry.member_id is None
        assert entry.normalised == (entry.score / entry.active_members).quantize(Decimal("0.0001"))
    assert not running.filter(started_notified_at=None).exists()


def test_the_field_sprints_name_says_what_its_goal_measures(demo):
    sprint = Challenge.objects.get(code="field-sprint")
    (goal,) = sprint.goals.select_related("product_line")

    assert (goal.metric, goal.target, goal.product_line) == (GoalMetric.UNITS_SOLD, 8, None)
    assert sprint.name == "Field sprint: 8 units sold"
    assert describe_goal(goal) in sprint.name


# What the rules pay for: the engine's postings (a rule id), and the sources of activities the rules pay for — claims,
# sell-out imports, sale lines, training, surveys, and the history's staff bonuses for sales, installations and
# services. Not welcome bonuses, profiles, awards, adjustments, prizes, company shares, volume bonuses or transfers.
RULE_PAID_SOURCES = [
    EntrySource.CLAIM,
    EntrySource.SALES_IMPORT,
    EntrySource.SALE_LINE,
    EntrySource.TRAINING,
    EntrySource.SURVEY,
    "sale",
    "installation",
    "service",
]


def rule_paid(prefix: str = "") -> Q:
    return Q(**{f"{prefix}details__has_key": "rule_id"}) | Q(**{f"{prefix}source_type__in": RULE_PAID_SOURCES})


def period_start(program) -> datetime:
    """When the current standings period began, in the program's time zone (the default one: a page a test requested
    may have left a member's zone active in this thread, as partners.language's middleware does)."""
    return timezone.make_aware(datetime.combine(standings_period(program), time.min), timezone.get_default_timezone())


def rule_paid_in_period(program, member=None) -> dict:
    """{member id (None: the company accounts): points} the rules paid in the current period (of `member` only, when
    given), less what was taken back of them."""
    since = period_start(program)
    entries = PointsEntry.objects.filter(account__program=program)
    if member is not None:
        entries = entries.filter(account__member=member)
    earned = (
        entries.filter(rule_paid(), kind=EntryKind.EARN, created_at__gte=since)
        .values("account__member")
        .annotate(points=Sum("available_delta") + Sum("pending_delta"))
        .values_list("account__member", "points")
    )
    taken = dict(
        entries.filter(rule_paid("reverses__"), kind=EntryKind.REVERSE, reverses__kind=EntryKind.EARN)
        .filter(reverses__created_at__gte=since)
        .values("account__member")
        .annotate(points=Sum("available_delta") + Sum("pending_delta"))
        .values_list("account__member", "points")
    )
    return {member: points + taken.get(member, 0) for member, points in earned}


def test_the_current_periods_standings_are_what_the_rules_paid_in_it(demo):
    program = Program.objects.get()
    paid = rule_paid_in_period(program)
    paid.pop(None, None)
    standings = dict(
        PeriodStanding.objects.filter(
            program=program, period_start=standings_period(program), member__isnull=False
        ).values_list("member", "points")
    )

    assert standings
    assert paid == standings


@pytest.mark.parametrize("role", ["foreman", "sales"])
def test_the_demo_foreman_and_sales_rep_are_on_the_period_board_with_what_their_activities_paid(demo, role):
    """The foreman's installations and service visits and the sales rep's sales (the history's staff bonuses, posted
    without a rule id) count on the board, as their statements show them."""
    program = Program.objects.get()
    user = User.objects.get(email=DEMO_EMAILS[role])
    member = user.memberships.get(status="active")
    since = period_start(program)
    activities = PointsEntry.objects.filter(
        account__member=member,
        kind=EntryKind.EARN,
        created_at__gte=since,
        source_type__in=["installation", "service"] if role == "foreman" else ["sale"],
    )
    paid = rule_paid_in_period(program, member)[member.pk]

    me = board(viewer=user, program=program).me

    assert activities.exists()
    assert me is not None and me.name == "You"
    assert me.value == paid >= sum(e.available_delta + e.pending_delta for e in activities) > 0


@pytest.mark.parametrize("role", ["sales", "engineer", "foreman", "owner"])
def test_the_demo_logins_see_training_challenges_and_what_pays_them(demo, role):
    client = Client()
    client.force_login(User.objects.get(email=DEMO_EMAILS[role]))

    pages = {name: client.get(reverse(name)) for name in ("learn", "challenge_list", "how_to_earn", "home")}

    assert {name: response.status_code for name, response in pages.items()} == dict.fromkeys(pages, 200)
    guide = pages["how_to_earn"].context["guide"]
    assert guide.sales and guide.challenges and guide.modules


# The past survey, events and negotiated conditions (issue #13) ---------------------------------------------------


def member_of(role: str) -> Member:
    return Member.objects.select_related("partner").get(user__email=DEMO_EMAILS[role], status="active")


def test_every_survey_entry_pays_a_stored_answer_to_its_member_or_their_company(demo):
    answers = Response.objects.annotate(
        key=Concat(Value("survey:"), "survey_id", Value(":"), "member_id", output_field=CharField())
    )
    entries = PointsEntry.objects.filter(source_type=EntrySource.SURVEY)
    answered_by = {
        key: (member, partner) for key, member, partner in answers.values_list("key", "member", "member__partner")
    }

    assert entries.count() > 40  # the past survey's and the open one's
    assert not entries.exclude(source_id__in=answers.values("key")).exists()  # no survey line without an answer
    for source_id, member, partner in entries.values_list("source_id", "account__member", "account__partner"):
        assert member == answered_by[source_id][0] or (member is None and partner == answered_by[source_id][1])


def test_the_past_survey_was_sent_answered_and_closed_and_each_answer_paid_once_when_given(demo):
    survey = Survey.objects.get(title=SURVEY["title"])
    responses = list(survey.responses.select_related("member__user"))
    paid = PointsEntry.objects.filter(source_type=EntrySource.SURVEY, source_id__startswith=f"survey:{survey.pk}:")
    by_answer = {entry.source_id: entry for entry in paid}
    now = timezone.now()

    assert survey.status == SurveyStatus.CLOSED
    assert now - timedelta(days=46) < survey.opens_at == survey.invited_at < now - timedelta(days=44)
    assert survey.closes_at < now and survey.points_for_answer == SURVEY["points"]
    assert Delivery.objects.filter(source_key=f"survey:{survey.pk}", status=DeliveryStatus.SENT).exists()
    assert len(responses) >= 15
    assert {r.member.user.email for r in responses} >= set(DEMO_EMAILS.values())
    assert paid.count() == len(by_answer) == len(responses)
    for response in responses:
        entry = by_answer[f"survey:{survey.pk}:{response.member_id}"]
        assert survey.opens_at < response.submitted_at == entry.created_at < survey.closes_at
        assert entry.available_delta == survey.points_for_answer and "rule_id" in entry.details
    explanations = [entry.explanation for entry in statement(account=account_of(DEMO_EMAILS["sales"]))]
    assert any(f"survey “{SURVEY['title']}”" in text for text in explanations)


def test_the_event_that_took_place_paid_those_who_came_once_and_recorded_a_no_show(demo):
    event = Reward.objects.get(sku=PAST_EVENT)
    seats = RedemptionLine.objects.filter(reward=event, order__status__in=LIVE_STATUSES).select_related("order")
    came = [line for line in seats if line.attended_at is not None]
    paid = PointsEntry.objects.filter(source_type=EntrySource.EVENT).select_related("account")

    assert event.kind in (RewardKind.EXPERIENCE, RewardKind.SESSION) and event.event_place
    assert event.event_starts_at < timezone.now() - timedelta(days=7)
    assert event.stock + len(seats) == 12  # its capacity
    assert len(came) >= 3 and [line.no_show for line in seats].count(True) == 1
    assert seats.get(order__member=member_of("foreman")).attended_at is not None
    assert sorted(paid.values_list("source_id", flat=True)) == sorted(f"event:{line.pk}" for line in came)
    for line in came:
        entry = paid.get(source_id=f"event:{line.pk}")
        assert entry.available_delta == 250 and entry.created_at > event.event_starts_at
        assert entry.account.member_id in (line.order.member_id, None)


def test_the_coming_workshop_is_partly_booked_and_the_engineer_finds_his_seat(demo):
    workshop = Reward.objects.get(sku="AQP-EV-UVWS")
    seats = RedemptionLine.objects.filter(reward=workshop, order__status__in=LIVE_STATUSES)
    client = Client()
    client.force_login(User.objects.get(email=DEMO_EMAILS["engineer"]))

    response = client.get(reverse("order_list"))

    assert workshop.event_starts_at > timezone.now() and workshop.stock > 0
    assert seats.count() >= 3 and seats.filter(order__member=member_of("engineer")).exists()
    assert [line.reward for line in response.context["upcoming_seats"]] == [workshop]
    assert workshop.name in response.content.decode()


def test_the_gold_evening_is_for_gold_partners_only(demo):
    program = Program.objects.get()
    evening = Reward.objects.get(sku="AQP-EV-GOLD")
    gold = PartnerTier.objects.filter(program=program, tier=evening.min_tier).values("partner")
    gold_member = Member.objects.filter(status="active", partner__in=gold).select_related("partner").first()

    assert evening.min_tier == Tier.objects.filter(program=program).order_by("rank").last()
    assert evening.event_starts_at > timezone.now()
    assert evening in catalogue(member=gold_member, program=program)
    assert evening not in catalogue(member=member_of("owner"), program=program)  # Northwater is Silver


def test_the_negotiated_reward_is_the_flagships_only_with_its_reason_and_approval(demo):
    program = Program.objects.get()
    reward = Reward.objects.get(sku="AQP-NW-WEAR")
    flagship = Partner.objects.get(name=FLAGSHIP_NAME)
    other = Member.objects.filter(status="active", partner__status="active").exclude(partner=flagship).first()
    seen = {}
    for email in (DEMO_EMAILS["sales"], other.user.email):
        client = Client()
        client.force_login(User.objects.get(email=email))
        seen[email] = client.get(reverse("catalogue"), {"q": "Northwater"}).context["page"].object_list

    assert list(reward.allowed_partners.all()) == [flagship]
    assert reward.negotiated_reason and reward.negotiated_approved_at < timezone.now()
    assert reward.negotiated_approved_by.email == PROGRAM_MANAGERS[0][1]
    assert reward in catalogue(member=member_of("sales"), program=program)
    assert reward not in catalogue(member=other, program=program)
    assert list(seen[DEMO_EMAILS["sales"]]) == [reward] and list(seen[other.user.email]) == []
    assert RedemptionOrder.objects.filter(lines__reward=reward, member=member_of("owner"), paid_by=PaidBy.COMPANY)


def test_the_negotiated_rule_pays_at_the_flagship_only_with_its_reason_and_approval(demo):
    rule = IncentiveRule.objects.get(code=KEY_ACCOUNT_RULE.code, status=RuleStatus.PUBLISHED)
    flagship = Partner.objects.get(name=FLAGSHIP_NAME)
    paid = PointsEntry.objects.filter(details__rule_id=rule.pk)

    assert list(rule.named_partners.all()) == [flagship]
    assert rule.negotiated_reason and rule.negotiated_approved_by.email == PROGRAM_MANAGERS[1][1]
    assert rule.negotiated_approved_at == rule.effective_from < timezone.now() - timedelta(days=90)
    assert paid.filter(account__member=member_of("sales")).exists()
    assert set(paid.values_list("account__member__partner", "account__partner")) <= {
        (flagship.pk, None),
        (None, flagship.pk),
    }
