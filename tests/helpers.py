"""Small helpers the test modules share (fixtures live in the conftest.py files)."""

import re

from django.contrib.messages import get_messages


def messages_of(response) -> list[str]:
    """The flash messages a response's request left for the next page."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def visible(response) -> str:
    """The page's text as read: tags, styles and scripts removed, whitespace collapsed."""
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
