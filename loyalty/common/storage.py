"""Private files: invoices of sales claims.

They live under settings.PRIVATE_MEDIA_ROOT, which no web server and no URL serves. A view that has
checked who may see the file (partners.visibility, or the back office's permissions) streams it with
`private_file_response`. What a file is, is decided by its first bytes, never by its name or by the
Content-Type the browser sent, and it is served with that type only.
"""

import os
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.http import FileResponse, Http404

# The largest invoice photo or PDF accepted.
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
# Bytes read to recognise a file.
SNIFF_BYTES = 32


@dataclass(frozen=True)
class DocumentKind:
    extension: str
    content_type: str
    label: str


JPEG = DocumentKind("jpg", "image/jpeg", "JPEG photo")
PNG = DocumentKind("png", "image/png", "PNG image")
WEBP = DocumentKind("webp", "image/webp", "WebP image")
HEIC = DocumentKind("heic", "image/heic", "HEIC photo")
PDF = DocumentKind("pdf", "application/pdf", "PDF")

# ISO base media brands of HEIC/HEIF pictures (what iPhones take).
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


def sniff(head: bytes) -> DocumentKind | None:
    """The kind of document whose first bytes are `head`, or None when it is not one we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return HEIC
    if head.startswith(b"%PDF-"):
        return PDF
    return None


def sniff_file(file) -> DocumentKind | None:
    """Recognise an open (uploaded or stored) file by its first bytes; the read position is restored."""
    position = file.tell() if hasattr(file, "tell") else 0
    try:
        file.seek(0)
        head = file.read(SNIFF_BYTES)
    finally:
        file.seek(position)
    return sniff(head or b"")


class PrivateStorage(FileSystemStorage):
    """A FileSystemStorage at settings.PRIVATE_MEDIA_ROOT (read on every use, so tests can move it)
    that refuses to make URLs: these files are served only through views that check the viewer."""

    @property
    def base_location(self):
        return settings.PRIVATE_MEDIA_ROOT

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    @property
    def base_url(self):
        return None

    def url(self, name):
        raise ValueError("Private files have no URL; serve them through a view that checks who may see them.")


_storage = PrivateStorage()


def private_storage() -> PrivateStorage:
    """The storage of FileFields holding private files (a callable, so migrations do not record a path)."""
    return _storage


def private_file_response(field_file, *, download_name: str) -> FileResponse:
    """Stream a private file inline, typed by its content. The caller has checked that the viewer may see it."""
    if not field_file:
        raise Http404("There is no file.")
    try:
        handle = field_file.storage.open(field_file.name, "rb")
    except FileNotFoundError:
        raise Http404("The file is missing.") from None
    kind = sniff_file(handle)
    if kind is None:  # never stored by our services; refuse rather than guess
        handle.close()
        raise Http404("The file is not a document we serve.")
    response = FileResponse(
        handle, as_attachment=False, filename=f"{download_name}.{kind.extension}", content_type=kind.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    if kind is not PDF:  # the browser's PDF viewer needs more than an image does
        response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    return response
