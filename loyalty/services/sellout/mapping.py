"""Column mappings: which heading of a source's files holds each of our fields (OUR_FIELDS). Saved once per
source; guessed from a file's headings to pre-fill the form; checked against each file's header.

    OUR_FIELDS                                   ordered {field: (label, required)} a source's columns map to
    REQUIRED_FIELDS                              the fields of OUR_FIELDS that must be mapped
    suggest_mapping(header) -> dict[str, str]    {field: heading} guessed from the headings
    mapping_prefilled(*, source, header)         the saved mapping where it fits this header, else the guesses
    mapping_missing(mapping) -> list[str]        the labels of the required fields not mapped
    mapping_problems(mapping, header=None)       what is wrong with a mapping (empty list: nothing)
    mapping_field_problems(mapping, header=None) the same, each with the field it is about (for forms)
    source_mapping_save(*, source, mapping, header=None) -> SalesSource
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

from django.db import transaction

from loyalty.common.errors import ApplicationError
from loyalty.error_codes import ErrorCode
from loyalty.lock_objects import source_lock
from loyalty.models import SalesSource

OUR_FIELDS: dict[str, tuple[str, bool]] = {
    "external_id": ("External line id", True),
    "partner": ("Partner (legal id or the source's customer code)", True),
    "member": ("Member (e-mail or member code M…)", False),
    "sku": ("SKU", True),
    "quantity": ("Quantity (negative: a return)", True),
    "amount": ("Amount", True),
    "invoice_number": ("Invoice number (needed to confirm claims)", False),
    "invoice_date": ("Invoice date", True),
    "returns_external_id": ("Returned line's external id (for returns)", False),
}
REQUIRED_FIELDS = [name for name, (_, required) in OUR_FIELDS.items() if required]

_SYNONYMS = {
    "external_id": ["externalid", "lineid", "id", "lineno", "linenumber", "line", "position", "transactionid",
                    "rowid", "docline", "itemid", "belegposition"],
    "partner": ["partner", "partnercode", "customer", "customerno", "customernumber", "customerid", "customercode",
                "dealer", "dealercode", "legalid", "vat", "vatnumber", "vatid", "taxid", "kunde", "kundennummer",
                "client", "account"],
    "member": ["member", "membercode", "email", "emailaddress", "salesrep", "rep", "seller", "contact", "mitglied"],
    "sku": ["sku", "productcode", "product", "article", "articleno", "articlenumber", "item", "itemcode",
            "itemno", "material", "materialno", "partnumber", "artikel", "artikelnummer"],
    "quantity": ["quantity", "qty", "units", "pieces", "pcs", "menge", "quantite", "cantidad"],
    "amount": ["amount", "netamount", "total", "linetotal", "lineamount", "net", "value", "revenue", "sales",
               "betrag", "umsatz", "montant", "importe"],
    "invoice_number": ["invoicenumber", "invoiceno", "invoice", "invoiceid", "document", "documentno", "docno",
                       "rechnung", "rechnungsnummer", "rechnungsnr", "facture", "factura", "billno"],
    "invoice_date": ["invoicedate", "date", "documentdate", "docdate", "datum", "rechnungsdatum", "datefacture",
                     "saledate", "salesdate"],
    "returns_external_id": ["returnsexternalid", "returnsline", "returnslineid", "returnof", "originalline",
                            "originallineid", "originalid", "creditfor", "returnedline", "originalexternalid"],
}  # fmt: skip


class MappingProblem(NamedTuple):
    """What is wrong with a mapping: the field it is about ("" when none is) and a message for people."""

    field: str
    message: str


def _normalise(heading: str) -> str:
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", text)


def suggest_mapping(header: Iterable[str]) -> dict[str, str]:
    """{our field: heading} guessed from the headings: exact synonyms first, then headings that contain one.
    Each heading is used once; fields without a good guess are left out."""
    headings = [h for h in header if h and h.strip()]
    normalised = {h: _normalise(h) for h in headings}
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for exact in (True, False):
        for name in OUR_FIELDS:
            if name in mapping:
                continue
            for synonym in _SYNONYMS[name]:
                found = next(
                    (
                        h
                        for h in headings
                        if h not in used
                        and (normalised[h] == synonym if exact else len(synonym) > 3 and synonym in normalised[h])
                    ),
                    None,
                )
                if found is not None:
                    mapping[name] = found
                    used.add(found)
                    break
    return {name: mapping[name] for name in OUR_FIELDS if name in mapping}


def mapping_prefilled(*, source: SalesSource, header: list[str]) -> dict[str, str]:
    """The source's saved mapping where it fits this header, completed with suggest_mapping's guesses."""
    present = set(header)
    saved = {name: column for name, column in (source.column_mapping or {}).items() if column in present}
    guessed = suggest_mapping(header)
    used = set(saved.values())
    for name, column in guessed.items():
        if name not in saved and column not in used:
            saved[name] = column
            used.add(column)
    return saved


def mapping_missing(mapping: dict) -> list[str]:
    """The labels of the required fields the mapping leaves out."""
    return [OUR_FIELDS[name][0] for name in REQUIRED_FIELDS if not mapping.get(name)]


def mapping_problems(mapping: dict, header: list[str] | None = None) -> list[str]:
    """Why a mapping cannot be used (with this file's header, when given); an empty list when it can."""
    return [problem.message for problem in mapping_field_problems(mapping, header)]


def mapping_field_problems(mapping: dict, header: list[str] | None = None) -> list[MappingProblem]:
    """mapping_problems, each with the field it is about (a column chosen twice: the second field)."""
    problems = []
    unknown = sorted(set(mapping) - set(OUR_FIELDS))
    if unknown:
        problems.append(MappingProblem("", f"Unknown fields: {', '.join(unknown)}."))
    for name in REQUIRED_FIELDS:
        if not (mapping.get(name) or "").strip():
            problems.append(MappingProblem(name, f"Choose the column for “{OUR_FIELDS[name][0]}”: it is required."))
    chosen = [(name, column) for name, column in mapping.items() if name in OUR_FIELDS and column]
    seen: dict[str, str] = {}
    for name, column in chosen:
        if column in seen:
            problems.append(
                MappingProblem(
                    name,
                    f"The column “{column}” is chosen for both “{OUR_FIELDS[seen[column]][0]}” and "
                    f"“{OUR_FIELDS[name][0]}”.",
                )
            )
        seen[column] = name
    if header is not None:
        present = set(header)
        for name, column in chosen:
            if column not in present:
                problems.append(
                    MappingProblem(
                        name,
                        f"The file has no column “{column}” (mapped to “{OUR_FIELDS[name][0]}”). "
                        f"Its columns are: {', '.join(h for h in header if h) or '(none)'}.",
                    )
                )
            elif header.count(column) > 1:
                problems.append(MappingProblem("", f"The file has two columns named “{column}”: rename one of them."))
    return problems


@transaction.atomic
def source_mapping_save(*, source: SalesSource, mapping: dict, header: list[str] | None = None) -> SalesSource:
    """Save which heading of this source's files holds each of our fields (asked once per source)."""
    mapping = {name: (mapping.get(name) or "").strip() for name in OUR_FIELDS if (mapping.get(name) or "").strip()}
    problems = mapping_problems(mapping, header)
    if problems:
        raise ApplicationError(" ".join(problems), ErrorCode.INVALID_MAPPING)
    source = source_lock(source.pk)
    source.column_mapping = mapping
    source.full_clean()
    source.save(update_fields=["column_mapping", "updated_at"])
    return source
