"""The back office of co-marketing funds (MDF): the funds (set by hand, or for every partner at once by tier or by a
share of last period's sales) and the queue of requests, decided through loyalty.services.comarketing.

Requests are never edited here: the actions pre-approve (asks the amount: never more than what is left in the fund),
decline (asks why), reimburse (the formula of the program; paid as points through the rules or recorded as a credit
note, per the program's "co-marketing paid as"), or reject a claim (asks why; the partner may claim again). Paying in
points needs a published rule for the event "co-marketing claim approved": its quantity is the money reimbursed
(unit "money"), so "points per unit" of 1 gives one point per unit of money. Proof files are served through the same
private-file check as on the member site. Query counts are pinned in tests/loyalty/test_comarketing_admin.py."""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import DecimalField, ExpressionWrapper, F
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from loyalty.common.admin import (
    DetailJoinsMixin,
    EventHistoryInline,
    ProgramManagerAdmin,
    ReadOnlyModelAdmin,
    SavedByServices,
    admin_page,
    adopt,
    answers,
    ask,
    ask_reason,
    is_program_manager,
    related_field,
    run_for_each,
    with_name,
)
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import format_money
from loyalty.common.forms import LocalizedDecimalField
from loyalty.common.storage import private_file_response
from loyalty.models import MarketingFund, MarketingProof, MarketingRequest, MarketingRequestEvent, Program
from loyalty.services.comarketing import (
    Period,
    fund_set,
    funds_by_sales_share,
    funds_by_tier,
    request_decline,
    request_pre_approve,
    request_reimburse,
    request_reject_claim,
)

LEFT = ExpressionWrapper(F("amount") - F("committed") - F("reimbursed"), output_field=DecimalField())


def _money(obj_amount, program) -> str:
    return format_money(obj_amount, program.money_currency) if obj_amount is not None else "—"


class FundForm(forms.ModelForm):
    class Meta:
        model = MarketingFund
        fields = ("program", "partner", "period_start", "period_end", "amount", "note")

    def clean(self):
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and end < start:
            self.add_error("period_end", "The period ends before it starts.")
        return data


class FundsForPeriodForm(forms.Form):
    METHODS = [("tier", "By tier (each tier's co-marketing fund)"), ("sales_share", "By share of last period's sales")]

    program = forms.ModelChoiceField(queryset=Program.objects.filter(is_active=True))
    period_start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(label="Until (included)", widget=forms.DateInput(attrs={"type": "date"}))
    method = forms.ChoiceField(choices=METHODS, widget=forms.RadioSelect)

    def clean(self):
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and end < start:
            self.add_error("period_end", "The period ends before it starts.")
        return data


