"""Every member-site URL requested by every kind of viewer (DESIGN.md invariant 4: a user sees only what their
role allows, tested per role and per URL).

"Own" objects belong to partner A, "other" objects to partner B. The owner, the member and the pending member
work at A; one account manager looks after A, the other after B. A program runs, so the dashboards of issue #14
(analytics.urls_dashboards: portfolio, partner overview, company dashboard, my progress) show it; the exports pages
(analytics.urls_exports) are here too, and what each export gives each viewer is in
tests/analytics/test_visibility_exports.py.
"""

from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse

from analytics import export_jobs, reports
from analytics.models import ReportFrequency, ReportKind
from partners import services
from partners.constants import MemberStatus
from tests.loyalty.factories import ProgramFactory
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    ProgramManagerFactory,
    UserFactory,
    role,
)

pytestmark = pytest.mark.django_db

LOGIN = "redirect to sign-in"
ADMIN_LOGIN = "redirect to the back office's sign-in"
DASHBOARD = "the back office's index with the program managers' dashboard"
PLAIN_INDEX = "the back office's index without figures"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, built once for the module in a transaction rolled back at its end: each test runs in a savepoint
    inside it, so what one request changes is undone before the next."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def empty_cache():
    """No figures a page cached for another viewer of the same world are served to the next one."""
    cache.clear()


def build_world() -> SimpleNamespace:
    program_manager = ProgramManagerFactory(email="pm@maker.example")
    program = ProgramFactory()
    am_a, am_b = AccountManagerFactory(), AccountManagerFactory()
    a = PartnerFactory(name="A Ltd", account_manager=am_a)
    b = PartnerFactory(name="B Ltd", account_manager=am_b)
    owner = OwnerFactory(partner=a)
    invitation = services.invitation_send(
        partner=a, email="newcomer@a.example", role=role("sales"), invited_by=owner.user
    )

    def pending(partner):
        return MemberFactory(partner=partner, status=MemberStatus.PENDING_APPROVAL, joined_at=None)

    def invited(partner):
        return MemberFactory(partner=partner, status=MemberStatus.INVITED, joined_at=None)

    # The owner's export, still being written (its download says so to the owner, and is nobody else's), and a
    # program manager's scheduled report (only they may stop it).
    selection = export_jobs.Selection("claims", "csv", program.pk, {}, "en", "Europe/Berlin")
    owners_export, _created = export_jobs.export_job_start(user=owner.user, selection=selection)
    pm_report = reports.report_subscribe(
        user=program_manager, program=program, kind=ReportKind.LIABILITY, frequency=ReportFrequency.MONTHLY
    )

    return SimpleNamespace(
        a=a,
        b=b,
        token=invitation.token,
        owners_export=owners_export,
        pm_report=pm_report,
        viewers={
            "anonymous": None,
            "member": MemberFactory(partner=a).user,
            "pending_member": pending(a).user,
            "owner": owner.user,
            "account_manager": am_a,
            "account_manager_elsewhere": am_b,
            "program_manager": program_manager,
            "no_membership": UserFactory(),
            "staff_without_role": UserFactory(is_staff=True),  # may sign in to the back office, nothing more
        },
        own_active=MemberFactory(partner=a),
        other_active=MemberFactory(partner=b),
        own_pending=pending(a),
        other_pending=pending(b),
        own_invited=invited(a),
        other_invited=invited(b),
    )


