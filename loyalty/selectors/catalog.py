"""Reads of the product catalogue: the product boxes of the claim form look products up here."""

from django.db.models import Q

from loyalty.common.keys import matching_key
from loyalty.models import Product

PRODUCT_SUGGESTIONS = 8


def product_search(*, term: str, limit: int = PRODUCT_SUGGESTIONS) -> list[Product]:
    """Active products whose SKU or name contains `term`, SKU matches first (one query)."""
    term = term.strip()
    if not term:
        return []
    products = Product.objects.filter(is_active=True).filter(Q(sku__icontains=term) | Q(name__icontains=term))
    return list(products.only("pk", "sku", "name").order_by("sku")[:limit])


def product_lookup(text: str) -> tuple[Product | None, str]:
    """The active product a line's product box names: "SKU — name" (a suggestion), a SKU, a name, or a piece
    of one that matches exactly one product. Returns (product, "") or (None, what is wrong)."""
    text = " ".join(text.split())
    if not text:
        return None, "Choose a product."
    sku = text.split(" — ", 1)[0].strip()
    active = Product.objects.filter(is_active=True)
    exact = list(active.filter(Q(sku_key=matching_key(sku)) | Q(name__iexact=text))[:2])
    if len(exact) == 1:
        return exact[0], ""
    partial = list(active.filter(Q(sku__icontains=text) | Q(name__icontains=text)).order_by("sku")[:2])
    if len(partial) == 1:
        return partial[0], ""
    if partial or len(exact) > 1:
        return None, f"Several products match “{text}”: pick one from the list or type its SKU."
    return None, f"No product in the catalogue matches “{text}”. Type the SKU printed on the invoice."
