"""Gathering the facts an event needs (partner, tier, people, product) into an engine.Event."""

from datetime import date
from decimal import Decimal

from loyalty.constants import RuleEvent
from loyalty.engine.rules import ONE, Event, Participant
from loyalty.models import PartnerTier, Product, Program
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
) -> Event:
    """A sale line as the engine sees it."""
    if tier is LOOK_UP:
        tier = partner_tiers(program, [partner.pk]).get(partner.pk)
    people = []
    if actor is not None:
        people.append(Participant(actor.pk, actor.role.code, actor.role.name, is_actor=True))
    people.extend(Participant(m.pk, m.role.code, m.role.name) for m in colleagues if actor is None or m.pk != actor.pk)
    return Event(
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


def claim_line_event(
    claim, line, *, quantity: Decimal, amount: Decimal, tier: PartnerTier | None, colleagues: list[Member]
) -> Event:
    """A sales claim's line as the engine sees it, for the `quantity` of it that pays (and that part's amount):
    the claimant acts, the colleagues they tagged share by role, on the invoice's date."""
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
) -> Event:
    """Something one member did (answered a survey; later: passed a training, converted a referral) as the engine
    sees it: the member acts, with their role, partner, tier and region; `quantity` of `unit` is what the formulas
    count, `subject` names what it was about."""
    tier = partner_tiers(program, [member.partner_id]).get(member.partner_id)
    return Event(
        kind=kind,
        source_key=source_key,
        occurred_on=occurred_on,
        **_partner_facts(member.partner, tier),
        participants=(Participant(member.pk, member.role.code, member.role.name, is_actor=True),),
        quantity=Decimal(quantity),
        unit=unit,
        subject=subject,
    )


def survey_source_key(survey, member: Member) -> str:
    return f"survey:{survey.pk}:{member.pk}"


def survey_event(*, program: Program, survey, member: Member, answered_on: date) -> Event:
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
    )
