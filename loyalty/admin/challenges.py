"""The back office for challenges: the challenge with its goals and prizes, the audience as boxes to tick, the
standings (top 20) on its page, and "Settle the results now" for ended ones.

A challenge whose goals could never be met is refused on save with form errors (services.challenges:
window_problems on the challenge, goal_problems on its goals, prize_problems on each prize), and publishing one that
offers completion points while no rule pays for "challenge completed" saves with a warning. Entries are written only
by services.challenges (events, the results); here they are read. Query counts are pinned in
tests/loyalty/test_challenges_admin.py.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Q
from django.forms.models import BaseInlineFormSet
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from loyalty.common.admin import (
    ProgramManagerAdmin,
    ReadOnlyModelAdmin,
    is_program_manager,
    list_link,
    run_for_each,
    with_name,
)
from loyalty.common.queries import count_of
from loyalty.constants import ChallengeLevel
from loyalty.models import Challenge, ChallengeEntry, ChallengeGoal, ChallengePrize, Tier
from loyalty.services.challenges import (
    GoalDraft,
    challenge_settle,
    challenge_status,
    goal_problems,
    prize_problems,
    publish_warnings,
    window_problems,
)
from partners.constants import PartnerKind

STANDINGS_SHOWN = 20
STATUS_LABELS = {
    "draft": _("Draft"),
    "upcoming": _("Upcoming"),
    "running": _("Running"),
    "ended": _("Ended: results to settle"),
    "settled": _("Results settled"),
}


# Forms ----------------------------------------------------------------------------------------------------------


class ChallengeForm(forms.ModelForm):
    """A challenge; its window is checked here, its goals by the goals' formset (which reads the audience this
    form cleaned)."""

    partner_kinds = forms.MultipleChoiceField(
        label=_("partner types"),
        choices=PartnerKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every partner type."),
    )

    class Meta:
        model = Challenge
        fields = (
            "program",
            "code",
            "name",
            "description",
            "starts_at",
            "ends_at",
            "level",
            "roles",
            "partner_kinds",
            "tiers",
            "regions",
            "completion_points",
            "rank_companies_by_size",
            "is_published",
        )
        widgets = {
            "roles": forms.CheckboxSelectMultiple,
            "tiers": forms.CheckboxSelectMultiple,
            "regions": forms.CheckboxSelectMultiple,
        }

    def clean(self):
        cleaned = super().clean()
        was = self.instance.ends_at if self.instance.pk else None
        for field, message in window_problems(
            starts_at=cleaned.get("starts_at"), ends_at=cleaned.get("ends_at"), was_ends_at=was
        ):
            self.add_error(field, message)
        # The goals' formset checks the goals for this audience (the admin gives it this form's instance).
        self.instance.audience_role_ids = [role.pk for role in cleaned.get("roles") or ()]
        return cleaned


class GoalFormSet(BaseInlineFormSet):
    """The goals, refused together when they could never be met (services.challenges.goal_problems)."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        goals = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE") or not data.get("metric"):
                continue
            line = data.get("product_line")
            goals.append(
                GoalDraft(
                    metric=data["metric"],
                    target=data.get("target"),
                    product_line_id=line.pk if line else None,
                    event=data.get("event") or "",
                    custom_event=data.get("custom_event") or "",
                )
            )
        challenge = self.instance
        problems = goal_problems(
            program=challenge.program if challenge.program_id else None,
            level=challenge.level,
            role_ids=getattr(challenge, "audience_role_ids", None) or [],
            partner_kinds=challenge.partner_kinds or [],
            goals=goals,
        )
        if problems:
            raise ValidationError(problems)


class PrizeForm(forms.ModelForm):
    class Meta:
        model = ChallengePrize
        fields = ("rank", "points", "description")

    def clean(self):
        cleaned = super().clean()
        for message in prize_problems(points=cleaned.get("points"), description=cleaned.get("description", "")):
            self.add_error(None, message)
        return cleaned


class GoalInline(admin.TabularInline):
    model = ChallengeGoal
    formset = GoalFormSet
    fields = ("metric", "target", "product_line", "event", "custom_event", "position")
    extra = 1
    verbose_name_plural = _("Goals (every one must be reached to complete the challenge)")

    def has_view_permission(self, request, obj=None):
        return is_program_manager(request.user)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


class PrizeInline(admin.TabularInline):
    model = ChallengePrize
    form = PrizeForm
    fields = ("rank", "points", "description")
    extra = 0
    verbose_name_plural = _("Prizes for the best ranks when it ends (points and/or a description)")

    def has_view_permission(self, request, obj=None):
        return is_program_manager(request.user)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


# The list --------------------------------------------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return list(STATUS_LABELS.items())

    def queryset(self, request, queryset):
        now = timezone.now()
        published = Q(is_published=True)
        conditions = {
            "draft": Q(is_published=False),
            "upcoming": published & Q(starts_at__gt=now),
            "running": published & Q(starts_at__lte=now, ends_at__gt=now, results_at__isnull=True),
            "ended": published & Q(ends_at__lte=now, results_at__isnull=True),
            "settled": published & Q(results_at__isnull=False),
        }
        condition = conditions.get(self.value())
        return queryset if condition is None else queryset.filter(condition)


