"""Matching keys (issue #10, point 2): invoice numbers, sell-out external ids, SKUs, legal ids and alias codes are
compared by one key (loyalty.common.keys.matching_key), stored next to what was typed, so invisible or look-alike
characters no longer make a claimed invoice, an imported line or a known SKU look new."""

from decimal import Decimal
from importlib import import_module

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, migrations, models, transaction
from django.db.migrations.loader import MigrationLoader
from hypothesis import given
from hypothesis import strategies as st

from loyalty.common.errors import ApplicationError
from loyalty.common.keys import matching_key
from loyalty.constants import ClaimStatus
from loyalty.models import ClaimLine, PartnerAlias, PointsEntry, Product, SaleLine, SalesClaim, SalesSource
from loyalty.services.catalog import products_import
from loyalty.services.sellout.aliases import AliasPair, aliases_save
from partners import services as partner_services
from partners.models import Partner
from tests.loyalty.factories import ProductFactory, ProgramFactory, RuleFactory
from tests.loyalty.test_claims_services import refused, submit
from tests.loyalty.test_imports import World
from tests.partners.factories import MemberFactory, PartnerFactory, ProgramManagerFactory

pytestmark = pytest.mark.usefixtures("private_media")

ZWSP, SOFT_HYPHEN, WORD_JOINER, EN_DASH, NB_HYPHEN = "\u200b", "\u00ad", "\u2060", "\u2013", "\u2011"


