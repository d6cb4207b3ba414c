"""The back office for partners, their people, roles, regions and invitations.

Only program managers use it. Status moves, account-manager assignments and invitations go through
partners.services, exactly as the member site does; plain attributes are edited through validated
model forms. Lists annotate their counts in get_queryset, so a page costs the same few queries whatever
the number of rows (pinned in tests/partners/test_admin.py).
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.html import format_html

from loyalty.common.admin import (
    INLINE_ROW_LIMIT,
    ProgramManagerAdmin,
    ProgramManagerPermissions,
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    SavedByServices,
    StatusHistoryInline,
    admin_page,
    adopt,
    answers,
    ask,
    back_to_object,
    is_program_manager,
    list_link,
    list_url,
    object_url,
    plural,
    related_field,
    run_for_each,
)
from loyalty.common.errors import ApplicationError
from loyalty.common.queries import count_of
from partners import services
from partners.admin_forms import AssignAccountManagerForm, InviteForm, PartnerAdminForm, UserAddForm, UserChangeForm
from partners.constants import CURRENT_MEMBER_STATUSES, MemberStatus, PartnerStatus, StaffRole
from partners.error_codes import ErrorCode
from partners.models import Invitation, Member, MemberStatusChange, Partner, PartnerStatusChange, Region, Role, User

admin.site.site_header = "Partner Loyalty — back office"
admin.site.site_title = "Partner Loyalty back office"
admin.site.index_title = "The program today"


def _count_members(status: str) -> Coalesce:
    """The number of a partner's members in one status, as a correlated subquery (one per shown row)."""
    return count_of(Member.objects.filter(partner=OuterRef("pk"), status=status), "partner")


# Regions and roles ----------------------------------------------------------------------------------


@admin.register(Region)
class RegionAdmin(ProgramManagerAdmin):
    allow_delete = True  # a region still in use is protected by its partners
    list_display = ("name", "code", "marketing_consent", "time_zone", "partner_count")
    list_filter = ("marketing_consent",)
    search_fields = ("name", "code")
    ordering = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(partner_count=Count("partners"))

    @admin.display(description="Partners", ordering="partner_count")
    def partner_count(self, obj):
        return obj.partner_count


@admin.register(Role)
class RoleAdmin(ProgramManagerAdmin):
    allow_delete = True  # a role still held by anyone is protected by their memberships
    list_display = ("name", "code", "is_owner", "sort_order", "active_members")
    list_editable = ("sort_order",)
    list_filter = ("is_owner",)
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(active_members=Count("members", filter=Q(members__status=MemberStatus.ACTIVE)))
        )

    @admin.display(description="Active members", ordering="active_members")
    def active_members(self, obj):
        return list_link(
            "partners_member", obj.active_members, role__id__exact=obj.pk, status__exact=MemberStatus.ACTIVE
        )


# Partners -------------------------------------------------------------------------------------------


class AccountManagerFilter(admin.SimpleListFilter):
    title = "account manager"
    parameter_name = "account_manager"
    NONE = "none"

    def lookups(self, request, model_admin):
        managers = User.objects.filter(staff_role=StaffRole.ACCOUNT_MANAGER).order_by("full_name", "email")
        return [(self.NONE, "No account manager"), *((str(user.pk), str(user)) for user in managers)]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.NONE:
            return queryset.filter(account_manager__isnull=True)
        if value and value.isdigit():
            return queryset.filter(account_manager_id=int(value))
        return queryset


class PartnerMemberInline(ReadOnlyInline):
    model = Member
    verbose_name_plural = f"Members (the first {INLINE_ROW_LIMIT}, owners first)"
    fields = ("user", "role", "status", "joined_at")
    ordering = ("role__sort_order", "user__email")
    show_change_link = True
    row_select_related = ("user", "role")


class PartnerStatusChangeInline(StatusHistoryInline):
    model = PartnerStatusChange


