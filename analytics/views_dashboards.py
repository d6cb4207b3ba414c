"""The member site's dashboards: an account manager's portfolio, a partner's overview (the owner's company dashboard),
a member's own progress, and the figures the tables of a partner's people show (partners.hooks).

Thin views over analytics.portfolio and analytics.health (reads scoped by partners.visibility). A page a viewer may
not use is a 404, as on the rest of the site; a partner outside the viewer's portfolio is a 404 too; a filter value
that is not one of the choices is ignored.
"""

from collections.abc import Callable

from django import forms
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from analytics import portfolio as selectors
from analytics.charts import Chart, Series
from analytics.health import AT_RISK_BELOW
from loyalty.common.htmx import render_page_or_partial, wants_partial
from loyalty.models import PointsAccount
from loyalty.selectors.programs import current_program
from loyalty.views.decorators import member_in_program_required
from partners import hooks
from partners.constants import MemberStatus
from partners.decorators import viewer_passes
from partners.forms import SearchFilterForm
from partners.selectors import region_list, team_list
from partners.visibility import Viewer, viewer_for

PAGE_SIZE = 25
EXPORT_URL_NAME = "export_start"  # analytics.urls_exports: /exports/<kind>/?format=csv|xlsx&<the list's filters>


def _viewer_passes(test: Callable[[Viewer], bool]):
    """Signed in, a GET, and only viewers who pass `test` (partners.decorators); anyone else gets a 404."""

    def decorator(view):
        return login_required(require_GET(viewer_passes(test)(view)))

    return decorator


managers_only = _viewer_passes(lambda viewer: viewer.is_manager)
owner_or_managers = _viewer_passes(lambda viewer: viewer.is_manager or viewer.is_owner)
owner_only = _viewer_passes(lambda viewer: viewer.is_owner)


def export_url(kind: str, query: str = "") -> str:
    """The export of a list (analytics.urls_exports) with the page's filters, as CSV; "" if exports are not served."""
    try:
        url = reverse(EXPORT_URL_NAME, args=[kind])
    except NoReverseMatch:
        return ""
    return f"{url}?format=csv{'&' + query if query else ''}"


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


# The portfolio ------------------------------------------------------------------------------------------------------


def _choices(all_label: str, choices) -> list[tuple[str, str]]:
    return [("", all_label), *choices]


class PortfolioFilterForm(SearchFilterForm):
    """The portfolio's search, filters and order. A value that is not a choice is ignored (the default order: by
    health)."""

    search_placeholder = gettext_lazy("Name or legal id")
    tier = forms.ChoiceField(label=gettext_lazy("Tier"), required=False)
    region = forms.ChoiceField(label=gettext_lazy("Region"), required=False)
    sort = forms.ChoiceField(label=gettext_lazy("Order"), required=False)
    at_risk = forms.BooleanField(label=gettext_lazy("At risk only"), required=False)
    columns = {"q": "col-12 col-md-4 col-lg-2", "submit": "col-12 col-md-2 col-lg-1"}
    columns |= dict.fromkeys(("tier", "region"), "col-6 col-md-4 col-lg-2")
    columns |= {"sort": "col-12 col-md-6 col-lg-3", "at_risk": "col-12 col-md-4 col-lg-2"}

    def __init__(self, *args, tiers, regions, **kwargs):
        super().__init__(*args, **kwargs)
        tier_choices = [(str(tier.pk), tier.name) for tier in tiers]
        self.fields["tier"].choices = _choices(_("Any tier"), [*tier_choices, (selectors.NO_TIER, _("No tier"))])
        self.fields["region"].choices = _choices(_("Any region"), [(r.code, r.name) for r in regions])
        self.fields["sort"].choices = [
            (selectors.SORT_HEALTH, _("Health, at risk first")),
            (selectors.SORT_TREND, _("Sales trend, falling first")),
            (selectors.SORT_NAME, _("Name")),
            (selectors.SORT_POINTS, _("Points, most first")),
        ]

    def filters(self) -> dict:
        filters = super().filters()
        filters["sort"] = filters["sort"] or selectors.SORT_HEALTH
        return filters


