"""Paid club membership (issue #13): joining a tier for a year by paying its fee in points from the company account
(spent once) or in money (recorded), renewals that count from the old end date (also across a leap day), a renewal
paid twice (the same form again, or at the same moment) refused with nothing paid twice, the refusals, the tier held
being the better of the qualifying and the paid one (one partner, and the whole program), the downgrade once the paid
year has ended, the renewal reminders, the club page per role, the home page's tier card and the back office."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from communications.constants import Channel, Kind
from communications.defaults import ensure_default_templates
from communications.models import Delivery, MessageTemplate
from loyalty.common.errors import ApplicationError
from loyalty.constants import EntryKind, EntrySource, TierMetric, TierPeriod
from loyalty.error_codes import ErrorCode
from loyalty.models import ClubMembership, PartnerTier, PointsEntry, SaleLine, SalesSource, TierChange
from loyalty.services import clubs, ledger
from loyalty.services.tier_notices import warn_tier_keep
from loyalty.services.tiers import tier_evaluate, tier_progress, tiers_evaluate_all
from loyalty.tasks.clubs import remind_club_renewals
from partners.constants import MemberStatus, PartnerStatus
from tests.helpers import messages_of, visible
from tests.loyalty.factories import ProductFactory, ProgramFactory, TierFactory
from tests.loyalty.test_ledger_concurrency import run_in_parallel
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 5, 15)  # in Q2 2026: the quarter ends on 30 June
YEAR_END = date(2027, 5, 14)  # the last day of a year paid from TODAY
CLUB = reverse("club")


@pytest.fixture
def program():
    return ProgramFactory(
        name="Aqua Rewards",
        currency_name="AquaPoints",
        tier_metric=TierMetric.SALES_AMOUNT,
        tier_window_days=365,
        tier_period=TierPeriod.QUARTER,
        money_currency="EUR",
    )


@pytest.fixture
def ladder(program):
    """Bronze (entry), Silver from €5,000 or €450.00 a year, Gold from €10,000 or 5,000 points a year."""
    return (
        TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0")),
        TierFactory(
            program=program,
            name="Silver",
            rank=1,
            threshold=Decimal("5000"),
            multiplier=Decimal("1.10"),
            join_fee_money=Decimal("450.00"),
        ),
        TierFactory(
            program=program,
            name="Gold",
            rank=2,
            threshold=Decimal("10000"),
            multiplier=Decimal("1.25"),
            service_level="Next-day delivery and a dedicated technician",
            join_fee_points=5000,
        ),
    )


@pytest.fixture
def partner():
    return PartnerFactory(name="Aqua Dealer Ltd")


@pytest.fixture
def owner(partner):
    return OwnerFactory(partner=partner, user__full_name="Olivia Owner")


def company_points(program, partner, points: int, key: str = "gift") -> None:
    ledger.earn(
        account=ledger.partner_account(program=program, partner=partner), points=points, key=f"{key}:{partner.pk}"
    )


def company_balance(program, partner) -> int:
    return ledger.partner_account(program=program, partner=partner).available


def sale(program, partner, amount, *, day=TODAY) -> SaleLine:
    source = SalesSource.objects.get_or_create(program=program, code="erp", defaults={"name": "ERP"})[0]
    return SaleLine.objects.create(
        source=source,
        external_id=f"L{SaleLine.objects.count() + 1}",
        partner=partner,
        product=ProductFactory(),
        quantity=Decimal("1"),
        amount=Decimal(amount),
        invoice_date=day,
        paid_quantity=Decimal("1"),
    )


def join(program, partner, tier, member, *, renews_until=None, today=TODAY) -> ClubMembership:
    return clubs.club_join(
        program=program, partner=partner, tier=tier, member=member, renews_until=renews_until, today=today
    )


def paid_row(program, partner, tier, starts_on: date) -> ClubMembership:
    """A paid year written as the service writes it (for evaluating many partners at once)."""
    return ClubMembership.objects.create(
        program=program,
        partner=partner,
        tier=tier,
        starts_on=starts_on,
        ends_on=clubs.year_from(starts_on),
        fee_money=Decimal("450.00"),
    )


def club_fees() -> list[PointsEntry]:
    return list(PointsEntry.objects.filter(source_type=EntrySource.CLUB_FEE).order_by("pk"))


def refused(**kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        clubs.club_join(**kwargs)
    return caught.value


# A paid year -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starts_on", "ends_on"),
    [
        (date(2026, 5, 15), date(2027, 5, 14)),
        (date(2026, 1, 1), date(2026, 12, 31)),
        (date(2027, 3, 1), date(2028, 2, 29)),  # the year holds the leap day
        (date(2028, 2, 29), date(2029, 2, 28)),  # from a leap day: to 28 February
    ],
)
def test_a_paid_year_ends_the_day_before_the_same_date_a_year_later(starts_on, ends_on):
    assert clubs.year_from(starts_on) == ends_on


# Joining ---------------------------------------------------------------------------------------------------------


def test_joining_by_points_debits_the_company_account_once_and_gives_the_tier_at_once(program, ladder, partner, owner):
    gold = ladder[2]
    company_points(program, partner, 7_000)
    mine = ledger.member_account(program=program, member=owner)

    membership = join(program, partner, gold, owner)

    assert (membership.starts_on, membership.ends_on, membership.renews) == (TODAY, YEAR_END, None)
    assert (membership.fee_points, membership.fee_money, membership.bought_by) == (5000, None, owner)
    [fee] = club_fees()
    assert membership.entry_id == fee.pk
    assert (fee.kind, fee.available_delta, fee.account.partner_id) == (EntryKind.SPEND, -5000, partner.pk)
    assert company_balance(program, partner) == 2_000
    assert ledger.member_account(program=program, member=owner).available == mine.available == 0
    held = PartnerTier.objects.get(program=program, partner=partner)
    assert (held.tier, held.held_until) == (gold, YEAR_END)
    change = TierChange.objects.get(partner=partner)
    assert (change.to_tier, change.reason) == (gold, "Joined Gold as a paying member until 2027-05-14.")


def test_joining_by_money_records_the_fee_and_moves_no_points(program, ladder, partner, owner):
    silver = ladder[1]

    membership = join(program, partner, silver, owner)

    assert (membership.fee_money, membership.fee_points, membership.entry) == (Decimal("450.00"), None, None)
    assert not PointsEntry.objects.exists()
    assert PartnerTier.objects.get(program=program, partner=partner).tier == silver


def test_a_program_manager_records_a_membership_paid_by_bank_transfer(program, ladder, partner, program_manager):
    membership = clubs.club_join(
        program=program, partner=partner, tier=ladder[1], recorded_by=program_manager, renews_until=None, today=TODAY
    )

    assert (membership.recorded_by, membership.bought_by) == (program_manager, None)
    assert PartnerTier.objects.get(program=program, partner=partner).tier == ladder[1]


# Renewing --------------------------------------------------------------------------------------------------------


def test_an_early_renewal_counts_from_the_old_end_date(program, ladder, partner, owner):
    gold = ladder[2]
    company_points(program, partner, 10_000)
    first = join(program, partner, gold, owner)

    renewal = join(program, partner, gold, owner, renews_until=YEAR_END, today=date(2026, 11, 2))

    assert (renewal.renews, renewal.starts_on, renewal.ends_on) == (first, date(2027, 5, 15), date(2028, 5, 14))
    assert [fee.available_delta for fee in club_fees()] == [-5000, -5000]
    assert company_balance(program, partner) == 0
    # the tier is held until the last day paid, at once
    assert PartnerTier.objects.get(program=program, partner=partner).held_until == date(2028, 5, 14)


@pytest.mark.parametrize(
    ("joined_on", "first_end", "renewal_start", "renewal_end"),
    [
        (date(2027, 3, 1), date(2028, 2, 29), date(2028, 3, 1), date(2029, 2, 28)),
        (date(2028, 2, 29), date(2029, 2, 28), date(2029, 3, 1), date(2030, 2, 28)),
    ],
)
def test_a_renewal_across_a_leap_day_starts_the_day_after_the_old_end(
    program, ladder, partner, owner, joined_on, first_end, renewal_start, renewal_end
):
    first = join(program, partner, ladder[1], owner, today=joined_on)

    renewal = join(program, partner, ladder[1], owner, renews_until=first_end, today=first_end - timedelta(days=3))

    assert first.ends_on == first_end
    assert (renewal.starts_on, renewal.ends_on) == (renewal_start, renewal_end)


def test_a_renewal_on_the_last_day_of_the_year_still_counts_from_the_old_end_date(program, ladder, partner, owner):
    join(program, partner, ladder[1], owner)

    renewal = join(program, partner, ladder[1], owner, renews_until=YEAR_END, today=YEAR_END)

    assert renewal.starts_on == YEAR_END + timedelta(days=1)


def test_a_lapsed_membership_is_joined_again_from_the_day_it_is_paid(program, ladder, partner, owner):
    join(program, partner, ladder[1], owner)

    again = join(program, partner, ladder[1], owner, renews_until=YEAR_END, today=date(2027, 6, 3))

    assert (again.renews, again.starts_on, again.ends_on) == (None, date(2027, 6, 3), date(2028, 6, 2))


def test_a_renewal_paid_twice_is_refused_with_a_clear_message_and_charged_once(program, ladder, partner, owner):
    gold = ladder[2]
    company_points(program, partner, 20_000)
    join(program, partner, gold, owner)
    join(program, partner, gold, owner, renews_until=YEAR_END, today=date(2026, 12, 1))

    again = refused(
        program=program, partner=partner, tier=gold, member=owner, renews_until=YEAR_END, today=date(2026, 12, 1)
    )

    assert again.code == ErrorCode.CLUB_ALREADY_RENEWED
    assert again.message == "Already renewed: your membership now runs until 14 May 2028. Nothing was charged."
    assert len(club_fees()) == 2
    assert company_balance(program, partner) == 10_000
    assert ClubMembership.objects.count() == 2


def test_a_join_sent_twice_is_refused_and_charged_once(program, ladder, partner, owner):
    company_points(program, partner, 20_000)
    join(program, partner, ladder[2], owner)

    again = refused(program=program, partner=partner, tier=ladder[2], member=owner, renews_until=None, today=TODAY)

    assert again.code == ErrorCode.CLUB_ALREADY_RENEWED
    assert again.message == (
        "Already joined: your company's Gold membership runs until 14 May 2027. Nothing was charged."
    )
    assert len(club_fees()) == 1


def test_a_second_early_renewal_is_refused(program, ladder, partner, owner):
    join(program, partner, ladder[1], owner)
    ahead = join(program, partner, ladder[1], owner, renews_until=YEAR_END, today=date(2026, 6, 1))

    second = refused(
        program=program,
        partner=partner,
        tier=ladder[1],
        member=owner,
        renews_until=ahead.ends_on,
        today=date(2026, 6, 2),
    )

    assert second.code == ErrorCode.CLUB_RENEWED_AHEAD
    assert "Already renewed: your Silver membership runs until 14 May 2028." in second.message
    assert ClubMembership.objects.count() == 2


def test_a_renewal_renews_the_same_tier(program, ladder, partner, owner):
    company_points(program, partner, 10_000)
    join(program, partner, ladder[2], owner)

    other = refused(program=program, partner=partner, tier=ladder[1], member=owner, renews_until=YEAR_END, today=TODAY)

    assert other.code == ErrorCode.CLUB_OTHER_TIER
    assert "paying member of Gold until 14 May 2027" in other.message
    assert ClubMembership.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_renewal_sent_twice_at_once_is_paid_once():
    program = ProgramFactory(currency_name="AquaPoints")
    TierFactory(program=program, name="Bronze", rank=0)
    gold = TierFactory(program=program, name="Gold", rank=1, threshold=Decimal("10000"), join_fee_points=5000)
    partner = PartnerFactory()
    owner = OwnerFactory(partner=partner)
    company_points(program, partner, 20_000)
    first = join(program, partner, gold, owner)

    outcomes = run_in_parallel(
        2, lambda i: join(program, partner, gold, owner, renews_until=first.ends_on, today=TODAY).renews_id
    )

    assert outcomes == {first.pk: 1, ErrorCode.CLUB_ALREADY_RENEWED: 1}
    assert ClubMembership.objects.filter(renews=first).count() == 1
    assert len(club_fees()) == 2
    assert company_balance(program, partner) == 10_000


# Refusals --------------------------------------------------------------------------------------------------------


def test_not_enough_points_on_the_company_account_is_refused_and_changes_nothing(program, ladder, partner, owner):
    company_points(program, partner, 1_000)
    # the owner's own points do not pay for the company
    ledger.earn(account=ledger.member_account(program=program, member=owner), points=9_000, key="own")

    error = refused(program=program, partner=partner, tier=ladder[2], member=owner, renews_until=None, today=TODAY)

    assert error.code == ErrorCode.INSUFFICIENT_POINTS
    assert error.message == "A year of Gold costs 5,000 AquaPoints; the company account has 1,000 AquaPoints."
    assert company_balance(program, partner) == 1_000
    assert not ClubMembership.objects.exists() and not club_fees()
    assert not PartnerTier.objects.exists()


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("staff", ErrorCode.FORBIDDEN),
        ("other owner", ErrorCode.FORBIDDEN),
        ("left owner", ErrorCode.MEMBER_INACTIVE),
        ("nobody", ErrorCode.FORBIDDEN),
    ],
)
def test_only_an_active_owner_of_the_partner_pays(program, ladder, partner, who, code):
    company_points(program, partner, 10_000)
    member = {
        "staff": lambda: MemberFactory(partner=partner),
        "other owner": lambda: OwnerFactory(),
        "left owner": lambda: OwnerFactory(partner=partner, status=MemberStatus.LEFT),
        "nobody": lambda: None,
    }[who]()

    error = refused(program=program, partner=partner, tier=ladder[2], member=member, renews_until=None, today=TODAY)

    assert error.code == code
    assert not ClubMembership.objects.exists() and company_balance(program, partner) == 10_000


def test_a_staff_user_who_is_no_program_manager_cannot_record_one(program, ladder, partner):
    from tests.partners.factories import AccountManagerFactory

    error = refused(
        program=program,
        partner=partner,
        tier=ladder[1],
        recorded_by=AccountManagerFactory(),
        renews_until=None,
        today=TODAY,
    )

    assert error.code == ErrorCode.FORBIDDEN
    assert not ClubMembership.objects.exists()


def test_a_tier_that_cannot_be_joined_or_of_another_program_is_refused(program, ladder, partner, owner):
    elsewhere = TierFactory(name="Platinum", join_fee_points=100)

    bronze = refused(program=program, partner=partner, tier=ladder[0], member=owner, renews_until=None, today=TODAY)
    other = refused(program=program, partner=partner, tier=elsewhere, member=owner, renews_until=None, today=TODAY)

    assert bronze.code == ErrorCode.CLUB_NOT_JOINABLE
    assert bronze.message == "Bronze cannot be joined for a fee: partners reach it by qualifying."
    assert other.code == ErrorCode.OTHER_PROGRAM
    assert not ClubMembership.objects.exists()


def test_a_partner_that_is_not_active_cannot_join(program, ladder, owner, partner):
    partner.status = PartnerStatus.SUSPENDED
    partner.save(update_fields=["status"])

    error = refused(program=program, partner=partner, tier=ladder[1], member=owner, renews_until=None, today=TODAY)

    assert error.code == ErrorCode.PARTNER_INACTIVE
    assert not ClubMembership.objects.exists()


def test_joining_a_tier_below_the_one_held_is_refused(program, ladder, partner, owner):
    sale(program, partner, "12000.00")
    tier_evaluate(program=program, partner=partner, today=TODAY)  # Gold by qualifying

    error = refused(program=program, partner=partner, tier=ladder[1], member=owner, renews_until=None, today=TODAY)

    assert error.code == ErrorCode.CLUB_TIER_HELD
    assert error.message == "Your company already holds Gold, above Silver: joining Silver would add nothing."


# The tier held ---------------------------------------------------------------------------------------------------


def test_the_tier_held_is_the_better_of_the_qualifying_and_the_paid_one_for_the_whole_program(program, ladder):
    bronze, silver, gold = ladder
    pays_more = PartnerFactory(name="Pays for Gold, sells for Silver")
    sells_more = PartnerFactory(name="Pays for Silver, sells for Gold")
    quiet = PartnerFactory(name="Neither")
    ended = PartnerFactory(name="Paid year ended")
    sale(program, pays_more, "6000.00")
    sale(program, sells_more, "12000.00")
    paid_row(program, pays_more, gold, TODAY - timedelta(days=30))
    paid_row(program, sells_more, silver, TODAY - timedelta(days=30))
    paid_row(program, ended, gold, TODAY - timedelta(days=400))

    result = tiers_evaluate_all(program=program, today=TODAY)

    held = {row.partner_id: row for row in PartnerTier.objects.filter(program=program)}
    assert {partner_id: row.tier.name for partner_id, row in held.items()} == {
        pays_more.pk: "Gold",
        sells_more.pk: "Gold",
        quiet.pk: "Bronze",
        ended.pk: "Bronze",
    }
    assert held[pays_more.pk].held_until == date(2027, 4, 14)  # the last day paid, after the quarter's end
    assert held[sells_more.pk].held_until == date(2026, 6, 30)  # qualifying: the end of the quarter
    assert result.assigned == 4
    reasons = dict(TierChange.objects.values_list("partner_id", "reason"))
    assert reasons[pays_more.pk] == "Joined Gold as a paying member until 2027-04-14."
    assert reasons[sells_more.pk].startswith("First tier: €12,000.00 of sales")


@pytest.mark.parametrize("partners", [2, 12])
def test_evaluating_the_program_costs_the_same_queries_for_few_or_many_paying_partners(
    program, ladder, partners, django_assert_num_queries
):
    for index in range(partners):
        partner = PartnerFactory()
        paid_row(program, partner, ladder[2 if index % 2 else 1], TODAY - timedelta(days=index))

    # savepoint, advisory lock, tiers, partners, tier rows, the metric, the paid memberships, insert rows, insert
    # history, release savepoint
    with django_assert_num_queries(10):
        tiers_evaluate_all(program=program, today=TODAY)

    assert PartnerTier.objects.filter(program=program).exclude(tier=ladder[0]).count() == partners


def test_the_tier_goes_down_by_the_ordinary_rule_once_the_paid_year_has_ended(program, ladder, partner, owner):
    bronze, silver, gold = ladder
    company_points(program, partner, 5_000)
    join(program, partner, gold, owner)  # paid until 14 May 2027, no sales

    tier_evaluate(program=program, partner=partner, today=date(2027, 5, 10))  # the year still runs: held to 30 June
    tier_evaluate(program=program, partner=partner, today=date(2027, 5, 20))  # ended, but held until the period ends
    held = PartnerTier.objects.get(program=program, partner=partner)
    assert (held.tier, held.held_until) == (gold, date(2027, 6, 30))

    tier_evaluate(program=program, partner=partner, today=date(2027, 7, 1))

    held.refresh_from_db()
    assert (held.tier, held.since) == (bronze, date(2027, 7, 1))
    change = TierChange.objects.filter(partner=partner).first()
    assert (change.from_tier, change.to_tier) == (gold, bronze)
    assert change.reason.startswith("Downgraded at the end of the period (held until 2027-06-30)")


def test_a_renewed_membership_keeps_the_tier_past_the_first_year(program, ladder, partner, owner):
    company_points(program, partner, 10_000)
    join(program, partner, ladder[2], owner)
    join(program, partner, ladder[2], owner, renews_until=YEAR_END, today=date(2027, 4, 1))

    tier_evaluate(program=program, partner=partner, today=date(2027, 7, 1))

    assert PartnerTier.objects.get(program=program, partner=partner).tier == ladder[2]


def test_the_progress_says_the_tier_is_paid_and_until_when(program, ladder, partner, owner):
    company_points(program, partner, 10_000)
    join(program, partner, ladder[2], owner)
    join(program, partner, ladder[2], owner, renews_until=YEAR_END, today=date(2026, 9, 1))

    progress = tier_progress(program=program, partner=partner, today=date(2026, 9, 1))
    other = tier_progress(program=program, partner=PartnerFactory(), today=date(2026, 9, 1))

    assert (progress.current, progress.is_paid, progress.paid_until) == (ladder[2], True, date(2028, 5, 14))
    assert progress.club_offered
    assert (other.is_paid, other.paid_until) == (False, None)


# Renewal reminders -----------------------------------------------------------------------------------------------


def _reminders() -> list[tuple[int, str]]:
    rows = Delivery.objects.filter(kind=Kind.CLUB_RENEWAL, channel=Channel.INBOX).order_by("pk")
    return list(rows.values_list("member_id", "source_key"))


def test_owners_are_reminded_30_and_7_days_before_the_paid_year_ends_once_each(program, ladder, partner, owner):
    ensure_default_templates(MessageTemplate)  # the texts in English and German
    company_points(program, partner, 5_000)
    term = join(program, partner, ladder[2], owner)
    german = OwnerFactory(partner=partner, language="de")
    MemberFactory(partner=partner)  # staff: not reminded
    OwnerFactory(partner=partner, status=MemberStatus.LEFT)  # left: not reminded

    assert clubs.remind_club_renewals(today=YEAR_END - timedelta(days=31)) == 0
    clubs.remind_club_renewals(today=YEAR_END - timedelta(days=30))
    clubs.remind_club_renewals(today=YEAR_END - timedelta(days=30))
    clubs.remind_club_renewals(today=YEAR_END - timedelta(days=12))
    first = _reminders()
    clubs.remind_club_renewals(today=YEAR_END - timedelta(days=7))
    clubs.remind_club_renewals(today=YEAR_END - timedelta(days=2))

    assert first == [(owner.pk, f"club_renewal:{term.pk}:30"), (german.pk, f"club_renewal:{term.pk}:30")]
    assert _reminders() == [*first, (owner.pk, f"club_renewal:{term.pk}:7"), (german.pk, f"club_renewal:{term.pk}:7")]
    english = Delivery.objects.filter(member=owner, channel=Channel.INBOX).first()
    deutsch = Delivery.objects.filter(member=german, channel=Channel.INBOX).first()
    assert english.subject == "Your Gold membership ends on 14 May 2027"
    assert "Renew it for 5,000 AquaPoints" in english.body
    assert "für 5.000 AquaPoints" in deutsch.body and "14. Mai 2027" in deutsch.subject
    assert english.link.endswith(CLUB)


def test_a_renewed_membership_is_not_reminded_of(program, ladder, partner, owner):
    join(program, partner, ladder[1], owner)
    join(program, partner, ladder[1], owner, renews_until=YEAR_END, today=YEAR_END - timedelta(days=40))

    made = clubs.remind_club_renewals(today=YEAR_END - timedelta(days=7))

    assert made == 0 and not _reminders()
    assert Delivery.objects.count() == 0


def test_the_daily_task_is_scheduled_and_reminds(program, ladder, partner, owner):
    join(program, partner, ladder[1], owner, today=timezone.localdate() - timedelta(days=350))

    assert settings.CELERY_BEAT_SCHEDULE["remind-club-renewals"]["task"] == remind_club_renewals.name
    assert remind_club_renewals() == 1
    assert "€450.00" in Delivery.objects.filter(member=owner).first().body


# The club page ---------------------------------------------------------------------------------------------------


def test_the_owner_sees_the_tiers_to_join_with_fee_and_benefits(client, program, ladder, partner, owner):
    client.force_login(owner.user)

    response = client.get(CLUB)

    text = visible(response)
    assert response.status_code == 200
    assert "Aqua Dealer Ltd’s tier" in text
    assert "Silver €450.00 a year Points bonus ×1.1 on eligible sales Join Silver" in text
    assert "Gold 5,000 AquaPoints a year Points bonus ×1.25 on eligible sales" in text
    assert "Next-day delivery and a dedicated technician Join Gold" in text
    assert "Bronze" not in text.split("Tiers you can join")[1]
    assert "Paid years" not in text


def test_the_owner_joins_after_a_confirmation_that_states_the_charge_and_it_is_paid_once(
    client, program, ladder, partner, owner
):
    gold = ladder[2]
    company_points(program, partner, 12_000)
    client.force_login(owner.user)
    today = timezone.localdate()
    url = reverse("club_join", args=[gold.pk])

    confirm = client.get(url)
    year_end = clubs.year_from(today)
    expected = f"Join Gold until {year_end.day} {year_end:%b %Y} for 5,000 AquaPoints from the company account."
    assert expected in visible(confirm)
    assert "12,000 AquaPoints available" in visible(confirm)
    assert not ClubMembership.objects.exists()  # asking charges nothing

    joined = client.post(url, {"renews_until": ""})
    again = client.post(url, {"renews_until": ""})  # the same form sent again

    assert joined.status_code == 302 and joined.url == CLUB
    assert messages_of(joined) == [
        f"Welcome to Gold: your company's membership runs until {year_end.day} {year_end:%b %Y}."
    ]
    assert messages_of(again)[-1].startswith("Already joined: your company's Gold membership runs until")
    assert len(club_fees()) == 1 and company_balance(program, partner) == 7_000
    page = visible(client.get(CLUB))
    assert f"Gold as a paying member until {year_end.day} {year_end:%b %Y}." in page
    assert "Renew Gold" in page and "Olivia Owner" in page


def test_the_renewal_confirmation_names_the_new_end_date_and_sends_the_end_it_renews(
    client, program, ladder, partner, owner
):
    company_points(program, partner, 12_000)
    first = join(program, partner, ladder[2], owner, today=timezone.localdate())
    client.force_login(owner.user)
    url = reverse("club_join", args=[ladder[2].pk])

    confirm = client.get(url)

    new_end = clubs.year_from(first.ends_on + timedelta(days=1))
    assert f"Renew Gold until {new_end.day} {new_end:%b %Y} for 5,000 AquaPoints from the company account." in visible(
        confirm
    )
    assert f'value="{first.ends_on.isoformat()}"' in confirm.content.decode()
    renewed = client.post(url, {"renews_until": first.ends_on.isoformat()})
    assert messages_of(renewed)[0].startswith("Renewed: your company's Gold membership now runs until")
    assert ClubMembership.objects.get(renews=first).ends_on == new_end


def test_a_member_who_is_not_the_owner_sees_the_status_without_buttons(client, program, ladder, partner, owner):
    join(program, partner, ladder[1], owner, today=timezone.localdate())
    staff = MemberFactory(partner=partner)
    client.force_login(staff.user)

    page = client.get(CLUB)
    confirm = client.get(reverse("club_join", args=[ladder[1].pk]))
    pay = client.post(reverse("club_join", args=[ladder[1].pk]), {"renews_until": ""})

    text = visible(page)
    assert "Silver as a paying member until" in text
    assert "Your company’s owner can join or renew." in text
    assert "Renew Silver" not in text and "Join Gold" not in text
    assert "company account has" not in text
    assert (confirm.status_code, pay.status_code) == (404, 404)
    assert ClubMembership.objects.count() == 1


def test_a_member_of_another_partner_sees_only_their_own_partner(client, program, ladder, partner, owner):
    join(program, partner, ladder[1], owner, today=timezone.localdate())
    stranger = OwnerFactory(partner=PartnerFactory(name="Other Water Co"))
    client.force_login(stranger.user)

    text = visible(client.get(CLUB))

    assert "Other Water Co’s tier" in text
    assert "Aqua Dealer Ltd" not in text and "paying member" not in text and "Paid years" not in text


def test_staff_without_a_partner_and_tiers_that_cannot_be_joined_are_404(
    client, program, ladder, partner, owner, program_manager
):
    client.force_login(owner.user)
    bronze = client.get(reverse("club_join", args=[ladder[0].pk]))
    elsewhere = client.get(reverse("club_join", args=[TierFactory(join_fee_points=10).pk]))
    client.force_login(program_manager)
    staff = client.get(CLUB)

    assert (bronze.status_code, elsewhere.status_code, staff.status_code) == (404, 404, 404)


def test_the_page_says_so_when_the_program_has_no_paid_club(client, program, partner, owner):
    TierFactory(program=program, name="Bronze", rank=0)
    client.force_login(owner.user)

    text = visible(client.get(CLUB))

    assert "No paid club in this program" in text


def test_the_club_page_takes_the_same_queries_for_one_paid_year_or_many(
    client, program, ladder, partner, owner, django_assert_num_queries
):
    start = timezone.localdate() - timedelta(days=366 * 6)
    join(program, partner, ladder[1], owner, today=start)
    client.force_login(owner.user)
    client.get(CLUB)
    # session, user, membership, program, the joinable tiers, the paid years (with their payers), the tier held, the
    # company account, the navigation's balance
    with django_assert_num_queries(9) as one:
        client.get(CLUB)
    latest = ClubMembership.objects.get()
    for _ in range(5):  # five more years, renewed on their last day
        latest = join(program, partner, ladder[1], owner, renews_until=latest.ends_on, today=latest.ends_on)
    with django_assert_num_queries(len(one.captured_queries)):
        response = client.get(CLUB)
    assert visible(response).count("€450.00") == 7  # the offer and six paid years


def test_the_home_tier_card_says_the_tier_is_paid_and_links_the_club(client, program, ladder, partner, owner):
    company_points(program, partner, 5_000)
    joined = join(program, partner, ladder[2], owner, today=timezone.localdate())
    client.force_login(owner.user)

    response = client.get(reverse("home"))

    html = response.content.decode()
    assert f"Gold as a paying member until {joined.ends_on.day} {joined.ends_on:%b %Y}." in visible(response)
    assert f'href="{CLUB}" data-testid="tier-club-link"' in html


# The back office -------------------------------------------------------------------------------------------------

ADMIN_LIST = reverse("admin:loyalty_clubmembership_changelist")
ADMIN_ADD = reverse("admin:loyalty_clubmembership_add")


def test_the_back_office_records_a_membership_after_a_check_and_only_once(pm_client, program_manager, program, ladder):
    partner = PartnerFactory(name="Bank Transfer Ltd")
    form = {"program": program.pk, "partner": partner.pk, "tier": ladder[1].pk, "seen": ""}
    today = timezone.localdate()

    checked = pm_client.post(ADMIN_ADD, form)

    year_end = clubs.year_from(today)
    summary = f"Join Silver until {year_end.day} {year_end:%b %Y} for €450.00, invoiced to the company"
    assert checked.status_code == 200
    assert f"Check, then save again to record it: {summary}." in visible(checked)
    assert 'name="seen" value="none"' in checked.content.decode()
    assert not ClubMembership.objects.exists()

    saved = pm_client.post(ADMIN_ADD, {**form, "seen": "none"})
    again = pm_client.post(ADMIN_ADD, {**form, "seen": "none"}, follow=True)

    assert saved.status_code == 302
    membership = ClubMembership.objects.get()
    assert (membership.recorded_by, membership.fee_money, membership.starts_on) == (
        program_manager,
        Decimal("450.00"),
        today,
    )
    assert messages_of(again)[-1].startswith("Already joined: your company's Silver membership runs until")
    assert ClubMembership.objects.count() == 1
    assert PartnerTier.objects.get(partner=partner).tier == ladder[1]


def test_the_back_office_refuses_a_tier_that_cannot_be_joined_on_the_form(pm_client, program, ladder):
    partner = PartnerFactory()

    response = pm_client.post(ADMIN_ADD, {"program": program.pk, "partner": partner.pk, "tier": ladder[0].pk})

    assert "Bronze cannot be joined for a fee" in visible(response)
    assert not ClubMembership.objects.exists()


def test_the_back_office_list_is_read_only_and_takes_the_same_queries_for_few_or_many(
    pm_client, program, ladder, django_assert_num_queries
):
    paid_row(program, PartnerFactory(), ladder[1], TODAY)
    pm_client.get(ADMIN_LIST)
    with django_assert_num_queries(8) as few:
        pm_client.get(ADMIN_LIST)
    for _ in range(6):
        paid_row(program, PartnerFactory(), ladder[2], TODAY)
    with django_assert_num_queries(len(few.captured_queries)):
        response = pm_client.get(ADMIN_LIST)

    row = ClubMembership.objects.first()
    page = pm_client.get(reverse("admin:loyalty_clubmembership_change", args=[row.pk]))
    assert response.status_code == 200 and page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_the_tier_form_takes_a_yearly_fee_in_points_or_money_not_both(pm_client, program, ladder):
    gold = ladder[2]
    url = reverse("admin:loyalty_tier_change", args=[gold.pk])
    form = {
        "program": program.pk,
        "name": "Gold",
        "rank": 2,
        "threshold": "10000",
        "multiplier": "1.25",
        "service_level": "",
        "join_fee_points": "6000",
        "join_fee_money": "",
    }

    both = pm_client.post(url, {**form, "join_fee_money": "500"})
    points = pm_client.post(url, form)

    assert "yearly fee is in points or in money, not both." in visible(both)
    gold.refresh_from_db()
    assert points.status_code == 302 and (gold.join_fee_points, gold.join_fee_money) == (6000, None)


def test_a_partner_whose_paid_year_runs_past_the_period_end_hears_no_keep_your_tier_warning(program, ladder, partner):
    bronze, silver, gold = ladder
    held_until = TODAY + timedelta(days=10)
    paying, short = partner, PartnerFactory()
    for each in (paying, short):
        OwnerFactory(partner=each)
        PartnerTier.objects.create(
            program=program, partner=each, tier=gold, since=TODAY, held_until=held_until, metric_value=Decimal("100")
        )
    paid_row(program, paying, gold, TODAY - timedelta(days=30))

    warn_tier_keep(today=TODAY)

    told = set(Delivery.objects.filter(kind=Kind.TIER_KEEP).values_list("member__partner_id", flat=True))
    assert told == {short.pk}
