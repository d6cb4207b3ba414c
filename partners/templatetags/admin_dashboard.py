"""The back-office index: what the program looks like today."""

from django import template

from partners.selectors_admin import program_overview as select_program_overview

register = template.Library()


@register.inclusion_tag("admin/partners/program_overview.html")
def program_overview():
    return {"overview": select_program_overview()}
