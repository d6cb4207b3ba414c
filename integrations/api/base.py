"""What every API view of every app stands on (each app's views live in its own `api/` package):

- `ApiView`: one view per operation. It says who may call it (`scope` for machine clients, `for_members` for
  people) and gets, after authentication, `self.caller` (the client or person, their Viewer from
  partners.visibility and their program). It answers errors as problem documents (problems.py), sends the rate
  limit headers, and makes every POST idempotent with an Idempotency-Key (integrations.idempotency).
- `StrictSerializer`: input serializers refuse fields they do not know (a typo is an error, not ignored).
- `CursorPage`: lists go page by page with an opaque cursor (stable under inserts, no COUNT).
- `problem_responses(...)`: the error responses to document on an operation.
"""

from django.http import HttpResponse
from django.http.request import RawPostDataException
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations import idempotency
from integrations.api.access import ANY_CLIENT, Caller, CallerAllowed, CallerThrottle, caller_of
from integrations.api.problems import CONTENT_TYPE, TITLES

__all__ = ["ANY_CLIENT", "ApiView", "ListApiView", "Caller", "CursorPage", "StrictSerializer", "problem_responses"]

IDEMPOTENCY_HEADER = "Idempotency-Key"


# Views -------------------------------------------------------------------------------------------------------------


class _Replay(Exception):
    def __init__(self, outcome: idempotency.Outcome):
        self.outcome = outcome


class ApiView(APIView):
    """One operation of the API. Subclasses set `scope` (the machine-client scope it needs; ANY_CLIENT: any
    client; None: not for clients) and `for_members` (people may call it with their token or session, seeing
    what the member site shows them), and read `self.caller`."""

    scope: str | None = None
    for_members: bool = False
    permission_classes = [CallerAllowed]
    throttle_classes = [CallerThrottle]

    caller: Caller

    def initial(self, request, *args, **kwargs):
        self._idempotency_record = None
        # The raw body, read before anything parses it (RequestDataTooBig beyond DATA_UPLOAD_MAX_MEMORY_SIZE: 413)
        try:
            body = request._request.body if request.method == "POST" else b""
        except RawPostDataException:  # a form or multipart body, read by a middleware: refused as not JSON (415)
            body = b""
        super().initial(request, *args, **kwargs)
        self.caller = caller_of(request)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method == "POST" and key is not None:
            print_ = idempotency.fingerprint(method=request.method, path=request.path, body=body)
            found = idempotency.begin(owner=self.caller.owner, key=key, print_=print_)
            if isinstance(found, idempotency.Outcome):
                raise _Replay(found)
            self._idempotency_record = found

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            response = Response(status=exc.outcome.status_code)
            response._replayed = exc.outcome
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        replayed = getattr(response, "_replayed", None)
        if replayed is not None:  # the stored bytes, as they were sent the first time
            response = HttpResponse(replayed.body, status=replayed.status_code, content_type=replayed.content_type)
            response["Idempotent-Replayed"] = "true"
        else:
            response = super().finalize_response(request, response, *args, **kwargs)
        rate = getattr(request, "rate_limit", None)
        if rate is not None:
            response["RateLimit-Limit"], response["RateLimit-Remaining"], response["RateLimit-Reset"] = map(str, rate)
        record_id = getattr(self, "_idempotency_record", None)
        if record_id is not None and replayed is None:
            self._idempotency_record = None
            if hasattr(response, "render"):
                response.render()
            idempotency.finish(
                record_id,
                idempotency.Outcome(response.status_code, response.get("Content-Type", ""), bytes(response.content)),
            )
        return response

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:  # an exception the handler did not answer (a bug): the key may be used again
            record_id = getattr(self, "_idempotency_record", None)
            if record_id is not None:
                idempotency.forget(record_id)


# Serializers, pages, documentation ----------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """An input serializer that refuses unknown fields."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")] for name in unknown}
                )
            # PostgreSQL cannot store or compare a NUL in text: refused before any field looks something up with it
            with_nul = sorted(name for name, value in data.items() if _has_nul(value))
            if with_nul:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Contains a NUL character.", code="null_characters_not_allowed")]
                     for name in with_nul}
                )  # fmt: skip
        return super().to_internal_value(data)


def _has_nul(value) -> bool:
    """A NUL character in a string, or in a string among a list's or a dict's values (not inside nested objects:
    their own serializers check them)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(isinstance(item, str) and "\x00" in item for item in value)
    if isinstance(value, dict):
        return any(isinstance(item, str) and "\x00" in item for item in value.values())
    return False


class CursorPage(CursorPagination):
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-id"


class ListApiView(ApiView):
    """A list operation: its rows go out a page at a time (page_response), filtered by its `filterset_class`
    (django-filter) through `self.filtered(queryset)`. The schema documents the pages and the filters from these
    attributes; the rows themselves always come from the visibility-scoped selector the view passes in."""

    pagination_class = CursorPage
    filterset_class = None

    @property
    def filter_backends(self):
        return [DjangoFilterBackend] if self.filterset_class else []

    @property
    def queryset(self):
        """The filters' model, for the schema only (nothing is read from it)."""
        return self.filterset_class._meta.model.objects.none() if self.filterset_class else None

    def filtered(self, queryset):
        return DjangoFilterBackend().filter_queryset(self.request, queryset, self)


def page_response(view: ApiView, queryset, output, *, ordering: str = "-id") -> Response:
    """One page of `queryset` (newest first unless `ordering` says otherwise) as `output` rows, with the next and
    previous pages' addresses: {"next": …, "previous": …, "results": […]}. A bad cursor is a 404 problem."""
    paginator = CursorPage()
    paginator.ordering = ordering
    rows = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response(output(rows, many=True).data)


PROBLEM = inline_serializer(
    "Problem",
    {
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "instance": serializers.CharField(required=False),
        "errors": serializers.ListField(
            child=inline_serializer(
                "ProblemField",
                {"field": serializers.CharField(), "code": serializers.CharField(), "reason": serializers.CharField()},
            ),
            required=False,
        ),
    },
)

_PROBLEM_EXAMPLES = {
    400: ("invalid", "The request has invalid fields: see errors."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("missing_scope", "This client lacks the scope sales:write."),
    404: ("not_found", "Not found."),
    409: ("idempotency_key_in_use", "A request with this Idempotency-Key is still running; send it again in a moment."),
    413: ("too_large", "The request body is larger than the API accepts."),
    422: ("idempotency_key_reused", "This Idempotency-Key was used with another request; use a new key."),
    429: ("throttled", "Too many requests: try again in 12 seconds."),
}


def problem_responses(*statuses: int, **described: str) -> dict:
    """The documented error responses of an operation: 400, 401, 403 and 429 always, plus `statuses`; a status's
    description may be given as s422="…" (the domain codes it answers with)."""
    responses = {}
    for code in sorted({400, 401, 403, 429, *statuses}):
        problem_code, detail = _PROBLEM_EXAMPLES.get(code, ("error", TITLES.get(code, "Error")))
        example = OpenApiExample(
            f"{code} {problem_code}",
            value={"type": f"urn:partner-loyalty:problem:{problem_code}", "title": TITLES.get(code, "Error"),
                   "status": code, "detail": detail, "code": problem_code},
            response_only=True,
            status_codes=[str(code)],
        )  # fmt: skip
        responses[(code, CONTENT_TYPE)] = OpenApiResponse(
            PROBLEM, description=described.get(f"s{code}", TITLES.get(code, "Error")), examples=[example]
        )
    return responses


PROBLEM_CONTENT_TYPE = CONTENT_TYPE
