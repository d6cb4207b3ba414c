"""The back office's incentive rules: the list, the draft form (conditions, split rows, rule_problems as form
errors), read-only published versions, new versions, publishing and retiring with their intermediate page, the
version history, the simulation page, permissions and pinned query counts."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import RuleStatus
from loyalty.error_codes import ErrorCode
from loyalty.models import IncentiveRule, PointsEntry, SaleLine, SalesSource
from loyalty.services.rules import rule_publish
from partners.constants import PartnerKind
from tests.helpers import messages_of
from tests.loyalty.factories import ProductFactory, ProductLineFactory, ProgramFactory, RuleFactory, TierFactory
from tests.partners.factories import MemberFactory, ProgramManagerFactory, RegionFactory, role

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:loyalty_incentiverule_changelist")
ADD = reverse("admin:loyalty_incentiverule_add")
# The most queries each page may make; the list's bound holds at 3 rows and at 30.
CHANGELIST_QUERIES = 7
DRAFT_PAGE_QUERIES = 20  # + the negotiated partners field (its chosen partners, a fixed cost)
PUBLISHED_PAGE_QUERIES = 16
SIMULATE_PAGE_QUERIES = 18


@pytest.fixture
def program():
    return ProgramFactory(name="Aqua Rewards")


def change_url(rule) -> str:
    return reverse("admin:loyalty_incentiverule_change", args=[rule.pk])


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def draft(program, **kwargs) -> IncentiveRule:
    return RuleFactory(program=program, status=RuleStatus.DRAFT, effective_from=None, **kwargs)


def shares_data(*rows, initial=0) -> dict:
    data = {
        "shares-TOTAL_FORMS": str(len(rows)),
        "shares-INITIAL_FORMS": str(initial),
        "shares-MIN_NUM_FORMS": "0",
        "shares-MAX_NUM_FORMS": "1000",
    }
    for index, (code, percent) in enumerate(rows):
        data[f"shares-{index}-role"] = code
        data[f"shares-{index}-percent"] = percent
    return data


def form_data(program, *, shares=(("", ""), ("", "")), **fields) -> dict:
    data = {
        "program": program.pk,
        "code": "softeners",
        "name": "Softeners",
        "description": "Sell a softener, earn points.",
        "event": "sale_line",
        "custom_event": "",
        "min_quantity": "",
        "min_amount": "",
        "valid_from": "",
        "valid_until": "",
        "formula": "per_unit",
        "value": "10",
        "apply_tier_multiplier": "on",
        "priority": "100",
        "cap_points": "",
        "cap_period": "month",
        "budget_points": "",
        "_save": "Save",
        **shares_data(*shares),
    }
    for name, value in fields.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


# Access ---------------------------------------------------------------------------------------------------------


def test_partner_staff_are_sent_to_the_admin_login(partner_staff_client, program):
    response = partner_staff_client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_account_manager_marked_as_staff_by_mistake_is_refused(am_staff_client, program):
    rule = RuleFactory(program=program)
    for url in (CHANGELIST, change_url(rule), reverse("admin:loyalty_incentiverule_simulate", args=[rule.pk])):
        assert am_staff_client.get(url).status_code == 403
    assert am_staff_client.post(reverse("admin:loyalty_incentiverule_new_version", args=[rule.pk])).status_code == 403
    assert IncentiveRule.objects.count() == 1


# The list -------------------------------------------------------------------------------------------------------


def test_the_list_shows_version_status_formula_dates_and_budget(pm_client, program):
    RuleFactory(program=program, code="softeners", name="Softeners", budget_points=10_000, priority=200)
    draft(program, code="march", name="March double", formula="multiplier", value=Decimal(2), exclusive=False)
    body = text(pm_client.get(CHANGELIST))
    for shown in ("10 pts per unit, × tier", "× 2 on the other rules&#x27; points", "0 / 10,000", "0 / no budget"):
        assert shown in body
    assert "In force" in body
    assert "Draft" in body


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "draft"}, ["march"]),
        ({"status__exact": "published"}, ["softeners"]),
        ({"formula__exact": "multiplier"}, ["march"]),
        ({"event__exact": "training_passed"}, ["quiz"]),
        ({"q": "double"}, ["march"]),
        ({"q": "quiz"}, ["quiz"]),
    ],
)
def test_filters_and_search(pm_client, program, params, expected):
    RuleFactory(program=program, code="softeners", name="Softeners")
    draft(program, code="march", name="March double", formula="multiplier", value=Decimal(2))
    RuleFactory(program=program, code="quiz", name="Quiz passed", event="training_passed", formula="fixed",
                status=RuleStatus.RETIRED)  # fmt: skip
    RuleFactory(program=ProgramFactory(), code="elsewhere")
    response = pm_client.get(CHANGELIST, {**params, "program__id__exact": program.pk})
    assert sorted(rule.code for rule in response.context["cl"].result_list) == sorted(expected)


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_costs_the_same_few_queries_at_any_size(pm_client, program, django_assert_max_num_queries, rows):
    for index in range(rows):
        RuleFactory(program=program, budget_points=1000 + index, published_by=ProgramManagerFactory())
    with django_assert_max_num_queries(CHANGELIST_QUERIES):
        response = pm_client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == rows


# The draft form -------------------------------------------------------------------------------------------------


def test_a_new_rule_is_saved_as_a_draft_with_its_conditions_and_its_split(pm_client, program):
    gold = TierFactory(program=program, name="Gold")
    north = RegionFactory(name="North")
    line = ProductLineFactory(code="softeners", name="Softeners line")
    product = ProductFactory(sku="AQ-1")
    data = form_data(
        program,
        roles=[role("sales").pk, role("engineer").pk],
        partner_kinds=[PartnerKind.DEALER, PartnerKind.INSTALLER],
        tiers=[gold.pk],
        regions=[north.pk],
        product_lines=[line.pk],
        products=[product.pk],
        min_quantity="2",
        valid_from="2026-03-01",
        valid_until="2026-03-31",
        cap_points="500",
        shares=(("sales", "60"), ("engineer", "30.5"), ("", "")),
    )
    response = pm_client.post(ADD, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = IncentiveRule.objects.get()
    assert (rule.status, rule.version, rule.code) == (RuleStatus.DRAFT, 1, "softeners")
    assert rule.shares == [{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 30.5}]
    assert rule.partner_kinds == [PartnerKind.DEALER, PartnerKind.INSTALLER]
    assert [r.code for r in rule.roles.order_by("code")] == ["engineer", "sales"]
    assert list(rule.tiers.all()) == [gold]
    assert list(rule.regions.all()) == [north]
    assert list(rule.product_lines.all()) == [line]
    assert list(rule.products.all()) == [product]
    assert (rule.min_quantity, rule.cap_points) == (Decimal(2), 500)


def test_the_add_page_explains_the_split_and_the_pooled_policy(pm_client, program):
    body = text(pm_client.get(ADD))
    assert "Who gets the points" in body
    assert "goes to the partner's company account" in body
    assert "Pooled to the company account" in body
    assert 'name="shares-0-role"' in body and 'name="shares-1-percent"' in body
    assert 'type="checkbox" name="partner_kinds" value="dealer"' in body


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"formula": "multiplier", "value": "0.5"}, "value", "A multiplier must be greater than 1"),
        ({"valid_from": "2026-05-01", "valid_until": "2026-04-01"}, "valid_until", "The date window ends before"),
        ({"formula": "percent_bonus", "exclusive": "on"}, "exclusive", "cannot also be exclusive"),
        ({"custom_event": "webinar"}, "custom_event", "Only custom API events (their name) and challenge completions"),
        ({"cap_points": "0"}, "cap_points", "A cap or budget of 0 would pay nothing"),
        ({"min_amount": "-5"}, "min_amount", "cannot be negative"),
    ],
)
def test_what_rule_problems_refuses_is_a_form_error_and_nothing_is_saved(pm_client, program, fields, field, problem):
    response = pm_client.post(ADD, form_data(program, **fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(problem in message for message in errors[field]), errors
    assert not IncentiveRule.objects.exists()


def test_rule_problems_reach_the_form_with_their_codes(pm_client, program):
    response = pm_client.post(ADD, form_data(program, budget_points="0", shares=(("sales", "80"), ("engineer", "30"))))
    errors = response.context["adminform"].form.errors.as_data()
    assert [error.code for error in errors["budget_points"]] == [ErrorCode.LIMIT_ZERO]
    assert [error.code for error in errors["__all__"]] == [ErrorCode.SHARES_OVER_100]
    assert not IncentiveRule.objects.exists()


@pytest.mark.parametrize(
    ("shares", "problem"),
    [
        ((("sales", "80"), ("engineer", "30")), "The shares add up to 110"),
        ((("sales", "40"), ("sales", "30")), "Each role may appear once in the shares"),
    ],
)
def test_a_split_the_rules_refuse_is_shown_and_nothing_is_saved(pm_client, program, shares, problem):
    response = pm_client.post(ADD, form_data(program, shares=shares))
    assert response.status_code == 200
    assert problem in text(response)
    assert any(problem in message for message in response.context["adminform"].form.non_field_errors())
    assert not IncentiveRule.objects.exists()


def test_a_split_row_needs_both_a_role_and_a_percent(pm_client, program):
    response = pm_client.post(ADD, form_data(program, shares=(("sales", ""), ("", "20"))))
    body = text(response)
    assert "Give this role&#x27;s share in percent." in body
    assert "Choose the role that gets this share." in body
    assert "Correct the split of the points below" in body
    assert not IncentiveRule.objects.exists()


def test_a_code_already_used_in_the_program_is_refused_with_the_way_forward(pm_client, program):
    RuleFactory(program=program, code="softeners")
    response = pm_client.post(ADD, form_data(program))
    assert "open it and create a new version instead" in response.context["adminform"].form.errors["code"][0]
    assert IncentiveRule.objects.count() == 1


def test_a_tier_of_another_program_is_refused(pm_client, program):
    other = TierFactory(name="Platinum")
    response = pm_client.post(ADD, form_data(program, tiers=[other.pk]))
    assert "Not tiers of Aqua Rewards: Platinum." in response.context["adminform"].form.errors["tiers"][0]
    assert not IncentiveRule.objects.exists()


def test_a_draft_is_edited_in_place_and_keeps_its_split_rows(pm_client, program):
    rule = draft(program, code="softeners", shares=[{"role": "sales", "percent": 70}])
    page = text(pm_client.get(change_url(rule)))
    assert 'name="shares-0-percent" value="70"' in page
    assert "Now: Sales rep 70 %; the rest, 30 %, goes to the partner&#x27;s company account." in page
    data = form_data(program, value="12", shares=(("sales", "50"), ("engineer", "25")))
    data["shares-INITIAL_FORMS"] = "1"
    response = pm_client.post(change_url(rule), data)
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.value, rule.status) == (Decimal(12), RuleStatus.DRAFT)
    assert rule.shares == [{"role": "sales", "percent": 50}, {"role": "engineer", "percent": 25}]


def test_a_draft_published_while_it_was_being_edited_is_not_overwritten(rf, program_manager, program):
    rule = draft(program)
    stale = IncentiveRule.objects.get(pk=rule.pk)  # the admin loaded it, then someone published it
    rule_publish(rule=rule, actor=program_manager)
    stale.value = Decimal(99)
    with pytest.raises(ApplicationError, match="was published meanwhile, so your changes were not saved"):
        admin.site._registry[IncentiveRule].save_model(rf.post("/"), stale, form=None, change=True)
    rule.refresh_from_db()
    assert (rule.value, rule.status) == (Decimal(10), RuleStatus.PUBLISHED)


def test_a_later_versions_program_and_code_stay_as_they_are(pm_client, program):
    rule = RuleFactory(program=program, code="softeners")
    pm_client.post(reverse("admin:loyalty_incentiverule_new_version", args=[rule.pk]))
    v2 = IncentiveRule.objects.get(version=2)
    response = pm_client.post(change_url(v2), form_data(ProgramFactory(), code="other", value="15"))
    assert response.status_code == 302
    v2.refresh_from_db()
    assert (v2.program, v2.code, v2.value) == (program, "softeners", Decimal(15))


# Published versions -----------------------------------------------------------------------------------------------


def test_a_published_version_is_read_only_and_offers_a_new_version(pm_client, program):
    rule = RuleFactory(program=program, shares=[{"role": "sales", "percent": 60}])
    response = pm_client.get(change_url(rule))
    body = text(response)
    assert response.context["has_change_permission"] is False
    assert 'value="Create a new version"' in body
    assert "A rule that has paid points is never edited in place" in body
    assert "Sales rep 60 %; the rest, 40 %, goes to the partner&#x27;s company account." in body
    assert 'name="_save"' not in body

    refused = pm_client.post(change_url(rule), form_data(program, value="99"))
    assert refused.status_code == 403
    rule.refresh_from_db()
    assert rule.value == Decimal(10)


def test_a_published_version_cannot_be_deleted_but_a_draft_can(pm_client, program):
    published, unpublished = RuleFactory(program=program), draft(program)
    delete = "admin:loyalty_incentiverule_delete"
    assert pm_client.get(reverse(delete, args=[published.pk])).status_code == 403
    assert pm_client.post(reverse(delete, args=[unpublished.pk]), {"post": "yes"}).status_code == 302
    assert list(IncentiveRule.objects.all()) == [published]


def test_create_a_new_version_opens_a_draft_copy_and_never_makes_two_drafts(pm_client, program):
    v1 = RuleFactory(program=program, code="softeners", budget_points=900, budget_used=300)
    url = reverse("admin:loyalty_incentiverule_new_version", args=[v1.pk])
    assert pm_client.get(url).status_code == 405
    response = pm_client.post(url)
    v2 = IncentiveRule.objects.get(version=2)
    assert response["Location"] == change_url(v2)
    assert (v2.status, v2.code, v2.budget_used, v2.budget_points) == (RuleStatus.DRAFT, "softeners", 0, 900)
    assert "a draft copy of v1" in messages_of(response)[0]

    again = pm_client.post(url)
    assert again["Location"] == change_url(v2)
    assert IncentiveRule.objects.count() == 2
    page = text(pm_client.get(change_url(v1)))
    assert "Open the draft (v2)" in page and 'value="Create a new version"' not in page


def test_the_version_history_lists_every_version_of_the_code(pm_client, program):
    v1 = RuleFactory(program=program, code="softeners", effective_until=timezone.now() - timedelta(days=1))
    v2 = RuleFactory(program=program, code="softeners", version=2, value=Decimal(20))
    RuleFactory(program=program, code="other")
    body = text(pm_client.get(change_url(v2)))
    assert f'<a href="{change_url(v1)}">v1</a>' in body
    assert f'<a href="{change_url(v2)}">v2</a> (this page)' in body
    assert "Published, replaced" in body
    assert "20 pts per unit" in body and "10 pts per unit" in body


# Publishing and retiring -----------------------------------------------------------------------------------------


def run_action(client, action, rules, **extra):
    data = {"action": action, "_selected_action": [rule.pk for rule in rules], **extra}
    return client.post(CHANGELIST, data)


def test_publish_asks_from_when_with_now_as_the_default(pm_client, program):
    rule = draft(program)
    response = run_action(pm_client, "publish", [rule])
    assert response.status_code == 200
    field = response.context["form"]["moment"]
    assert abs(field.initial - timezone.localtime()) < timedelta(minutes=1)
    assert 'type="datetime-local"' in text(response)
    rule.refresh_from_db()
    assert rule.status == RuleStatus.DRAFT


def test_publishing_a_new_version_ends_the_one_in_force_where_it_starts(pm_client, program):
    v1 = RuleFactory(program=program, code="softeners", effective_from=timezone.now() - timedelta(days=30))
    pm_client.post(reverse("admin:loyalty_incentiverule_new_version", args=[v1.pk]))
    v2 = IncentiveRule.objects.get(version=2)
    start = timezone.localtime().replace(second=0, microsecond=0) + timedelta(days=1)
    response = run_action(pm_client, "publish", [v2], apply="Publish", moment=start.strftime("%Y-%m-%dT%H:%M"))
    assert response["Location"] == change_url(v2)
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v2.status, v2.effective_from, v2.published_by.email) == (RuleStatus.PUBLISHED, start, "pm@maker.example")
    assert v1.effective_until == start
    assert messages_of(response)[-1] == f"Published 1 rule: softeners v2 ({v2.name})."


def test_a_rule_with_problems_is_refused_by_name_and_the_others_are_published(pm_client, program):
    good = draft(program, code="good", name="Good")
    bad = draft(program, code="bad", name="Bad", formula="multiplier", value=Decimal("0.5"))
    page = run_action(pm_client, "publish", [good, bad])
    assert "bad v1 (Bad) — cannot be published: A multiplier must be greater than 1" in text(page)
    moment = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    response = run_action(pm_client, "publish", [good, bad], apply="Publish", moment=moment)
    assert response.status_code == 302
    assert messages_of(response) == [
        "bad v1 (Bad): A multiplier must be greater than 1 (e.g. 2 for double points).",
        "Published 1 rule: good v1 (Good).",
    ]
    statuses = dict(IncentiveRule.objects.values_list("code", "status"))
    assert statuses == {"good": RuleStatus.PUBLISHED, "bad": RuleStatus.DRAFT}


def test_retire_stops_the_version_in_force(pm_client, program):
    rule = RuleFactory(program=program)
    body = text(pm_client.get(change_url(rule)))
    assert 'value="Retire…"' in body
    until = timezone.localtime().replace(second=0, microsecond=0)
    response = run_action(pm_client, "retire", [rule], apply="Retire", moment=until.strftime("%Y-%m-%dT%H:%M"))
    assert response["Location"] == change_url(rule)
    rule.refresh_from_db()
    assert (rule.status, rule.effective_until) == (RuleStatus.RETIRED, until)


def test_a_draft_cannot_be_retired(pm_client, program):
    rule = draft(program)
    moment = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    response = run_action(pm_client, "retire", [rule], apply="Retire", moment=moment)
    assert messages_of(response) == [f"{rule.code} v1 ({rule.name}): Only the version in force can be retired."]
    rule.refresh_from_db()
    assert rule.status == RuleStatus.DRAFT


# Simulation ------------------------------------------------------------------------------------------------------


def simulation_world(program):
    source = SalesSource.objects.create(program=program, name="Feed", code="feed")
    member, product = MemberFactory(partner__name="Aqua Dealer"), ProductFactory()
    for index in range(3):
        SaleLine.objects.create(
            source=source,
            external_id=f"L{index}",
            partner=member.partner,
            member=member,
            product=product,
            quantity=Decimal(5),
            amount=Decimal(100),
            invoice_date=timezone.localdate() - timedelta(days=5),
        )
    return member


def test_the_simulation_page_compares_the_draft_with_the_rules_as_published(pm_client, program):
    simulation_world(program)
    v1 = RuleFactory(program=program, code="softeners", value=Decimal(10))
    pm_client.post(reverse("admin:loyalty_incentiverule_new_version", args=[v1.pk]))
    v2 = IncentiveRule.objects.get(version=2)
    v2.value = Decimal(20)
    v2.save()
    page = text(pm_client.get(change_url(v2)))
    simulate = reverse("admin:loyalty_incentiverule_simulate", args=[v2.pk])
    assert f'href="{simulate}"' in page

    response = pm_client.get(simulate)
    body = text(response)
    assert response.context["simulation"].current.points == 150
    assert response.context["simulation"].proposed.points == 300
    assert "<strong>3</strong> lines evaluated (3 sell-out, 0 from approved claims)" in body
    assert '<td class="num">€1.50</td> <td class="num">€3.00</td> <td class="num">+€1.50</td>' in body
    assert "Aqua Dealer" in body and "Sales rep" in body
    assert not PointsEntry.objects.exists()


def test_the_simulation_period_can_be_chosen_and_a_wrong_one_is_explained(pm_client, program):
    simulation_world(program)
    rule = RuleFactory(program=program)
    url = reverse("admin:loyalty_incentiverule_simulate", args=[rule.pk])
    far = timezone.localdate() - timedelta(days=400)
    empty = pm_client.get(url, {"start": far.isoformat(), "end": (far + timedelta(days=10)).isoformat()})
    assert "nothing to replay" in text(empty)
    wrong = pm_client.get(url, {"start": "2026-05-01", "end": "2026-04-01"})
    assert wrong.context["simulation"] is None
    assert "The period ends before it starts." in text(wrong)


def test_simulating_costs_the_same_few_queries_at_any_size(pm_client, program, django_assert_max_num_queries):
    simulation_world(program)
    rule = RuleFactory(program=program)
    with django_assert_max_num_queries(SIMULATE_PAGE_QUERIES):
        response = pm_client.get(reverse("admin:loyalty_incentiverule_simulate", args=[rule.pk]))
    assert response.status_code == 200


# Query counts of the pages ----------------------------------------------------------------------------------------


def test_the_draft_page_costs_a_fixed_number_of_queries(pm_client, program, django_assert_max_num_queries):
    rule = draft(program, shares=[{"role": "sales", "percent": 60}])
    rule.products.set([ProductFactory() for _ in range(5)])
    rule.roles.set([role("sales")])
    with django_assert_max_num_queries(DRAFT_PAGE_QUERIES):
        assert pm_client.get(change_url(rule)).status_code == 200


def test_the_published_page_costs_a_fixed_number_of_queries(pm_client, program, django_assert_max_num_queries):
    rule = RuleFactory(program=program, shares=[{"role": "sales", "percent": 60}])
    for version in range(2, 6):
        RuleFactory(program=program, code=rule.code, version=version, status=RuleStatus.RETIRED)
    rule.products.set([ProductFactory() for _ in range(5)])
    with django_assert_max_num_queries(PUBLISHED_PAGE_QUERIES):
        assert pm_client.get(change_url(rule)).status_code == 200
