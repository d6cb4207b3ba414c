"""Every member-site URL requested by every kind of viewer (DESIGN.md invariant 4: a user sees only what their
role allows, tested per role and per URL).

"Own" objects belong to partner A, "other" objects to partner B. The owner, the member and the pending member
work at A; one account manager looks after A, the other after B.
"""

from types import SimpleNamespace

import pytest
from django.urls import reverse

from partners import services
from partners.constants import MemberStatus
from tests.partners.factories import (
    AccountManagerFactory,
    MemberFactory,
    OwnerFactory,
    PartnerFactory,
    UserFactory,
    role,
)

pytestmark = pytest.mark.django_db

LOGIN = "redirect to sign-in"


@pytest.fixture
def world(program_manager):
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

    return SimpleNamespace(
        a=a,
        b=b,
        token=invitation.token,
        viewers={
            "anonymous": None,
            "member": MemberFactory(partner=a).user,
            "pending_member": pending(a).user,
            "owner": owner.user,
            "account_manager": am_a,
            "account_manager_elsewhere": am_b,
            "program_manager": program_manager,
            "no_membership": UserFactory(),
        },
        own_active=MemberFactory(partner=a),
        other_active=MemberFactory(partner=b),
        own_pending=pending(a),
        other_pending=pending(b),
        own_invited=invited(a),
        other_invited=invited(b),
    )


# name: (method, url, POST data)
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
}

# Signed in without a role that opens more: home and profile only; the invitation is someone else's (403);
# POST-only URLs answer a GET with 405 before anything else is looked at; everything else is 404.
SIGNED_IN = {name: 404 for name in ROUTES} | {
    "home": 200,
    "profile": 200,
    "team_invite_get": 405,
    "approve_get": 405,
    "resend_get": 405,
    "invitation_accept": 403,
}

EXPECTED = {
    "anonymous": {name: LOGIN for name in ROUTES} | {"invitation_accept": 200},
    "member": SIGNED_IN,
    "pending_member": SIGNED_IN,
    "no_membership": SIGNED_IN,
    "owner": SIGNED_IN
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
    },
    "account_manager": SIGNED_IN | {"partner_list": 200, "partner_detail_own": 200},
    "account_manager_elsewhere": SIGNED_IN | {"partner_list": 200, "partner_detail_other": 200},
    "program_manager": SIGNED_IN | {"partner_list": 200, "partner_detail_own": 200, "partner_detail_other": 200},
}

CASES = [(viewer, route) for viewer, row in EXPECTED.items() for route in row]

# Where a done action redirects to: the team page, unless said here.
REDIRECTS = {"company_post": "company"}


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


@pytest.mark.parametrize(("viewer", "route"), CASES, ids=[f"{v}-{r}" for v, r in CASES])
def test_visibility_matrix(client, world, viewer, route):
    method, make_url, data = ROUTES[route]
    url = make_url(world)
    user = world.viewers[viewer]
    if user is not None:
        client.force_login(user)

    response = client.post(url, data) if method == "post" else client.get(url)

    expected = EXPECTED[viewer][route]
    if expected == LOGIN:
        assert (response.status_code, response.url) == (302, f"/accounts/login/?next={url}")
    else:
        assert response.status_code == expected
        if expected == 302:  # an action done: back to the team page (or the page it was taken on)
            assert response.url == reverse(REDIRECTS.get(route, "team"))