@admin.register(Challenge)
class ChallengeAdmin(ProgramManagerAdmin):
    form = ChallengeForm
    inlines = (GoalInline, PrizeInline)
    list_display = ("name", "program", "window", "level", "status_shown", "participants", "completed")
    list_filter = ("program", StatusFilter, "level", "is_published")
    list_select_related = ("program",)
    search_fields = ("name", "code")
    search_help_text = _("Search by name or code.")
    ordering = ("-starts_at", "name")
    actions = ("settle",)
    readonly_fields = ("status_shown", "started_notified_at", "results_at", "standings")
    fieldsets = (
        (None, {"fields": ("program", "code", "name", "description", ("starts_at", "ends_at"), "is_published")}),
        (
            _("Who takes part"),
            {
                "fields": ("level", "rank_companies_by_size", "roles", "partner_kinds", "tiers", "regions"),
                "description": _("Leave a list empty for everyone in the program."),
            },
        ),
        (_("Reward"), {"fields": ("completion_points",)}),
        (_("Progress"), {"fields": ("status_shown", "started_notified_at", "results_at", "standings")}),
    )

    def get_queryset(self, request):
        entries = ChallengeEntry.objects.filter(challenge=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                participant_count=count_of(entries, "challenge"),
                completed_count=count_of(entries.filter(completed_at__isnull=False), "challenge"),
            )
        )

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing to show under "Progress" yet
            return self.fieldsets[:-1]
        return self.fieldsets

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "tiers":
            kwargs["queryset"] = Tier.objects.select_related("program").order_by("program__name", "rank")
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "tiers":
            field.label_from_instance = lambda tier: f"{tier.name} ({tier.program.name})"
        return field

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        # Checkbox lists are not <select>s: no "add another" links around them.
        if db_field.name in ("roles", "tiers", "regions") and hasattr(field.widget, "widget"):
            field.widget = field.widget.widget
        return field

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        for warning in publish_warnings(challenge=form.instance):
            self.message_user(request, warning, messages.WARNING)

    # Columns and read-only fields -----------------------------------------------------------------------------

    @admin.display(description=_("window"), ordering="starts_at")
    def window(self, obj):
        start = formats.date_format(timezone.localtime(obj.starts_at), "SHORT_DATETIME_FORMAT")
        end = formats.date_format(timezone.localtime(obj.ends_at), "SHORT_DATETIME_FORMAT")
        return f"{start} – {end}"

    @admin.display(description=_("status"))
    def status_shown(self, obj):
        return STATUS_LABELS[challenge_status(obj)]

    @admin.display(description=_("participants"), ordering="participant_count")
    def participants(self, obj):
        return list_link("loyalty_challengeentry", obj.participant_count, challenge__id__exact=obj.pk)

    @admin.display(description=_("completed"), ordering="completed_count")
    def completed(self, obj):
        return obj.completed_count

    @admin.display(description=_("standings"))
    def standings(self, obj):
        rows = challenge_standings(obj)
        if not rows:
            return _("Nobody has taken part yet.")
        by_size = obj.rank_companies_by_size and obj.level == ChallengeLevel.COMPANY
        head = format_html(
            "<thead><tr><th>{}</th><th>{}</th><th class='text-end'>{}</th>{}<th>{}</th></tr></thead>",
            _("rank"),
            _("participant"),
            _("score (%)"),
            format_html("<th class='text-end'>{}</th>", _("per active member")) if by_size else "",
            _("completed"),
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td class='text-end'>{}</td>{}<td>{}</td></tr>",
            (
                (
                    rank,
                    _participant(entry),
                    formats.number_format(entry.score, 2, use_l10n=True),
                    format_html("<td class='text-end'>{}</td>", formats.number_format(entry.normalised, 4))
                    if by_size
                    else "",
                    formats.date_format(timezone.localtime(entry.completed_at), "SHORT_DATETIME_FORMAT")
                    if entry.completed_at
                    else "—",
                )
                for rank, entry in rows
            ),
        )
        return format_html("<table>{}<tbody>{}</tbody></table>", head, body)

    # Actions -------------------------------------------------------------------------------------------------

    def has_settle_permission(self, request):
        return is_program_manager(request.user)

    @admin.action(description=_("Settle the results now (ended challenges)"), permissions=["settle"])
    def settle(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset.select_related("program").order_by("pk"),
            with_name(lambda challenge: challenge_settle(challenge=challenge), str),
            done="Settled",
            noun="challenge",
        )


def challenge_standings(challenge: Challenge) -> list[tuple[int, ChallengeEntry]]:
    """The first STANDINGS_SHOWN entries in rank order (the final ranks once settled), numbered: one query."""
    rows = ChallengeEntry.objects.filter(challenge=challenge).select_related("member__user", "member__role", "partner")
    if challenge.results_at is not None:
        rows = rows.order_by("final_rank", "id")
    else:
        measure = "-normalised" if challenge.rank_companies_by_size else "-score"
        rows = rows.order_by(measure, "completed_at", "id")
    return [(entry.final_rank or number, entry) for number, entry in enumerate(rows[:STANDINGS_SHOWN], 1)]


def _participant(entry: ChallengeEntry) -> str:
    if entry.member is None:
        return entry.partner.name
    return f"{entry.member.user.get_full_name() or entry.member.user.email} ({entry.partner.name})"


@admin.register(ChallengeEntry)
class ChallengeEntryAdmin(ReadOnlyModelAdmin):
    """Every participant of a challenge, read-only (what the participants link of the list opens)."""

    list_display = ("challenge", "participant", "score", "normalised", "active_members", "completed_at", "final_rank")
    list_filter = ("challenge__program", "challenge")
    list_select_related = ("challenge", "member__user", "partner")
    ordering = ("challenge", "final_rank", "-score", "id")
    search_fields = ("partner__name", "member__user__email")
    search_help_text = _("Search by partner name or member e-mail.")

    @admin.display(description=_("participant"))
    def participant(self, obj):
        return _participant(obj)
