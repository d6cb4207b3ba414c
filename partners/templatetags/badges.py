"""The colour of a status badge, from the dict of colours per status the context processors give."""

from django import template

register = template.Library()


@register.filter
def badge_class(status, colours: dict) -> str:
    """`{{ claim.status|badge_class:CLAIM_STATUS_BADGES }}`: the css class of that status's badge."""
    return colours.get(status, "")
