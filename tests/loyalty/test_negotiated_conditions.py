"""Negotiated conditions for key accounts on incentive rules (IncentiveRule.named_partners): a rule naming partners
pays only their members — one event, the bulk sell-out import and the simulation alike — shows on "How to earn" to
them only, saying "Special conditions for <partner>"; the back office refuses it without a reason, stamps who
published (approved) it and when, lists it as "Negotiated for: … — approved by … on …: reason" and filters it, at
the same query counts."""

import random
import re
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bench.sellout import HEADER, MAPPING
from loyalty.common.errors import ApplicationError
from loyalty.constants import RuleStatus
from loyalty.engine import facts
from loyalty.engine.bulk import LineEvaluator, RuleIndex
from loyalty.engine.rules import CompiledRule, Event, Participant, Unpaid, evaluate, why_unpaid
from loyalty.error_codes import ErrorCode
from loyalty.models import IncentiveRule, PointsAccount, SaleLine, SalesSource
from loyalty.services.earning import post_event, published_rules
from loyalty.services.rules import rule_new_version, rule_publish
from loyalty.services.sellout.run import import_run, import_start
from loyalty.services.simulation import rule_simulate
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.loyalty.test_bulk_ledger import _check_line_evaluator, random_event, random_rules
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory, role

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
CHANGELIST = reverse("admin:loyalty_incentiverule_changelist")
REASON = "Framework contract 2026: 40 % of our softener volume."


@pytest.fixture
def program():
    return ProgramFactory(currency_name="AquaPoints")


@pytest.fixture
def key_account():
    return PartnerFactory(name="Hydro Wholesale AG", legal_id="VATKEY00001")


@pytest.fixture
def other():
    return PartnerFactory(name="Corner Plumbing", legal_id="VATOTHER001")


@pytest.fixture
def product():
    return ProductFactory(sku="AS-300", name="AquaSoft 300")


def negotiated(program, *partners, reason=REASON, **fields) -> IncentiveRule:
    fields = {"name": "Key account bonus", "value": Decimal(7), **fields}
    rule = RuleFactory(program=program, negotiated_reason=reason, **fields)
    rule.named_partners.set(partners)
    return rule


def rep(partner):
    return MemberFactory(partner=partner, role=role("sales"))


def sold(program, member, product, key: str, quantity="2") -> Event:
    return facts.sale_event(
        program=program,
        source_key=key,
        partner=member.partner,
        product=product,
        quantity=Decimal(quantity),
        amount=Decimal(200),
        occurred_on=TODAY,
        actor=member,
    )


def balance(program, member) -> int:
    account = PointsAccount.objects.filter(program=program, member=member).first()
    return account.available if account else 0


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# The engine ---------------------------------------------------------------------------------------------------


def _event(partner_id: int) -> Event:
    return Event(
        kind="sale_line",
        source_key=f"s{partner_id}",
        occurred_on=date(2026, 5, 1),
        partner_id=partner_id,
        partner_kind="dealer",
        region_id=1,
        participants=(Participant(9, "sales", "Sales", is_actor=True),),
        quantity=Decimal(3),
    )


def test_a_rule_naming_partners_pays_only_at_those_partners_and_says_why_not_elsewhere():
    rule = CompiledRule(
        id=1, code="key", version=1, name="Key", event="sale_line", formula="per_unit", value=Decimal(5),
        partner_ids=frozenset({7, 8}),
    )  # fmt: skip

    assert [(p.member_id, p.points) for p in evaluate(_event(7), (rule,))] == [(9, 15)]
    assert evaluate(_event(3), (rule,)) == []
    assert why_unpaid(_event(3), (rule,)) == Unpaid.NOT_FOR_PARTNER
    assert why_unpaid(_event(8), (rule,)) is None


def test_published_rules_know_their_named_partners_at_the_same_query_count(program, key_account, other):
    RuleFactory(program=program, code="everyone")
    with CaptureQueriesContext(connection) as plain:
        published_rules(program)
    negotiated(program, key_account, other, code="key")

    with CaptureQueriesContext(connection) as with_named:
        rules = {rule.code: rule for rule in published_rules(program)}

    assert rules["key"].partner_ids == frozenset({key_account.pk, other.pk})
    assert rules["everyone"].partner_ids == frozenset()
    assert len(with_named) == len(plain)


# Paying: one event, the bulk import, the simulation ------------------------------------------------------------


def test_a_negotiated_rule_pays_the_key_accounts_member_and_not_another_partners(program, key_account, other, product):
    negotiated(program, key_account)
    mine, theirs = rep(key_account), rep(other)

    post_event(program=program, event=sold(program, mine, product, "sale:key:1"))
    post_event(program=program, event=sold(program, theirs, product, "sale:other:1"))

    assert (balance(program, mine), balance(program, theirs)) == (14, 0)


