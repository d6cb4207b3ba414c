"""Who is certified on which product line, on which day: what the rule engine's certification condition
(IncentiveRule.requires_certification) and rewards reserved for certified members (Reward.requires_certification)
read. A member is certified on a line on day D when one of their certificates for it has issued_on <= D < expires_on.

These are facts about members for the engine and for eligibility checks, not pages: callers pass the members they
already hold (and scoped). Each function is one query, whatever the number of members. The queries the engine
itself needs (certified_lines, certificate_spans) live in engine.facts, below this layer, and are given here to the
layers above."""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _

from loyalty.engine.facts import Span, certificate_spans, certified_lines, held_on
from loyalty.models import Certificate, Course, ProductLine

__all__ = [
    "Span",
    "certificate_spans",
    "certified_exists",
    "certified_lines",
    "certifying_lines",
    "certification_refusal",
    "held_on",
    "is_certified",
    "valid_on",
]


def valid_on(on: date, prefix: str = "") -> Q:
    """The certificates valid on day `on` (`prefix`: the path to the certificate, e.g. "certificates__")."""
    return Q(**{f"{prefix}issued_on__lte": on, f"{prefix}expires_on__gt": on})


def is_certified(*, member, line_id: int, on: date) -> bool:
    """Whether `member` (a Member or its id) holds a valid certificate for the line on day `on`."""
    member_id = getattr(member, "pk", member)
    return Certificate.objects.filter(valid_on(on), member_id=member_id, product_line_id=line_id).exists()


def certified_exists(*, member, on: date, line=None) -> Exists:
    """An EXISTS test for annotating rows that name a product line (`line`, default: the row's
    `requires_certification`): `member` holds a valid certificate for it on day `on`."""
    line = OuterRef("requires_certification") if line is None else line
    member_id = getattr(member, "pk", member)
    return Exists(Certificate.objects.filter(valid_on(on), member_id=member_id, product_line_id=line))


def certifying_lines(*, program_id: int | None = None):
    """The product lines some course certifies on (of `program_id`, or of any program): the only lines a rule or a
    reward can sensibly require a certificate for."""
    courses = Course.objects.filter(product_line=OuterRef("pk"), certification_months__isnull=False)
    if program_id is not None:
        courses = courses.filter(program_id=program_id)
    return ProductLine.objects.filter(Exists(courses))


def certification_refusal(*, program, line) -> str:
    """Why a rule or reward of `program` cannot require a certificate on `line` ("" when it can): no course of the
    program certifies on it."""
    if line is None or program is None or certifying_lines(program_id=program.pk).filter(pk=line.pk).exists():
        return ""
    return _("No course of %(program)s certifies on %(line)s: add a certifying course first.") % {
        "program": program,
        "line": line,
    }
