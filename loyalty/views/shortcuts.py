"""Small helpers of the member site's views (the program core's and the rewards pages)."""

from django.http import Http404


def get_or_404(model, get, message: str, **lookup):
    """What `get(**lookup)` finds (a selector that raises model.DoesNotExist when the viewer may not see the
    object, or there is none), or a 404 saying `message`."""
    try:
        return get(**lookup)
    except model.DoesNotExist:
        raise Http404(message) from None
