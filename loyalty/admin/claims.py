"""The back office's queue of sales claims.

Claims waiting for review come first, oldest first; the columns that decide the work (flags, status, total) come
first and the list fits a 1280 px screen. A claim is never edited here: program managers approve claims (in bulk;
each refusal is reported and the others go ahead) or reject them with a reason code and a text the member sees,
through loyalty.services.claims, from the list or from a claim's page. A flagged claim is approved only on its
approval page, which lists its flags with what raised them and asks why it is approved anyway; the bulk action
skips flagged claims and links to those pages. The invoice file is served through the same private-file check as
on the member site. Registered by loyalty/admin/__init__.py; query counts are pinned in
tests/loyalty/test_claims_admin.py and tests/loyalty/test_claim_plausibility.py.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Case, CharField, IntegerField, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Cast, Coalesce, Concat
from django.forms.models import BaseInlineFormSet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from loyalty.common.admin import (
    NAMES_IN_MESSAGE,
    DetailJoinsMixin,
    EventHistoryInline,
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    admin_page,
    answers,
    ask,
    back_to_object,
    is_program_manager,
    object_url,
    related_field,
    run_for_each,
    with_name,
)
from loyalty.common.errors import ApplicationError
from loyalty.common.formatting import format_money
from loyalty.common.storage import private_file_response
from loyalty.constants import ClaimFlag, ClaimStatus, EntrySource, RejectionReason
from loyalty.models import ClaimEvent, ClaimLine, PointsEntry, SalesClaim
from loyalty.selectors.one_sale import claim_paid_notes
from loyalty.services.claim_checks import flag_explanations
from loyalty.services.claims import APPROVAL_REASON_MAX, claim_approve, claim_reject

PAID_NOTE = "loyalty/claims/_paid_note.html"  # the member's claim page says the same
WAITING_FIRST = Case(When(status=ClaimStatus.SUBMITTED, then=Value(0)), default=Value(1), output_field=IntegerField())


def claim_name(claim: SalesClaim) -> str:
    return f"Claim {claim.pk}"


def describe_claim(claim: SalesClaim) -> str:
    return (
        f"Claim {claim.pk} — {claim.member.user.email} ({claim.partner.name}), invoice {claim.invoice_number}, "
        f"{format_money(claim.total_amount, claim.program.money_currency)}, {claim.get_status_display().lower()}"
    )


# The flags' names in the queue, short so that the list fits a 1280 px screen; the full name is the badge's title.
SHORT_FLAG_NAMES = {
    ClaimFlag.UNKNOWN_PRODUCT: gettext_lazy("Unknown product"),
    ClaimFlag.OUTSIDE_WINDOW: gettext_lazy("Late claim"),
    ClaimFlag.DUPLICATE_OTHER_PARTNER: gettext_lazy("Duplicate?"),
    ClaimFlag.UNUSUAL_QUANTITY: gettext_lazy("Unusual quantity"),
}


def flag_badges(flags: list[str], *, short: bool = False) -> str:
    if not flags:
        return "—"
    return format_html_join(
        " ",
        '<span class="claim-flag claim-flag-{}" title="{}">{}</span>',
        ((flag, ClaimFlag(flag).label, SHORT_FLAG_NAMES[flag] if short else ClaimFlag(flag).label) for flag in flags),
    )


def _holder(account) -> str:
    return account.member.user.email if account.member_id else f"{account.partner.name} (company account)"


class FlagFilter(admin.SimpleListFilter):
    title = "flag"
    parameter_name = "flag"
    NONE = "none"

    def lookups(self, request, model_admin):
        return [(self.NONE, "No flags"), *ClaimFlag.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.NONE:
            return queryset.filter(flags=[])
        if value in ClaimFlag.values:
            return queryset.filter(flags__contains=[value])
        return queryset


class ClaimRejectForm(forms.Form):
    """The reason asked on the "Reject" action's page: a code and a text, both shown to the member."""

    reason = forms.ChoiceField(label="Reason", choices=[("", "---------"), *RejectionReason.choices])
    text = forms.CharField(
        label="Text for the member",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="What is wrong and how to correct it. Required for “Other”. The member sees it.",
    )

    def clean(self):
        data = super().clean()
        if data.get("reason") == RejectionReason.OTHER and not (data.get("text") or "").strip():
            self.add_error("text", "Say what is wrong: the reason “Other” needs a text.")
        return data


class ClaimApproveForm(forms.Form):
    """Why a flagged claim is approved anyway, asked on its approval page; kept in the claim's history."""

    reason = forms.CharField(
        label=gettext_lazy("Why approve it anyway?"),
        max_length=APPROVAL_REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=gettext_lazy(
            "What you checked about each flag (e.g. the distributor confirmed the quantity). Kept in the claim's "
            "history; the member does not see it."
        ),
    )


def approve_url(claim: SalesClaim) -> str:
    return reverse("admin:loyalty_salesclaim_approve", args=[claim.pk])


class AllRowsInlineFormSet(BaseInlineFormSet):
    """A claim has at most 50 lines: show them all."""


