"""A minimal one-page PDF writer (no dependency): lines of text in the standard Helvetica fonts, and rectangles.

Enough for a certificate. The text uses the fonts every PDF reader has built in (Helvetica, Helvetica-Bold) with
WinAnsiEncoding, so it covers Western European languages (Latin-1 plus the typographic quotes, dashes and €);
a Latin letter outside WinAnsi (Polish "ł", "ę", Czech "ř") is written without its accent, any other character
(Greek, Cyrillic, CJK, Persian) as "?" — embedding a font would lift that limit. Streams are not compressed, so
the text can be found in the bytes (tests look for a name).
"""

import unicodedata
from dataclasses import dataclass
from datetime import datetime

# Page sizes in points (1/72 inch).
A4_LANDSCAPE = (842, 595)
A4_PORTRAIT = (595, 842)

REGULAR, BOLD = "F1", "F2"
FONTS = {REGULAR: "Helvetica", BOLD: "Helvetica-Bold"}

# Glyph widths (1/1000 of the font size) of the printable ASCII characters (32–126), from Adobe's font metrics;
# other characters count as their letter without accents, else as a digit's width. Used to centre lines.
_ASCII = "".join(chr(code) for code in range(32, 127))
_WIDTHS_REGULAR = (
    [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278]
    + [556] * 10
    + [278, 278, 584, 584, 584, 556, 1015]
    + [667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833]
    + [722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611]
    + [278, 278, 278, 469, 556, 333]
    + [556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833]
    + [556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500]
    + [334, 260, 334, 584]
)
_WIDTHS_BOLD = (
    [278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278]
    + [556] * 10
    + [333, 333, 584, 584, 584, 611, 975]
    + [722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833]
    + [722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611]
    + [333, 278, 333, 584, 556, 333]
    + [556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889]
    + [611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500]
    + [389, 280, 389, 584]
)
WIDTHS = {REGULAR: dict(zip(_ASCII, _WIDTHS_REGULAR, strict=True)), BOLD: dict(zip(_ASCII, _WIDTHS_BOLD, strict=True))}
DEFAULT_WIDTH = 556
ENCODING = "cp1252"  # PDF's WinAnsiEncoding


@dataclass(frozen=True)
class Text:
    """One line of text; `x` is its left edge, or its centre with `centred`; `y` its baseline (from the bottom)."""

    text: str
    x: float
    y: float
    size: float = 12
    font: str = REGULAR
    centred: bool = False
    grey: float = 0  # 0 black … 1 white


@dataclass(frozen=True)
class Box:
    """A rectangle's outline: lower-left corner, width and height, line width, grey level."""

    x: float
    y: float
    width: float
    height: float
    line_width: float = 1
    grey: float = 0


# Latin letters outside WinAnsi that do not decompose into a base letter and an accent.
_PLAIN_LETTERS = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i"})


def _plain(character: str) -> str:
    """A character outside WinAnsi as the nearest one inside: the letter without its accent ("ę" → "e"), else "?"."""
    base = unicodedata.normalize("NFKD", character.translate(_PLAIN_LETTERS))
    kept = "".join(c for c in base if not unicodedata.combining(c))
    return kept if kept and kept.encode(ENCODING, errors="ignore").decode(ENCODING) == kept else "?"


def encodable(text: str) -> str:
    """`text` as the page can show it: a Latin letter outside WinAnsi loses its accent ("Bałtyk Zmiękczacze" →
    "Baltyk Zmiekczacze"); any other character outside it becomes "?"."""
    return "".join(c if c.encode(ENCODING, errors="ignore") else _plain(c) for c in text)


def text_width(text: str, *, size: float, font: str = REGULAR) -> float:
    widths = WIDTHS[font]
    total = 0
    for char in encodable(text):
        width = widths.get(char)
        if width is None:
            base = unicodedata.normalize("NFKD", char)[:1]
            width = widths.get(base, DEFAULT_WIDTH)
        total += width
    return total * size / 1000


def fit(text: str, *, size: float, font: str = REGULAR, width: float, smallest: float = 8) -> float:
    """The largest font size up to `size` (down to `smallest`) at which `text` fits in `width`."""
    while size > smallest and text_width(text, size=size, font=font) > width:
        size -= 1
    return size


def _literal(text: str) -> bytes:
    """A PDF string literal: the text in WinAnsi, with (, ) and \\ escaped."""
    raw = encodable(text).encode(ENCODING)
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _number(value: float) -> bytes:
    return f"{value:.2f}".rstrip("0").rstrip(".").encode() or b"0"


def _content(items: list[Text | Box]) -> bytes:
    ops = []
    for item in items:
        if isinstance(item, Box):
            ops.append(
                b"%s G %s w %s %s %s %s re S"
                % (
                    _number(item.grey),
                    _number(item.line_width),
                    _number(item.x),
                    _number(item.y),
                    _number(item.width),
                    _number(item.height),
                )
            )
            continue
        x = item.x - text_width(item.text, size=item.size, font=item.font) / 2 if item.centred else item.x
        ops.append(
            b"BT %s g /%s %s Tf %s %s Td %s Tj ET"
            % (
                _number(item.grey),
                item.font.encode(),
                _number(item.size),
                _number(x),
                _number(item.y),
                _literal(item.text),
            )
        )
    return b"\n".join(ops) + b"\n"


def one_page_pdf(items: list[Text | Box], *, size: tuple[int, int] = A4_LANDSCAPE, title: str = "") -> bytes:
    """A PDF document of one page of `size` showing `items`, with `title` in its properties."""
    content = _content(items)
    width, height = size
    fonts = b" ".join(b"/%s %d 0 R" % (name.encode(), 4 + i) for i, name in enumerate(FONTS))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << %s >> >> /Contents 6 0 R >>"
        % (width, height, fonts),
        *(
            b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>" % base.encode()
            for base in FONTS.values()
        ),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Title %s /Producer (Partner Loyalty) /CreationDate (D:%s) >>"
        % (_literal(title), datetime.now().strftime("%Y%m%d%H%M%S").encode()),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)
