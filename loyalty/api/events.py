"""Activity events from other systems: a training module passed in an external learning system, or a custom event
that the program's rules match by its name and facts (loyalty.services.external_events)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from integrations.api.base import ApiView, StrictSerializer, problem_responses
from integrations.api.problems import Problem
from integrations.constants import Scope
from loyalty.common.keys import matching_key
from loyalty.models import Module, Product, ProductLine
from loyalty.services import external_events
from partners.visibility import members_for

TRAINING_PASSED = "training_passed"
CUSTOM = "custom"
# How far ahead of the server's clock an event's time may be (the reporter's clock may run a little fast).
CLOCK_SKEW = timedelta(minutes=5)
# Before this, a time is a mistake (and near year 1 a time zone's conversion would overflow).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _unknown(field: str, detail: str) -> Problem:
    code = f"unknown_{field.rpartition('.')[2]}"
    return Problem(422, code, detail, errors=[{"field": field, "code": code, "reason": detail}])


class EventReportView(ApiView):
    """Report one activity event; it pays through the rule engine like every other event."""

    scope = Scope.EVENTS_WRITE

    class Input(StrictSerializer):
        class Facts(StrictSerializer):
            score = serializers.IntegerField(
                min_value=0, max_value=100, required=False, help_text="training_passed: the score in percent."
            )
            quantity = serializers.DecimalField(
                max_digits=12, decimal_places=3, min_value=Decimal("0.001"), required=False,
                help_text="custom: what per-unit rules count (1 unless said).",
            )  # fmt: skip
            amount = serializers.DecimalField(
                max_digits=14, decimal_places=2, min_value=Decimal(0), required=False,
                help_text="custom: the money it was worth, for per-amount rules and minimum amounts (0 unless said).",
            )  # fmt: skip
            product = serializers.CharField(
                max_length=60, required=False, help_text="custom: the SKU of the product it concerns."
            )
            product_line = serializers.SlugField(
                max_length=40, required=False, help_text="custom: the code of the product line it concerns."
            )

        external_id = serializers.CharField(
            max_length=80, help_text="The event's id in the reporting system: the same id twice posts once."
        )
        type = serializers.ChoiceField(choices=[TRAINING_PASSED, CUSTOM])
        member = serializers.IntegerField(min_value=1, help_text="The member's id.")
        occurred_at = serializers.DateTimeField(required=False, help_text="When it happened (default: now).")
        module = serializers.IntegerField(
            min_value=1, required=False, help_text="training_passed: the id of the program's training module."
        )
        name = serializers.SlugField(
            max_length=60, required=False, help_text="custom: the event's name, which rules for custom events name."
        )
        facts = Facts(required=False)
        dry_run = serializers.BooleanField(
            default=False, help_text="true: post nothing, answer what posting would pay."
        )

        def validate_external_id(self, value: str) -> str:
            if not value.isprintable():
                raise serializers.ValidationError("Use printable characters only.", code="invalid")
            return value

        def validate_occurred_at(self, value):
            if value > timezone.now() + CLOCK_SKEW:
                raise serializers.ValidationError("The event cannot happen in the future.", code="future")
            if value < EARLIEST:
                raise serializers.ValidationError("The event cannot happen before the year 2000.", code="too_old")
            return value

        def validate(self, attrs):
            kind, facts = attrs["type"], attrs.get("facts") or {}
            errors = {}

            def refuse(field: str, message: str, code: str = "not_allowed") -> None:
                errors[field] = [serializers.ErrorDetail(message, code)]

            needs, other = ("module", "name") if kind == TRAINING_PASSED else ("name", "module")
            if needs not in attrs:
                refuse(needs, f"A {kind} event needs its {needs}.", "required")
            if other in attrs:
                refuse(other, f"A {kind} event has no {other}.")
            own_facts = {"score"} if kind == TRAINING_PASSED else {"quantity", "amount", "product", "product_line"}
            for name in sorted(set(facts) - own_facts):
                refuse(f"facts.{name}", f"Not a fact of {kind} events.")
            if "product" in facts and "product_line" in facts:
                refuse("facts.product_line", "Give the product or its product line, not both.")
            if errors:
                raise serializers.ValidationError(errors)
            return attrs

    class Output(serializers.Serializer):
        class Posting(serializers.Serializer):
            account_id = serializers.IntegerField(
                allow_null=True, help_text="null in a dry run when the account does not exist yet."
            )
            member_id = serializers.IntegerField(allow_null=True, help_text="null: the partner's company account.")
            partner_id = serializers.IntegerField()
            role = serializers.CharField(allow_null=True, help_text="The member's role code; null for the company.")
            points = serializers.IntegerField()
            rule = serializers.CharField(help_text="The code of the rule that pays.")
            rule_version = serializers.IntegerField()
            explanation = serializers.CharField()

        external_id = serializers.CharField()
        type = serializers.CharField()
        member = serializers.IntegerField()
        dry_run = serializers.BooleanField()
        points = serializers.IntegerField(help_text="What the event pays in all.")
        postings = Posting(many=True, help_text="Who gets what: one row per account and rule.")

    @extend_schema(
        operation_id="event_report",
        description=(
            "One activity event of one member, paid through the program's rules like every other event.\n\n"
            "- `training_passed`: the member passed a training `module` in an external learning system (`facts`: "
            "`score`, default the module's pass mark). Recorded as a quiz passed on the site: the module pays once "
            "per member (a repeat, with any external id, posts nothing and answers what the first pass paid), and "
            "passing the last module of a course that certifies gives the certificate.\n"
            "- `custom`: something the member did, named by `name`; the rules for custom events naming that name "
            "(or none) pay it, reading its `facts` (`quantity`, `amount`, `product` SKU or `product_line` code). The "
            "same `external_id` from the same client posts once. A name no rule pays for is not an error: it pays "
            "0 points (`postings` is empty).\n\n"
            "With `dry_run` nothing is posted (200): the answer is what posting would pay now, with the rules' caps "
            "and budgets as used so far. Posting answers 201."
        ),
        request=Input,
        responses={
            201: Output,
            200: Output,
            **problem_responses(
                422,
                s422="codes: unknown_member (or not a member this client may see), unknown_module, unknown_product, "
                "unknown_product_line, member_inactive, program_inactive, course_not_open, course_closed",
            ),
        },
        examples=[
            OpenApiExample(
                "A custom event",
                value={"external_id": "webinar-2026-11-member-4711", "type": "custom", "member": 4711,
                       "name": "webinar-attended", "facts": {"quantity": 1}},
                request_only=True,
            ),
            OpenApiExample(
                "A training passed elsewhere, as a dry run",
                value={"external_id": "lms-88213", "type": "training_passed", "member": 4711, "module": 12,
                       "occurred_at": "2026-11-30T14:05:00Z", "facts": {"score": 92}, "dry_run": True},
                request_only=True,
            ),
            OpenApiExample(
                "Who gets what",
                value={"external_id": "webinar-2026-11-member-4711", "type": "custom", "member": 4711,
                       "dry_run": False, "points": 50, "postings": [
                           {"account_id": 901, "member_id": 4711, "partner_id": 37, "role": "sales", "points": 35,
                            "rule": "webinar", "rule_version": 1,
                            "explanation": "Webinar v1, event “webinar-attended”: 50 pts = 50; Sales share 70% = 35"},
                           {"account_id": 77, "member_id": None, "partner_id": 37, "role": None, "points": 15,
                            "rule": "webinar", "rule_version": 1,
                            "explanation": "Webinar v1, event “webinar-attended”: 50 pts = 50; company share = 15"},
                       ]},
                response_only=True,
                status_codes=["201"],
            ),
        ],
        tags=["Activity"],
    )  # fmt: skip
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        given = data.validated_data
        program = self.caller.program
        member = members_for(self.caller.viewer).filter(pk=given["member"]).first()
        if member is None:
            raise _unknown("member", f"There is no member {given['member']} that this client may report for.")
        facts = given.get("facts") or {}
        occurred_at = given.get("occurred_at") or timezone.now()
        if given["type"] == TRAINING_PASSED:
            module = Module.objects.filter(pk=given["module"], course__program=program).first()
            if module is None:
                raise _unknown("module", f"The program has no training module {given['module']}.")
            paid = external_events.training_pass_report(
                member=member, module=module, passed_at=occurred_at, percent=facts.get("score"),
                dry_run=given["dry_run"],
            )  # fmt: skip
        else:
            product = line = None
            if "product" in facts:
                product = Product.objects.filter(is_active=True, sku_key=matching_key(facts["product"])).first()
                if product is None:
                    raise _unknown("facts.product", f"There is no active product with the SKU “{facts['product']}”.")
            if "product_line" in facts:
                line = ProductLine.objects.filter(code=facts["product_line"]).first()
                if line is None:
                    raise _unknown("facts.product_line", f"There is no product line “{facts['product_line']}”.")
            paid = external_events.custom_event_report(
                program=program,
                member=member,
                source_key=external_events.custom_event_source_key(
                    reporter=f"client{self.caller.client.pk}", external_id=given["external_id"]
                ),
                name=given["name"],
                occurred_on=timezone.localdate(occurred_at),
                quantity=facts.get("quantity", Decimal(1)),
                amount=facts.get("amount", Decimal(0)),
                product=product,
                product_line=line,
                dry_run=given["dry_run"],
            )
        postings = sorted(paid, key=lambda p: (p.member_id is None, p.member_id or 0, p.rule_code, p.rule_version))
        out = {
            "external_id": given["external_id"],
            "type": given["type"],
            "member": member.pk,
            "dry_run": given["dry_run"],
            "points": sum(p.points for p in postings),
            "postings": [
                {"account_id": p.account_id, "member_id": p.member_id, "partner_id": p.partner_id, "role": p.role,
                 "points": p.points, "rule": p.rule_code, "rule_version": p.rule_version,
                 "explanation": p.explanation}
                for p in postings
            ],
        }  # fmt: skip
        return Response(self.Output(out).data, status=200 if given["dry_run"] else 201)
