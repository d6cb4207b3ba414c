"""The rule admin's "Simulate" page: what one version would have cost over a past period, next to the rules as
published (services.simulation.rule_simulate; nothing is written)."""

from loyalty.admin.rule_display import formula_text
from loyalty.admin.rule_forms import SimulateForm
from loyalty.common.admin import admin_page
from loyalty.common.errors import ApplicationError
from loyalty.services.rules import describe_rule
from loyalty.services.simulation import DEFAULT_DAYS, default_period, rule_simulate


def simulate_view(model_admin, request, rule):
    """The page of `model_admin` (the rule admin) for `rule`, once found and allowed (admin.rules: its URL);
    the period comes from the query string, the last DEFAULT_DAYS days by default."""
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
    return admin_page(
        model_admin,
        request,
        "admin/loyalty/incentiverule/simulate.html",
        title=f"Simulate {describe_rule(rule)}",
        form=form,
        original=rule,
        simulation=simulation,
        problem=problem,
        default_days=DEFAULT_DAYS,
        formula=formula_text(rule),
    )
