"""Partners through the API: a CRM creates and updates them by its own id (upsert), and every caller reads the
partners it may see (partners.visibility), with filters and cursor pages.

A client bound to a distributor (a distributor's own system) may only create and update that distributor's dealers:
the parent must be its distributor, and a partner with the external id must already be one of its dealers. Any
other upsert is refused with 403 `forbidden` and changes nothing. A parent it cannot see (another distributor) is
unknown to it, 400 on the field `parent`, as for any reference to something the caller does not see."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from integrations.api.base import ApiView, ListApiView, StrictSerializer, page_response, problem_responses
from integrations.api.problems import Problem
from integrations.constants import Scope
from loyalty.common.keys import matching_key
from partners import selectors, services, visibility
from partners.constants import PartnerKind, PartnerStatus, PayoutPolicy, StaffRole
from partners.filters import PartnerFilter
from partners.models import Partner, Region, User

TAGS = ["Partners and members"]
EXTERNAL_ID_MAX_LENGTH = Partner._meta.get_field("external_id").max_length

EXTERNAL_ID_PARAMETER = OpenApiParameter(
    "external_id", str, OpenApiParameter.PATH, description="The CRM's id of the partner (1 to 80 characters)."
)


def check_external_id(external_id: str) -> str:
    """The external id of a path, or a 400 problem: 1 to 80 printable characters, no spaces around."""
    if not (0 < len(external_id) <= EXTERNAL_ID_MAX_LENGTH) or not external_id.isprintable():
        reason = f"An external id is 1 to {EXTERNAL_ID_MAX_LENGTH} printable characters."
    elif external_id != external_id.strip():
        reason = "An external id has no spaces at its start or end."
    else:
        return external_id
    raise Problem(
        400, "invalid", "The request has invalid fields: see errors.",
        errors=[{"field": "external_id", "code": "invalid", "reason": reason}],
    )  # fmt: skip


def _distributor(viewer, reference: str) -> Partner | None:
    """The distributor the viewer sees with this external id, else with this legal id."""
    distributors = visibility.partners_for(viewer).filter(kind=PartnerKind.DISTRIBUTOR)
    found = distributors.filter(external_id=reference).first()
    return found or distributors.filter(legal_id_key=matching_key(reference)).first()


PARTNER_EXAMPLE = {
    "id": 1, "external_id": "CRM-0001", "name": "Northwater Distribution Ltd", "legal_id": "GB900000000",
    "kind": "distributor", "region": "north", "parent": None, "status": "active",
    "account_manager": "martin.keller@clearwell.example", "payout_policy": "individual", "joined_on": "2022-07-01",
    "created_at": "2022-07-01T09:00:00+02:00", "updated_at": "2026-12-01T10:30:00+01:00",
}  # fmt: skip


class PartnerUpsertView(ApiView):
    """Create or update the partner the CRM knows by `external_id`, with the back office's checks.

    A field left out keeps its value (a new partner: a prospect, no parent or account manager, paid individually);
    `parent` and `account_manager` may be null to remove them. A new partner starts as a prospect or active; the
    status of an existing one moves as the back office's actions allow (prospect → active → suspended → closed), and
    the move is recorded. A partner created in the back office (no external id yet) is taken over by its legal id; a
    legal id that belongs to a partner under another external id is refused: there is never a second partner with
    one legal id. Sending the same details again changes nothing (200). A client bound to a distributor may only
    create and update that distributor's dealers (parent: the distributor), else 403."""

    scope = Scope.PARTNERS_WRITE

    class Input(StrictSerializer):
        name = serializers.CharField(max_length=200)
        legal_id = serializers.CharField(max_length=40, help_text="Company registration or VAT number.")
        kind = serializers.ChoiceField(choices=PartnerKind.choices)
        region = serializers.SlugRelatedField(
            slug_field="code", queryset=Region.objects.all(), help_text="The region's code."
        )
        parent = serializers.CharField(
            max_length=80, required=False, allow_null=True,
            help_text="The parent distributor's external id, or its legal id; null: none.",
        )  # fmt: skip
        status = serializers.ChoiceField(choices=PartnerStatus.choices, required=False)
        account_manager = serializers.EmailField(
            required=False, allow_null=True, help_text="The e-mail address of a staff account manager; null: none."
        )
        payout_policy = serializers.ChoiceField(choices=PayoutPolicy.choices, required=False)

        def validate_parent(self, value: str | None) -> Partner | None:
            if value is None:
                return None
            parent = _distributor(self.context["viewer"], value)
            if parent is None:
                raise serializers.ValidationError(
                    f"No distributor has the external id or legal id “{value}”.", code="does_not_exist"
                )
            return parent

        def validate_account_manager(self, value: str | None) -> User | None:
            if value is None:
                return None
            manager = User.objects.filter(
                email__iexact=value, staff_role=StaffRole.ACCOUNT_MANAGER, is_active=True
            ).first()
            if manager is None:
                raise serializers.ValidationError(f"No account manager has the e-mail {value}.", code="does_not_exist")
            return manager

    class Output(serializers.Serializer):
        class Parent(serializers.Serializer):
            id = serializers.IntegerField()
            external_id = serializers.CharField()
            legal_id = serializers.CharField()
            name = serializers.CharField()

        id = serializers.IntegerField()
        external_id = serializers.CharField()
        name = serializers.CharField()
        legal_id = serializers.CharField()
        kind = serializers.ChoiceField(choices=PartnerKind.choices)
        region = serializers.CharField(source="region.code")
        parent = Parent(allow_null=True)
        status = serializers.ChoiceField(choices=PartnerStatus.choices)
        account_manager = serializers.EmailField(source="account_manager.email", allow_null=True)
        payout_policy = serializers.ChoiceField(choices=PayoutPolicy.choices)
        joined_on = serializers.DateField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="partner_upsert",
        parameters=[EXTERNAL_ID_PARAMETER],
        request=Input,
        responses={
            200: Output,
            201: Output,
            **problem_responses(
                422,
                s403="Codes: missing_scope; forbidden (a distributor's client upserting a partner that is not its "
                "dealer)",
                s422="Codes: duplicate_legal_id (field legal_id), bad_transition (field status), not_account_manager, "
                "invalid (field as given)",
            ),
        },
        examples=[
            OpenApiExample(
                "A dealer under a distributor",
                value={"name": "Northwater Heating Ltd", "legal_id": "DE811234567", "kind": "dealer",
                       "region": "north", "parent": "CRM-D-0001", "status": "active",
                       "account_manager": "anna.berg@manufacturer.example", "payout_policy": "individual"},
                request_only=True,
            ),
        ],
        tags=TAGS,
    )  # fmt: skip
    def put(self, request, external_id: str):
        external_id = check_external_id(external_id)
        data = self.Input(data=request.data, context={"viewer": self.caller.viewer})
        data.is_valid(raise_exception=True)
        client = self.caller.client
        partner, created = services.partner_upsert(
            external_id=external_id,
            actor=self.caller.actor,
            only_dealers_of=client.distributor,
            reason=f"Set through the API by {client.name}",
            **data.validated_data,
        )
        partner = selectors.partner_get(viewer=self.caller.viewer, pk=partner.pk)
        headers = {"Location": f"/api/v1/partners/{partner.pk}/"} if created else {}
        return Response(self.Output(partner).data, status=201 if created else 200, headers=headers)


