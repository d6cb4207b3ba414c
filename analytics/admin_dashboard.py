"""The program managers' dashboard, the back office's index page: the work waiting (each count a link to the admin
queue filtered to exactly those rows), then the chosen program's key figures for a period (analytics.kpis), its
points liability and the estimated return on its incentive budget (analytics.roi), with charts.

No view code here beyond turning a request's query string into a choice of program and period: analytics.admin
puts the context this builds into the admin index (analytics/admin_index.html)."""

from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlencode

from dateutil.relativedelta import relativedelta
from django import forms
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics import figures_cache, health, kpis, roi
from analytics.charts import Chart, Series
from analytics.rollups import check_range
from loyalty.common.errors import ApplicationError
from loyalty.constants import AdjustmentStatus, ClaimStatus, ImportStatus, MdfStatus, ReferralStatus, ReturnStatus
from loyalty.models import (
    EquipmentReturn,
    MarketingRequest,
    PointsAdjustment,
    Program,
    Referral,
    SalesClaim,
    SalesImport,
)
from rewards.constants import SHIPPED_KINDS, OrderStatus
from rewards.models import RedemptionLine, RedemptionOrder

# The dashboard's period unless one is chosen: this month and the eleven before it.
DEFAULT_MONTHS = 12
TOP_PARTNERS = 10
AT_RISK_SHOWN = 10  # partners at risk listed; the portfolio page lists them all
RECENT_CAMPAIGNS = 5


# The work waiting ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    """A queue of work in the back office: what is waiting, as the admin list filters it (`params`, the list's
    own filters) and as a queryset counting the same rows."""

    key: str
    label: str
    changelist: str  # the admin URL name of the list
    params: dict[str, str]
    rows: QuerySet
    urgent: bool = True  # shown highlighted when not empty

    @property
    def url(self) -> str:
        return f"{reverse(self.changelist)}?{urlencode(self.params)}"


@dataclass(frozen=True)
class Waiting:
    key: str
    label: str
    url: str
    count: int
    urgent: bool


def queues() -> list[Queue]:
    """The queues of the back office, each as its admin list's filters select it (read off their list_filter:
    `status` choice filters, FlagFilter's flags, the orders' FulfilmentFilter, and plain field lookups, which the
    admin allows on a model's own fields)."""
    ships = RedemptionLine.objects.filter(order=OuterRef("pk"), reward__kind__in=SHIPPED_KINDS)
    return [
        Queue(
            "claims",
            _("Claims waiting for review"),
            "admin:loyalty_salesclaim_changelist",
            {"status__exact": ClaimStatus.SUBMITTED},
            SalesClaim.objects.filter(status=ClaimStatus.SUBMITTED),
        ),
        Queue(
            "claims_flagged",
            _("of them flagged"),
            "admin:loyalty_salesclaim_changelist",
            {"status__exact": ClaimStatus.SUBMITTED, "flags__len__gt": "0"},
            SalesClaim.objects.filter(status=ClaimStatus.SUBMITTED, flags__len__gt=0),
        ),
        Queue(
            "orders_to_approve",
            _("Reward orders waiting for approval"),
            "admin:rewards_redemptionorder_changelist",
            {"status__exact": OrderStatus.PLACED},
            RedemptionOrder.objects.filter(status=OrderStatus.PLACED),
        ),
        Queue(
            "orders_to_fulfil",
            _("Reward orders to fulfil"),
            "admin:rewards_redemptionorder_changelist",
            {"fulfilment": "to_fulfil"},
            RedemptionOrder.objects.filter(Exists(ships), status=OrderStatus.APPROVED),
        ),
        Queue(
            "adjustments",
            _("Adjustments waiting for a second program manager"),
            "admin:loyalty_pointsadjustment_changelist",
            {"status__exact": AdjustmentStatus.PENDING_APPROVAL},
            PointsAdjustment.objects.filter(status=AdjustmentStatus.PENDING_APPROVAL),
        ),
        Queue(
            "imports_failed",
            _("Sales imports that failed"),
            "admin:loyalty_salesimport_changelist",
            {"status__exact": ImportStatus.FAILED},
            SalesImport.objects.filter(status=ImportStatus.FAILED),
        ),
        Queue(
            "imports_partly_failed",
            _("Sales imports with rows refused"),
            "admin:loyalty_salesimport_changelist",
            {"status__exact": ImportStatus.DONE, "error_rows__gt": "0"},
            SalesImport.objects.filter(status=ImportStatus.DONE, error_rows__gt=0),
            urgent=False,
        ),
        Queue(
            "comarketing_requested",
            _("Co-marketing requests to pre-approve"),
            "admin:loyalty_marketingrequest_changelist",
            {"status__exact": MdfStatus.REQUESTED},
            MarketingRequest.objects.filter(status=MdfStatus.REQUESTED),
        ),
        Queue(
            "comarketing_claimed",
            _("Co-marketing claims to reimburse"),
            "admin:loyalty_marketingrequest_changelist",
            {"status__exact": MdfStatus.CLAIMED},
            MarketingRequest.objects.filter(status=MdfStatus.CLAIMED),
        ),
        Queue(
            "referrals",
            _("Referrals to qualify"),
            "admin:loyalty_referral_changelist",
            {"status__exact": ReferralStatus.SUBMITTED},
            Referral.objects.filter(status=ReferralStatus.SUBMITTED),
        ),
        Queue(
            "returns",
            _("Equipment returns to confirm"),
            "admin:loyalty_equipmentreturn_changelist",
            {"status__exact": ReturnStatus.REGISTERED},
            EquipmentReturn.objects.filter(status=ReturnStatus.REGISTERED),
        ),
    ]


