"""Co-marketing funds (MDF): funds by hand, by tier and by sales share; a request's steps with their history and
messages; the reimbursement formula; refusals that change nothing; pre-approvals at once that never overspend; a
reimbursement paid once, as points through a rule or as a credit note."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from communications.constants import Kind
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from loyalty.constants import EntrySource, FundSource, MdfPayout, MdfStatus, ProofKind, RuleEvent
from loyalty.error_codes import ErrorCode
from loyalty.models import (
    MarketingFund,
    MarketingProof,
    MarketingRequest,
    MarketingRequestEvent,
    PartnerTier,
    PointsEntry,
    SaleLine,
    SalesSource,
)
from loyalty.services import comarketing as services
from loyalty.services.comarketing import Period, previous_period, reimbursement
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory, TierFactory
from tests.loyalty.factories_comarketing import MarketingFundFactory, MarketingRequestFactory
from tests.loyalty.test_claims_services import JPEG, PDF, stored_files, upload
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, ProgramManagerFactory, role

pytestmark = pytest.mark.usefixtures("private_media")
TODAY = timezone.localdate()
YEAR = Period(TODAY.replace(month=1, day=1), TODAY.replace(month=12, day=31))


@pytest.fixture
def pm(db):
    return ProgramManagerFactory()


@pytest.fixture
def program(db):
    return ProgramFactory(mdf_percent=Decimal("50.00"), mdf_share_by_brands=True, mdf_payout=MdfPayout.CREDIT_NOTE)


@pytest.fixture
def fund(program):
    return MarketingFundFactory(program=program, amount=Decimal("2000.00"))


def proofs():
    return [
        (ProofKind.ADVERT, upload("advert.jpg", JPEG)),
        (ProofKind.INVOICE, upload("bill.pdf", PDF, "application/pdf")),
    ]


def claimed(fund, pm, *, cost="1000.00", brands=0, approved="600.00", **kwargs) -> MarketingRequest:
    request = MarketingRequestFactory(fund=fund, **kwargs)
    services.request_pre_approve(request=request, actor=pm, amount=Decimal(approved))
    return services.request_claim(
        request=request, member=request.member, actual_cost=Decimal(cost), other_brands=brands, proofs=proofs()
    )


def fund_state(fund) -> tuple:
    fund.refresh_from_db()
    return fund.amount, fund.committed, fund.reimbursed


# The formula ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("brands", "amount", "working"),
    [
        (0, "500.00", "50 % × 1,000.00 × 1/(1+0) = 500.00"),
        (1, "250.00", "50 % × 1,000.00 × 1/(1+1) = 250.00"),
        (3, "125.00", "50 % × 1,000.00 × 1/(1+3) = 125.00"),
    ],
)
def test_reimbursement_is_half_the_cost_divided_by_one_plus_the_other_brands(brands, amount, working):
    paid = reimbursement(
        actual_cost=Decimal("1000.00"),
        percent=Decimal("50.00"),
        other_brands=brands,
        share_by_brands=True,
        approved=Decimal("1000.00"),
    )
    assert paid.amount == Decimal(amount)
    assert paid.explanation == working


def test_reimbursement_rounds_half_up_to_cents_and_stops_at_the_pre_approved_amount():
    third = reimbursement(
        actual_cost=Decimal("1000.00"),
        percent=Decimal("40"),
        other_brands=2,
        share_by_brands=True,
        approved=Decimal("1000.00"),
    )
    capped = reimbursement(
        actual_cost=Decimal("1000.00"),
        percent=Decimal("50"),
        other_brands=5,
        share_by_brands=False,
        approved=Decimal("300"),
    )
    assert third.amount == Decimal("133.33")
    assert third.explanation == "40 % × 1,000.00 × 1/(1+2) = 133.33"
    assert capped.amount == Decimal("300.00")
    assert capped.explanation == "50 % × 1,000.00 = 500.00, limited to the pre-approved 300.00"


def test_reimbursing_uses_the_tier_percent_and_records_a_credit_note(program, fund, pm):
    gold = TierFactory(program=program, name="Gold", mdf_percent=Decimal("40.00"))
    PartnerTier.objects.create(program=program, partner=fund.partner, tier=gold, since=TODAY, held_until=TODAY)
    request = claimed(fund, pm, cost="1000.00", brands=1, approved="600.00")

    done = services.request_reimburse(request=request, actor=pm)

    assert (done.status, done.payout, done.reimbursed_amount) == (
        MdfStatus.REIMBURSED,
        MdfPayout.CREDIT_NOTE,
        Decimal("200.00"),
    )
    assert done.reimbursed_points is None
    assert done.explanation == "40 % × 1,000.00 × 1/(1+1) = 200.00"
    assert fund_state(fund) == (Decimal("2000.00"), Decimal("0.00"), Decimal("200.00"))
    assert not PointsEntry.objects.exists()


# A request's steps ------------------------------------------------------------------------------------------


def test_each_step_is_recorded_in_the_history_and_told_to_the_requester(program, fund, pm):
    owner = OwnerFactory(partner=fund.partner)
    request = services.request_submit(
        member=owner,
        program=program,
        title="Radio spot",
        planned_on=TODAY + timedelta(days=3),
        planned_cost=Decimal("900"),
    )
    services.request_pre_approve(request=request, actor=pm, amount=Decimal("450.00"))
    services.request_claim(
        request=request, member=owner, actual_cost=Decimal("800.00"), other_brands=0, proofs=proofs()
    )
    services.request_reject_claim(request=request, actor=pm, reason="The invoice is not readable.")
    services.request_claim(request=request, member=owner, actual_cost=Decimal("800.00"), other_brands=0, proofs=[])
    services.request_reimburse(request=request, actor=pm)

    moves = list(MarketingRequestEvent.objects.filter(request=request).values_list("from_status", "to_status", "note"))
    assert moves == [
        ("", MdfStatus.REQUESTED, ""),
        (MdfStatus.REQUESTED, MdfStatus.PRE_APPROVED, "Pre-approved up to 450.00"),
        (MdfStatus.PRE_APPROVED, MdfStatus.CLAIMED, "Actual cost 800.00, 0 other brands named"),
        (MdfStatus.CLAIMED, MdfStatus.CLAIM_REJECTED, "The invoice is not readable."),
        (MdfStatus.CLAIM_REJECTED, MdfStatus.CLAIMED, "Claimed again: Actual cost 800.00, 0 other brands named"),
        (MdfStatus.CLAIMED, MdfStatus.REIMBURSED, "50 % × 800.00 × 1/(1+0) = 400.00 (credit note)"),
    ]
    keys = set(Delivery.objects.filter(kind=Kind.MDF_DECIDED, member=owner).values_list("source_key", flat=True))
    assert len(keys) == 6
    assert fund_state(fund) == (Decimal("2000.00"), Decimal("0.00"), Decimal("400.00"))
    assert MarketingProof.objects.filter(request=request).count() == 2


def test_a_sales_person_can_ask_but_an_engineer_cannot(program, fund):
    rep = MemberFactory(partner=fund.partner)
    engineer = MemberFactory(partner=fund.partner, role=role("engineer"))

    made = services.request_submit(
        member=rep, program=program, title="Flyer", planned_on=TODAY, planned_cost=Decimal("100")
    )
    with pytest.raises(ApplicationError) as refused:
        services.request_submit(
            member=engineer, program=program, title="Flyer", planned_on=TODAY, planned_cost=Decimal("100")
        )

    assert made.status == MdfStatus.REQUESTED
    assert refused.value.code == ErrorCode.MDF_NOT_ALLOWED
    assert MarketingRequest.objects.count() == 1


def test_a_request_without_a_fund_for_its_day_is_refused(program):
    owner = OwnerFactory()
    with pytest.raises(ApplicationError) as refused:
        services.request_submit(
            member=owner, program=program, title="Flyer", planned_on=TODAY, planned_cost=Decimal("100")
        )
    assert refused.value.code == ErrorCode.MDF_NO_FUND
    assert not MarketingRequest.objects.exists()


def test_withdrawing_a_pre_approved_request_gives_the_money_back_to_the_fund(fund, pm):
    request = MarketingRequestFactory(fund=fund)
    services.request_pre_approve(request=request, actor=pm, amount=Decimal("700.00"))
    assert fund_state(fund) == (Decimal("2000.00"), Decimal("700.00"), Decimal("0.00"))

    services.request_withdraw(request=request, member=request.member)

    assert fund_state(fund) == (Decimal("2000.00"), Decimal("0.00"), Decimal("0.00"))
    request.refresh_from_db()
    assert request.status == MdfStatus.WITHDRAWN


def test_declining_needs_a_reason_the_partner_reads(fund, pm):
    request = MarketingRequestFactory(fund=fund)
    with pytest.raises(ApplicationError) as refused:
        services.request_decline(request=request, actor=pm, reason="  ")
    services.request_decline(request=request, actor=pm, reason="Not our products.")

    request.refresh_from_db()
    assert refused.value.code == ErrorCode.REASON_REQUIRED
    assert (request.status, request.reason) == (MdfStatus.DECLINED, "Not our products.")


# Refusals that change nothing -------------------------------------------------------------------------------


def test_a_pre_approval_above_what_is_left_in_the_fund_is_refused_and_changes_nothing(fund, pm):
    first = MarketingRequestFactory(fund=fund)
    services.request_pre_approve(request=first, actor=pm, amount=Decimal("1500.00"))
    second = MarketingRequestFactory(fund=fund)

    with pytest.raises(ApplicationError) as refused:
        services.request_pre_approve(request=second, actor=pm, amount=Decimal("500.01"))

    assert refused.value.code == ErrorCode.MDF_FUND_EXCEEDED
    assert fund_state(fund) == (Decimal("2000.00"), Decimal("1500.00"), Decimal("0.00"))
    second.refresh_from_db()
    assert (second.status, second.approved_amount) == (MdfStatus.REQUESTED, None)
    assert not MarketingRequestEvent.objects.filter(request=second).exists()


def test_a_request_when_the_fund_is_used_up_is_refused(program, fund, pm):
    services.request_pre_approve(request=MarketingRequestFactory(fund=fund), actor=pm, amount=Decimal("2000.00"))
    owner = OwnerFactory(partner=fund.partner)
    with pytest.raises(ApplicationError) as refused:
        services.request_submit(
            member=owner, program=program, title="Fair", planned_on=TODAY, planned_cost=Decimal("10")
        )
    assert refused.value.code == ErrorCode.MDF_FUND_EXCEEDED
    assert MarketingRequest.objects.count() == 1


@pytest.mark.parametrize(
    "sent",
    [
        [],
        [(ProofKind.ADVERT, upload("advert.jpg", JPEG))],
        [
            (ProofKind.ADVERT, upload("advert.jpg", JPEG)),
            (ProofKind.INVOICE, upload("bill.txt", b"hello", "text/plain")),
        ],
    ],
    ids=["no proof", "no invoice", "invoice not a document"],
)
def test_a_claim_without_an_advert_and_an_invoice_is_refused_and_changes_nothing(fund, pm, private_media, sent):
    request = MarketingRequestFactory(fund=fund)
    services.request_pre_approve(request=request, actor=pm, amount=Decimal("500.00"))
    moves = MarketingRequestEvent.objects.filter(request=request).count()

    with pytest.raises(ApplicationError) as refused:
        services.request_claim(
            request=request, member=request.member, actual_cost=Decimal("900"), other_brands=0, proofs=sent
        )

    assert refused.value.code in (ErrorCode.MDF_PROOF_MISSING, ErrorCode.DOCUMENT_TYPE)
    request.refresh_from_db()
    assert (request.status, request.actual_cost, request.other_brands) == (MdfStatus.PRE_APPROVED, None, None)
    assert MarketingRequestEvent.objects.filter(request=request).count() == moves
    assert not MarketingProof.objects.exists()
    assert stored_files(private_media) == []


def test_someone_of_another_partner_cannot_claim_a_request(fund, pm):
    request = MarketingRequestFactory(fund=fund)
    services.request_pre_approve(request=request, actor=pm, amount=Decimal("500.00"))
    with pytest.raises(ApplicationError) as refused:
        services.request_claim(
            request=request, member=OwnerFactory(), actual_cost=Decimal("900"), other_brands=0, proofs=proofs()
        )
    assert refused.value.code == ErrorCode.FORBIDDEN
    request.refresh_from_db()
    assert request.status == MdfStatus.PRE_APPROVED


def test_only_the_program_team_decides(fund):
    request = MarketingRequestFactory(fund=fund)
    with pytest.raises(ApplicationError) as refused:
        services.request_pre_approve(request=request, actor=request.member.user, amount=Decimal("10"))
    assert refused.value.code == ErrorCode.FORBIDDEN
    assert fund_state(fund) == (Decimal("2000.00"), Decimal("0.00"), Decimal("0.00"))


# Paid once --------------------------------------------------------------------------------------------------


def test_a_reimbursement_in_points_is_paid_once_to_the_company_account_through_a_rule(program, fund, pm):
    program.mdf_payout = MdfPayout.POINTS
    program.save(update_fields=["mdf_payout"])
    RuleFactory(program=program, event=RuleEvent.CO_MARKETING_APPROVED, value=Decimal("2"))  # 2 points per unit
    request = claimed(fund, pm, cost="1000.00", brands=3, approved="600.00")

    done = services.request_reimburse(request=request, actor=pm)
    with pytest.raises(ApplicationError) as again:
        services.request_reimburse(request=request, actor=pm)

    assert again.value.code == ErrorCode.BAD_TRANSITION
    assert (done.reimbursed_amount, done.reimbursed_points) == (Decimal("125.00"), 250)
    entries = list(PointsEntry.objects.all())
    assert len(entries) == 1
    assert (entries[0].points, entries[0].source_type, entries[0].source_id) == (
        250,
        EntrySource.CO_MARKETING,
        f"mdf:{request.pk}",
    )
    assert entries[0].account.partner_id == fund.partner_id and entries[0].account.member_id is None
    assert fund_state(fund) == (Decimal("2000.00"), Decimal("0.00"), Decimal("125.00"))


def test_a_reimbursement_in_points_that_no_rule_pays_is_refused_and_changes_nothing(program, fund, pm):
    program.mdf_payout = MdfPayout.POINTS
    program.save(update_fields=["mdf_payout"])
    request = claimed(fund, pm)

    with pytest.raises(ApplicationError) as refused:
        services.request_reimburse(request=request, actor=pm)

    assert refused.value.code == ErrorCode.MDF_NO_RULE
    request.refresh_from_db()
    assert (request.status, request.reimbursed_amount) == (MdfStatus.CLAIMED, None)
    assert fund_state(fund) == (Decimal("2000.00"), Decimal("600.00"), Decimal("0.00"))


@pytest.mark.django_db(transaction=True)
def test_two_pre_approvals_at_once_never_overspend_the_fund(private_media):
    program = ProgramFactory()
    pm = ProgramManagerFactory()
    fund = MarketingFundFactory(program=program, amount=Decimal("1000.00"))
    requests = [MarketingRequestFactory(fund=fund), MarketingRequestFactory(fund=fund)]
    barrier = threading.Barrier(2)
    outcomes = []

    def pre_approve(request):
        try:
            barrier.wait()
            services.request_pre_approve(request=request, actor=pm, amount=Decimal("700.00"))
            outcomes.append("ok")
        except ApplicationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=pre_approve, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == sorted(["ok", ErrorCode.MDF_FUND_EXCEEDED])
    assert fund_state(fund) == (Decimal("1000.00"), Decimal("700.00"), Decimal("0.00"))
    assert MarketingRequest.objects.filter(status=MdfStatus.PRE_APPROVED).count() == 1


# Funds ------------------------------------------------------------------------------------------------------


def test_a_fund_set_by_hand_cannot_go_below_what_its_requests_hold(program, fund, pm):
    services.request_pre_approve(request=MarketingRequestFactory(fund=fund), actor=pm, amount=Decimal("800.00"))

    with pytest.raises(ApplicationError) as refused:
        services.fund_set(program=program, partner=fund.partner, period=YEAR, amount=Decimal("799.99"))
    changed = services.fund_set(program=program, partner=fund.partner, period=YEAR, amount=Decimal("800.00"))

    assert refused.value.code == ErrorCode.MDF_FUND_BELOW_USED
    assert changed.pk == fund.pk
    assert fund_state(fund) == (Decimal("800.00"), Decimal("800.00"), Decimal("0.00"))


def test_funds_of_one_partner_cannot_overlap(program, fund):
    with pytest.raises(ApplicationError) as refused:
        services.fund_set(
            program=program, partner=fund.partner, period=Period(YEAR.start + timedelta(days=1), YEAR.end), amount=1
        )
    assert refused.value.code == ErrorCode.MDF_FUND_OVERLAP
    assert MarketingFund.objects.count() == 1


def test_funds_by_tier_give_each_partner_its_tier_amount_and_leave_funds_set_by_hand(program):
    gold = TierFactory(program=program, name="Gold", mdf_fund_amount=Decimal("5000.00"))
    basic = TierFactory(program=program, name="Basic")
    a, b, c = PartnerFactory(), PartnerFactory(name="Hand Set Ltd"), PartnerFactory()
    for partner, tier in ((a, gold), (b, gold), (c, basic)):
        PartnerTier.objects.create(program=program, partner=partner, tier=tier, since=TODAY, held_until=TODAY)
    services.fund_set(program=program, partner=b, period=YEAR, amount=Decimal("100.00"))

    result = services.funds_by_tier(program=program, period=YEAR)

    funds = dict(MarketingFund.objects.values_list("partner_id", "amount"))
    assert funds == {a.pk: Decimal("5000.00"), b.pk: Decimal("100.00")}
    assert MarketingFund.objects.get(partner=a).source == FundSource.TIER
    assert (result.created, result.updated, result.skipped) == (1, 0, ["Hand Set Ltd (set by hand)"])


def test_funds_by_sales_share_take_the_share_of_the_previous_period_sales(program):
    program.mdf_sales_share_percent = Decimal("2.50")
    program.save(update_fields=["mdf_sales_share_percent"])
    quarter = Period(date(2026, 4, 1), date(2026, 6, 30))
    source = SalesSource.objects.create(program=program, name="Feed", code="feed")
    seller, quiet = MemberFactory(), MemberFactory()
    product = ProductFactory()
    for n, (day, amount) in enumerate(
        [(date(2026, 1, 1), "1000.00"), (date(2026, 3, 31), "234.00"), (date(2026, 4, 1), "99999.00")]
    ):
        SaleLine.objects.create(
            source=source, external_id=f"L-{n}", partner=seller.partner, product=product, quantity=Decimal(1),
            paid_quantity=Decimal(1), amount=Decimal(amount), invoice_date=day,
        )  # fmt: skip

    result = services.funds_by_sales_share(program=program, period=quarter)

    fund = MarketingFund.objects.get()
    assert (fund.partner_id, fund.amount, fund.source) == (seller.partner_id, Decimal("30.85"), FundSource.SALES_SHARE)
    assert (fund.period_start, fund.period_end) == (quarter.start, quarter.end)
    assert result.created == 1
    assert not MarketingFund.objects.filter(partner=quiet.partner).exists()


def test_funds_by_sales_share_need_the_program_share(program):
    with pytest.raises(ApplicationError) as refused:
        services.funds_by_sales_share(program=program, period=YEAR)
    assert refused.value.code == ErrorCode.MDF_SALES_SHARE_UNSET


@pytest.mark.parametrize(
    ("start", "end", "before"),
    [
        (date(2026, 4, 1), date(2026, 6, 30), (date(2026, 1, 1), date(2026, 3, 31))),
        (date(2026, 1, 1), date(2026, 12, 31), (date(2025, 1, 1), date(2025, 12, 31))),
        (date(2026, 3, 1), date(2026, 3, 31), (date(2026, 2, 1), date(2026, 2, 28))),
        (date(2026, 3, 10), date(2026, 3, 19), (date(2026, 2, 28), date(2026, 3, 9))),
    ],
)
def test_the_previous_period_has_the_same_length_just_before(start, end, before):
    assert previous_period(Period(start, end)) == Period(*before)
