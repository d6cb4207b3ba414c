"""Forms of the back office (Django admin) for the rewards catalogue, voucher codes and orders."""

from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.forms import BoundField
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.common.errors import ApplicationError
from loyalty.selectors.certificates import certification_refusal, certifying_lines
from partners.constants import PartnerKind
from rewards import services
from rewards.constants import EVENT_KINDS, OrderStatus
from rewards.models import RedemptionOrder, Reward

# A bigger file of codes is split in several uploads; 5 MB holds some 300,000 codes.
MAX_CODES_FILE_BYTES = 5 * 1024 * 1024


class LabelledFileInput(forms.ClearableFileInput):
    """The file input with its own <label> (Django groups it in a fieldset whose legend labels no input)."""

    use_fieldset = False


class RewardAdminForm(forms.ModelForm):
    allowed_partner_kinds = forms.MultipleChoiceField(
        choices=PartnerKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Allowed partner kinds",
        help_text="None ticked: every kind of partner.",
    )

    class Meta:
        model = Reward
        widgets = {"image": LabelledFileInput}
        labels = {"requires_certification": _("Certified members only")}
        fields = (
            "program",
            "category",
            "name",
            "sku",
            "kind",
            "description",
            "image",
            "points_price",
            "paid_by",
            "stock",
            "uses_codes",
            "installed_on_site",
            "event_starts_at",
            "event_place",
            "min_tier",
            "requires_certification",
            "allowed_roles",
            "allowed_partner_kinds",
            "allowed_regions",
            "allowed_partners",
            "negotiated_reason",
            "limit_per_member",
            "limit_period",
            "is_active",
            "available_from",
            "available_until",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "requires_certification" in self.fields:
            self.fields["requires_certification"].queryset = certifying_lines()

    def clean_allowed_partner_kinds(self) -> list[str]:
        chosen = set(self.cleaned_data["allowed_partner_kinds"])
        return [kind for kind in PartnerKind.values if kind in chosen]  # in the order of the choices

    def clean_points_price(self) -> int:
        price = self.cleaned_data["points_price"]
        if price < 1:
            raise ValidationError("The price must be at least 1 point.", code="price")
        return price

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("uses_codes") and cleaned.get("stock") is not None:
            self.add_error("stock", "A code reward's stock is its pool of free codes: leave stock empty.")
        if (
            self.instance.pk is not None
            and self.instance.uses_codes
            and "uses_codes" in cleaned
            and not cleaned["uses_codes"]
            and self.instance.codes.exists()
        ):
            self.add_error("uses_codes", "This reward has voucher codes in its pool, so it keeps handing out codes.")
        starts, ends = cleaned.get("available_from"), cleaned.get("available_until")
        if starts and ends and ends <= starts:
            self.add_error("available_until", "The end of the window must come after its start.")
        program = cleaned.get("program") or getattr(self.instance, "program", None)
        refusal = certification_refusal(program=program, line=cleaned.get("requires_certification"))
        if refusal:
            self.add_error("requires_certification", refusal)
        self._clean_event(cleaned)
        self._clean_negotiated(cleaned)
        return cleaned

    def _clean_negotiated(self, cleaned: dict) -> None:
        """A reward negotiated for named partners says why (fair dealing: equal terms must be explainable)."""
        if cleaned.get("allowed_partners") and not (cleaned.get("negotiated_reason") or "").strip():
            self.add_error(
                "negotiated_reason",
                _("Say why these partners get this reward (fair dealing: equal terms must be explainable)."),
            )

    def stamp_negotiated(self, user) -> None:
        """Before saving: whoever saves a reward whose named partners or reason changed approves it, now (none
        named: no approval). The admin calls it; the partners themselves are saved with the form's relations."""
        reward, partners = self.instance, self.cleaned_data.get("allowed_partners")
        if not partners:
            reward.negotiated_approved_by = reward.negotiated_approved_at = None
            return
        changed = {"allowed_partners", "negotiated_reason"} & set(self.changed_data)
        if changed or reward.negotiated_approved_at is None:
            reward.negotiated_approved_by, reward.negotiated_approved_at = user, timezone.now()

    def _clean_event(self, cleaned: dict) -> None:
        """A dated event or session: an event seat or expert session, with a capacity (its stock) and a place."""
        if "event_starts_at" not in self.fields:
            return
        starts, place = cleaned.get("event_starts_at"), (cleaned.get("event_place") or "").strip()
        if starts is None:
            if place:
                self.add_error("event_starts_at", _("An event with a place needs its date and time."))
            return
        if cleaned.get("kind") not in EVENT_KINDS:
            self.add_error(
                "kind", _("A dated event is an “Experience or event seat” or a “Training or expert session”.")
            )
        if cleaned.get("uses_codes"):
            self.add_error("uses_codes", _("A dated event's seats are its stock, not voucher codes."))
        if cleaned.get("stock") is None and "stock" not in self.errors:
            self.add_error("stock", _("A dated event needs a capacity: enter the number of seats as its stock."))
        if not place:
            self.add_error("event_place", _("A dated event needs a place (an address, or “Online” with the link)."))


class CodeUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 text, one code per line in the first column; a first line “code” is skipped. "
        "Codes already in the pool are skipped.",
    )

    def clean_file(self) -> list[str]:
        """The codes in the file (services.codes_from_csv says what is wrong with a bad one)."""
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CODES_FILE_BYTES:
            raise ValidationError("The file is larger than 5 MB. Split it into smaller files.", code="too_big")
        try:
            return services.codes_from_csv(upload.read())
        except ApplicationError as exc:
            raise ValidationError(exc.message, code=exc.code) from exc

    @property
    def codes(self) -> list[str]:
        return self.cleaned_data["file"]


