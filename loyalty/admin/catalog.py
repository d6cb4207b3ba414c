"""The back office for the product catalogue.

Product lines and products are plain reference data, edited with validated model forms; a whole catalogue
comes in through "Import products from CSV" (loyalty.services.catalog: all or nothing, every bad row
reported). Query counts are pinned in tests/loyalty/test_admin_catalog.py.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.urls import path, reverse

from loyalty.common.admin import ProgramManagerAdmin, admin_page, list_link
from loyalty.common.errors import ApplicationError
from loyalty.models import Product, ProductLine
from loyalty.services.catalog import COLUMNS, MAX_ROWS, products_import

# Products -------------------------------------------------------------------------------------------


@admin.register(ProductLine)
class ProductLineAdmin(ProgramManagerAdmin):
    # No deleting (the default): removing a line an incentive rule targets would silently widen that rule.
    list_display = ("name", "code", "product_count")
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}
    ordering = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(product_count=Count("products"))

    @admin.display(description="Products", ordering="product_count")
    def product_count(self, obj):
        return list_link("loyalty_product", obj.product_count, line__id__exact=obj.pk)


class ProductImportForm(forms.Form):
    file = forms.FileField(
        label="Catalogue file",
        help_text=(
            f"CSV (or .xlsx) with the columns {', '.join(COLUMNS)}; at most {MAX_ROWS:,} products. "
            "The first line names the columns."
        ),
    )
    dry_run = forms.BooleanField(
        label="Only check the file (write nothing)",
        required=False,
        help_text="Shows every problem and what would change, without changing the catalogue.",
    )


@admin.register(Product)
class ProductAdmin(ProgramManagerAdmin):
    list_display = ("sku", "name", "line", "launch_date", "is_active")
    list_filter = ("is_active", "line")
    list_select_related = ("line",)
    search_fields = ("=sku", "name")
    search_help_text = "An exact SKU, or words of the name."
    autocomplete_fields = ("line",)
    fields = (
        "sku",
        "name",
        "line",
        "launch_date",
        "unusual_quantity",
        ("claim_max_quantity", "claim_max_amount"),
        "is_active",
    )
    ordering = ("sku",)

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="loyalty_product_import"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a catalogue file: check every row; write all of them, or nothing and every problem."""
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        form = ProductImportForm(request.POST or None, request.FILES or None)
        result = None
        if form.is_bound and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = products_import(file=upload, name=upload.name, dry_run=form.cleaned_data["dry_run"])
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                if result.written:
                    self.message_user(request, _summary(result, done=True), level=messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:loyalty_product_changelist"))
        return admin_page(
            self,
            request,
            "admin/loyalty/product/import.html",
            title="Import products from CSV",
            form=form,
            fields=["file", "dry_run"],
            result=result,
            summary=_summary(result, done=False) if result is not None and result.ok else "",
            columns=COLUMNS,
        )


def _summary(result, *, done: bool) -> str:
    verbs = ("created", "updated", "unchanged") if done else ("to create", "to update", "unchanged")
    counts = (result.created, result.updated, result.unchanged)
    text = ", ".join(f"{count:,} {verb}" for count, verb in zip(counts, verbs, strict=True))
    if result.lines_created:
        new = "new product lines" if len(result.lines_created) > 1 else "a new product line"
        text += f"; {new}{'' if done else ' to create'}: {', '.join(result.lines_created)}"
    rows = f"{result.rows:,} row{'s' if result.rows != 1 else ''}"
    prefix = "Products imported" if done else f"The file is fine ({rows})"
    return f"{prefix}: {text}."