class PartnerListView(ListApiView):
    """The partners the caller sees, newest first: a client every partner (a distributor's client its distributor
    and its dealers); a person their own partner; an account manager their portfolio."""

    scope = Scope.PARTNERS_READ
    for_members = True
    # For the schema (filters and pages are documented from these); the rows come from partners.visibility.
    filterset_class = PartnerFilter

    class Output(serializers.Serializer):
        class Parent(serializers.Serializer):
            id = serializers.IntegerField()
            external_id = serializers.CharField()
            legal_id = serializers.CharField()
            name = serializers.CharField()

        id = serializers.IntegerField()
        external_id = serializers.CharField()
        name = serializers.CharField()
        legal_id = serializers.CharField()
        kind = serializers.ChoiceField(choices=PartnerKind.choices)
        region = serializers.CharField(source="region.code")
        parent = Parent(allow_null=True)
        status = serializers.ChoiceField(choices=PartnerStatus.choices)
        account_manager = serializers.EmailField(source="account_manager.email", allow_null=True)
        payout_policy = serializers.ChoiceField(choices=PayoutPolicy.choices)
        joined_on = serializers.DateField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="partner_list",
        responses={200: Output(many=True), **problem_responses(404, s404="A bad cursor")},
        examples=[OpenApiExample("A page", value=PARTNER_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request):
        partners = visibility.partners_for(self.caller.viewer).select_related("region", "parent", "account_manager")
        partners = self.filtered(partners)
        return page_response(self, partners, self.Output)


class PartnerDetailView(ApiView):
    """One partner the caller sees; any other id is 404."""

    scope = Scope.PARTNERS_READ
    for_members = True

    class Output(serializers.Serializer):
        class Parent(serializers.Serializer):
            id = serializers.IntegerField()
            external_id = serializers.CharField()
            legal_id = serializers.CharField()
            name = serializers.CharField()

        id = serializers.IntegerField()
        external_id = serializers.CharField()
        name = serializers.CharField()
        legal_id = serializers.CharField()
        kind = serializers.ChoiceField(choices=PartnerKind.choices)
        region = serializers.CharField(source="region.code")
        parent = Parent(allow_null=True)
        status = serializers.ChoiceField(choices=PartnerStatus.choices)
        account_manager = serializers.EmailField(source="account_manager.email", allow_null=True)
        payout_policy = serializers.ChoiceField(choices=PayoutPolicy.choices)
        joined_on = serializers.DateField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="partner_get",
        responses={200: Output, **problem_responses(404)},
        examples=[OpenApiExample("A distributor", value=PARTNER_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request, pk: int):
        partner = selectors.partner_get(viewer=self.caller.viewer, pk=pk)
        return Response(self.Output(partner).data)
