"""Reads of sales claims that users see, scoped through partners.visibility: a member sees their own claims,
a partner owner their team's, an account manager their portfolio's, a program manager every claim."""

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils.translation import gettext as _

from loyalty.constants import ClaimStatus, EntrySource
from loyalty.models import ClaimEvent, ClaimLine, PointsEntry, Program, SalesClaim
from loyalty.selectors.ledger import accounts_for
from partners.constants import MemberStatus
from partners.models import Member
from partners.visibility import members_for, viewer_for


def claims_for(viewer) -> QuerySet[SalesClaim]:
    """Every claim the viewer (a Viewer or a user) may see (no joins; add them where the rows are shown): their
    people's, and the claims that tagged them as a colleague sharing the points."""
    viewer = viewer_for(viewer)
    theirs = Q(member__in=members_for(viewer))
    if viewer.member is None:
        return SalesClaim.objects.filter(theirs)
    tagged = SalesClaim.colleagues.through.objects.filter(member=viewer.member).values("salesclaim_id")
    return SalesClaim.objects.filter(theirs | Q(pk__in=tagged))


def claim_list(*, viewer, program: Program | None, status: str = "") -> QuerySet[SalesClaim]:
    """The claims of one program a list page shows, newest first, with what each row needs."""
    if program is None:
        return SalesClaim.objects.none()
    claims = (
        claims_for(viewer)
        .filter(program=program)
        .select_related("member__user", "program")
        .annotate(line_count=Count("lines"))
        .order_by("-created_at", "-id")
    )
    return claims.filter(status=status) if status else claims


def claim_get(*, viewer, pk: int) -> SalesClaim:
    """One claim with its lines, colleagues and history; SalesClaim.DoesNotExist if the viewer may not see it."""
    return (
        claims_for(viewer)
        .select_related("program", "partner", "member__user", "member__role", "decided_by")
        .prefetch_related(
            Prefetch("lines", queryset=ClaimLine.objects.select_related("product__line").order_by("pk")),
            Prefetch("colleagues", queryset=Member.objects.select_related("user", "role").order_by("user__full_name")),
            Prefetch("events", queryset=ClaimEvent.objects.select_related("actor").order_by("created_at", "pk")),
        )
        .get(pk=pk)
    )


def claim_entries(*, viewer, claim: SalesClaim) -> dict[int, list[PointsEntry]]:
    """The ledger entries the claim's lines posted, per line id, in the accounts the viewer may see."""
    keys = {line.source_key: line.pk for line in claim.lines.all()}
    if not keys:
        return {}
    entries = (
        PointsEntry.objects.filter(source_type=EntrySource.CLAIM, source_id__in=list(keys))
        .filter(account__in=accounts_for(viewer))
        .select_related("account__member__user", "account__partner")
        .order_by("pk")
    )
    per_line: dict[int, list[PointsEntry]] = {}
    for entry in entries:
        per_line.setdefault(keys[entry.source_id], []).append(entry)
    return per_line


def _event_title(event: ClaimEvent) -> str:
    if event.from_status == ClaimStatus.REJECTED:
        return _("Corrected and sent again")
    if event.to_status == ClaimStatus.SUBMITTED:
        return _("Sent")
    return event.get_to_status_display()


def claim_history(*, viewer, claim: SalesClaim) -> list[dict]:
    """The claim's status moves as the status-history list shows them (templates/includes/status_history.html):
    `title`, `at` and `note` each. The note of a sending is the member's word to the program team, and the note of
    an approval is the team's own record (why a flagged claim was approved anyway, which sell-out line confirmed
    it): only program managers read them; everyone reads why a claim was rejected. Uses the events claim_get
    prefetched."""
    sees_all_notes = viewer_for(viewer).is_program_manager
    internal = {ClaimStatus.SUBMITTED, ClaimStatus.APPROVED}
    return [
        {
            "title": _event_title(event),
            "at": event.created_at,
            "note": event.note if sees_all_notes or event.to_status not in internal else "",
        }
        for event in claim.events.all()
    ]


def colleague_choices(*, member: Member) -> QuerySet[Member]:
    """Who can share a claim with `member`: the other active members of their partner."""
    return (
        Member.objects.filter(partner_id=member.partner_id, status=MemberStatus.ACTIVE)
        .exclude(pk=member.pk)
        .select_related("user", "role")
        .order_by("user__full_name", "user__email")
    )
