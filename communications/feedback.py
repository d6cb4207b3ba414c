"""Feedback: a member writes to the program team (topic, text, an optional photo); a program manager answers once,
and the answer reaches the member as a FEEDBACK_ANSWERED message. `feedback_for` is what a member sees: their
own feedback only."""

import uuid

from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from communications.constants import FeedbackStatus, Kind
from communications.error_codes import ErrorCode
from communications.lock_objects import feedback_lock
from communications.models import Feedback
from communications.services import notify
from loyalty.common.errors import ApplicationError
from loyalty.common.storage import HEIC, JPEG, MAX_DOCUMENT_BYTES, PNG, WEBP, sniff_file
from partners.models import Member
from partners.visibility import viewer_for

PHOTO_KINDS = (JPEG, PNG, WEBP, HEIC)
# The feedback page lists a member's feedback this many at a time, newest first.
FEEDBACK_PAGE_SIZE = 10


def feedback_for(viewer) -> QuerySet[Feedback]:
    """The viewer's own feedback, newest first (none for staff: they answer in the back office)."""
    member = viewer_for(viewer).member
    if member is None:
        return Feedback.objects.none()
    return Feedback.objects.filter(member__user=member.user_id)


def photo_problem(photo) -> str:
    """Why an uploaded photo is refused ("" if it is fine): a photo (JPEG, PNG, WebP, HEIC) of at most 10 MB."""
    if photo.size > MAX_DOCUMENT_BYTES:
        return _("The photo is larger than 10 MB.")
    if sniff_file(photo) not in PHOTO_KINDS:
        return _("Attach a photo (JPEG, PNG, WebP or HEIC).")
    return ""


@transaction.atomic
def feedback_send(*, member: Member, topic: str, text: str, photo=None) -> Feedback:
    feedback = Feedback(member=member, topic=topic, text=text.strip())
    feedback.full_clean(exclude=["photo"])
    if photo:
        problem = photo_problem(photo)
        if problem:
            raise ApplicationError(problem, code=ErrorCode.FEEDBACK_PHOTO)
        kind = sniff_file(photo)
        photo.seek(0)
        feedback.photo.save(f"feedback-{uuid.uuid4().hex}.{kind.extension}", photo, save=False)
    feedback.save()
    return feedback


@transaction.atomic
def feedback_answer(*, feedback: Feedback, answer: str, actor) -> Feedback:
    """Answer a member's feedback (once) and tell them, after commit, on their channel."""
    locked = feedback_lock(feedback.pk)
    if locked.status == FeedbackStatus.ANSWERED:
        raise ApplicationError(_("This feedback was answered before."), code=ErrorCode.FEEDBACK_ANSWERED)
    if not answer.strip():
        raise ApplicationError(_("Write the answer first."), code=ErrorCode.ANSWER_MISSING)
    locked.answer, locked.status = answer.strip(), FeedbackStatus.ANSWERED
    locked.answered_by, locked.answered_at = actor, timezone.now()
    locked.full_clean(exclude=["photo"])
    locked.save(update_fields=["answer", "status", "answered_by", "answered_at", "updated_at"])
    member = locked.member
    # The notice is read by the member: the topic in their language, not the program manager's.
    with translation.override(member.language):
        topic = str(locked.get_topic_display())
    notify(
        kind=Kind.FEEDBACK_ANSWERED,
        member=member,
        source_key=f"feedback:{locked.pk}:answered",
        variables={"subject": topic},
        link_path=feedback_path(locked),
    )
    return locked


def feedback_path(feedback: Feedback) -> str:
    """Where the feedback page shows `feedback`: its page of the member's list and its anchor."""
    newer = Feedback.objects.filter(member__user=feedback.member.user_id).filter(
        Q(created_at__gt=feedback.created_at) | Q(created_at=feedback.created_at, pk__gt=feedback.pk)
    )
    page = newer.count() // FEEDBACK_PAGE_SIZE + 1
    query = f"?page={page}" if page > 1 else ""
    return f"{reverse('feedback')}{query}#feedback-{feedback.pk}"
