"""Building a program from a blueprint: the command, the admin action, and what a wrong blueprint gets."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from blueprints import loading
from blueprints.building import Problem, program_build
from loyalty.constants import RuleStatus
from loyalty.models import IncentiveRule, Program, Tier
from partners.models import Partner
from rewards.models import Reward
from tests.helpers import messages_of
from tests.loyalty.factories import ProgramFactory, TierFactory
from tests.partners.factories import AccountManagerFactory, ProgramManagerFactory

pytestmark = pytest.mark.django_db

SMALL = """
title = "Small test program"

[program]
currency_name = "Test points"
money_currency = "USD"

[[product_lines]]
code = "bp-test-line"
name = "Blueprint test line"

[[products]]
sku = "BP-TEST-1"
name = "Test product"
line = "bp-test-line"

[[partners]]
name = "Key Account Inc"
legal_id = "BP-KEY-1"
kind = "distributor"
region = "bp-test"
account_manager = "km@maker.example"

[[regions]]
code = "bp-test"
name = "Blueprint test region"

[[tiers]]
name = "Base"
rank = 0
threshold = "0"

[[tiers]]
name = "Top"
rank = 1
threshold = "1000"
multiplier = 1.5
join_fee_points = 2000

[[reward_categories]]
slug = "bp-test-category"
name = "Blueprint test category"

[[rewards]]
name = "Key account dinner"
category = "bp-test-category"
kind = "experience"
points_price = 900
stock = 10
event_starts_at = "+10d 19:30"
event_place = "Harbour restaurant"
min_tier = "Top"
allowed_partners = ["BP-KEY-1"]
negotiated_reason = "Largest client by volume."

[[rules]]
code = "bp-sale"
name = "Sale"
event = "sale_line"
formula = "per_unit"
value = "10"
product_lines = ["bp-test-line"]
"""


@pytest.fixture
def blueprints(tmp_path, monkeypatch):
    """Blueprints read from the test's own folder: write(name, text) adds one."""
    monkeypatch.setattr(loading, "PROGRAMS", tmp_path)
    loading._read.cache_clear()

    def write(name: str, text: str) -> None:
        (tmp_path / f"{name}.toml").write_text(text)
        loading._read.cache_clear()

    yield write
    loading._read.cache_clear()


def counts() -> tuple[int, ...]:
    return Program.objects.count(), Tier.objects.count(), IncentiveRule.objects.count(), Reward.objects.count()


def test_a_blueprint_builds_every_row_with_natural_keys_and_relative_dates(blueprints):
    blueprints("small", SMALL)
    manager = ProgramManagerFactory()
    today = timezone.localdate()

    program = program_build(name="small", actor=manager)

    assert (program.name, program.currency_name, program.money_currency) == ("Small test program", "Test points", "USD")
    assert program.starts_on == today
    top = program.tiers.get(name="Top")
    assert (top.rank, str(top.multiplier), top.join_fee_points) == (1, "1.50", 2000)
    rule = program.rules.get()
    assert rule.status == RuleStatus.PUBLISHED and rule.published_by == manager
    assert list(rule.product_lines.values_list("code", flat=True)) == ["bp-test-line"]
    dinner = program.rewards.get()
    starts = timezone.localtime(dinner.event_starts_at)
    assert (starts.date(), starts.hour, starts.minute) == (today + timedelta(days=10), 19, 30)
    assert dinner.min_tier == top
    assert list(dinner.allowed_partners.values_list("legal_id", flat=True)) == ["BP-KEY-1"]
    assert dinner.negotiated_approved_by == manager and dinner.negotiated_approved_at is not None
    key_account = Partner.objects.get(legal_id="BP-KEY-1")
    assert key_account.account_manager.email == "km@maker.example"
    assert key_account.account_manager.staff_role == "account_manager"
    assert not key_account.account_manager.has_usable_password()