def test_the_bulk_evaluator_keys_its_caches_on_the_partner_when_a_rule_names_partners():
    """The candidate index and the line evaluator give exactly engine.evaluate's postings when rules name partners
    (the random events happen at partners 1 to 5)."""
    rng = random.Random(13)
    for _ in range(4):
        rules = tuple(
            replace(rule, partner_ids=frozenset(rng.sample(range(1, 6), rng.randint(1, 2))) if rng.random() < 0.4 else
                    frozenset())
            for rule in random_rules(rng)
        )  # fmt: skip
        index = RuleIndex(rules)
        assert index.per_partner
        for n in range(300):
            event = random_event(rng, n)
            assert index.evaluate(event) == evaluate(event, rules)
        _check_line_evaluator(rng, tuple(replace(rule, event="sale_line") for rule in rules), 1000)


def test_the_bulk_evaluator_pays_a_named_partner_and_not_another_of_the_same_kind_tier_and_region():
    rule = CompiledRule(
        id=1, code="key", version=1, name="Key", event="sale_line", formula="per_unit", value=Decimal(5),
        partner_ids=frozenset({7}),
    )  # fmt: skip
    evaluator = LineEvaluator(RuleIndex((rule,)))
    member = (9, 7, "active", "sales", "Sales")

    def points(partner_id):
        partner = (partner_id, "dealer", 1, False, None)
        shares = evaluator.shares(partner, member, (1, 1), date(2026, 5, 1), Decimal(3), Decimal(30))
        return [share.points for share in shares]

    assert (points(7), points(8), points(7)) == ([15], [], [15])


@pytest.mark.usefixtures("private_media")
def test_a_sellout_import_pays_the_named_partners_lines_only(program, key_account, other):
    RuleFactory(program=program, code="everyone", value=Decimal(1))
    negotiated(program, key_account, code="key", value=Decimal(10))
    ProductFactory(sku="AQ-1")
    mine, theirs = rep(key_account), rep(other)
    source = SalesSource.objects.create(program=program, name="Feed", code="feed", column_mapping=MAPPING)
    day = (TODAY - timedelta(days=5)).isoformat()
    rows = [
        ";".join([f"L{n}", member.partner.legal_id, f"M{member.pk}", "AQ-1", "3", "300.00", f"INV-{n}", day, ""])
        for n, member in enumerate([mine, theirs, mine, theirs])
    ]
    data = "\n".join([HEADER, *rows]).encode()
    started = import_start(
        source=source, uploaded_file=SimpleUploadedFile("sales.csv", data), user=ProgramManagerFactory()
    )

    import_run(started.pk)

    assert SaleLine.objects.count() == 4
    assert (balance(program, mine), balance(program, theirs)) == (2 * (3 + 30), 2 * 3)


def test_the_simulation_pays_a_negotiated_draft_only_at_its_named_partners(program, key_account, other, product):
    published = RuleFactory(program=program, code="softeners", value=Decimal(10))
    source = SalesSource.objects.create(program=program, code="feed", name="Feed")
    for n, partner in enumerate([key_account, other, other]):
        SaleLine.objects.create(
            source=source, external_id=f"S{n}", partner=partner, member=rep(partner), product=product,
            quantity=Decimal(4), amount=Decimal(400), invoice_number=f"INV-{n}", invoice_date=TODAY - timedelta(days=2),
        )  # fmt: skip
    draft = rule_new_version(rule=published, value=Decimal(25), negotiated_reason=REASON)
    draft.named_partners.set([key_account])

    simulation = rule_simulate(rule=draft, start=TODAY - timedelta(days=30), end=TODAY)

    assert (simulation.current.points, simulation.proposed.points) == (3 * 40, 100)
    assert dict(simulation.proposed.by_partner) == {key_account.pk: 100}


# How to earn ------------------------------------------------------------------------------------------------


def test_how_to_earn_shows_a_negotiated_rule_to_the_key_account_only_as_its_special_conditions(
    client, program, key_account, other, product
):
    negotiated(program, key_account)
    client.force_login(rep(key_account).user)
    mine = text(client.get(reverse("how_to_earn")))
    client.force_login(rep(other).user)
    theirs = text(client.get(reverse("how_to_earn")))

    assert "Key account bonus" in mine and "Special conditions for Hydro Wholesale AG" in mine
    assert "Key account bonus" not in theirs and "Special conditions" not in theirs


# The back office ----------------------------------------------------------------------------------------------