@dataclass(frozen=True)
class FulfilRow:
    order: RedemptionOrder
    carrier: BoundField | None  # None: this order cannot be marked fulfilled now
    tracking_number: BoundField | None


class OrderFulfilForm(forms.Form):
    """Carrier and tracking number of each selected order. Orders that ship to an address need both."""

    carrier = forms.CharField(
        max_length=60,
        required=False,
        label="Carrier for all",
        help_text="Used for every order below that names no carrier of its own, e.g. DHL.",
    )

    def __init__(self, *args, orders: list[RedemptionOrder], **kwargs):
        super().__init__(*args, **kwargs)
        self.orders = orders
        self.fulfillable = [order for order in orders if order.can_move_to(OrderStatus.FULFILLED)]
        for order in self.fulfillable:
            self.fields[f"carrier_{order.pk}"] = forms.CharField(
                max_length=60, required=False, label=f"Carrier of order {order.pk}"
            )
            self.fields[f"tracking_{order.pk}"] = forms.CharField(
                max_length=80, required=False, label=f"Tracking number of order {order.pk}"
            )

    def rows(self) -> list[FulfilRow]:
        fulfillable = {order.pk for order in self.fulfillable}
        return [
            FulfilRow(order, self[f"carrier_{order.pk}"], self[f"tracking_{order.pk}"])
            if order.pk in fulfillable
            else FulfilRow(order, None, None)
            for order in self.orders
        ]

    def clean(self):
        cleaned = super().clean()
        for order in self.fulfillable:
            if not order.needs_shipping:
                continue
            carrier_field, tracking_field = f"carrier_{order.pk}", f"tracking_{order.pk}"
            if carrier_field in cleaned and not (cleaned[carrier_field] or cleaned.get("carrier")):
                self.add_error(carrier_field, f"Order {order.pk} ships to an address: enter its carrier.")
            if tracking_field in cleaned and not cleaned[tracking_field]:
                self.add_error(tracking_field, f"Order {order.pk} ships to an address: enter its tracking number.")
        return cleaned

    def shipment(self, order: RedemptionOrder) -> tuple[str, str]:
        """(carrier, tracking number) to record for an order; ("", "") for one that cannot be fulfilled."""
        if f"tracking_{order.pk}" not in self.cleaned_data:
            return "", ""
        tracking = self.cleaned_data[f"tracking_{order.pk}"]
        carrier = self.cleaned_data[f"carrier_{order.pk}"]
        if not carrier and (tracking or order.needs_shipping):
            carrier = self.cleaned_data["carrier"]
        return carrier, tracking