@managers_only
def portfolio(request):
    """Every partner the account manager looks after (all for a program manager): tier, sales trend, points,
    activity and health with its reasons; sortable, filterable, partners at risk first by default."""
    viewer = viewer_for(request.user)
    program = current_program(request)
    if program is None:
        return render(request, "analytics/dashboards/portfolio.html", {"program": None})
    form = PortfolioFilterForm(request.GET, tiers=selectors.program_tiers(program), regions=region_list())
    filters = form.filters()
    rows = selectors.portfolio(viewer=viewer, program=program, **filters)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = _query_without_page(request)
    context = {
        "program": program,
        "filter_form": form,
        "is_filtered": any(value for name, value in filters.items() if name != "sort"),
        "page": page,
        "at_risk_count": sum(1 for row in rows if row.at_risk),
        "at_risk_below": AT_RISK_BELOW,
        "statement_url": reverse("points_statement"),
        "export_url": export_url("partners", query),
    }
    return render_page_or_partial(request, "analytics/dashboards/portfolio.html", "portfolio-table", context)


# A partner's overview and the owner's company dashboard ------------------------------------------------------------


def _month(day) -> str:
    return date_format(day, "M Y")


def _overview_charts(overview: selectors.Overview) -> dict[str, Chart]:
    program = overview.program
    months = [_month(row.month) for row in overview.sales]
    sales = Chart(
        id="sales-months",
        title=_("Sales by month"),
        summary=_(
            "Sales through the program each month, against the same month a year earlier (this month so far, against "
            "the same days)."
        ),
        labels=months,
        series=[
            Series(_("Sales"), [row.amount for row in overview.sales]),
            Series(_("A year earlier"), [row.last_year for row in overview.sales]),
        ],
        currency=program.money_currency,
        label_heading=_("Month"),
    )
    points = Chart(
        id="points-months",
        title=_("%(currency)s by month") % {"currency": program.currency_name},
        summary=_("Earned (net of reversals), redeemed and expired each month, company and people together."),
        labels=[_month(row.month) for row in overview.points_months],
        series=[
            Series(_("Earned"), [row.issued for row in overview.points_months]),
            Series(_("Redeemed"), [row.redeemed for row in overview.points_months]),
            Series(_("Expired"), [row.expired for row in overview.points_months]),
        ],
        label_heading=_("Month"),
    )
    return {"sales": sales, "points": points}


def _overview(request, partner, *, is_company_dashboard: bool):
    viewer = viewer_for(request.user)
    program = current_program(request)
    if program is None:
        context = {"program": None, "partner": partner, "is_company_dashboard": is_company_dashboard}
        return render(request, "analytics/dashboards/overview.html", context)
    today = timezone.localdate()
    page = Paginator(team_list(viewer=viewer, partner=partner), PAGE_SIZE).get_page(request.GET.get("page"))
    members = page.object_list = list(page.object_list)
    figures = selectors.member_figures(program=program, members=members, today=today)
    for member in members:
        member.figures = figures.get(member.pk, selectors.MemberFigures())
    statement = reverse("points_statement")
    context = {
        "program": program,
        "partner": partner,
        "year": today.year,
        "page": page,
        "statement_url": statement,
        "is_company_dashboard": is_company_dashboard,
    }
    if wants_partial(request):  # another page of people: the rest of the page stays as it is
        return render_page_or_partial(request, "analytics/dashboards/overview.html", "overview-members", context)
    overview = selectors.partner_overview(viewer=viewer, program=program, partner=partner, today=today)
    company_account = overview.points.company_account_id
    context |= {
        "overview": overview,
        "charts": _overview_charts(overview),
        "company_statement_url": f"{statement}?account={company_account}" if company_account else "",
        "statement_export_url": export_url("statement", f"account={company_account}") if company_account else "",
        "members_export_url": export_url("members", f"partner={partner.pk}"),
    }
    return render_page_or_partial(request, "analytics/dashboards/overview.html", "overview-members", context)


