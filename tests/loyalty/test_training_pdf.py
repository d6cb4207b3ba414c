"""The minimal PDF writer of certificates (loyalty.common.pdf): a well-formed one-page document whose cross-reference
table points at its objects, text in WinAnsi with accents dropped from the Latin letters it lacks and "?" for the
rest, special characters escaped."""

import re

from loyalty.common.pdf import BOLD, Box, Text, encodable, one_page_pdf, text_width


def objects_at_their_offsets(pdf: bytes) -> bool:
    start = int(re.search(rb"startxref\n(\d+)\n%%EOF", pdf).group(1))
    assert pdf[start:].startswith(b"xref\n")
    count = int(re.match(rb"xref\n0 (\d+)\n", pdf[start:]).group(1))
    rows = re.findall(rb"(\d{10}) 00000 n \n", pdf[start:])
    assert len(rows) == count - 1
    return all(pdf[int(offset) :].startswith(b"%d 0 obj\n" % number) for number, offset in enumerate(rows, start=1))


def test_a_page_is_a_pdf_whose_cross_references_point_at_its_objects():
    pdf = one_page_pdf([Box(10, 10, 100, 50), Text("Hello", 20, 20, size=12, font=BOLD)], title="Test")

    assert pdf.startswith(b"%PDF-1.4\n")
    assert objects_at_their_offsets(pdf)
    assert b"/BaseFont /Helvetica /Encoding /WinAnsiEncoding" in pdf
    assert b"/F2 12 Tf 20 20 Td (Hello) Tj" in pdf
    length = int(re.search(rb"<< /Length (\d+) >>\nstream\n", pdf).group(1))
    stream = pdf.split(b"stream\n", 1)[1]
    assert stream[length:].startswith(b"\nendstream")


def test_latin_letters_outside_winansi_lose_their_accent_others_become_a_question_mark_and_parentheses_are_escaped():
    pdf = one_page_pdf([Text("Łukasz Müller (Köln) \\ “Pro” 5 €", 0, 0)])

    assert b"(Lukasz M\xfcller \\(K\xf6ln\\) \\\\ \x93Pro\x94 5 \x80) Tj" in pdf
    assert encodable("Bałtyk Zmiękczacze, Łódź, Dvořák") == "Baltyk Zmiekczacze, Lódz, Dvorák"
    assert encodable("Ωmega 東京") == "?mega ??"


def test_centred_text_is_placed_by_its_width():
    width = text_width("Certificate", size=40, font=BOLD)

    pdf = one_page_pdf([Text("Certificate", 421, 440, size=40, font=BOLD, centred=True)])

    assert round(width, 2) == 195.6  # Helvetica-Bold: C 722, e 556, r 389, t 333, i 278, f 333, c 556, a 556
    assert b"/F2 40 Tf 323.2 440 Td (Certificate) Tj" in pdf