def test_shared_rows_are_reused_by_a_second_program(blueprints):
    blueprints("small", SMALL)
    manager = ProgramManagerFactory()
    AccountManagerFactory(email="km@maker.example")
    first = program_build(name="small", actor=manager)
    second = program_build(name="small", actor=manager, program_name="Small again")

    assert second.slug != first.slug
    assert Partner.objects.filter(legal_id="BP-KEY-1").count() == 1
    assert second.rules.get().product_lines.get() == first.rules.get().product_lines.get()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("multiplier = 1.5", "multiplyer = 1.5"), "tiers[1]: “multiplyer” is not a field of tier."),
        (('min_tier = "Top"', 'min_tier = "Platinum"'), "rewards[0]: min_tier names “Platinum”, which does not exist."),
        (('threshold = "1000"', 'threshold = "lots"'), "tiers[1]: threshold must be a number, not “lots”."),
        (('formula = "per_unit"', 'formula = "per_smile"'), "rules[0]:"),
        (('kind = "experience"', 'kind = "merchandise"'), "rewards[0]: kind: A dated event is an “Experience"),
        (
            ('negotiated_reason = "Largest client by volume."', ""),
            "rewards[0]: negotiated_reason: Say why these partners get this reward",
        ),
    ],
)
def test_a_wrong_blueprint_is_refused_with_its_place_and_nothing_is_written(blueprints, change, message):
    blueprints("small", SMALL.replace(*change))
    before = counts()
    with pytest.raises(Problem) as refused:
        program_build(name="small", actor=ProgramManagerFactory())

    assert message in refused.value.message
    assert counts() == before
    assert not Partner.objects.filter(legal_id="BP-KEY-1").exists()


def test_only_a_program_manager_sets_up_a_program(blueprints):
    blueprints("small", SMALL)
    with pytest.raises(Problem, match="Only program managers"):
        program_build(name="small", actor=AccountManagerFactory())
    assert counts() == (0, 0, 0, 0)


def test_a_program_that_is_not_empty_is_refused(blueprints):
    blueprints("small", SMALL)
    program = ProgramFactory()
    TierFactory(program=program)

    with pytest.raises(Problem, match="already has tiers, rules or rewards"):
        program_build(name="small", actor=ProgramManagerFactory(), program=program)


def test_the_command_lists_the_field_programs_and_builds_one():
    ProgramManagerFactory(email="boss@maker.example")
    listed = StringIO()
    call_command("setup_program", "--list", stdout=listed)
    assert "cruise_line_agents" in listed.getvalue() and "Cruise line agents" in listed.getvalue()

    out = StringIO()
    call_command("setup_program", "cruise_line_agents", "--by", "boss@maker.example", stdout=out)

    program = Program.objects.get(name="Cruise line agents")
    assert f"Set up Cruise line agents (/{program.slug}): 2 tiers, 1 rules, 2 rewards" in out.getvalue()
    assert program.rules.get().published_by.email == "boss@maker.example"


def test_the_command_refuses_clearly():
    with pytest.raises(CommandError, match="No active program manager"):
        call_command("setup_program", "cruise_line_agents", stdout=StringIO())
    ProgramManagerFactory()
    with pytest.raises(CommandError, match="No field program called “cruise”. There are: "):
        call_command("setup_program", "cruise", stdout=StringIO())
    with pytest.raises(CommandError, match="No program with the slug “nope”"):
        call_command("setup_program", "cruise_line_agents", "--program", "nope", stdout=StringIO())
    call_command("setup_program", "cruise_line_agents", stdout=StringIO())
    with pytest.raises(CommandError, match="Program with this Name already exists"):
        call_command("setup_program", "cruise_line_agents", stdout=StringIO())


def test_the_admin_action_asks_which_field_program_then_sets_up_the_empty_program(pm_client):
    program = ProgramFactory(name="Our new program", slug="our-new-program")
    url = reverse("admin:loyalty_program_changelist")
    chosen = {"action": "set_up_field_program", "_selected_action": [program.pk]}

    page = pm_client.post(url, chosen)
    assert page.status_code == 200
    assert "Cruise line agents" in page.content.decode()

    done = pm_client.post(url, {**chosen, "apply": "1", "blueprint": "cruise_line_agents"}, follow=True)

    assert "Our new program is set up: 2 tiers, 1 rules, 2 rewards" in " ".join(messages_of(done))
    program.refresh_from_db()
    assert (program.name, program.currency_name, program.money_currency) == ("Our new program", "Anchor points", "USD")
    assert program.rules.get().status == RuleStatus.PUBLISHED


def test_the_admin_action_refuses_a_program_that_is_not_empty(pm_client):
    program = ProgramFactory()
    TierFactory(program=program)
    url = reverse("admin:loyalty_program_changelist")

    done = pm_client.post(url, {"action": "set_up_field_program", "_selected_action": [program.pk]}, follow=True)

    assert "already has tiers, rules or rewards" in " ".join(messages_of(done))
    assert program.rules.count() == 0
