"""Form fields every app may use: a decimal typed the way the reader writes numbers.

Django's own localised input (`localize=True`) reads "1.450,00" only with USE_THOUSAND_SEPARATOR on, which would
also group every number the templates print (ids in attributes among them), and it reads an English "12,5" as 125.
This field reads the reader's format, the plain "1450.00" and a decimal comma typed on a phone keyboard alike.
"""

import re
import unicodedata
from decimal import Decimal, DecimalException

from django import forms
from django.core.exceptions import ValidationError
from django.utils import formats

# Arabic-script separators (Persian keyboards) read as the Latin ones; digits of any script are read by
# unicodedata.
_MARKS = {"\u066b": ".", "\u066c": ",", "\u2212": "-"}
_SEPARATORS = ".,"
_ONE_THOUSANDS_GROUP = re.compile(r"[0-9]{1,3}[.,][0-9]{3}")


def decimal_text(text: str, *, decimal_separator: str = ".") -> str | None:
    """`text` as a plain decimal ("1450.00"), or None when it is not a number. Spaces (the French and Polish
    thousands separators) are ignored. When both "." and "," appear, the last one is the decimal separator and
    the other groups thousands; one mark appearing several times groups thousands; a single mark is the decimal
    separator unless it is not the reader's (`decimal_separator`) and is followed by exactly three digits:
    "1.450" is 1450 in German and 1.45 in English, while "1450.00" and "12,5" read the same in both."""
    text = "".join(_MARKS.get(char, str(unicodedata.decimal(char, char))) for char in "".join(text.split()))
    sign = text[:1] if text[:1] in "+-" else ""
    text = text[len(sign) :]
    if not re.fullmatch(r"[0-9.,]*[0-9][0-9.,]*", text):
        return None
    marks = [char for char in text if char in _SEPARATORS]
    if len(set(marks)) == 2:
        decimal = text[max(text.rfind("."), text.rfind(","))]
    elif len(marks) == 1 and (marks[0] == decimal_separator or not _ONE_THOUSANDS_GROUP.fullmatch(text)):
        decimal = marks[0]
    else:
        decimal = ""
    whole, fraction = text.rsplit(decimal, 1) if decimal else (text, "")
    if any(char in _SEPARATORS for char in fraction):
        return None
    groups = re.split(r"[.,]", whole)
    if len(groups) > 1 and (
        len(set(char for char in whole if char in _SEPARATORS)) > 1
        or not 1 <= len(groups[0]) <= 3
        or any(len(group) != 3 for group in groups[1:])
    ):
        return None
    number = "".join(groups) or "0"
    return f"{sign}{number}.{fraction}" if fraction else f"{sign}{number}"


class LocalizedDecimalField(forms.DecimalField):
    """A decimal typed in the reader's format (the active language's): "1.450,00" or "1450,00" in German,
    "1,450.00" in English, "1450.00" in every language. Shown in a text box with a decimal keyboard: a number box
    (type=number) refuses a decimal comma in some browsers."""

    widget = forms.TextInput

    def __init__(self, **kwargs):
        kwargs.setdefault("localize", True)  # the value shown again is written the reader's way too
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, str):
            value = decimal_text(value, decimal_separator=formats.get_format("DECIMAL_SEPARATOR"))
            if value is None:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return Decimal(str(value))
        except DecimalException:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.setdefault("inputmode", "decimal")
        return attrs
