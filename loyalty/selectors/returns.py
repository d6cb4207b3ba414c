"""Reads of equipment returns that users see, scoped through partners.visibility: a member sees their own returns, a
partner owner their team's, an account manager their portfolio's, a program manager every return. A collecting
partner's active members also see the returns waiting for confirmation at their collection points (and only
those)."""

from django.db.models import CharField, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Cast, Coalesce, Concat

from loyalty.constants import EntrySource, ReturnStatus
from loyalty.models import CollectionPoint, EquipmentReturn, PointsEntry, Program, ReturnType
from partners.constants import MemberStatus
from partners.visibility import members_for, viewer_for


def returns_for(viewer) -> QuerySet[EquipmentReturn]:
    """Every return the viewer (a Viewer or a user) may see as its member's: their people's."""
    return EquipmentReturn.objects.filter(member__in=members_for(viewer_for(viewer)))


def _with_points(returns: QuerySet[EquipmentReturn]) -> QuerySet[EquipmentReturn]:
    """Each return with `points`: what confirming it paid its member (0 before), one subquery."""
    paid = (
        PointsEntry.objects.filter(
            source_type=EntrySource.RETURN,
            source_id=Concat(Value("return:"), Cast(OuterRef("pk"), CharField())),
            account__member_id=OuterRef("member_id"),
        )
        .order_by()
        .values("source_id")
        .annotate(total=Sum("available_delta") + Sum("pending_delta"))
        .values("total")
    )
    return returns.annotate(points=Coalesce(Subquery(paid, output_field=IntegerField()), Value(0)))


def return_list(*, viewer, program: Program | None, status: str = "") -> QuerySet[EquipmentReturn]:
    """The returns of one program the list page shows, newest first, with what each row needs."""
    if program is None:
        return EquipmentReturn.objects.none()
    returns = (
        returns_for(viewer)
        .filter(program=program)
        .select_related("member__user", "return_type", "collection_point")
        .order_by("-created_at", "-id")
    )
    return _with_points(returns.filter(status=status) if status else returns)


def collecting_partner_id(viewer) -> int | None:
    """The partner whose collection points the viewer confirms returns at: their own, while an active member."""
    viewer = viewer_for(viewer)
    member = viewer.member
    if member is None or member.status != MemberStatus.ACTIVE:
        return None
    return member.partner_id


def collects(*, viewer, program: Program | None) -> bool:
    """Does the viewer's partner run a collection point of the program (one query)?"""
    partner_id = collecting_partner_id(viewer)
    if program is None or partner_id is None:
        return False
    return CollectionPoint.objects.filter(program=program, partner_id=partner_id).exists()


def returns_to_confirm(*, viewer, program: Program | None) -> QuerySet[EquipmentReturn]:
    """The returns waiting for confirmation at the viewer's partner's collection points, oldest first, other
    people's only (someone else confirms a member's own returns); none for anyone else."""
    partner_id = collecting_partner_id(viewer)
    if program is None or partner_id is None:
        return EquipmentReturn.objects.none()
    viewer = viewer_for(viewer)
    return (
        EquipmentReturn.objects.filter(
            program=program, collection_point__partner_id=partner_id, status=ReturnStatus.REGISTERED
        )
        .exclude(member__user=viewer.user)
        .select_related("member__user", "partner", "return_type", "collection_point")
        .prefetch_related("serials")
        .order_by("created_at", "id")
    )


def return_to_confirm_get(*, viewer, program: Program | None, pk: int) -> EquipmentReturn:
    """One of returns_to_confirm; EquipmentReturn.DoesNotExist when it is not the viewer's to decide (or decided)."""
    return returns_to_confirm(viewer=viewer, program=program).get(pk=pk)


def return_type_choices(program: Program) -> QuerySet[ReturnType]:
    return ReturnType.objects.filter(program=program, is_active=True).order_by("name")


def collection_point_choices(program: Program) -> QuerySet[CollectionPoint]:
    return CollectionPoint.objects.filter(program=program, is_active=True).order_by("name")
