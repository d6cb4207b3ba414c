"""Why an approved claim's line paid a person nothing ("No rule pays a foreman for this product"), in words for
the claim page, from the same rules and facts the approval evaluated."""

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from loyalty.common.formatting import DAY_FORMAT
from loyalty.engine.facts import claim_line_event, partner_tiers
from loyalty.engine.rules import Unpaid, why_unpaid
from loyalty.models import ClaimLine, SalesClaim
from loyalty.services.earning import published_rules
from partners.models import Member


def _text(reason: Unpaid, *, claim: SalesClaim, member: Member | None) -> str:
    role = (member or claim.member).role.name.lower()
    if reason is Unpaid.NO_RULE:
        return _("No rule of the program pays for sales.")
    if reason is Unpaid.NO_RULE_FOR_PRODUCT:
        return _("No rule pays for this product.")
    if reason in (Unpaid.NO_RULE_FOR_ROLE, Unpaid.NO_SHARE_FOR_ROLE):
        return _("No rule pays a %(role)s for this product.") % {"role": role}
    if reason is Unpaid.NOT_FOR_PARTNER:
        return _("The rules for this product are for other kinds of partner, tiers or regions.")
    if reason is Unpaid.NOT_CERTIFIED:
        return _("The rules for this product pay only a member certified on its product line on the invoice date.")
    if reason is Unpaid.POOLED:
        return _("%(partner)s pools staff bonuses: the share went to the company account.") % {
            "partner": claim.partner.name
        }
    return _("The rules for this product did not apply to a sale of %(date)s of this quantity or amount.") % {
        "date": date_format(claim.invoice_date, DAY_FORMAT)
    }


def unpaid_reasons(*, claim: SalesClaim, lines: list[ClaimLine], member: Member | None) -> dict[int, str]:
    """For each of `lines` (of an approved claim, that paid nothing to `member`, or to anyone when None): why.
    A line the rules do pay but the ledger limited (a cap or budget used up) says so. A line that paid for fewer
    units than it has because the sale was already reported is explained by selectors.one_sale, not here."""
    if not lines:
        return {}
    rules = published_rules(claim.program)
    tier = partner_tiers(claim.program, [claim.partner_id]).get(claim.partner_id)
    colleagues = list(claim.colleagues.all())
    reasons = {}
    for line in lines:
        if line.paid_quantity < line.quantity:
            continue
        event = claim_line_event(
            claim, line, quantity=line.quantity, amount=line.amount, tier=tier, colleagues=colleagues, rules=rules
        )
        reason = why_unpaid(event, rules, member.pk if member is not None else None)
        reasons[line.pk] = (
            _text(reason, claim=claim, member=member)
            if reason is not None
            else _("The rule's cap or budget was used up when the claim was approved.")
        )
    return reasons
