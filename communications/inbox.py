"""Writes of the member's inbox: marking messages read. The bell's cached count is forgotten at once (the page
answering the change shows the new count) and again once the change commits (a request that counted in between
cached the old number)."""

from django.db import transaction
from django.utils import timezone

from communications.models import Delivery
from communications.selectors import inbox_forget_unread_counts, inbox_list
from partners.visibility import viewer_for


@transaction.atomic
def inbox_mark_read(*, viewer, delivery_id: int) -> Delivery:
    """Mark one of the viewer's messages read; a message read before keeps its first reading time. Someone else's
    message raises Delivery.DoesNotExist, as if it did not exist."""
    message = inbox_list(viewer=viewer).get(pk=delivery_id)
    if message.read_at is None:
        now = timezone.now()
        # Conditional, so that two taps at once keep one reading time.
        if Delivery.objects.filter(pk=message.pk, read_at__isnull=True).update(read_at=now, updated_at=now):
            message.read_at = now
            _forget_count(message.member_id)
    return message


@transaction.atomic
def inbox_mark_all_read(*, viewer) -> int:
    """Mark every unread message of the viewer's read; returns how many."""
    now = timezone.now()
    marked = inbox_list(viewer=viewer).filter(read_at__isnull=True).update(read_at=now, updated_at=now)
    if marked:
        _forget_count(viewer_for(viewer).member.pk)
    return marked


def _forget_count(member_id: int) -> None:
    inbox_forget_unread_counts([member_id])
    transaction.on_commit(lambda: inbox_forget_unread_counts([member_id]))
