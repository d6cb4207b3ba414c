"""The back office's queue of referrals.

Referrals waiting for a decision come first (submitted, then qualified), oldest first; a duplicate shows the
referral of the same prospect it repeats (its original) and the list filters duplicates. A referral is never edited
here: program managers qualify it, convert it (with the deal amount, if known: the referrer is paid by the program's
"referral converted" rules) or reject it with a reason the referrer reads, through
loyalty.services.referrals.referral_transition, from the list (each refusal is reported and the others go ahead).
A referral's page lists every referral of the same prospect, the points its conversion posted and its history.
Registered by loyalty/admin/__init__.py; query counts are pinned in tests/loyalty/test_referrals_admin.py.
"""

from django import forms
from django.contrib import admin
from django.db.models import Case, IntegerField, Q, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy

from loyalty.common.admin import (
    DetailJoinsMixin,
    EventHistoryInline,
    ReadOnlyModelAdmin,
    answers,
    ask,
    ask_reason,
    is_program_manager,
    related_field,
    run_for_each,
    with_name,
)
from loyalty.common.formatting import format_money
from loyalty.common.forms import LocalizedDecimalField
from loyalty.constants import EntrySource, ReferralStatus
from loyalty.models import PointsEntry, Referral, ReferralEvent
from loyalty.services.referrals import DEAL_AMOUNT_MAX, referral_source_key, referral_transition

