"""The member site's main navigation (templates/base.html)."""

from fnmatch import fnmatchcase

from django import template
from django.urls import reverse

register = template.Library()


@register.inclusion_tag("includes/nav_link.html", takes_context=True)
def nav_link(context, url_name: str, text: str, also: str = "", balance=None) -> dict:
    """A link of the main navigation to the page `url_name`, saying `text`. It is marked active on that page and
    on the pages matching one of the names in `also` (space-separated; "claim_*" matches every claim_ page), and
    the current page on that page only. `balance`: a points account whose available points it shows."""
    match = getattr(context.get("request"), "resolver_match", None)
    current = match.url_name if match else None
    active = current is not None and any(fnmatchcase(current, name) for name in [url_name, *also.split()])
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
