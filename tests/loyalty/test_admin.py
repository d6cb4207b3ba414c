from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty.common.admin import EstimatedCountPaginator
from loyalty.constants import AdjustmentStatus, EntryKind
from loyalty.models import PointsAccount, PointsAdjustment, PointsEntry, Program
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from loyalty.services.adjustments import adjustment_request
from tests.helpers import messages_of
from tests.loyalty.factories import MemberAccountFactory, PartnerAccountFactory, ProgramFactory
from tests.partners.factories import PartnerFactory, ProgramManagerFactory

pytestmark = pytest.mark.django_db

# The most queries each page may make; the same bound holds at 3 rows and at 30.
CHANGELIST_QUERIES = {"program": 6, "pointsaccount": 7, "pointsentry": 8, "pointsadjustment": 7}
CHANGE_PAGE_QUERIES = {"program": 5, "pointsaccount": 6, "pointsentry": 5, "pointsadjustment": 5}
ADD_PAGE_QUERIES = {"pointsadjustment": 4, "program": 4}


@pytest.fixture
def second_manager():
    return ProgramManagerFactory(email="pm2@maker.example")


@pytest.fixture
def program():
    return ProgramFactory(name="Aqua Rewards", adjustment_approval_threshold=5000)


def changelist(model: str) -> str:
    return reverse(f"admin:loyalty_{model}_changelist")


def change(obj) -> str:
    return reverse(f"admin:loyalty_{obj._meta.model_name}_change", args=[obj.pk])


def run_action(client, action: str, objects, **extra):
    data = {"action": action, "_selected_action": [obj.pk for obj in objects], **extra}
    return client.post(changelist("pointsadjustment"), data, follow=True)


def funded_account(program, points=1000, email="ana@dealer.example", partner_name="Dealer Ltd") -> PointsAccount:
    account = MemberAccountFactory(program=program, member__user__email=email, member__partner__name=partner_name)
    if points:
        ledger.earn(account=account, points=points, key=f"seed-{account.pk}", source_type="claim", source_id="C-1")
    return account


def balance(account) -> int:
    account.refresh_from_db()
    return account.available


# Access ---------------------------------------------------------------------------------------------

LEDGER_PAGES = [
    ("admin:loyalty_program_changelist", False),
    ("admin:loyalty_program_add", False),
    ("admin:loyalty_pointsaccount_changelist", False),
    ("admin:loyalty_pointsentry_changelist", False),
    ("admin:loyalty_pointsadjustment_changelist", False),
    ("admin:loyalty_pointsadjustment_add", False),
    ("admin:loyalty_pointsaccount_change", True),
    ("admin:loyalty_pointsentry_change", True),
]


def _url(name: str, needs_object: bool, account: PointsAccount) -> str:
    if not needs_object:
        return reverse(name)
    obj = account if "pointsaccount" in name else account.entries.get()
    return reverse(name, args=[obj.pk])


@pytest.mark.parametrize(("name", "needs_object"), LEDGER_PAGES)
def test_partner_staff_are_sent_to_the_admin_login(partner_staff_client, program, name, needs_object):
    url = _url(name, needs_object, funded_account(program))
    response = partner_staff_client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize(("name", "needs_object"), LEDGER_PAGES)
def test_account_manager_marked_as_staff_by_mistake_is_refused(am_staff_client, program, name, needs_object):
    assert am_staff_client.get(_url(name, needs_object, funded_account(program))).status_code == 403


def test_account_manager_cannot_request_an_adjustment(am_staff_client, program):
    account = funded_account(program)
    response = am_staff_client.post(
        reverse("admin:loyalty_pointsadjustment_add"), {"account": account.pk, "points": "50", "reason": "x"}
    )
    assert response.status_code == 403
    assert not PointsAdjustment.objects.exists()
    assert balance(account) == 1000


# Query counts ---------------------------------------------------------------------------------------


