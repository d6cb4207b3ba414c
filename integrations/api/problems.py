"""Every error of the API in one format, RFC 9457 problem details (`application/problem+json`), made by one
exception handler (REST_FRAMEWORK["EXCEPTION_HANDLER"]):

    {"type": "urn:partner-loyalty:problem:insufficient_points", "title": "Refused", "status": 422,
     "detail": "Not enough points: 120 available, 500 needed.", "code": "insufficient_points",
     "instance": "/api/v1/orders/", "errors": [{"field": "lines.0.quantity", "code": "min_value", "reason": "…"}]}

`code` is the domain's error code (each app's error_codes enum) or the API's own (API_CODES); `errors` lists the
fields at fault, dotted paths into the request body. A domain refusal (ApplicationError) is 422 unless its code
says otherwise (STATUS_OF_CODE); bad JSON, wrong types and unknown fields are 400."""

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from loyalty.common.errors import ApplicationError

PROBLEM_TYPE = "urn:partner-loyalty:problem:"
CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Refused",
    429: "Too many requests",
}

# Domain error codes that are not a plain refusal (422).
STATUS_OF_CODE = {
    "forbidden": 403,
    "not_found": 404,
    "idempotency_key_invalid": 400,
    "idempotency_key_in_use": 409,
}


class Problem(exceptions.APIException):
    """An error the API raises itself, with its status and code."""

    def __init__(self, status_code: int, code: str, detail: str, *, errors: list | None = None, headers=None):
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.problem_code = code
        self.errors = errors or []
        self.headers = headers or {}


def problem_body(*, status_code: int, code: str, detail: str, instance: str = "", errors: list | None = None) -> dict:
    body = {
        "type": f"{PROBLEM_TYPE}{code}",
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


def _field_errors(detail, path: str = "") -> list[dict]:
    """DRF's nested error detail as a flat list of {field, code, reason}, fields as dotted paths."""
    if isinstance(detail, dict):
        found = []
        for name, value in detail.items():
            field = "" if name == "non_field_errors" else str(name)  # a list's item 0 is a field too
            found += _field_errors(value, f"{path}.{field}".strip(".") if field else path)
        return found
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            return [{"field": path, "code": item.code, "reason": str(item)} for item in detail]
        found = []
        for index, item in enumerate(detail):
            found += _field_errors(item, f"{path}.{index}".strip("."))
        return found
    return [{"field": path, "code": getattr(detail, "code", "invalid"), "reason": str(detail)}]


def _describe(exc, request) -> tuple[int, str, str, list, dict]:
    """(status, code, detail, field errors, headers) of an exception, or status 0 when it is not the API's to
    answer (a real bug: Django's handler takes it, and it is logged)."""
    if isinstance(exc, Problem):
        return exc.status_code, exc.problem_code, str(exc.detail), exc.errors, exc.headers
    if isinstance(exc, ApplicationError):
        field = exc.extra.get("field")
        errors = [{"field": field, "code": exc.code, "reason": exc.message}] if field else []
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else {}
        return STATUS_OF_CODE.get(exc.code, 422), exc.code, exc.message, errors, headers
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            errors = [
                {"field": field, "code": error.code or "invalid", "reason": " ".join(error.messages)}
                for field, items in exc.error_dict.items()
                for error in items
            ]
        else:
            errors = [
                {"field": "", "code": error.code or "invalid", "reason": " ".join(error.messages)}
                for error in exc.error_list
            ]
        return 422, "invalid", " ".join(exc.messages), errors, {}
    if isinstance(exc, RequestDataTooBig):
        return 413, "too_large", "The request body is larger than the API accepts.", [], {}
    if isinstance(exc, Http404):
        return 404, "not_found", "Not found.", [], {}
    if isinstance(exc, PermissionDenied):
        return 403, "forbidden", "You may not do this.", [], {}
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        return 400, "invalid", "The request has invalid fields: see errors.", errors, {}
    if isinstance(exc, exceptions.ParseError):
        return 400, "malformed", str(exc.detail), [], {}
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        detail = f"Too many requests: try again in {wait} second{'s' if wait != 1 else ''}."
        return 429, "throttled", detail, [], {"Retry-After": str(wait)}
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        headers = {}
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            authenticator = getattr(request, "_authenticator", None) or (
                request.authenticators[0] if getattr(request, "authenticators", None) else None
            )
            if authenticator is not None and authenticator.authenticate_header(request):
                headers["WWW-Authenticate"] = authenticator.authenticate_header(request)
            exc.status_code = status.HTTP_401_UNAUTHORIZED
        return exc.status_code, code, str(exc.detail), [], headers
    return 0, "", "", [], {}


def exception_handler(exc, context):
    """REST_FRAMEWORK's EXCEPTION_HANDLER: a problem document for every error the API expects."""
    request = context.get("request")
    status_code, code, detail, errors, headers = _describe(exc, request)
    if not status_code:
        return None
    from rest_framework.views import set_rollback  # here: this module loads while rest_framework.views does

    set_rollback()
    body = problem_body(
        status_code=status_code,
        code=code,
        detail=detail,
        instance=request.path if request is not None else "",
        errors=errors,
    )
    return Response(body, status=status_code, headers=headers, content_type=CONTENT_TYPE)


def problem_response(request, *, status_code: int, code: str, detail: str) -> JsonResponse:
    """A problem document outside DRF's views (an unknown API address, a body too large for the middleware)."""
    body = problem_body(status_code=status_code, code=code, detail=detail, instance=request.path)
    return JsonResponse(body, status=status_code, content_type=CONTENT_TYPE)
