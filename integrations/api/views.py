"""The API's own operations: who am I, and a person's tokens for the phone app."""

from axes.exceptions import AxesBackendPermissionDenied
from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from integrations import keys
from integrations.api.base import ANY_CLIENT, ApiView, StrictSerializer, problem_responses
from integrations.api.problems import Problem
from integrations.models import MemberToken


class MeView(ApiView):
    """Who the API takes the caller for."""

    scope = ANY_CLIENT
    for_members = True

    class Output(serializers.Serializer):
        kind = serializers.ChoiceField(choices=["client", "person"])
        name = serializers.CharField()
        program = serializers.CharField(allow_null=True)
        scopes = serializers.ListField(child=serializers.CharField())
        distributor_id = serializers.IntegerField(allow_null=True)
        member_id = serializers.IntegerField(allow_null=True)
        partner_id = serializers.IntegerField(allow_null=True)

    @extend_schema(
        operation_id="me",
        responses={200: Output, **problem_responses()},
        examples=[
            OpenApiExample("A machine client", response_only=True, value={
                "kind": "client", "name": "Demo ERP", "program": "aquapro-partner-club",
                "scopes": ["balances:read", "sales:write"], "distributor_id": None, "member_id": None,
                "partner_id": None,
            }),
        ],
        tags=["Access"],
    )  # fmt: skip
    def get(self, request):
        caller = self.caller
        program = caller.program.slug if caller.program else None
        if caller.is_client:
            client = caller.client
            data = {"kind": "client", "name": client.name, "program": program, "scopes": sorted(client.scopes),
                    "distributor_id": client.distributor_id, "member_id": None, "partner_id": None}  # fmt: skip
        else:
            member = caller.viewer.member
            data = {"kind": "person", "name": caller.user.full_name or caller.user.email, "program": program,
                    "scopes": [], "distributor_id": None, "member_id": member.pk if member else None,
                    "partner_id": member.partner_id if member else None}  # fmt: skip
        return Response(self.Output(data).data)


class TokenCreateView(ApiView):
    """A person signs in with their e-mail address and password and gets a token for the phone app, shown once.
    Staff sign in on the site with their second factor instead; they get no tokens."""

    authentication_classes = []
    permission_classes = []

    class Input(StrictSerializer):
        email = serializers.EmailField()
        password = serializers.CharField(max_length=200, trim_whitespace=False)
        device = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")

    class Output(serializers.Serializer):
        token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`. Shown only now.")
        prefix = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="token_create",
        request=Input,
        responses={201: Output, **problem_responses(s401="Wrong e-mail address or password, or locked out")},
        examples=[OpenApiExample("Sign in", value={"email": "sophie.turner@northwater.example",
                                                   "password": "…", "device": "Sophie's phone"}, request_only=True)],
        tags=["Access"],
        auth=[],
    )  # fmt: skip
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        refused = Problem(401, "invalid_credentials", "Wrong e-mail address or password.")
        try:
            user = authenticate(request._request, username=data.validated_data["email"],
                                password=data.validated_data["password"])  # fmt: skip
        except AxesBackendPermissionDenied:
            raise Problem(401, "locked_out", "Too many failed sign-ins: try again later.") from None
        if user is None or not user.is_active:
            raise refused
        if user.is_staff:
            raise Problem(403, "forbidden", "Staff sign in on the site with their second factor; no tokens.")
        issued = keys.token_issue(user=user, name=data.validated_data["device"])
        out = {"token": issued.secret, "prefix": issued.row.prefix, "expires_at": issued.row.expires_at}
        return Response(self.Output(out).data, status=201)


class TokenRevokeView(ApiView):
    """Sign the phone app out: the token used for this request stops working."""

    for_members = True

    @extend_schema(operation_id="token_revoke", request=None, responses={204: None, **problem_responses()},
                   tags=["Access"])  # fmt: skip
    def post(self, request):
        if not isinstance(request.auth, MemberToken):
            raise Problem(400, "not_a_token", "This request was not made with a token.")
        keys.token_revoke(token=request.auth)
        return Response(status=204)
