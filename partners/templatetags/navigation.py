"""The member site's main navigation (templates/base.html)."""

from fnmatch import fnmatchcase

from django import template
from django.urls import reverse

register = template.Library()

# Pages reached from a page of the navigation rather than from the navigation itself, marked as part of it: the club
# page (loyalty.views.clubs) and a member's progress (analytics) are linked from the home page's cards; a partner's
# overview (analytics) from the portfolio; the company settings from the owner's company dashboard.
SECTIONS = {
    "home": ("club", "club_join", "my_progress"),
    "portfolio": ("partner_overview",),
    "company_dashboard": ("company",),
}


@register.inclusion_tag("includes/nav_link.html", takes_context=True)
def nav_link(context, url_name: str, text: str, also: str = "", balance=None) -> dict:
    """A link of the main navigation to the page `url_name`, saying `text`. It is marked active on that page and
    on the pages matching one of the names in `also` (space-separated; "claim_*" matches every claim_ page) or in
    its SECTIONS, and the current page on that page only. `balance`: a points account whose available points it
    shows."""
    match = getattr(context.get("request"), "resolver_match", None)
    current = match.url_name if match else None
    names = [url_name, *also.split(), *SECTIONS.get(url_name, ())]
    active = current is not None and any(fnmatchcase(current, name) for name in names)
    return {
        "href": reverse(url_name),
        "text": text,
        "active": active,
        "current": current == url_name,
        "balance": balance,
    }


@register.inclusion_tag("includes/nav_item.html", takes_context=True)
def nav_item(context, url_name: str, text: str, also: str = "") -> dict:
    """A link in a dropdown of the main navigation, marked like nav_link."""
    return nav_link(context, url_name, text, also)