def make_ledger(program, rows: int) -> list[PointsAccount]:
    accounts = []
    for index in range(rows):
        factory = PartnerAccountFactory if index % 2 else MemberAccountFactory
        account = factory(program=program)
        ledger.earn(account=account, points=100, key=f"earn-{index}", source_type="claim", source_id=str(index))
        accounts.append(account)
    return accounts


def make_adjustments(program, rows: int, requested_by) -> None:
    for account in make_ledger(program, rows):
        adjustment_request(account=account, points=-10, reason="Correction", requested_by=requested_by)


@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize("model", ["program", "pointsaccount", "pointsentry", "pointsadjustment"])
def test_changelist_query_count_does_not_grow_with_rows(
    pm_client, program_manager, django_assert_max_num_queries, model, rows
):
    if model == "program":
        ProgramFactory.create_batch(rows)
    elif model == "pointsadjustment":
        make_adjustments(ProgramFactory(), rows, program_manager)
    else:
        make_ledger(ProgramFactory(), rows)
    with django_assert_max_num_queries(CHANGELIST_QUERIES[model]):
        response = pm_client.get(changelist(model))
    assert response.status_code == 200
    assert response.context["cl"].result_count == rows


@pytest.mark.parametrize("rows", [3, 30])
def test_account_page_query_count_does_not_grow_with_entries(pm_client, program, django_assert_max_num_queries, rows):
    account = funded_account(program, points=0)
    for index in range(rows):
        ledger.earn(account=account, points=10, key=f"e-{index}")
    with django_assert_max_num_queries(CHANGE_PAGE_QUERIES["pointsaccount"]):
        response = pm_client.get(change(account))
    assert response.status_code == 200
    assert len(response.context["inline_admin_formsets"][0].formset.forms) == min(rows, 20)


@pytest.mark.parametrize("rows", [3, 30])
def test_entry_adjustment_and_program_pages_cost_a_fixed_number_of_queries(
    pm_client, program, program_manager, django_assert_max_num_queries, rows
):
    accounts = make_ledger(program, rows)
    adjustment = adjustment_request(account=accounts[0], points=-10, reason="Fix", requested_by=program_manager)
    reversal = ledger.reverse(entry=accounts[0].entries.order_by("pk").first(), key="undo", points=5)
    pages = {
        "pointsentry": change(reversal),
        "pointsadjustment": change(adjustment),
        "program": change(program),
    }
    for model, url in pages.items():
        with django_assert_max_num_queries(CHANGE_PAGE_QUERIES[model]):
            response = pm_client.get(url)
        assert response.status_code == 200, model
    for model, bound in ADD_PAGE_QUERIES.items():
        with django_assert_max_num_queries(bound):
            assert pm_client.get(reverse(f"admin:loyalty_{model}_add")).status_code == 200


# Programs -------------------------------------------------------------------------------------------


def program_data(**overrides) -> dict:
    data = {
        "name": "Pro Installer Club",
        "slug": "pro-installer-club",
        "is_active": "on",
        "currency_name": "AquaPoints",
        "point_value": "0.0100",
        "money_currency": "eur",
        "expiry_months": "24",
        "expiry_notice_days": "30",
        "starts_on": "2026-01-01",
        "ends_on": "",
        "enrolment_mode": "invite_only",
        "leaver_policy": "transfer",
        "member_share_percent": "100",
        "adjustment_approval_threshold": "5000",
        "order_approval_threshold": "20000",
        "tier_metric": "sales_amount",
        "tier_window_days": "365",
        "tier_period": "quarter",
        "claim_window_days": "60",
        "claim_auto_approve_below": "500.00",
        "claim_max_quantity": "10000",
        "claim_max_amount": "1000000.00",
    }
    return {**data, **overrides}


def test_program_list_shows_currency_value_expiry_and_policy(pm_client):
    ProgramFactory(name="Aqua Rewards", currency_name="AquaPoints", expiry_months=None)
    response = pm_client.get(changelist("program"))
    assert '<td class="field-currency_name">AquaPoints</td>' in response.text
    assert '<td class="field-point_value_shown">€0.01</td>' in response.text
    assert '<td class="field-expiry">Never</td>' in response.text
    assert '<td class="field-leaver_policy">The points move to the partner&#x27;s company account</td>' in response.text