@owner_or_managers
def partner_overview(request, partner_id: int):
    """A partner's sales, points, claims, orders, statement and people with their activity, with links to each: for
    the account manager who looks after it, program managers, and its owner."""
    partner = selectors.overview_partner_get(viewer=viewer_for(request.user), pk=partner_id)
    return _overview(request, partner, is_company_dashboard=False)


@owner_only
def company_dashboard(request):
    """The owner's company dashboard: their partner's overview."""
    viewer = viewer_for(request.user)
    partner = selectors.overview_partner_get(viewer=viewer, pk=viewer.partner.pk)
    return _overview(request, partner, is_company_dashboard=True)


# A member's own progress ------------------------------------------------------------------------------------------


@member_in_program_required(gettext_lazy("Progress is for partner members."))
@require_GET
def my_progress(request):
    """What the member earned month by month, their company's tier progress (the navigation's `my_tier`) and their
    place on the program's leaderboards."""
    viewer = viewer_for(request.user)
    program, member = request.program, request.member
    account = PointsAccount.objects.filter(program=program, member=member).first()
    months = selectors.earned_by_month(account=account)
    chart = Chart(
        id="earned-months",
        title=_("Month by month"),
        summary=_("%(currency)s I earned (net of reversals) and redeemed (net of refunds) each month.")
        % {"currency": program.currency_name},
        labels=[_month(month.month) for month in months],
        series=[
            Series(_("Earned"), [month.earned for month in months]),
            Series(_("Redeemed"), [month.redeemed for month in months]),
        ],
        label_heading=_("Month"),
    )
    context = {
        "chart": chart,
        "program": program,
        "member": member,
        "account": account,
        "months": months,
        "earned_total": sum(month.earned for month in months),
        "ranks": selectors.my_ranks(viewer=viewer, program=program),
    }
    return render(request, "analytics/dashboards/my_progress.html", context)


# The columns of a partner's people (partners.hooks.provides_member_columns) ----------------------------------------


def member_columns(*, request, viewer, partner, members) -> list[hooks.MemberColumn]:
    """What each person earned this year, their balance (a link to their statement), their last activity and the
    training modules they passed, for the owner's team page and the partner page: one query for the page's people.
    Nothing for viewers who see only their own things, or when no program runs."""
    program = current_program(request)
    if not viewer.sees_others or program is None or not members:
        return []
    today = timezone.localdate()
    figures = selectors.member_figures(program=program, members=members, today=today)
    statement = reverse("points_statement")
    earned, balance, activity, training = {}, {}, {}, {}
    for pk, member in figures.items():
        earned[pk] = hooks.MemberCell(intcomma(member.earned_this_year))
        url = f"{statement}?account={member.account_id}" if member.account_id else ""
        balance[pk] = hooks.MemberCell(intcomma(member.balance), url=url)
        if member.last_activity is not None:
            activity[pk] = hooks.MemberCell(date_format(timezone.localtime(member.last_activity), "j M Y"))
        training[pk] = hooks.MemberCell(intcomma(member.modules_passed))
    return [
        hooks.MemberColumn(_("Earned in %(year)s") % {"year": today.year}, earned, numeric=True),
        hooks.MemberColumn(_("Balance"), balance, numeric=True),
        hooks.MemberColumn(_("Last activity"), activity),
        hooks.MemberColumn(_("Modules passed"), training, numeric=True),
    ]


def progress_panel(*, request, viewer) -> list:
    """The home page's card leading to the member's own progress (partners.hooks.provides_home_panels): for active
    members; no query."""
    member = viewer.member
    if member is None or member.status != MemberStatus.ACTIVE:
        return []
    return [("analytics/dashboards/_progress_panel.html", {})]
