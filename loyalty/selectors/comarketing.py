"""Reads of co-marketing funds (MDF) and requests, scoped through partners.visibility.

Who sees what: a program manager every fund and request; an account manager those of the partners in their
portfolio; a partner's owner the partner's funds and every request of the partner; a member in a role that may ask
for co-marketing money (REQUESTER_ROLES: sales and purchasing) the partner's funds (to know what is left) and the
requests they made; anyone else nothing. Proof files follow the request they belong to."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

from loyalty.constants import MdfStatus
from loyalty.models import MarketingFund, MarketingProof, MarketingRequest, MarketingRequestEvent, Program
from partners.constants import MemberStatus
from partners.models import Member
from partners.visibility import partners_for, viewer_for

# Besides the partner's owners, the roles that may ask for co-marketing money and claim it.
REQUESTER_ROLES = frozenset({"sales", "purchasing"})
# Statuses whose request still holds (or may still hold) money of the fund.
OPEN_STATUSES = (MdfStatus.REQUESTED, MdfStatus.PRE_APPROVED, MdfStatus.CLAIMED, MdfStatus.CLAIM_REJECTED)


def can_request(member: Member | None) -> bool:
    """May `member` ask for co-marketing money (and claim it): an active owner, sales or purchasing member."""
    return (
        member is not None
        and member.status == MemberStatus.ACTIVE
        and (member.role.is_owner or member.role.code in REQUESTER_ROLES)
    )


def fund_left(fund: MarketingFund) -> Decimal:
    """What the fund still has: its amount less what is pre-approved and not settled, and what was reimbursed."""
    return fund.amount - fund.committed - fund.reimbursed


def funds_for(viewer) -> QuerySet[MarketingFund]:
    viewer = viewer_for(viewer)
    if viewer.is_manager or viewer.is_owner or can_request(viewer.member):
        return MarketingFund.objects.filter(partner__in=partners_for(viewer))
    return MarketingFund.objects.none()


def requests_for(viewer) -> QuerySet[MarketingRequest]:
    viewer = viewer_for(viewer)
    if viewer.is_manager or viewer.is_owner:
        return MarketingRequest.objects.filter(partner__in=partners_for(viewer))
    if can_request(viewer.member):
        return MarketingRequest.objects.filter(member=viewer.member)
    return MarketingRequest.objects.none()


def fund_on(*, program: Program, partner_id: int, day: date) -> MarketingFund | None:
    """The partner's fund whose period contains `day`, if any."""
    return (
        MarketingFund.objects.filter(program=program, partner_id=partner_id, period_start__lte=day, period_end__gte=day)
        .order_by("-period_start")
        .first()
    )


@dataclass(frozen=True)
class FundView:
    fund: MarketingFund
    left: Decimal


def fund_overview(*, viewer, program: Program | None, today: date) -> FundView | None:
    """The fund of the viewer's partner for today (the one a new request goes against), with what is left."""
    viewer = viewer_for(viewer)
    if program is None or viewer.member is None:
        return None
    fund = funds_for(viewer).filter(
        program=program, partner_id=viewer.member.partner_id, period_start__lte=today, period_end__gte=today
    )
    fund = fund.order_by("-period_start").first()
    return FundView(fund, fund_left(fund)) if fund is not None else None


def request_list(*, viewer, program: Program | None, status: str = "") -> QuerySet[MarketingRequest]:
    """The requests of one program a list shows, newest first, with what each row needs."""
    if program is None:
        return MarketingRequest.objects.none()
    rows = (
        requests_for(viewer)
        .filter(fund__program=program)
        .select_related("member__user", "fund__program")
        .order_by("-created_at", "-id")
    )
    return rows.filter(status=status) if status else rows


def request_get(*, viewer, pk: int) -> MarketingRequest:
    """One request with its fund, proofs and history; MarketingRequest.DoesNotExist if the viewer may not see it."""
    return (
        requests_for(viewer)
        .select_related("fund__program", "partner", "member__user", "member__role")
        .prefetch_related(
            Prefetch("proofs", queryset=MarketingProof.objects.order_by("uploaded_at", "pk")),
            Prefetch("events", queryset=MarketingRequestEvent.objects.order_by("created_at", "pk")),
        )
        .get(pk=pk)
    )


def proof_get(*, viewer, pk: int) -> MarketingProof:
    """A proof file of a request the viewer may see; MarketingProof.DoesNotExist otherwise."""
    return MarketingProof.objects.filter(request__in=requests_for(viewer)).get(pk=pk)


def _event_title(event: MarketingRequestEvent) -> str:
    if event.from_status == MdfStatus.CLAIM_REJECTED and event.to_status == MdfStatus.CLAIMED:
        return _("Claimed again with more proof")
    return event.get_to_status_display()


def request_history(*, request: MarketingRequest) -> list[dict]:
    """The request's status moves for templates/includes/status_history.html (uses the events request_get
    prefetched). Every note is for the partner too: the reasons and the amounts decided."""
    return [
        {"title": _event_title(event), "at": event.created_at, "note": event.note} for event in request.events.all()
    ]


def has_proof(request: MarketingRequest) -> set[str]:
    """The kinds of proof the request has (uses prefetched proofs when there are)."""
    return {proof.kind for proof in request.proofs.all()}