def test_adding_a_program_sets_its_thresholds(pm_client):
    response = pm_client.post(reverse("admin:loyalty_program_add"), program_data())
    assert response.status_code == 302
    program = Program.objects.get(slug="pro-installer-club")
    assert (program.money_currency, program.adjustment_approval_threshold, program.order_approval_threshold) == (
        "EUR",
        5000,
        20000,
    )


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        ({"ends_on": "2025-12-31"}, {"ends_on": ["The program cannot end before it starts."]}),
        ({"money_currency": "E1"}, {"money_currency": ["Use a three-letter currency code, such as EUR."]}),
        (
            {"member_share_percent": "101"},
            {"member_share_percent": ["Ensure this value is less than or equal to 100."]},
        ),
        ({"point_value": "-1"}, {"point_value": ["Ensure this value is greater than or equal to 0."]}),
    ],
)
def test_a_bad_program_is_refused_with_a_clear_message(pm_client, overrides, errors):
    response = pm_client.post(reverse("admin:loyalty_program_add"), program_data(**overrides))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    assert not Program.objects.exists()


def test_a_program_is_never_deleted(pm_client, program):
    assert pm_client.get(reverse("admin:loyalty_program_delete", args=[program.pk])).status_code == 403
    assert Program.objects.filter(pk=program.pk).exists()


# Accounts -------------------------------------------------------------------------------------------


def test_account_list_names_each_holder_and_links_to_its_entries(pm_client, program):
    member_account = funded_account(program)
    company = PartnerAccountFactory(program=program, partner__name="Aqua Pure GmbH")
    response = pm_client.get(changelist("pointsaccount"))
    assert [row.pk for row in response.context["cl"].result_list] == [company.pk, member_account.pk]
    assert '<th class="field-holder"><a href="' in response.text
    assert "ana@dealer.example (Dealer Ltd)</a>" in response.text
    assert "Aqua Pure GmbH (company account)</a>" in response.text
    entries = f"{changelist('pointsentry')}?account__id__exact={member_account.pk}"
    assert f'<a href="{entries}">Entries</a>' in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?q=ana@dealer", ["member"]),
        ("?q=VAT-777", ["company"]),
        ("?q=aqua pure", ["company"]),
        ("?holder=company", ["company"]),
        ("?holder=member", ["member"]),
    ],
)
def test_account_search_and_holder_filter(pm_client, program, query, expected):
    accounts = {
        "member": funded_account(program),
        "company": PartnerAccountFactory(program=program, partner__name="Aqua Pure GmbH", partner__legal_id="VAT-777"),
    }
    response = pm_client.get(changelist("pointsaccount") + query)
    assert [row.pk for row in response.context["cl"].result_list] == [accounts[name].pk for name in expected]


def test_account_page_is_read_only_and_offers_entries_and_an_adjustment(pm_client, program):
    account = funded_account(program)
    response = pm_client.get(change(account))
    assert response.context["has_change_permission"] is False
    assert 'name="_save"' not in response.text
    assert f'href="{reverse("admin:loyalty_pointsadjustment_add")}?account={account.pk}"' in response.text
    assert f'href="{changelist("pointsentry")}?account__id__exact={account.pk}"' in response.text
    assert response.context["inline_admin_formsets"][0].formset.forms[0].instance == account.entries.get()


