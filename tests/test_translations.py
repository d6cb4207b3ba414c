"""The German translation (locale/de/LC_MESSAGES): every message of the member site is translated, nothing is left
fuzzy, each translation keeps its placeholders, the committed .mo says what the .po says (docs/decisions.md: the
.mo is committed, compiled with Babel, so a new machine needs no GNU gettext), and a German member reads the site
in German while an English one reads it in English."""

import re
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.urls import reverse

from tests.partners.factories import MemberFactory

LOCALE = Path(settings.BASE_DIR) / "locale" / "de" / "LC_MESSAGES"
# %(name)s and %s (gettext), {name} (str.format); "%%" is a literal percent sign, not a placeholder.
PLACEHOLDER = re.compile(r"%\([^)]+\)[a-z]|%[a-z]|\{[a-z_]*\}")
# Messages of the back office (admin templates and modules) may wait for a translation; these may not.
ALL_TRANSLATED_SHARE = 0.95


def catalog():
    with (LOCALE / "django.po").open("rb") as po:
        return read_po(po, locale="de")


def messages(cat) -> list:
    return [message for message in cat if message.id]


def forms(text) -> list[str]:
    """A message's id or string as a list: one form, or the singular and the plurals."""
    return [text] if isinstance(text, str) else list(text)


def is_translated(message) -> bool:
    return all(forms(message.string))


def is_back_office(message) -> bool:
    return all(path.startswith("templates/admin/") or "/admin" in path for path, _line in message.locations)


def test_the_catalogue_is_german_with_german_plural_forms_and_no_fuzzy_entry():
    cat = catalog()

    assert str(cat.locale) == "de"
    assert cat.plural_forms == "nplurals=2; plural=(n != 1);"
    assert not cat.fuzzy
    assert [message.id for message in messages(cat) if message.fuzzy] == []


def test_every_message_of_the_member_site_is_translated():
    cat = catalog()
    member_site = [message for message in messages(cat) if not is_back_office(message)]

    assert len(member_site) > 700  # the templates, forms, services' refusals and messages, labels
    assert [message.id for message in member_site if not is_translated(message)] == []


def test_nearly_every_message_of_the_back_office_is_translated_too():
    every = messages(catalog())

    assert sum(map(is_translated, every)) / len(every) >= ALL_TRANSLATED_SHARE


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def test_each_translation_keeps_the_placeholders_of_its_message():
    wrong = []
    for message in filter(is_translated, messages(catalog())):
        ids, strings = forms(message.id), forms(message.string)
        if len(ids) == 1:
            kept = placeholders(strings[0]) == placeholders(ids[0])
        else:  # the plural keeps the plural's; the singular may leave the count out, as "a reward" does
            known = placeholders(ids[0]) | placeholders(ids[1])
            kept = placeholders(strings[-1]) == placeholders(ids[1]) and all(placeholders(s) <= known for s in strings)
        if not kept:
            wrong.append((message.id, message.string))

    assert wrong == []


def as_entries(cat) -> dict:
    """The catalogue's translated messages: (id forms, context) -> string forms."""
    entries = (message for message in cat if message.id and is_translated(message))
    return {(tuple(forms(m.id)), m.context): tuple(forms(m.string)) for m in entries}


def test_the_committed_mo_says_what_the_po_says():
    with (LOCALE / "django.mo").open("rb") as mo:
        compiled = read_mo(mo)

    # After editing the .po: .venv/bin/pybabel compile -d locale -D django -l de
    assert as_entries(compiled) == as_entries(catalog())


@pytest.mark.django_db
def test_a_german_member_reads_the_home_page_in_german(client):
    member = MemberFactory(language="de", user__full_name="Ana Kovač")
    client.force_login(member.user)

    page = client.get(reverse("home"), headers={"accept-language": "en"}).content.decode()

    assert '<html lang="de">' in page
    assert "Hallo, Ana" in page
    assert "Wer ich bin" in page and "Was ich als Nächstes tun kann" in page
    assert ">Abmelden</button>" in page
    assert "Who I am" not in page and "Sign out" not in page


@pytest.mark.django_db
def test_an_english_member_reads_the_same_page_in_english(client):
    member = MemberFactory(language="en", user__full_name="Ana Kovač")
    client.force_login(member.user)

    page = client.get(reverse("home"), headers={"accept-language": "de"}).content.decode()

    assert "Hello, Ana" in page and "Who I am" in page and "What I can do next" in page
    assert "Wer ich bin" not in page