class ClaimLineInline(ReadOnlyInline):
    model = ClaimLine
    formset = AllRowsInlineFormSet
    verbose_name_plural = "Lines"
    fields = ("product", "quantity", "amount_shown", "points")
    ordering = ("id",)

    def get_queryset(self, request):
        # ClaimLine.source_key in SQL: the source id of the entries the line posted.
        key = Concat(
            Value("claim:"),
            Cast("claim_id", CharField()),
            Value(":"),
            Cast("id", CharField()),
            output_field=CharField(),
        )
        posted = (
            PointsEntry.objects.filter(source_type=EntrySource.CLAIM, source_id=OuterRef("entry_key"))
            .order_by()
            .values("source_id")
            .annotate(total=Sum("available_delta") + Sum("pending_delta"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .select_related("product", "claim__program")
            .annotate(entry_key=key)
            .annotate(points_posted=Coalesce(Subquery(posted, output_field=IntegerField()), Value(0)))
        )

    @admin.display(description=gettext_lazy("Amount"))
    def amount_shown(self, obj):
        return format_money(obj.amount, obj.claim.program.money_currency)

    @admin.display(description="Points posted")
    def points(self, obj):
        return f"{obj.points_posted:,}" if obj.points_posted else "—"


class ClaimEventInline(EventHistoryInline):
    model = ClaimEvent


@admin.register(SalesClaim)
class SalesClaimAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    # Members claim sales on the member site; claims move only through the actions, which record who did what
    # and when.

    # What decides the work first; the member, the invoice and the submissions are on the claim's page (and the
    # search finds invoice numbers and e-mails), so that the queue fits a 1280 px screen beside the filters.
    list_display = ("claim", "flags_shown", "status", "total", "partner_name")
    list_display_links = ("claim",)
    list_filter = (
        "status",
        FlagFilter,
        "program",
        "partner__kind",
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("partner", "program")
    detail_select_related = (
        "program",
        "member__user",
        "member__role",
        "partner",
        "decided_by",
        "matched_line__source",
    )
    search_fields = ("invoice_number", "member__user__email", "partner__name", "partner__legal_id")
    search_help_text = "Search by invoice number, member e-mail, partner name or legal id."
    ordering = (WAITING_FIRST.asc(), "created_at", "id")  # the queue: waiting claims, oldest first
    show_full_result_count = False
    actions = ("approve", "reject")
    fieldsets = (
        (None, {"fields": ("program", "member_link", "partner_link", "status", "flag_list", "submissions")}),
        ("Invoice", {"fields": ("invoice_number", "invoice_date", "total", "document_link", "colleague_list")}),
        ("Decision", {"fields": ("rejection_reason", "rejection_text", "decided_by", "decided_at", "matched_line")}),
        ("Points", {"fields": ("postings", "paid_once")}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = (
        "member_link",
        "partner_link",
        "flag_list",
        "total",
        "document_link",
        "colleague_list",
        "postings",
        "paid_once",
    )
    inlines = (ClaimLineInline, ClaimEventInline)

    def has_decide_permission(self, request):
        return is_program_manager(request.user)

    # Columns and fields ------------------------------------------------------------------------------

    @admin.display(description=gettext_lazy("Claim"), ordering="created_at")
    def claim(self, obj):
        # The number and, under it, the day it was submitted: one column less, so that the queue fits 1280 px.
        submitted = date_format(timezone.localtime(obj.created_at), "SHORT_DATE_FORMAT")
        return format_html("{}<br><small>{}</small>", obj.pk, submitted)

    partner_name = related_field("partner.name", "Partner")

    @admin.display(description="Total", ordering="total_amount")
    def total(self, obj):
        return format_money(obj.total_amount, obj.program.money_currency)

    @admin.display(description="Flags")
    def flag_list(self, obj):
        return flag_badges(obj.flags)

    @admin.display(description=gettext_lazy("Flags"))
    def flags_shown(self, obj):
        return flag_badges(obj.flags, short=True)

    @admin.display(description="Member")
    def member_link(self, obj):
        url = reverse("admin:partners_member_change", args=[obj.member_id])
        user = obj.member.user
        return format_html('<a href="{}">{}</a> ({}), {}', url, user.get_full_name(), user.email, obj.member.role.name)

    @admin.display(description="Partner")
    def partner_link(self, obj):
        url = reverse("admin:partners_partner_change", args=[obj.partner_id])
        return format_html('<a href="{}">{}</a> ({})', url, obj.partner.name, obj.partner.get_kind_display())

    @admin.display(description="Invoice file")
    def document_link(self, obj):
        if not obj.document:
            return "—"
        url = reverse("admin:loyalty_salesclaim_document", args=[obj.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">View the invoice</a>', url)

    @admin.display(description="Colleagues")
    def colleague_list(self, obj):
        colleagues = obj.colleagues.select_related("user", "role").order_by("user__full_name")
        return format_html_join(", ", "{} ({})", ((c.user.get_full_name(), c.role.name) for c in colleagues)) or "None"

    @admin.display(description="Points posted")
    def postings(self, obj):
        keys = [line.source_key for line in obj.lines.all()]
        entries = (
            PointsEntry.objects.filter(source_type=EntrySource.CLAIM, source_id__in=keys)
            .select_related("account__member__user", "account__partner")
            .order_by("pk")
        )
        rows = [(f"{entry.points:+,}", _holder(entry.account), entry.explanation) for entry in entries]
        if not rows:
            return "None yet: points post when the claim is approved."
        return format_html_join("", "<div>{} to {}: {}</div>", rows)

    @admin.display(description=gettext_lazy("Paid for less"))
    def paid_once(self, obj):
        """The lines that paid for less than their quantity, and why (one sale pays once), as on the claim page."""
        notes = claim_paid_notes(obj)
        if not notes:
            return "—"
        lines = obj.lines.select_related("product").filter(pk__in=notes).order_by("pk")
        return format_html_join(
            "",
            "<div>{} × {}: {}</div>",
            (
                (
                    number_format(line.quantity.normalize()),
                    line.product.sku,
                    render_to_string(PAID_NOTE, {"note": notes[line.pk]}),
                )
                for line in lines
            ),
        )

    # The invoice file --------------------------------------------------------------------------------

    def get_urls(self):
        document = object_url(
            self,
            "invoice/",
            self.document_view,
            name="loyalty_salesclaim_document",
            allowed=self.has_view_permission,
            hide_missing=True,
        )
        approve = object_url(
            self,
            "approve/",
            self.approve_view,
            name="loyalty_salesclaim_approve",
            allowed=lambda request, claim: self.has_decide_permission(request),
            methods=("GET", "POST"),
        )
        return [document, approve, *super().get_urls()]

    def document_view(self, request, claim):
        return private_file_response(claim.document, download_name=f"claim-{claim.pk}-invoice")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_decide"] = (
            obj is not None and obj.status == ClaimStatus.SUBMITTED and self.has_decide_permission(request)
        )
        if context["can_decide"] and obj.flags:
            context["approve_url"] = approve_url(obj)  # a flagged claim is approved on the page asking why
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    # Actions -----------------------------------------------------------------------------------------

    def _for_each(self, request, claims, operation, *, done: str) -> None:
        run_for_each(self, request, claims, with_name(operation, claim_name), done=done, noun="claim", name=claim_name)

    def _selected(self, queryset) -> list[SalesClaim]:
        return list(queryset.select_related("member__user", "partner", "program").order_by("pk"))

    @admin.action(description="Approve selected claims (points post)", permissions=["decide"])
    def approve(self, request, queryset):
        """Approve the claims without flags; a flagged one needs a reason, asked on its own approval page."""
        claims = self._selected(queryset)
        flagged = [claim for claim in claims if claim.flags and claim.status == ClaimStatus.SUBMITTED]
        if flagged:
            self._say_flagged(request, flagged)
        self._for_each(
            request,
            [claim for claim in claims if claim not in flagged],
            lambda claim: claim_approve(claim=claim, actor=request.user),
            done="Approved (points posted)",
        )

    def _say_flagged(self, request, flagged: list[SalesClaim]) -> None:
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((approve_url(claim), claim_name(claim)) for claim in flagged[:NAMES_IN_MESSAGE]),
        )
        if len(flagged) > NAMES_IN_MESSAGE:
            links = format_html(_("{claims} and {count} more"), claims=links, count=len(flagged) - NAMES_IN_MESSAGE)
        message = ngettext(
            "Not approved: {claims} has flags; approve it on its own page, with a reason.",
            "Not approved: {claims} have flags; approve each on its own page, with a reason.",
            len(flagged),
        )
        self.message_user(request, format_html(message, claims=links), level=messages.WARNING)

    def approve_view(self, request, claim):
        """A claim's approval page: its flags with what raised them, and why it is approved anyway."""
        form = ClaimApproveForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            try:
                claim_approve(claim=claim, actor=request.user, reason=form.cleaned_data["reason"])
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                return back_to_object(
                    self, request, claim, _("Claim %(claim)s approved (points posted).") % {"claim": claim.pk}
                )
        return admin_page(
            self,
            request,
            "admin/loyalty/salesclaim/approve.html",
            title=_("Approve claim %(claim)s") % {"claim": claim.pk},
            form=form,
            fields=["reason"],
            original=claim,
            summary=describe_claim(claim),
            flags=flag_explanations(claim),
        )

    @admin.action(description="Reject selected claims (asks for a reason)", permissions=["decide"])
    def reject(self, request, queryset):
        claims = self._selected(queryset)

        def apply(data) -> None:
            self._for_each(
                request,
                claims,
                lambda claim: claim_reject(claim=claim, actor=request.user, reason=data["reason"], text=data["text"]),
                done="Rejected",
            )

        return ask(
            self,
            request,
            claims,
            form=ClaimRejectForm(answers(request)),
            apply=apply,
            title="Reject claims",
            intro="The member sees the reason and the text, and can correct and resubmit the claim while its claim "
            "window is open. No points are posted.",
            button="Reject",
            describe=describe_claim,
            fields=["reason", "text"],
        )
