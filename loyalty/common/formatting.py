"""Money as people read it: one formatter for pages, the admin and messages, in the reader's language.

Babel places the symbol and groups the digits as each language does (Django formats numbers but not currencies).
Files for spreadsheets do not use it: they carry a plain amount and the currency in a column of its own (see
loyalty.common.spreadsheets). Points are not money: they keep `intcomma`.
"""

import functools
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation


def format_money(amount: Decimal | int, currency: str, *, language: str | None = None) -> str:
    """`amount` of `currency` (an ISO code such as "EUR") as written in `language`, by default the active
    translation (the member's language): "€1,450.00" in English, "1.450,00 €" in German, "€ 1,450.00" (with a
    left-to-right mark) in Persian. Cents always show; more decimals show only when the amount has them (a point
    worth €0.0125), so nothing is rounded away. Digits are Latin, like Django's numbers (points) on the same page.
    A float is refused: money is Decimal."""
    if isinstance(amount, float) or not isinstance(amount, Decimal | int):
        raise TypeError(f"Money is a Decimal, not {type(amount).__name__}.")
    if amount == 0:
        amount = abs(amount)  # no "-€0.00"
    return format_currency(amount, currency.upper(), locale=_locale(language), decimal_quantization=False)


def _locale(language: str | None) -> Locale:
    return _babel_locale(language or translation.get_language() or settings.LANGUAGE_CODE)


@functools.lru_cache(maxsize=32)
def _babel_locale(language: str) -> Locale:
    """Django's language code ("en-us", "de", "zh-hans") as a Babel locale; English for one Babel does not know."""
    try:
        return Locale.parse(translation.to_locale(language))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


# How the site writes a day in text ("7 Dec 2026", "7 Dez 2026"): the templates' `|date:"j M Y"`, for messages
# built in Python.
DAY_FORMAT = "j M Y"