# name: (method, url, POST data (or a function of the world giving it))
ROUTES = {
    "home": ("get", lambda w: reverse("home"), None),
    "profile": ("get", lambda w: reverse("profile"), None),
    "team": ("get", lambda w: reverse("team"), None),
    "team_invite": ("post", lambda w: reverse("team_invite"), {"email": "fresh@a.example", "role": "sales"}),
    "team_invite_get": ("get", lambda w: reverse("team_invite"), None),
    "approve_own": ("post", lambda w: reverse("member_approve", args=[w.own_pending.pk]), {}),
    "approve_other": ("post", lambda w: reverse("member_approve", args=[w.other_pending.pk]), {}),
    "approve_get": ("get", lambda w: reverse("member_approve", args=[w.own_pending.pk]), None),
    "deactivate_own": ("get", lambda w: reverse("member_deactivate", args=[w.own_active.pk]), None),
    "deactivate_other": ("get", lambda w: reverse("member_deactivate", args=[w.other_active.pk]), None),
    "deactivate_post_own": ("post", lambda w: reverse("member_deactivate", args=[w.own_active.pk]), {"reason": ""}),
    "deactivate_post_other": (
        "post",
        lambda w: reverse("member_deactivate", args=[w.other_active.pk]),
        {"reason": ""},
    ),
    "resend_own": ("post", lambda w: reverse("invitation_resend", args=[w.own_invited.pk]), {}),
    "resend_other": ("post", lambda w: reverse("invitation_resend", args=[w.other_invited.pk]), {}),
    "resend_get": ("get", lambda w: reverse("invitation_resend", args=[w.own_invited.pk]), None),
    "cancel_own": ("get", lambda w: reverse("invitation_cancel", args=[w.own_invited.pk]), None),
    "cancel_other": ("get", lambda w: reverse("invitation_cancel", args=[w.other_invited.pk]), None),
    "cancel_post_own": ("post", lambda w: reverse("invitation_cancel", args=[w.own_invited.pk]), {}),
    "cancel_post_other": ("post", lambda w: reverse("invitation_cancel", args=[w.other_invited.pk]), {}),
    "company": ("get", lambda w: reverse("company"), None),
    "company_post": ("post", lambda w: reverse("company"), {"payout_policy": "pooled", "confirm": "yes"}),
    "partner_list": ("get", lambda w: reverse("partner_list"), None),
    "partner_detail_own": ("get", lambda w: reverse("partner_detail", args=[w.a.pk]), None),
    "partner_detail_other": ("get", lambda w: reverse("partner_detail", args=[w.b.pk]), None),
    "invitation_accept": ("get", lambda w: reverse("invitation_accept", args=[w.token]), None),
    # Issue #14: the dashboards (analytics.urls_dashboards) ...
    "portfolio": ("get", lambda w: reverse("portfolio"), None),
    "partner_overview_own": ("get", lambda w: reverse("partner_overview", args=[w.a.pk]), None),
    "partner_overview_other": ("get", lambda w: reverse("partner_overview", args=[w.b.pk]), None),
    "company_dashboard": ("get", lambda w: reverse("company_dashboard"), None),
    "my_progress": ("get", lambda w: reverse("my_progress"), None),
    # ... the exports pages (analytics.urls_exports; export_start is tests/analytics/test_visibility_exports.py's) ...
    "export_list": ("get", lambda w: reverse("export_list"), None),
    "export_download_owners": ("get", lambda w: reverse("export_download", args=[w.owners_export.pk]), None),
    "report_subscriptions": ("get", lambda w: reverse("report_subscriptions"), None),
    "report_subscribe": (
        "post",
        lambda w: reverse("report_subscriptions"),
        {"kind": "portfolio", "frequency": "weekly"},
    ),
    "report_stop_pms": ("post", lambda w: reverse("report_subscriptions"), lambda w: {"stop": w.pm_report.pk}),
    # ... and the back office's index, the program managers' dashboard (analytics.admin).
    "admin_index": ("get", lambda w: reverse("admin:index"), None),
}

# Signed in without a role that opens more: home, profile and their own (empty) exports page only; the invitation is
# someone else's (403); POST-only URLs answer a GET with 405 before anything else is looked at; the back office sends
# them to its sign-in; everything else is 404.
SIGNED_IN = {name: 404 for name in ROUTES} | {
    "home": 200,
    "profile": 200,
    "team_invite_get": 405,
    "approve_get": 405,
    "resend_get": 405,
    "invitation_accept": 403,
    "export_list": 200,
    "admin_index": ADMIN_LOGIN,
}
# A partner's people (pending approval too: a current membership) see their own progress.
PARTNER_PERSON = SIGNED_IN | {"my_progress": 200}
# The manufacturer's staff: their portfolio and their scheduled reports (not the program manager's to stop).
MANAGER = SIGNED_IN | {"portfolio": 200, "report_subscriptions": 200, "report_subscribe": 302}

