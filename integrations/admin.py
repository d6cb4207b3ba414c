"""The back office of the API's integrations, for program managers only: machine clients (scopes as checkboxes,
their keys shown once when made, rotated and revoked), their webhook subscriptions (the signing secret shown,
enabled again after they were disabled) and the webhook delivery log (each attempt's answer, redelivery).

Keys and clients change only through integrations.keys, subscriptions and deliveries through integrations.webhooks
and integrations.delivery. Query counts are pinned in tests/integrations/test_integrations_admin.py."""

import json
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from integrations import keys
from integrations.constants import EventType, Scope
from integrations.delivery import delivery_redeliver
from integrations.models import ApiClient, ApiKey, WebhookAttempt, WebhookDelivery, WebhookSubscription
from integrations.webhooks import new_secret, subscription_enable
from loyalty.common.admin import (
    DetailJoinsMixin,
    EstimatedCountPaginator,
    ProgramManagerAdmin,
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    SavedByServices,
    answers,
    apply_each,
    ask,
    back_to_object,
    object_url,
)
from loyalty.common.errors import ApplicationError
from partners.constants import PartnerKind

# Machine clients --------------------------------------------------------------------------------------------------


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("scopes"),
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=gettext_lazy("What the client may do in its program."),
    )

    class Meta:
        model = ApiClient
        fields = ["name", "program", "scopes", "distributor", "sales_source", "requests_per_minute"]

    def clean(self):
        data = super().clean()
        program, distributor, source = data.get("program"), data.get("distributor"), data.get("sales_source")
        if distributor is not None and distributor.kind != PartnerKind.DISTRIBUTOR:
            self.add_error("distributor", _("%(partner)s is not a distributor.") % {"partner": distributor.name})
        if source is not None and program is not None and source.program_id != program.pk:
            self.add_error("sales_source", _("This sales source belongs to another program."))
        if (
            source is not None
            and distributor is not None
            and source.distributor_id is not None
            and source.distributor_id != distributor.pk
        ):
            self.add_error("sales_source", _("This sales source is another distributor's."))
        return data


class ApiKeyInline(ReadOnlyInline):
    """The client's keys (their prefixes only: a secret is shown once, when it is made), each revocable."""

    model = ApiKey
    fk_name = "client"
    fields = ("prefix", "created_at", "created_by", "last_used_at", "revoked_at", "revoke")
    row_select_related = ("created_by",)
    verbose_name_plural = gettext_lazy("Keys (only their prefixes are kept)")

    @admin.display(description=gettext_lazy("revoke"))
    def revoke(self, key):
        if key.revoked_at is not None:
            return "—"
        url = reverse("admin:integrations_apiclient_revoke_key", args=[key.client_id])
        # A button of the client's form posting to the revoke page (forms cannot nest): only its key is read there.
        return format_html(
            '<button type="submit" class="button" formaction="{}" formnovalidate name="key" value="{}">{}</button>',
            url,
            key.pk,
            _("Revoke key"),
        )


