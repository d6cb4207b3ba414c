"""Small helpers the test modules share (fixtures live in the conftest.py files)."""

from django.contrib.messages import get_messages


def messages_of(response) -> list[str]:
    """The flash messages a response's request left for the next page."""
    return [str(message) for message in get_messages(response.wsgi_request)]
