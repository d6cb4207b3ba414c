"""The Django side of a benchmark, run by bench.harness.probe in a child process against one database.

Reads a JSON request on stdin:
    {"pages": [{"path": "/team/", "who": "Partner owner"}, ...],   # who: a demo login (partners.demo), or null
     "sessions": ["Sales rep", ...]}
and writes a JSON answer on stdout:
    {"pages": [{"path", "who", "status", "queries", "error"}, ...],  # the second request's status and queries
     "sessions": {"Sales rep": "sessionid=..."},                       # Cookie header values for wrk
     "facts": {"members": N, "partners": N, "team_size": {"Partner owner": N, ...}}}
"""

import json
import sys

import django


def measure(path: str, user) -> dict:
    """Request `path` twice as `user` (None: signed out) and count the second request's queries: the first
    warms per-process caches that a long-running worker has warm too."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    if user is not None:
        client.force_login(user)
    client.get(path)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    error = ""
    if getattr(response, "exc_info", None):
        exc = response.exc_info[1]
        error = f"{type(exc).__name__}: {exc}".strip()
    elif response.status_code != 200:
        error = f"HTTP {response.status_code} {response.get('Location', '')}".strip()
    return {"status": response.status_code, "queries": len(queries), "error": error}


def session_cookie(user) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def main() -> int:
    django.setup()
    from partners.constants import CURRENT_MEMBER_STATUSES, MemberStatus
    from partners.demo import demo_logins
    from partners.models import Member, Partner, User

    request = json.load(sys.stdin)
    logins = dict(demo_logins())
    names = {page["who"] for page in request["pages"] if page["who"]} | set(request["sessions"])
    users = {who: User.objects.get(email=logins[who]) for who in sorted(names)}

    pages = [{**page, **measure(page["path"], users.get(page["who"]))} for page in request["pages"]]
    sessions = {who: session_cookie(users[who]) for who in request["sessions"]}
    team_size = {}
    for who, user in users.items():
        member = Member.objects.filter(user=user, status__in=CURRENT_MEMBER_STATUSES).first()
        if member is not None:
            team = Member.objects.filter(partner_id=member.partner_id).exclude(status=MemberStatus.LEFT)
            team_size[who] = team.count()
    facts = {"members": Member.objects.count(), "partners": Partner.objects.count(), "team_size": team_size}
    json.dump({"pages": pages, "sessions": sessions, "facts": facts}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