def count_each(querysets: list[QuerySet]) -> list[int]:
    """How many rows each queryset has, in one query (a scalar subquery per queryset)."""
    parts, params = [], []
    for queryset in querysets:
        sql, part_params = queryset.order_by().values("pk").query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS q{len(parts)})")
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        return list(cursor.fetchone())


def work_waiting() -> list[Waiting]:
    """The work waiting in every program, with links to the filtered admin lists. One query."""
    found = queues()
    counts = count_each([queue.rows for queue in found])
    return [
        Waiting(queue.key, queue.label, queue.url, count, queue.urgent and count > 0)
        for queue, count in zip(found, counts, strict=True)
    ]


# The choice of program and period ------------------------------------------------------------------------------


def default_period(today: date) -> tuple[date, date]:
    return kpis.month_start(today) - relativedelta(months=DEFAULT_MONTHS - 1), today


class PeriodForm(forms.Form):
    """The program and the period the dashboard shows (GET). The programs are given (read once per page)."""

    program = forms.TypedChoiceField(label=gettext_lazy("Program"), coerce=int, required=False, empty_value=None)
    start = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args, programs: list[Program], today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["program"].choices = [(program.pk, program.name) for program in programs]

    def clean(self):
        data = super().clean()
        default_start, default_end = default_period(self.today)
        start, end = data.get("start") or default_start, data.get("end") or default_end
        if "start" in self.errors or "end" in self.errors:
            return data
        try:
            check_range(first=start, last=end, today=self.today)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        data["start"], data["end"] = start, end
        return data


# The dashboard -------------------------------------------------------------------------------------------------


@dataclass
class Dashboard:
    waiting: list[Waiting]
    programs: list[Program]
    form: PeriodForm
    program: Program | None = None
    start: date | None = None
    end: date | None = None
    figures: dict = field(default_factory=dict)
    charts: dict[str, Chart] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    computed_at: datetime | None = None  # when the figures were computed (they are cached until the roll-ups change)


def _month(month: date) -> str:
    return date_format(month, "M Y")


def build(query: dict, *, user=None, today: date | None = None) -> Dashboard:
    """The dashboard for the query string `query` (program, start, end; bad values are reported on the form and
    the defaults shown: the first active program, this month and the eleven before)."""
    today = today or timezone.localdate()
    programs = list(Program.objects.order_by("-is_active", "name"))
    form = PeriodForm(query or None, programs=programs, today=today)
    start, end = default_period(today)
    chosen = None
    if form.is_bound and form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        chosen = form.cleaned_data.get("program")
    elif not form.is_bound:
        form = PeriodForm(
            initial={"start": start, "end": end, "program": programs[0].pk if programs else None},
            programs=programs,
            today=today,
        )
    program = next((p for p in programs if p.pk == chosen), programs[0] if programs else None)
    dashboard = Dashboard(waiting=work_waiting(), programs=programs, form=form, program=program, start=start, end=end)
    if program is not None:  # the work waiting is counted live; the figures are the roll-ups' (figures_cache)
        figures, dashboard.computed_at = figures_cache.cached(
            "admin", (program.pk, start, end, today, getattr(user, "pk", None)),
            lambda: _figures(program, start, end, today, user),
        )  # fmt: skip
        dashboard.figures = figures
        dashboard.charts = _charts(figures, program)
        dashboard.links = _links(program, start, end)
    return dashboard


