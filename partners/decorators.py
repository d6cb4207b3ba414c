"""View decorators on who the viewer is (partners.visibility), shared by the apps' member pages."""

from collections.abc import Callable
from functools import wraps

from django.http import Http404

from partners.visibility import Viewer, viewer_for


def viewer_passes(test: Callable[[Viewer], bool]):
    """Only viewers who pass `test` may use the view; anyone else signed in gets a 404."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not test(viewer_for(request.user)):
                raise Http404("This page is not available to you.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
