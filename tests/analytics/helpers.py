"""What the roll-up tests share: a clock that puts rows on chosen local moments, claims as members send them, and
the roll-up tables read back as plain dictionaries."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from loyalty.demo.program import DemoClock
from loyalty.services import claims

DIMENSIONS = {"day", "program_id", "partner_id", "role_id", "region_id", "product_line_id", "channel", "kind"}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """The moment `day` at hour:minute in the site's time zone."""
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def at_minute(day: date, minute: int) -> datetime:
    return local(day) - timedelta(hours=12) + timedelta(minutes=minute)


def clock(at: datetime):
    """`with clock(at):` timezone.now() is `at`, and new rows are created then (points entries included)."""
    return DemoClock(at).running()


def submit(member, program, lines, *, number: str, invoice_date: date):
    """A claim as its member sends it: lines are (product, quantity, amount)."""
    return claims.claim_submit(
        member=member,
        program=program,
        invoice_number=number,
        invoice_date=invoice_date,
        document=SimpleUploadedFile("invoice.jpg", JPEG, content_type="image/jpeg"),
        lines=[(product, Decimal(quantity), Decimal(amount)) for product, quantity, amount in lines],
    )


def rows_of(model, *, first: date | None = None, last: date | None = None) -> dict[tuple, tuple]:
    """A roll-up table as {dimensions: measures}, optionally for days first..last only."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
    dimensions = [name for name in names if name in DIMENSIONS]
    measures = [name for name in names if name not in DIMENSIONS]
    queryset = model.objects.all()
    if first is not None:
        queryset = queryset.filter(day__range=(first, last))
    return {
        tuple(row[name] for name in dimensions): tuple(row[name] for name in measures)
        for row in queryset.values(*dimensions, *measures)
    }
