"""The rule admin's "Simulate" page: what one version would have cost over a past period, next to the rules as
published (services.simulation.rule_simulate; nothing is written)."""

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from loyalty.admin.rule_display import formula_text
from loyalty.admin.rule_forms import SimulateForm
from loyalty.common.errors import ApplicationError
from loyalty.services.rules import describe_rule
from loyalty.services.simulation import DEFAULT_DAYS, default_period, rule_simulate


def simulate_view(model_admin, request, object_id):
    """The page of `model_admin` (the rule admin) for the rule `object_id`; the period comes from the query
    string, the last DEFAULT_DAYS days by default."""
    rule = model_admin.get_object(request, unquote(object_id))
    if rule is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    if not model_admin.has_view_permission(request, rule):
        raise PermissionDenied
    start, end = default_period()
    form = SimulateForm(request.GET if "start" in request.GET else None, initial={"start": start, "end": end})
    simulation, problem = None, ""
    if form.is_bound and form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    if not form.is_bound or form.is_valid():
        try:
            simulation = rule_simulate(rule=rule, start=start, end=end)
        except ApplicationError as exc:
            problem = exc.message
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Simulate {describe_rule(rule)}",
        "subtitle": None,
        "opts": model_admin.opts,
        "original": rule,
        "form": form,
        "simulation": simulation,
        "problem": problem,
        "default_days": DEFAULT_DAYS,
        "formula": formula_text(rule),
    }
    return TemplateResponse(request, "admin/loyalty/incentiverule/simulate.html", context)
