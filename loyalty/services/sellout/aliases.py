"""Partner aliases: a source's own codes for partners (customer numbers), which its files may name partners by.
Uploaded as a CSV of alias,legal_id pairs: all saved, or, if any line is wrong, none and every wrong line listed.

    aliases_read(*, upload) -> list[AliasPair]        the pairs of an uploaded CSV (AliasProblems lists bad lines)
    aliases_save(*, source, pairs) -> AliasesSaved    add them, or move existing ones to the named partner
"""

from __future__ import annotations

import csv
import io
from typing import NamedTuple

from django.db import transaction

from loyalty.common.errors import ApplicationError
from loyalty.common.keys import matching_key
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import aliases_lock
from loyalty.models import PartnerAlias, SalesSource
from partners.models import Partner

MAX_ALIAS_BYTES = 5 * 1024 * 1024
_HEADINGS = {"alias", "code", "alias_code", "customer_code"}  # a first line naming the columns is skipped


class AliasPair(NamedTuple):
    alias: str
    partner: Partner


class AliasesSaved(NamedTuple):
    added: int
    changed: int  # moved to another partner
    unchanged: int


class AliasProblems(ApplicationError):
    """The lines of an alias file that cannot be used ("Line 3: ..."), every one of them."""

    def __init__(self, problems: list[str]):
        lines = "1 line" if len(problems) == 1 else f"{len(problems)} lines"
        super().__init__(f"{lines} of the file cannot be used; nothing was saved.", ErrorCode.INVALID_ALIASES)
        self.problems = problems


def aliases_read(*, upload) -> list[AliasPair]:
    """The (alias, partner) pairs of an uploaded CSV (UTF-8 or Windows-1252; commas, semicolons or tabs).
    Raises AliasProblems listing every wrong line (numbered from 1), ApplicationError when the file is unusable."""
    if upload.size > MAX_ALIAS_BYTES:
        raise ApplicationError(f"The file is larger than {MAX_ALIAS_BYTES // 1024 // 1024} MB.", ErrorCode.TOO_BIG)
    raw = upload.read()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ApplicationError("The file is not a text (CSV) file.", ErrorCode.BAD_FILE)
    if "\x00" in text or not text.strip():
        raise ApplicationError("The file is empty or not a text (CSV) file.", ErrorCode.BAD_FILE)
    delimiter = max((",", ";", "\t"), key=text[:4096].count)
    rows = [
        (number, [cell.strip() for cell in row])
        for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1)
        if any(cell.strip() for cell in row)
    ]
    if rows and rows[0][1][0].lower().replace(" ", "_") in _HEADINGS:
        rows = rows[1:]
    wanted = {matching_key(cells[1]) for _, cells in rows if len(cells) > 1 and cells[1]}
    partners = {
        partner.legal_id_key: partner
        for partner in Partner.objects.filter(legal_id_key__in=wanted).only("pk", "name", "legal_id", "legal_id_key")
    }
    max_length = PartnerAlias._meta.get_field("code").max_length
    problems, pairs, seen = [], [], {}
    for number, cells in rows:
        if len(cells) < 2 or not cells[0] or not cells[1]:
            problems.append(f"Line {number}: needs an alias and a legal id.")
            continue
        alias, legal_id = cells[0], cells[1]
        if len(alias) > max_length:
            problems.append(f"Line {number}: the alias “{alias[:70]}…” is too long.")
            continue
        partner = partners.get(matching_key(legal_id))
        if partner is None:
            problems.append(f"Line {number}: no partner has the legal id “{legal_id}”.")
            continue
        key = matching_key(alias)
        if key in seen and seen[key] != partner.pk:
            problems.append(f"Line {number}: the alias “{alias}” is given to two partners in this file.")
            continue
        seen[key] = partner.pk
        pairs.append(AliasPair(alias, partner))
    if problems:
        raise AliasProblems(problems)
    if not pairs:
        raise ApplicationError("The file has no alias,legal_id lines.", ErrorCode.EMPTY)
    return pairs


@transaction.atomic
def aliases_save(*, source: SalesSource, pairs: list[AliasPair]) -> AliasesSaved:
    """Add the aliases, or point existing ones (the same code, by its matching key) at the named partner."""
    wanted = {matching_key(alias): (alias, partner) for alias, partner in pairs}
    existing = aliases_lock(source=source, keys=wanted)
    added = sum(1 for key in wanted if key not in existing)
    changed = sum(1 for key, (_, partner) in wanted.items() if key in existing and existing[key] != partner.pk)
    PartnerAlias.objects.bulk_create(
        [PartnerAlias(source=source, code=alias, partner=partner) for alias, partner in wanted.values()],
        update_conflicts=True,
        unique_fields=["source", "code_key"],
        update_fields=["partner"],
    )
    return AliasesSaved(added, changed, len(wanted) - added - changed)
