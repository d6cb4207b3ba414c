"""The back office for products, product lines and tiers: access, the catalogue import page, the tier ladder
checks, the read-only tier lists with their filters and action, and query counts that do not grow with rows."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from loyalty.constants import TierMetric
from loyalty.models import PartnerTier, Product, ProductLine, SaleLine, SalesSource, Tier, TierChange
from loyalty.services.tiers import tier_evaluate, tiers_evaluate_all
from tests.helpers import messages_of
from tests.loyalty.factories import ProductFactory, ProductLineFactory, ProgramFactory, TierFactory
from tests.partners.factories import PartnerFactory

pytestmark = pytest.mark.django_db

HEADER = "sku,name,line,launch_date,active\n"

# The most queries each list may make; the same bound holds at 3 rows and at 30.
CHANGELIST_QUERIES = {"productline": 6, "product": 7, "tier": 7, "partnertier": 8, "tierchange": 8}


@pytest.fixture
def program():
    return ProgramFactory(name="Aqua Rewards", tier_metric=TierMetric.SALES_AMOUNT, money_currency="EUR")


@pytest.fixture
def ladder(program):
    return (
        TierFactory(program=program, name="Bronze", rank=0, threshold=Decimal("0")),
        TierFactory(program=program, name="Silver", rank=1, threshold=Decimal("5000")),
        TierFactory(program=program, name="Gold", rank=2, threshold=Decimal("10000")),
    )


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:loyalty_{model}_{view}", args=args)


def csv_file(text: str, name: str = "catalogue.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def sale(program, partner, amount: str, day: date | None = None) -> SaleLine:
    source = SalesSource.objects.get_or_create(program=program, code="erp", defaults={"name": "ERP"})[0]
    return SaleLine.objects.create(
        source=source,
        external_id=f"{partner.pk}-{SaleLine.objects.count()}",
        partner=partner,
        product=ProductFactory(),
        quantity=Decimal("1"),
        paid_quantity=Decimal("1"),  # a sale no other source reported: it paid (and counts for tiers) in full
        amount=Decimal(amount),
        invoice_date=day or timezone.localdate(),
    )


# Access ---------------------------------------------------------------------------------------------

PAGES = [
    "admin:loyalty_productline_changelist",
    "admin:loyalty_product_changelist",
    "admin:loyalty_product_import",
    "admin:loyalty_tier_changelist",
    "admin:loyalty_tier_add",
    "admin:loyalty_partnertier_changelist",
    "admin:loyalty_tierchange_changelist",
]


@pytest.mark.parametrize("name", PAGES)
def test_partner_staff_are_sent_to_the_admin_login(partner_staff_client, name):
    response = partner_staff_client.get(reverse(name))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("name", PAGES)
def test_an_account_manager_marked_as_staff_by_mistake_is_refused(am_staff_client, name):
    assert am_staff_client.get(reverse(name)).status_code == 403


def test_an_account_manager_cannot_import_products(am_staff_client):
    response = am_staff_client.post(
        url("product", "import"), {"file": csv_file(HEADER + "AQ-1,AquaSoft,softeners,,\n")}
    )

    assert response.status_code == 403
    assert not Product.objects.exists()


# Products -------------------------------------------------------------------------------------------


def test_the_product_list_links_the_import_page(pm_client):
    html = pm_client.get(url("product")).content.decode()

    assert f'<a href="{url("product", "import")}">Import products from CSV</a>' in html


def test_importing_a_good_file_creates_the_products_and_says_what_changed(pm_client):
    ProductLineFactory(code="softeners", name="Water softeners")
    ProductFactory(sku="AQ-1", name="Old name", line=ProductLine.objects.get(code="softeners"))
    text = HEADER + "AQ-1,AquaSoft 1,softeners,,\nAQ-2,AquaSoft 2,softeners,,\nRO-1,PureFlow,Reverse osmosis,,no\n"

    response = pm_client.post(url("product", "import"), {"file": csv_file(text)})

    assert response.status_code == 302 and response["Location"] == url("product")
    assert messages_of(response) == [
        "Products imported: 2 created, 1 updated, 0 unchanged; a new product line: Reverse osmosis."
    ]
    assert sorted(Product.objects.values_list("sku", "name")) == [
        ("AQ-1", "AquaSoft 1"),
        ("AQ-2", "AquaSoft 2"),
        ("RO-1", "PureFlow"),
    ]


def test_importing_a_file_with_bad_rows_lists_every_problem_and_writes_nothing(pm_client):
    text = HEADER + "AQ-1,AquaSoft 1,softeners,,\n,No SKU,softeners,,\nAQ-3,Bad date,softeners,2026-13-01,\n"

    response = pm_client.post(url("product", "import"), {"file": csv_file(text)})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was imported: 2 problems in the file." in html
    assert '<tr><td>3</td><td>sku</td><td class="value">—</td><td>is required</td></tr>' in html
    assert (
        '<tr><td>4</td><td>launch_date</td><td class="value">2026-13-01</td><td>is not a valid date</td></tr>' in html
    )
    assert not Product.objects.exists() and not ProductLine.objects.exists()


def test_checking_a_file_only_shows_what_would_change(pm_client):
    text = HEADER + "AQ-1,AquaSoft 1,Softeners,,\n"

    response = pm_client.post(url("product", "import"), {"file": csv_file(text), "dry_run": "on"})

    assert response.status_code == 200
    assert (
        "The file is fine (1 row): 1 to create, 0 to update, 0 unchanged; a new product line to create: Softeners."
        in response.content.decode()
    )
    assert not Product.objects.exists() and not ProductLine.objects.exists()


def test_a_file_without_the_required_columns_is_an_error_on_the_file_field(pm_client):
    response = pm_client.post(url("product", "import"), {"file": csv_file("code;title\nA;B\n")})

    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        "The file has no sku, name, line columns. The first line must name the columns: sku, name, line, "
        "launch_date, active (found: code, title)."
    ]


def test_products_are_edited_with_the_line_chosen_by_autocomplete(pm_client):
    line = ProductLineFactory(code="filters", name="Filters")

    response = pm_client.post(
        url("product", "add"),
        {"sku": "F-1", "name": "Cartridge", "line": line.pk, "launch_date": "2026-01-05", "is_active": "on"},
    )

    assert response.status_code == 302
    assert Product.objects.get(sku="F-1").line == line
    search = pm_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "loyalty", "model_name": "product", "field_name": "line", "term": "filt"},
    )
    assert [row["text"] for row in search.json()["results"]] == ["Filters"]


# Tiers ----------------------------------------------------------------------------------------------


def tier_data(program, **overrides) -> dict:
    return {
        "program": program.pk,
        "name": "Platinum",
        "rank": "3",
        "threshold": "20000",
        "multiplier": "1.50",
        "service_level": "",
        **overrides,
    }


def test_a_tier_above_the_ladder_is_added(pm_client, program, ladder):
    response = pm_client.post(url("tier", "add"), tier_data(program))

    assert response.status_code == 302
    assert list(Tier.objects.filter(program=program).values_list("name", flat=True)) == [
        "Bronze",
        "Silver",
        "Gold",
        "Platinum",
    ]


def test_a_higher_rank_needing_no_more_than_the_one_below_is_refused(pm_client, program, ladder):
    response = pm_client.post(url("tier", "add"), tier_data(program, rank="3", threshold="10000"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["threshold"] == [
        "Must be more than the €10,000.00 of Gold (rank 2): a higher rank needs more."
    ]
    assert Tier.objects.filter(program=program).count() == 3


def test_a_lower_rank_needing_as_much_as_the_one_above_is_refused(pm_client, program, ladder):
    silver = ladder[1]

    response = pm_client.post(
        url("tier", "change", silver.pk), tier_data(program, name="Silver", rank="1", threshold="10000")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["threshold"] == [
        "Must be less than the €10,000.00 of Gold (rank 2): a lower rank needs less."
    ]
    silver.refresh_from_db()
    assert silver.threshold == Decimal("5000")


def test_the_lowest_tier_must_be_free_to_reach(pm_client, program):
    response = pm_client.post(url("tier", "add"), tier_data(program, name="Silver", rank="1", threshold="5000"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["threshold"] == [
        "This would be the lowest tier, which every partner starts in: its threshold must be 0. "
        "Create the entry tier (rank 0, threshold 0) first."
    ]
    assert not Tier.objects.exists()


def test_the_same_rank_twice_in_a_program_is_refused(pm_client, program, ladder):
    response = pm_client.post(url("tier", "add"), tier_data(program, rank="2", threshold="15000"))

    assert response.status_code == 200
    assert "Tier with this Program and Rank already exists." in str(response.context["adminform"].form.errors)


def test_the_tier_list_shows_thresholds_in_the_metric_unit_and_counts_partners(pm_client, program, ladder):
    points = ProgramFactory(name="Installer Club", tier_metric=TierMetric.POINTS_EARNED, currency_name="AquaPoints")
    TierFactory(program=points, name="Member", rank=0, threshold=0)
    TierFactory(program=points, name="Elite", rank=1, threshold=Decimal("2500"))
    for partner in PartnerFactory.create_batch(2):
        sale(program, partner, "6000.00")
        tier_evaluate(program=program, partner=partner)

    response = pm_client.get(url("tier"))

    rows = {row.name: (row.partner_count, row) for row in response.context["cl"].result_list}
    assert rows["Silver"][0] == 2 and rows["Bronze"][0] == 0
    html = response.content.decode()
    assert '<td class="field-threshold_shown">€5,000.00</td>' in html
    assert '<td class="field-threshold_shown">2,500 AquaPoints</td>' in html


# Partner tiers and their history --------------------------------------------------------------------


def test_partner_tiers_are_read_only(pm_client, program, ladder):
    partner = PartnerFactory()
    row = tier_evaluate(program=program, partner=partner)

    assert pm_client.get(url("partnertier", "add")).status_code == 403
    response = pm_client.post(url("partnertier", "change", row.pk), {"tier": ladder[2].pk})
    assert response.status_code == 403
    assert PartnerTier.objects.get(pk=row.pk).tier == ladder[0]
    change = TierChange.objects.get()
    assert pm_client.post(url("tierchange", "delete", change.pk), {"post": "yes"}).status_code == 403
    assert TierChange.objects.count() == 1


def test_re_evaluating_selected_partners_upgrades_them_at_once(pm_client, program, ladder):
    partner = PartnerFactory(name="Aqua Dealer Ltd")
    row = tier_evaluate(program=program, partner=partner)
    sale(program, partner, "12000.00")

    response = pm_client.post(url("partnertier"), {"action": "evaluate", "_selected_action": [row.pk]}, follow=True)

    assert messages_of(response) == ["Re-evaluated 1 partner: Aqua Dealer Ltd."]
    assert PartnerTier.objects.get(pk=row.pk).tier.name == "Gold"


def test_partner_tiers_filter_by_tier_named_with_its_program(pm_client, program, ladder):
    other = ProgramFactory(name="Installer Club")
    TierFactory(program=other, name="Gold", rank=0)
    gold, silver = PartnerFactory(), PartnerFactory()
    sale(program, gold, "10000.00")
    sale(program, silver, "5000.00")
    for partner in (gold, silver):
        tier_evaluate(program=program, partner=partner)

    response = pm_client.get(url("partnertier"), {"tier__id__exact": ladder[2].pk})

    assert [row.partner for row in response.context["cl"].result_list] == [gold]
    html = response.content.decode()
    assert "Gold (Aqua Rewards)" in html and "Gold (Installer Club)" in html


@pytest.mark.parametrize(("move", "expected"), [("first", ["Bronze"]), ("up", ["Gold"]), ("down", ["Silver"])])
def test_the_history_filters_by_kind_of_move(pm_client, program, ladder, move, expected):
    partner = PartnerFactory()
    today = timezone.localdate()
    tier_evaluate(program=program, partner=partner, today=today)  # first: Bronze
    sale(program, partner, "10000.00", day=today)
    tier_evaluate(program=program, partner=partner, today=today)  # up: Gold
    sale(program, partner, "-4000.00", day=today)
    row = PartnerTier.objects.get(partner=partner)
    tier_evaluate(program=program, partner=partner, today=row.held_until + timedelta(days=1))  # down: Silver

    response = pm_client.get(url("tierchange"), {"move": move})

    assert [change.to_tier.name for change in response.context["cl"].result_list] == expected


# Query counts ---------------------------------------------------------------------------------------


def make_rows(model: str, program, rows: int) -> None:
    if model == "productline":
        for line in ProductLineFactory.create_batch(rows):
            ProductFactory(line=line)
    elif model == "product":
        ProductFactory.create_batch(rows)
    elif model == "tier":
        for rank in range(rows):
            TierFactory(program=program, rank=rank, threshold=Decimal(rank * 1000))
    else:
        TierFactory(program=program, name="Bronze", rank=0)
        TierFactory(program=program, name="Silver", rank=1, threshold=Decimal("1000"))
        for partner in PartnerFactory.create_batch(rows):
            sale(program, partner, "2000.00")
        tiers_evaluate_all(program=program)


@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize("model", list(CHANGELIST_QUERIES))
def test_changelist_query_count_does_not_grow_with_rows(pm_client, program, django_assert_max_num_queries, model, rows):
    make_rows(model, program, rows)

    with django_assert_max_num_queries(CHANGELIST_QUERIES[model]):
        response = pm_client.get(url(model))

    assert response.status_code == 200
    assert response.context["cl"].result_count == rows


def test_product_tier_and_history_pages_cost_a_fixed_number_of_queries(
    pm_client, program, ladder, django_assert_max_num_queries
):
    product = ProductFactory()
    partner = PartnerFactory()
    row = tier_evaluate(program=program, partner=partner)
    pages = {
        url("product", "change", product.pk): 6,
        url("tier", "change", ladder[1].pk): 6,
        url("partnertier", "change", row.pk): 5,
        url("tierchange", "change", TierChange.objects.get().pk): 5,
        url("product", "import"): 3,
        url("tier", "add"): 4,
    }
    for page, bound in pages.items():
        with django_assert_max_num_queries(bound):
            assert pm_client.get(page).status_code == 200, page


def test_tiers_and_product_lines_cannot_be_deleted_because_rules_may_be_limited_to_them(pm_client, program, ladder):
    line = ProductLineFactory()

    assert pm_client.post(url("tier", "delete", ladder[2].pk), {"post": "yes"}).status_code == 403
    assert pm_client.post(url("productline", "delete", line.pk), {"post": "yes"}).status_code == 403
    assert Tier.objects.filter(pk=ladder[2].pk).exists() and ProductLine.objects.filter(pk=line.pk).exists()
