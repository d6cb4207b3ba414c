from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404

from loyalty.selectors.programs import current_program
from partners.visibility import viewer_for


def member_in_program_required(message: str):
    """The view is for partner people with a current membership, in a running program; others get a 404.
    Sets request.member (the viewer's membership) and request.program."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            member = viewer_for(request.user).member
            program = current_program(request)
            if member is None or program is None:
                raise Http404(message)
            request.member, request.program = member, program
            return view(request, *args, **kwargs)

        return login_required(wrapper)

    return decorator
