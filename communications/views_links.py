"""A message's short link, /m/<code> (communications/delivery_links.py): counted as a click, it leads to the
message's page on this site, signing the member in with one tap when it may. A thin view: the decision is the
service's; signing in needs the request, so it happens here."""

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from communications.delivery_links import Opening, delivery_link_open

# Why the link did not sign the visitor in, shown on the sign-in page the member's page sends them to. Staff,
# two-factor accounts and memberships that are not active are told nothing: an invited person's link leads to the
# invitation page, which needs no sign-in.
_WHY_NOT_SIGNED_IN = {
    Opening.USED: _("This link has already been used to sign in. Please sign in to continue."),
    Opening.EXPIRED: _("This link has expired for signing in. Please sign in to continue."),
}


@never_cache  # the answer may carry a fresh session: no proxy may keep it
@require_GET
def delivery_link(request, code: str):
    opened = delivery_link_open(code=code, visitor=request.user)
    if opened is None:
        return render(request, "communications/link_unknown.html", status=404)
    if opened.opening == Opening.SIGN_IN:
        login(request, opened.user, backend="django.contrib.auth.backends.ModelBackend")
    elif opened.opening in _WHY_NOT_SIGNED_IN:
        messages.info(request, _WHY_NOT_SIGNED_IN[opened.opening])
    # A page that needs a sign-in asks for it, with ?next= back to the page.
    return redirect(opened.path)
