"""Activity that other systems report (through the API's POST /api/v1/events/): a training module passed in an
external learning system, and custom events — a name and facts that the program's rules for the "Custom API event"
match. Each pays through the rule engine like every other event and answers who gets what (earning.Paid); with
`dry_run` nothing is written and the answer is what posting would pay (earning.preview_event: the same postings,
caps and budgets as used so far).

A training pass is recorded as a quiz passed on the site is (services.training.pass_externally): the module pays
once per member, whoever reports it and however often.

A custom event is something one member did: they act, with their role, partner, tier and region, as in every member
event (engine.facts.member_event). Its `name` is what a rule's `custom_event` names (a rule naming none pays every
custom event); its facts are what rules read: `quantity` (what per-unit formulas count, 1 unless said), `amount`
(what per-amount formulas and minimum amounts read, 0 unless said), and the `product` or `product_line` (what rules
limited to products or lines match). Its source key is the reporter's and the event's own external id, so the same
event reported twice posts once: the ledger's idempotency keys derive from it. A name no rule pays for is not an
error: it pays nothing (postings []), as a sale of a product no rule covers does."""

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from loyalty.common.errors import ApplicationError
from loyalty.constants import EntrySource, RuleEvent
from loyalty.engine.facts import member_event
from loyalty.error_codes import ErrorCode
from loyalty.models import Module, Product, ProductLine, Program
from loyalty.services import training
from loyalty.services.earning import Paid, paid_of, post_event, preview_event
from partners.constants import MemberStatus
from partners.models import Member

# PointsEntry.source_type of what custom events pay.
CUSTOM_EVENT_SOURCE = EntrySource.CUSTOM_EVENT
CUSTOM = RuleEvent.CUSTOM.value


def custom_event_source_key(*, reporter: str, external_id: str) -> str:
    """A custom event's source key: its external id within its reporter's (an API client's) events."""
    return f"custom:{reporter}:{external_id}"


def training_pass_report(
    *, member: Member, module: Module, passed_at: datetime, percent: int | None = None, dry_run: bool = False
) -> list[Paid]:
    """`member` passed `module` elsewhere (services.training.pass_externally); with `dry_run`, what that would pay."""
    if dry_run:
        return training.pass_externally_preview(member=member, module=module, passed_at=passed_at, percent=percent)
    return paid_of(training.pass_externally(member=member, module=module, passed_at=passed_at, percent=percent))


def custom_event_report(
    *,
    program: Program,
    member: Member,
    source_key: str,
    name: str,
    occurred_on: date,
    quantity: Decimal = Decimal(1),
    amount: Decimal = Decimal(0),
    product: Product | None = None,
    product_line: ProductLine | None = None,
    dry_run: bool = False,
) -> list[Paid]:
    """Post the custom event `name` that `member` made happen on `occurred_on` (see the module docstring), or with
    `dry_run` answer what posting would pay. Refused, with nothing written, for a program that is not running and a
    member who is not active."""
    if not program.is_active:
        raise ApplicationError(_("The program is not running."), ErrorCode.PROGRAM_INACTIVE)
    member = Member.objects.select_related("partner", "role").get(pk=member.pk)
    if member.status != MemberStatus.ACTIVE:
        raise ApplicationError(
            _("Only active members earn points; this membership is %(status)s.")
            % {"status": member.get_status_display().lower()},
            ErrorCode.MEMBER_INACTIVE,
            extra={"field": "member"},
        )
    line_id = product.line_id if product is not None else getattr(product_line, "pk", None)
    event = member_event(
        kind=CUSTOM,
        program=program,
        source_key=source_key,
        member=member,
        occurred_on=occurred_on,
        quantity=quantity,
        amount=amount,
        line_id=line_id,
        subject=f"event “{name}”",
    )
    event = replace(event, custom_event=name, product_id=getattr(product, "pk", None))
    if dry_run:
        return preview_event(program=program, event=event)
    return paid_of(post_event(program=program, event=event, source_type=CUSTOM_EVENT_SOURCE))