def full_width(text: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


VARIANTS = {
    "zero-width space after": f"INV-ZW-z1{ZWSP}",
    "soft hyphen inside": f"INV-Z{SOFT_HYPHEN}W-z1",
    "word joiner in front": f"{WORD_JOINER}INV-ZW-z1",
    "full-width digits": "INV-ZW-z" + full_width("1"),
    "all full-width": full_width("INV-ZW-z1"),
    "en dashes": f"INV{EN_DASH}ZW{EN_DASH}z1",
    "other case and spaces": " inv-zw-Z1\u00a0",
}


# The key ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_variant_of_an_identifier_has_its_key(typed):
    assert matching_key(typed) == matching_key("INV-ZW-z1") == "inv-zw-z1"


def test_different_identifiers_keep_different_keys():
    keys = [matching_key(text) for text in ("INV-1", "INV-11", "INV1", "INV-I", "INV-O1", "INV-01", "")]
    assert len(set(keys)) == len(keys)


@given(st.text())
def test_a_key_is_its_own_key_and_never_has_a_space(text):
    key = matching_key(text)
    assert matching_key(key) == key
    assert not any(char.isspace() for char in key)


# Claims -------------------------------------------------------------------------------------------------------


@pytest.fixture
def program():
    return ProgramFactory(claim_window_days=60, claim_auto_approve_below=Decimal("500.00"))


@pytest.mark.django_db
@pytest.mark.parametrize("typed", VARIANTS.values(), ids=VARIANTS.keys())
def test_an_already_claimed_invoice_typed_with_invisible_or_look_alike_characters_is_refused(program, typed):
    RuleFactory(program=program)
    member = MemberFactory()
    first = submit(member, program, number="INV-ZW-z1", lines=[(ProductFactory(), Decimal("1"), Decimal("10"))])
    assert first.status == ClaimStatus.APPROVED

    error = refused("duplicate_invoice", lambda: submit(MemberFactory(partner=member.partner), program, number=typed))

    assert error.extra == {"claim_id": first.pk}
    assert error.message.startswith(f"Invoice INV-ZW-z1 is already claimed in claim {first.pk} (approved,")
    assert SalesClaim.objects.count() == 1
    assert PointsEntry.objects.count() == 1


@pytest.mark.django_db
def test_a_claim_keeps_the_number_as_typed_next_to_its_key(program):
    claim = submit(MemberFactory(), program, number=f" inv{EN_DASH}77{ZWSP} ")
    assert (claim.invoice_number, claim.invoice_key) == (f"inv{EN_DASH}77{ZWSP}", "inv-77")


@pytest.mark.django_db
def test_a_number_of_nothing_but_invisible_characters_is_missing(program):
    refused("invoice_number_missing", lambda: submit(MemberFactory(), program, number=f"{ZWSP}{WORD_JOINER} "))
    assert not SalesClaim.objects.exists()


@pytest.mark.django_db
def test_another_partner_claiming_a_variant_of_the_invoice_is_flagged_as_a_duplicate(program):
    submit(MemberFactory(), program, number="INV-ZW-z1")
    other = submit(MemberFactory(), program, number=VARIANTS["en dashes"])
    assert other.flags == ["duplicate_other_partner"]


# Sell-out ----------------------------------------------------------------------------------------------------


@pytest.fixture
def world(db):
    return World()


@pytest.mark.parametrize("again", [f"L-1{ZWSP}", "l-1", f"L{NB_HYPHEN}1", full_width("L-1")])
def test_a_line_sent_again_with_another_spelling_of_its_external_id_is_already_imported(world, again):
    first = world.run([world.line("L-1")])
    assert (first.new_lines, world.balance()) == (1, 100)

    second = world.run([world.line(again)])

    assert (second.new_lines, second.duplicate_lines, second.points_posted) == (0, 1, 0)
    assert world.balance() == 100
    assert SaleLine.objects.count() == 1


def test_two_spellings_of_one_external_id_in_one_file_are_one_line(world):
    imp = world.run([world.line("L-1"), world.line(f"l{EN_DASH}1")])
    assert (imp.new_lines, imp.error_rows) == (1, 1)
    assert imp.errors[0]["reason"] == "appears more than once in this file: only its first line is imported"


def test_skus_legal_ids_and_alias_codes_match_whatever_their_spelling(world):
    PartnerAlias.objects.create(source=world.source, code="C-100", partner=PartnerFactory())
    legal_id = world.partner.legal_id.lower() + ZWSP
    imp = world.run(
        [
            world.line("L1", sku=f"aq{EN_DASH}1", partner=legal_id),
            world.line("L2", sku=full_width("AQ-1"), partner=f"c{NB_HYPHEN}100", rep=""),
        ]
    )
    assert (imp.new_lines, imp.error_rows) == (2, 0), imp.errors
    lines = dict(SaleLine.objects.values_list("external_id", "partner__legal_id"))
    assert lines == {"L1": world.partner.legal_id, "L2": PartnerAlias.objects.get().partner.legal_id}
    assert set(SaleLine.objects.values_list("product_id", flat=True)) == {world.product.pk}


def test_a_return_finds_its_line_by_another_spelling_of_its_id_or_invoice(world):
    world.run([world.line("L-1", qty="4", invoice="INV-9"), world.line("L-2", qty="4", invoice="INV-9")])
    imp = world.run(
        [
            world.line("R1", qty="-1", returns=f"l{EN_DASH}1"),
            world.line("R2", qty="-1", invoice=f"inv-9{ZWSP}"),
        ]
    )
    assert (imp.new_lines, imp.error_rows) == (2, 0), imp.errors
    assert world.balance() == 80 - 20


def test_a_line_whose_id_is_nothing_but_invisible_characters_is_refused(world):
    imp = world.run([world.line(f"{ZWSP}{WORD_JOINER}")])
    assert (imp.new_lines, imp.error_rows) == (0, 1)
    assert imp.errors[0]["reason"] == "is missing"


# Catalogue, partners, aliases ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_second_product_whose_sku_reads_the_same_is_refused():
    ProductFactory(sku="AQ-1")
    twin = Product(sku=f"aq{NB_HYPHEN}1", name="Twin", line=ProductFactory().line)
    with pytest.raises(ValidationError) as info:
        twin.full_clean()
    assert info.value.message_dict["sku"] == ["The product AQ-1 has the same SKU (spaces, dashes and case aside)."]
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()


@pytest.mark.django_db
def test_a_catalogue_file_updates_the_product_a_variant_sku_names():
    product = ProductFactory(sku="AQ-1", name="Old name")
    data = f"sku,name,line\naq{EN_DASH}1,New name,{product.line.name}\n".encode()
    result = products_import(file=SimpleUploadedFile("catalogue.csv", data), name="catalogue.csv")
    assert (result.created, result.updated, result.errors) == (0, 1, [])
    product.refresh_from_db()
    assert (Product.objects.count(), product.sku, product.name) == (1, "AQ-1", "New name")


@pytest.mark.django_db
def test_a_partner_whose_legal_id_reads_like_another_ones_is_refused():
    existing = PartnerFactory(legal_id="DE-123456")
    with pytest.raises(ApplicationError) as info:
        partner_services.partner_create(
            name="Twin", legal_id=f"de{NB_HYPHEN}123456{ZWSP}", kind=existing.kind, region=existing.region
        )
    assert info.value.code == "duplicate_legal_id"
    other = PartnerFactory()
    with pytest.raises(ApplicationError) as info:
        partner_services.partner_update(partner=other, actor=ProgramManagerFactory(), legal_id=f"de{EN_DASH}123456")
    assert info.value.code == "duplicate_legal_id"
    assert list(Partner.objects.filter(legal_id_key="de-123456")) == [existing]


@pytest.mark.django_db
def test_an_alias_uploaded_again_in_another_spelling_moves_the_alias_instead_of_adding_one():
    source = SalesSource.objects.create(program=ProgramFactory(), name="Feed", code="feed")
    first, second = PartnerFactory(), PartnerFactory()
    aliases_save(source=source, pairs=[AliasPair("C-100", first)])
    saved = aliases_save(source=source, pairs=[AliasPair(f"c{EN_DASH}100", second)])
    assert (saved.added, saved.changed) == (0, 1)
    assert list(PartnerAlias.objects.values_list("code", "partner")) == [("C-100", second.pk)]
    with pytest.raises(ValidationError):
        PartnerAlias(source=source, code=f"C-100{ZWSP}", partner=first).full_clean()


# The data migration -------------------------------------------------------------------------------------------

# The migrations that give rows their keys, and the unique constraints on the keys they add after their data step.
KEYS_MIGRATIONS = (("partners", "0003_partner_legal_id_key"), ("loyalty", "0010_matching_keys"))


def key_constraints() -> list[tuple[type, models.UniqueConstraint]]:
    """(model, constraint) for each AddConstraint of the keys migrations: what their data step has to make hold."""
    found = []
    for app_label, name in KEYS_MIGRATIONS:
        migration = import_module(f"{app_label}.migrations.{name}").Migration
        for operation in migration.operations:
            if isinstance(operation, migrations.AddConstraint):
                found.append((apps.get_model(app_label, operation.model_name), operation.constraint))
    return found


@pytest.mark.django_db
def test_the_migration_keys_existing_rows_reports_collisions_and_sets_the_later_ones_apart(capsys):
    """Rows stored before the keys existed: the migration gives each its key; where two keys that must be unique
    collide it prints both rows, keeps the oldest's key and gives the later one a key that matches nothing, so the
    unique constraints it adds next hold.

    The two migrations' data steps run here on their own, with their historical models, in the test's transaction:
    the rows are put back as they were before (the constraints on the keys dropped, the keys and paid quantities as
    the added columns' defaults, spellings the old code let in), each step runs, and the constraints are added again."""
    program = ProgramFactory()
    source = SalesSource.objects.create(program=program, name="Feed", code="feed")
    member = MemberFactory()
    aq1, aq2 = ProductFactory(sku="AQ-1"), ProductFactory(sku="AQ-2")
    de1, de2 = PartnerFactory(legal_id="DE-100"), PartnerFactory(legal_id="DE-200")
    alias1 = PartnerAlias.objects.create(source=source, code="C-1", partner=de1)
    alias2 = PartnerAlias.objects.create(source=source, code="C-2", partner=de2)
    lines = [
        SaleLine.objects.create(
            source=source, external_id=f"L-{n}", partner=member.partner, product=aq1, quantity=Decimal(2),
            amount=Decimal(10), invoice_number="INV-1", invoice_date=program.starts_on,
        )
        for n in (1, 2)
    ]  # fmt: skip
    claims = [
        SalesClaim.objects.create(
            program=program, member=member, partner=member.partner, invoice_number=f"INV-{n}",
            invoice_date=program.starts_on, status=ClaimStatus.APPROVED, document="claims/x.pdf",
        )
        for n in (1, 2)
    ]  # fmt: skip
    claim_line = ClaimLine.objects.create(claim=claims[0], product=aq1, quantity=Decimal(3), amount=Decimal(30))
    constraints = key_constraints()
    assert {constraint.name for _, constraint in constraints} == {
        "partner_legal_id_key_unique",
        "partner_alias_unique",
        "product_sku_key_unique",
        "sale_line_once_per_source",
    }

    with connection.schema_editor() as editor:
        editor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign key checks on the tables altered
        for model, constraint in constraints:
            editor.remove_constraint(model, constraint)
    with connection.cursor() as cursor:
        for table, column, pk, value in (  # what the old code let in: spellings that were different strings
            ("loyalty_product", "sku", aq2.pk, f"aq{NB_HYPHEN}1"),
            ("partners_partner", "legal_id", de2.pk, f"de{EN_DASH}100"),
            ("loyalty_partneralias", "code", alias2.pk, f"c{ZWSP}-1"),
            ("loyalty_saleline", "external_id", lines[1].pk, "l-1"),
            ("loyalty_salesclaim", "invoice_number", claims[1].pk, f"INV-1{ZWSP}"),
        ):
            cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])
        for table, added in (  # the columns the migrations add, at their defaults
            ("loyalty_product", "sku_key = ''"),
            ("partners_partner", "legal_id_key = ''"),
            ("loyalty_partneralias", "code_key = ''"),
            ("loyalty_saleline", "external_key = '', invoice_key = '', paid_quantity = 0"),
            ("loyalty_salesclaim", "invoice_key = ''"),
            ("loyalty_claimline", "paid_quantity = 0"),
        ):
            cursor.execute(f"UPDATE {table} SET {added}")
    historical = MigrationLoader(connection).project_state(KEYS_MIGRATIONS).apps
    capsys.readouterr()

    with connection.schema_editor() as editor:
        for app_label, name in KEYS_MIGRATIONS:
            import_module(f"{app_label}.migrations.{name}").fill(historical, editor)
        for model, constraint in constraints:
            editor.add_constraint(model, constraint)
    printed = capsys.readouterr().out

    for what, rows in (
        ("products' SKUs", [("AQ-1", aq1), (f"aq{NB_HYPHEN}1", aq2)]),
        ("partners' legal ids", [("DE-100", de1), (f"de{EN_DASH}100", de2)]),
        ("aliases of one source", [("C-1", alias1), (f"c{ZWSP}-1", alias2)]),
        ("sell-out lines of one source", [("L-1", lines[0]), ("l-1", lines[1])]),
    ):
        listed = ", ".join(f"{typed!r} (id {row.pk})" for typed, row in rows)
        assert f"Matching keys: {what} (the later ones set apart) read the same: {listed}." in printed
    listed = f"'INV-1' (id {claims[0].pk}), {'INV-1' + ZWSP!r} (id {claims[1].pk})"
    assert f"Matching keys: invoice numbers of one partner's claims read the same: {listed}." in printed
    assert dict(Product.objects.values_list("pk", "sku_key")) == {aq1.pk: "aq-1", aq2.pk: f"aq-1 #{aq2.pk}"}
    assert Partner.objects.get(pk=de2.pk).legal_id_key == f"de-100 #{de2.pk}"
    assert PartnerAlias.objects.get(pk=alias2.pk).code_key == f"c-1 #{alias2.pk}"
    assert list(SaleLine.objects.order_by("pk").values_list("external_key", "invoice_key", "paid_quantity")) == [
        ("l-1", "inv-1", Decimal(2)),
        (f"l-1 #{lines[1].pk}", "inv-1", Decimal(2)),
    ]
    assert set(SalesClaim.objects.values_list("invoice_key", flat=True)) == {"inv-1"}  # reported, both kept
    assert ClaimLine.objects.get(pk=claim_line.pk).paid_quantity == Decimal(3)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(sku=f"AQ{EN_DASH}1")
