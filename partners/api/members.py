"""Members (a person's membership of a partner) through the API: a CRM creates and updates them by its own id
(upsert: a new one is invited as on the site), ends them (deactivation), and every caller reads the memberships it
may see (partners.visibility): a client every partner's people (a distributor's client its distributor's and its
dealers'), an owner their team, any other member only their own memberships."""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from integrations.api.base import ApiView, ListApiView, StrictSerializer, page_response, problem_responses
from integrations.constants import Scope
from loyalty.common.keys import matching_key
from partners import selectors, services, visibility
from partners.api.partners import check_external_id
from partners.constants import MemberStatus
from partners.filters import MemberFilter
from partners.forms import phone_validator
from partners.models import Partner, Role

TAGS = ["Partners and members"]


def _partner(viewer, reference: str) -> Partner | None:
    """The partner the viewer sees with this external id, else with this legal id."""
    partners = visibility.partners_for(viewer)
    found = partners.filter(external_id=reference).first()
    return found or partners.filter(legal_id_key=matching_key(reference)).first()


def _members(viewer):
    return visibility.members_for(viewer).select_related("user", "partner", "role")


MEMBER_EXAMPLE = {
    "id": 2, "external_id": "CRM-C-0042",
    "partner": {"id": 1, "external_id": "CRM-0001", "legal_id": "GB900000000", "name": "Northwater Distribution Ltd"},
    "email": "sophie.turner@northwater.example", "full_name": "Sophie Turner", "role": "sales", "status": "active",
    "phone": "+44 7421 139576", "language": "en", "joined_at": "2022-07-23T04:35:07+02:00", "left_at": None,
    "created_at": "2022-07-21T09:01:06+02:00", "updated_at": "2022-07-23T04:35:07+02:00",
}  # fmt: skip


class MemberUpsertView(ApiView):
    """Create or update the membership the CRM knows by `external_id`.

    A new one is an invitation, as on the site: the person gets the invitation e-mail and joins when they accept it
    (at once, since the client acts for the program manager who registered it). A person already on the partner's
    team (from the site or the back office, no external id yet) is taken over instead, and not invited again. An
    existing one keeps its partner and person (another `partner` or `email` is refused); its role, phone and language
    follow the request; `full_name` names the person until they sign up, then their name is theirs. A field left out
    keeps its value. Sending the same details again changes and sends nothing (200)."""

    scope = Scope.PARTNERS_WRITE

    class Input(StrictSerializer):
        partner = serializers.CharField(max_length=80, help_text="The partner's external id, or its legal id.")
        email = serializers.EmailField(max_length=254)
        full_name = serializers.CharField(max_length=150, required=False)
        role = serializers.SlugRelatedField(
            slug_field="code", queryset=Role.objects.all(), help_text="The role's code (owner, sales, …)."
        )
        phone = serializers.CharField(
            max_length=30, required=False, allow_blank=True, validators=[phone_validator],
            help_text="A mobile phone number, with the country code (+49 30 1234567); empty: none.",
        )  # fmt: skip
        language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)

        def validate_partner(self, value: str) -> Partner:
            partner = _partner(self.context["viewer"], value)
            if partner is None:
                raise serializers.ValidationError(
                    f"No partner has the external id or legal id “{value}”.", code="does_not_exist"
                )
            return partner

    class Output(serializers.Serializer):
        class Partner(serializers.Serializer):
            id = serializers.IntegerField()
            external_id = serializers.CharField()
            legal_id = serializers.CharField()
            name = serializers.CharField()

        id = serializers.IntegerField()
        external_id = serializers.CharField()
        partner = Partner()
        email = serializers.EmailField(source="user.email")
        full_name = serializers.CharField(source="user.full_name")
        role = serializers.CharField(source="role.code")
        status = serializers.ChoiceField(choices=MemberStatus.choices)
        phone = serializers.CharField()
        language = serializers.CharField()
        joined_at = serializers.DateTimeField(allow_null=True)
        left_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="member_upsert",
        parameters=[
            OpenApiParameter(
                "external_id", str, OpenApiParameter.PATH, description="The CRM's id of the membership (1 to 80 "
                "characters)."
            )
        ],
        request=Input,
        responses={
            200: Output,
            201: Output,
            **problem_responses(
                422,
                s403="Codes: missing_scope; forbidden (the program manager who registered the client no longer is one)",
                s422="Codes: staff_cannot_join, already_member, partner_closed, left (a role change after the person "
                "left), invalid (field partner or email: a membership keeps its partner and person)",
            ),
        },
        examples=[
            OpenApiExample(
                "A sales rep",
                value={"partner": "CRM-P-1042", "email": "sophie.turner@northwater.example",
                       "full_name": "Sophie Turner", "role": "sales", "phone": "+49 30 1234567", "language": "de"},
                request_only=True,
            ),
        ],
        tags=TAGS,
    )  # fmt: skip
    def put(self, request, external_id: str):
        external_id = check_external_id(external_id)
        data = self.Input(data=request.data, context={"viewer": self.caller.viewer})
        data.is_valid(raise_exception=True)
        member, created = services.member_upsert(
            external_id=external_id, actor=self.caller.actor, **data.validated_data
        )
        member = _members(self.caller.viewer).get(pk=member.pk)
        headers = {"Location": f"/api/v1/members/{member.pk}/"} if created else {}
        return Response(self.Output(member).data, status=201 if created else 200, headers=headers)


