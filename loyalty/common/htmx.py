"""One view pattern for htmx: a request refreshing part of a page gets only that partial of the same template."""

from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def wants_partial(request) -> bool:
    """An htmx request gets the partial; a history restore needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page_or_partial(request, template: str, partial: str, context: dict):
    response = render(request, f"{template}#{partial}" if wants_partial(request) else template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