def test_balances_cannot_be_edited_or_deleted(pm_client, program):
    account = funded_account(program)
    edit = pm_client.post(change(account), {"available": "999999"})
    delete = pm_client.post(reverse("admin:loyalty_pointsaccount_delete", args=[account.pk]), {"post": "yes"})
    add = pm_client.get(reverse("admin:loyalty_pointsaccount_add"))
    assert (edit.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    assert balance(account) == 1000


# Entries --------------------------------------------------------------------------------------------


# An order number no other entry's source id can reach in a test run.
ORDER = "987654"


@pytest.fixture
def entries(program, program_manager) -> dict[str, PointsEntry]:
    """Ana's earn (a claim), spend (an order) and manual adjustment; Ben's earn without a source."""
    ana = funded_account(program)
    ledger.spend(account=ana, points=300, key=f"order:{ORDER}", source_type="order", source_id=ORDER)
    adjustment_request(account=ana, points=20, reason="Goodwill", requested_by=program_manager)
    ben = funded_account(program, points=0, email="ben@other.example", partner_name="Other Ltd")
    ledger.earn(account=ben, points=5, key="legacy-1")
    by_kind = {entry.source_type or "none": entry for entry in PointsEntry.objects.all()}
    assert len(by_kind) == 4
    return by_kind


def keys(response) -> list[str]:
    return [entry.idempotency_key for entry in response.context["cl"].result_list]


def test_entry_list_is_newest_first_with_holder_and_source(pm_client, entries):
    response = pm_client.get(changelist("pointsentry"))
    assert list(response.context["cl"].result_list) == [
        entries["none"],
        entries["adjustment"],
        entries["order"],
        entries["claim"],
    ]
    assert f'<td class="field-source">order {ORDER}</td>' in response.text
    assert '<td class="field-holder">ana@dealer.example (Dealer Ltd)</td>' in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?kind__exact=spend", ["order"]),
        ("?source_type=order", ["order"]),
        ("?source_type=adjustment", ["adjustment"]),
        ("?source_type=(none)", ["none"]),
        (f"?q=order:{ORDER}", ["order"]),
        (f"?q={ORDER}", ["order"]),
        ("?q=BEN@other.example", ["none"]),
        ("?q=ben@other", []),  # exact e-mails only: the table is too big for a partial match
    ],
)
def test_entry_filters_and_search(pm_client, entries, query, expected):
    response = pm_client.get(changelist("pointsentry") + query)
    assert list(response.context["cl"].result_list) == [entries[name] for name in expected]


def test_source_filter_lists_the_source_types_in_the_table(pm_client, entries):
    response = pm_client.get(changelist("pointsentry"))
    source_filter = next(
        spec for spec in response.context["cl"].filter_specs if getattr(spec, "parameter_name", "") == "source_type"
    )
    assert source_filter.lookup_choices == [
        ("(none)", "No source"),
        ("adjustment", "Manual adjustments"),
        ("claim", "claim"),
        ("order", "Reward orders"),
    ]


def test_entry_date_filter_and_program_filter(pm_client, entries, program):
    other = funded_account(ProgramFactory(), email="cy@else.example", partner_name="Else Ltd")
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + timedelta(days=1)
    # The "Today" link of the date filter.
    todays = pm_client.get(changelist("pointsentry"), {"created_at__gte": str(today), "created_at__lt": str(tomorrow)})
    assert todays.context["cl"].result_count == 5
    later = pm_client.get(changelist("pointsentry"), {"created_at__gte": str(tomorrow)})
    assert keys(later) == []
    by_program = pm_client.get(changelist("pointsentry") + f"?account__program__id__exact={other.program_id}")
    assert keys(by_program) == [f"seed-{other.pk}"]