EXPECTED = {
    "anonymous": {name: LOGIN for name in ROUTES} | {"invitation_accept": 200, "admin_index": ADMIN_LOGIN},
    "member": PARTNER_PERSON,
    "pending_member": PARTNER_PERSON,
    "no_membership": SIGNED_IN,
    "staff_without_role": SIGNED_IN | {"admin_index": PLAIN_INDEX},
    "owner": PARTNER_PERSON
    | {
        "team": 200,
        "team_invite": 302,
        "approve_own": 302,
        "deactivate_own": 200,
        "deactivate_post_own": 302,
        "resend_own": 302,
        "cancel_own": 200,
        "cancel_post_own": 302,
        "company": 200,
        "company_post": 302,
        "partner_detail_own": 200,
        "partner_overview_own": 200,
        "company_dashboard": 200,
        "export_download_owners": 302,  # not written yet: back to the exports page, which shows how far it got
    },
    "account_manager": MANAGER | {"partner_list": 200, "partner_detail_own": 200, "partner_overview_own": 200},
    "account_manager_elsewhere": MANAGER
    | {"partner_list": 200, "partner_detail_other": 200, "partner_overview_other": 200},
    "program_manager": MANAGER
    | {
        "partner_list": 200,
        "partner_detail_own": 200,
        "partner_detail_other": 200,
        "partner_overview_own": 200,
        "partner_overview_other": 200,
        "report_stop_pms": 302,
        "admin_index": DASHBOARD,
    },
}

# The partners a dashboard names, for each viewer who may open it: never one outside what the viewer sees.
PARTNERS = ("A Ltd", "B Ltd")
PARTNERS_SHOWN = {
    "portfolio": {
        "account_manager": {"A Ltd"},
        "account_manager_elsewhere": {"B Ltd"},
        "program_manager": set(PARTNERS),
    },
    "partner_overview_own": dict.fromkeys(("owner", "account_manager", "program_manager"), {"A Ltd"}),
    "partner_overview_other": dict.fromkeys(("account_manager_elsewhere", "program_manager"), {"B Ltd"}),
    "company_dashboard": {"owner": {"A Ltd"}},
}

CASES = [(viewer, route) for viewer, row in EXPECTED.items() for route in row]

# Where a done action redirects to: the team page, unless said here.
REDIRECTS = {
    "company_post": "company",
    "export_download_owners": "export_list",
    "report_subscribe": "report_subscriptions",
    "report_stop_pms": "report_subscriptions",
}


def test_the_matrix_covers_every_member_site_url():
    from partners.urls import urlpatterns

    covered = {reverse_name for reverse_name in (p.name for p in urlpatterns)}
    assert covered == {
        "home",
        "profile",
        "team",
        "team_invite",
        "member_approve",
        "member_deactivate",
        "invitation_resend",
        "invitation_cancel",
        "company",
        "invitation_accept",
        "partner_list",
        "partner_detail",
    }
    assert all(set(row) == set(ROUTES) for row in EXPECTED.values())


def test_the_matrix_covers_every_dashboard_and_exports_page():
    from analytics.urls_dashboards import urlpatterns as dashboards
    from analytics.urls_exports import urlpatterns as exports

    covered = {"portfolio", "partner_overview", "company_dashboard", "my_progress"}
    covered |= {"export_list", "export_download", "report_subscriptions"}
    covered |= {"export_start"}  # every export, per viewer: tests/analytics/test_visibility_exports.py
    assert {p.name for p in [*dashboards, *exports]} == covered


@pytest.mark.parametrize(("viewer", "route"), CASES, ids=[f"{v}-{r}" for v, r in CASES])
def test_visibility_matrix(client, world, viewer, route):
    method, make_url, data = ROUTES[route]
    url = make_url(world)
    data = data(world) if callable(data) else data
    user = world.viewers[viewer]
    if user is not None:
        client.force_login(user)

    response = client.post(url, data) if method == "post" else client.get(url)

    expected = EXPECTED[viewer][route]
    if expected == LOGIN:
        assert (response.status_code, response.url) == (302, f"/accounts/login/?next={url}")
    elif expected == ADMIN_LOGIN:
        assert (response.status_code, response.url) == (302, f"/admin/login/?next={url}")
    elif expected in (DASHBOARD, PLAIN_INDEX):
        with_dashboard = expected == DASHBOARD
        assert response.status_code == 200
        assert ("dashboard" in response.context) is with_dashboard
        assert ('id="pm-dashboard"' in response.text) is with_dashboard
    else:
        assert response.status_code == expected
        if expected == 302:  # an action done: back to the team page (or the page it was taken on)
            assert response.url == reverse(REDIRECTS.get(route, "team"))
        if route in PARTNERS_SHOWN and expected == 200:
            assert {name for name in PARTNERS if name in response.text} == PARTNERS_SHOWN[route][viewer]
    if route == "report_stop_pms":  # stopped by the program manager only; anyone else's request changed nothing
        world.pm_report.refresh_from_db()
        assert world.pm_report.is_active is (expected != 302)
