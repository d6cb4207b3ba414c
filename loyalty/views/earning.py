"""The member site's "How to earn": everything that pays the member now, in plain words, with worked examples
(loyalty.selectors.earning_guide computes them with the rule engine)."""

from django.shortcuts import render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from loyalty.constants import Formula, RuleEvent
from loyalty.selectors.earning_guide import earning_guide
from loyalty.views.decorators import member_in_program_required

guide_required = member_in_program_required(gettext_lazy("How to earn is for partner members."))


@guide_required
@require_GET
def how_to_earn(request):
    guide = earning_guide(viewer=request.user, program=request.program)
    context = {"guide": guide, "program": request.program, "Formula": Formula, "RuleEvent": RuleEvent}
    return render(request, "loyalty/earning/how_to_earn.html", context)