class MemberDeactivationView(ApiView):
    """End a membership that has joined or waits for approval (an invitation not yet accepted cannot be: it is
    cancelled on the site). The reason is kept in the membership's history."""

    scope = Scope.PARTNERS_WRITE

    class Input(StrictSerializer):
        reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    class Output(serializers.Serializer):
        class Partner(serializers.Serializer):
            id = serializers.IntegerField()
            external_id = serializers.CharField()
            legal_id = serializers.CharField()
            name = serializers.CharField()

        id = serializers.IntegerField()
        external_id = serializers.CharField()
        partner = Partner()
        email = serializers.EmailField(source="user.email")
        full_name = serializers.CharField(source="user.full_name")
        role = serializers.CharField(source="role.code")
        status = serializers.ChoiceField(choices=MemberStatus.choices)
        phone = serializers.CharField()
        language = serializers.CharField()
        joined_at = serializers.DateTimeField(allow_null=True)
        left_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="member_deactivate",
        request=Input,
        responses={
            200: Output,
            **problem_responses(
                404, 409, 422, s422="Codes: bad_transition (not joined yet, or left already), idempotency_key_reused"
            ),
        },
        examples=[OpenApiExample("Left the company", value={"reason": "Left the company"}, request_only=True)],
        tags=TAGS,
    )
    def post(self, request, pk: int):
        member = selectors.member_get(viewer=self.caller.viewer, pk=pk)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.member_deactivate(
            member=member, actor=self.caller.actor, reason=data.validated_data["reason"]
        )
        return Response(self.Output(member).data)


class MemberListView(ListApiView):
    """The memberships the caller sees, newest first, of every status (`status` filters)."""

    scope = Scope.MEMBERS_READ
    for_members = True
    # For the schema (filters and pages are documented from these); the rows come from partners.visibility.
    filterset_class = MemberFilter

    class Output(serializers.Serializer):
        class Partner(serializers.Serializer):
            id = serializers.IntegerField()
            external_id = serializers.CharField()
            legal_id = serializers.CharField()
            name = serializers.CharField()

        id = serializers.IntegerField()
        external_id = serializers.CharField()
        partner = Partner()
        email = serializers.EmailField(source="user.email")
        full_name = serializers.CharField(source="user.full_name")
        role = serializers.CharField(source="role.code")
        status = serializers.ChoiceField(choices=MemberStatus.choices)
        phone = serializers.CharField()
        language = serializers.CharField()
        joined_at = serializers.DateTimeField(allow_null=True)
        left_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="member_list",
        responses={200: Output(many=True), **problem_responses(404, s404="A bad cursor")},
        examples=[OpenApiExample("A page", value=MEMBER_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request):
        members = self.filtered(_members(self.caller.viewer))
        return page_response(self, members, self.Output)


class MemberDetailView(ApiView):
    """One membership the caller sees; any other id is 404."""

    scope = Scope.MEMBERS_READ
    for_members = True

    class Output(serializers.Serializer):
        class Partner(serializers.Serializer):
            id = serializers.IntegerField()
            external_id = serializers.CharField()
            legal_id = serializers.CharField()
            name = serializers.CharField()

        id = serializers.IntegerField()
        external_id = serializers.CharField()
        partner = Partner()
        email = serializers.EmailField(source="user.email")
        full_name = serializers.CharField(source="user.full_name")
        role = serializers.CharField(source="role.code")
        status = serializers.ChoiceField(choices=MemberStatus.choices)
        phone = serializers.CharField()
        language = serializers.CharField()
        joined_at = serializers.DateTimeField(allow_null=True)
        left_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="member_get",
        responses={200: Output, **problem_responses(404)},
        examples=[OpenApiExample("A sales rep", value=MEMBER_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    def get(self, request, pk: int):
        member = selectors.member_get(viewer=self.caller.viewer, pk=pk)
        return Response(self.Output(member).data)
