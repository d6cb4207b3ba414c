"""A URLconf with two made-up operations, to test what every operation gets from integrations.api.base
(scopes, idempotency, problems) apart from any real endpoint."""

from django.urls import include, path
from rest_framework import serializers
from rest_framework.response import Response

from integrations.api.base import ApiView, StrictSerializer
from loyalty.common.errors import ApplicationError
from partners.models import Region


class RegionCreateView(ApiView):
    """Makes a region (something countable): 201 with it, or 422 for the code "none"."""

    scope = "partners:write"

    class Input(StrictSerializer):
        code = serializers.CharField(max_length=20)

    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["code"] == "none":
            raise ApplicationError("No region may be called none.", code="bad_region", extra={"field": "code"})
        region = Region.objects.create(code=data.validated_data["code"], name=data.validated_data["code"].title())
        return Response({"id": region.pk, "code": region.code}, status=201)


urlpatterns = [
    path("api/v1/test/regions/", RegionCreateView.as_view()),
    path("api/", include("loyalty.urls.api")),
]
