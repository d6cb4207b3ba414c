"""Good news about points brings the tip of the product line that earned them: an approved claim (its lines' main line
by points) and a sell-out import's digest (the line the member's own sales earned most from)."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bench.sellout import HEADER, MAPPING
from communications.constants import Channel, Kind
from communications.models import Delivery, MessageTemplate
from loyalty.models import SalesSource
from loyalty.services import claims
from loyalty.services.sellout.run import import_run, import_start
from tests.communications.factories import TipFactory
from tests.loyalty.factories import ProductFactory, ProductLineFactory, ProgramFactory, RuleFactory
from tests.partners.factories import MemberFactory, ProgramManagerFactory, role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("messages_out")]
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
SOFTENER_TIP = "Softeners: check the salt every month."


@pytest.fixture
def tips():
    """A tip about softeners, one about pumps and a general one; the inbox messages of `kind` end with the tip."""
    TipFactory(text=SOFTENER_TIP, product_line="softeners")
    TipFactory(text="Pumps: bleed the air first.", product_line="pumps")
    TipFactory(text="Claim every sale within 60 days.")

    def ending_with_the_tip(kind):
        MessageTemplate.objects.filter(kind=kind, channel=Channel.INBOX, language="en", role=None).update(
            body="{{ points }} points.{% if tip %} Did you know? {{ tip }}{% endif %}"
        )

    return ending_with_the_tip


def product(line_code: str, sku: str):
    return ProductFactory(sku=sku, line=ProductLineFactory(code=line_code, name=line_code.title()))


def inbox_body(kind, member) -> str:
    return Delivery.objects.get(kind=kind, member=member, channel=Channel.INBOX).body


def approved_claim(program, member, lines):
    """A claim of 100.00 a line, approved at once (under the program's 500.00 for approval without review)."""
    return claims.claim_submit(
        member=member,
        program=program,
        invoice_number=f"INV-{member.pk}",
        invoice_date=date.today(),
        document=SimpleUploadedFile("invoice.jpg", JPEG, content_type="image/jpeg"),
        lines=[(item, Decimal(quantity), Decimal("100.00")) for item, quantity in lines],
        colleagues=[],
    )


def test_an_approved_claim_brings_the_tip_of_the_product_line_that_earned_most(tips):
    tips(Kind.CLAIM_APPROVED)
    program = ProgramFactory()
    RuleFactory(program=program)  # 10 pts per unit
    softener, pump, cartridge = product("softeners", "SOFT-1"), product("pumps", "PUMP-1"), product("filters", "FIL-1")
    foreman, sales_rep = MemberFactory(role=role("foreman")), MemberFactory(role=role("sales"))

    approved_claim(program, foreman, [(pump, 1), (softener, 3)])
    approved_claim(program, sales_rep, [(cartridge, 2)])

    assert inbox_body(Kind.CLAIM_APPROVED, foreman) == f"40 points. Did you know? {SOFTENER_TIP}"
    assert inbox_body(Kind.CLAIM_APPROVED, sales_rep) == "20 points. Did you know? Claim every sale within 60 days."


def test_a_sales_import_digest_brings_the_tip_of_the_line_the_members_sales_earned_most(tips):
    tips(Kind.POINTS_IMPORTED)
    program = ProgramFactory()
    RuleFactory(program=program)  # 10 pts per unit
    product("softeners", "SOFT-1"), product("filters", "FIL-1")
    source = SalesSource.objects.create(program=program, name="Feed", code="dist", column_mapping=MAPPING)
    foreman, sales_rep = MemberFactory(role=role("foreman")), MemberFactory(role=role("sales"))
    day = date.today().isoformat()

    def line(ext, member, sku, qty):
        return ";".join([ext, member.partner.legal_id, f"M{member.pk}", sku, qty, "100.00", "INV-1", day, ""])

    rows = [line("L1", foreman, "FIL-1", "1"), line("L2", foreman, "SOFT-1", "2"), line("L3", sales_rep, "FIL-1", "4")]
    data = "\n".join([HEADER, *rows]).encode()
    sales_import = import_start(
        source=source, uploaded_file=SimpleUploadedFile("s.csv", data), user=ProgramManagerFactory()
    )

    import_run(sales_import.pk)

    assert inbox_body(Kind.POINTS_IMPORTED, foreman) == f"30 points. Did you know? {SOFTENER_TIP}"
    assert inbox_body(Kind.POINTS_IMPORTED, sales_rep) == "40 points. Did you know? Claim every sale within 60 days."