@admin.register(Partner)
class PartnerAdmin(SavedByServices, ProgramManagerAdmin):
    form = PartnerAdminForm
    list_display = (
        "name",
        "legal_id",
        "kind",
        "status",
        "account_manager",
        "active_members",
        "pending_members",
    )
    list_filter = ("status", "kind", "region", AccountManagerFilter, "payout_policy")
    list_select_related = ("account_manager",)
    search_fields = ("name", "legal_id", "parent__name", "account_manager__email", "account_manager__full_name")
    search_help_text = "Search by name, legal id, parent distributor or account manager."
    autocomplete_fields = ("parent", "account_manager")
    date_hierarchy = "joined_on"
    inlines = (PartnerMemberInline, PartnerStatusChangeInline)
    actions = ("activate", "suspend", "assign_account_manager")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_members=_count_members(MemberStatus.ACTIVE),
                pending_members=_count_members(MemberStatus.PENDING_APPROVAL),
            )
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("name", "legal_id", "kind", "parent", "region")}),
            ("In the program", {"fields": ("status", "joined_on", "payout_policy", "account_manager")}),
        ]
        if obj is not None:
            fieldsets += [
                ("Team", {"fields": ("team",)}),
                ("Record", {"fields": ("created_at", "updated_at")}),
            ]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Status moves only through the actions, which record who did what and when.
        return ("status", "team", "created_at", "updated_at")

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data}
            services.partner_update(partner=obj, actor=request.user, **changed)
        else:
            adopt(obj, services.partner_create(**form.cleaned_data))

    @admin.display(description="Active", ordering="active_members")
    def active_members(self, obj):
        return list_link(
            "partners_member", obj.active_members, partner__id__exact=obj.pk, status__exact=MemberStatus.ACTIVE
        )

    @admin.display(description="Waiting", ordering="pending_members")
    def pending_members(self, obj):
        if not obj.pending_members:
            return 0
        return list_link(
            "partners_member",
            obj.pending_members,
            partner__id__exact=obj.pk,
            status__exact=MemberStatus.PENDING_APPROVAL,
        )

    @admin.display(description="Team")
    def team(self, obj):
        counts = obj.members.aggregate(**{s: Count("pk", filter=Q(status=s)) for s in MemberStatus.values})
        total = sum(counts.values())
        if not total:
            return "Nobody yet. Use “Invite owner / staff” above."
        summary = ", ".join(f"{counts[s.value]} {s.label.lower()}" for s in MemberStatus if counts[s.value])
        url = list_url("partners_member", partner__id__exact=obj.pk)
        return format_html('{} — <a href="{}">see all {}</a>', summary, url, plural(total, "member"))

    # Actions -----------------------------------------------------------------------------------------

    def _transition(self, request, queryset, to: str, *, done: str, reason: str) -> None:
        run_for_each(
            self,
            request,
            queryset.order_by("pk"),
            lambda partner: services.partner_transition(partner=partner, to=to, actor=request.user, reason=reason),
            done=done,
            noun="partner",
        )

    @admin.action(description="Activate selected partners", permissions=["change"])
    def activate(self, request, queryset):
        self._transition(
            request, queryset, PartnerStatus.ACTIVE, done="Activated", reason="Activated in the back office"
        )

    @admin.action(description="Suspend selected partners", permissions=["change"])
    def suspend(self, request, queryset):
        self._transition(
            request, queryset, PartnerStatus.SUSPENDED, done="Suspended", reason="Suspended in the back office"
        )

    @admin.action(description="Assign an account manager to selected partners", permissions=["change"])
    def assign_account_manager(self, request, queryset):
        partners = list(queryset.select_related("account_manager").order_by("name", "pk"))

        def apply(data) -> None:
            manager = data["account_manager"]
            run_for_each(
                self,
                request,
                partners,
                lambda partner: services.partner_assign_account_manager(partner=partner, account_manager=manager),
                done=f"Assigned {manager} to" if manager else "Removed the account manager of",
                noun="partner",
            )

        return ask(
            self,
            request,
            partners,
            form=AssignAccountManagerForm(answers(request)),
            apply=apply,
            title="Assign an account manager",
            intro="",
            button="Assign",
            describe=_with_account_manager,
            fields=["account_manager"],
            template="admin/partners/partner/assign_account_manager.html",
        )

    # Inviting people ---------------------------------------------------------------------------------

    def get_urls(self):
        return [object_url(self, "invite/", self.invite_view, name="partners_partner_invite"), *super().get_urls()]

    def invite_view(self, request, partner):
        """Invite an owner or a member of staff to this partner; the e-mail goes out after commit."""
        form = InviteForm(request.POST or None)
        if form.is_bound and form.is_valid():
            email, role = form.cleaned_data["email"], form.cleaned_data["role"]
            try:
                invitation = services.invitation_send(partner=partner, email=email, role=role, invited_by=request.user)
            except ApplicationError as exc:
                form.add_error("email" if exc.code in ("already_member", "invalid_email") else None, exc.message)
            else:
                sent_to = invitation.member.user.email
                return back_to_object(
                    self,
                    request,
                    partner,
                    f"Invitation sent to {sent_to} to join {partner} as {role}.",
                    logged=f"Invited {sent_to} as {role}.",
                )
        return admin_page(
            self,
            request,
            "admin/partners/partner/invite.html",
            title=f"Invite a person to {partner}",
            form=form,
            fields=["email", "role"],
            original=partner,
        )


