import factory
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from factory.django import DjangoModelFactory

from communications.constants import Channel, FeedbackStatus, FeedbackTopic, Kind
from communications.feedback import feedback_answer
from communications.models import Delivery, Feedback
from loyalty.common.errors import ApplicationError
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class FeedbackFactory(DjangoModelFactory):
    class Meta:
        model = Feedback

    member = factory.SubFactory(MemberFactory)
    topic = FeedbackTopic.PROGRAM
    text = factory.Sequence(lambda n: f"Feedback {n}")


def test_a_member_writes_to_the_program_team_with_a_photo(client):
    member = MemberFactory()
    client.force_login(member.user)

    response = client.post(
        reverse("feedback"),
        {
            "topic": FeedbackTopic.WEBSITE,
            "text": "The menu hides on my phone.",
            "photo": SimpleUploadedFile("a.png", PNG),
        },
    )

    assert response.status_code == 302
    feedback = Feedback.objects.get()
    assert (feedback.member, feedback.topic, feedback.text, feedback.status) == (
        member,
        FeedbackTopic.WEBSITE,
        "The menu hides on my phone.",
        FeedbackStatus.OPEN,
    )
    photo = client.get(reverse("feedback_photo", args=[feedback.pk]))
    assert (photo.status_code, photo["Content-Type"]) == (200, "image/png")


def test_ten_thousand_characters_are_refused_with_a_message_and_nothing_is_stored(client):
    client.force_login(MemberFactory().user)

    response = client.post(reverse("feedback"), {"topic": FeedbackTopic.OTHER, "text": "x" * 10_000})

    assert response.status_code == 200
    assert "Ensure this value has at most 5000 characters (it has 10000)." in response.content.decode()
    assert not Feedback.objects.exists()


def test_a_file_that_is_not_a_photo_is_refused(client):
    client.force_login(MemberFactory().user)

    response = client.post(
        reverse("feedback"),
        {"topic": FeedbackTopic.OTHER, "text": "See attached", "photo": SimpleUploadedFile("a.png", b"MZ not a photo")},
    )

    assert "Attach a photo (JPEG, PNG, WebP or HEIC)." in response.content.decode()
    assert not Feedback.objects.exists()


def test_a_member_sees_only_their_own_feedback(client):
    mine = FeedbackFactory(text="Mine")
    theirs = FeedbackFactory(text="Someone else's", photo=SimpleUploadedFile("b.png", PNG))
    client.force_login(mine.member.user)

    page = client.get(reverse("feedback"))

    assert [item.pk for item in page.context["page"]] == [mine.pk]
    assert client.get(reverse("feedback_photo", args=[theirs.pk])).status_code == 404


def test_answering_in_the_back_office_notifies_the_member_once(
    pm_client, program_manager, messages_out, django_capture_on_commit_callbacks
):
    feedback = FeedbackFactory()
    change = reverse("admin:communications_feedback_change", args=[feedback.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = pm_client.post(change, {"answer": "Thank you, fixed."})

    assert response.status_code == 302
    feedback.refresh_from_db()
    assert (feedback.status, feedback.answer, feedback.answered_by) == (
        FeedbackStatus.ANSWERED,
        "Thank you, fixed.",
        program_manager,
    )
    inbox = Delivery.objects.filter(kind=Kind.FEEDBACK_ANSWERED, member=feedback.member, channel=Channel.INBOX)
    assert inbox.count() == 1
    sent = Delivery.objects.filter(kind=Kind.FEEDBACK_ANSWERED).count()
    # Saving the page again (the answer is read-only now) and answering again send nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        pm_client.post(change, {"answer": "Another answer"})
    with pytest.raises(ApplicationError, match="answered before"):
        feedback_answer(feedback=feedback, answer="Again", actor=program_manager)
    feedback.refresh_from_db()
    assert feedback.answer == "Thank you, fixed."
    assert Delivery.objects.filter(kind=Kind.FEEDBACK_ANSWERED).count() == sent


def test_an_empty_answer_is_refused(pm_client):
    feedback = FeedbackFactory()

    response = pm_client.post(reverse("admin:communications_feedback_change", args=[feedback.pk]), {"answer": " "})

    assert response.status_code == 200
    feedback.refresh_from_db()
    assert feedback.status == FeedbackStatus.OPEN
    assert not Delivery.objects.exists()


def test_the_feedback_inbox_costs_the_same_queries_however_many_rows(pm_client, django_assert_num_queries):
    FeedbackFactory()
    url = reverse("admin:communications_feedback_changelist")
    with django_assert_num_queries(8) as first:
        assert pm_client.get(url).status_code == 200
    FeedbackFactory.create_batch(5)
    with django_assert_num_queries(len(first.captured_queries)):
        assert pm_client.get(url).status_code == 200


def test_partner_staff_cannot_open_the_feedback_inbox(partner_staff_client):
    FeedbackFactory()

    response = partner_staff_client.get(reverse("admin:communications_feedback_changelist"))

    assert response.status_code == 302
