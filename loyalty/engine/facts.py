"""Gathering the facts an event needs (partner, tier, people, product, the people's certificates) into an
engine.Event.

Certificates: a rule can pay only a person certified on a product line (IncentiveRule.requires_certification).
The builders below take the compiled `rules` the event will be evaluated with; when one of them requires a
certificate, the participants' certified lines on the event's day are looked up in one query (none otherwise, so a
program without such rules pays nothing for them). Without `rules` nothing is looked up: call `certify(event,
rules)` before evaluating (earning.post_event should), else a rule requiring a certificate does not pay."""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from loyalty.constants import RuleEvent
from loyalty.engine.rules import ONE, CompiledRule, Event, Participant, certification_lines
from loyalty.models import Certificate, PartnerTier, Product, Program
from partners.constants import PayoutPolicy
from partners.models import Member, Partner

SALE_LINE = RuleEvent.SALE_LINE.value  # a plain str, like the rules' `event` it is compared with for every rule
SURVEY_ANSWERED = RuleEvent.SURVEY_ANSWERED.value

# Default of `sale_event(tier=...)`: look the partner's tier up. Pass the PartnerTier, or None for "no tier",
# when many lines share a partner (one lookup for all of them).
LOOK_UP = object()


def partner_tiers(program: Program, partner_ids) -> dict[int, PartnerTier]:
    rows = PartnerTier.objects.filter(program=program, partner_id__in=list(partner_ids)).select_related("tier")
    return {row.partner_id: row for row in rows}


# Certificates (selectors.certificates gives these to the other layers) -------------------------------------------


class Span(NamedTuple):
    """One certificate's line and validity: certified from `issued_on` until `expires_on` (excluded)."""

    line_id: int
    issued_on: date
    expires_on: date

    def covers(self, day: date) -> bool:
        return self.issued_on <= day < self.expires_on


def certified_lines(*, member_ids: Iterable[int], on: date) -> dict[int, frozenset[int]]:
    """{member id: the product lines they hold a valid certificate for on day `on`} (members without any are left
    out), in one query."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    rows = (
        Certificate.objects.filter(member_id__in=ids, issued_on__lte=on, expires_on__gt=on)
        .values_list("member_id", "product_line_id")
        .distinct()
    )
    held: dict[int, set[int]] = defaultdict(set)
    for member_id, line_id in rows:
        held[member_id].add(line_id)
    return {member_id: frozenset(lines) for member_id, lines in held.items()}


def certificate_spans(
    *, member_ids: Iterable[int], line_ids: Iterable[int], start: date | None = None, end: date | None = None
) -> dict[int, tuple[Span, ...]]:
    """{member id: their certificates for `line_ids`, as spans}, in one query: for evaluating many events of many
    days (a sell-out batch, a simulation). `start`/`end` (both included): only certificates valid on some day of
    that period."""
    ids, lines = sorted(set(member_ids)), sorted(set(line_ids))
    if not ids or not lines:
        return {}
    rows = Certificate.objects.filter(member_id__in=ids, product_line_id__in=lines)
    if start is not None:
        rows = rows.filter(expires_on__gt=start)
    if end is not None:
        rows = rows.filter(issued_on__lte=end)
    spans: dict[int, list[Span]] = defaultdict(list)
    for member_id, line_id, issued_on, expires_on in rows.values_list(
        "member_id", "product_line_id", "issued_on", "expires_on"
    ).order_by("member_id", "issued_on", "pk"):
        spans[member_id].append(Span(line_id, issued_on, expires_on))
    return {member_id: tuple(found) for member_id, found in spans.items()}


def held_on(
    spans_by_member: Mapping[int, Iterable[Span]], member_ids: Iterable[int], on: date
) -> dict[int, frozenset[int]]:
    """certified_lines() for day `on` from spans already fetched (certificate_spans). No query."""
    result = {}
    for member_id in member_ids:
        lines = frozenset(span.line_id for span in spans_by_member.get(member_id, ()) if span.covers(on))
        if lines:
            result[member_id] = lines
    return result


def with_certificates(event: Event, held: Mapping[int, frozenset[int]]) -> Event:
    """The event with each participant's certified lines taken from `held` ({member id: line ids}, as
    selectors.certificates.certified_lines gives for the event's day). No query."""
    participants = tuple(
        replace(person, certified_line_ids=held.get(person.member_id, frozenset())) for person in event.participants
    )
    return replace(event, participants=participants, certificates_known=True)


def certify(event: Event, rules: Iterable[CompiledRule] | None) -> Event:
    """The event with its participants' certified lines, looked up (one query) only when one of `rules` requires
    a certificate and they were not looked up yet."""
    if event.certificates_known or not event.participants or rules is None or not certification_lines(rules):
        return event
    held = certified_lines(member_ids=[person.member_id for person in event.participants], on=event.occurred_on)
    return with_certificates(event, held)