def _with_account_manager(partner: Partner) -> str:
    """A partner as the "Assign an account manager" page lists it."""
    manager = f"currently {partner.account_manager}" if partner.account_manager else "no account manager yet"
    return f"{partner.name} — {manager}"


# Members --------------------------------------------------------------------------------------------


class MemberStatusChangeInline(StatusHistoryInline):
    model = MemberStatusChange


class MemberInvitationInline(ReadOnlyInline):
    model = Invitation
    verbose_name_plural = f"Invitation links (the latest {INLINE_ROW_LIMIT})"
    fields = ("created_at", "invited_by", "expires_at", "accepted_at", "revoked_at")
    row_select_related = ("invited_by",)


@admin.register(Member)
class MemberAdmin(SavedByServices, ProgramManagerAdmin):
    list_display = ("email", "full_name", "partner", "role", "status", "joined_at")
    list_filter = ("status", "role", "partner__kind", "partner__region", "preferred_channel")
    list_select_related = ("user", "partner", "role")
    search_fields = ("user__email", "user__full_name", "partner__name", "partner__legal_id")
    search_help_text = "Search by e-mail, name, partner or the partner's legal id."
    date_hierarchy = "created_at"
    readonly_fields = ("user", "partner", "status", "joined_at", "left_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("user", "partner", "role", "status")}),
        ("Contact", {"fields": ("phone", "language", "preferred_channel", "time_zone")}),
        ("Record", {"fields": ("joined_at", "left_at", "created_at", "updated_at")}),
    )
    inlines = (MemberStatusChangeInline, MemberInvitationInline)
    actions = ("approve", "deactivate", "resend_invitation")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "partner", "role")

    def has_add_permission(self, request):
        return False  # people join through an invitation: "Invite owner / staff" on the partner page

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status == MemberStatus.LEFT:
            return (*self.readonly_fields, "role")  # a person who has left keeps the role they had
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        changed = set(form.changed_data)
        if "role" in changed:
            services.member_change_role(member=obj, role=form.cleaned_data["role"], actor=request.user)
        if changed & {"phone", "language", "preferred_channel", "time_zone"}:
            services.member_update_profile(
                member=obj,
                full_name=obj.user.full_name,
                phone=form.cleaned_data["phone"],
                language=form.cleaned_data["language"],
                preferred_channel=form.cleaned_data["preferred_channel"],
                time_zone=form.cleaned_data["time_zone"],
            )

    email = related_field("user.email", "E-mail")
    full_name = related_field("user.full_name", "Name")

    def _for_each(self, request, queryset, operation, *, done: str) -> None:
        run_for_each(
            self,
            request,
            queryset.select_related("user", "partner").order_by("pk"),
            operation,
            done=done,
            noun="member",
            name=lambda member: member.user.email,
        )

    @admin.action(description="Approve selected members", permissions=["change"])
    def approve(self, request, queryset):
        def approve(member: Member) -> None:
            # services.member_approve also moves an invited person straight to active, skipping their
            # acceptance; the back office approves only people who accepted and are waiting.
            if not member.can_approve():
                raise ApplicationError(
                    f"{member.user.email} is {member.get_status_display().lower()}; "
                    "only people waiting for approval can be approved.",
                    code=ErrorCode.BAD_TRANSITION,
                )
            services.member_approve(member=member, actor=request.user)

        self._for_each(request, queryset, approve, done="Approved")

    @admin.action(description="Deactivate selected members", permissions=["change"])
    def deactivate(self, request, queryset):
        self._for_each(
            request,
            queryset,
            lambda member: services.member_deactivate(
                member=member, actor=request.user, reason="Deactivated in the back office"
            ),
            done="Deactivated",
        )

    @admin.action(description="Resend the invitation to selected members", permissions=["change"])
    def resend_invitation(self, request, queryset):
        self._for_each(
            request,
            queryset,
            lambda member: services.invitation_resend(member=member, actor=request.user),
            done="Sent a new invitation link to",
        )


