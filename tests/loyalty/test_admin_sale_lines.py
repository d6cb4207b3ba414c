"""The back office's sale lines: a read-only list that costs no scan of the (huge) table, whatever its size, and each
line's page saying what it paid and why; the link from an import to its lines."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.admin.sale_lines import SaleLinePaginator
from loyalty.models import SaleLine, SalesSource
from tests.loyalty.test_imports import MAPPING, World
from tests.partners.factories import MemberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

LINES = reverse("admin:loyalty_saleline_changelist")
IMPORTS = reverse("admin:loyalty_salesimport_changelist")
# The most queries each page may make; the list's bound holds at 3 lines and at 30.
CHANGELIST_QUERIES = 8
CHANGE_PAGE_QUERIES = 5


@pytest.fixture
def world():
    return World()


@pytest.fixture
def pm_client(client, world):
    client.force_login(world.user)  # World's uploader is a program manager
    return client


def ids(response) -> list[str]:
    return [line.external_id for line in response.context["cl"].result_list]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def page(line: SaleLine) -> str:
    return reverse("admin:loyalty_saleline_change", args=[line.pk])


def shared_with_the_company(world) -> None:
    """The rep gets 60 % of each line's points, the partner's company account the rest."""
    world.rule.shares = [{"role": "sales", "percent": 60}]
    world.rule.save()


# The list ---------------------------------------------------------------------------------------------------------


def test_a_program_manager_sees_the_lines_newest_first(pm_client, world):
    world.run([world.line("L1"), world.line("L2", qty="3", amount="30.00", invoice="INV-7")])
    response = pm_client.get(LINES)
    assert response.status_code == 200
    assert ids(response) == ["L2", "L1"]
    body = text(response)
    partner_link = f"{LINES}?partner__id__exact={world.partner.pk}"
    assert f'<td class="field-partner_link"><a href="{partner_link}" title="Only the lines of this partner">' in body
    assert f'<td class="field-member_email">{world.member.user.email}</td>' in body
    assert '<td class="field-sku">AQ-1</td>' in body
    assert '<td class="field-invoice_number">INV-7</td>' in body
    assert '<td class="field-points">30</td>' in body


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_costs_the_same_few_queries_at_any_size(pm_client, world, django_assert_max_num_queries, rows):
    other = MemberFactory(partner=world.partner)  # lines of two members, to join
    world.run([world.line(f"L{n}", rep=f"M{other.pk}" if n % 2 else None) for n in range(rows)])
    with django_assert_max_num_queries(CHANGELIST_QUERIES):
        response = pm_client.get(LINES)
    assert len(ids(response)) == rows


def test_the_list_counts_once_and_never_the_whole_table_again(pm_client, world):
    world.run([world.line("L1")])
    with CaptureQueriesContext(connection) as queries:
        response = pm_client.get(LINES)
    assert response.context["cl"].show_full_result_count is False
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1  # the exact count of a small table; the statistics stand in for a big one


def test_a_filtered_list_the_planner_expects_to_be_big_is_not_counted(pm_client, world, monkeypatch):
    sales_import = world.run([world.line("L1"), world.line("L2")])
    monkeypatch.setattr(SaleLinePaginator, "exact_below", 1)  # as if the import had millions of lines
    with CaptureQueriesContext(connection) as queries:
        response = pm_client.get(LINES, {"sales_import__id__exact": sales_import.pk})
    assert ids(response) == ["L2", "L1"]
    assert [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()] == []
    assert any(q["sql"].startswith("EXPLAIN (FORMAT JSON)") for q in queries.captured_queries)


def test_the_list_is_filtered_by_import_and_the_filter_offers_the_latest_imports(pm_client, world):
    first = world.run([world.line("L1"), world.line("L2")])
    second = world.run([world.line("L3")])
    response = pm_client.get(LINES, {"sales_import__id__exact": first.pk})
    assert ids(response) == ["L2", "L1"]
    [import_filter] = [spec for spec in response.context["cl"].filter_specs if spec.title == "import"]
    assert [value for value, _ in import_filter.lookup_choices] == [str(second.pk), str(first.pk)]
    assert import_filter.lookup_choices[1][1].startswith("Distributor feed: sales.csv, ")


def test_the_list_is_filtered_by_source(pm_client, world):
    world.run([world.line("L1")])
    erp = SalesSource.objects.create(program=world.program, name="ERP", code="erp", column_mapping=MAPPING)
    world.source = erp
    world.run([world.line("L1"), world.line("E2")])
    found = pm_client.get(LINES, {"source__id__exact": erp.pk}).context["cl"].result_list
    assert [(line.source_id, line.external_id) for line in found] == [(erp.pk, "E2"), (erp.pk, "L1")]


def test_the_import_list_links_each_import_to_its_lines(pm_client, world):
    sales_import = world.run([world.line("L1")])
    link = f'<a href="{LINES}?sales_import__id__exact={sales_import.pk}">Lines of this import</a>'
    assert link in text(pm_client.get(IMPORTS))


# Search -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def two_sources(world):
    """L1 and L2 from the distributor feed, L1 again from the ERP (another line of its own)."""
    world.run([world.line("L1", invoice="INV-1"), world.line("L2", invoice="INV-2")])
    feed = world.source
    world.source = SalesSource.objects.create(program=world.program, name="ERP", code="erp", column_mapping=MAPPING)
    world.run([world.line("L1", invoice="INV-9")])
    return feed, world.source


def test_an_exact_external_id_is_found_in_every_source_or_in_the_chosen_one(pm_client, two_sources):
    feed, erp = two_sources
    found = pm_client.get(LINES, {"q": " L1 "}).context["cl"].result_list
    assert [(line.source_id, line.external_id) for line in found] == [(erp.pk, "L1"), (feed.pk, "L1")]
    found = pm_client.get(LINES, {"q": "L1", "source__id__exact": feed.pk}).context["cl"].result_list
    assert [(line.source_id, line.external_id) for line in found] == [(feed.pk, "L1")]
    assert ids(pm_client.get(LINES, {"q": "L"})) == []  # exact ids only: the table is too big for a partial match


def test_an_invoice_number_is_searched_only_within_the_chosen_partner(pm_client, world, two_sources):
    assert ids(pm_client.get(LINES, {"q": "INV-2"})) == []
    response = pm_client.get(LINES, {"q": "INV-2", "partner__id__exact": world.partner.pk})
    assert ids(response) == ["L2"]
    [partner_filter] = [spec for spec in response.context["cl"].filter_specs if spec.title == "partner"]
    assert partner_filter.lookup_choices == [(str(world.partner.pk), world.partner.name)]


@pytest.mark.parametrize(
    "query",
    [
        {"member__id__exact": "1"},
        {"product__id__exact": "1"},
        {"member__user__email": "a@b.example"},
        {"invoice_date__gte": "2020-01-01"},
        {"amount__gt": "10"},
    ],
)
def test_a_lookup_no_index_answers_is_refused(pm_client, world, query):
    assert pm_client.get(LINES, query).status_code == 400


@pytest.mark.parametrize("query", [{"sales_import__id__exact": "abc"}, {"partner__id__exact": "²"}])
def test_an_id_that_is_no_id_is_reported_by_the_admin(pm_client, world, query):
    response = pm_client.get(LINES, query)
    assert (response.status_code, response["Location"]) == (302, f"{LINES}?e=1")


def test_an_unknown_partner_or_import_has_no_lines(pm_client, world):
    world.run([world.line("L1")])
    assert ids(pm_client.get(LINES, {"partner__id__exact": "999999999"})) == []
    assert ids(pm_client.get(LINES, {"sales_import__id__exact": "999999999"})) == []


def test_the_list_is_never_sorted_by_another_column(pm_client, world):
    world.run([world.line("L1", invoice="B"), world.line("L2", invoice="A")])
    response = pm_client.get(LINES, {"o": "9"})  # the invoice number column, asked for by hand
    assert ids(response) == ["L2", "L1"]
    assert 'class="sortable' not in response.text
    assert "_facets" not in response.text


# A line's page ----------------------------------------------------------------------------------------------------


def test_the_line_page_says_how_each_posting_counts(pm_client, world):
    shared_with_the_company(world)
    world.run([world.line("L2", qty="5")])
    line = SaleLine.objects.get(external_id="L2")
    response = pm_client.get(page(line))
    assert response.status_code == 200
    assert (
        "Softeners v1: 5 units × 10 pts = 50; Sales rep share 60% = 30 → 30 points "
        f"({world.member.user.email})<br>"
        "Softeners v1: 5 units × 10 pts = 50; company share = 20 → 20 points (company account)"
    ) in text(response)


def test_a_posting_for_another_member_names_that_member(pm_client, world):
    world.run([world.line("L1")])
    line = SaleLine.objects.get(external_id="L1")
    colleague = MemberFactory(partner=world.partner, user__email="colleague@dealer.example")
    [[rule_id, _, points, explanation]] = line.posting_list
    SaleLine.objects.filter(pk=line.pk).update(postings=json.dumps([[rule_id, colleague.pk, points, explanation]]))
    assert f"{explanation} → 100 points (colleague@dealer.example)" in text(pm_client.get(page(line)))


def test_the_explanations_are_escaped(pm_client, world):
    world.rule.name = "<b>Softeners</b> & co"
    world.rule.save()
    world.run([world.line("L1")])
    body = text(pm_client.get(page(SaleLine.objects.get(external_id="L1"))))
    assert "&lt;b&gt;Softeners&lt;/b&gt; &amp; co v1: 10 units × 10 pts = 100 → 100 points" in body
    assert "<b>Softeners" not in body


def test_a_line_no_rule_paid_says_so(pm_client, world):
    world.run([world.line("L1", sku="AQ-1")])
    line = SaleLine.objects.get(external_id="L1")
    SaleLine.objects.filter(pk=line.pk).update(postings="", points=0)
    assert "No rule paid points for this line." in text(pm_client.get(page(line)))


def test_the_line_page_costs_a_fixed_number_of_queries(pm_client, world, django_assert_max_num_queries):
    shared_with_the_company(world)
    world.run([world.line("L1")])
    line = SaleLine.objects.get(external_id="L1")
    with django_assert_max_num_queries(CHANGE_PAGE_QUERIES):
        response = pm_client.get(page(line))
    assert response.status_code == 200


# Access -----------------------------------------------------------------------------------------------------------


def test_partner_staff_are_sent_to_the_admin_login(partner_staff_client, world):
    world.run([world.line("L1")])
    for url in (LINES, page(SaleLine.objects.get())):
        response = partner_staff_client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_nobody_adds_changes_or_deletes_a_line(pm_client, world):
    world.run([world.line("L1")])
    line = SaleLine.objects.get()
    response = pm_client.get(page(line))
    assert response.context["has_change_permission"] is False
    assert response.context["has_delete_permission"] is False
    assert pm_client.get(reverse("admin:loyalty_saleline_add")).status_code == 403
    assert pm_client.post(page(line), {"external_id": "X", "points": "1"}).status_code == 403
    delete = reverse("admin:loyalty_saleline_delete", args=[line.pk])
    assert pm_client.post(delete, {"post": "yes"}).status_code == 403
    assert "delete_selected" not in pm_client.get(LINES).text  # no actions, so no bulk delete either
    bulk = pm_client.post(LINES, {"action": "delete_selected", "_selected_action": [line.pk], "post": "yes"})
    assert bulk.status_code == 200  # the list again: there is no such action here
    assert list(SaleLine.objects.values_list("external_id", "points")) == [("L1", 100)]