def test_entries_are_read_only(pm_client, entries):
    entry = entries["order"]
    page = pm_client.get(change(entry))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert pm_client.get(reverse("admin:loyalty_pointsentry_add")).status_code == 403
    assert pm_client.post(change(entry), {"explanation": "changed"}).status_code == 403
    assert (
        pm_client.post(reverse("admin:loyalty_pointsentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    )
    entry.refresh_from_db()
    assert entry.explanation == ""


def test_entry_list_does_not_count_the_whole_table(pm_client, entries):
    with CaptureQueriesContext(connection) as queries:
        pm_client.get(changelist("pointsentry"))
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1  # the exact count of a small table; show_full_result_count adds no second one
    assert pm_client.get(changelist("pointsentry")).context["cl"].show_full_result_count is False


def test_paginator_uses_the_statistics_of_a_big_table_when_unfiltered(entries):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE loyalty_pointsentry")

    class Small(EstimatedCountPaginator):
        exact_below = 1  # pretend the table is big

    with CaptureQueriesContext(connection) as queries:
        estimated = Small(PointsEntry.objects.order_by("-id"), 100).count
    assert estimated == 4
    assert ["COUNT(" in q["sql"].upper() for q in queries.captured_queries] == [False]
    # A filtered list is counted exactly.
    assert Small(PointsEntry.objects.filter(kind=EntryKind.SPEND).order_by("-id"), 100).count == 1


def test_paginator_counts_exactly_below_the_threshold(entries):
    with CaptureQueriesContext(connection) as queries:
        assert EstimatedCountPaginator(PointsEntry.objects.order_by("-id"), 100).count == 4
    assert len(queries.captured_queries) == 2  # the statistics, then COUNT(*)


# Adjustments ----------------------------------------------------------------------------------------


def request_adjustment(client, account, points, reason="Goodwill after a faulty delivery"):
    return client.post(
        reverse("admin:loyalty_pointsadjustment_add"),
        {"account": account.pk, "points": str(points), "reason": reason},
        follow=True,
    )


def test_a_small_adjustment_posts_at_once(pm_client, program, program_manager):
    account = funded_account(program)
    response = request_adjustment(pm_client, account, 250)
    assert messages_of(response) == ["Posted +250 points on ana@dealer.example (Dealer Ltd)."]
    adjustment = PointsAdjustment.objects.get()
    assert (adjustment.status, adjustment.requested_by, adjustment.decided_by) == (
        AdjustmentStatus.POSTED,
        program_manager,
        program_manager,
    )
    assert adjustment.entry.explanation == "Goodwill after a faulty delivery"
    assert balance(account) == 1250
    assert ledger_problems() == []


def test_four_eyes_a_large_adjustment_waits_for_a_second_program_manager(
    client, program, program_manager, second_manager
):
    account = funded_account(program)
    client.force_login(program_manager)

    requested = request_adjustment(client, account, 6000)

    assert messages_of(requested) == [
        "+6,000 points on ana@dealer.example (Dealer Ltd) waits for a second program manager: it is above the "
        "program's threshold of 5,000 points."
    ]
    adjustment = PointsAdjustment.objects.get()
    assert (adjustment.status, adjustment.entry) == (AdjustmentStatus.PENDING_APPROVAL, None)
    assert balance(account) == 1000

    own = run_action(client, "approve", [adjustment])

    assert messages_of(own) == [
        "+6,000 points on ana@dealer.example (Dealer Ltd): A second program manager must approve this adjustment, "
        "not its requester."
    ]
    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.PENDING_APPROVAL
    assert balance(account) == 1000

    client.force_login(second_manager)
    approved = run_action(client, "approve", [adjustment])

    assert messages_of(approved) == [
        "Approved and posted 1 adjustment: +6,000 points on ana@dealer.example (Dealer Ltd)."
    ]
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.decided_by, adjustment.requested_by) == (
        AdjustmentStatus.POSTED,
        second_manager,
        program_manager,
    )
    assert adjustment.entry.available_delta == 6000
    assert balance(account) == 7000
    assert ledger_problems() == []


def test_approving_an_adjustment_already_posted_is_refused_and_others_still_post(
    client, program, program_manager, second_manager
):
    ana = funded_account(program)
    ben = funded_account(program, email="ben@dealer.example")
    posted = adjustment_request(account=ana, points=10, reason="Small", requested_by=program_manager)
    waiting = adjustment_request(account=ben, points=9000, reason="Big", requested_by=program_manager)
    client.force_login(second_manager)

    response = run_action(client, "approve", [posted, waiting])

    assert messages_of(response) == [
        "+10 points on ana@dealer.example (Dealer Ltd): This adjustment is already posted.",
        "Approved and posted 1 adjustment: +9,000 points on ben@dealer.example (Dealer Ltd).",
    ]
    assert (balance(ana), balance(ben)) == (1010, 10_000)


def test_reject_first_asks_for_a_reason(pm_client, program, program_manager):
    adjustment = adjustment_request(
        account=funded_account(program), points=8000, reason="Big", requested_by=program_manager
    )
    response = run_action(pm_client, "reject", [adjustment])
    assert response.templates[0].name == "admin/loyalty/action_form.html"
    assert "+8,000 points on ana@dealer.example (Dealer Ltd)" in response.text
    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.PENDING_APPROVAL


def test_reject_without_a_reason_changes_nothing(pm_client, program, program_manager):
    adjustment = adjustment_request(
        account=funded_account(program), points=8000, reason="Big", requested_by=program_manager
    )
    response = run_action(pm_client, "reject", [adjustment], apply="Reject", reason="   ")
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    adjustment.refresh_from_db()
    assert adjustment.status == AdjustmentStatus.PENDING_APPROVAL


def test_reject_with_a_reason_records_who_and_why_and_posts_nothing(pm_client, program, program_manager):
    account = funded_account(program)
    adjustment = adjustment_request(account=account, points=8000, reason="Big", requested_by=program_manager)
    response = run_action(pm_client, "reject", [adjustment], apply="Reject", reason="No invoice attached")
    assert messages_of(response) == ["Rejected 1 adjustment: +8,000 points on ana@dealer.example (Dealer Ltd)."]
    adjustment.refresh_from_db()
    assert (adjustment.status, adjustment.decided_by, adjustment.rejection_reason, adjustment.entry) == (
        AdjustmentStatus.REJECTED,
        program_manager,
        "No invoice attached",
        None,
    )
    assert balance(account) == 1000


@pytest.mark.parametrize(
    ("points", "reason", "errors"),
    [
        ("-5000", "Clawback", {"points": ["Not enough points: 1,000 available, 5,000 needed."]}),
        # Above the threshold it would wait for an approval that could never post.
        ("-9000", "Clawback", {"points": ["Not enough points: 1,000 available, 9,000 needed."]}),
        ("0", "Nothing", {"points": ["An adjustment must be a whole number of points other than zero."]}),
        ("1.5", "Half", {"points": ["Enter a whole number."]}),
        ("100", "   ", {"reason": ["This field is required."]}),
    ],
)
def test_a_refused_adjustment_is_a_form_error_and_changes_nothing(pm_client, program, points, reason, errors):
    account = funded_account(program)
    response = request_adjustment(pm_client, account, points, reason=reason)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    assert not PointsAdjustment.objects.exists()
    assert PointsEntry.objects.count() == 1
    assert balance(account) == 1000


def test_adjustment_list_filters_by_status(pm_client, program, program_manager):
    account = funded_account(program)
    adjustment_request(account=account, points=10, reason="Small", requested_by=program_manager)
    waiting = adjustment_request(account=account, points=9000, reason="Big", requested_by=program_manager)
    response = pm_client.get(changelist("pointsadjustment") + "?status__exact=pending_approval")
    assert list(response.context["cl"].result_list) == [waiting]


def test_adjustments_are_never_edited_or_deleted(pm_client, program, program_manager):
    adjustment = adjustment_request(
        account=funded_account(program), points=9000, reason="Big", requested_by=program_manager
    )
    assert pm_client.post(change(adjustment), {"points": "1"}).status_code == 403
    delete = reverse("admin:loyalty_pointsadjustment_delete", args=[adjustment.pk])
    assert pm_client.post(delete, {"post": "yes"}).status_code == 403
    adjustment.refresh_from_db()
    assert (adjustment.points, adjustment.status) == (9000, AdjustmentStatus.PENDING_APPROVAL)


def test_account_autocomplete_finds_accounts_by_email(pm_client, program):
    account = funded_account(program)
    PartnerAccountFactory(program=program, partner=PartnerFactory(name="Elsewhere"))
    response = pm_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "loyalty", "model_name": "pointsadjustment", "field_name": "account", "term": "ana@"},
    )
    assert [row["id"] for row in response.json()["results"]] == [str(account.pk)]