@admin.register(ApiClient)
class ApiClientAdmin(SavedByServices, ProgramManagerAdmin):
    form = ApiClientForm
    list_display = ["name", "program", "scope_list", "distributor", "status", "keys_active", "last_used_at"]
    list_filter = ["program", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["program", "distributor"]
    search_fields = ["name"]
    raw_id_fields = ["distributor"]
    readonly_fields = ["created_by", "created_at", "last_used_at", "revoked_at"]
    inlines = [ApiKeyInline]
    actions = ["issue_key", "revoke_client"]

    def get_queryset(self, request):
        active = Count("keys", filter=Q(keys__revoked_at__isnull=True))
        return super().get_queryset(request).annotate(active_keys=active)

    def get_fields(self, request, obj=None):
        fields = ["name", "program", "scopes", "distributor", "sales_source", "requests_per_minute"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    @admin.display(description=gettext_lazy("scopes"))
    def scope_list(self, client):
        return ", ".join(sorted(client.scopes)) or "—"

    @admin.display(description=gettext_lazy("status"), ordering="revoked_at")
    def status(self, client):
        return _("revoked") if client.revoked_at else _("active")

    @admin.display(description=gettext_lazy("active keys"), ordering="active_keys")
    def keys_active(self, client):
        return client.active_keys

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            self._show_key(request, keys.key_issue(client=obj, by=request.user))

    def _show_key(self, request, issued: keys.Issued) -> None:
        self.message_user(
            request,
            _(
                "The new key of %(client)s, shown this once: %(secret)s — copy it now into the client's settings; "
                "only its prefix %(prefix)s is kept."
            )
            % {"client": issued.row.client.name, "secret": issued.secret, "prefix": issued.row.prefix},
            level=messages.WARNING,
        )

    @admin.action(description=gettext_lazy("Issue a new key (rotation: the old keys stay valid until revoked)"))
    def issue_key(self, request, queryset):
        for client in queryset.order_by("name"):
            try:
                issued = keys.key_issue(client=client, by=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
            else:
                self._show_key(request, issued)

    @admin.action(description=gettext_lazy("Revoke client (every key, and its webhooks stop)"))
    def revoke_client(self, request, queryset):
        clients = list(queryset.filter(revoked_at__isnull=True).order_by("name"))
        if not clients:
            self.message_user(request, _("The selected clients are revoked already."), level=messages.WARNING)
            return None

        def apply(data) -> None:
            done = [keys.client_revoke(client=client).name for client in clients]
            message = ngettext(
                "Revoked %(count)s client: %(names)s.", "Revoked %(count)s clients: %(names)s.", len(done)
            )
            self.message_user(request, message % {"count": len(done), "names": ", ".join(done)}, messages.SUCCESS)

        return ask(
            self,
            request,
            clients,
            form=forms.Form(answers(request)),
            apply=apply,
            fields=[],
            title=_("Revoke clients"),
            intro=_(
                "Every key of these clients stops working at once and their webhooks stop. This cannot be undone: "
                "register a new client to connect the system again."
            ),
            button=_("Revoke"),
            describe=lambda client: f"{client.name} ({client.program})",
        )

    def get_urls(self):
        revoke_key = object_url(
            self, "revoke-key/", self._revoke_key, name="integrations_apiclient_revoke_key", methods=("POST",)
        )
        return [revoke_key, *super().get_urls()]

    def _revoke_key(self, request, client):
        key_id = request.POST.get("key", "")
        key = client.keys.filter(pk=int(key_id)).first() if key_id.isdigit() else None
        if key is None:
            self.message_user(request, _("No such key of this client."), level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:integrations_apiclient_change", args=[client.pk]))
        keys.key_revoke(key=key)
        return back_to_object(self, request, client, _("Key %(prefix)s is revoked.") % {"prefix": key.prefix})


# Webhook subscriptions --------------------------------------------------------------------------------------------


class WebhookSubscriptionForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("event types"), choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookSubscription
        fields = ["client", "url", "event_types"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        if urlsplit(url).scheme not in ("http", "https"):
            raise forms.ValidationError(_("Webhooks go to http or https addresses only."))
        return url

    def clean_client(self):
        client = self.cleaned_data["client"]
        if client.revoked_at is not None:
            raise forms.ValidationError(_("This client is revoked."))
        return client


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ProgramManagerAdmin):
    form = WebhookSubscriptionForm
    list_display = ["url", "client", "types", "status", "failures_in_a_row", "disabled_at"]
    list_filter = ["is_active", "client__program"]
    list_select_related = ["client"]
    search_fields = ["url", "client__name"]
    readonly_fields = ["secret", "is_active", "disabled_at", "disabled_reason", "failures_in_a_row", "created_at"]
    actions = ["enable"]

    def get_fields(self, request, obj=None):
        fields = ["client", "url", "event_types"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    @admin.display(description=gettext_lazy("event types"))
    def types(self, subscription):
        return ", ".join(subscription.event_types)

    @admin.display(description=gettext_lazy("status"), ordering="is_active")
    def status(self, subscription):
        return _("active") if subscription.is_active else _("disabled")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.secret = new_secret()
        super().save_model(request, obj, form, change)

    @admin.action(description=gettext_lazy("Enable again"))
    def enable(self, request, queryset):
        subscriptions = queryset.filter(is_active=False).select_related("client").order_by("pk")
        done = apply_each(
            self,
            request,
            subscriptions,
            lambda subscription: subscription_enable(subscription=subscription),
            name=_number,
        )
        if done:
            message = ngettext(
                "Enabled again: %(count)s subscription (%(names)s).",
                "Enabled again: %(count)s subscriptions (%(names)s).",
                len(done),
            )
            self.message_user(request, message % {"count": len(done), "names": ", ".join(done)}, messages.SUCCESS)
        elif not subscriptions:
            self.message_user(request, _("The selected subscriptions are active already."), level=messages.WARNING)


# Deliveries -------------------------------------------------------------------------------------------------------


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = ("at", "response_status", "milliseconds", "error", "response_body")
    verbose_name_plural = gettext_lazy("Attempts (the latest first)")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(DetailJoinsMixin, ReadOnlyModelAdmin):
    list_display = [
        "created_at", "event_type", "subscription", "status", "attempts", "next_attempt_at", "response_status",
    ]  # fmt: skip
    list_filter = ["status", "event__type"]
    list_select_related = ["event", "subscription__client"]
    detail_select_related = ("event", "subscription__client")
    search_fields = ["event__public_id", "subscription__url"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = [
        "event_id", "event_type", "subscription", "status", "attempts", "created_at", "last_attempt_at",
        "next_attempt_at", "response_status", "response_body", "error", "body",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["redeliver"]

    @admin.display(description=gettext_lazy("event type"), ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description=gettext_lazy("webhook-id"))
    def event_id(self, delivery):
        return delivery.event.public_id

    @admin.display(description=gettext_lazy("data sent"))
    def body(self, delivery):
        return format_html("<pre>{}</pre>", json.dumps(delivery.event.payload, indent=2, ensure_ascii=False))

    @admin.action(description=gettext_lazy("Redeliver (a new attempt now, with the same webhook-id)"))
    def redeliver(self, request, queryset):
        deliveries = queryset.select_related("subscription__client").order_by("pk")
        done = apply_each(
            self, request, deliveries, lambda delivery: delivery_redeliver(delivery=delivery), name=_number
        )
        if done:
            message = ngettext(
                "Redelivering %(count)s delivery (%(names)s): the attempt shows in its log once it is made.",
                "Redelivering %(count)s deliveries (%(names)s): the attempts show in their logs once they are made.",
                len(done),
            )
            self.message_user(request, message % {"count": len(done), "names": ", ".join(done)}, messages.SUCCESS)


def _number(obj) -> str:
    return f"#{obj.pk}"