# Invitations ----------------------------------------------------------------------------------------


class InvitationStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("open", "Open"),
            ("expired", "Expired"),
            ("accepted", "Accepted"),
            ("revoked", "Replaced or cancelled"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        pending = Q(accepted_at__isnull=True, revoked_at__isnull=True)
        match self.value():
            case "open":
                return queryset.filter(pending, expires_at__gt=now)
            case "expired":
                return queryset.filter(pending, expires_at__lte=now)
            case "accepted":
                return queryset.filter(accepted_at__isnull=False)
            case "revoked":
                return queryset.filter(accepted_at__isnull=True, revoked_at__isnull=False)
        return queryset


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyModelAdmin):
    # Invitations are sent from the partner page or the member site; a link is never edited: resend it instead.
    list_display = ("email", "partner", "role", "invited_by", "expires_at", "state")
    list_filter = (InvitationStateFilter, "member__role")
    list_select_related = ("member__user", "member__partner", "member__role", "invited_by")
    search_fields = ("member__user__email", "member__partner__name")
    search_help_text = "Search by e-mail or partner."
    date_hierarchy = "created_at"
    fields = ("member", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at", "state")
    readonly_fields = fields
    actions = ("resend",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.list_select_related)

    def has_resend_permission(self, request):
        return is_program_manager(request.user)

    email = related_field("member.user.email", "E-mail")
    partner = related_field("member.partner", "Partner", ordering="member__partner__name")
    role = related_field("member.role", "Role", ordering="member__role__sort_order")

    @admin.display(description="State")
    def state(self, obj):
        if obj.accepted_at is not None:
            return "Accepted"
        if obj.revoked_at is not None:
            return "Replaced or cancelled"
        return "Open" if obj.expires_at > timezone.now() else "Expired"

    @admin.action(description="Resend the invitation (a new link)", permissions=["resend"])
    def resend(self, request, queryset: QuerySet[Invitation]):
        members = {invitation.member_id: invitation.member for invitation in queryset.order_by("member_id")}
        run_for_each(
            self,
            request,
            members.values(),
            lambda member: services.invitation_resend(member=member, actor=request.user),
            done="Sent a new invitation link to",
            noun="person",
            name=lambda member: member.user.email,
        )


# Users ----------------------------------------------------------------------------------------------


class UserMembershipInline(ReadOnlyInline):
    model = Member
    verbose_name_plural = f"Memberships (the latest {INLINE_ROW_LIMIT})"
    fields = ("partner", "role", "status", "joined_at", "left_at")
    ordering = ("-created_at",)
    show_change_link = True
    row_select_related = ("partner", "role")


@admin.register(User)
class UserAdmin(ProgramManagerPermissions, DjangoUserAdmin):
    allow_delete = True  # somebody with memberships is protected by them
    form = UserChangeForm
    add_form = UserAddForm
    list_display = ("email", "full_name", "staff_role", "current_partner", "is_staff", "is_active", "last_login")
    list_filter = ("staff_role", "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "full_name")
    ordering = ("email",)
    date_hierarchy = "date_joined"
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("full_name",)}),
        (
            "Access",
            {"fields": ("staff_role", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "staff_role", "is_staff", "usable_password", "password1", "password2"),
            },
        ),
    )
    inlines = (UserMembershipInline,)

    def get_queryset(self, request):
        # At most one current membership per person (a unique constraint), so no ordering is needed.
        current = (
            Member.objects.filter(user=OuterRef("pk"), status__in=CURRENT_MEMBER_STATUSES)
            .order_by()
            .values("partner__name")[:1]
        )
        return super().get_queryset(request).annotate(current_partner=Subquery(current))

    def get_readonly_fields(self, request, obj=None):
        readonly = ["last_login", "date_joined"]
        if not request.user.is_superuser:
            # Only a superuser hands out superuser status or Django permissions.
            readonly += ["is_superuser", "groups", "user_permissions"]
        return readonly

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    @admin.display(description="Current partner", ordering="current_partner")
    def current_partner(self, obj):
        return obj.current_partner or ""
