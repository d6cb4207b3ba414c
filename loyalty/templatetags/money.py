"""{{ amount|money:program.money_currency }}: money in the reader's language (loyalty.common.formatting)."""

from django import template

from loyalty.common.formatting import format_money

register = template.Library()


@register.filter
def money(amount, currency: str) -> str:
    """The amount with its currency as the active language writes it; empty for no amount."""
    if amount is None:
        return ""
    return format_money(amount, currency)
