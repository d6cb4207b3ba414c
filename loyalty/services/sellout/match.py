"""Matching parsed lines to what they name: the partner (by the source's alias code, else the legal id), the
member (by member code "M" + id or by e-mail; must work at the line's partner and not have left) and the product
(by SKU). Codes, legal ids and SKUs are compared by their matching keys (loyalty.common.keys), so "aq–1" finds the
SKU AQ-1. A few queries per batch; what was found is remembered for the rest of the file. Lines reported by a
distributor's own system (`distributor_id`) must be of that distributor or one of its dealers (Partner.parent).

The facts found are the tuples engine.bulk.LineEvaluator.shares() reads (by position: they are NamedTuples).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from django.db.models.functions import Lower

from loyalty.common.keys import matching_key
from loyalty.models import PartnerAlias, PartnerTier, Product, Program, SalesSource
from loyalty.services.sellout.errors import Issues, LineCode, Refusal
from loyalty.services.sellout.parse import Line
from partners.constants import MemberStatus, PayoutPolicy
from partners.models import Member, Partner


class Tier(NamedTuple):
    id: int
    name: str
    multiplier: Decimal


class PartnerFacts(NamedTuple):
    id: int
    kind: str
    region_id: int | None
    pooled: bool
    tier: Tier | None  # the partner's tier in the source's program


class MemberFacts(NamedTuple):
    id: int
    partner_id: int
    status: str
    role_code: str | None
    role_name: str | None


class ProductFacts(NamedTuple):
    id: int
    line_id: int | None


_MEMBER_FIELDS = ("pk", "partner_id", "status", "role__code", "role__name")  # MemberFacts' fields


class Matcher:
    """Matches the lines of one file, batch after batch; with `distributor_id`, only the lines of that partner and
    of its dealers."""

    def __init__(self, *, source: SalesSource, program: Program, distributor_id: int | None = None):
        self.source = source
        self.program = program
        self.distributor_id = distributor_id
        self._partners: dict[str, PartnerFacts | None] = {}  # by alias code or legal id
        self._outside: set[int] = set()  # partners neither the distributor nor its dealers (with distributor_id)
        self._members_by_code: dict[str, MemberFacts | None] = {}
        self._members_by_email: dict[str, list[MemberFacts]] = {}
        self._products: dict[str, ProductFacts | None] = {}

    def match(self, lines: list[Line], issues: Issues) -> list[Line]:
        """The lines whose partner, member and product were found, with their facts set; the others go to
        `issues` (one entry per cell at fault)."""
        self._load_partners({line.partner for line in lines} - self._partners.keys())
        self._load_products({line.sku for line in lines} - self._products.keys())
        codes, emails = set(), set()
        for line in lines:
            if line.member:
                if is_member_code(line.member):
                    codes.add(line.member.upper())
                else:
                    emails.add(line.member.lower())
        self._load_members(codes - self._members_by_code.keys(), emails - self._members_by_email.keys())
        resolved: dict[tuple[str, int], tuple[MemberFacts | None, str]] = {}
        good = []
        for line in lines:
            problems = []
            partner = self._partners.get(line.partner)
            if partner is None:
                reason = "is not a partner's legal id nor a customer code of this source"
                problems.append(("partner", line.partner, reason, LineCode.UNKNOWN_PARTNER))
            elif partner.id in self._outside:
                reason = "is neither the distributor this client reports for nor one of its dealers"
                problems.append(("partner", line.partner, reason, LineCode.PARTNER_NOT_ALLOWED))
                partner = None  # its member is not looked for
            product = self._products.get(line.sku)
            if product is None:
                problems.append(("sku", line.sku, "is not a SKU of the catalogue", LineCode.UNKNOWN_SKU))
            member = None
            if line.member and partner is not None:
                found = resolved.get((line.member, partner.id))
                if found is None:
                    found = resolved[(line.member, partner.id)] = self._member(line.member, partner)
                member, reason = found
                if reason:
                    problems.append(("member", line.member, reason, reason.code))
            if problems:
                issues.rows += 1
                for name, value, reason, code in problems:
                    issues.add(line.line, name, value, reason, code)
                continue
            line.partner_facts, line.member_facts, line.product_facts = partner, member, product
            good.append(line)
        return good

    def _load_partners(self, codes: set[str]) -> None:
        if not codes:
            return
        keys = {code: matching_key(code) for code in codes}
        found: dict[str, int] = {}  # by key
        aliases = PartnerAlias.objects.filter(source=self.source, code_key__in=set(keys.values()))
        for key, partner_id in aliases.values_list("code_key", "partner_id"):
            found[key] = partner_id
        legal = Partner.objects.filter(legal_id_key__in=set(keys.values()) - found.keys())
        for key, partner_id in legal.values_list("legal_id_key", "pk"):
            found[key] = partner_id
        facts = {}
        ids = set(found.values()) - {f.id for f in self._partners.values() if f}
        if ids:
            tiers = {
                row.partner_id: Tier(row.tier_id, row.tier.name, row.tier.multiplier)
                for row in PartnerTier.objects.filter(program=self.program, partner_id__in=ids).select_related("tier")
            }
            distributor = self.distributor_id
            for pk, kind, region_id, payout, parent_id in Partner.objects.filter(pk__in=ids).values_list(
                "pk", "kind", "region_id", "payout_policy", "parent_id"
            ):
                facts[pk] = PartnerFacts(pk, kind, region_id, payout == PayoutPolicy.POOLED, tiers.get(pk))
                if distributor is not None and distributor not in (pk, parent_id):
                    self._outside.add(pk)
        known = {f.id: f for f in self._partners.values() if f}
        known.update(facts)
        for code, key in keys.items():
            self._partners[code] = known.get(found[key]) if key in found else None

    def _load_products(self, skus: set[str]) -> None:
        if not skus:
            return
        keys = {sku: matching_key(sku) for sku in skus}
        found = {
            key: ProductFacts(pk, line_id)
            for key, pk, line_id in Product.objects.filter(sku_key__in=set(keys.values())).values_list(
                "sku_key", "pk", "line_id"
            )
        }
        for sku, key in keys.items():
            self._products[sku] = found.get(key)

    def _load_members(self, codes: set[str], emails: set[str]) -> None:
        if codes:
            ids = {int(code[1:]) for code in codes}
            found = {}
            for row in Member.objects.filter(pk__in=ids).values_list(*_MEMBER_FIELDS):
                member = MemberFacts._make(row)
                found[f"M{member.id}"] = member
            for code in codes:
                self._members_by_code[code] = found.get(f"M{int(code[1:])}")
        if emails:
            for email in emails:
                self._members_by_email[email] = []
            rows = (
                Member.objects.annotate(email_lower=Lower("user__email"))
                .filter(email_lower__in=emails)
                .values_list("email_lower", *_MEMBER_FIELDS)
            )
            for email, *row in rows:
                self._members_by_email[email].append(MemberFacts._make(row))

    def _member(self, key: str, partner: PartnerFacts) -> tuple[MemberFacts | None, Refusal | str]:
        """The member a line names at its partner, or None and the reason it is refused."""
        if is_member_code(key):
            member = self._members_by_code.get(key.upper())
            if member is None:
                return None, Refusal("is not a member code", LineCode.UNKNOWN_MEMBER)
            if member.partner_id != partner.id:
                return None, Refusal("is the member code of someone at another partner", LineCode.MEMBER_ELSEWHERE)
        else:
            memberships = [m for m in self._members_by_email.get(key.lower(), ()) if m.partner_id == partner.id]
            if not memberships:
                if self._members_by_email.get(key.lower()):
                    return None, Refusal("works at another partner", LineCode.MEMBER_ELSEWHERE)
                return None, Refusal("is not the e-mail of a member", LineCode.UNKNOWN_MEMBER)
            current = [m for m in memberships if m.status != MemberStatus.LEFT]
            member = current[0] if current else memberships[0]
        if member.status == MemberStatus.LEFT:
            reason = "has left this partner: leave the member column empty to credit the partner's account"
            return None, Refusal(reason, LineCode.MEMBER_LEFT)
        return member, ""


def is_member_code(text: str) -> bool:
    """A member code ("M" + the member's id, any case) rather than an e-mail."""
    return len(text) > 1 and text[0] in "Mm" and text[1:].isdigit() and "@" not in text
