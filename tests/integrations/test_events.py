"""POST /api/v1/events/: custom events and training passed elsewhere, paid through the rule engine; dry runs answer
what posting pays; the same event posts once; every refusal changes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.constants import AttemptStatus, CapPeriod, Formula, RuleEvent
from loyalty.models import Certificate, PartnerTier, PointsAccount, PointsEntry, QuizAttempt, RuleUsage
from partners.constants import MemberStatus, PartnerKind, PayoutPolicy
from tests.integrations.helpers import problem
from tests.loyalty.factories import (
    CourseFactory,
    ModuleFactory,
    ProductFactory,
    ProductLineFactory,
    ProgramFactory,
    RuleFactory,
    TierFactory,
)
from tests.partners.factories import MemberFactory, OwnerFactory, PartnerFactory, role

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events/"


def custom_rule(program, points=50, name="webinar", **fields):
    """A rule paying a fixed number of points for the custom event `name`."""
    values = {"event": RuleEvent.CUSTOM, "custom_event": name, "name": "Webinar", "formula": Formula.FIXED,
              "value": Decimal(points), "apply_tier_multiplier": False}  # fmt: skip
    return RuleFactory(program=program, **{**values, **fields})


def training_rule(program, points=100, **fields):
    values = {"event": RuleEvent.TRAINING_PASSED, "name": "Training passed", "formula": Formula.FIXED,
              "value": Decimal(points), "apply_tier_multiplier": False}  # fmt: skip
    return RuleFactory(program=program, **{**values, **fields})


def custom(member, external_id="evt-1", name="webinar", **more):
    return {"external_id": external_id, "type": "custom", "member": member.pk, "name": name, **more}


def passed(member, module, external_id="lms-1", **more):
    return {"external_id": external_id, "type": "training_passed", "member": member.pk, "module": module.pk, **more}


def send(http, body, **headers):
    return http.post(EVENTS, body, format="json", **headers)


def balance(program, member) -> int:
    account = PointsAccount.objects.filter(program=program, member=member).first()
    return account.available + account.pending if account else 0


def without_new_accounts(postings):
    """Postings with the account ids a dry run cannot know yet (accounts it would open) left out."""
    return [{key: value for key, value in posting.items() if key != "account_id"} for posting in postings]


# Custom events ------------------------------------------------------------------------------------------------------


def test_a_custom_event_pays_the_member_and_says_who_gets_what(machine):
    http, client = machine(scopes=["events:write"])
    rule = custom_rule(client.program, points=50)
    member = MemberFactory()

    response = send(http, custom(member, facts={"quantity": 2}))

    assert response.status_code == 201, response.content
    account = PointsAccount.objects.get(program=client.program, member=member)
    assert response.json() == {
        "external_id": "evt-1", "type": "custom", "member": member.pk, "dry_run": False, "points": 50,
        "postings": [{"account_id": account.pk, "member_id": member.pk, "partner_id": member.partner_id,
                      "role": "sales", "points": 50, "rule": rule.code, "rule_version": 1,
                      "explanation": "Webinar v1, event “webinar”: 50 pts = 50"}],
    }  # fmt: skip
    entry = PointsEntry.objects.get(account=account)
    assert (entry.source_type, entry.source_id) == ("custom_event", f"custom:client{client.pk}:evt-1")


def test_the_same_event_twice_posts_once_and_answers_the_same(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program, points=50)
    member = MemberFactory()

    first = send(http, custom(member))
    again = send(http, custom(member))

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert balance(client.program, member) == 50
    assert PointsEntry.objects.count() == 1


def test_another_external_id_is_another_event_and_another_clients_id_too(machine):
    http, client = machine(scopes=["events:write"])
    other, _ = machine(scopes=["events:write"], program=client.program)
    custom_rule(client.program, points=50)
    member = MemberFactory()

    send(http, custom(member, external_id="a"))
    send(http, custom(member, external_id="b"))
    send(other, custom(member, external_id="a"))

    assert balance(client.program, member) == 150


def test_a_name_no_rule_pays_for_is_no_error_and_pays_nothing(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program, name="webinar")
    member = MemberFactory()

    response = send(http, custom(member, name="trade-show-visit"))

    assert response.status_code == 201
    assert (response.json()["points"], response.json()["postings"]) == (0, [])
    assert not PointsEntry.objects.exists()


def test_a_rule_without_a_name_pays_every_custom_event_and_facts_feed_the_formulas(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program, name="", formula=Formula.PER_AMOUNT, value=Decimal("0.5"), min_amount=Decimal(100))
    member = MemberFactory()

    big = send(http, custom(member, external_id="big", name="deal-closed", facts={"amount": "300.00"}))
    small = send(http, custom(member, external_id="small", name="deal-closed", facts={"amount": "99.99"}))

    assert big.json()["points"] == 150
    assert "300 × 0.5 pts per 1.00 = 150" in big.json()["postings"][0]["explanation"]
    assert small.json()["points"] == 0


def test_rules_on_products_and_lines_match_the_events_product_or_line(machine):
    http, client = machine(scopes=["events:write"])
    softeners, filters = ProductLineFactory(code="softeners"), ProductLineFactory(code="filters")
    rule = custom_rule(client.program, name="demo-given", formula=Formula.PER_UNIT, value=Decimal(10))
    rule.product_lines.set([softeners])
    product = ProductFactory(sku="AQ-100", line=softeners)
    member = MemberFactory()

    by_sku = send(http, custom(member, "1", "demo-given", facts={"product": " aq–100 ", "quantity": "3"}))
    by_line = send(http, custom(member, "2", "demo-given", facts={"product_line": "softeners"}))
    other_line = send(http, custom(member, "3", "demo-given", facts={"product_line": filters.code}))
    no_product = send(http, custom(member, "4", "demo-given"))

    assert [r.json()["points"] for r in (by_sku, by_line, other_line, no_product)] == [30, 10, 0, 0]
    assert product.pk  # matched by its matching key: " aq–100 " is "AQ-100"


# Dry runs -------------------------------------------------------------------------------------------------------------


def _owner_and_rep(**partner):
    owner = OwnerFactory(partner=PartnerFactory(**partner))
    rep = MemberFactory(partner=owner.partner, role=role("sales"))
    return owner, rep


def with_roles(rule, *codes):
    rule.roles.set([role(code) for code in codes])
    return rule


RULE_SETS = {
    "one rule to the member": lambda program: [custom_rule(program, points=50)],
    "a split between roles and the company": lambda program: [
        custom_rule(program, points=100, shares=[{"role": "sales", "percent": 60}, {"role": "engineer", "percent": 30}])
    ],
    "rules per role": lambda program: [
        with_roles(custom_rule(program, points=40, code="sales-only"), "sales"),
        with_roles(custom_rule(program, points=70, code="engineers-only"), "engineer"),
        custom_rule(program, points=5, code="everyone", formula=Formula.PER_UNIT),
    ],
    "a cap per member, partly used": lambda program: [
        custom_rule(program, points=80, cap_points=100, cap_period=CapPeriod.MONTH),
    ],
    "a budget nearly spent": lambda program: [custom_rule(program, points=80, budget_points=1000, budget_used=900)],
    "a bonus on top and a tier": lambda program: [
        custom_rule(program, points=100, apply_tier_multiplier=True),
        custom_rule(program, code="bonus", formula=Formula.PERCENT_BONUS, value=Decimal(25), priority=50),
    ],
}


@pytest.mark.parametrize("rule_set", list(RULE_SETS))
def test_a_dry_run_answers_exactly_what_posting_then_pays_and_posts_nothing(machine, rule_set):
    http, client = machine(scopes=["events:write"])
    program = client.program
    rules = RULE_SETS[rule_set](program)
    owner, rep = _owner_and_rep()
    gold = TierFactory(program=program, name="Gold", multiplier=Decimal("1.10"))
    today = timezone.localdate()
    PartnerTier.objects.create(program=program, partner=owner.partner, tier=gold, since=today, held_until=today)
    send(http, custom(rep, external_id="earlier", facts={"quantity": 2}))  # caps and budgets are partly used
    entries = PointsEntry.objects.count()

    dry = send(http, custom(rep, facts={"quantity": 3}, dry_run=True))
    assert PointsEntry.objects.count() == entries
    real = send(http, custom(rep, facts={"quantity": 3}))

    assert (dry.status_code, real.status_code) == (200, 201)
    assert dry.json()["dry_run"] is True and real.json()["dry_run"] is False
    assert dry.json()["points"] == real.json()["points"] > 0
    assert without_new_accounts(dry.json()["postings"]) == without_new_accounts(real.json()["postings"])
    for previewed, posted in zip(dry.json()["postings"], real.json()["postings"], strict=True):
        assert previewed["account_id"] in (None, posted["account_id"])
    assert rules


def test_a_dry_run_says_what_a_split_gives_each_role_and_the_company(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program, points=100, shares=[{"role": "sales", "percent": 60}])
    owner, rep = _owner_and_rep()

    body = send(http, custom(rep, dry_run=True)).json()

    assert [(p["member_id"], p["role"], p["points"]) for p in body["postings"]] == [
        (rep.pk, "sales", 60), (None, None, 40),
    ]  # fmt: skip
    assert [p["account_id"] for p in body["postings"]] == [None, None]  # no account opened yet
    assert not PointsAccount.objects.exists()


def test_a_dry_run_of_a_pooled_partner_pays_the_company(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program, points=100, shares=[{"role": "sales", "percent": 60}])
    _owner, rep = _owner_and_rep(payout_policy=PayoutPolicy.POOLED)

    dry = send(http, custom(rep, dry_run=True)).json()
    real = send(http, custom(rep)).json()

    assert [(p["member_id"], p["points"]) for p in dry["postings"]] == [(None, 100)]
    assert without_new_accounts(dry["postings"]) == without_new_accounts(real["postings"])


def test_a_dry_run_of_an_event_posted_before_answers_what_it_posted(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program, points=80, cap_points=100)
    member = MemberFactory()
    real = send(http, custom(member)).json()

    dry = send(http, custom(member, dry_run=True)).json()

    assert dry["postings"] == real["postings"]
    assert RuleUsage.objects.get().points == 80


def test_a_cap_used_up_shows_in_the_dry_run_as_in_the_posting(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program, points=80, cap_points=100)
    member = MemberFactory()
    send(http, custom(member, external_id="first"))

    dry = send(http, custom(member, external_id="second", dry_run=True)).json()
    real = send(http, custom(member, external_id="second")).json()

    assert dry["points"] == real["points"] == 20
    assert dry["postings"][0]["explanation"].endswith("— limited to 20 by the rule's cap or budget")
    assert dry["postings"] == real["postings"]


# Training passed elsewhere ------------------------------------------------------------------------------------------


def test_a_training_passed_elsewhere_is_recorded_as_a_pass_and_pays_once(machine):
    http, client = machine(scopes=["events:write"])
    rule = training_rule(client.program, points=100)
    module = ModuleFactory(course=CourseFactory(program=client.program), title="Softeners 101")
    member = MemberFactory()

    first = send(http, passed(member, module, facts={"score": 92}))
    again = send(http, passed(member, module))
    other_id = send(http, passed(member, module, external_id="lms-2"))

    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["points"], body["postings"][0]["rule"]) == (100, rule.code)
    assert body["postings"][0]["explanation"] == "Training passed v1, module “Softeners 101”: 100 pts = 100"
    assert again.json()["postings"] == other_id.json()["postings"] == body["postings"]
    attempt = QuizAttempt.objects.get()
    assert (attempt.status, attempt.percent, attempt.question_order, attempt.round) == (AttemptStatus.PASSED, 92, [], 1)
    assert balance(client.program, member) == 100


def test_a_training_pass_without_a_score_counts_the_pass_mark(machine):
    http, client = machine(scopes=["events:write"])
    training_rule(client.program, formula=Formula.PER_UNIT, value=Decimal(1))
    module = ModuleFactory(course=CourseFactory(program=client.program), pass_percent=75)
    member = MemberFactory()

    assert send(http, passed(member, module)).json()["points"] == 75


def test_a_training_dry_run_answers_what_the_pass_then_pays(machine):
    http, client = machine(scopes=["events:write"])
    training_rule(client.program, points=100, shares=[{"role": "sales", "percent": 50}], cap_points=120)
    module = ModuleFactory(course=CourseFactory(program=client.program))
    _owner, rep = _owner_and_rep()

    dry = send(http, passed(rep, module, dry_run=True))
    assert not QuizAttempt.objects.exists() and not PointsEntry.objects.exists()
    real = send(http, passed(rep, module))

    assert dry.status_code == 200
    assert without_new_accounts(dry.json()["postings"]) == without_new_accounts(real.json()["postings"])
    assert dry.json()["points"] == 100


def test_passing_the_last_module_elsewhere_certifies(machine):
    http, client = machine(scopes=["events:write"])
    course = CourseFactory(program=client.program, certification_months=12, product_line=ProductLineFactory())
    first, last = ModuleFactory(course=course), ModuleFactory(course=course)
    member = MemberFactory()

    send(http, passed(member, first, external_id="1"))
    assert not Certificate.objects.exists()
    send(http, passed(member, last, external_id="2"))

    certificate = Certificate.objects.get()
    assert (certificate.member, certificate.course) == (member, course)


def test_a_renewal_pass_elsewhere_pays_nothing(machine):
    http, client = machine(scopes=["events:write"])
    training_rule(client.program, points=100)
    course = CourseFactory(program=client.program, certification_months=1, product_line=ProductLineFactory())
    module = ModuleFactory(course=course)
    member = MemberFactory()
    long_ago = timezone.now() - timedelta(days=90)
    send(http, passed(member, module, external_id="first", occurred_at=long_ago.isoformat()))  # certified, expired

    dry = send(http, passed(member, module, external_id="renewal", dry_run=True))
    renewal = send(http, passed(member, module, external_id="renewal"))

    assert (dry.json()["postings"], renewal.json()["postings"]) == ([], [])
    assert QuizAttempt.objects.filter(round=2, status=AttemptStatus.PASSED).count() == 1
    assert Certificate.objects.count() == 2
    assert balance(client.program, member) == 100


# Refusals -----------------------------------------------------------------------------------------------------------


def _nothing_changed():
    assert not PointsEntry.objects.exists()
    assert not QuizAttempt.objects.exists()


def test_a_member_the_client_may_not_see_is_unknown(machine):
    distributor = PartnerFactory(kind=PartnerKind.DISTRIBUTOR)
    http, client = machine(scopes=["events:write"], distributor=distributor)
    custom_rule(client.program)
    own = MemberFactory(partner=PartnerFactory(parent=distributor))
    elsewhere = MemberFactory()

    body = problem(send(http, custom(elsewhere)), 422, "unknown_member")
    missing = problem(send(http, {**custom(own), "member": 987654}), 422, "unknown_member")

    assert body["errors"] == [{"field": "member", "code": "unknown_member", "reason": body["detail"]}]
    assert missing["errors"][0]["field"] == "member"
    _nothing_changed()
    assert send(http, custom(own)).status_code == 201


def test_unknown_modules_products_and_lines_are_refused_on_their_field(machine):
    http, client = machine(scopes=["events:write"])
    training_rule(client.program)
    custom_rule(client.program)
    member = MemberFactory()
    other_programs = ModuleFactory(course=CourseFactory(program=ProgramFactory()))

    module = problem(send(http, passed(member, other_programs)), 422, "unknown_module")
    product = problem(send(http, custom(member, facts={"product": "NOPE"})), 422, "unknown_product")
    line = problem(send(http, custom(member, facts={"product_line": "nope"})), 422, "unknown_product_line")

    assert [module["errors"][0]["field"], product["errors"][0]["field"], line["errors"][0]["field"]] == [
        "module", "facts.product", "facts.product_line",
    ]  # fmt: skip
    _nothing_changed()


def test_a_member_who_is_not_active_earns_nothing(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program)
    training_rule(client.program)
    module = ModuleFactory(course=CourseFactory(program=client.program))
    member = MemberFactory(status=MemberStatus.LEFT)

    problem(send(http, custom(member)), 422, "member_inactive")
    problem(send(http, custom(member, dry_run=True)), 422, "member_inactive")
    problem(send(http, passed(member, module)), 422, "member_inactive")
    _nothing_changed()


def test_a_course_not_open_to_the_member_is_refused_like_on_the_site(machine):
    http, client = machine(scopes=["events:write"])
    training_rule(client.program)
    draft = ModuleFactory(course=CourseFactory(program=client.program, is_published=False))
    closed = ModuleFactory(course=CourseFactory(program=client.program, closes_on=timezone.localdate() - timedelta(1)))
    member = MemberFactory()

    problem(send(http, passed(member, draft)), 422, "course_not_open")
    problem(send(http, passed(member, closed)), 422, "course_closed")
    problem(send(http, passed(member, closed, dry_run=True)), 422, "course_closed")
    _nothing_changed()


def test_a_program_that_is_not_running_pays_no_custom_event(machine):
    http, client = machine(scopes=["events:write"], program=ProgramFactory(is_active=False))
    custom_rule(client.program)

    problem(send(http, custom(MemberFactory())), 422, "program_inactive")
    _nothing_changed()


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"member": "seven"}, "member", "invalid"),
        ({"member": None}, "member", "null"),
        ({"type": "sale"}, "type", "invalid_choice"),
        ({"colour": "red"}, "colour", "unknown_field"),
        ({"external_id": ""}, "external_id", "blank"),
        ({"external_id": "x" * 81}, "external_id", "max_length"),
        ({"external_id": "tab\there"}, "external_id", "invalid"),
        ({"name": "Not A Slug!"}, "name", "invalid"),
        ({"module": 3}, "module", "not_allowed"),
        ({"facts": {"quantity": 0}}, "facts.quantity", "min_value"),
        ({"facts": {"quantity": "lots"}}, "facts.quantity", "invalid"),
        ({"facts": {"amount": "-1"}}, "facts.amount", "min_value"),
        ({"facts": {"score": 90}}, "facts.score", "not_allowed"),
        ({"facts": {"colour": "red"}}, "facts.colour", "unknown_field"),
        ({"facts": {"product": "AQ-1", "product_line": "softeners"}}, "facts.product_line", "not_allowed"),
        ({"facts": "many"}, "facts", "invalid"),
        ({"dry_run": "perhaps"}, "dry_run", "invalid"),
        ({"occurred_at": "yesterday"}, "occurred_at", "invalid"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", "future"),
        ({"occurred_at": "0001-01-01T00:00:00-05:00"}, "occurred_at", "too_old"),
    ],
)
def test_bad_custom_events_are_400_on_their_field_and_change_nothing(machine, change, field, code):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program)
    member = MemberFactory()

    body = problem(send(http, {**custom(member), **change}), 400, "invalid")

    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in body["errors"]]
    _nothing_changed()


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"type": "custom"}, "name", "required"),
        ({"type": "training_passed"}, "module", "required"),
        ({"type": "training_passed", "module": 1, "name": "webinar"}, "name", "not_allowed"),
        ({"type": "training_passed", "module": 1, "facts": {"score": 101}}, "facts.score", "max_value"),
        ({"type": "training_passed", "module": 1, "facts": {"quantity": 1}}, "facts.quantity", "not_allowed"),
        ({"type": "training_passed", "module": 0}, "module", "min_value"),
    ],
)
def test_each_type_needs_its_own_fields(machine, body, field, code):
    http, _ = machine(scopes=["events:write"])
    member = MemberFactory()

    found = problem(send(http, {"external_id": "x", "member": member.pk, **body}), 400, "invalid")

    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in found["errors"]]


def test_missing_fields_are_400(machine):
    http, _ = machine(scopes=["events:write"])

    body = problem(send(http, {}), 400, "invalid")
    malformed = http.post(EVENTS, data=b'{"type": ', content_type="application/json")

    assert {e["field"] for e in body["errors"]} == {"external_id", "type", "member"}
    problem(malformed, 400, "malformed")


def test_only_clients_with_events_write_may_report(machine, person_api):
    http, client = machine(scopes=["balances:read"])
    custom_rule(client.program)
    member = MemberFactory()

    problem(send(http, custom(member)), 403, "missing_scope")
    problem(send(person_api(member.user), custom(member)), 403, "forbidden")
    _nothing_changed()


def test_an_idempotency_key_replays_the_first_answer(machine):
    http, client = machine(scopes=["events:write"])
    custom_rule(client.program)
    member = MemberFactory()

    first = send(http, custom(member), HTTP_IDEMPOTENCY_KEY="k1")
    again = send(http, custom(member), HTTP_IDEMPOTENCY_KEY="k1")
    reused = send(http, custom(member, external_id="other"), HTTP_IDEMPOTENCY_KEY="k1")

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.content == first.content
    problem(reused, 422, "idempotency_key_reused")
    assert PointsEntry.objects.count() == 1