def _figures(program: Program, start: date, end: date, today: date, user) -> dict:
    figures = {
        "funnel": kpis.activation_funnel(program=program, start=start, end=end),
        "active": kpis.active_members(program=program, today=today),
        "flow": kpis.points_flow(program=program, start=start, end=end),
        "points_months": kpis.points_by_month(program=program, start=start, end=end),
        "liability": kpis.liability(program=program, today=today),
        "sales_months": kpis.sales_by_month(program=program, start=start, end=end),
        "sales_lines": kpis.sales_by_product_line(program=program, start=start, end=end),
        "sales_partners": kpis.sales_by_partner(program=program, start=start, end=end, limit=TOP_PARTNERS),
        "tiers": kpis.tier_distribution(program=program),
        "moves": kpis.tier_moves(program=program, start=start, end=end),
        "claims": kpis.claim_turnaround(program=program, start=start, end=end),
        "messages": kpis.campaign_messages(start=start, end=end),
        "campaigns": kpis.recent_campaigns(program=program, start=start, end=end, limit=RECENT_CAMPAIGNS),
        "roi": roi.incentive_roi(program=program, start=start, end=end),
    }
    sales_months = figures["sales_months"]
    figures["sales_total"] = kpis.SalesRow(
        0,
        _("All sales through the program"),
        sum((row.amount for row in sales_months), kpis.ZERO),
        sum((row.last_year for row in sales_months), kpis.ZERO),
    )
    if user is not None:  # the weakest partners first, with why (analytics.health)
        figures["at_risk"] = health.at_risk_partners(program=program, viewer=user, today=today, limit=AT_RISK_SHOWN)
    return figures


def _charts(figures: dict, program: Program) -> dict[str, Chart]:
    month_heading = _("Month")
    points_months = figures["points_months"]
    sales_months = figures["sales_months"]
    forecast = figures["liability"].forecast
    funnel = figures["funnel"].total
    claims = figures["claims"].months
    return {
        "points": Chart(
            "chart-points",
            _("Points by month"),
            [_month(row.month) for row in points_months],
            [
                Series(_("Issued (less taken back)"), [row.net_issued for row in points_months]),
                Series(_("Redeemed"), [row.redeemed for row in points_months]),
                Series(_("Expired"), [row.expired for row in points_months]),
            ],
            label_heading=month_heading,
        ),
        "sales": Chart(
            "chart-sales",
            _("Sales through the program by month, against the same months last year"),
            [_month(row.key) for row in sales_months],
            [
                Series(_("This period"), [row.amount for row in sales_months]),
                Series(_("A year before"), [row.last_year for row in sales_months]),
            ],
            currency=program.money_currency,
            label_heading=month_heading,
        ),
        "forecast": Chart(
            "chart-expiry",
            _("Points expiring in the next 12 months unless spent"),
            [_month(row.month) for row in forecast],
            [Series(_("Points"), [row.points for row in forecast])],
            label_heading=month_heading,
        ),
        "funnel": Chart(
            "chart-funnel",
            _("Activation in the period"),
            [_("Invited"), _("Joined"), _("First points"), _("First redemption")],
            [Series(_("People"), [funnel.invited, funnel.joined, funnel.first_earn, funnel.first_redemption])],
            label_heading=_("Step"),
        ),
        "tiers": Chart(
            "chart-tiers",
            _("Partners by tier"),
            [row.name for row in figures["tiers"]],
            [Series(_("Partners"), [row.partners for row in figures["tiers"]])],
            label_heading=_("Tier"),
        ),
        "claims": Chart(
            "chart-claims",
            _("Claims by month"),
            [_month(row.month) for row in claims],
            [
                Series(_("Submitted"), [row.submitted for row in claims]),
                Series(_("Approved"), [row.approved for row in claims]),
                Series(_("Rejected"), [row.rejected for row in claims]),
            ],
            label_heading=month_heading,
        ),
    }


def _links(program: Program, start: date, end: date) -> dict[str, str]:
    """Admin lists behind some of the figures, filtered to the program and period."""
    changes = reverse("admin:loyalty_tierchange_changelist")
    period = {
        "program__id__exact": program.pk,
        "created_at__gte": str(kpis.day_start(start)),
        "created_at__lt": str(kpis.day_start(end + relativedelta(days=1))),
    }
    return {
        **{f"moves_{move}": f"{changes}?{urlencode({**period, 'move': move})}" for move in ("first", "up", "down")},
        "tiers": f"{reverse('admin:loyalty_partnertier_changelist')}?{urlencode({'program__id__exact': program.pk})}",
        "campaigns": reverse("admin:communications_campaign_changelist"),
    }
