"""Request checks every page gets, in one place."""

from django.core.exceptions import BadRequest
from django.http import JsonResponse

NUL = "\x00"
API_PREFIX = "/api/"


class RefuseNulBytesMiddleware:
    """A NUL byte in a query parameter or a form field (name or value) is bad input: the request is refused with
    400 before any view runs. PostgreSQL cannot store or compare NUL in text, so letting it through would turn a
    typing mistake or a probe into a server error deep inside a query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if NUL in request.path or _has_nul(request.GET) or (request.method == "POST" and _has_nul(request.POST)):
            if request.path.startswith(API_PREFIX):  # the API answers every error as a problem document (RFC 9457)
                return JsonResponse(
                    {"type": "urn:partner-loyalty:problem:invalid", "title": "Bad request", "status": 400,
                     "detail": "The address or a request parameter contains a NUL character.", "code": "invalid",
                     "instance": request.path},
                    status=400, content_type="application/problem+json",
                )  # fmt: skip
            raise BadRequest("A request parameter contains a NUL character.")
        return self.get_response(request)


def _has_nul(params) -> bool:
    return any(NUL in key or any(NUL in value for value in values) for key, values in params.lists())