def _partner_facts(partner: Partner, tier: PartnerTier | None) -> dict:
    """The facts about the partner an event happened at: its kind, region, tier and payout policy."""
    return {
        "partner_id": partner.pk,
        "partner_kind": partner.kind,
        "region_id": partner.region_id,
        "tier_id": tier.tier_id if tier else None,
        "tier_name": tier.tier.name if tier else "",
        "tier_multiplier": tier.tier.multiplier if tier else ONE,
        "pooled": partner.payout_policy == PayoutPolicy.POOLED,
    }


def sale_event(
    *,
    program: Program,
    source_key: str,
    partner: Partner,
    product: Product,
    quantity: Decimal,
    amount: Decimal,
    occurred_on: date,
    actor: Member | None = None,
    colleagues: list[Member] = (),
    tier: PartnerTier | None | object = LOOK_UP,
    rules: Iterable[CompiledRule] | None = None,
) -> Event:
    """A sale line as the engine sees it (`rules`: see the module docstring on certificates)."""
    if tier is LOOK_UP:
        tier = partner_tiers(program, [partner.pk]).get(partner.pk)
    people = []
    if actor is not None:
        people.append(Participant(actor.pk, actor.role.code, actor.role.name, is_actor=True))
    people.extend(Participant(m.pk, m.role.code, m.role.name) for m in colleagues if actor is None or m.pk != actor.pk)
    event = Event(
        kind=SALE_LINE,
        source_key=source_key,
        occurred_on=occurred_on,
        **_partner_facts(partner, tier),
        participants=tuple(people),
        product_id=product.pk,
        line_id=product.line_id,
        quantity=Decimal(quantity),
        amount=Decimal(amount),
    )
    return certify(event, rules)


def claim_line_event(
    claim,
    line,
    *,
    quantity: Decimal,
    amount: Decimal,
    tier: PartnerTier | None,
    colleagues: list[Member],
    rules: Iterable[CompiledRule] | None = None,
) -> Event:
    """A sales claim's line as the engine sees it, for the `quantity` of it that pays (and that part's amount):
    the claimant acts, the colleagues they tagged share by role, on the invoice's date (`rules`: see the module
    docstring on certificates)."""
    return sale_event(
        program=claim.program,
        source_key=line.source_key,
        partner=claim.partner,
        product=line.product,
        quantity=quantity,
        amount=amount,
        occurred_on=claim.invoice_date,
        actor=claim.member,
        colleagues=colleagues,
        tier=tier,
        rules=rules,
    )


def member_event(
    *,
    kind: str,
    program: Program,
    source_key: str,
    member: Member,
    occurred_on: date,
    quantity: Decimal = ONE,
    unit: str = "units",
    subject: str = "",
    amount: Decimal = Decimal(0),
    line_id: int | None = None,
    rules: Iterable[CompiledRule] | None = None,
) -> Event:
    """Something one member did (answered a survey; later: passed a training, converted a referral) as the engine
    sees it: the member acts, with their role, partner, tier and region; `quantity` of `unit` is what the formulas
    count, `amount` the money it was worth (a referral's deal), `line_id` the product line it concerns (a returned
    unit's), `subject` names what it was about (`rules`: see the module docstring on certificates)."""
    tier = partner_tiers(program, [member.partner_id]).get(member.partner_id)
    event = Event(
        kind=kind,
        source_key=source_key,
        occurred_on=occurred_on,
        **_partner_facts(member.partner, tier),
        participants=(Participant(member.pk, member.role.code, member.role.name, is_actor=True),),
        quantity=Decimal(quantity),
        amount=Decimal(amount),
        line_id=line_id,
        unit=unit,
        subject=subject,
    )
    return certify(event, rules)


def survey_source_key(survey, member: Member) -> str:
    return f"survey:{survey.pk}:{member.pk}"


def survey_event(
    *, program: Program, survey, member: Member, answered_on: date, rules: Iterable[CompiledRule] | None = None
) -> Event:
    """A member's answer to a survey: once per member and survey (its source key). The quantity is the points the
    survey offers for answering, so a rule of 1 pt per unit pays exactly those (decisions #17)."""
    return member_event(
        kind=SURVEY_ANSWERED,
        program=program,
        source_key=survey_source_key(survey, member),
        member=member,
        occurred_on=answered_on,
        quantity=Decimal(survey.points_for_answer),
        unit="pts offered",
        subject=f"survey “{survey.title}”",
        rules=rules,
    )


def partner_event(
    *,
    kind: str,
    program: Program,
    source_key: str,
    partner: Partner,
    occurred_on: date,
    quantity: Decimal = ONE,
    unit: str = "units",
    subject: str = "",
    custom_event: str = "",
) -> Event:
    """Something a company did or reached with nobody acting (a company-level challenge completed): the partner's
    kind, region and tier are the facts, and with no acting member a rule pays the partner's company account."""
    tier = partner_tiers(program, [partner.pk]).get(partner.pk)
    return Event(
        kind=kind,
        source_key=source_key,
        occurred_on=occurred_on,
        **_partner_facts(partner, tier),
        quantity=Decimal(quantity),
        unit=unit,
        subject=subject,
        custom_event=custom_event,
    )