@admin.register(MarketingFund)
class MarketingFundAdmin(SavedByServices, DetailJoinsMixin, ProgramManagerAdmin):
    form = FundForm
    list_display = ("partner_name", "period", "amount_shown", "committed_shown", "reimbursed_shown", "left", "source")
    list_filter = ("program", "source", "period_start")
    list_select_related = ("partner", "program")
    detail_select_related = ("partner", "program")
    search_fields = ("partner__name", "partner__legal_id")
    raw_id_fields = ("partner",)
    ordering = ("-period_start", "partner__name")
    readonly_fields = ("committed", "reimbursed", "source")

    partner_name = related_field("partner.name", "Partner")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("program", "partner", "period_start", *self.readonly_fields)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(left_amount=LEFT)

    @admin.display(description="Period", ordering="period_start")
    def period(self, obj):
        return f"{obj.period_start:%d %b %Y} – {obj.period_end:%d %b %Y}"

    @admin.display(description="Amount", ordering="amount")
    def amount_shown(self, obj):
        return _money(obj.amount, obj.program)

    @admin.display(description="Pre-approved")
    def committed_shown(self, obj):
        return _money(obj.committed, obj.program)

    @admin.display(description="Reimbursed")
    def reimbursed_shown(self, obj):
        return _money(obj.reimbursed, obj.program)

    @admin.display(description="Left", ordering="left_amount")
    def left(self, obj):
        return _money(obj.left_amount, obj.program)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = fund_set(
            program=obj.program,
            partner=obj.partner,
            period=Period(obj.period_start, data["period_end"]),
            amount=data["amount"],
            note=data.get("note", ""),
        )
        adopt(obj, saved)

    # Funds for every partner at once ---------------------------------------------------------------------

    def get_urls(self):
        page = path(
            "for-a-period/", self.admin_site.admin_view(self.funds_view), name="loyalty_marketingfund_for_period"
        )
        return [page, *super().get_urls()]

    def funds_view(self, request):
        """Give every partner its fund of a period, by tier or by a share of the previous period's sales."""
        if not is_program_manager(request.user):
            raise PermissionDenied
        form = FundsForPeriodForm(request.POST or None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            run = funds_by_tier if data["method"] == "tier" else funds_by_sales_share
            try:
                result = run(program=data["program"], period=Period(data["period_start"], data["period_end"]))
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, result.summary(), level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:loyalty_marketingfund_changelist"))
        return admin_page(
            self,
            request,
            "admin/loyalty/marketingfund/for_period.html",
            title="Co-marketing funds for a period",
            form=form,
            fields=["program", "period_start", "period_end", "method"],
            today=date.today(),
        )


class ProofInline(admin.TabularInline):
    model = MarketingProof
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("kind", "uploaded_at", "link")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return is_program_manager(request.user)

    @admin.display(description="File")
    def link(self, obj):
        url = reverse("admin:loyalty_marketingrequest_proof", args=[obj.request_id, obj.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">View</a>', url)


class MarketingRequestEventInline(EventHistoryInline):
    model = MarketingRequestEvent


class PreApproveForm(forms.Form):
    amount = LocalizedDecimalField(
        label=gettext_lazy("Amount to pre-approve"),
        min_value=0.01,
        max_digits=14,
        decimal_places=2,
        help_text="The most the program reimburses for each selected activity; held in the partner's fund until the "
        "claim is settled. Never more than what is left in the fund.",
    )


def request_name(obj: MarketingRequest) -> str:
    return f"Request {obj.pk}"


def describe_request(obj: MarketingRequest) -> str:
    program = obj.fund.program
    return (
        f"Request {obj.pk} — {obj.title} ({obj.partner.name}), planned {_money(obj.planned_cost, program)}, "
        f"{obj.get_status_display().lower()}"
    )


@admin.register(MarketingRequest)
class MarketingRequestAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = ("request", "title", "partner_name", "status", "planned", "approved", "reimbursed", "payout")
    list_filter = ("status", "fund__program", "payout")
    list_select_related = ("partner", "fund__program")
    detail_select_related = ("partner", "fund__program", "member__user", "decided_by")
    search_fields = ("title", "partner__name", "member__user__email")
    ordering = ("-created_at", "-id")
    actions = ("pre_approve", "decline", "reimburse", "reject_claim")
    fields = (
        "fund",
        "partner",
        "member",
        "title",
        "description",
        "planned_on",
        "planned_cost",
        "status",
        "approved_amount",
        "actual_cost",
        "other_brands",
        "reason",
        "payout",
        "reimbursed_amount",
        "reimbursed_points",
        "explanation",
        "decided_by",
    )
    inlines = (ProofInline, MarketingRequestEventInline)

    def has_decide_permission(self, request):
        return is_program_manager(request.user)

    @admin.display(description="Request", ordering="created_at")
    def request(self, obj):
        return obj.pk

    partner_name = related_field("partner.name", "Partner")

    @admin.display(description="Planned cost", ordering="planned_cost")
    def planned(self, obj):
        return _money(obj.planned_cost, obj.fund.program)

    @admin.display(description="Pre-approved", ordering="approved_amount")
    def approved(self, obj):
        return _money(obj.approved_amount, obj.fund.program)

    @admin.display(description="Reimbursed", ordering="reimbursed_amount")
    def reimbursed(self, obj):
        if obj.reimbursed_amount is None:
            return "—"
        text = _money(obj.reimbursed_amount, obj.fund.program)
        return f"{text} ({obj.reimbursed_points:,} pts)" if obj.reimbursed_points else text

    def get_urls(self):
        proof = path(
            "<path:object_id>/proof/<int:proof_id>/",
            self.admin_site.admin_view(self.proof_view),
            name="loyalty_marketingrequest_proof",
        )
        return [proof, *super().get_urls()]

    def proof_view(self, request, object_id, proof_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        proof = MarketingProof.objects.filter(request_id=object_id, pk=proof_id).first()
        if proof is None:
            raise PermissionDenied
        return private_file_response(proof.file, download_name=f"co-marketing-{proof.request_id}-{proof.kind}")

    # Actions ---------------------------------------------------------------------------------------------

    def _selected(self, queryset) -> list[MarketingRequest]:
        return list(queryset.select_related("partner", "fund__program").order_by("pk"))

    def _for_each(self, request, rows, operation, *, done: str) -> None:
        run_for_each(
            self, request, rows, with_name(operation, request_name), done=done, noun="request", name=request_name
        )

    @admin.action(description="Pre-approve selected requests (asks the amount)", permissions=["decide"])
    def pre_approve(self, request, queryset):
        rows = self._selected(queryset)

        def apply(data) -> None:
            self._for_each(
                request,
                rows,
                lambda row: request_pre_approve(request=row, actor=request.user, amount=data["amount"]),
                done="Pre-approved",
            )

        return ask(
            self,
            request,
            rows,
            form=PreApproveForm(answers(request)),
            apply=apply,
            title="Pre-approve co-marketing requests",
            intro="The amount is held in each partner's fund until the claim is settled; the partner is told.",
            button="Pre-approve",
            describe=describe_request,
            fields=["amount"],
        )

    @admin.action(description="Decline selected requests (asks why)", permissions=["decide"])
    def decline(self, request, queryset):
        rows = self._selected(queryset)
        return ask_reason(
            self,
            request,
            rows,
            apply=lambda reason: self._for_each(
                request,
                rows,
                lambda row: request_decline(request=row, actor=request.user, reason=reason),
                done="Declined",
            ),
            reason_help="The partner reads it.",
            title="Decline co-marketing requests",
            intro="Nothing is held in the fund; the partner is told why.",
            button="Decline",
            describe=describe_request,
        )

    @admin.action(description="Reimburse selected claims", permissions=["decide"])
    def reimburse(self, request, queryset):
        self._for_each(
            request,
            self._selected(queryset),
            lambda row: request_reimburse(request=row, actor=request.user),
            done="Reimbursed",
        )

    @admin.action(description="Reject selected claims (asks why)", permissions=["decide"])
    def reject_claim(self, request, queryset):
        rows = self._selected(queryset)
        return ask_reason(
            self,
            request,
            rows,
            apply=lambda reason: self._for_each(
                request,
                rows,
                lambda row: request_reject_claim(request=row, actor=request.user, reason=reason),
                done="Claim rejected",
            ),
            reason_help="The partner reads it and may claim again with more proof.",
            title="Reject co-marketing claims",
            intro="The pre-approved amount stays held; the partner may claim again or withdraw.",
            button="Reject",
            describe=describe_request,
        )
