"""Extension points for the apps above partners, which partners itself may not import.

An app registers a handler in its AppConfig.ready(); partners calls it inside the same transaction as
the change, so the whole move succeeds or fails together.
"""

from collections.abc import Callable

member_left_handlers: list[Callable] = []


def on_member_left(handler: Callable) -> Callable:
    """`handler(*, member, actor)` runs when a membership that had joined becomes `left`."""
    if handler not in member_left_handlers:
        member_left_handlers.append(handler)
    return handler