WAITING_FIRST = Case(
    When(status=ReferralStatus.SUBMITTED, then=Value(0)),
    When(status=ReferralStatus.QUALIFIED, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def referral_name(referral: Referral) -> str:
    return f"Referral {referral.pk}"


def describe_referral(referral: Referral) -> str:
    return (
        f"Referral {referral.pk} — {referral.company_name} ({referral.contact_email}), referred by "
        f"{referral.member.user.email} ({referral.partner.name}), {referral.get_status_display().lower()}"
    )


def _change_url(pk: int) -> str:
    return reverse("admin:loyalty_referral_change", args=[pk])


class DuplicateFilter(admin.SimpleListFilter):
    title = "duplicate"
    parameter_name = "duplicate"

    def lookups(self, request, model_admin):
        return [("yes", "Duplicates (referred before)"), ("no", "First referrals")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(duplicate_of__isnull=False)
        if self.value() == "no":
            return queryset.filter(duplicate_of__isnull=True)
        return queryset


class ConvertForm(forms.Form):
    """Asked on the "Convert" action's page: the deal the prospect signed, if known."""

    deal_amount = LocalizedDecimalField(
        label="Deal amount",
        required=False,
        min_value=0,
        max_value=DEAL_AMOUNT_MAX,
        decimal_places=2,
        help_text="Optional: what the new customer's first deal is worth. Kept with the referral; the points are "
        "what the program's “referral converted” rules pay.",
    )


class ReferralEventInline(EventHistoryInline):
    model = ReferralEvent


@admin.register(Referral)
class ReferralAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    # Members refer companies on the member site; referrals move only through the actions, which record who did
    # what and when.
    list_display = ("referral", "company_name", "status", "duplicate_shown", "partner_name", "referrer")
    list_display_links = ("referral",)
    list_filter = ("status", DuplicateFilter, "program", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("partner", "member__user")
    detail_select_related = (
        "program",
        "partner",
        "member__user",
        "member__role",
        "duplicate_of__partner",
        "existing_partner",
        "decided_by",
    )
    search_fields = ("company_name", "company_id", "contact_email", "member__user__email", "partner__name")
    search_help_text = "Search by company, its registration or VAT number, contact e-mail, referrer or partner."
    ordering = (WAITING_FIRST.asc(), "created_at", "id")
    show_full_result_count = False
    actions = ("qualify", "convert", "reject")
    fieldsets = (
        (None, {"fields": ("program", "member_link", "partner", "status")}),
        (
            "Prospect",
            {"fields": ("company_name", "company_id", "contact_name", "contact_email", "contact_phone", "need")},
        ),
        ("Same prospect", {"fields": ("original", "same_prospect")}),
        ("Decision", {"fields": ("reason", "deal", "existing_partner", "decided_by", "decided_at")}),
        ("Points", {"fields": ("postings",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("member_link", "original", "same_prospect", "deal", "postings")
    inlines = (ReferralEventInline,)

    def has_decide_permission(self, request):
        return is_program_manager(request.user)

    # Columns and fields ------------------------------------------------------------------------------

    @admin.display(description=gettext_lazy("Referral"), ordering="created_at")
    def referral(self, obj):
        referred = date_format(timezone.localtime(obj.created_at), "SHORT_DATE_FORMAT")
        return format_html("{}<br><small>{}</small>", obj.pk, referred)

    partner_name = related_field("partner.name", "Partner")
    referrer = related_field("member.user.email", "Referred by")

    @admin.display(description="Duplicate of")
    def duplicate_shown(self, obj):
        if obj.duplicate_of_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', _change_url(obj.duplicate_of_id), f"Referral {obj.duplicate_of_id}")

    @admin.display(description="Referred by")
    def member_link(self, obj):
        url = reverse("admin:partners_member_change", args=[obj.member_id])
        user = obj.member.user
        return format_html('<a href="{}">{}</a> ({}), {}', url, user.get_full_name(), user.email, obj.member.role.name)

    @admin.display(description="Original referral")
    def original(self, obj):
        first = obj.duplicate_of
        if first is None:
            return "— (this is the first referral of the prospect)"
        referred = date_format(timezone.localtime(first.created_at), "SHORT_DATE_FORMAT")
        return format_html(
            '<a href="{}">Referral {}</a>: {} by {}, {}, {}',
            _change_url(first.pk),
            first.pk,
            first.company_name,
            first.partner.name,
            referred,
            first.get_status_display().lower(),
        )

    @admin.display(description="Every referral of the prospect")
    def same_prospect(self, obj):
        same = Q(email_key=obj.email_key) if obj.email_key else Q(pk__in=[])
        if obj.company_key:
            same |= Q(company_key=obj.company_key)
        others = (
            Referral.objects.filter(same, program_id=obj.program_id)
            .exclude(pk=obj.pk)
            .select_related("partner")
            .order_by("created_at", "pk")
        )
        rows = [
            (
                _change_url(other.pk),
                other.pk,
                other.partner.name,
                date_format(timezone.localtime(other.created_at), "SHORT_DATE_FORMAT"),
                other.get_status_display().lower(),
            )
            for other in others
        ]
        if not rows:
            return "None other"
        return format_html_join("", '<div><a href="{}">Referral {}</a> by {}, {}, {}</div>', rows)

    @admin.display(description="Deal amount")
    def deal(self, obj):
        return "—" if obj.deal_amount is None else format_money(obj.deal_amount, obj.program.money_currency)

    @admin.display(description="Points posted")
    def postings(self, obj):
        entries = (
            PointsEntry.objects.filter(source_type=EntrySource.REFERRAL, source_id=referral_source_key(obj))
            .select_related("account__member__user", "account__partner")
            .order_by("pk")
        )
        rows = [
            (
                f"{entry.points:+,}",
                entry.account.member.user.email
                if entry.account.member_id
                else f"{entry.account.partner.name} (company account)",
                entry.explanation,
            )
            for entry in entries
        ]
        if not rows:
            return "None: points post when the referral is converted, if a rule pays for it."
        return format_html_join("", "<div>{} to {}: {}</div>", rows)

    # Actions -----------------------------------------------------------------------------------------

    def _selected(self, queryset) -> list[Referral]:
        return list(queryset.select_related("member__user", "partner", "program").order_by("pk"))

    def _for_each(self, request, referrals, operation, *, done: str) -> None:
        run_for_each(
            self,
            request,
            referrals,
            with_name(operation, referral_name),
            done=done,
            noun="referral",
            name=referral_name,
        )

    @admin.action(description="Qualify selected referrals", permissions=["decide"])
    def qualify(self, request, queryset):
        self._for_each(
            request,
            self._selected(queryset),
            lambda referral: referral_transition(referral=referral, to=ReferralStatus.QUALIFIED, actor=request.user),
            done="Qualified",
        )

    @admin.action(description="Convert selected referrals (the referrer is paid)", permissions=["decide"])
    def convert(self, request, queryset):
        referrals = self._selected(queryset)

        def apply(data) -> None:
            self._for_each(
                request,
                referrals,
                lambda referral: referral_transition(
                    referral=referral, to=ReferralStatus.CONVERTED, actor=request.user, deal_amount=data["deal_amount"]
                ),
                done="Converted",
            )

        return ask(
            self,
            request,
            referrals,
            form=ConvertForm(answers(request)),
            apply=apply,
            title="Convert referrals",
            intro="The prospect became a customer. The referrer is paid by the program's “referral converted” rules "
            "and is told. A prospect converts once: a referral of a prospect converted through another is refused.",
            button="Convert",
            describe=describe_referral,
            fields=["deal_amount"],
        )

    @admin.action(description="Reject selected referrals (asks for a reason)", permissions=["decide"])
    def reject(self, request, queryset):
        referrals = self._selected(queryset)

        def apply(reason: str) -> None:
            self._for_each(
                request,
                referrals,
                lambda referral: referral_transition(
                    referral=referral, to=ReferralStatus.REJECTED, actor=request.user, reason=reason
                ),
                done="Rejected",
            )

        return ask_reason(
            self,
            request,
            referrals,
            apply=apply,
            reason_help="Why the referral is not taken up (e.g. “already a customer of our distributor”). The "
            "referrer reads it.",
            title="Reject referrals",
            intro="The referrer is told, with the reason. Nothing is paid.",
            button="Reject",
            describe=describe_referral,
        )
