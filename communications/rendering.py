"""Message templates in a sandbox: Django's template language with no loaders, no {% load %}, {% include %} or
{% extends %}, only the `if` tag and a few formatting filters, and only the variables a kind documents
(constants.KINDS). Templates are checked when they are saved (`template_problem`), so a send never meets a broken
one. Variables are plain values (strings and numbers), never model objects."""

from functools import lru_cache

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template import Context, Engine, Library, Template, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import VariableNode
from django.utils.translation import gettext as _
from django.utils.translation import override

from communications.constants import allowed_variables

library = Library()
library.tag("if", defaulttags.do_if)
library.tag("comment", defaulttags.comment)
for _name in ("default", "upper", "lower", "capfirst", "title", "truncatechars", "pluralize", "yesno", "date"):
    library.filter(_name, getattr(defaultfilters, _name))
library.filter("intcomma", intcomma)


class SandboxEngine(Engine):
    """Only `library`: none of Django's default tags ({% load %}, {% include %}, {% url %}, ...) or filters."""

    default_builtins = []

    def get_template_builtins(self, builtins):
        return [library]


# Plain text (e-mail text part, SMS, inbox): nothing is HTML-escaped here; a page that shows a message escapes it.
engine = SandboxEngine(autoescape=False, libraries={})


def _names(expression) -> set[str]:
    """The variable names a FilterExpression reads (its own variable and its filters' arguments)."""
    names = set()
    for var in [expression.var, *(arg for _func, args in expression.filters for _lookup, arg in args)]:
        lookups = getattr(var, "lookups", None)
        if lookups:
            names.add(lookups[0])
    return names


def _condition_names(condition) -> set[str]:
    """The names an {% if %} condition reads (operators nest `first` and `second`)."""
    if condition is None:
        return set()
    if hasattr(condition, "value") and hasattr(condition.value, "var"):
        return _names(condition.value)
    return _condition_names(getattr(condition, "first", None)) | _condition_names(getattr(condition, "second", None))


def used_variables(text: str) -> set[str]:
    """The variables the template `text` reads; raises TemplateSyntaxError on a syntax error."""
    nodelist = engine.from_string(text).nodelist
    names = set()
    for node in nodelist.get_nodes_by_type(VariableNode):
        names |= _names(node.filter_expression)
    for node in nodelist.get_nodes_by_type(defaulttags.IfNode):
        for condition, _nodes in node.conditions_nodelists:
            names |= _condition_names(condition)
    return names


def template_problem(kind: str, text: str) -> str | None:
    """Why `text` cannot be a template of `kind` (a syntax error, an unknown variable), or None."""
    try:
        unknown = sorted(used_variables(text) - set(allowed_variables(kind)))
    except TemplateSyntaxError as exc:
        return _("The template has an error: %(error)s") % {"error": exc}
    if unknown:
        return _("Unknown variable(s): %(unknown)s. This kind of message may use: %(allowed)s.") % {
            "unknown": ", ".join(unknown),
            "allowed": ", ".join(sorted(allowed_variables(kind))),
        }
    return None


@lru_cache(maxsize=512)
def compiled(text: str) -> Template:
    """The template `text`, compiled once per process: a fan-out renders the same few texts for every member. A
    compiled template keeps no state between renders, so sharing it is safe."""
    return engine.from_string(text)


def render(text: str, variables: dict, *, language: str) -> str:
    """`text` rendered with `variables`, dates and numbers in `language`."""
    with override(language):
        return compiled(text).render(Context(variables, autoescape=False, use_l10n=True)).strip()