def _form_data(program, **fields) -> dict:
    data = {
        "program": program.pk, "code": "key-bonus", "name": "Key bonus", "description": "", "event": "sale_line",
        "custom_event": "", "min_quantity": "", "min_amount": "", "valid_from": "", "valid_until": "",
        "formula": "per_unit", "value": "10", "apply_tier_multiplier": "on", "priority": "100", "cap_points": "",
        "cap_period": "month", "budget_points": "", "negotiated_reason": "", "_save": "Save",
        "shares-TOTAL_FORMS": "0", "shares-INITIAL_FORMS": "0", "shares-MIN_NUM_FORMS": "0",
        "shares-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    return {**data, **fields}


def test_a_rule_naming_partners_without_a_reason_is_refused_and_nothing_is_saved(pm_client, program, key_account):
    response = pm_client.post(
        reverse("admin:loyalty_incentiverule_add"), _form_data(program, named_partners=[key_account.pk])
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["negotiated_reason"] == [
        "Say why these partners get special conditions (fair dealing: equal terms must be explainable)."
    ]
    assert IncentiveRule.objects.count() == 0


def test_a_draft_naming_partners_is_saved_unapproved_and_publishing_stamps_who_and_when(
    pm_client, program_manager, program, key_account, other
):
    data = _form_data(program, named_partners=[key_account.pk, other.pk], negotiated_reason=REASON)
    assert pm_client.post(reverse("admin:loyalty_incentiverule_add"), data).status_code == 302
    rule = IncentiveRule.objects.get()
    assert (set(rule.named_partners.all()), rule.negotiated_approved_by, rule.negotiated_approved_at) == (
        {key_account, other},
        None,
        None,
    )

    before = timezone.now()
    pm_client.post(
        CHANGELIST, {"action": "publish", "_selected_action": [rule.pk], "apply": "Publish",
                     "moment": timezone.localtime().strftime("%Y-%m-%dT%H:%M")},
    )  # fmt: skip

    rule.refresh_from_db()
    assert (rule.status, rule.negotiated_approved_by) == (RuleStatus.PUBLISHED, program_manager)
    assert before <= rule.negotiated_approved_at <= timezone.now()


def test_publishing_a_negotiated_rule_without_a_reason_is_refused_and_nothing_changes(
    program, program_manager, key_account
):
    rule = negotiated(program, key_account, reason="  ", status=RuleStatus.DRAFT, effective_from=None)

    with pytest.raises(ApplicationError) as refused:
        rule_publish(rule=rule, actor=program_manager)

    assert refused.value.code == ErrorCode.INVALID_RULE
    assert refused.value.message.startswith("Say why the named partners get this rule before publishing it")
    rule.refresh_from_db()
    assert (rule.status, rule.negotiated_approved_by, rule.negotiated_approved_at) == (RuleStatus.DRAFT, None, None)


def test_a_new_version_keeps_the_named_partners_and_is_approved_again_when_published(
    program, program_manager, key_account
):
    rule = negotiated(program, key_account, status=RuleStatus.DRAFT, effective_from=None)
    rule_publish(rule=rule, actor=program_manager)
    later = ProgramManagerFactory()

    draft = rule_new_version(rule=rule)
    assert (list(draft.named_partners.all()), draft.negotiated_reason, draft.negotiated_approved_by) == (
        [key_account],
        REASON,
        None,
    )
    rule_publish(rule=draft, actor=later, effective_from=timezone.now() + timedelta(minutes=1))
    draft.refresh_from_db()
    assert draft.negotiated_approved_by == later


def test_the_rule_list_says_who_a_rule_was_negotiated_for_who_approved_it_when_and_why(
    pm_client, program, key_account, other
):
    approver = ProgramManagerFactory(full_name="Petra Program")
    when = timezone.make_aware(timezone.datetime(2026, 3, 2, 10, 0))
    negotiated(program, other, key_account, code="key", negotiated_approved_by=approver, negotiated_approved_at=when)
    RuleFactory(program=program, code="everyone")

    page = text(pm_client.get(CHANGELIST))
    only = pm_client.get(CHANGELIST, {"negotiated": "yes"}).context["cl"].result_list
    none = pm_client.get(CHANGELIST, {"negotiated": "no"}).context["cl"].result_list

    assert (
        f"Negotiated for: Corner Plumbing, Hydro Wholesale AG — approved by {approver} on 2026-03-02: {REASON}" in page
    )
    assert "For every partner" in page
    assert ([rule.code for rule in only], [rule.code for rule in none]) == (["key"], ["everyone"])


@pytest.mark.parametrize("rows", [3, 30])
def test_the_rule_list_with_negotiated_rules_costs_what_it_did(pm_client, program, django_assert_max_num_queries, rows):
    from tests.loyalty.test_admin_rules import CHANGELIST_QUERIES

    partners = PartnerFactory.create_batch(3)
    for index in range(rows):
        rule = negotiated(program, *partners, code=f"key-{index}", negotiated_approved_by=ProgramManagerFactory(),
                          negotiated_approved_at=timezone.now())  # fmt: skip
        assert rule.named_partners.count() == 3
    with django_assert_max_num_queries(CHANGELIST_QUERIES):
        response = pm_client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == rows
