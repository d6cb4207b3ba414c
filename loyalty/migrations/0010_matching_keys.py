"""Matching keys and paid quantities (issue #10, points 2 and 1).

Keys: every claim's invoice number, sell-out line's external id and invoice number, product's SKU and partner
alias's code gets its matching key (loyalty.common.keys.matching_key: NFKC, no format or control characters, no
spaces, one dash, case-folded) stored next to what was typed, and the unique constraints and indexes move to the
keys. (partners 0003 does the same for legal ids.)

Collisions, where rows' keys become equal although they should be unique, are printed during migrate and the
migration goes on:
- two lines of one sell-out source whose external ids read the same, two products whose SKUs do, two aliases of
  one source whose codes do: the oldest keeps its key; the others get a key that matches nothing (the key, " #"
  and the row's id; a real key has no space), so that the new unique constraints hold. Their data and points stay
  as they are; a product or alias set apart is refused when edited until its code no longer collides, and an
  import matches the oldest one.
- two claims of one partner for the same invoice (not withdrawn): printed only, both stay as they are (the duplicate
  check refuses a third); what is paid from now on follows the one-sale rule.

Paid quantities: what was posted before counts as paid in full (every sell-out line with a positive quantity, every
line of an approved claim), so that nothing of a sale paid before pays again, even if it was paid twice then.
"""

from django.db import migrations, models
from django.db.models import F

import loyalty.common.keys
from loyalty.common.keys import fill_keys, key_collisions, set_keys_apart


def key_field(of: str, **extra):
    return loyalty.common.keys.MatchingKeyField(
        blank=True, db_collation="C", default="", editable=False, of=of, **extra
    )


def _report(what: str, groups) -> None:
    for group in groups:
        rows = ", ".join(f"{typed!r} (id {pk})" for pk, typed in group)
        print(f"\n  Matching keys: {what} read the same: {rows}.", end="")


def fill(apps, schema_editor):
    claim, line = apps.get_model("loyalty", "SalesClaim"), apps.get_model("loyalty", "SaleLine")
    product, alias = apps.get_model("loyalty", "Product"), apps.get_model("loyalty", "PartnerAlias")
    fill_keys(claim, ["invoice_key"])
    fill_keys(line, ["external_key", "invoice_key"])
    fill_keys(product, ["sku_key"])
    fill_keys(alias, ["code_key"])
    for model, field, within, what in (
        (line, "external_key", ("source",), "sell-out lines of one source (the later ones set apart)"),
        (product, "sku_key", (), "products' SKUs (the later ones set apart)"),
        (alias, "code_key", ("source",), "aliases of one source (the later ones set apart)"),
    ):
        groups = key_collisions(model, field, within=within)
        _report(what, groups)
        set_keys_apart(model, field, groups)
    live = claim.objects.exclude(status="withdrawn")
    _report(
        "invoice numbers of one partner's claims",
        key_collisions(claim, "invoice_key", within=("program", "partner"), rows=live),
    )
    line.objects.filter(quantity__gt=0).update(paid_quantity=F("quantity"))
    apps.get_model("loyalty", "ClaimLine").objects.filter(claim__status="approved").update(paid_quantity=F("quantity"))
    # The foreign keys' deferred checks of the rows updated, now: the constraints below alter these tables.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0009_claim_plausibility"),
    ]

    operations = [
        migrations.AddField(
            model_name="claimline",
            name="paid_quantity",
            field=models.DecimalField(
                decimal_places=3,
                default=0,
                help_text="The part of the quantity that earned when the claim was approved: one sale pays once "
                "(loyalty.selectors.one_sale).",
                max_digits=12,
            ),
        ),
        migrations.AddField(model_name="partneralias", name="code_key", field=key_field("code")),
        migrations.AddField(model_name="product", name="sku_key", field=key_field("sku")),
        migrations.AddField(model_name="saleline", name="external_key", field=key_field("external_id")),
        migrations.AddField(model_name="saleline", name="invoice_key", field=key_field("invoice_number")),
        migrations.AddField(
            model_name="saleline",
            name="paid_quantity",
            field=models.DecimalField(
                decimal_places=3,
                default=0,
                help_text="The part of the quantity that earned: one sale pays once (loyalty.selectors.one_sale).",
                max_digits=12,
            ),
        ),
        migrations.AddField(
            model_name="salesclaim",
            name="invoice_key",
            field=key_field("invoice_number", help_text="The invoice number as it is compared."),
        ),
        migrations.AlterField(
            model_name="salesclaim",
            name="invoice_number",
            field=models.CharField(help_text="As the member typed it.", max_length=60),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(model_name="partneralias", name="partner_alias_unique"),
        migrations.RemoveConstraint(model_name="saleline", name="sale_line_once_per_source"),
        migrations.RemoveIndex(model_name="saleline", name="sale_line_claim_match_idx"),
        migrations.RemoveIndex(model_name="salesclaim", name="loyalty_sal_invoice_41a799_idx"),
        migrations.AddIndex(
            model_name="saleline",
            index=models.Index(fields=["partner", "invoice_key", "product"], name="sale_line_claim_match_idx"),
        ),
        migrations.AddIndex(
            model_name="salesclaim",
            index=models.Index(fields=["program", "invoice_key"], name="claim_invoice_key_idx"),
        ),
        migrations.AddConstraint(
            model_name="partneralias",
            constraint=models.UniqueConstraint(fields=("source", "code_key"), name="partner_alias_unique"),
        ),
        migrations.AddConstraint(
            model_name="product",
            constraint=models.UniqueConstraint(fields=("sku_key",), name="product_sku_key_unique"),
        ),
        migrations.AddConstraint(
            model_name="saleline",
            constraint=models.UniqueConstraint(fields=("source", "external_key"), name="sale_line_once_per_source"),
        ),
    ]
