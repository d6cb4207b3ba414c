"""Matching keys: the one form in which identifiers people and systems type are compared — invoice numbers,
sell-out external ids, SKUs, legal ids, partner alias codes.

`matching_key` reads "INV-ZW-z1", " inv-zw-Z1 " with a zero-width space after it, a soft hyphen inside it or a word
joiner in front of it, and the same typed in full-width letters and digits or with en dashes, as the one key
"inv-zw-z1": Unicode NFKC, format and control characters (categories Cf, Cc) and every space dropped, every dash
read as "-", case folded. The key is stored next to what was typed (`MatchingKeyField`), so that comparisons are
exact matches on an index and no other code, in Python or SQL, re-implements the rule.
"""

import unicodedata
from itertools import islice

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection, models
from django.db.models import Count, Value
from django.db.models.functions import Cast, Concat

# Dash-like characters outside Unicode's dash punctuation (category Pd), also read as a hyphen.
_OTHER_DASHES = frozenset("\u2212\u2043\u02d7\u2796")  # minus sign, hyphen bullet, modifier minus, heavy minus
# Format and control characters, and every kind of space.
_DROPPED = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})
# The same rule for ASCII text with control characters: those, the space and DEL dropped.
_ASCII_DROPPED = str.maketrans("", "", "".join(map(chr, range(33))) + "\x7f")


def matching_key(text: str | None) -> str:
    """The form `text` is compared in: NFKC, without format or control characters or spaces, dashes as "-",
    case-folded. A key never contains a space."""
    if not text:
        return ""
    if text.isascii():  # NFKC and case folding of ASCII are the identity and lower(); the common case is fast
        if text.isprintable():
            return text.replace(" ", "").lower()
        return text.translate(_ASCII_DROPPED).lower()
    chars = []
    for char in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(char)
        if category in _DROPPED:
            continue
        chars.append("-" if category == "Pd" or char in _OTHER_DASHES else char)
    # Case folding can leave text that NFKC changes again (and the other way round): repeat until it holds.
    key = "".join(chars)
    while (folded := unicodedata.normalize("NFKC", key.casefold())) != key:
        key = folded
    return key


class MatchingKeyField(models.TextField):
    """The matching key of another field of the model (`of`), kept next to what was typed.

    Set from that field whenever the row is saved or inserted (bulk_create too), as auto_now sets a date; a
    save(update_fields=...) that changes the field names this one too. Writers that bypass the ORM (the sell-out
    import's COPY) compute it with matching_key. Byte-wise ("C") collation: keys are only compared for equality.
    """

    def __init__(self, *args, of: str, **kwargs):
        self.of = of
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("db_collation", "C")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["of"] = self.of
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        key = matching_key(getattr(model_instance, self.of))
        setattr(model_instance, self.attname, key)
        return key


# Data migrations ----------------------------------------------------------------------------------------------


def fill_keys(model, key_fields: list[str], *, batch: int = 10_000) -> None:
    """Set the key fields of every row of `model` (a migration's historical model) from the fields they key."""
    table, pk = model._meta.db_table, model._meta.pk.column
    fields = [model._meta.get_field(name) for name in key_fields]
    sources = [field.of for field in fields]
    assignments = ", ".join(f"{field.column} = k.key{n}" for n, field in enumerate(fields))
    columns = ", ".join(f"key{n}" for n in range(len(fields)))
    casts = ", ".join("%s::text[]" for _ in fields)
    sql = (
        f"UPDATE {table} SET {assignments} FROM unnest(%s::bigint[], {casts}) AS k(id, {columns}) "
        f"WHERE {table}.{pk} = k.id"
    )
    rows = model.objects.order_by("pk").values_list("pk", *sources).iterator(chunk_size=batch)
    with connection.cursor() as cursor:
        while chunk := list(islice(rows, batch)):
            ids = [row[0] for row in chunk]
            keys = [[matching_key(row[n + 1]) for row in chunk] for n in range(len(fields))]
            cursor.execute(sql, [ids, *keys])


def key_collisions(model, key_field: str, *, within: tuple[str, ...] = (), rows=None) -> list[list[tuple[int, str]]]:
    """Groups of rows (of `rows`, else all of `model`) whose keys are equal (within the same `within` values), as
    [(id, what was typed), ...] in id order; rows without a key are left out."""
    source = model._meta.get_field(key_field).of
    rows = model.objects.all() if rows is None else rows
    groups = (
        rows.exclude(**{key_field: ""})
        .values(*within, key_field)
        .annotate(count=Count("pk"), ids=ArrayAgg("pk", order_by="pk"), typed=ArrayAgg(source, order_by="pk"))
        .filter(count__gt=1)
        .order_by(*within, key_field)
    )
    return [list(zip(group["ids"], group["typed"], strict=True)) for group in groups]


def set_keys_apart(model, key_field: str, groups: list[list[tuple[int, str]]]) -> None:
    """In each group of colliding rows, leave the first (oldest) with its key and give the others a key that
    matches nothing (the key, a space and the row's id: a real key has no space), so a unique constraint on the
    key can be added. Their data stays; editing one asks for a value that no longer collides."""
    later = [pk for group in groups for pk, _ in group[1:]]
    if later:
        model.objects.filter(pk__in=later).update(
            **{
                key_field: Concat(
                    key_field, Value(" #"), Cast("pk", models.TextField()), output_field=models.TextField()
                )
            }
        )
