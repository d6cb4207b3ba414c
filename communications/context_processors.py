from functools import cached_property

from communications.selectors import inbox_unread_count


class InboxBell:
    """The navigation's bell: the unread count is read (from the cache, or with one query) only if a page shows
    it, and once per request."""

    def __init__(self, request):
        self.request = request

    @cached_property
    def unread(self) -> int:
        return inbox_unread_count(viewer=getattr(self.request, "user", None))


def inbox(request):
    return {"inbox_bell": InboxBell(request)}
