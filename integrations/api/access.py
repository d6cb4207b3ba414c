"""Who calls the API and what they may do: the caller (a machine client or a person), the permission every
operation checks (CallerAllowed) and the rate limits (CallerThrottle). Kept apart from base.py, which holds the
views: REST framework's settings import these while its own views module is still loading."""

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework import permissions, throttling

from integrations.api.authentication import ClientPrincipal
from integrations.api.problems import Problem
from integrations.models import ApiClient
from loyalty.models import Program
from partners.visibility import Viewer, integration_viewer, viewer_for

ANY_CLIENT = ""  # an ApiView's scope when every machine client may call it, whatever its scopes


# Who is calling ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The caller of an operation: a machine client (`client`) or a person (`user`), what they may see (`viewer`)
    and the program they act in (a client's own; a person's: ?program= among the active ones, else the first)."""

    viewer: Viewer
    program: Program | None
    client: ApiClient | None = None
    user: object = None

    @property
    def is_client(self) -> bool:
        return self.client is not None

    @property
    def actor(self):
        """Who services record as acting: the person, or the program manager who registered the client."""
        return self.client.created_by if self.client is not None else self.user

    @property
    def owner(self) -> str:
        """Whose idempotency keys these are."""
        return f"client:{self.client.pk}" if self.client is not None else f"user:{self.user.pk}"


def _person_program(request) -> Program | None:
    programs = list(Program.objects.filter(is_active=True).order_by("pk"))
    wanted = request.query_params.get("program", "")
    if wanted:
        chosen = next((p for p in programs if str(p.pk) == wanted or p.slug == wanted), None)
        if chosen is None:
            raise Problem(404, "not_found", f"No active program “{wanted[:40]}”.")
        return chosen
    return programs[0] if programs else None


def caller_of(request) -> Caller:
    user = request.user
    if isinstance(user, ClientPrincipal):
        client = user.client
        return Caller(viewer=integration_viewer(client.distributor), program=client.program, client=client)
    return Caller(viewer=viewer_for(user), program=_person_program(request), user=user)


class CallerAllowed(permissions.BasePermission):
    """A machine client holding the view's scope, or a person in the program when the view is for members."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if isinstance(user, ClientPrincipal):
            if view.scope is None:
                raise Problem(403, "forbidden", "This operation is for people, not for machine clients.")
            if view.scope != ANY_CLIENT and not user.client.has_scope(view.scope):
                raise Problem(403, "missing_scope", f"This client lacks the scope {view.scope}.")
            return True
        if not getattr(user, "is_authenticated", False):
            return False  # 401 with WWW-Authenticate
        if not view.for_members:
            raise Problem(403, "forbidden", "This operation is for machine clients (an API key).")
        if not viewer_for(user).in_program:
            raise Problem(403, "forbidden", "Only the program's members and staff may use the API.")
        return True


# Rate limits -------------------------------------------------------------------------------------------------------


def _rate(text: str) -> tuple[int, int]:
    count, _, period = text.partition("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


class CallerThrottle(throttling.BaseThrottle):
    """A fixed window per caller: a client's own rate (or API_CLIENT_RATE), a person's API_MEMBER_RATE, per
    address for anyone not signed in. Counted in the shared cache, so it holds across workers. Records what
    the rate-limit headers say on the request."""

    def allow_request(self, request, view) -> bool:
        user = request.user
        if isinstance(user, ClientPrincipal):
            per_minute = user.client.requests_per_minute
            limit, window = (per_minute, 60) if per_minute else _rate(settings.API_CLIENT_RATE)
            who = f"client:{user.client.pk}"
        elif getattr(user, "is_authenticated", False):
            limit, window = _rate(settings.API_MEMBER_RATE)
            who = f"user:{user.pk}"
        else:
            limit, window = _rate(settings.API_ANONYMOUS_RATE)
            who = f"ip:{self.get_ident(request)}"
        now = time.time()
        window_start = int(now // window * window)
        key = f"api:rate:{who}:{window_start}"
        cache.add(key, 0, window + 1)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, window + 1)
            used = 1
        reset = max(1, math.ceil(window_start + window - now))
        request.rate_limit = (limit, max(limit - used, 0), reset)
        self.reset = reset
        return used <= limit

    def wait(self) -> float:
        return self.reset
